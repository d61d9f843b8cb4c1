//! The operands of an AMX product packed into the tiles the instruction reads: `a` into 16-row ×
//! 32-column bf16 tiles, `b` into pair-interleaved ("VNNI") tiles, both zero-padded to whole
//! tiles. Row-major and transposed operands (every one a training step has) are converted sixteen
//! values at a time with AVX-512, the transposed ones turned in registers; packing one element
//! at a time took a tenth of a bf16 `base` training step (`perf`, docs/performance.md). Other
//! strides go element by element. Both ways round alike ([`bf16`]), so the bits do not depend on
//! the path.

use super::{K, Mat, T, TILE};
use crate::fused::OutPtr;
use rayon::prelude::*;

/// f32 → bf16, rounding to nearest even (NaNs are not produced by training's finite values).
pub(super) fn bf16(x: f32) -> u16 {
    let bits = x.to_bits();
    ((bits + 0x7fff + ((bits >> 16) & 1)) >> 16) as u16
}

/// Two f32 rounded to bf16 and packed as the low and high halves of a u32.
fn bf16_pair(lo: f32, hi: f32) -> u32 {
    bf16(lo) as u32 | (bf16(hi) as u32) << 16
}

/// A packed operand: `strips × kt` tiles of `len` elements, strip by strip, each tile written
/// whole by `fill(strip, p, tile)`. The tasks run over strips, or over `p` (`by_depth`) where the
/// source runs along the inner dimension's rows: then each task reads whole rows once, where a
/// strip would read a few bytes of every row of the matrix. On this thread alone unless
/// `parallel`.
///
/// # Safety
/// `fill` must write all `len` elements at `tile`.
#[allow(clippy::too_many_arguments)]
unsafe fn fill_tiles<E: Copy + Send + Sync>(strips: usize, kt: usize, len: usize, by_depth: bool, parallel: bool, fill: impl Fn(usize, usize, *mut E) + Sync) -> Vec<E> {
    let total = strips * kt * len;
    let mut out = Vec::with_capacity(total);
    let base = OutPtr(out.as_mut_ptr());
    // SAFETY: tile (s, p) lies inside the buffer, and only the task given (s, p) writes it.
    let tile = |s: usize, p: usize| fill(s, p, unsafe { base.add((s * kt + p) * len) });
    let tasks = |n: usize| (0..n).into_par_iter().with_min_len(if parallel { 1 } else { n.max(1) });
    if by_depth {
        tasks(kt).for_each(|p| (0..strips).for_each(|s| tile(s, p)));
    } else {
        tasks(strips).for_each(|s| (0..kt).for_each(|p| tile(s, p)));
    }
    // SAFETY: every tile was written whole (the caller's contract).
    unsafe { out.set_len(total) };
    out
}

/// `a` (`[m, k]`) as `mt × kt` tiles of 16 rows × 32 bf16, tile row by tile row.
pub(super) fn pack_a(a: Mat, m: usize, k: usize, mt: usize, kt: usize, parallel: bool) -> Vec<u16> {
    let fill = |ti: usize, p: usize, tile: *mut u16| {
        let (i0, p0) = (ti * T, p * K);
        let (rows, cols) = (m.saturating_sub(i0).min(T), k.saturating_sub(p0).min(K));
        // SAFETY: the tile's elements lie inside `a` (`rows × cols` from `(i0, p0)`), and `tile`
        // holds TILE elements; `pack` is only called where AMX (hence AVX-512) runs.
        unsafe {
            if a.cs == 1 || a.rs == 1 {
                x86::pack_a(a.from_row(i0).from_col(p0), rows, cols, tile);
            } else {
                std::ptr::write_bytes(tile, 0, TILE);
                for r in 0..rows {
                    for c in 0..cols {
                        *tile.add(r * K + c) = bf16(a.at(i0 + r, p0 + c));
                    }
                }
            }
        }
    };
    // SAFETY: each path writes the whole tile.
    unsafe { fill_tiles(mt, kt, TILE, a.rs == 1 && a.cs != 1, parallel, fill) }
}

