//! The matrix products of a training step (the linear layers' three matmuls and Muon's
//! Newton–Schulz iterations) and of inference in bf16, in the precision in force (`--matmul`).
//!
//! Both precisions take strided operands, so a transposed weight or input is read in place: Burn's
//! autodiff matmul copies a transposed operand into a contiguous one first, and zero-fills and
//! adds gradients as separate passes. On an AVX2-only CPU, where every step is f32, running the
//! linear layers and Muon through here made a `small` training step faster (docs/performance.md).

use super::OutPtr;
use super::amx::{self, Mat};
use rayon::prelude::*;
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};

/// How matrices are multiplied: a training step's (`train --matmul`, bf16 by default) and
/// inference's (`--matmul` of the commands that run a model, f32 by default).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Matmul {
    /// bf16 products summed in f32 on the AMX tiles, where the CPU has them (f32 elsewhere): the
    /// mixed precision PyTorch's autocast trains in; 1.6× faster training steps on an AMX Xeon
    /// for the same loss, and denoising steps twice as fast (docs/performance.md).
    #[default]
    Bf16,
    /// f32 throughout: the same text on every CPU.
    F32,
}

impl Matmul {
    /// Makes this thread's products run in this precision (where the CPU has it) until the guard
    /// drops: the [`super::linear`] layers, attention and Muon multiply through [`matmul`]. A
    /// training step applies its own; inference runs in f32 unless the process was set to bf16
    /// ([`set_inference_matmul`]), so that by default decoded text does not depend on the CPU.
    pub fn apply(self) -> MatmulGuard {
        MatmulGuard(MATMUL_IN_FORCE.replace(Some(self.on_this_cpu())))
    }

    /// The precision this setting gives on this CPU: bf16 only where there are AMX tiles.
    pub fn on_this_cpu(self) -> Matmul {
        if self == Matmul::Bf16 && amx::available() { Matmul::Bf16 } else { Matmul::F32 }
    }
}

thread_local! {
    static MATMUL_IN_FORCE: Cell<Option<Matmul>> = const { Cell::new(None) };
}

/// The precision this thread's products run in ([`Matmul::apply`]); `None` where nothing was
/// applied: inference in f32, through the kernels that serve it best (a few rows read the weights
/// in place, the three projections run as one op).
pub fn matmul_in_force() -> Option<Matmul> {
    MATMUL_IN_FORCE.get()
}

/// Whether this process's inference multiplies in bf16 ([`set_inference_matmul`]).
static INFERENCE_BF16: AtomicBool = AtomicBool::new(false);

/// Sets the precision of every computation this process runs outside a training step (`--matmul`
/// of generate, eval, the TUI, life, compare): bf16 only where the CPU has AMX tiles.
pub fn set_inference_matmul(matmul: Matmul) {
    INFERENCE_BF16.store(matmul.on_this_cpu() == Matmul::Bf16, Ordering::Relaxed);
}

/// The precision a computation outside a training step runs in: bf16 where
/// [`set_inference_matmul`] asked for it on an AMX CPU, else `None` (f32, [`matmul_in_force`]).
pub fn inference_matmul() -> Option<Matmul> {
    INFERENCE_BF16.load(Ordering::Relaxed).then_some(Matmul::Bf16)
}

/// Restores what was in force before [`Matmul::apply`].
pub struct MatmulGuard(Option<Matmul>);

impl Drop for MatmulGuard {
    fn drop(&mut self) {
        MATMUL_IN_FORCE.set(self.0);
    }
}

