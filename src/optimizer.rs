//! The optimiser: AdamW for every weight, or nanochat's split — Muon for the transformer
//! blocks' weight matrices, AdamW for the embedding and the head.
//!
//! Muon (momentum, then each update matrix orthogonalised by Newton–Schulz iterations) learned
//! far faster per step on this model than AdamW did (docs/training.md). It is Burn's own
//! `Muon`, given its own learning rate; in a training step on the CPU its Newton–Schulz
//! iterations run through [`crate::fused::matmul`], in the step's precision
//! ([`crate::fused::Matmul`]).

use burn::grad_clipping::GradientClippingConfig;
use burn::module::ParamGroup;
use crate::fused::{Mat, gram, matmul, transpose};
use burn::optim::momentum::{Momentum, MomentumConfig};
use burn::optim::{AdjustLrFn, LearningRate, ModuleOptimizer, MuonConfig, MuonState, Optimizer};
use burn::prelude::*;
use rayon::prelude::*;

mod adamw;
pub use adamw::FusedAdamW;

/// Muon's momentum (Nesterov, no dampening) and Newton–Schulz iteration: Burn's and Keller
/// Jordan's defaults, written once for both the f32 and the bf16 path.
const MOMENTUM: f64 = 0.95;
const NS_COEFFICIENTS: (f32, f32, f32) = (3.4445, -4.775, 2.0315);
const NS_STEPS: usize = 5;
const NS_EPSILON: f32 = 1e-7;

/// Builds the optimiser from plain numbers: AdamW at `lr` (with `weight_decay`), and Muon for the
/// blocks' matrices when `muon_lr` is given. `step` takes the AdamW learning rate; the Muon group
/// runs at `muon_lr / lr` times it, so one schedule drives both. `grad_clip` 0 clips nothing.
pub fn setup_optimizer(lr: f64, muon_lr: Option<f64>, weight_decay: f64, grad_clip: f32) -> ModuleOptimizer {
    let clipping = (grad_clip > 0.0).then_some(GradientClippingConfig::Norm(grad_clip));
    // An epsilon of 1e-8, PyTorch's default: Burn's 1e-5 damps the updates of every weight whose
    // gradients are small, and trained measurably slower than PyTorch on the same recipe
    // (docs/training.md).
    let mut adamw = ModuleOptimizer::from(FusedAdamW::new(1e-8, weight_decay as f32));
    if let Some(clipping) = &clipping {
        adamw = adamw.with_grad_clipping(clipping.init());
    }
    let Some(muon_lr) = muon_lr else { return adamw };
    let muon = ScaledMuon::new(muon_lr / lr);
    // Every parameter under `blocks` is a 2-D linear weight (the norms have no parameters).
    adamw.with_group(ParamGroup::from_predicate("blocks"), muon, clipping.map(|c| c.init()))
}

/// Burn's Muon with a learning rate of its own (a fixed multiple of the AdamW schedule's), and
/// Keller Jordan's shape rule applied the way PyTorch's Muon does.
#[derive(Clone)]
pub struct ScaledMuon {
    muon: burn::optim::Muon,
    /// The same momentum as `muon`'s, for the bf16 path.
    momentum: Momentum,
    lr_scale: f64,
}

fn momentum() -> MomentumConfig {
    MomentumConfig { momentum: MOMENTUM, dampening: 0.0, nesterov: true }
}

impl ScaledMuon {
    fn new(lr_scale: f64) -> Self {
        ScaledMuon {
            // No weight decay, as in nanochat and in the PyTorch runs that chose this recipe.
            muon: MuonConfig::new()
                .with_weight_decay(None)
                .with_momentum(momentum())
                .with_ns_coefficients(NS_COEFFICIENTS)
                .with_ns_steps(NS_STEPS)
                .with_epsilon(NS_EPSILON)
                .with_adjust_lr_fn(AdjustLrFn::Original)
                .build(),
            momentum: Momentum::new(&momentum()),
            lr_scale,
        }
    }

