//! Masked diffusion: the noising process used in training and the samplers that reverse it.

pub mod decode;
pub mod masking;
pub mod rules;
pub mod sampler;
#[cfg(test)]
mod sampler_tests;

pub use decode::{DecodeOptions, Strategy, Timestep};
pub use sampler::{Denoiser, Frame, Generation, Sampler, Time};

use crate::diffusion::masking::timestep_bucket;
use crate::model::{DiffusionModel, ModelConfig};
use burn::prelude::*;

/// A trained model on a device, as a `Denoiser` for the samplers.
pub struct ModelDenoiser {
    pub model: DiffusionModel,
    pub config: ModelConfig,
    pub device: Device,
}

impl ModelDenoiser {
    pub fn new(model: DiffusionModel, config: ModelConfig, device: Device) -> Self {
        ModelDenoiser { model: model.valid(), config, device }
    }
}

impl Denoiser for ModelDenoiser {
    fn vocab_size(&self) -> usize {
        self.config.vocab_size
    }

    fn context(&self) -> usize {
        self.config.context
    }

    fn logits(&self, tokens: &[u32], time: Time, positions: &[usize]) -> Vec<f32> {
        let ints = |v: Vec<i64>, len| Tensor::<1, Int>::from_data(TensorData::new(v, [len]), &self.device);
        let input = ints(tokens.iter().map(|&t| t as i64).collect(), tokens.len()).unsqueeze_dim::<2>(0);
        let n = self.config.n_timesteps;
        let bucket = match time {
            Time::MaskRate(rate) => timestep_bucket(rate, n) as usize,
            Time::Step(step) => step.min(n.saturating_sub(1)),
        };
        let timesteps = (n > 0).then(|| ints(vec![bucket as i64], 1));
        // Every position in order is the plain forward pass: no gathering needed.
        let all = positions.iter().copied().eq(0..tokens.len());
        let positions = (!all).then(|| ints(positions.iter().map(|&p| p as i64).collect(), positions.len()));
        let logits = crate::fused::on_own_pool(|| self.model.forward_at(input, timesteps, positions));
        logits.try_into_vec_as::<f32>().expect("logits are readable as f32")
    }
}