/// `b` (`[k, n]`) as `nt × kt` tiles of 16 pairs of rows × 16 columns, tile column by tile
/// column: tile row `r` holds `b[2r, j], b[2r + 1, j]` for each of its 16 columns `j`, one u32 per
/// pair (the first of the pair in the low half: the instruction reads little-endian bf16 pairs).
pub(super) fn pack_b(b: Mat, k: usize, n: usize, nt: usize, kt: usize, parallel: bool) -> Vec<u32> {
    let fill = |tj: usize, p: usize, tile: *mut u32| {
        let (j0, d0) = (tj * T, p * K);
        let (cols, depth) = (n.saturating_sub(j0).min(T), k.saturating_sub(d0).min(K));
        // SAFETY: as in `pack_a`: inside `b`, TILE / 2 elements at `tile`, AVX-512 present.
        unsafe {
            if b.cs == 1 || b.rs == 1 {
                x86::pack_b(b.from_row(d0).from_col(j0), depth, cols, tile);
            } else {
                std::ptr::write_bytes(tile, 0, TILE / 2);
                let at = |d: usize, j: usize| if d < depth { b.at(d0 + d, j0 + j) } else { 0.0 };
                for r in 0..depth.div_ceil(2) {
                    for j in 0..cols {
                        *tile.add(r * T + j) = bf16_pair(at(2 * r, j), at(2 * r + 1, j));
                    }
                }
            }
        }
    };
    // SAFETY: each path writes the whole tile.
    unsafe { fill_tiles(nt, kt, TILE / 2, b.cs == 1 && b.rs != 1, parallel, fill) }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::super::{K, Mat, T};
    use std::arch::x86_64::*;

    /// `n` (≤ 16) f32 from `ptr`, zeros in the other lanes; nothing is read past them.
    #[target_feature(enable = "avx512f")]
    unsafe fn load(ptr: *const f32, n: usize) -> __m512 {
        let mask = if n >= 16 { u16::MAX } else { (1u16 << n) - 1 };
        // SAFETY: the lanes the mask keeps lie inside the caller's matrix; masked lanes are not read.
        unsafe { _mm512_maskz_loadu_ps(mask, ptr) }
    }

    /// Sixteen f32 rounded to bf16 as [`super::bf16`] rounds them, each in the high half of its
    /// 32-bit lane (the low halves are left over from the rounding).
    #[target_feature(enable = "avx512f")]
    fn rounded(x: __m512) -> __m512i {
        let bits = _mm512_castps_si512(x);
        let odd = _mm512_and_si512(_mm512_srli_epi32::<16>(bits), _mm512_set1_epi32(1));
        _mm512_add_epi32(bits, _mm512_add_epi32(_mm512_set1_epi32(0x7fff), odd))
    }

    /// Lane `i`: `bf16(lo[i])` in the low half, `bf16(hi[i])` in the high half.
    #[target_feature(enable = "avx512f")]
    fn pairs(lo: __m512, hi: __m512) -> __m512i {
        let high_halves = _mm512_set1_epi32(0xffff_0000_u32 as i32);
        _mm512_or_si512(_mm512_srli_epi32::<16>(rounded(lo)), _mm512_and_si512(rounded(hi), high_halves))
    }

    /// `n` (≤ 32) consecutive values from `ptr`, zeros after them, as thirty-two consecutive
    /// bf16: lane `i` holds values `2i` and `2i + 1`, as [`pairs`] would put them.
    ///
    /// # Safety
    /// As [`load`], for `n` values.
    #[target_feature(enable = "avx512f")]
    unsafe fn run(ptr: *const f32, n: usize) -> __m512i {
        let half = |x| _mm512_cvtepi32_epi16(_mm512_srli_epi32::<16>(rounded(x)));
        // SAFETY: the caller's contract, split at 16.
        let (x0, x1) = unsafe { (load(ptr, n.min(16)), load(ptr.wrapping_add(16), n.saturating_sub(16))) };
        _mm512_inserti64x4::<1>(_mm512_castsi256_si512(half(x0)), half(x1))
    }

    /// The 16 × 16 transpose of sixteen rows of u32: unpacking 32- then 64-bit halves within
    /// 128-bit lanes, then moving the lanes (two rounds of `shuffle_i32x4`).
    #[target_feature(enable = "avx512f")]
    fn transpose(r: [__m512i; 16]) -> [__m512i; 16] {
        // t[2q], t[2q + 1]: rows 2q and 2q + 1 interleaved, per 128-bit lane.
        let t: [__m512i; 16] = std::array::from_fn(|i| {
            let (a, b) = (r[i & !1], r[i | 1]);
            if i % 2 == 0 { _mm512_unpacklo_epi32(a, b) } else { _mm512_unpackhi_epi32(a, b) }
        });
        // u[4q + j], 128-bit lane L: column 4L + j of rows 4q..4q + 4.
        let u: [__m512i; 16] = std::array::from_fn(|i| {
            let (q, j) = (i / 4, i % 4);
            let (a, b) = (t[4 * q + j / 2], t[4 * q + 2 + j / 2]);
            if j % 2 == 0 { _mm512_unpacklo_epi64(a, b) } else { _mm512_unpackhi_epi64(a, b) }
        });
        let mut out = [_mm512_setzero_si512(); 16];
        for j in 0..4 {
            // Lanes 0 and 2 (`EVEN`) or 1 and 3 (`ODD`) of rows 0–7, then of rows 8–15.
            let even = |a, b| _mm512_shuffle_i32x4::<0b10_00_10_00>(a, b);
            let odd = |a, b| _mm512_shuffle_i32x4::<0b11_01_11_01>(a, b);
            let (v, v2) = (even(u[j], u[4 + j]), even(u[8 + j], u[12 + j]));
            let (w, w2) = (odd(u[j], u[4 + j]), odd(u[8 + j], u[12 + j]));
            out[j] = even(v, v2);
            out[8 + j] = odd(v, v2);
            out[4 + j] = even(w, w2);
            out[12 + j] = odd(w, w2);
        }
        out
    }

    /// One tile of `a` from a row-major (`cs == 1`) or transposed (`rs == 1`) view whose `rows ×
    /// cols` corner the tile holds, zero-padded to 16 × 32.
    ///
    /// # Safety
    /// The corner lies inside the matrix; `tile` holds 16 × 32 u16; AVX-512F runs here.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn pack_a(a: Mat, rows: usize, cols: usize, tile: *mut u16) {
        let lines: [__m512i; 16] = if a.cs == 1 {
            // Each tile row is a run of 32 values of one row of `a`.
            std::array::from_fn(|r| {
                let at = a.ptr.wrapping_add(r * a.rs);
                let n = if r < rows { cols } else { 0 };
                // SAFETY: `n` values from `at` lie inside the corner.
                unsafe { run(at, n) }
            })
        } else {
            // Columns of `a` are runs: pairs of columns as lanes of rows, then turned.
            let columns: [__m512i; 16] = std::array::from_fn(|q| {
                let column = |c: usize| {
                    let n = if c < cols { rows } else { 0 };
                    // SAFETY: `n` values of column `c` lie inside the corner.
                    unsafe { load(a.ptr.wrapping_add(c * a.cs), n) }
                };
                pairs(column(2 * q), column(2 * q + 1))
            });
            transpose(columns)
        };
        for (r, line) in lines.into_iter().enumerate() {
            // SAFETY: row r of the tile, 32 u16, lies inside it.
            unsafe { _mm512_storeu_si512(tile.add(r * K).cast(), line) };
        }
    }

    /// One tile of `b` from a row-major (`cs == 1`) or transposed (`rs == 1`) view whose `depth ×
    /// cols` corner the tile holds, as [`super::pack_b`] lays it out, zero-padded.
    ///
    /// # Safety
    /// As [`pack_a`]; `tile` holds 16 × 16 u32.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn pack_b(b: Mat, depth: usize, cols: usize, tile: *mut u32) {
        let lines: [__m512i; 16] = if b.cs == 1 {
            // Tile row r interleaves rows 2r and 2r + 1 of `b`.
            std::array::from_fn(|r| {
                let row = |d: usize| {
                    let n = if d < depth { cols } else { 0 };
                    // SAFETY: `n` values of row `d` lie inside the corner.
                    unsafe { load(b.ptr.wrapping_add(d * b.rs), n) }
                };
                pairs(row(2 * r), row(2 * r + 1))
            })
        } else {
            // Each column of `b` is a run of 32 values: its 16 pairs as lanes, then turned.
            let columns: [__m512i; 16] = std::array::from_fn(|j| {
                let at = b.ptr.wrapping_add(j * b.cs);
                let n = if j < cols { depth } else { 0 };
                // SAFETY: `n` values from `at` lie inside the corner.
                unsafe { run(at, n) }
            });
            transpose(columns)
        };
        for (r, line) in lines.into_iter().enumerate() {
            // SAFETY: row r of the tile, 16 u32, lies inside it.
            unsafe { _mm512_storeu_si512(tile.add(r * T).cast(), line) };
        }
    }
}

