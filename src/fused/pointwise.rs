//! ReLU² and rotary embeddings as single ops: one parallel pass forward and one backward each,
//! where the plain compositions take two ops (relu, square) and eight (two narrows, four
//! multiplies, an add, a subtract and a concatenation), each with its own backward pass.

use super::heads::{Heads, HeadsLayout, dims as dims4, readable};
use super::rms_norm::{FusedRmsNorm, normalise_in_place};
use super::{contiguous_data, tensor, written};
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::{Autodiff, AutodiffBackend, Backend, Flex, backend_extension, tensor::FloatTensor};
use burn_flex::FlexTensor;
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// Elements per parallel task for the elementwise maps.
const CHUNK: usize = 16 * 1024;

#[backend_extension(Flex, Autodiff)]
pub trait FusedPointwise: Backend {
    /// `max(x, 0)²`.
    fn fused_relu_squared(x: FloatTensor<Self>) -> FloatTensor<Self>;
    /// Half-split rotation of `[batch, heads, seq, head_dim]` by tables `[.., seq, head_dim / 2]`.
    fn fused_rope(x: FloatTensor<Self>, cos: FloatTensor<Self>, sin: FloatTensor<Self>) -> FloatTensor<Self>;
    /// `fused_rope`, then RMSNorm of each head's rows: the queries' and keys' two ops as one pass.
    fn fused_rope_rms_norm(x: FloatTensor<Self>, cos: FloatTensor<Self>, sin: FloatTensor<Self>, eps: f32) -> FloatTensor<Self>;
}

impl FusedPointwise for Flex {
    fn fused_relu_squared(x: FlexTensor) -> FlexTensor {
        relu_squared(&x.to_contiguous())
    }
    fn fused_rope(x: FlexTensor, cos: FlexTensor, sin: FlexTensor) -> FlexTensor {
        rope(&readable(x), &cos.to_contiguous(), &sin.to_contiguous(), false, HeadsLayout::HeadMajor, None)
    }
    fn fused_rope_rms_norm(x: FlexTensor, cos: FlexTensor, sin: FlexTensor, eps: f32) -> FlexTensor {
        rope(&readable(x), &cos.to_contiguous(), &sin.to_contiguous(), false, HeadsLayout::HeadMajor, Some(eps))
    }
}

#[derive(Debug)]
struct ReluSquaredBackward;

impl Backward<Flex, 1> for ReluSquaredBackward {
    type State = FlexTensor;

    fn backward(self, ops: Ops<FlexTensor, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad_out = grads.consume::<Flex>(&ops.node).to_contiguous();
        let [Some(node)] = ops.parents else { return };
        let x = ops.state;
        let (xs, dys) = (contiguous_data(&x), contiguous_data(&grad_out));
        let fill = |dx: &mut [std::mem::MaybeUninit<f32>]| {
            dx.par_chunks_mut(CHUNK).zip(xs.par_chunks(CHUNK)).zip(dys.par_chunks(CHUNK)).for_each(|((dx, x), dy)| {
                for ((dx, &x), &dy) in dx.iter_mut().zip(x).zip(dy) {
                    dx.write(2.0 * x.max(0.0) * dy);
                }
            })
        };
        // SAFETY: the chunks cover the gradient, and each writes every element of its chunk.
        let dx = unsafe { written(xs.len(), fill) };
        grads.register::<Flex>(node.id, tensor(dx, x.layout().shape().clone()));
    }
}

#[derive(Debug)]
struct RopeBackward;

impl Backward<Flex, 3> for RopeBackward {
    /// The tables (the backward pass rotates the gradient the other way) and the input's layout,
    /// which its gradient takes: a head split's gradient then goes back without a copy.
    type State = (FlexTensor, FlexTensor, HeadsLayout);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad_out = readable(grads.consume::<Flex>(&ops.node));
        let [Some(node), _, _] = ops.parents else { return };
        let (cos, sin, layout) = ops.state;
        grads.register::<Flex>(node.id, rope(&grad_out, &cos, &sin, true, layout, None));
    }
}

impl<C: CheckpointStrategy> FusedPointwise for Autodiff<Flex, C> {
    fn fused_relu_squared(x: FloatTensor<Self>) -> FloatTensor<Self> {
        match ReluSquaredBackward.prepare::<C>([x.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let x = x.into_primitive().to_contiguous();
                let y = relu_squared(&x);
                prep.finish(x, y)
            }
            OpsKind::UnTracked(prep) => prep.finish(relu_squared(&x.into_primitive().to_contiguous())),
        }
    }

