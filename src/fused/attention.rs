//! Attention as one op with its own backward pass: per head, two matmuls around a vectorised
//! softmax forward, four matmuls backward, heads in parallel.

use super::attention_kernel::{self as kernel, Dims};
use super::heads::{Heads, HeadsLayout, dims as dims4, readable};
use super::written;
use std::mem::MaybeUninit;
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
        let grad_out = readable(grads.consume::<Flex>(&ops.node));
        let Saved { q, k, v, out, probs } = ops.state;
        let dims = dims(&q, &k, false);
        // Each gradient in its input's layout: the value's goes back through the head split
        // (`Attention::heads`) without a copy.
        let layouts = [&q, &k, &v].map(HeadsLayout::of);
        let shapes = [dims4(&q), dims4(&k), dims4(&v)];
        let sizes = shapes.map(|s| s.iter().product::<usize>());
        // With no queries or no keys there is nothing to propagate: the gradients are zero.
        // Else the kernel writes every element of each, so they start unwritten.
        let [dq, dk, dv] = if sizes[0] == 0 || sizes[1] == 0 {
            sizes.map(|n| vec![0.0f32; n])
        } else {
            let mut grads = sizes.map(Vec::<f32>::with_capacity);
            let [gq, gk, gv] = &mut grads;
            let unwritten = |g: &mut Vec<f32>, i: usize| layouts[i].heads_unwritten(&mut g.spare_capacity_mut()[..sizes[i]], shapes[i]);
            let targets = [unwritten(gq, 0), unwritten(gk, 1), unwritten(gv, 2)];
            kernel::backward(Heads::of(&q), Heads::of(&k), Heads::of(&v), dims, Heads::of(&out), probs.storage::<f32>(), Heads::of(&grad_out), targets);
            for (g, n) in grads.iter_mut().zip(sizes) {
                // SAFETY: the kernel wrote every row of every head of each gradient (above).
                unsafe { g.set_len(n) };
            }
            grads
        };
        for (((parent, grad), shape), layout) in ops.parents.into_iter().zip([dq, dk, dv]).zip(shapes).zip(layouts) {
            if let Some(node) = parent {
                grads.register::<Flex>(node.id, layout.tensor(grad, shape));
            }
        }
    }
}

impl<C: CheckpointStrategy> FusedAttention for Autodiff<Flex, C> {
    fn fused_attention(q: FloatTensor<Self>, k: FloatTensor<Self>, v: FloatTensor<Self>, causal: bool) -> FloatTensor<Self> {
        match AttentionBackward.prepare::<C>([q.node(), k.node(), v.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let (q, k, v) = (readable(q.into_primitive()), readable(k.into_primitive()), readable(v.into_primitive()));
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

/// Runs the forward kernel; returns the output and, if asked, the softmax probabilities. The
/// output is token-major, so that the output projection reads it without a copy
/// (`Attention::attend`).
pub(super) fn forward(q: &FlexTensor, k: &FlexTensor, v: &FlexTensor, causal: bool, keep_probs: bool) -> (FlexTensor, Option<FlexTensor>) {
    let (q, k, v) = (readable(q.clone()), readable(k.clone()), readable(v.clone()));
    let [b, h, tq, hd] = dims4(&q);
    let tk = dims4(&k)[2];
    assert_eq!(dims4(&k), [b, h, tk, hd], "fused attention: keys must match the queries' batch, heads and width");
    assert_eq!(dims4(&v), [b, h, tk, hd], "fused attention: values must match the keys' shape");
    // No queries: an empty output. No keys: zeros, as burn-flex's own attention gives.
    let (n, n_probs) = (b * h * tq * hd, b * h * tq * tk);
    let (out, probs) = if n == 0 || tk == 0 {
        (vec![0.0f32; n], keep_probs.then(|| vec![0.0f32; n_probs]))
    } else {
        let mut probs = keep_probs.then(|| Vec::with_capacity(n_probs));
        let fill = |out: &mut [MaybeUninit<f32>]| {
            let target = HeadsLayout::TokenMajor.heads_unwritten(out, [b, h, tq, hd]);
            let probs = probs.as_mut().map(|p: &mut Vec<f32>| &mut p.spare_capacity_mut()[..n_probs]);
            kernel::forward(Heads::of(&q), Heads::of(&k), Heads::of(&v), dims(&q, &k, causal), target, probs);
        };
        // SAFETY: with queries and keys (and so head_dim > 0), the kernel writes every row of
        // every head's output, and every score of every head's probabilities.
        let out = unsafe { written(n, fill) };
        // SAFETY: as above, for the probabilities.
        (out, probs.map(|mut p| unsafe { p.set_len(n_probs); p }))
    };
    (HeadsLayout::TokenMajor.tensor(out, [b, h, tq, hd]), probs.map(|p| super::tensor(p, [b, h, tq, tk])))
}

fn dims(q: &FlexTensor, k: &FlexTensor, causal: bool) -> Dims {
    let [b, h, seq_q, head_dim] = dims4(q);
    Dims { heads: b * h, seq_q, seq_kv: dims4(k)[2], head_dim, scale: 1.0 / (head_dim as f32).sqrt(), causal }
}