    /// Muon's `Original` rule scales the step by √max(1, rows/cols), meant as fan-out/fan-in
    /// for PyTorch's `[out, in]` weights. Burn stores linear weights as `[in, out]`, so the
    /// rule would boost the MLP's down-projection instead of its up-projection; this factor
    /// swaps it back, so our runs match the PyTorch recipe.
    fn layout_correction(shape: &[usize]) -> f64 {
        let (rows, cols) = (shape[0] as f64, shape[1] as f64);
        (cols / rows).max(1.0).sqrt() / (rows / cols).max(1.0).sqrt()
    }
}

impl Optimizer for ScaledMuon {
    type State<const D: usize> = <burn::optim::Muon as Optimizer>::State<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let lr = lr * self.lr_scale * Self::layout_correction(&tensor.dims());
        if D != 2 || crate::fused::matmul_in_force().is_none() || !crate::fused::available(&grad) {
            return self.muon.step(lr, tensor, grad, state);
        }
        // Burn's Muon step (no weight decay, `Original` shape rule), orthogonalising through
        // `fused::matmul`: its transposes read in place, and on the AMX tiles where training is bf16.
        let (update, momentum) = self.momentum.transform(grad, state.map(|s| s.momentum));
        let dims = update.dims();
        let lr = lr * (dims[0] as f64 / dims[1] as f64).max(1.0).sqrt();
        let data = update.into_data().try_into_vec::<f32>().expect("Muon's gradients are f32");
        let update = Tensor::from_data(TensorData::new(orthogonalise(data, dims[0], dims[1]), dims), &tensor.device());
        (tensor - update.mul_scalar(lr), Some(MuonState::new(momentum)))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        <burn::optim::Muon as Optimizer>::to_device(state, device)
    }
}

/// The elements [`frobenius_norm`] sums on one thread, before the chunks' sums are added in order.
const NORM_CHUNK: usize = 1 << 14;

/// √(Σ x²), summed in f64 by chunks on the current pool and the chunks' sums added in order, so the
/// result does not depend on how the pool split the work (one thread took 0.4 ms of a `base`
/// training step's 384 × 1536 weight; measured).
fn frobenius_norm(x: &[f32]) -> f64 {
    let sums: Vec<f64> = x.par_chunks(NORM_CHUNK).map(|c| c.iter().map(|&v| v as f64 * v as f64).sum()).collect();
    sums.iter().sum::<f64>().sqrt()
}

/// `g` (`[rows, cols]`, row-major) orthogonalised by Muon's quintic Newton–Schulz iteration:
/// Burn's `zeropower_via_newtonschulz`, with the training step's products (bf16 on the AMX tiles,
/// as Keller Jordan's Muon iterates in bf16, or f32). With `X` the wide one of `g` and `gᵀ` and
/// `A = X Xᵀ`, each step is `X ← (a I + b A + c A²) X`. The iteration holds `Xᵀ`, row-major,
/// which is how [`gram`] and the last product read it fastest: a tall `g` is `Xᵀ` already, a wide
/// one is transposed once on the way in and once on the way out. A weight at least twice as wide
/// as tall iterates in f32 on its Gram matrix instead ([`gram_newton_schulz`]): a `base` MLP
/// weight's orthogonalisation took 15–18 ms instead of 20–25 (measured).
fn orthogonalise(g: Vec<f32>, rows: usize, cols: usize) -> Vec<f32> {
    let tall = rows > cols;
    let (r, c) = (rows.min(cols), rows.max(cols));
    let mut xt = if tall { g } else { transpose(&g, rows, cols) };
    let norm = (frobenius_norm(&xt) as f32).max(NS_EPSILON);
    xt.par_chunks_mut(NORM_CHUNK).for_each(|chunk| chunk.iter_mut().for_each(|v| *v /= norm));
    let gram_form = c >= 2 * r && crate::fused::matmul_in_force() == Some(crate::fused::Matmul::F32);
    let xt = if gram_form { gram_newton_schulz(xt, r, c) } else { newton_schulz(xt, r, c) };
    if tall { xt } else { transpose(&xt, c, r) }
}