    fn fused_rope(x: FloatTensor<Self>, cos: FloatTensor<Self>, sin: FloatTensor<Self>) -> FloatTensor<Self> {
        let prep = RopeBackward.prepare::<C>([x.node(), cos.node(), sin.node()]).compute_bound().stateful();
        let x = readable(x.into_primitive());
        let (cos, sin) = (cos.into_primitive().to_contiguous(), sin.into_primitive().to_contiguous());
        let y = rope(&x, &cos, &sin, false, HeadsLayout::HeadMajor, None);
        match prep {
            OpsKind::Tracked(prep) => prep.finish((cos, sin, HeadsLayout::of(&x)), y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        }
    }

    /// Tracked, the two ops, each with its own backward pass; else the one pass.
    fn fused_rope_rms_norm(x: FloatTensor<Self>, cos: FloatTensor<Self>, sin: FloatTensor<Self>, eps: f32) -> FloatTensor<Self> {
        if x.is_tracked() {
            return Self::fused_rms_norm(Self::fused_rope(x, cos, sin), eps);
        }
        Self::from_inner(Flex::fused_rope_rms_norm(Self::inner(x), Self::inner(cos), Self::inner(sin), eps))
    }
}

fn relu_squared(x: &FlexTensor) -> FlexTensor {
    let fill = |y: &mut [MaybeUninit<f32>]| {
        y.par_chunks_mut(CHUNK).zip(contiguous_data(x).par_chunks(CHUNK)).for_each(|(y, x)| {
            for (y, &x) in y.iter_mut().zip(x) {
                y.write(relu_squared_of(x));
            }
        })
    };
    // SAFETY: `x` and `y` have the same length, and each element of `y` is written.
    let y = unsafe { written(x.layout().num_elements(), fill) };
    tensor(y, x.layout().shape().clone())
}

/// `max(y, 0)²` for each element, in place (the MLP's first layer squares its own output).
pub(super) fn relu_squared_in_place(y: &mut [f32]) {
    y.par_chunks_mut(CHUNK).for_each(|y| y.iter_mut().for_each(|y| *y = relu_squared_of(*y)));
}

fn relu_squared_of(x: f32) -> f32 {
    let r = x.max(0.0);
    r * r
}

/// One head's row rotated in place by its position's `cos` and `sin` (half its width each), then
/// RMS-normalised: the arithmetic of [`rope`] with `norm` for that row.
pub(super) fn rotate_normalise_in_place(row: &mut [f32], c: &[f32], s: &[f32], eps: f32) {
    let (y1, y2) = row.split_at_mut(c.len());
    for i in 0..c.len() {
        (y1[i], y2[i]) = rotated(y1[i], y2[i], c[i], s[i]);
    }
    normalise_in_place(row, eps);
}

/// One pair `(x1, x2)` of a row rotated by the angle whose cosine and sine are `c` and `s`.
fn rotated(x1: f32, x2: f32, c: f32, s: f32) -> (f32, f32) {
    (x1 * c + x2 * s, x2 * c - x1 * s)
}

/// `[x1, x2] → [x1·cos + x2·sin, x2·cos − x1·sin]` per row of `head_dim`, or with `inverse` the
/// opposite rotation `[y1·cos − y2·sin, y1·sin + y2·cos]` (the backward pass); with `norm`, each
/// rotated row is then RMS-normalised with that epsilon, as [`super::rms_norm`] would (the same
/// arithmetic, in the same pass). Reads `x` through its strides ([`readable`]); writes the result
/// laid out as `layout` says.
fn rope(x: &FlexTensor, cos: &FlexTensor, sin: &FlexTensor, inverse: bool, layout: HeadsLayout, norm: Option<f32>) -> FlexTensor {
    let shape = dims4(x);
    let [_, _, seq, head_dim] = shape;
    let half = head_dim / 2;
    let (cos, sin) = (contiguous_data(cos), contiguous_data(sin));
    assert_eq!(cos.len(), seq * half, "rotary tables must cover the sequence");
    // Each row is written as two halves: an odd width would leave its last element unwritten.
    assert!(head_dim.is_multiple_of(2), "rotary embeddings need an even head_dim");
    let sign = if inverse { -1.0 } else { 1.0 };
    let fill = |y: &mut [MaybeUninit<f32>]| {
        if y.is_empty() {
            return;
        }
        let (input, output) = (Heads::of(x), layout.heads_unwritten(y, shape));
        // One task per (batch, head): `seq` rows, each rotated by its position's angles.
        (0..shape[0] * shape[1]).into_par_iter().for_each(|i| {
            let (x, (y, y_rs)) = (input.head(i), output.head(i));
            for pos in 0..seq {
                // SAFETY: row `pos` of head i holds head_dim elements in both buffers, and only
                // this task writes head i's rows of `y`.
                let (x, y) = unsafe {
                    (std::slice::from_raw_parts(x.ptr.add(pos * x.row_stride), head_dim), std::slice::from_raw_parts_mut(y.add(pos * y_rs).cast::<MaybeUninit<f32>>(), head_dim))
                };
                let (c, s) = (&cos[pos * half..(pos + 1) * half], &sin[pos * half..(pos + 1) * half]);
                let (x1, x2) = x.split_at(half);
                let (y1, y2) = y.split_at_mut(half);
                for i in 0..half {
                    let (a, b) = rotated(x1[i], x2[i], c[i], sign * s[i]);
                    y1[i].write(a);
                    y2[i].write(b);
                }
                if let Some(eps) = norm {
                    // SAFETY: the loop above wrote the whole row (head_dim is even, asserted above).
                    normalise_in_place(unsafe { &mut *(y as *mut [MaybeUninit<f32>] as *mut [f32]) }, eps);
                }
            }
        });
    };
    // SAFETY: one task per head writes each of its rows in full.
    let y = unsafe { written(shape.iter().product(), fill) };
    layout.tensor(y, shape)
}