// Elsewhere AMX does not exist and `available()` keeps every caller away.
#[cfg(not(target_arch = "x86_64"))]
mod x86 {
    use super::super::Mat;
    pub(super) unsafe fn pack_a(_: Mat, _: usize, _: usize, _: *mut u16) {
        unreachable!("AMX exists on x86-64 only")
    }
    pub(super) unsafe fn pack_b(_: Mat, _: usize, _: usize, _: *mut u32) {
        unreachable!("AMX exists on x86-64 only")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The values of an `[rows, cols]` matrix three ways: row-major, transposed, and spread out
    /// (every other element, so neither stride is 1: the element-by-element path).
    fn three_ways(rows: usize, cols: usize) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let value = |i: usize, j: usize| ((i * 131 + j * 71) % 997) as f32 / 97.0 - 5.0 + 1e-3 * j as f32;
        let row_major: Vec<f32> = (0..rows * cols).map(|x| value(x / cols, x % cols)).collect();
        let transposed: Vec<f32> = (0..rows * cols).map(|x| value(x % rows, x / rows)).collect();
        let spread: Vec<f32> = (0..2 * rows * cols).map(|x| if x % 2 == 0 { row_major[x / 2] } else { f32::NAN }).collect();
        (row_major, transposed, spread)
    }

