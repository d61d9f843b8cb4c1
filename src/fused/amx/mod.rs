//! Matrix multiply on Intel's AMX tiles: f32 in and out, bf16 products summed in f32 (the mixed
//! precision PyTorch's autocast and nanochat train in). A tile multiply-add, `tdpbf16ps`, does
//! 16 × 16 × 32 products in one instruction, several times what AVX-512 f32 FMAs do per cycle,
//! so the training step's matmuls (two thirds of it in f32, docs/performance.md) get cheaper.
//!
//! The operands are packed first ([`pack`]): `a` into 16-row × 32-column bf16 tiles, `b` into
//! the pair-interleaved ("VNNI") tiles the instruction reads. Each rayon task then owns 32 rows of
//! the output and walks 2 × 2 blocks of 16 × 16 f32 tiles, keeping four accumulators in tile
//! registers over the whole inner dimension. A right-hand operand that many products share (a
//! weight at inference) can be packed once ([`PackedB`]).
//!
//! [`available`] says whether this CPU and kernel can run it (x86-64 with AMX-BF16, and Linux
//! granting the process the tile state); callers fall back to f32 elsewhere.

mod pack;

use super::OutPtr;
use pack::{pack_a, pack_b};
use rayon::prelude::*;
use std::sync::OnceLock;

/// A read-only f32 matrix: element `(i, j)` at `ptr + i·rs + j·cs` (strides in elements), so a
/// transposed view is the same memory with the strides swapped.
#[derive(Clone, Copy)]
pub struct Mat {
    pub ptr: *const f32,
    pub rs: usize,
    pub cs: usize,
}

// SAFETY: a `Mat` only reads a buffer that outlives the parallel loops it is used in.
unsafe impl Send for Mat {}
unsafe impl Sync for Mat {}

impl Mat {
    /// A row-major `[rows, cols]` matrix.
    pub fn rows(data: &[f32], cols: usize) -> Self {
        Mat { ptr: data.as_ptr(), rs: cols, cs: 1 }
    }

    /// The transpose of a row-major `[rows, cols]` matrix.
    pub fn transposed(data: &[f32], cols: usize) -> Self {
        Mat { ptr: data.as_ptr(), rs: 1, cs: cols }
    }

    /// The rows from `i0` on: the same memory, `i0` rows on (which the caller keeps inside it).
    pub fn from_row(self, i0: usize) -> Self {
        Mat { ptr: self.ptr.wrapping_add(i0 * self.rs), ..self }
    }

    /// The columns from `j0` on: the same memory, `j0` columns on (which the caller keeps inside it).
    pub fn from_col(self, j0: usize) -> Self {
        Mat { ptr: self.ptr.wrapping_add(j0 * self.cs), ..self }
    }

    /// SAFETY: `(i, j)` lies inside the matrix the caller described.
    unsafe fn at(&self, i: usize, j: usize) -> f32 {
        unsafe { *self.ptr.add(i * self.rs + j * self.cs) }
    }
}

/// Rows and columns of a tile of output (f32), and of rows of `a`'s tiles.
const T: usize = 16;
/// The inner dimension a tile covers: 32 bf16 values, 64 bytes per tile row.
const K: usize = 32;
/// u16s in one packed tile (1 KiB).
const TILE: usize = T * K;

