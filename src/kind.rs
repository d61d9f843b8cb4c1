//! Model kinds: what each kind of model means for training, judging and decoding, and a trained
//! model of any kind, run (`ModelDenoiser`, `generation`).
//!
//! The kind itself (`ModelKind`) is part of the model's config, in `model.rs`: the transformer is
//! the same for every kind but for its attention mask. This module sits above the kinds' own
//! files (`diffusion`, `autoregressive.rs`, `uniform.rs`) and picks between them; a new kind is
//! one file, a variant of `ModelKind`, and an arm in each match here.

pub use crate::model::ModelKind;

use crate::autoregressive;
use crate::data::Batch;
use crate::diffusion::masking::{self, MaskSchedule, timestep_bucket};
use crate::diffusion::{DecodeOptions, Denoiser, Generation, Sampler, Stepper, Time, Window};
use crate::model::{KvCache, Model};
use crate::vocab::MASK_ID;
use burn::prelude::*;
use rand::Rng;
use rand::rngs::StdRng;
use std::ops::Range;
use std::collections::HashMap;
use std::sync::Mutex;
use std::thread::ThreadId;

/// A generation of `length` characters from `prompt` (MASK at gaps) as `model`'s kind writes it:
/// the kind's decoding options, window overlap and stepper, in windows of the model's context.
pub fn generation(model: &dyn Denoiser, prompt: &[u32], length: usize, overlap: usize, options: DecodeOptions) -> Generation {
    let (kind, context, vocab_size) = (model.kind(), model.context(), model.vocab_size());
    let options = kind.decode_options(options);
    Generation::new(prompt, length, context, kind.overlap(overlap, context), options)
        .with_stepper(Box::new(move |window, rng| kind.stepper(window, options, vocab_size, rng)))
}

impl ModelKind {
    /// What the kind is called on screen.
    pub fn title(self) -> &'static str {
        match self {
            ModelKind::Masked => "masked diffusion",
            ModelKind::Ar => "autoregressive",
            ModelKind::Uniform => "uniform diffusion",
        }
    }

    /// What the validation loss measures.
    pub fn loss_name(self) -> &'static str {
        match self {
            ModelKind::Masked => "masked-token cross-entropy",
            ModelKind::Ar => "next-character cross-entropy",
            ModelKind::Uniform => "cross-entropy of the clean text at every position",
        }
    }

    /// The decoding rule in a few words, for titles.
    pub fn describe(self, options: &DecodeOptions) -> String {
        match self {
            ModelKind::Masked => options.describe(),
            ModelKind::Ar => "one character per step, left to right".into(),
            ModelKind::Uniform => format!("{} steps, every position resampled each step", options.steps),
        }
    }

    /// A training or validation batch from clean windows of a vocabulary of `vocab_size` ids.
    pub fn batch(self, windows: &[Vec<u32>], schedule: MaskSchedule, vocab_size: usize, rng: &mut impl Rng) -> Batch {
        match self {
            ModelKind::Masked => masking::mask_batch(windows, &masking::draw_rates(windows.len(), schedule, rng), rng),
            ModelKind::Ar => autoregressive::shifted_batch(windows),
            ModelKind::Uniform => crate::uniform::corrupted_batch(windows, schedule, vocab_size, rng),
        }
    }

    /// The decoding options this kind runs with when asked for `options`.
    pub fn decode_options(self, options: DecodeOptions) -> DecodeOptions {
        match self {
            ModelKind::Masked | ModelKind::Uniform => options,
            ModelKind::Ar => autoregressive::decode_options(options),
        }
    }

    /// The stepper that decodes one window (masked where a character is to be written) of a model
    /// with `vocab_size` ids.
    pub fn stepper(self, window: Window, options: DecodeOptions, vocab_size: usize, rng: &mut StdRng) -> Box<dyn Stepper> {
        match self {
            ModelKind::Masked | ModelKind::Ar => Box::new(Sampler::resume(window, options)),
            ModelKind::Uniform => Box::new(crate::uniform::UniformSampler::new(window, options, vocab_size, rng)),
        }
    }

    /// Characters of a finished window that condition the next one, when a front end asks for
    /// `overlap` in windows of `context`.
    pub fn overlap(self, overlap: usize, context: usize) -> usize {
        match self {
            ModelKind::Masked | ModelKind::Uniform => overlap,
            ModelKind::Ar => overlap.max(autoregressive::overlap(context)),
        }
    }

    /// Refuses a prompt (MASK at gaps) that this kind cannot fill, saying why.
    pub fn check_prompt(self, prompt: &[u32]) -> Result<(), String> {
        match self {
            ModelKind::Masked | ModelKind::Uniform => Ok(()),
            ModelKind::Ar => {
                let last_known = prompt.iter().rposition(|&t| t != MASK_ID);
                match last_known {
                    Some(end) if prompt[..end].contains(&MASK_ID) => Err(
                        "an autoregressive model writes left to right and cannot see text to the right of a gap: \
                         give it a prompt without gaps, or use a masked-diffusion model to fill them"
                            .into(),
                    ),
                    _ => Ok(()),
                }
            }
        }
    }
}

