//! `y = x · w` for a few rows of `x`: a cached denoising step, or a single position.
//!
//! The gemm crate copies ("packs") the whole weight into its own tile layout on every call. For a
//! few rows that copy costs more than the arithmetic: with the shipped model's 36 weights cycling
//! through the cache, as a forward pass does, 8, 30 or 64 rows all took 9–10 ms on an AVX2 Zen 3,
//! against 1.8 ms for one row (gemm's matrix-vector path, which does not pack). This kernel reads
//! `w` where it lies, sixteen columns by six rows at a time, and keeps those 96 sums in registers.

use super::OutPtr;
use rayon::prelude::*;

/// Inputs with at most this many rows go through [`matmul`]; more rows amortise gemm's packing.
pub const MAX_ROWS: usize = 64;

/// Output columns per task and per register tile.
const COLS: usize = 16;
/// Rows per register tile: 12 registers of sums, two of weights and one of input, of sixteen.
const ROWS: usize = 6;

/// Whether this CPU has the kernel's instructions (AVX2 and FMA); elsewhere gemm serves every
/// input, as a scalar loop would be slower than its packing.
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma");
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Whether an input of `rows` rows goes through [`matmul`].
pub fn serves(rows: usize) -> bool {
    rows <= MAX_ROWS && available()
}

/// `y[m, n] = x[m, k] · w[k, n]`, all row-major and contiguous; column blocks in parallel.
pub fn matmul(x: &[f32], w: &[f32], y: &mut [f32], m: usize, k: usize, n: usize) {
    assert!(x.len() == m * k && w.len() == k * n && y.len() == m * n, "skinny matmul: operand sizes");
    if k == 0 {
        return y.fill(0.0);
    }
    let out = OutPtr(y.as_mut_ptr()); // each task writes disjoint columns
    (0..n.div_ceil(COLS)).into_par_iter().for_each(|block| {
        let cols = block * COLS..((block + 1) * COLS).min(n);
        // SAFETY: each task writes only its own columns of `y`, which holds m × n elements.
        unsafe { columns(x, w, out, m, k, n, cols) };
    });
}

/// Every row of the output's columns `cols` (at most `COLS`).
///
/// # Safety
/// `y` must hold `m × n` elements, and no other thread may write these columns meanwhile.
unsafe fn columns(x: &[f32], w: &[f32], y: OutPtr<f32>, m: usize, k: usize, n: usize, cols: std::ops::Range<usize>) {
    let mut r = 0;
    #[cfg(target_arch = "x86_64")]
    if cols.len() == COLS && std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        while r < m {
            // SAFETY: the CPU has the features; rows r..r + rows and the 16 columns lie inside y.
            let rows = (m - r).min(ROWS);
            unsafe {
                match rows {
                    6 => tile_avx2::<6>(x, w, y, k, n, r, cols.start),
                    5 => tile_avx2::<5>(x, w, y, k, n, r, cols.start),
                    4 => tile_avx2::<4>(x, w, y, k, n, r, cols.start),
                    3 => tile_avx2::<3>(x, w, y, k, n, r, cols.start),
                    2 => tile_avx2::<2>(x, w, y, k, n, r, cols.start),
                    _ => tile_avx2::<1>(x, w, y, k, n, r, cols.start),
                }
            }
            r += rows;
        }
    }
    for r in r..m {
        for j in cols.clone() {
            let sum = (0..k).fold(0.0f32, |acc, p| x[r * k + p].mul_add(w[p * n + j], acc));
            // SAFETY: [r, j] lies inside y (the caller's contract).
            unsafe { *y.0.add(r * n + j) = sum };
        }
    }
}

/// Rows `r0..r0 + R`, columns `c0..c0 + 16`: 2R AVX registers of sums, over `k` in order.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn tile_avx2<const R: usize>(x: &[f32], w: &[f32], y: OutPtr<f32>, k: usize, n: usize, r0: usize, c0: usize) {
    use std::arch::x86_64::*;
    assert!((r0 + R) * k <= x.len() && (k - 1) * n + c0 + COLS <= w.len());
    let mut acc = [[_mm256_setzero_ps(); 2]; R];
    for p in 0..k {
        // SAFETY: row p of w holds columns c0..c0 + 16, and x rows r0..r0 + 4 hold column p
        // (asserted above).
        unsafe {
            let wp = w.as_ptr().add(p * n + c0);
            let (w0, w1) = (_mm256_loadu_ps(wp), _mm256_loadu_ps(wp.add(8)));
            for (r, acc) in acc.iter_mut().enumerate() {
                let s = _mm256_broadcast_ss(&*x.as_ptr().add((r0 + r) * k + p));
                acc[0] = _mm256_fmadd_ps(s, w0, acc[0]);
                acc[1] = _mm256_fmadd_ps(s, w1, acc[1]);
            }
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        // SAFETY: [r0 + r, c0..c0 + 16] lies inside y (the caller's contract).
        unsafe {
            let out = y.0.add((r0 + r) * n + c0);
            _mm256_storeu_ps(out, acc[0]);
            _mm256_storeu_ps(out.add(8), acc[1]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_textbook_product_for_ragged_shapes() {
        for (m, k, n) in [(1, 7, 3), (5, 33, 17), (4, 16, 16), (9, 64, 65), (64, 256, 40), (3, 0, 16), (0, 8, 16)] {
            let x: Vec<f32> = (0..m * k).map(|i| ((i * 31) % 17) as f32 / 17.0 - 0.5).collect();
            let w: Vec<f32> = (0..k * n).map(|i| ((i * 7) % 13) as f32 / 13.0 - 0.5).collect();
            let mut y = vec![f32::NAN; m * n];
            matmul(&x, &w, &mut y, m, k, n);
            for i in 0..m {
                for j in 0..n {
                    let want: f32 = (0..k).map(|p| x[i * k + p] * w[p * n + j]).sum();
                    assert!((y[i * n + j] - want).abs() < 1e-4, "({m}, {k}, {n}) at [{i}, {j}]: {} vs {want}", y[i * n + j]);
                }
            }
        }
    }
}
