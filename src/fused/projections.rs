//! An attention layer's queries, keys and values at inference, as one op.
//!
//! Made separately they are three linear ops and two rotary-then-norm ops, each split between the
//! threads and joined again: five hand-offs a layer, in a denoising step of about fifty ops. Here
//! each thread takes a block of rows and computes its queries, keys and values (on that thread
//! alone, through the kernel the linear op would use for these rows; on the AMX tiles, with
//! `--matmul bf16`, its rows packed once for the three products), then rotates and normalises its
//! queries and keys in place: one hand-off. The output is the three products stacked, each
//! token-major (a head's rows `width` apart, as a linear layer writes them), which the attention
//! kernel reads through its strides. Each element is computed as the separate ops compute it.

use super::linear::{FusedLinear, Kernel, packed_weight};
use super::matmul::product_on_this_thread;
use super::pointwise::{FusedPointwise, rotate_normalise_in_place};
use super::{Mat, OutPtr, amx, contiguous_data, tensor, unpacked, written};
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::{Autodiff, AutodiffBackend, Backend, Flex, backend_extension, tensor::FloatTensor};
use burn::backend::TensorMetadata;
use burn::backend::ops::FloatTensorOps;
use burn_flex::FlexTensor;
use rayon::prelude::*;
use std::mem::MaybeUninit;

#[backend_extension(Flex, Autodiff)]
pub trait FusedProjections: Backend {
    /// `[3, batch, seq, width]`: `x · w` for `w_q`, `w_k` and `w_v` (`x` `[batch, seq, in]`, each
    /// `w` `[in, width]`), the first two rotated by `cos` and `sin` (`[1, 1, seq, head_dim / 2]`)
    /// and RMS-normalised over each of their `heads` heads.
    #[allow(clippy::too_many_arguments)]
    fn fused_projections(x: FloatTensor<Self>, w_q: FloatTensor<Self>, w_k: FloatTensor<Self>, w_v: FloatTensor<Self>, cos: FloatTensor<Self>, sin: FloatTensor<Self>, heads: usize, eps: f32) -> FloatTensor<Self>;
}

impl FusedProjections for Flex {
    fn fused_projections(x: FlexTensor, w_q: FlexTensor, w_k: FlexTensor, w_v: FlexTensor, cos: FlexTensor, sin: FlexTensor, heads: usize, eps: f32) -> FlexTensor {
        let w = [w_q, w_k, w_v].map(|w| w.to_contiguous());
        forward(&x.to_contiguous(), [&w[0], &w[1], &w[2]], &cos.to_contiguous(), &sin.to_contiguous(), heads, eps)
    }
}

impl<C: CheckpointStrategy> FusedProjections for Autodiff<Flex, C> {
    /// Untracked, the one op; tracked (a training step), the separate ops, each with its own
    /// backward pass.
    fn fused_projections(x: FloatTensor<Self>, w_q: FloatTensor<Self>, w_k: FloatTensor<Self>, w_v: FloatTensor<Self>, cos: FloatTensor<Self>, sin: FloatTensor<Self>, heads: usize, eps: f32) -> FloatTensor<Self> {
        if [&x, &w_q, &w_k, &w_v].iter().all(|t| !t.is_tracked()) {
            let inner = Self::inner;
            return Self::from_inner(Flex::fused_projections(inner(x), inner(w_q), inner(w_k), inner(w_v), inner(cos), inner(sin), heads, eps));
        }
        let [b, t, _] = x.shape().dims();
        let project = |w: FloatTensor<Self>, rotate: bool| {
            let y = Self::fused_linear(x.clone(), w);
            let width = y.shape()[2];
            let y = if rotate {
                let y = Self::float_swap_dims(Self::float_reshape(y, [b, t, heads, width / heads].into()), 1, 2);
                Self::float_swap_dims(Self::fused_rope_rms_norm(y, cos.clone(), sin.clone(), eps), 1, 2)
            } else {
                y
            };
            Self::float_reshape(y, [1, b, t, width].into())
        };
        Self::float_cat(vec![project(w_q, true), project(w_k, true), project(w_v, false)], 0)
    }
}

