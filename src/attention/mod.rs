//! Bidirectional attention, `softmax(q kᵀ / √d) v`, with a fused fast path for the CPU backend.
//!
//! Under autodiff, Burn 0.22 runs attention as separate matmul, softmax and matmul ops, each
//! recorded for the backward pass, with a scalar `exp`: for `base` at batch 8 that took 56 ms per
//! layer against PyTorch's 22 ms (docs/performance.md). On burn-flex this module runs instead one
//! custom op (a Burn backend extension) with its own backward pass: per head, two matmuls around a
//! vectorised softmax forward, four matmuls backward, heads in parallel. Other backends use
//! Burn's `attention`. Tests check both paths give the same outputs and gradients.

mod kernel;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::{Autodiff, Backend, DispatchDevice, Flex, backend_extension, tensor::FloatTensor};
use burn::prelude::*;
use burn::tensor::DType;
use burn::tensor::module::attention as burn_attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn_flex::FlexTensor;
use kernel::{Dims, Heads, View};

/// Attention over `[batch, heads, seq, head_dim]` queries, keys and values (no mask). There may
/// be fewer queries than keys.
pub fn attention(q: Tensor<4>, k: Tensor<4>, v: Tensor<4>) -> Tensor<4> {
    if fused_available(&q, &k) {
        Tensor::from_dispatch(<burn::backend::Dispatch as FusedAttention>::fused_attention(
            q.into_dispatch(),
            k.into_dispatch(),
            v.into_dispatch(),
        ))
    } else {
        plain_attention(q, k, v)
    }
}

/// Burn's own attention: the reference the fused path is tested against.
pub fn plain_attention(q: Tensor<4>, k: Tensor<4>, v: Tensor<4>) -> Tensor<4> {
    burn_attention(q, k, v, None, None, AttentionModuleOptions::default())
}

fn fused_available(q: &Tensor<4>, k: &Tensor<4>) -> bool {
    let on_flex = matches!(q.device().inner().as_dispatch(), DispatchDevice::Flex(_));
    on_flex && q.dtype() == DType::F32 && q.dims()[2] > 0 && k.dims()[2] > 0
}

#[backend_extension(Flex, Autodiff)]
pub trait FusedAttention: Backend {
    fn fused_attention(q: FloatTensor<Self>, k: FloatTensor<Self>, v: FloatTensor<Self>) -> FloatTensor<Self>;
}

impl FusedAttention for Flex {
    fn fused_attention(q: FlexTensor, k: FlexTensor, v: FlexTensor) -> FlexTensor {
        forward(&q, &k, &v, false).0
    }
}

/// What the backward pass needs: the inputs, the output and the softmax probabilities.
#[derive(Debug, Clone)]
struct Saved {
    q: FlexTensor,
    k: FlexTensor,
    v: FlexTensor,
    out: FlexTensor,
    probs: FlexTensor,
}

#[derive(Debug)]
struct AttentionBackward;

impl Backward<Flex, 3> for AttentionBackward {
    type State = Saved;

    fn backward(self, ops: Ops<Saved, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad_out = grads.consume::<Flex>(&ops.node);
        let Saved { q, k, v, out, probs } = ops.state;
        let dims = dims(&q, &k);
        let [b, h, tq, hd] = dims4(&q);
        let tk = dims.seq_kv;
        let grad_out = grad_out.to_contiguous();
        let mut dq = vec![0.0f32; b * h * tq * hd];
        let mut dk = vec![0.0f32; b * h * tk * hd];
        let mut dv = vec![0.0f32; b * h * tk * hd];
        kernel::backward(
            heads(&q),
            heads(&k),
            heads(&v),
            dims,
            out.storage::<f32>(),
            probs.storage::<f32>(),
            &grad_out.storage::<f32>()[grad_out.layout().start_offset()..],
            [&mut dq, &mut dk, &mut dv],
        );
        let [pq, pk, pv] = ops.parents;
        for (parent, grad, t) in [(pq, dq, tq), (pk, dk, tk), (pv, dv, tk)] {
            if let Some(node) = parent {
                grads.register::<Flex>(node.id, tensor(grad, [b, h, t, hd]));
            }
        }
    }
}

