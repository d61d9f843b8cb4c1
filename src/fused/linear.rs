//! A bias-free linear layer, `y = x · w` (`w` stored `[in, out]`, as Burn's `Linear` does), as
//! one op whose three matmuls (forward, and `dx = dy · wᵀ`, `dw = xᵀ · dy` backward) run through
//! [`super::matmul`], in bf16 on the AMX tiles or in f32, reading the transposed operands in
//! place: what a training step asks for ([`super::Matmul`]). Outside training the same op serves
//! every input in f32 (its output is not zero-filled and copied, as burn-flex's matmul output is);
//! inputs go through [`super::unpacked`] where it serves them (a few rows; any row count on a
//! Zen 4), which does not copy the weight first as gemm does; or in bf16 (`--matmul bf16`) on
//! the tiles, each weight packed once ([`packed_weight`]).

use super::{Mat, Matmul, amx, contiguous_data, matmul_in_force, product, tensor, unpacked, written};
use std::sync::{Arc, Mutex};
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use super::pointwise::{FusedPointwise, relu_squared_in_place};
use burn::backend::{Autodiff, AutodiffBackend, Backend, Flex, backend_extension, tensor::FloatTensor};
use burn::tensor::Shape;
use burn_flex::FlexTensor;

#[backend_extension(Flex, Autodiff)]
pub trait FusedLinear: Backend {
    fn fused_linear(x: FloatTensor<Self>, w: FloatTensor<Self>) -> FloatTensor<Self>;
    /// `max(x · w, 0)²`, the MLP's first layer and its activation: squared in place, while the
    /// product is still in cache, instead of a second op writing a second buffer.
    fn fused_linear_relu_squared(x: FloatTensor<Self>, w: FloatTensor<Self>) -> FloatTensor<Self>;
}

impl FusedLinear for Flex {
    fn fused_linear(x: FlexTensor, w: FlexTensor) -> FlexTensor {
        forward(&x.to_contiguous(), &w.to_contiguous(), false, true)
    }
    fn fused_linear_relu_squared(x: FlexTensor, w: FlexTensor) -> FlexTensor {
        forward(&x.to_contiguous(), &w.to_contiguous(), true, true)
    }
}

#[derive(Debug)]
struct LinearBackward;

impl Backward<Flex, 2> for LinearBackward {
    /// The input and the weight, contiguous.
    type State = (FlexTensor, FlexTensor);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = grads.consume::<Flex>(&ops.node).to_contiguous();
        let (x, w) = ops.state;
        let ([d_in, d_out], rows) = (dims(&w), rows(&x));
        let [x_node, w_node] = ops.parents;
        if let Some(node) = x_node {
            let dx = product(rows, d_in, d_out, Mat::rows(contiguous_data(&dy), d_out), Mat::transposed(contiguous_data(&w), d_out));
            grads.register::<Flex>(node.id, tensor(dx, x.layout().shape().clone()));
        }
        if let Some(node) = w_node {
            let dw = product(d_in, d_out, rows, Mat::transposed(contiguous_data(&x), d_in), Mat::rows(contiguous_data(&dy), d_out));
            grads.register::<Flex>(node.id, tensor(dw, [d_in, d_out]));
        }
    }
}

