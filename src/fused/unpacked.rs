//! `y = x · w` at inference, reading the weight where it lies.
//!
//! The gemm crate copies ("packs") the weight into its own tile layout on every call, and with two
//! threads each packs every panel it touches. For a few rows that copy costs more than the
//! arithmetic: with the shipped model's 36 weights cycling through the cache, as a forward pass
//! does, 8, 30 or 64 rows all took 9–10 ms on an AVX2 Zen 3, against 1.8 ms for one row (gemm's
//! matrix-vector path, which does not pack). A register tile that reads the weight in place (six
//! rows by 64 columns with AVX-512, by sixteen with AVX2) beats gemm up to [`FEW_ROWS`] rows; above
//! that, gemm's packed panels paid for their copy on the CPUs measured (an AVX2 Zen 3, an AVX-512
//! Intel Xeon), and gemm serves. The exception is a Zen 4, whose AVX-512 runs in 256-bit halves:
//! there the tile ran at the FMA units' peak at any row count, 198–207 GFLOP/s against gemm's
//! 181–193 for `base`'s products, and it serves every input ([`Tile::serves_many_rows`];
//! docs/performance.md has the figures of both).
//!
//! Each output element is one fused multiply-add chain over `k` in order, as gemm's is for `k` up
//! to its block depth (512 here): the same bits there.

use super::OutPtr;
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// "A few rows": inputs of at most this many rows go through [`matmul`] on every CPU with a tile
/// (more amortise gemm's packing, but on a Zen 4), and the projections op, which splits rows
/// between threads, leaves them to the linear ops, which split columns. The crossing point: at 64
/// rows the AVX-512 tile and gemm ran at the same speed on an Intel Xeon, at 128 gemm was 20–40%
/// faster.
pub const FEW_ROWS: usize = 64;

/// Rows per register tile: with AVX-512, 24 registers of sums, four of weights and one of input,
/// of 32; with AVX2, 12 of sums, two of weights and one of input, of sixteen.
#[cfg(target_arch = "x86_64")]
const ROWS: usize = 6;

/// Rows per task when there are many: the task's inputs stay in cache while it walks its columns.
const ROWS_PER_TASK: usize = 256;

/// A register tile, by the instructions it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tile {
    /// Six rows by 64 columns in `zmm` registers.
    Avx512,
    /// Six rows by sixteen columns in `ymm` registers (AVX2 and FMA).
    Avx2,
}

impl Tile {
    /// The tile this CPU runs best, or `None` where it has neither AVX-512 nor AVX2 with FMA (gemm
    /// then serves every input: a scalar loop would be slower than its packing).
    fn on_this_cpu() -> Option<Tile> {
        [Tile::Avx512, Tile::Avx2].into_iter().find(|t| t.available())
    }

    fn available(self) -> bool {
        match self {
            Tile::Avx512 => super::avx512(),
            Tile::Avx2 => super::avx2(),
        }
    }

    /// Whether the tile beats gemm for many rows too: measured so on a Zen 4 (AMD family 19h), not
    /// on an Intel Xeon with AVX-512, where gemm ran 256-row products 10–40% faster and whole
    /// denoising steps 15–20% faster. Unmeasured CPUs take gemm, as for AVX2.
    fn serves_many_rows(self) -> bool {
        static ZEN_4: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        self == Tile::Avx512 && *ZEN_4.get_or_init(amd_family_19h)
    }

    /// The columns a task takes: one tile's.
    fn columns(self) -> usize {
        match self {
            Tile::Avx512 => 64,
            Tile::Avx2 => 16,
        }
    }
}

/// Whether the CPU says it is an AMD of family 19h (Zen 3 and Zen 4; of these, only Zen 4 has
/// AVX-512).
fn amd_family_19h() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::__cpuid;
        let vendor = __cpuid(0);
        let vendor = [vendor.ebx, vendor.edx, vendor.ecx].map(u32::to_le_bytes).concat();
        vendor == b"AuthenticAMD" && family(__cpuid(1).eax) == 0x19
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// The family in CPUID leaf 1's `eax`: the base family, plus the extended family where the base
/// one is 0xF.
#[cfg(any(target_arch = "x86_64", test))]
fn family(eax: u32) -> u32 {
    let base = (eax >> 8) & 0xf;
    if base == 0xf { base + ((eax >> 20) & 0xff) } else { base }
}

