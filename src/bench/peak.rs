//! The CPU's peaks, measured: what `bench`'s "% peak" column divides by.
//!
//! A fixed figure was right for one machine only: the 220 GFLOP/s of this project's first Zen 4
//! read as 110–240% "of peak" on a Xeon whose two cores reach 443 with 512-bit FMAs. Here every
//! thread runs a loop of independent fused multiply-adds at the widest width the kernels use
//! (AVX-512, AVX2, NEON on ARM, or scalar), as the figures in docs/performance.md were measured;
//! and where the CPU has AMX tiles, a loop of their bf16 multiply-adds, for the rows that multiply
//! on them.

use std::time::Instant;

/// Independent chains of multiply-adds per thread: enough to cover the FMA units' latency times
/// their count (4 cycles × 2 units on the x86 CPUs measured) with registers to spare.
const CHAINS: usize = 12;

/// The same for NEON, whose 128-bit units come four to a core on Apple's (4 cycles × 4 units).
#[cfg(target_arch = "aarch64")]
const NEON_CHAINS: usize = 16;

/// Iterations of the loop per timing: about 20 ms at 3.5 GHz with AVX-512.
const ITERATIONS: u64 = 8_000_000;

/// Rounds of the AMX tiles' loop per timing: about 20 ms at 1,024 FLOP a cycle and 3.5 GHz.
const TILE_ROUNDS: u64 = 1_000_000;

/// The peaks the "% peak" column divides by: f32 for rows multiplied in f32, the AMX tiles' bf16
/// for rows multiplied on them.
#[derive(Debug, Clone, Copy)]
pub struct Peaks {
    pub f32: f64,
    /// `None` where the CPU has no AMX tiles.
    pub tiles: Option<f64>,
}

/// f32 GFLOP/s that `threads` threads sustain together, each running the loop; the best of a few
/// timings, after one that brings the cores to their working clock.
pub fn measured_gflops(threads: usize) -> f64 {
    let Loop { lanes, chains, run } = loop_on_this_cpu();
    best_of(threads, || {
        std::hint::black_box(run(std::hint::black_box(ITERATIONS)));
        (chains * lanes * 2) as f64 * ITERATIONS as f64
    })
}

/// bf16 GFLOP/s of the AMX tiles' multiply-adds on `threads` threads (operands in registers), or
/// `None` where the CPU has no tiles.
pub fn measured_tile_gflops(threads: usize) -> Option<f64> {
    use crate::fused::amx;
    amx::available().then(|| best_of(threads, || amx::multiply_adds_in_registers(std::hint::black_box(TILE_ROUNDS))))
}

/// GFLOP/s of `threads` threads each running `work` (which returns the FLOPs it did) at once:
/// the best of three timings after one that brings the cores to their working clock.
fn best_of(threads: usize, work: impl Fn() -> f64 + Sync) -> f64 {
    let timing = || {
        let start = Instant::now();
        let flop: f64 = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads.max(1)).map(|_| scope.spawn(&work)).collect();
            workers.into_iter().map(|w| w.join().expect("a peak loop does not panic")).sum()
        });
        flop / start.elapsed().as_secs_f64() / 1e9
    };
    (0..4).map(|_| timing()).skip(1).fold(0.0, f64::max)
}

/// A loop of multiply-adds: `run(n)` does `n` rounds of `chains` independent ones, each `lanes`
/// floats wide, and returns their sum.
struct Loop {
    lanes: usize,
    chains: usize,
    run: fn(u64) -> f32,
}