/// Whether AMX-BF16 can run here: the CPU has it, and the kernel let this process use the tile
/// registers (Linux asks each process to request them, `arch_prctl(ARCH_REQ_XCOMP_PERM)`).
pub fn available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(detect)
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn detect() -> bool {
    use std::arch::x86_64::__cpuid_count;
    // AMX comes with AVX-512 (the packing uses it): a build held to AVX2 (without the `avx512`
    // feature) leaves it too.
    if !super::avx512() {
        return false;
    }
    // CPUID leaf 7: EDX bit 22 AMX-BF16, bit 24 AMX-TILE.
    let leaf7 = __cpuid_count(7, 0);
    if leaf7.edx & (1 << 22) == 0 || leaf7.edx & (1 << 24) == 0 {
        return false;
    }
    const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
    const XFEATURE_XTILEDATA: libc::c_long = 18;
    // SAFETY: a plain system call with integer arguments; it only changes this process's
    // permissions.
    unsafe { libc::syscall(libc::SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0 }
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
fn detect() -> bool {
    false
}

/// `c[i, j] (+)= Σ_p a[i, p] · b[p, j]` for `a` `[m, k]`, `b` `[k, n]`, `c` row-major with row
/// stride `c_rs`; `accumulate` adds to `c` instead of overwriting it. Only call where
/// [`available`]; runs on the current rayon pool.
#[allow(clippy::too_many_arguments)]
pub fn matmul(m: usize, n: usize, k: usize, a: Mat, b: Mat, c: &mut [f32], c_rs: usize, accumulate: bool) {
    assert!(m == 0 || n == 0 || c.len() >= (m - 1) * c_rs + n, "output buffer too small");
    // SAFETY: `c` holds the output (checked above).
    unsafe { matmul_into(m, n, k, a, b, c.as_mut_ptr(), c_rs, accumulate) }
}

/// [`matmul`] into memory that need not be initialised unless `accumulate`: every element of
/// the output is written.
///
/// # Safety
/// `c` must address `m` rows of `n` elements `c_rs` apart; `a` and `b` memory that holds them.
#[allow(clippy::too_many_arguments)]
pub unsafe fn matmul_into(m: usize, n: usize, k: usize, a: Mat, b: Mat, c: *mut f32, c_rs: usize, accumulate: bool) {
    // SAFETY: the caller's contract.
    unsafe { run(m, n, k, a, b, c, c_rs, accumulate, true) }
}

/// `c = a · b` as [`matmul_into`] does, on this thread alone, for a kernel that splits the work
/// itself (attention's heads).
///
/// # Safety
/// As [`matmul_into`].
#[allow(clippy::too_many_arguments)]
pub unsafe fn product_on_this_thread(m: usize, n: usize, k: usize, a: Mat, b: Mat, c: *mut f32, c_rs: usize) {
    // SAFETY: the caller's contract.
    unsafe { run(m, n, k, a, b, c, c_rs, false, false) }
}

/// `rounds` rounds of four independent tile multiply-adds on this thread, operands and sums in
/// the tile registers (no memory): the most the tiles do, for `bench`'s "% peak" of the rows that
/// multiply on them. Returns the FLOPs done. Only call where [`available`].
pub fn multiply_adds_in_registers(rounds: u64) -> f64 {
    assert!(available(), "AMX called on a machine without AMX");
    if rounds == 0 {
        return 0.0;
    }
    let _tiles = TileRegisters::configure();
    // SAFETY: the tiles are configured; the loop reads and writes tile registers only.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        std::arch::asm!(
            "tilezero tmm0", "tilezero tmm1", "tilezero tmm2", "tilezero tmm3",
            "tilezero tmm4", "tilezero tmm5", "tilezero tmm6", "tilezero tmm7",
            "2:",
            "tdpbf16ps tmm0, tmm4, tmm6",
            "tdpbf16ps tmm1, tmm4, tmm7",
            "tdpbf16ps tmm2, tmm5, tmm6",
            "tdpbf16ps tmm3, tmm5, tmm7",
            "dec {n}",
            "jnz 2b",
            n = inout(reg) rounds => _,
            options(nostack, nomem),
        );
    }
    // Each instruction: 16 × 16 sums of 32 products, two FLOPs each.
    (rounds * 4 * 2 * (T * T * K) as u64) as f64
}

/// Tiles covering `n` rows (or columns) of the output, rounded up to whole pairs: the blocks are
/// 2 × 2 tiles.
fn tile_pairs(n: usize) -> usize {
    n.div_ceil(2 * T) * 2
}

/// Tiles covering an inner dimension of `k` (at least one: an empty product is a zero one).
fn depth_tiles(k: usize) -> usize {
    k.div_ceil(K).max(1)
}

/// A right-hand operand packed once ([`PackedB::new`]) for many products: a weight at inference,
/// which does not change between a model's steps.
pub struct PackedB {
    k: usize,
    n: usize,
    tiles: Vec<u32>,
}

impl PackedB {
    /// `b` (`[k, n]`) packed for the tiles. Only call where [`available`].
    pub fn new(b: Mat, k: usize, n: usize) -> Self {
        Self::pack(b, k, n, true)
    }

    fn pack(b: Mat, k: usize, n: usize, parallel: bool) -> Self {
        assert!(available(), "AMX packing called on a machine without AMX");
        PackedB { k, n, tiles: pack_b(b, k, n, tile_pairs(n), depth_tiles(k), parallel) }
    }

