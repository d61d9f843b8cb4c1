//! AdamW in one pass over each weight. Burn's `AdamW` takes a dozen elementwise ops per weight
//! (moments, their bias corrections, the square root, the division, the decay, the update), each
//! reading and writing a whole tensor; this reads the weight, its gradient and both moments once
//! and writes them back once, in parallel. The arithmetic is Burn's, operation for operation (the
//! same bits, tested), and the saved state is Burn's type, so a run resumes across the two.

use burn::optim::{AdamW, AdamWConfig, AdamWState, AdaptiveMomentumState, LearningRate, Optimizer};
use burn::prelude::*;
use rayon::prelude::*;

/// Moment decay rates: Burn's and PyTorch's defaults.
const BETA_1: f32 = 0.9;
const BETA_2: f32 = 0.999;

/// Elements per parallel task.
const CHUNK: usize = 16 * 1024;

#[derive(Clone)]
pub struct FusedAdamW {
    /// Burn's own, for what the pass does not take: tensors off the CPU backend or not f32, and
    /// AMSGrad state.
    burn: AdamW,
    epsilon: f32,
    weight_decay: f32,
}

impl FusedAdamW {
    pub fn new(epsilon: f32, weight_decay: f32) -> Self {
        let burn = AdamWConfig::new().with_beta_1(BETA_1).with_beta_2(BETA_2).with_epsilon(epsilon).with_weight_decay(weight_decay).build();
        FusedAdamW { burn, epsilon, weight_decay }
    }
}

impl Optimizer for FusedAdamW {
    type State<const D: usize> = AdamWState<D>;

    fn step<const D: usize>(&self, lr: LearningRate, tensor: Tensor<D>, grad: Tensor<D>, state: Option<AdamWState<D>>) -> (Tensor<D>, Option<AdamWState<D>>) {
        let amsgrad = state.as_ref().is_some_and(|s| s.momentum.max_moment_2.is_some());
        if !crate::fused::available(&grad) || !crate::fused::available(&tensor) || amsgrad {
            return self.burn.step(lr, tensor, grad, state);
        }
        let (shape, device) = (tensor.shape(), tensor.device());
        let floats = |t: Tensor<D>| t.into_data().try_into_vec::<f32>().expect("AdamW's tensors are f32");
        let (mut w, g) = (floats(tensor), floats(grad));
        // No state yet: moments of zero, which the first update turns into Burn's first moments
        // exactly (0 · β + x = x).
        let (time, mut m1, mut m2) = match state {
            Some(s) => (s.momentum.time + 1, floats(s.momentum.moment_1), floats(s.momentum.moment_2)),
            None => (1, vec![0.0; w.len()], vec![0.0; w.len()]),
        };
        let (f1, f2) = (1.0 - BETA_1, 1.0 - BETA_2);
        let (c1, c2) = (1.0 - BETA_1.powi(time as i32), 1.0 - BETA_2.powi(time as i32));
        // As Burn scales by them: the decay factor worked out in f64, both cast to f32.
        let decay_rate = lr * self.weight_decay as f64;
        let (keep, lr) = ((1.0 - decay_rate) as f32, lr as f32);
        let eps = self.epsilon;
        w.par_chunks_mut(CHUNK).zip(m1.par_chunks_mut(CHUNK)).zip(m2.par_chunks_mut(CHUNK)).zip(g.par_chunks(CHUNK)).for_each(|(((w, m1), m2), g)| {
            for (((w, m1), m2), &g) in w.iter_mut().zip(m1).zip(m2).zip(g) {
                *m1 = *m1 * BETA_1 + g * f1;
                *m2 = *m2 * BETA_2 + g * g * f2;
                let delta = (*m1 / c1) / ((*m2 / c2).sqrt() + eps);
                let decayed = if decay_rate == 0.0 { *w } else { *w * keep };
                *w = decayed - delta * lr;
            }
        });
        let tensor = |data: Vec<f32>| Tensor::<D>::from_data(TensorData::new(data, shape.clone()), &device);
        let momentum = AdaptiveMomentumState::new(time, tensor(m1), tensor(m2));
        (tensor(w), Some(AdamWState::new(momentum)))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        AdamW::to_device(state, device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    /// Three steps of each from the same start, with and without weight decay: the same weights
    /// and moments, bit for bit.
    #[test]
    fn one_pass_steps_as_burns_adamw_steps() {
        let device = Device::flex();
        device.seed(5);
        let shape = [70, 300];
        let start = Tensor::<2>::random(shape, Distribution::Normal(0.0, 1.0), &device);
        let grads: Vec<Tensor<2>> = (0..3).map(|_| Tensor::random(shape, Distribution::Normal(0.0, 0.1), &device)).collect();
        for weight_decay in [0.0, 0.1] {
            let fused = FusedAdamW::new(1e-8, weight_decay);
            let (mut ours, mut burns) = ((start.clone(), None), (start.clone(), None));
            for (i, g) in grads.iter().enumerate() {
                let lr = 0.01 * (i + 1) as f64;
                ours = fused.step(lr, ours.0, g.clone(), ours.1);
                burns = fused.burn.step(lr, burns.0, g.clone(), burns.1);
            }
            let moved = (burns.0.clone() - start.clone()).abs().max().into_scalar::<f32>();
            assert!(moved > 0.01, "the steps moved the weights by {moved}");
            let (ours_state, burns_state) = (ours.1.unwrap().momentum, burns.1.unwrap().momentum);
            assert_eq!(ours_state.time, burns_state.time);
            for (what, a, b) in [("weights", ours.0, burns.0), ("first moments", ours_state.moment_1, burns_state.moment_1), ("second moments", ours_state.moment_2, burns_state.moment_2)] {
                assert_eq!(a.into_data(), b.into_data(), "decay {weight_decay}: the {what} differ");
            }
        }
    }
}