impl<C: CheckpointStrategy> FusedLinear for Autodiff<Flex, C> {
    fn fused_linear(x: FloatTensor<Self>, w: FloatTensor<Self>) -> FloatTensor<Self> {
        match LinearBackward.prepare::<C>([x.node(), w.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let (x, w) = (x.into_primitive().to_contiguous(), w.into_primitive().to_contiguous());
                let y = forward(&x, &w, false, false);
                prep.finish((x, w), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(forward(&x.into_primitive().to_contiguous(), &w.into_primitive().to_contiguous(), false, true)),
        }
    }

    /// Tracked, the two ops, each with its own backward pass; else the one.
    fn fused_linear_relu_squared(x: FloatTensor<Self>, w: FloatTensor<Self>) -> FloatTensor<Self> {
        if x.is_tracked() || w.is_tracked() {
            return Self::fused_relu_squared(Self::fused_linear(x, w));
        }
        Self::from_inner(Flex::fused_linear_relu_squared(Self::inner(x), Self::inner(w)))
    }
}

/// How a linear op multiplies `rows` rows (read on the calling thread: the precision in force is
/// the thread's); [`super::projections`] multiplies its three products as this op would.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kernel {
    /// f32, the weight read in place ([`unpacked::serves`] these rows).
    Unpacked,
    /// bf16 on the AMX tiles, the weight as inference keeps it packed ([`packed_weight`]): no
    /// gradient will flow back, so the weight will not change under the packing.
    KeptTiles,
    /// [`product`]: f32 through gemm, or bf16 on the tiles (a training step's).
    Product,
}

impl Kernel {
    /// The kernel for `rows` rows; `untracked`: no gradient will flow back (inference).
    pub(super) fn for_rows(rows: usize, untracked: bool) -> Kernel {
        match matmul_in_force() {
            None if unpacked::serves(rows) => Kernel::Unpacked,
            Some(Matmul::Bf16) if untracked => Kernel::KeptTiles,
            _ => Kernel::Product,
        }
    }
}

/// `x · w`, or with `relu_squared` `max(x · w, 0)²` (the arithmetic of `pointwise`'s op), through
/// [`Kernel::for_rows`].
fn forward(x: &FlexTensor, w: &FlexTensor, relu_squared: bool, untracked: bool) -> FlexTensor {
    let ([d_in, d_out], rows) = (dims(w), rows(x));
    let shape = x.layout().shape();
    assert_eq!(shape[shape.num_dims() - 1], d_in, "fused linear: the input's last dimension must be the weight's first");
    let x = contiguous_data(x);
    let mut y = match Kernel::for_rows(rows, untracked) {
        Kernel::Unpacked => {
            let w = contiguous_data(w);
            // SAFETY: the kernel writes every one of the rows × d_out elements and reads none.
            unsafe { written(rows * d_out, |y| unpacked::matmul(x, w, y, rows, d_in, d_out)) }
        }
        Kernel::KeptTiles => {
            let w = packed_weight(w);
            // SAFETY: the kernel writes every one of the rows × d_out elements; `x` holds rows × d_in.
            unsafe { written(rows * d_out, |y| amx::matmul_packed(rows, Mat::rows(x, d_in), &w, y.as_mut_ptr().cast(), d_out)) }
        }
        Kernel::Product => product(rows, d_out, d_in, Mat::rows(x, d_in), Mat::rows(contiguous_data(w), d_out)),
    };
    if relu_squared {
        relu_squared_in_place(&mut y);
    }
    let mut out_shape: Vec<usize> = shape.iter().copied().collect();
    *out_shape.last_mut().expect("a linear layer's input has dimensions") = d_out;
    tensor(y, Shape::from(out_shape))
}

/// Weights packed for the AMX tiles by inference in bf16 (`--matmul bf16`), by their memory:
/// packing a weight on every call took over a quarter of a `base` denoising step (`perf`,
/// docs/performance.md), and a model's weights do not change between its steps. Each entry holds
/// its weight (a handle on the storage), so that memory can be neither freed and reused under the
/// key nor written in place (Burn copies a shared tensor before writing it). An entry whose weight
/// nobody else holds any more (its model dropped, or trained a step further, as in the TUI) is let
/// go at the next packing, so that it keeps no stale weight alive; all are whenever they would pass
/// [`PACKED_BYTES`] (many models).
static PACKED: Mutex<Vec<(FlexTensor, Arc<amx::PackedB>)>> = Mutex::new(Vec::new());

/// What [`PACKED`] may hold: a dozen `base` models.
const PACKED_BYTES: usize = 256 << 20;

/// The weight `w` (`[in, out]`, contiguous) packed for the tiles, from [`PACKED`] or packed now.
pub(super) fn packed_weight(w: &FlexTensor) -> Arc<amx::PackedB> {
    let (data, [d_in, d_out]) = (contiguous_data(w), dims(w));
    let mut packed = PACKED.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let same = |(kept, p): &&(FlexTensor, Arc<amx::PackedB>)| contiguous_data(kept).as_ptr() == data.as_ptr() && p.dims() == [d_in, d_out];
    if let Some((_, p)) = packed.iter().find(same) {
        return p.clone();
    }
    let p = Arc::new(amx::PackedB::new(Mat::rows(data, d_out), d_in, d_out));
    packed.retain(|(kept, _)| !kept.is_unique());
    if packed.iter().map(|(_, p)| p.bytes()).sum::<usize>() + p.bytes() > PACKED_BYTES {
        packed.clear();
    }
    packed.push((w.clone(), p.clone()));
    p
}

fn dims(w: &FlexTensor) -> [usize; 2] {
    let s = w.layout().shape();
    assert_eq!(s.num_dims(), 2, "fused linear: the weight is [in, out]");
    [s[0], s[1]]
}

/// The input's rows: every dimension but the last.
fn rows(x: &FlexTensor) -> usize {
    let s = x.layout().shape();
    s.iter().take(s.num_dims() - 1).product()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_weight_nobody_else_holds_is_let_go_at_the_next_packing() {
        if !amx::available() {
            eprintln!("no AMX here: inference keeps no packed weights");
            return;
        }
        let weight = |v: f32| tensor(vec![v; 32 * 48], [32, 48]);
        let (first, second) = (weight(0.5), weight(0.25));
        let kept = Arc::downgrade(&packed_weight(&first));
        let _ = packed_weight(&second);
        assert!(kept.upgrade().is_some(), "a packing is kept while its weight lives");
        drop(first);
        let _ = packed_weight(&weight(0.125));
        assert!(kept.upgrade().is_none(), "the packing of a weight nobody holds is let go");
    }
}