    /// Its shape, `[k, n]`.
    pub fn dims(&self) -> [usize; 2] {
        [self.k, self.n]
    }

    /// Bytes it holds.
    pub fn bytes(&self) -> usize {
        self.tiles.len() * 4
    }
}

/// A left-hand operand packed once ([`PackedA::on_this_thread`]) for several products: an
/// attention layer's input, which its queries, keys and values share.
pub struct PackedA {
    m: usize,
    k: usize,
    tiles: Vec<u16>,
}

impl PackedA {
    /// `a` (`[m, k]`) packed for the tiles, on this thread alone. Only call where [`available`].
    pub fn on_this_thread(a: Mat, m: usize, k: usize) -> Self {
        Self::pack(a, m, k, false)
    }

    fn pack(a: Mat, m: usize, k: usize, parallel: bool) -> Self {
        assert!(available(), "AMX packing called on a machine without AMX");
        PackedA { m, k, tiles: pack_a(a, m, k, tile_pairs(m), depth_tiles(k), parallel) }
    }
}

/// `c = a · b`, both packed, on this thread alone, into memory that need not be initialised.
///
/// # Safety
/// `c` must address `m` rows of `n` floats `c_rs` apart (`a` `[m, k]`, `b` `[k, n]`) that no
/// other thread touches meanwhile.
pub unsafe fn packed_product_on_this_thread(a: &PackedA, b: &PackedB, c: *mut f32, c_rs: usize) {
    assert_eq!(a.k, b.k, "packed product: a's columns are b's rows");
    if a.m == 0 || b.n == 0 {
        return;
    }
    // SAFETY: the caller's contract; both operands packed for these shapes.
    unsafe { multiply(&a.tiles, &b.tiles, a.m, b.n, depth_tiles(a.k), c, c_rs, false, false) }
}

/// `c = a · b` for `a` `[m, k]` and `b` packed, into memory that need not be initialised, on
/// the current rayon pool.
///
/// # Safety
/// As [`matmul_into`].
pub unsafe fn matmul_packed(m: usize, a: Mat, b: &PackedB, c: *mut f32, c_rs: usize) {
    // SAFETY: the caller's contract.
    unsafe { times_packed(m, a, b, c, c_rs, false, true) }
}

/// # Safety
/// As [`matmul_into`].
#[allow(clippy::too_many_arguments)]
unsafe fn run(m: usize, n: usize, k: usize, a: Mat, b: Mat, c: *mut f32, c_rs: usize, accumulate: bool, parallel: bool) {
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: the caller's contract.
    unsafe { times_packed(m, a, &PackedB::pack(b, k, n, parallel), c, c_rs, accumulate, parallel) }
}

/// `a` packed, then multiplied by `b` into `c`.
///
/// # Safety
/// As [`matmul_into`].
unsafe fn times_packed(m: usize, a: Mat, b: &PackedB, c: *mut f32, c_rs: usize, accumulate: bool, parallel: bool) {
    assert!(available(), "AMX matmul called on a machine without AMX");
    let (k, n) = (b.k, b.n);
    if m == 0 || n == 0 {
        return;
    }
    let pa = PackedA::pack(a, m, k, parallel);
    // SAFETY: the caller's contract; both operands packed for these shapes.
    unsafe { multiply(&pa.tiles, &b.tiles, m, n, depth_tiles(k), c, c_rs, accumulate, parallel) }
}

