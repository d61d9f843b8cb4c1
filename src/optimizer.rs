//! The optimiser: AdamW for every weight, or nanochat's split — Muon for the transformer
//! blocks' weight matrices, AdamW for the embedding and the head.
//!
//! Muon (momentum, then each update matrix orthogonalised by Newton–Schulz iterations) learned
//! far faster per step on this model than AdamW did (docs/training.md). It is Burn's own
//! `Muon`; this file only routes the parameters and gives Muon its own learning rate.

use burn::grad_clipping::GradientClippingConfig;
use burn::module::ParamGroup;
use burn::optim::{AdamWConfig, AdjustLrFn, LearningRate, ModuleOptimizer, MuonConfig, Optimizer};
use burn::prelude::*;

/// Builds the optimiser from plain numbers: AdamW at `lr` (with `weight_decay`), and Muon for the
/// blocks' matrices when `muon_lr` is given. `step` takes the AdamW learning rate; the Muon group
/// runs at `muon_lr / lr` times it, so one schedule drives both. `grad_clip` 0 clips nothing.
pub fn setup_optimizer(lr: f64, muon_lr: Option<f64>, weight_decay: f64, grad_clip: f32) -> ModuleOptimizer {
    let clipping = (grad_clip > 0.0).then_some(GradientClippingConfig::Norm(grad_clip));
    let adamw = AdamWConfig::new()
        // PyTorch's default. Burn's 1e-5 damps the updates of every weight whose gradients are
        // small, and trained measurably slower than PyTorch on the same recipe (docs/training.md).
        .with_epsilon(1e-8)
        .with_weight_decay(weight_decay as f32)
        .with_grad_clipping(clipping.clone())
        .init();
    let Some(muon_lr) = muon_lr else { return adamw };
    let muon = ScaledMuon {
        // No weight decay, as in nanochat and in the PyTorch runs that chose this recipe.
        muon: MuonConfig::new().with_weight_decay(None).with_adjust_lr_fn(AdjustLrFn::Original).build(),
        lr_scale: muon_lr / lr,
    };
    // Every parameter under `blocks` is a 2-D linear weight (the norms have no parameters).
    adamw.with_group(ParamGroup::from_predicate("blocks"), muon, clipping.map(|c| c.init()))
}

/// Burn's Muon with a learning rate of its own (a fixed multiple of the AdamW schedule's), and
/// Keller Jordan's shape rule applied the way PyTorch's Muon does.
#[derive(Clone)]
pub struct ScaledMuon {
    muon: burn::optim::Muon,
    lr_scale: f64,
}

impl ScaledMuon {
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
        self.muon.step(lr, tensor, grad, state)
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        <burn::optim::Muon as Optimizer>::to_device(state, device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_correction_moves_the_boost_to_the_up_projection() {
        // c_fc is [in 256, out 1024] in Burn: PyTorch's rule gives it √4 = 2, Burn's gives 1.
        assert_eq!(ScaledMuon::layout_correction(&[256, 1024]), 2.0);
        // c_proj of the MLP is [1024, 256]: PyTorch gives 1, Burn would give 2.
        assert_eq!(ScaledMuon::layout_correction(&[1024, 256]), 0.5);
        assert_eq!(ScaledMuon::layout_correction(&[256, 256]), 1.0);
    }
}
