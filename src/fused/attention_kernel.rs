//! The CPU kernels behind fused attention: per (batch, head), two matmuls around a row softmax,
//! and the four matmuls of the backward pass. Heads run in parallel on rayon; each head's
//! matmuls run single-threaded through the `gemm` crate (the one burn-flex uses), or on the AMX
//! tiles where products run in bf16 (a training step's, or inference with `--matmul bf16`), as
//! the linear layers' do (the precision of PyTorch's autocast, whose attention multiplies bf16
//! too).

use super::heads::{Heads, HeadsMut};
use super::{Mat, Matmul, amx, matmul_in_force};
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// Shapes shared by every head. Queries may be fewer than keys (a denoising step that needs
/// outputs at a few positions only).
#[derive(Clone, Copy, Debug)]
pub struct Dims {
    /// Heads in all: batch × heads.
    pub heads: usize,
    pub seq_q: usize,
    pub seq_kv: usize,
    pub head_dim: usize,
    pub scale: f32,
    /// Query `i` sees keys `0..=i + seq_kv − seq_q` only (the queries are the last rows).
    pub causal: bool,
}

impl Dims {
    /// How many keys query row `i` sees.
    fn visible(&self, i: usize) -> usize {
        if self.causal { (i + 1 + self.seq_kv).saturating_sub(self.seq_q).min(self.seq_kv) } else { self.seq_kv }
    }
}

/// `dst[m, n] = beta · lhs[m, k] · rhs[k, n]` where lhs and rhs are given by their row and column
/// strides, and dst by its row stride; in bf16 on the AMX tiles where `bf16`.
///
/// # Safety
/// Every pointer/stride pair must address memory of the sizes given, and no other thread may
/// touch `dst`'s rows meanwhile.
#[allow(clippy::too_many_arguments)]
unsafe fn matmul(dst: *mut f32, dst_rs: usize, m: usize, n: usize, k: usize, lhs: (*const f32, isize, isize), rhs: (*const f32, isize, isize), beta: f32, bf16: bool) {
    if bf16 {
        let mat = |(ptr, rs, cs): (*const f32, isize, isize)| Mat { ptr, rs: rs as usize, cs: cs as usize };
        // SAFETY: the caller's contract; the kernel writes all of dst's m × n.
        unsafe { amx::product_on_this_thread(m, n, k, mat(lhs), mat(rhs), dst, dst_rs) };
        if beta != 1.0 {
            for i in 0..m {
                // SAFETY: row i of dst, n elements, is this call's.
                unsafe { std::slice::from_raw_parts_mut(dst.add(i * dst_rs), n) }.iter_mut().for_each(|x| *x *= beta);
            }
        }
        return;
    }
    // SAFETY: the caller's contract; gemm reads lhs and rhs and writes only dst.
    unsafe {
        gemm::gemm(
            m, n, k,
            dst, 1, dst_rs as isize,
            false,
            lhs.0, lhs.2, lhs.1,
            rhs.0, rhs.2, rhs.1,
            0.0, beta,
            false, false, false,
            gemm::Parallelism::None,
        );
    }
}

/// Whether this thread's products run in bf16 ([`Matmul::apply`]): read on the calling thread,
/// as the heads' tasks run on others.
fn bf16() -> bool {
    matmul_in_force() == Some(Matmul::Bf16)
}

/// Forward pass: `out = softmax(scale · q kᵀ) v`, each head written where `out` says. When
/// `probs` is given (contiguous `[batch·heads, seq_q, seq_kv]`), the softmax is kept there for the
/// backward pass: every element written, so it need not be initialised.
pub fn forward(q: Heads, k: Heads, v: Heads, dims: Dims, out: HeadsMut, probs: Option<&mut [MaybeUninit<f32>]>) {
    let (tq, tk, hd) = (dims.seq_q, dims.seq_kv, dims.head_dim);
    if hd == 0 {
        return;
    }
    let bf16 = bf16();
    let head = |i: usize, p: *mut f32| {
        let (q, k, v) = (q.head(i), k.head(i), v.head(i));
        let (qs, ks, vs) = (q.row_stride as isize, k.row_stride as isize, v.row_stride as isize);
        let (o, os) = out.head(i);
        // SAFETY: the views hold each head (the callers' shapes); head i's output rows are
        // written by this task only; `p` has room for tq × tk scores, which the first matmul
        // writes in full (head_dim > 0) before anything reads them.
        unsafe { matmul(p, tk, tq, tk, hd, (q.ptr, qs, 1), (k.ptr, 1, ks), dims.scale, bf16) };
        let p = unsafe { std::slice::from_raw_parts_mut(p, tq * tk) };
        for (i, row) in p.chunks_exact_mut(tk).enumerate() {
            // A causal row's hidden keys get probability 0 (and so no gradient backward).
            let (seen, hidden) = row.split_at_mut(dims.visible(i));
            softmax_in_place(seen);
            hidden.fill(0.0);
        }
        unsafe { matmul(o, os, tq, hd, tk, (p.as_ptr(), tk as isize, 1), (v.ptr, vs, 1), 1.0, bf16) };
    };
    match probs {
        Some(probs) => probs.par_chunks_exact_mut(tq * tk).enumerate().for_each(|(i, p)| head(i, p.as_mut_ptr().cast())),
        // Each task's scores in a buffer of its own, not zero-filled: the first matmul writes it.
        None => (0..dims.heads).into_par_iter().for_each_init(|| Vec::<f32>::with_capacity(tq * tk), |p, i| head(i, p.as_mut_ptr())),
    }
}