/// `c[i, j] (+)= Σ_p a[i, p] · b[p, j]` for `a` `[m, k]`, `b` `[k, n]`, `c` row-major with row
/// stride `c_rs`; `accumulate` adds to `c` instead of overwriting it. In bf16 on the AMX tiles
/// while this thread trains in [`Matmul::Bf16`], else in f32 with the gemm crate (burn-flex's own
/// matmul). Runs on the current rayon pool. `a` and `b` must describe memory that holds them.
#[allow(clippy::too_many_arguments)]
pub fn matmul(m: usize, n: usize, k: usize, a: Mat, b: Mat, c: &mut [f32], c_rs: usize, accumulate: bool) {
    if matmul_in_force() == Some(Matmul::Bf16) {
        return amx::matmul(m, n, k, a, b, c, c_rs, accumulate);
    }
    if m == 0 || n == 0 {
        return;
    }
    assert!(c.len() >= (m - 1) * c_rs + n, "output buffer too small");
    // SAFETY: `c` holds the output (checked above); `a` and `b` hold theirs (the caller's
    // contract, as for the AMX kernel).
    unsafe { gemm_f32(m, n, k, a, b, c.as_mut_ptr(), c_rs, accumulate) };
}

/// Rows and columns of the blocks [`gram`] multiplies: small enough that a 256-row product has
/// ten blocks on and above the diagonal to share between threads.
const GRAM_BLOCK: usize = 64;

/// `c = xᵀ · x` for `x` `[k, m]` (row-major, contiguous), into `c` `[m, m]`: the Gram matrix of
/// x's columns, or for a symmetric `x` its square. In f32 the product's symmetry halves the work:
/// only the blocks on and above the diagonal are multiplied, in parallel, each on one thread, and
/// the others are their mirror images. On the AMX tiles (a bf16 training step) it is one product,
/// as Muon's was before: there each block would pack its operands again, and blocks were not
/// measured. Both operands are views of `x` that gemm packs quickly: read as the transpose of a
/// row-major matrix, the right-hand side made a single-threaded 256 × 256 × 1024 product 1.5×
/// slower (measured). In f32 a diagonal block comes out symmetric bit for bit: its two halves sum
/// the same products in the same order.
pub fn gram(k: usize, m: usize, x: &[f32], c: &mut [f32]) {
    assert!(x.len() == k * m && c.len() == m * m, "gram: x is k × m and c is m × m");
    if k == 0 {
        c.fill(0.0);
        return;
    }
    let (lhs, rhs) = (Mat::transposed(x, m), Mat::rows(x, m));
    if matmul_in_force() == Some(Matmul::Bf16) {
        return matmul(m, m, k, lhs, rhs, c, m, false);
    }
    let blocks = m.div_ceil(GRAM_BLOCK);
    let pairs: Vec<(usize, usize)> = (0..blocks).flat_map(|i| (i..blocks).map(move |j| (i, j))).collect();
    let span = |b: usize| (b * GRAM_BLOCK, GRAM_BLOCK.min(m - b * GRAM_BLOCK));
    let out = OutPtr(c.as_mut_ptr());
    pairs.par_iter().for_each(|&(i, j)| {
        let ((i0, bi), (j0, bj)) = (span(i), span(j));
        // SAFETY: the block lies inside `c` (m × m, checked above) and no other task writes it;
        // the views lie inside `x` (k × m, checked above).
        unsafe { product_on_this_thread(bi, bj, k, lhs.from_row(i0), rhs.from_col(j0), out.add(i0 * m + j0), m) };
    });
    for i0 in (GRAM_BLOCK..m).step_by(GRAM_BLOCK) {
        // The rows of a block left of its diagonal block: the mirror of the columns above it.
        in_tiles(GRAM_BLOCK.min(m - i0), i0, |r, j| c[(i0 + r) * m + j] = c[j * m + i0 + r]);
    }
}

/// A row-major `[rows, cols]` matrix's transpose, row-major `[cols, rows]`, on the current rayon
/// pool: each task writes [`TILE`] whole rows of the transpose (columns of `x`), reading `x` a
/// [`TILE`]-wide strip of each row at a time. Muon transposes every wide weight's update in and
/// out: in a `base` training step one thread, tile by tile through a closure per element, took
/// 1.1–1.4 ms each way for the 384 × 1536 weight, this 0.3–0.7 (measured).
pub fn transpose(x: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    assert_eq!(x.len(), rows * cols, "transpose: the matrix is rows × cols");
    if x.is_empty() {
        return Vec::new();
    }
    let fill = |t: &mut [std::mem::MaybeUninit<f32>]| {
        t.par_chunks_mut(TILE * rows).enumerate().for_each(|(block, out)| {
            let (j0, width) = (block * TILE, out.len() / rows);
            for i in 0..rows {
                for (dj, &v) in x[i * cols + j0..i * cols + j0 + width].iter().enumerate() {
                    out[dj * rows + i].write(v);
                }
            }
        });
    };
    // SAFETY: the chunks cover the transpose, and each writes all `width` × `rows` of its elements.
    unsafe { super::written(x.len(), fill) }
}