/// Whether an input of `rows` rows goes through [`matmul`].
pub fn serves(rows: usize) -> bool {
    Tile::on_this_cpu().is_some_and(|tile| rows <= FEW_ROWS || tile.serves_many_rows())
}

/// `y[m, n] = x[m, k] · w[k, n]`, all row-major and contiguous; blocks of columns (and of rows,
/// when there are many) in parallel. Every element of `y` is written and none is read, so `y` may
/// be unfilled memory (`super::written`). Only where [`serves`].
pub fn matmul(x: &[f32], w: &[f32], y: &mut [MaybeUninit<f32>], m: usize, k: usize, n: usize) {
    matmul_with(Tile::on_this_cpu().expect("the unpacked kernel runs where it serves"), x, w, y, m, k, n);
}

/// [`matmul`] through `tile`, which the CPU must have.
fn matmul_with(tile: Tile, x: &[f32], w: &[f32], y: &mut [MaybeUninit<f32>], m: usize, k: usize, n: usize) {
    assert!(x.len() == m * k && w.len() == k * n && y.len() == m * n, "unpacked matmul: operand sizes");
    assert!(tile.available(), "the CPU has the {tile:?} tile's instructions");
    let cols = tile.columns();
    let (col_blocks, row_blocks) = (n.div_ceil(cols), m.div_ceil(ROWS_PER_TASK));
    let out = OutPtr(y.as_mut_ptr().cast::<f32>()); // each task writes a block of its own
    // Column blocks vary fastest: with one block of rows, each thread reads its own columns of `w`.
    (0..col_blocks * row_blocks).into_par_iter().for_each(|task| {
        let (c0, r0) = ((task % col_blocks) * cols, (task / col_blocks) * ROWS_PER_TASK);
        // SAFETY: the block lies inside y, which holds m × n elements, and only this task writes it;
        // the CPU has the tile (asserted above).
        unsafe { block(tile, x, w, out, m, k, n, r0..(r0 + ROWS_PER_TASK).min(m), c0..(c0 + cols).min(n)) };
    });
}

/// `y = x · w` as [`matmul`], on this thread alone, into `y` (`m` rows of `n`, row-major), for a
/// kernel that splits the work itself: one block of its rows where [`serves`] says this kernel
/// takes the whole input.
///
/// # Safety
/// `y` must hold `m × n` elements that no other thread touches meanwhile.
pub unsafe fn matmul_on_this_thread(x: &[f32], w: &[f32], y: OutPtr<f32>, m: usize, k: usize, n: usize) {
    assert!(x.len() == m * k && w.len() == k * n, "unpacked matmul: operand sizes");
    let tile = Tile::on_this_cpu().expect("the unpacked kernel runs where it serves");
    for c0 in (0..n).step_by(tile.columns()) {
        // SAFETY: the caller's contract; the CPU has the tile.
        unsafe { block(tile, x, w, y, m, k, n, 0..m, c0..(c0 + tile.columns()).min(n)) };
    }
}

