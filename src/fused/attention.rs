//! Attention as one op with its own backward pass: per head, two matmuls around a vectorised
//! softmax forward, four matmuls backward, heads in parallel.

use super::attention_kernel::{self as kernel, Dims, Heads, View};
use super::tensor;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::{Autodiff, Backend, Flex, backend_extension, tensor::FloatTensor};
use burn_flex::FlexTensor;

#[backend_extension(Flex, Autodiff)]
pub trait FusedAttention: Backend {
    fn fused_attention(q: FloatTensor<Self>, k: FloatTensor<Self>, v: FloatTensor<Self>, causal: bool) -> FloatTensor<Self>;
}

impl FusedAttention for Flex {
    fn fused_attention(q: FlexTensor, k: FlexTensor, v: FlexTensor, causal: bool) -> FlexTensor {
        forward(&q, &k, &v, causal, false).0
    }
}

/// What the backward pass needs: the inputs, the output and the softmax probabilities (zero
/// where a causal query may not look, so the backward pass needs no mask of its own).
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
        let grad_out = grads.consume::<Flex>(&ops.node).to_contiguous();
        let Saved { q, k, v, out, probs } = ops.state;
        let dims = dims(&q, &k, false);
        let [b, h, tq, hd] = dims4(&q);
        let shapes = [[b, h, tq, hd], [b, h, dims.seq_kv, hd], [b, h, dims.seq_kv, hd]];
        let [mut dq, mut dk, mut dv] = shapes.map(|s| vec![0.0f32; s.iter().product()]);
        // With no queries or no keys there is nothing to propagate: the gradients stay zero.
        if !dq.is_empty() && !dk.is_empty() {
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
        }
        for ((parent, grad), shape) in ops.parents.into_iter().zip([dq, dk, dv]).zip(shapes) {
            if let Some(node) = parent {
                grads.register::<Flex>(node.id, tensor(grad, shape));
            }
        }
    }
}

impl<C: CheckpointStrategy> FusedAttention for Autodiff<Flex, C> {
    fn fused_attention(q: FloatTensor<Self>, k: FloatTensor<Self>, v: FloatTensor<Self>, causal: bool) -> FloatTensor<Self> {
        match AttentionBackward.prepare::<C>([q.node(), k.node(), v.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let (q, k, v) = (contiguous_heads(q.into_primitive()), contiguous_heads(k.into_primitive()), contiguous_heads(v.into_primitive()));
                let (out, probs) = forward(&q, &k, &v, causal, true);
                let probs = probs.expect("asked for the probabilities");
                prep.finish(Saved { q, k, v, out: out.clone(), probs }, out)
            }
            OpsKind::UnTracked(prep) => {
                let (q, k, v) = (q.into_primitive(), k.into_primitive(), v.into_primitive());
                prep.finish(forward(&q, &k, &v, causal, false).0)
            }
        }
    }
}

/// Runs the forward kernel; returns the output and, if asked, the softmax probabilities.
fn forward(q: &FlexTensor, k: &FlexTensor, v: &FlexTensor, causal: bool, keep_probs: bool) -> (FlexTensor, Option<FlexTensor>) {
    let (q, k, v) = (contiguous_heads(q.clone()), contiguous_heads(k.clone()), contiguous_heads(v.clone()));
    let [b, h, tq, hd] = dims4(&q);
    let tk = dims4(&k)[2];
    assert_eq!(dims4(&k), [b, h, tk, hd], "fused attention: keys must match the queries' batch, heads and width");
    assert_eq!(dims4(&v), [b, h, tk, hd], "fused attention: values must match the keys' shape");
    let mut out = vec![0.0f32; b * h * tq * hd];
    let mut probs = keep_probs.then(|| vec![0.0f32; b * h * tq * tk]);
    // No queries: an empty output. No keys: zeros, as burn-flex's own attention gives.
    if !out.is_empty() && tk > 0 {
        kernel::forward(heads(&q), heads(&k), heads(&v), dims(&q, &k, causal), &mut out, probs.as_deref_mut());
    }
    (tensor(out, [b, h, tq, hd]), probs.map(|p| tensor(p, [b, h, tq, tk])))
}

fn dims4(x: &FlexTensor) -> [usize; 4] {
    let s = x.layout().shape();
    assert_eq!(s.num_dims(), 4, "fused attention takes [batch, heads, seq, head_dim]");
    [s[0], s[1], s[2], s[3]]
}

fn dims(q: &FlexTensor, k: &FlexTensor, causal: bool) -> Dims {
    let [_, _, seq_q, head_dim] = dims4(q);
    Dims { seq_q, seq_kv: dims4(k)[2], head_dim, scale: 1.0 / (head_dim as f32).sqrt(), causal }
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
