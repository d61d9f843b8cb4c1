//! Fused ops for the CPU backend (burn-flex): attention, RMSNorm, rotary embeddings and ReLU²,
//! each one op with its own backward pass, written as Burn backend extensions.
//!
//! Under autodiff, Burn 0.22 composes attention from separate matmul, softmax and matmul ops
//! with a scalar `exp`, and RMSNorm from five elementwise ops, each recorded for the backward pass
//! and run on one thread. For `base` at batch 8, attention alone took 56 ms per layer against
//! PyTorch's 22 ms (docs/performance.md). Other backends use the plain compositions; tests check
//! that both paths give the same outputs and gradients.
//!
//! At inference, a few ops span more of a layer — rotary then RMSNorm ([`rope_rms_norm`]), the
//! three attention projections ([`projections`]), the MLP's first layer with its ReLU²
//! ([`linear_relu_squared`]) — so that a denoising step hands work between threads fewer times;
//! each computes what the ops it replaces compute, bit for bit.

pub mod amx;
mod attention;
mod attention_kernel;
mod heads;
mod linear;
mod matmul;
pub mod plain;
mod pointwise;
mod projections;
mod rms_norm;
mod unpacked;
#[cfg(test)]
mod tests;

use attention::FusedAttention;
use burn::backend::{Dispatch, DispatchDevice};
use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::DType;
use burn_flex::FlexTensor;
use linear::FusedLinear;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
pub use amx::Mat;
pub use matmul::{Matmul, MatmulGuard, gram, inference_matmul, matmul, matmul_in_force, product, set_inference_matmul, transpose};
use pointwise::FusedPointwise;
use projections::FusedProjections;
use rms_norm::FusedRmsNorm;

/// Whether the AVX-512 kernels may run: the CPU has AVX-512F and the build has the `avx512`
/// feature (without it every kernel stops at AVX2, to measure that path on any x86 CPU).
pub fn avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    return cfg!(feature = "avx512") && std::is_x86_feature_detected!("avx512f");
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Whether the AVX2 kernels may run: the CPU has AVX2 and FMA.
pub fn avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma");
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// The widest instructions this build's kernels use on this CPU, for benchmark reports.
pub fn kernels() -> &'static str {
    if amx::available() {
        "AMX"
    } else if avx512() {
        "AVX-512"
    } else if avx2() {
        "AVX2"
    } else {
        "portable"
    }
}

/// Whether `x` lives where the fused ops run: a burn-flex device (with or without autodiff), f32.
pub fn available<const D: usize>(x: &Tensor<D>) -> bool {
    on_flex(&x.device()) && x.dtype() == DType::F32
}

/// Whether `device` is burn-flex's CPU device, the one the fused ops are written for.
pub fn on_flex(device: &Device) -> bool {
    matches!(device.clone().inner().as_dispatch(), DispatchDevice::Flex(_))
}

/// `softmax(q kᵀ / √d) v` over `[batch, heads, seq, head_dim]`; there may be fewer queries than
/// keys. `causal`: each query sees only the keys up to its own position, the queries being the
/// last rows of the keys (PyTorch's and Burn's alignment). One fused op where [`available`], else
/// [`plain::attention`].
pub fn attention(q: Tensor<4>, k: Tensor<4>, v: Tensor<4>, causal: bool) -> Tensor<4> {
    if available(&q) { fused_attention(q, k, v, causal) } else { plain::attention(q, k, v, causal) }
}

/// Parameter-free RMSNorm, `x / √(mean(x²) + eps)` over the last dimension. One fused op where
/// [`available`], else [`plain::rms_norm`].
pub fn rms_norm<const D: usize>(x: Tensor<D>, eps: f64) -> Tensor<D> {
    if available(&x) { fused_rms_norm(x, eps) } else { plain::rms_norm(x, eps) }
}

/// `max(x, 0)²`. One fused op where [`available`], else [`plain::relu_squared`].
pub fn relu_squared<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if available(&x) { fused_relu_squared(x) } else { plain::relu_squared(x) }
}

/// Half-split rotary embedding of `[batch, heads, seq, head_dim]` by `cos`/`sin` tables
/// `[1, 1, seq, head_dim / 2]`. One fused op where [`available`], else [`plain::rope`].
pub fn rope(x: Tensor<4>, cos: Tensor<4>, sin: Tensor<4>) -> Tensor<4> {
    if available(&x) { fused_rope(x, cos, sin) } else { plain::rope(x, cos, sin) }
}