/// Rows `rows` of the output's columns `cols` (at most one tile wide) through `tile`; a ragged
/// block narrower than an AVX2 tile is summed by a plain loop.
///
/// # Safety
/// `y` must hold `m × n` elements, and no other thread may write this block meanwhile; the CPU
/// must have `tile`.
#[allow(clippy::too_many_arguments)]
unsafe fn block(tile: Tile, x: &[f32], w: &[f32], y: OutPtr<f32>, m: usize, k: usize, n: usize, rows: std::ops::Range<usize>, cols: std::ops::Range<usize>) {
    debug_assert!(rows.end <= m && cols.end <= n);
    if k == 0 {
        for r in rows {
            // SAFETY: the block lies inside y (the caller's contract).
            unsafe { std::ptr::write_bytes(y.0.add(r * n + cols.start), 0, cols.len()) };
        }
        return;
    }
    // Off x86 there are no tiles (`serves` is false there), and every row takes the plain loop.
    #[cfg(not(target_arch = "x86_64"))]
    let (r, _) = (rows.start, tile);
    #[cfg(target_arch = "x86_64")]
    let mut r = rows.start;
    #[cfg(target_arch = "x86_64")]
    while r < rows.end {
        let tile_rows = (rows.end - r).min(ROWS);
        macro_rules! by_rows {
            ($f:ident $(, $extra:expr)?) => {
                // SAFETY: the CPU has the tile's features (the caller's contract); rows
                // r..r + tile_rows and the block's columns lie inside y.
                unsafe {
                    match tile_rows {
                        6 => $f::<6>(x, w, y, k, n, r, cols.start $(, $extra)?),
                        5 => $f::<5>(x, w, y, k, n, r, cols.start $(, $extra)?),
                        4 => $f::<4>(x, w, y, k, n, r, cols.start $(, $extra)?),
                        3 => $f::<3>(x, w, y, k, n, r, cols.start $(, $extra)?),
                        2 => $f::<2>(x, w, y, k, n, r, cols.start $(, $extra)?),
                        _ => $f::<1>(x, w, y, k, n, r, cols.start $(, $extra)?),
                    }
                }
            };
        }
        match tile {
            Tile::Avx512 => by_rows!(tile_avx512, cols.len()),
            Tile::Avx2 if cols.len() == 16 => by_rows!(tile_avx2),
            Tile::Avx2 => break,
        }
        r += tile_rows;
    }
    for r in r..rows.end {
        for j in cols.clone() {
            let sum = (0..k).fold(0.0f32, |acc, p| x[r * k + p].mul_add(w[p * n + j], acc));
            // SAFETY: [r, j] lies inside y (the caller's contract).
            unsafe { *y.0.add(r * n + j) = sum };
        }
    }
}

/// Rows of `w` a tile asks for ahead of the one it reads. A row of a block's columns is four cache
/// lines, `n` floats from the next, and a block's rows outgrow L1: the hardware prefetchers do not
/// follow that stride. Prefetching in every tile made `base`'s steps 3–11% faster and a cached
/// `small` step 8%, the full `small` step no slower; in only the first tile of a block (the one
/// that reads from memory) it gained nothing (docs/performance.md).
#[cfg(target_arch = "x86_64")]
const PREFETCH_ROWS: usize = 16;

/// Rows `r0..r0 + R`, columns `c0..c0 + cols` (at most 64): 4R AVX-512 registers of sums, over `k`
/// in order. Columns past `cols` are masked off; the rows of `w` it will read next are asked for
/// ahead ([`PREFETCH_ROWS`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn tile_avx512<const R: usize>(x: &[f32], w: &[f32], y: OutPtr<f32>, k: usize, n: usize, r0: usize, c0: usize, cols: usize) {
    use std::arch::x86_64::*;
    assert!(cols <= 64 && (r0 + R) * k <= x.len() && (k - 1) * n + c0 + cols <= w.len());
    let masks: [__mmask16; 4] = std::array::from_fn(|v| ((1u32 << cols.saturating_sub(16 * v).min(16)) - 1) as __mmask16);
    let mut acc = [[_mm512_setzero_ps(); 4]; R];
    for p in 0..k {
        // SAFETY: rows p and min(p + PREFETCH_ROWS, k - 1) of w hold columns c0..c0 + cols (the
        // masks load no others), and x rows r0..r0 + R hold column p (asserted above).
        unsafe {
            let wp = w.as_ptr().add(p * n + c0);
            let ahead = w.as_ptr().add((p + PREFETCH_ROWS).min(k - 1) * n + c0);
            for v in 0..cols.div_ceil(16) {
                _mm_prefetch::<_MM_HINT_T0>(ahead.add(16 * v).cast());
            }
            let wv: [__m512; 4] = std::array::from_fn(|v| _mm512_maskz_loadu_ps(masks[v], wp.add(16 * v)));
            for (r, acc) in acc.iter_mut().enumerate() {
                let s = _mm512_set1_ps(*x.as_ptr().add((r0 + r) * k + p));
                for (acc, &wv) in acc.iter_mut().zip(&wv) {
                    *acc = _mm512_fmadd_ps(s, wv, *acc);
                }
            }
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        // SAFETY: [r0 + r, c0..c0 + cols] lies inside y (the caller's contract); the masks store
        // no other column.
        unsafe {
            let out = y.0.add((r0 + r) * n + c0);
            for (v, &acc) in acc.iter().enumerate() {
                _mm512_mask_storeu_ps(out.add(16 * v), masks[v], acc);
            }
        }
    }
}