/// The iteration as written: `A = X Xᵀ` and `A² = Aᵀ A` are symmetric, so both come from [`gram`],
/// which in f32 multiplies only the blocks on and above the diagonal: a third less arithmetic for
/// a square weight than three full products. `xt` is `Xᵀ`, `[c, r]`.
fn newton_schulz(mut xt: Vec<f32>, r: usize, c: usize) -> Vec<f32> {
    let (mut a, mut poly, mut next) = (vec![0.0f32; r * r], vec![0.0f32; r * r], vec![0.0f32; c * r]);
    for _ in 0..NS_STEPS {
        gram(c, r, &xt, &mut a);
        gram(r, r, &a, &mut poly);
        polynomial(&a, &mut poly, r);
        // X ← poly X, held as its transpose: Xᵀ polyᵀ = Xᵀ poly (poly is symmetric).
        matmul(c, r, r, Mat::rows(&xt, r), Mat::rows(&poly, r), &mut next, r, false);
        std::mem::swap(&mut xt, &mut next);
    }
    xt
}

/// Steps of the Gram form run before `X` is formed and its Gram matrix taken afresh: the
/// restart keeps rounding in `R` from growing. Measured in f32 against the iteration in f64 (a
/// 384 × 1536 matrix, spectra from Gaussian to rank 8): the iteration as written 0.6–3·10⁻⁵ of
/// the result's norm off, the Gram form without a restart up to 1.8·10⁻⁴, with it at step 3
/// 1–3·10⁻⁵ (at step 2: up to 4·10⁻⁵).
const GRAM_RUNS: [usize; 2] = [3, NS_STEPS - 3];

/// The same iteration on the r × r Gram matrix (Dao AI Lab's Gram Newton–Schulz, 2026,
/// tridao.me/blog/2026/gram-newton-schulz): every step's `P = a I + b R + c R²` is a polynomial
/// in `R = X Xᵀ`, so a run of steps' `X ← P X` gathers into one `Q = P₀ P₁ …`, and `R` follows
/// `X` as `R ← P R P` without forming it. `X` (r × c) is multiplied twice a run, for `R` at its
/// start and for `Q X` at its end; everything else is r × r. For c = 4r (an MLP weight) that is
/// 30 r³ multiply-adds against 45; for a square weight it would be more, hence c ≥ 2r. The same
/// function in exact arithmetic, as close to it in f32 as the iteration as written
/// ([`GRAM_RUNS`]). In bf16 the Gram form is unstable (Dao AI Lab's report): f32 only.
fn gram_newton_schulz(xt: Vec<f32>, r: usize, c: usize) -> Vec<f32> {
    GRAM_RUNS.iter().fold(xt, |xt, &steps| gram_run(&xt, r, c, steps))
}

/// `steps` steps of [`gram_newton_schulz`] from `Xᵀ` (`[c, r]`); returns the new `Xᵀ`.
fn gram_run(xt: &[f32], r: usize, c: usize, steps: usize) -> Vec<f32> {
    let mut gram_r = vec![0.0f32; r * r];
    gram(c, r, xt, &mut gram_r);
    let [mut p, mut q, mut t] = [(); 3].map(|_| vec![0.0f32; r * r]);
    for step in 0..steps {
        // R is symmetric (up to rounding, once it is P (R P)), so R² is `gram`'s Rᵀ R.
        gram(r, r, &gram_r, &mut p);
        polynomial(&gram_r, &mut p, r);
        if step == 0 {
            q.copy_from_slice(&p);
        } else {
            matmul(r, r, r, Mat::rows(&q, r), Mat::rows(&p, r), &mut t, r, false);
            std::mem::swap(&mut q, &mut t);
        }
        if step + 1 < steps {
            // R ← P (R P): as two products it stayed ~20× closer to the iteration as written than
            // R P² did (measured in f32).
            matmul(r, r, r, Mat::rows(&gram_r, r), Mat::rows(&p, r), &mut t, r, false);
            matmul(r, r, r, Mat::rows(&p, r), Mat::rows(&t, r), &mut gram_r, r, false);
        }
    }
    // X ← Q X, held as its transpose: Xᵀ Qᵀ.
    let mut out = vec![0.0f32; c * r];
    matmul(c, r, r, Mat::rows(xt, r), Mat::transposed(&q, r), &mut out, r, false);
    out
}