/// The products of packed operands, `m × n` over `kt` tiles of the inner dimension, into `c`.
///
/// # Safety
/// `pa` and `pb` packed by [`pack_a`] and [`pack_b`] for these shapes; `c` as in [`matmul_into`].
#[allow(clippy::too_many_arguments)]
unsafe fn multiply(pa: &[u16], pb: &[u32], m: usize, n: usize, kt: usize, c: *mut f32, c_rs: usize, accumulate: bool, parallel: bool) {
    let (mt, nt) = (tile_pairs(m), tile_pairs(n));
    assert!(pa.len() == mt * kt * TILE && pb.len() == nt * kt * TILE / 2, "operands packed for these shapes");
    let c_ptr = OutPtr(c);
    let row_pairs = mt / 2;
    (0..row_pairs).into_par_iter().with_min_len(if parallel { 1 } else { row_pairs }).for_each(|row_pair| {
        let _tiles = TileRegisters::configure();
        let mut scratch = [0.0f32; 4 * T * T];
        #[allow(clippy::redundant_locals)] // the wrapper, not its field, moves into the closure
        let c_ptr = c_ptr;
        for col_pair in 0..nt / 2 {
            let (i0, j0) = (row_pair * 2 * T, col_pair * 2 * T);
            let (rows, cols) = ((m - i0).min(2 * T), (n - j0).min(2 * T));
            let a0 = pa[(2 * row_pair) * kt * TILE..].as_ptr();
            let a1 = pa[(2 * row_pair + 1) * kt * TILE..].as_ptr();
            let b0 = pb[(2 * col_pair) * kt * TILE / 2..].as_ptr() as *const u16;
            let b1 = pb[(2 * col_pair + 1) * kt * TILE / 2..].as_ptr() as *const u16;
            // SAFETY: the packed operands hold `kt` tiles per tile row/column; the output block
            // is either wholly inside `c` (checked above) or goes through `scratch`.
            unsafe {
                let out = c_ptr.0.add(i0 * c_rs + j0);
                if rows == 2 * T && cols == 2 * T {
                    block(a0, a1, b0, b1, kt, out, c_rs, accumulate);
                } else {
                    for r in 0..rows {
                        for j in 0..cols {
                            scratch[r * 2 * T + j] = if accumulate { *out.add(r * c_rs + j) } else { 0.0 };
                        }
                    }
                    block(a0, a1, b0, b1, kt, scratch.as_mut_ptr(), 2 * T, true);
                    for r in 0..rows {
                        for j in 0..cols {
                            *out.add(r * c_rs + j) = scratch[r * 2 * T + j];
                        }
                    }
                }
            }
        }
    });
}

/// This thread's tile registers, configured as eight 16 × 64-byte tiles; released on drop.
struct TileRegisters;

#[cfg(target_arch = "x86_64")]
#[repr(C, align(64))]
struct TileConfig {
    palette: u8,
    start_row: u8,
    reserved: [u8; 14],
    bytes_per_row: [u16; 16],
    rows: [u8; 16],
}

#[cfg(target_arch = "x86_64")]
impl TileRegisters {
    fn configure() -> Self {
        let mut config = TileConfig { palette: 1, start_row: 0, reserved: [0; 14], bytes_per_row: [0; 16], rows: [0; 16] };
        for t in 0..8 {
            config.bytes_per_row[t] = 64;
            config.rows[t] = T as u8;
        }
        // SAFETY: `available()` was checked by `matmul`; the config is a valid palette-1 layout.
        unsafe { std::arch::asm!("ldtilecfg [{}]", in(reg) &config, options(nostack, readonly)) };
        TileRegisters
    }
}

#[cfg(target_arch = "x86_64")]
impl Drop for TileRegisters {
    fn drop(&mut self) {
        // SAFETY: releases the state `configure` set up.
        unsafe { std::arch::asm!("tilerelease", options(nostack, nomem)) };
    }
}

/// One 32 × 32 block of the output at `c` (row stride `c_rs` floats): tiles 0–3 accumulate
/// `a0/a1` (tiles 4, 5) times `b0/b1` (tiles 6, 7) over `kt` packed tiles each.
///
/// SAFETY: tiles configured; `a*`/`b*` hold `kt` packed tiles; `c` a writable 32 × 32 block.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
unsafe fn block(a0: *const u16, a1: *const u16, b0: *const u16, b1: *const u16, kt: usize, c: *mut f32, c_rs: usize, accumulate: bool) {
    let stride = c_rs * 4;
    let c01 = unsafe { c.add(T) };
    let c10 = unsafe { c.add(T * c_rs) };
    let c11 = unsafe { c.add(T * c_rs + T) };
    unsafe {
        if accumulate {
            std::arch::asm!(
                "tileloadd tmm0, [{c00} + {s}*1]",
                "tileloadd tmm1, [{c01} + {s}*1]",
                "tileloadd tmm2, [{c10} + {s}*1]",
                "tileloadd tmm3, [{c11} + {s}*1]",
                c00 = in(reg) c, c01 = in(reg) c01, c10 = in(reg) c10, c11 = in(reg) c11, s = in(reg) stride,
                options(nostack, readonly),
            );
        } else {
            std::arch::asm!("tilezero tmm0", "tilezero tmm1", "tilezero tmm2", "tilezero tmm3", options(nostack, nomem));
        }
        std::arch::asm!(
            "2:",
            "tileloadd tmm4, [{a0} + {s}*1]",
            "tileloadd tmm6, [{b0} + {s}*1]",
            "tdpbf16ps tmm0, tmm4, tmm6",
            "tileloadd tmm7, [{b1} + {s}*1]",
            "tdpbf16ps tmm1, tmm4, tmm7",
            "tileloadd tmm5, [{a1} + {s}*1]",
            "tdpbf16ps tmm2, tmm5, tmm6",
            "tdpbf16ps tmm3, tmm5, tmm7",
            "add {a0}, 1024",
            "add {a1}, 1024",
            "add {b0}, 1024",
            "add {b1}, 1024",
            "dec {kt}",
            "jnz 2b",
            a0 = inout(reg) a0 => _, a1 = inout(reg) a1 => _, b0 = inout(reg) b0 => _, b1 = inout(reg) b1 => _,
            kt = inout(reg) kt => _, s = in(reg) 64usize,
            options(nostack, readonly),
        );
        std::arch::asm!(
            "tilestored [{c00} + {s}*1], tmm0",
            "tilestored [{c01} + {s}*1], tmm1",
            "tilestored [{c10} + {s}*1], tmm2",
            "tilestored [{c11} + {s}*1], tmm3",
            c00 = in(reg) c, c01 = in(reg) c01, c10 = in(reg) c10, c11 = in(reg) c11, s = in(reg) stride,
            options(nostack),
        );
    }
}

