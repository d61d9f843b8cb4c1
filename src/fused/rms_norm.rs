//! Parameter-free RMSNorm as one op: one parallel pass forward, one backward, where the plain
//! composition runs five ops forward (square, mean, add, sqrt, divide) and their backward passes
//! one after the other on one thread.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::{Autodiff, Backend, Flex, backend_extension, tensor::FloatTensor};
use super::{contiguous_data as rows, tensor, written};
use std::mem::MaybeUninit;
use burn_flex::FlexTensor;
use rayon::prelude::*;

/// Rows per parallel task: big enough that scheduling is noise next to the arithmetic.
const ROWS_PER_TASK: usize = 64;

#[backend_extension(Flex, Autodiff)]
pub trait FusedRmsNorm: Backend {
    fn fused_rms_norm(x: FloatTensor<Self>, eps: f32) -> FloatTensor<Self>;
}

impl FusedRmsNorm for Flex {
    fn fused_rms_norm(x: FlexTensor, eps: f32) -> FlexTensor {
        forward(&x.to_contiguous(), eps)
    }
}

#[derive(Debug)]
struct RmsNormBackward;

impl Backward<Flex, 1> for RmsNormBackward {
    /// The input (contiguous) and eps.
    type State = (FlexTensor, f32);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad_out = grads.consume::<Flex>(&ops.node).to_contiguous();
        let [parent] = ops.parents;
        let Some(node) = parent else { return };
        let (x, eps) = ops.state;
        let n = last_dim(&x);
        let task = (n * ROWS_PER_TASK).max(1); // an empty tensor has no chunks
        let fill = |dx: &mut [std::mem::MaybeUninit<f32>]| {
            dx.par_chunks_mut(task).zip(rows(&x).par_chunks(task)).zip(rows(&grad_out).par_chunks(task)).for_each(|((dx, x), dy)| {
                for ((dx, x), dy) in dx.chunks_exact_mut(n).zip(x.chunks_exact(n)).zip(dy.chunks_exact(n)) {
                    // y = x·r with r = (mean(x²) + eps)^(−1/2):  dx = r·dy − (r³/n)·x·Σ(dy·x)
                    let r = inv_rms(x, eps);
                    let c = r * r * r * dot(dy, x) / n as f32;
                    for ((g, &x), &dy) in dx.iter_mut().zip(x).zip(dy) {
                        g.write(r * dy - c * x);
                    }
                }
            })
        };
        // SAFETY: the tasks cover the gradient, whole rows each, and write every element.
        let dx = unsafe { written(x.layout().num_elements(), fill) };
        grads.register::<Flex>(node.id, like(dx, &x));
    }
}

impl<C: CheckpointStrategy> FusedRmsNorm for Autodiff<Flex, C> {
    fn fused_rms_norm(x: FloatTensor<Self>, eps: f32) -> FloatTensor<Self> {
        match RmsNormBackward.prepare::<C>([x.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let x = x.into_primitive().to_contiguous();
                let y = forward(&x, eps);
                prep.finish((x, eps), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(forward(&x.into_primitive().to_contiguous(), eps)),
        }
    }
}

fn forward(x: &FlexTensor, eps: f32) -> FlexTensor {
    let n = last_dim(x);
    let task = (n * ROWS_PER_TASK).max(1); // an empty tensor has no chunks
    let fill = |y: &mut [MaybeUninit<f32>]| {
        y.par_chunks_mut(task).zip(rows(x).par_chunks(task)).for_each(|(y, x)| {
            for (y, x) in y.chunks_exact_mut(n).zip(x.chunks_exact(n)) {
                let r = inv_rms(x, eps);
                for (y, &x) in y.iter_mut().zip(x) {
                    y.write(x * r);
                }
            }
        })
    };
    // SAFETY: the rows of `x` and `y` pair up, and every element of each row is written.
    let y = unsafe { written(x.layout().num_elements(), fill) };
    like(y, x)
}

/// `row` RMS-normalised in place: the arithmetic of [`forward`] for one row.
pub(super) fn normalise_in_place(row: &mut [f32], eps: f32) {
    let r = inv_rms(row, eps);
    row.iter_mut().for_each(|v| *v *= r);
}

fn inv_rms(row: &[f32], eps: f32) -> f32 {
    1.0 / (dot(row, row) / row.len() as f32 + eps).sqrt()
}

/// A dot product the compiler vectorises: eight running sums instead of one.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut sums = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            sums[i] += x[i] * y[i];
        }
    }
    sums.iter().sum::<f32>() + tail
}

fn last_dim(x: &FlexTensor) -> usize {
    let shape = x.layout().shape();
    shape[shape.num_dims() - 1]
}

fn like(data: Vec<f32>, x: &FlexTensor) -> FlexTensor {
    tensor(data, x.layout().shape().clone())
}