/// The loop at the widest width this build's kernels use on this CPU.
fn loop_on_this_cpu() -> Loop {
    #[cfg(target_arch = "x86_64")]
    {
        if crate::fused::avx512() {
            // SAFETY: the CPU has AVX-512F (checked).
            return Loop { lanes: 16, chains: CHAINS, run: |n| unsafe { fma_avx512(n) } };
        }
        if crate::fused::avx2() {
            // SAFETY: the CPU has AVX2 and FMA (checked).
            return Loop { lanes: 8, chains: CHAINS, run: |n| unsafe { fma_avx2(n) } };
        }
    }
    #[cfg(target_arch = "aarch64")]
    return Loop { lanes: 4, chains: NEON_CHAINS, run: fma_neon };
    #[allow(unreachable_code)]
    Loop { lanes: 1, chains: CHAINS, run: multiply_add_scalar }
}

/// `n` rounds of [`CHAINS`] independent 512-bit multiply-adds; their sum, so none is dropped.
///
/// # Safety
/// The CPU must have AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn fma_avx512(n: u64) -> f32 {
    use std::arch::x86_64::*;
    let (a, b) = (_mm512_set1_ps(0.999_999), _mm512_set1_ps(1e-7));
    let mut acc: [__m512; CHAINS] = std::array::from_fn(|i| _mm512_set1_ps(i as f32));
    for _ in 0..n {
        for acc in &mut acc {
            *acc = _mm512_fmadd_ps(*acc, a, b);
        }
    }
    acc.iter().map(|&v| _mm512_reduce_add_ps(v)).sum()
}

/// As [`fma_avx512`], 256 bits wide.
///
/// # Safety
/// The CPU must have AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn fma_avx2(n: u64) -> f32 {
    use std::arch::x86_64::*;
    let (a, b) = (_mm256_set1_ps(0.999_999), _mm256_set1_ps(1e-7));
    let mut acc: [__m256; CHAINS] = std::array::from_fn(|i| _mm256_set1_ps(i as f32));
    for _ in 0..n {
        for acc in &mut acc {
            *acc = _mm256_fmadd_ps(*acc, a, b);
        }
    }
    let mut lanes = [0.0f32; 8];
    acc.iter().map(|&v| {
        // SAFETY: `lanes` holds eight floats.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), v) };
        lanes.iter().sum::<f32>()
    }).sum()
}

/// As [`fma_avx512`], 128 bits wide: every aarch64 CPU has NEON, and gemm's kernels use it.
#[cfg(target_arch = "aarch64")]
fn fma_neon(n: u64) -> f32 {
    use std::arch::aarch64::*;
    #[allow(unused_unsafe)]
    // SAFETY: NEON is part of the aarch64 targets this builds for.
    unsafe {
        let (a, b) = (vdupq_n_f32(0.999_999), vdupq_n_f32(1e-7));
        let mut acc: [float32x4_t; NEON_CHAINS] = std::array::from_fn(|i| vdupq_n_f32(i as f32));
        for _ in 0..n {
            for acc in &mut acc {
                *acc = vfmaq_f32(b, *acc, a);
            }
        }
        acc.iter().map(|&v| vaddvq_f32(v)).sum()
    }
}

/// As [`fma_avx512`], one float wide, a multiply and an add: a CPU that reaches this has neither
/// AVX2 nor NEON, and maybe no fused multiply-add (where `f32::mul_add` is a library call, many
/// times slower than the two instructions its kernels run).
fn multiply_add_scalar(n: u64) -> f32 {
    let mut acc: [f32; CHAINS] = std::array::from_fn(|i| i as f32);
    for _ in 0..n {
        for acc in &mut acc {
            *acc = *acc * 0.999_999 + 1e-7;
        }
    }
    acc.iter().sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loop_sums_what_its_multiply_adds_give() {
        // Each chain converges on b / (1 − a) = 0.1: the loop ran its multiply-adds and kept them.
        let Loop { lanes, chains, run } = loop_on_this_cpu();
        let (lanes, chains) = (lanes as f32, chains as f32);
        let sum = run(40_000_000);
        assert!((sum - 0.1 * chains * lanes).abs() < 0.02 * chains * lanes, "{sum}");
        assert_eq!(run(0), (0..chains as usize).map(|i| i as f32).sum::<f32>() * lanes);
    }
}