// Elsewhere `available()` is false and `matmul` never gets this far; these let it compile.
#[cfg(not(target_arch = "x86_64"))]
impl TileRegisters {
    fn configure() -> Self {
        unreachable!("AMX exists on x86-64 only")
    }
}

#[cfg(not(target_arch = "x86_64"))]
#[allow(clippy::too_many_arguments)]
unsafe fn block(_: *const u16, _: *const u16, _: *const u16, _: *const u16, _: usize, _: *mut f32, _: usize, _: bool) {
    unreachable!("AMX exists on x86-64 only")
}

#[cfg(test)]
mod tests {
    use super::pack::bf16;
    use super::*;

    fn reference(m: usize, n: usize, k: usize, a: Mat, b: Mat) -> Vec<f32> {
        let mut c = vec![0.0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                // The same bf16 products, summed in f64: only the summation order differs.
                let round = |x: f32| f32::from_bits((bf16(x) as u32) << 16);
                c[i * n + j] = (0..k).map(|p| unsafe { round(a.at(i, p)) as f64 * round(b.at(p, j)) as f64 }).sum::<f64>() as f32;
            }
        }
        c
    }

    fn values(len: usize, seed: u32) -> Vec<f32> {
        (0..len as u32).map(|i| ((i.wrapping_mul(2654435761).wrapping_add(seed) >> 8) % 2001) as f32 / 1000.0 - 1.0).collect()
    }

    #[test]
    fn amx_matmul_matches_bf16_products_for_ragged_shapes_and_transposes() {
        if !available() {
            eprintln!("no AMX here: nothing to check");
            return;
        }
        for &(m, n, k) in &[(1, 1, 1), (17, 33, 31), (64, 64, 64), (40, 70, 100), (96, 32, 257)] {
            let (a, b) = (values(m * k, 1), values(n * k, 2));
            // Each operand row-major and transposed (as the backward pass's `xᵀ` and `wᵀ` are):
            // every packing path, whole tiles and ragged ones.
            for (am, bm) in [
                (Mat::rows(&a, k), Mat::rows(&b, n)),
                (Mat::transposed(&a, m), Mat::transposed(&b, k)),
                (Mat::rows(&a, k), Mat::transposed(&b, k)),
                (Mat::transposed(&a, m), Mat::rows(&b, n)),
            ] {
                let want = reference(m, n, k, am, bm);
                let mut c = vec![0.5f32; m * n];
                matmul(m, n, k, am, bm, &mut c, n, false);
                for (got, want) in c.iter().zip(&want) {
                    assert!((got - want).abs() < 1e-3 * (1.0 + want.abs()), "{m}×{n}×{k}: {got} vs {want}");
                }
                matmul(m, n, k, am, bm, &mut c, n, true);
                for (got, want) in c.iter().zip(&want) {
                    assert!((got - 2.0 * want).abs() < 2e-3 * (1.0 + want.abs()), "{m}×{n}×{k} accumulated: {got} vs {want}");
                }
            }
        }
    }
}
