//! Masked diffusion: the noising process used in training and the samplers that reverse it.

pub mod decode;
pub mod masking;
pub mod remdm;
pub mod rules;
pub mod sampler;
#[cfg(test)]
mod sampler_tests;

pub use decode::{DecodeOptions, Remask, Strategy, Timestep};
pub use sampler::{Cell, DEFAULT_OVERLAP, Denoiser, Frame, Generation, Sampler, Stepper, Time};

use crate::diffusion::masking::timestep_bucket;
use crate::kind::ModelKind;
use crate::model::{Model, KvCache};
use burn::prelude::*;
use std::ops::Range;
use std::sync::Mutex;

/// A trained model of any kind on a device, as a `Denoiser` for the samplers.
pub struct ModelDenoiser {
    pub model: Model,
    pub device: Device,
    /// Keys and values of the last full pass, for `logits_cached`.
    cache: Mutex<Option<KvCache>>,
    /// A causal model's last reading and its keys and values (`autoregressive::next_char_logits`).
    causal_cache: Mutex<Option<(Vec<u32>, KvCache)>>,
}

impl ModelDenoiser {
    pub fn new(model: Model, device: Device) -> Self {
        ModelDenoiser { model: model.valid(), device, cache: Mutex::new(None), causal_cache: Mutex::new(None) }
    }

    fn ints(&self, v: impl IntoIterator<Item = usize>) -> Tensor<1, Int> {
        let v: Vec<i64> = v.into_iter().map(|x| x as i64).collect();
        let n = v.len();
        Tensor::<1, Int>::from_data(TensorData::new(v, [n]), &self.device)
    }

    fn inputs(&self, tokens: &[u32], time: Time) -> (Tensor<2, Int>, Option<Tensor<1, Int>>) {
        let input = self.ints(tokens.iter().map(|&t| t as usize)).unsqueeze_dim::<2>(0);
        let n = self.model.config.n_timesteps;
        let bucket = match time {
            Time::MaskRate(rate) => timestep_bucket(rate, n) as usize,
            Time::Step(step) => step.min(n.saturating_sub(1)),
        };
        (input, (n > 0).then(|| self.ints([bucket])))
    }
}

impl Denoiser for ModelDenoiser {
    fn vocab_size(&self) -> usize {
        self.model.config.vocab_size
    }

    fn context(&self) -> usize {
        self.model.config.context
    }

    fn kind(&self) -> ModelKind {
        self.model.config.kind
    }

    fn logits(&self, tokens: &[u32], time: Time, positions: &[usize]) -> Vec<f32> {
        if self.kind().is_causal() {
            let mut cache = self.causal_cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            return crate::autoregressive::next_char_logits(&self.model, tokens, positions, &mut cache);
        }
        let (input, timesteps) = self.inputs(tokens, time);
        // Every position in order is the plain forward pass: no gathering needed.
        let all = positions.iter().copied().eq(0..tokens.len());
        let positions = (!all).then(|| self.ints(positions.iter().copied()));
        let logits = crate::fused::on_own_pool(|| self.model.forward_at(input, timesteps, positions));
        logits.try_into_vec_as::<f32>().expect("logits are readable as f32")
    }

    fn logits_cached(&self, tokens: &[u32], time: Time, positions: &[usize], rows: &[Range<usize>], refresh: bool) -> Vec<f32> {
        if self.kind().is_causal() {
            return self.logits(tokens, time, positions);
        }
        let (input, timesteps) = self.inputs(tokens, time);
        let mut cache = self.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let kept = cache.take();
        let (logits, kv) = crate::fused::on_own_pool(|| match kept {
            Some(kv) if !refresh && kv.len() == tokens.len() => (self.model.forward_rows(input, timesteps, rows, positions, &kv), kv),
            _ => self.model.forward_caching(input, timesteps, Some(self.ints(positions.iter().copied()))),
        });
        *cache = Some(kv);
        logits.try_into_vec_as::<f32>().expect("logits are readable as f32")
    }
}