/// The side of the square tiles [`in_tiles`] and [`transpose`] work through.
const TILE: usize = 16;

/// Calls `f(i, j)` for every `i < rows`, `j < cols`, in 16 × 16 tiles: a loop that reads row `i`
/// and writes column `i` (a transpose) then touches only 16 cache lines of each side at a time.
/// Row by row, each write went to another line, and Muon's iteration of a 256 × 256 weight took a
/// third longer (measured).
fn in_tiles(rows: usize, cols: usize, mut f: impl FnMut(usize, usize)) {
    for i0 in (0..rows).step_by(TILE) {
        for j0 in (0..cols).step_by(TILE) {
            for i in i0..(i0 + TILE).min(rows) {
                for j in j0..(j0 + TILE).min(cols) {
                    f(i, j);
                }
            }
        }
    }
}

/// The gemm crate's f32 product on the current rayon pool: `c (+)= a · b`; gemm computes
/// dst = alpha·dst + beta·lhs·rhs, and reads `c` only when `accumulate`.
///
/// # Safety
/// `c` must address `m` rows of `n` elements `c_rs` apart, and `a` and `b` memory that holds them.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_f32(m: usize, n: usize, k: usize, a: Mat, b: Mat, c: *mut f32, c_rs: usize, accumulate: bool) {
    // SAFETY: the caller's contract.
    unsafe { gemm_f32_on(gemm::Parallelism::Rayon(rayon::current_num_threads()), m, n, k, a, b, c, c_rs, accumulate) }
}

/// `c = a · b` in f32 on this thread alone, for a kernel that splits the work itself.
///
/// # Safety
/// As [`gemm_f32`].
pub(super) unsafe fn product_on_this_thread(m: usize, n: usize, k: usize, a: Mat, b: Mat, c: *mut f32, c_rs: usize) {
    // SAFETY: the caller's contract.
    unsafe { gemm_f32_on(gemm::Parallelism::None, m, n, k, a, b, c, c_rs, false) }
}

/// # Safety
/// As [`gemm_f32`].
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_f32_on(parallelism: gemm::Parallelism, m: usize, n: usize, k: usize, a: Mat, b: Mat, c: *mut f32, c_rs: usize, accumulate: bool) {
    // SAFETY: the caller's contract.
    unsafe {
        gemm::gemm(
            m, n, k,
            c, 1, c_rs as isize, accumulate,
            a.ptr, a.cs as isize, a.rs as isize,
            b.ptr, b.cs as isize, b.rs as isize,
            1.0, 1.0, false, false, false, parallelism,
        );
    }
}

/// `a · b` (`a` `[m, k]`, `b` `[k, n]`) as a new row-major `[m, n]` buffer, through [`matmul`].
/// The product is written straight into fresh memory: zero-filling it first cost a pass over
/// every linear layer's output (burn-flex's own matmul also copied each output once more to
/// align it: 3–4% of a denoising step in `perf`, docs/performance.md).
pub fn product(m: usize, n: usize, k: usize, a: Mat, b: Mat) -> Vec<f32> {
    if m == 0 || n == 0 || k == 0 {
        return vec![0.0f32; m * n];
    }
    let bf16 = matmul_in_force() == Some(Matmul::Bf16);
    // SAFETY: either kernel writes every one of the m × n elements (k > 0) and, not accumulating,
    // reads none before; `a` and `b` hold theirs (the caller's contract).
    unsafe {
        super::written(m * n, |c| {
            let c = c.as_mut_ptr().cast();
            if bf16 { amx::matmul_into(m, n, k, a, b, c, n, false) } else { gemm_f32(m, n, k, a, b, c, n, false) }
        })
    }
}