    #[test]
    fn vector_packing_writes_the_bits_element_by_element_packing_writes() {
        if !crate::fused::avx512() {
            eprintln!("no AVX-512 here: only the element-by-element packing runs");
            return;
        }
        for &(rows, cols) in &[(1, 1), (16, 32), (17, 33), (40, 70), (5, 100)] {
            let (row_major, transposed, spread) = three_ways(rows, cols);
            let reference = Mat { ptr: spread.as_ptr(), rs: 2 * cols, cs: 2 };
            // `a` is rows × cols (m × k); `b` is rows × cols too (k × n).
            let (mt, kt) = (super::super::tile_pairs(rows), super::super::depth_tiles(cols));
            let want = pack_a(reference, rows, cols, mt, kt, true);
            assert_eq!(pack_a(Mat::rows(&row_major, cols), rows, cols, mt, kt, true), want, "a row-major, {rows} × {cols}");
            assert_eq!(pack_a(Mat::transposed(&transposed, rows), rows, cols, mt, kt, true), want, "a transposed, {rows} × {cols}");
            let (nt, kt) = (super::super::tile_pairs(cols), super::super::depth_tiles(rows));
            let want = pack_b(reference, rows, cols, nt, kt, true);
            assert_eq!(pack_b(Mat::rows(&row_major, cols), rows, cols, nt, kt, true), want, "b row-major, {rows} × {cols}");
            assert_eq!(pack_b(Mat::transposed(&transposed, rows), rows, cols, nt, kt, true), want, "b transposed, {rows} × {cols}");
        }
    }
}