impl std::fmt::Display for ModelKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.title())
    }
}

/// A trained model of any kind on a device, as a `Denoiser` for the samplers.
pub struct ModelDenoiser {
    pub model: Model,
    pub device: Device,
    /// Keys and values of each thread's last full pass, for `logits_cached`. Per thread, so that
    /// windows decoded at the same time on different threads (the elastic search's candidates)
    /// never read each other's: a window's steps all run on the thread that began it.
    cache: Mutex<HashMap<ThreadId, KvCache>>,
    /// A causal model's last reading and its keys and values (`autoregressive::next_char_logits`).
    causal_cache: Mutex<Option<(Vec<u32>, KvCache)>>,
}

impl ModelDenoiser {
    pub fn new(model: Model, device: Device) -> Self {
        ModelDenoiser { model: model.valid(), device, cache: Mutex::new(Default::default()), causal_cache: Mutex::new(None) }
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

impl ModelDenoiser {
    /// The logits of `positions`, every output of the head: a forward pass of the whole window.
    fn all_logits(&self, tokens: &[u32], time: Time, positions: &[usize]) -> Vec<f32> {
        let (input, timesteps) = self.inputs(tokens, time);
        // Every position in order is the plain forward pass: no gathering needed.
        let all = positions.iter().copied().eq(0..tokens.len());
        let positions = (!all).then(|| self.ints(positions.iter().copied()));
        let logits = crate::fused::on_own_pool(|| self.model.forward_at(input, timesteps, positions));
        logits.try_into_vec_as::<f32>().expect("logits are readable as f32")
    }

    /// A model with length states reads as one without to every sampler: its rows lose them.
    fn without_states(&self, logits: Vec<f32>) -> Vec<f32> {
        let config = &self.model.config;
        if !config.edits {
            return logits;
        }
        logits.chunks_exact(config.vocab_size).flat_map(|row| &row[..config.vocab_ids()]).copied().collect()
    }
}

impl Denoiser for ModelDenoiser {
    fn vocab_size(&self) -> usize {
        self.model.config.vocab_ids()
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
            return autoregressive::next_char_logits(&self.model, tokens, positions, &mut cache);
        }
        self.without_states(self.all_logits(tokens, time, positions))
    }

    fn length_states(&self) -> bool {
        self.model.config.edits
    }

    fn edit_logits(&self, tokens: &[u32], positions: &[usize]) -> Option<Vec<f32>> {
        self.length_states().then(|| self.all_logits(tokens, Time::MaskRate(0.0), positions))
    }

    fn logits_cached(&self, tokens: &[u32], time: Time, positions: &[usize], rows: &[Range<usize>], refresh: bool) -> Vec<f32> {
        if self.kind().is_causal() {
            return self.logits(tokens, time, positions);
        }
        let (input, timesteps) = self.inputs(tokens, time);
        let me = std::thread::current().id();
        let kept = self.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(&me);
        let (logits, kv) = crate::fused::on_own_pool(|| match kept {
            Some(mut kv) if !refresh && kv.len() == tokens.len() => (self.model.forward_rows(input, timesteps, rows, positions, &mut kv), kv),
            _ => self.model.forward_caching(input, timesteps, Some(self.ints(positions.iter().copied()))),
        });
        self.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).insert(me, kv);
        self.without_states(logits.try_into_vec_as::<f32>().expect("logits are readable as f32"))
    }
}
