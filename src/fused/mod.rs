//! Fused ops for the CPU backend (burn-flex): attention and RMSNorm, each one op with its own
//! backward pass, written as Burn backend extensions.
//!
//! Under autodiff, Burn 0.22 composes attention from separate matmul, softmax and matmul ops
//! with a scalar `exp`, and RMSNorm from five elementwise ops, each recorded for the backward pass
//! and run on one thread. For `base` at batch 8, attention alone took 56 ms per layer against
//! PyTorch's 22 ms (docs/performance.md). Other backends use the plain compositions; tests check
//! that both paths give the same outputs and gradients.

mod attention;
mod attention_kernel;
mod rms_norm;
#[cfg(test)]
mod tests;

use attention::FusedAttention;
use burn::backend::{Dispatch, DispatchDevice};
use burn::prelude::*;
use burn::tensor::DType;
use burn_flex::FlexTensor;
use rms_norm::FusedRmsNorm;

/// Whether `x` lives where the fused ops run: a burn-flex device (with or without autodiff), f32.
pub fn available<const D: usize>(x: &Tensor<D>) -> bool {
    matches!(x.device().inner().as_dispatch(), DispatchDevice::Flex(_)) && x.dtype() == DType::F32
}

/// `softmax(q kᵀ / √d) v` over `[batch, heads, seq, head_dim]`; there may be fewer queries than
/// keys. Call only where [`available`].
pub fn attention(q: Tensor<4>, k: Tensor<4>, v: Tensor<4>) -> Tensor<4> {
    assert!(q.dims()[2] > 0 && k.dims()[2] > 0, "fused attention needs at least one query and one key");
    Tensor::from_dispatch(<Dispatch as FusedAttention>::fused_attention(q.into_dispatch(), k.into_dispatch(), v.into_dispatch()))
}

/// `x / √(mean(x²) + eps)` over the last dimension. Call only where [`available`].
pub fn rms_norm<const D: usize>(x: Tensor<D>, eps: f64) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as FusedRmsNorm>::fused_rms_norm(x.into_dispatch(), eps as f32))
}

fn tensor(data: Vec<f32>, shape: impl Into<burn::tensor::Shape>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(data, shape))
}