/// Rows `r0..r0 + R`, columns `c0..c0 + 16`: 2R AVX registers of sums, over `k` in order.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn tile_avx2<const R: usize>(x: &[f32], w: &[f32], y: OutPtr<f32>, k: usize, n: usize, r0: usize, c0: usize) {
    use std::arch::x86_64::*;
    assert!((r0 + R) * k <= x.len() && (k - 1) * n + c0 + 16 <= w.len());
    let mut acc = [[_mm256_setzero_ps(); 2]; R];
    for p in 0..k {
        // SAFETY: row p of w holds columns c0..c0 + 16, and x rows r0..r0 + R hold column p
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
    use crate::fused::{Mat, product};

    /// `tile`'s product of `x` and `w`, into a buffer of NaNs (so that an element left unwritten
    /// shows).
    fn product_with(tile: Tile, x: &[f32], w: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        let mut y = vec![MaybeUninit::new(f32::NAN); m * n];
        matmul_with(tile, x, w, &mut y, m, k, n);
        // SAFETY: every element was initialised (NaN, then the product).
        y.into_iter().map(|v| unsafe { v.assume_init() }).collect()
    }

    fn operands(m: usize, k: usize, n: usize) -> (Vec<f32>, Vec<f32>) {
        let x = (0..m * k).map(|i| ((i * 31) % 17) as f32 / 17.0 - 0.5).collect();
        let w = (0..k * n).map(|i| ((i * 7) % 13) as f32 / 13.0 - 0.5).collect();
        (x, w)
    }

    /// Every tile this CPU has, so that an AVX-512 machine tests the AVX2 tile too.
    fn tiles() -> Vec<Tile> {
        [Tile::Avx512, Tile::Avx2].into_iter().filter(|t| t.available()).collect()
    }

    #[test]
    fn matches_the_textbook_product_for_ragged_shapes() {
        // Ragged column blocks (17, 65, 130: the vocabulary's head is 66 wide), ragged row tiles,
        // two blocks of rows (300), a depth past gemm's block (600), and nothing to sum (k = 0).
        let shapes = [(1, 7, 3), (5, 33, 17), (4, 16, 16), (9, 64, 65), (64, 256, 40), (3, 0, 16), (0, 8, 16), (300, 40, 130), (7, 600, 66)];
        for tile in tiles() {
            for (m, k, n) in shapes {
                let (x, w) = operands(m, k, n);
                let y = product_with(tile, &x, &w, m, k, n);
                for i in 0..m {
                    for j in 0..n {
                        let want: f32 = (0..k).map(|p| x[i * k + p] * w[p * n + j]).sum();
                        assert!((y[i * n + j] - want).abs() < 1e-4, "{tile:?} ({m}, {k}, {n}) at [{i}, {j}]: {} vs {want}", y[i * n + j]);
                    }
                }
            }
        }
    }

    #[test]
    fn gives_gemms_bits_where_gemm_sums_in_one_block() {
        for tile in tiles() {
            for (m, k, n) in [(8, 256, 256), (256, 384, 130)] {
                let (x, w) = operands(m, k, n);
                let y = product_with(tile, &x, &w, m, k, n);
                assert_eq!(y, product(m, n, k, Mat::rows(&x, k), Mat::rows(&w, n)), "{tile:?} ({m}, {k}, {n})");
            }
        }
    }

    #[test]
    fn reads_the_family_from_cpuid() {
        // Leaf 1's eax on a Ryzen 9 7950X (Zen 4), a Ryzen 9 9950X (Zen 5) and an Intel Xeon of
        // family 6, model 207.
        assert_eq!(family(0x00A6_0F12), 0x19);
        assert_eq!(family(0x00B4_0F40), 0x1A);
        assert_eq!(family(0x000C_06F2), 6);
    }

    #[test]
    fn one_thread_gives_the_parallel_products_bits() {
        if Tile::on_this_cpu().is_none() {
            return;
        }
        let (m, k, n) = (70, 96, 200);
        let (x, w) = operands(m, k, n);
        let parallel = product_with(Tile::on_this_cpu().expect("checked above"), &x, &w, m, k, n);
        let mut serial = vec![f32::NAN; m * n];
        // SAFETY: `serial` holds m × n elements and nothing else touches it.
        unsafe { matmul_on_this_thread(&x, &w, OutPtr(serial.as_mut_ptr()), m, k, n) };
        assert_eq!(serial, parallel);
    }
}