/// `layer.forward(x)`: one fused op where [`available`] (the model's layers have no bias), whose
/// forward and backward matmuls run through [`matmul`], in the step's precision in a training step
/// ([`Matmul::apply`]); outside training, where [`unpacked::serves`] (a few rows; any row count on
/// a Zen 4), through a kernel that reads the weight in place. Burn's f32 `Linear`
/// elsewhere.
pub fn linear<const D: usize>(layer: &Linear, x: Tensor<D>) -> Tensor<D> {
    if layer.bias.is_none() && available(&x) {
        Tensor::from_dispatch(<Dispatch as FusedLinear>::fused_linear(x.into_dispatch(), layer.weight.val().into_dispatch()))
    } else {
        layer.forward(x)
    }
}

/// [`rope`], then [`rms_norm`] over `head_dim`: one pass where [`available`].
pub fn rope_rms_norm(x: Tensor<4>, cos: Tensor<4>, sin: Tensor<4>, eps: f64) -> Tensor<4> {
    if available(&x) {
        Tensor::from_dispatch(<Dispatch as FusedPointwise>::fused_rope_rms_norm(x.into_dispatch(), cos.into_dispatch(), sin.into_dispatch(), eps as f32))
    } else {
        plain::rms_norm(plain::rope(x, cos, sin), eps)
    }
}

/// An attention layer's queries, keys and values of `x` (`[batch, seq, in]`), each `x · w`
/// (`[batch, seq, width]`), the queries and keys rotated by `cos` and `sin` and RMS-normalised
/// over each of their `heads` heads: what the separate ops ([`linear`], [`rope_rms_norm`]) compute,
/// bit for bit, as one op. `None` where it does not apply (not burn-flex at inference, or only a
/// few rows, [`unpacked::FEW_ROWS`], which the linear ops split by columns instead); the caller
/// then composes the separate ops.
pub fn projections(x: Tensor<3>, [q, k, v]: [&Linear; 3], heads: usize, cos: Tensor<4>, sin: Tensor<4>, eps: f64) -> Option<[Tensor<3>; 3]> {
    let [b, t, _] = x.dims();
    // At inference only (burn-flex without autodiff: nothing is tracked), where the rows go
    // through the kernel `linear` would use for them (in f32, or in bf16 on the AMX tiles).
    let inference = available(&x) && !x.device().is_autodiff();
    if !(inference && [q, k, v].iter().all(|l| l.bias.is_none()) && b * t > unpacked::FEW_ROWS) {
        return None;
    }
    let [w_q, w_k, w_v] = [q, k, v].map(|l| l.weight.val().into_dispatch());
    let stacked = <Dispatch as FusedProjections>::fused_projections(x.into_dispatch(), w_q, w_k, w_v, cos.into_dispatch(), sin.into_dispatch(), heads, eps as f32);
    let stacked = Tensor::<4>::from_dispatch(stacked);
    let width = stacked.dims()[3];
    Some([0, 1, 2].map(|i| stacked.clone().narrow(0, i, 1).reshape([b, t, width])))
}

/// `relu_squared(linear(layer, x))`, squared in place where [`linear`] is fused.
pub fn linear_relu_squared<const D: usize>(layer: &Linear, x: Tensor<D>) -> Tensor<D> {
    if layer.bias.is_none() && available(&x) {
        Tensor::from_dispatch(<Dispatch as FusedLinear>::fused_linear_relu_squared(x.into_dispatch(), layer.weight.val().into_dispatch()))
    } else {
        relu_squared(layer.forward(x))
    }
}

fn fused_attention(q: Tensor<4>, k: Tensor<4>, v: Tensor<4>, causal: bool) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as FusedAttention>::fused_attention(q.into_dispatch(), k.into_dispatch(), v.into_dispatch(), causal))
}

fn fused_rms_norm<const D: usize>(x: Tensor<D>, eps: f64) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as FusedRmsNorm>::fused_rms_norm(x.into_dispatch(), eps as f32))
}

fn fused_relu_squared<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as FusedPointwise>::fused_relu_squared(x.into_dispatch()))
}

fn fused_rope(x: Tensor<4>, cos: Tensor<4>, sin: Tensor<4>) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as FusedPointwise>::fused_rope(x.into_dispatch(), cos.into_dispatch(), sin.into_dispatch()))
}

/// The elements of a contiguous tensor.
fn contiguous_data(x: &FlexTensor) -> &[f32] {
    let start = x.layout().start_offset();
    &x.storage::<f32>()[start..start + x.layout().num_elements()]
}