impl<C: CheckpointStrategy> FusedAttention for Autodiff<Flex, C> {
    fn fused_attention(q: FloatTensor<Self>, k: FloatTensor<Self>, v: FloatTensor<Self>) -> FloatTensor<Self> {
        match AttentionBackward.prepare::<C>([q.node(), k.node(), v.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let (q, k, v) = (contiguous_heads(q.into_primitive()), contiguous_heads(k.into_primitive()), contiguous_heads(v.into_primitive()));
                let (out, probs) = forward(&q, &k, &v, true);
                let probs = probs.expect("asked for the probabilities");
                prep.finish(Saved { q, k, v, out: out.clone(), probs }, out)
            }
            OpsKind::UnTracked(prep) => {
                let (q, k, v) = (q.into_primitive(), k.into_primitive(), v.into_primitive());
                prep.finish(forward(&q, &k, &v, false).0)
            }
        }
    }
}

/// Runs the forward kernel; returns the output and, if asked, the softmax probabilities.
fn forward(q: &FlexTensor, k: &FlexTensor, v: &FlexTensor, keep_probs: bool) -> (FlexTensor, Option<FlexTensor>) {
    let (q, k, v) = (contiguous_heads(q.clone()), contiguous_heads(k.clone()), contiguous_heads(v.clone()));
    let [b, h, tq, hd] = dims4(&q);
    let tk = dims4(&k)[2];
    assert_eq!(dims4(&k), [b, h, tk, hd], "fused attention: keys must match the queries' batch, heads and width");
    assert_eq!(dims4(&v), [b, h, tk, hd], "fused attention: values must match the keys' shape");
    let mut out = vec![0.0f32; b * h * tq * hd];
    let mut probs = keep_probs.then(|| vec![0.0f32; b * h * tq * tk]);
    kernel::forward(heads(&q), heads(&k), heads(&v), dims(&q, &k), &mut out, probs.as_deref_mut());
    (tensor(out, [b, h, tq, hd]), probs.map(|p| tensor(p, [b, h, tq, tk])))
}

fn dims4(x: &FlexTensor) -> [usize; 4] {
    let s = x.layout().shape();
    assert_eq!(s.num_dims(), 4, "fused attention takes [batch, heads, seq, head_dim]");
    [s[0], s[1], s[2], s[3]]
}

fn dims(q: &FlexTensor, k: &FlexTensor) -> Dims {
    let [_, _, seq_q, head_dim] = dims4(q);
    Dims { seq_q, seq_kv: dims4(k)[2], head_dim, scale: 1.0 / (head_dim as f32).sqrt() }
}

/// The kernels read any layout whose last dimension is dense and whose strides are non-negative
/// (such as the `[batch, seq, heads, head_dim]` buffer seen through `swap_dims(1, 2)`); anything
/// else is copied first.
fn contiguous_heads(x: FlexTensor) -> FlexTensor {
    let strides = x.layout().strides();
    if strides.len() == 4 && strides[3] == 1 && strides.iter().all(|&s| s >= 0) { x } else { x.to_contiguous() }
}

fn heads(x: &FlexTensor) -> Heads {
    let s = x.layout().strides();
    let data = &x.storage::<f32>()[x.layout().start_offset()..];
    Heads {
        base: View { ptr: data.as_ptr(), row_stride: s[2] as usize },
        batch_stride: s[0] as usize,
        head_stride: s[1] as usize,
        heads: x.layout().shape()[1],
    }
}

fn tensor(data: Vec<f32>, shape: [usize; 4]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(data, shape))
}

#[cfg(test)]
mod tests;