fn forward(x: &FlexTensor, w: [&FlexTensor; 3], cos: &FlexTensor, sin: &FlexTensor, heads: usize, eps: f32) -> FlexTensor {
    let s = x.layout().shape();
    assert_eq!(s.num_dims(), 3, "fused projections: the input is [batch, seq, in]");
    let (b, t, d_in) = (s[0], s[1], s[2]);
    let width = w[0].layout().shape()[1];
    for w in w {
        let s = w.layout().shape();
        assert!(s.num_dims() == 2 && s[0] == d_in && s[1] == width, "fused projections: each weight is [in, width]");
    }
    assert!(heads > 0 && width.is_multiple_of(2 * heads), "fused projections: heads of an even width");
    let half = width / heads / 2;
    let (cos, sin) = (contiguous_data(cos), contiguous_data(sin));
    assert_eq!(cos.len(), t * half, "rotary tables must cover the sequence");
    let (rows, xs, ws) = (b * t, contiguous_data(x), w.map(contiguous_data));
    if d_in == 0 {
        // No inputs: every product is zero, and so is its normalised rotation.
        return tensor(vec![0.0; 3 * rows * width], [3, b, t, width]);
    }
    // One block of rows per thread: every hand-off costs, and each block keeps a thread busy.
    let block = rows.div_ceil(rayon::current_num_threads()).max(1);
    // The kernel `linear` would use for these rows, chosen on the calling thread (whose precision
    // the tasks on other threads do not see); on the tiles, the weights as inference keeps them.
    let kernel = Kernel::for_rows(rows, true);
    let tiles = (kernel == Kernel::KeptTiles).then(|| w.map(packed_weight));
    let fill = |out: &mut [MaybeUninit<f32>]| {
        let out = OutPtr(out.as_mut_ptr().cast::<f32>());
        (0..rows.div_ceil(block)).into_par_iter().for_each(|task| {
            let (r0, r1) = (task * block, ((task + 1) * block).min(rows));
            let x = &xs[r0 * d_in..r1 * d_in];
            // On the tiles, the block's inputs are packed once for the three products.
            let on_tiles = tiles.as_ref().map(|w| (amx::PackedA::on_this_thread(Mat::rows(x, d_in), r1 - r0, d_in), w));
            for (p, w) in ws.iter().enumerate() {
                // SAFETY: rows r0..r1 of product p lie inside the 3 × rows × width output, and only
                // this task writes them; `x`'s rows and `w` are the described matrices.
                let y = unsafe {
                    let y = out.add((p * rows + r0) * width);
                    match (&on_tiles, kernel) {
                        (Some((x, w)), _) => amx::packed_product_on_this_thread(x, &w[p], y, width),
                        (None, Kernel::Unpacked) => unpacked::matmul_on_this_thread(x, w, OutPtr(y), r1 - r0, d_in, width),
                        (None, _) => product_on_this_thread(r1 - r0, width, d_in, Mat::rows(x, d_in), Mat::rows(w, width), y, width),
                    }
                    std::slice::from_raw_parts_mut(y, (r1 - r0) * width)
                };
                if p == 2 {
                    continue; // values are neither rotated nor normalised
                }
                for (r, row) in (r0..r1).zip(y.chunks_exact_mut(width)) {
                    let pos = r % t;
                    let (c, s) = (&cos[pos * half..(pos + 1) * half], &sin[pos * half..(pos + 1) * half]);
                    row.chunks_exact_mut(2 * half).for_each(|head| rotate_normalise_in_place(head, c, s, eps));
                }
            }
        });
    };
    // SAFETY: the tasks' blocks cover every row of each product, and each product writes its rows
    // in full.
    let out = unsafe { written(3 * rows * width, fill) };
    tensor(out, [3, b, t, width])
}