/// `n` floats that `fill` writes, not zero-filled first: the fused ops write every element of
/// their outputs, and zero-filling them was a pass over every activation (memset and the kernel
/// clearing fresh pages: 3–6% of a `small` denoising step in `perf`, docs/performance.md).
///
/// # Safety
/// `fill` must write every element.
unsafe fn written(n: usize, fill: impl FnOnce(&mut [MaybeUninit<f32>])) -> Vec<f32> {
    let mut v = Vec::with_capacity(n);
    fill(&mut v.spare_capacity_mut()[..n]);
    // SAFETY: `fill` wrote all n elements (the caller's contract).
    unsafe { v.set_len(n) };
    v
}

/// A pointer that parallel tasks write through, each to its own part of the buffer.
#[derive(Clone, Copy)]
struct OutPtr<E>(*mut E);
// SAFETY: every use gives each task a part of the buffer no other task touches.
unsafe impl<E> Send for OutPtr<E> {}
unsafe impl<E> Sync for OutPtr<E> {}

impl<E> OutPtr<E> {
    /// The element `offset` places past the start (a method, so that a closure captures the
    /// whole `Sync` wrapper rather than its pointer).
    ///
    /// # Safety
    /// As [`pointer::add`]: the result must lie inside the buffer.
    unsafe fn add(self, offset: usize) -> *mut E {
        // SAFETY: the caller's contract.
        unsafe { self.0.add(offset) }
    }
}

fn tensor(data: Vec<f32>, shape: impl Into<burn::tensor::Shape>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(data, shape))
}

/// Runs `f` as a worker of a rayon pool of this thread's own (threads as `RAYON_NUM_THREADS`),
/// with the pool's other workers awake until it returns.
///
/// burn-flex's matmuls and the fused ops split their work over the current rayon pool. Called from
/// a thread outside any pool, every such op hands its work to the pool's threads and puts the
/// caller to sleep until they finish: thousands of sleeps and wake-ups per training step, and a
/// third thread on a two-core machine. Run as a worker, the caller takes its share of each op and
/// the other worker steals the rest (5–10% faster steps, docs/performance.md).
///
/// Each calling thread gets its own pool, so that two computations (a TUI training run and a
/// generation, or tests in parallel) never steal each other's work: burn-autodiff holds a global
/// lock for a whole backward pass, and a worker that picked up another computation's step while
/// waiting could deadlock on it.
pub fn on_own_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    thread_local! {
        static POOL: Option<rayon::ThreadPool> = rayon::ThreadPoolBuilder::new().build().ok();
    }
    // The caller's precision goes with the computation onto the pool's thread; outside a
    // training step, inference's.
    let precision = matmul_in_force().or_else(inference_matmul);
    let f = move || {
        let _precision = precision.map(Matmul::apply);
        f()
    };
    if rayon::current_thread_index().is_some() {
        return f();
    }
    POOL.with(|pool| match pool {
        Some(pool) => pool.install(|| with_workers_awake(f)),
        None => f(),
    })
}

/// How long a worker kept awake by [`with_workers_awake`] waits for work before it goes back to
/// rayon's own idling (a few yields, then sleep): far longer than the gaps between a computation's
/// parallel ops on the CPU (microseconds), far shorter than a computation that hands the pool
/// nothing (a forward pass on a GPU), which then keeps no core busy.
const PATIENCE: Duration = Duration::from_millis(20);

/// Runs `f` on this worker while every other worker of the pool looks for work without pause,
/// giving its core up to any other thread that wants it (`sched_yield`) but not going to sleep,
/// until `f` returns or no work has come for [`PATIENCE`].
///
/// Between two parallel ops an idle rayon worker goes to sleep on a futex, and the next op wakes
/// it: a system call on each side and, in a VM, an interrupt between cores, while the op waits for
/// its second thread. On a 2-vCPU Xeon that was 11% of a denoising step's samples in `perf`;
/// kept awake for the computation, the workers made the shipped model's default decoding 15–25%
/// faster, and training steps faster too (docs/performance.md).
fn with_workers_awake<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    /// Tells the workers to stop when `f` returns or unwinds.
    struct Done<'a>(&'a AtomicBool);
    impl Drop for Done<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Release);
        }
    }
    let done = AtomicBool::new(false);
    rayon::scope(|scope| {
        for _ in 1..rayon::current_num_threads() {
            scope.spawn(|_| {
                let mut last_work = Instant::now();
                while !done.load(Ordering::Acquire) && last_work.elapsed() < PATIENCE {
                    if rayon::yield_now() == Some(rayon::Yield::Executed) {
                        last_work = Instant::now();
                    } else {
                        std::thread::yield_now();
                    }
                }
            });
        }
        let _done = Done(&done);
        f()
    })
}
