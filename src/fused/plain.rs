//! The same operations composed from Burn's own ops: what backends without a fused kernel run,
//! and the readable reference the fused ops are tested against.

use burn::prelude::*;
use burn::tensor::activation::relu;
use burn::tensor::module::attention as burn_attention;
use burn::tensor::ops::AttentionModuleOptions;

/// Burn's attention, scaled by 1/√head_dim; `causal` aligns the queries with the last keys.
pub fn attention(q: Tensor<4>, k: Tensor<4>, v: Tensor<4>, causal: bool) -> Tensor<4> {
    burn_attention(q, k, v, None, None, AttentionModuleOptions { is_causal: causal, ..Default::default() })
}

pub fn rms_norm<const D: usize>(x: Tensor<D>, eps: f64) -> Tensor<D> {
    let rms = x.clone().square().mean_dim(D - 1).add_scalar(eps).sqrt();
    x / rms
}

pub fn relu_squared<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    relu(x).square()
}

/// `[x1, x2] → [x1·cos + x2·sin, −x1·sin + x2·cos]` on the last dimension's halves.
pub fn rope(x: Tensor<4>, cos: Tensor<4>, sin: Tensor<4>) -> Tensor<4> {
    let half = x.dims()[3] / 2;
    let x1 = x.clone().narrow(3, 0, half);
    let x2 = x.narrow(3, half, half);
    let y1 = x1.clone() * cos.clone() + x2.clone() * sin.clone();
    let y2 = x2 * cos - x1 * sin;
    Tensor::cat(vec![y1, y2], 3)
}