/// Backward pass. With `dO` the output's gradient:
/// `dV = Pᵀ dO`, `dP = dO Vᵀ`, `dS = P ⊙ (dP − rowsum(dO ⊙ O))`, `dQ = scale · dS K`,
/// `dK = scale · dSᵀ Q`. Each gradient is written where `grads` says.
#[allow(clippy::too_many_arguments)]
pub fn backward(q: Heads, k: Heads, v: Heads, dims: Dims, out: Heads, probs: &[f32], grad_out: Heads, grads: [HeadsMut; 3]) {
    let (tq, tk, hd) = (dims.seq_q, dims.seq_kv, dims.head_dim);
    let [dq, dk, dv] = grads;
    let bf16 = bf16();
    probs.par_chunks_exact(tq * tk).enumerate().for_each_init(
        || vec![0.0f32; tq * tk],
        |ds, (i, p)| {
            let (q, k, v, o, d_o) = (q.head(i), k.head(i), v.head(i), out.head(i), grad_out.head(i));
            let (qs, ks, vs, dos) = (q.row_stride as isize, k.row_stride as isize, v.row_stride as isize, d_o.row_stride as isize);
            let ((dq, dq_rs), (dk, dk_rs), (dv, dv_rs)) = (dq.head(i), dk.head(i), dv.head(i));
            let tk_i = tk as isize;
            // SAFETY: the views hold each head (the callers' shapes); head i's gradient rows
            // are written by this task only.
            unsafe {
                matmul(dv, dv_rs, tk, hd, tq, (p.as_ptr(), 1, tk_i), (d_o.ptr, dos, 1), 1.0, bf16);
                matmul(ds.as_mut_ptr(), tk, tq, tk, hd, (d_o.ptr, dos, 1), (v.ptr, 1, vs), 1.0, bf16);
            }
            for (r, (ds_row, p_row)) in ds.chunks_exact_mut(tk).zip(p.chunks_exact(tk)).enumerate() {
                // SAFETY: row r of a head holds head_dim elements.
                let (o_row, do_row) = unsafe {
                    (std::slice::from_raw_parts(o.ptr.add(r * o.row_stride), hd), std::slice::from_raw_parts(d_o.ptr.add(r * d_o.row_stride), hd))
                };
                let delta: f32 = o_row.iter().zip(do_row).map(|(a, b)| a * b).sum();
                for (g, &p) in ds_row.iter_mut().zip(p_row) {
                    *g = p * (*g - delta);
                }
            }
            unsafe {
                matmul(dq, dq_rs, tq, hd, tk, (ds.as_ptr(), tk_i, 1), (k.ptr, ks, 1), dims.scale, bf16);
                matmul(dk, dk_rs, tk, hd, tq, (ds.as_ptr(), 1, tk_i), (q.ptr, qs, 1), dims.scale, bf16);
            }
        },
    );
}

/// Softmax of one row of scores, in place.
pub fn softmax_in_place(row: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if super::avx512() {
            // SAFETY: the CPU has the features the function is compiled for.
            return unsafe { softmax_avx512(row) };
        }
        if super::avx2() {
            // SAFETY: as above.
            return unsafe { softmax_avx2(row) };
        }
    }
    softmax_portable(row)
}

/// The same arithmetic, lane for lane, in one 16-wide register instead of two 8-wide ones.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn softmax_avx512(row: &mut [f32]) {
    softmax_portable(row)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn softmax_avx2(row: &mut [f32]) {
    softmax_portable(row)
}

/// Written so the compiler vectorises every loop: lane-wise max and sum accumulators, and an
/// `exp` with no library call.
#[inline(always)]
fn softmax_portable(row: &mut [f32]) {
    const LANES: usize = 16;
    let mut max = [f32::NEG_INFINITY; LANES];
    let mut chunks = row.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (m, &x) in max.iter_mut().zip(chunk) {
            *m = if x > *m { x } else { *m };
        }
    }
    let max = chunks.remainder().iter().chain(&max).fold(f32::NEG_INFINITY, |m, &x| if x > m { x } else { m });
    for x in row.iter_mut() {
        *x = exp(*x - max);
    }
    let mut sum = [0.0f32; LANES];
    let mut chunks = row.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (s, &x) in sum.iter_mut().zip(chunk) {
            *s += x;
        }
    }
    let inv = 1.0 / (chunks.remainder().iter().sum::<f32>() + sum.iter().sum::<f32>());
    for x in row.iter_mut() {
        *x *= inv;
    }
}

/// `e^x` for `x ≤ 0` (softmax arguments), within 2 ulp of `f32::exp` on that range: Cody–Waite range
/// reduction `x = n·ln 2 + r`, Cephes' degree-6 polynomial for `e^r`, and `2^n` built from its bits.
/// Arguments below −87 (where `e^x` leaves the normal range) give ≈ 1e-38 instead of 0: invisible in
/// a softmax whose largest term is 1.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    let n = (x * std::f32::consts::LOG2_E + 0.5).floor();
    let r = x - n * 0.693_359_4 + n * 2.121_944_4e-4;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_2e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 0.166_666_65;
    p = p * r + 0.5;
    let er = p * r * r + r + 1.0;
    // SAFETY: after the clamp, n is a whole number in [−126, 127], so it converts exactly. (An `as`
    // cast would do too, but its saturation rules keep the compiler from vectorising the loop.)
    let n = unsafe { n.to_int_unchecked::<i32>() };
    er * f32::from_bits(((n + 127) as u32) << 23)
}