/// `poly ← a I + b A + c poly`, where `poly` holds `A²` on the way in (A is r × r).
fn polynomial(a: &[f32], poly: &mut [f32], r: usize) {
    let (ca, cb, cc) = NS_COEFFICIENTS;
    poly.iter_mut().zip(a).for_each(|(p, &v)| *p = cc * *p + cb * v);
    (0..r).for_each(|i| poly[i * (r + 1)] += ca);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fused::{Matmul, amx};

    #[test]
    fn layout_correction_moves_the_boost_to_the_up_projection() {
        // c_fc is [in 256, out 1024] in Burn: PyTorch's rule gives it √4 = 2, Burn's gives 1.
        assert_eq!(ScaledMuon::layout_correction(&[256, 1024]), 2.0);
        // c_proj of the MLP is [1024, 256]: PyTorch gives 1, Burn would give 2.
        assert_eq!(ScaledMuon::layout_correction(&[1024, 256]), 0.5);
        assert_eq!(ScaledMuon::layout_correction(&[256, 256]), 1.0);
    }

    #[test]
    fn muon_in_a_training_step_takes_the_steps_burns_muon_takes() {
        let device = Device::flex();
        device.seed(3);
        // Wide and tall, neither side a multiple of the AMX tiles; the middle two span several of
        // `gram`'s blocks; the last two are over twice as wide as tall, so f32 takes the Gram form
        // (without its restart they missed this bound: 2·10⁻⁵ of the step, measured).
        for shape in [[24, 40], [40, 24], [150, 100], [100, 150], [48, 160], [160, 48]] {
            let weight = Tensor::<2>::random(shape, burn::tensor::Distribution::Normal(0.0, 1.0), &device);
            let grads = [0, 1].map(|_| Tensor::<2>::random(shape, burn::tensor::Distribution::Normal(0.0, 1.0), &device));
            // Outside a training step (no precision applied) the step is Burn's own Muon.
            let run = |precision: Option<Matmul>| {
                let _guard = precision.map(Matmul::apply);
                let optim = ScaledMuon::new(1.0);
                let (mut w, mut state) = (weight.clone(), None);
                for g in &grads {
                    (w, state) = optim.step(0.02, w, g.clone(), state);
                }
                (w - weight.clone()).into_data().try_to_vec::<f32>().unwrap()
            };
            let burn = run(None);
            let rms = |v: &mut dyn Iterator<Item = f32>| (v.map(|x| x * x).sum::<f32>() / burn.len() as f32).sqrt();
            let size = rms(&mut burn.iter().copied());
            let diff = |ours: &[f32]| rms(&mut ours.iter().zip(&burn).map(|(a, b)| a - b));
            // The same iteration with f32 products: equal up to the order of the sums.
            let f32_diff = diff(&run(Some(Matmul::F32)));
            assert!(size > 0.0 && f32_diff < 1e-5 * size, "{shape:?}: f32 steps differ by {f32_diff} (rms; the step's is {size})");
            if amx::available() {
                // bf16 keeps 8 bits of each factor, and the iteration's large coefficients (3.4,
                // −4.8, 2.0) cancel: the steps differ by about 2% (rms).
                let bf16_diff = diff(&run(Some(Matmul::Bf16)));
                assert!(bf16_diff < 4e-2 * size && bf16_diff > 0.0, "{shape:?}: bf16 steps differ by {bf16_diff} (rms; the step's is {size})");
            }
        }
    }
}
