//! Model kinds: what a model is trained to predict, and so how it is trained, judged and decoded.
//! The transformer (`model.rs`) is the same for every kind but for its attention mask.
//!
//! A new kind is one file (its batches and decoding, as `autoregressive.rs`) and a variant here.

use crate::diffusion::{DecodeOptions, Sampler, Stepper};
use crate::diffusion::masking::{self, MaskSchedule};
use crate::data::Batch;
use crate::vocab::MASK_ID;
use crate::autoregressive;
use rand::Rng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// Masked diffusion: hidden characters are predicted from both sides, many per step.
    #[default]
    Masked,
    /// Autoregressive: each character is predicted from those before it, one per step.
    Ar,
    /// Uniform-noise diffusion: random characters are corrected, every position every step.
    Uniform,
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

    /// Whether a position's attention sees only itself and earlier positions.
    pub fn is_causal(self) -> bool {
        self == ModelKind::Ar
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

    /// The stepper that decodes one window, `(tokens, prompt, confidence)` with MASK where a
    /// character is to be written, of a model with `vocab_size` ids.
    pub fn stepper(self, window: (Vec<u32>, Vec<bool>, Vec<f32>), options: DecodeOptions, vocab_size: usize, rng: &mut StdRng) -> Box<dyn Stepper> {
        let (tokens, prompt, confidence) = window;
        match self {
            ModelKind::Masked | ModelKind::Ar => Box::new(Sampler::resume(tokens, prompt, confidence, options)),
            ModelKind::Uniform => Box::new(crate::uniform::UniformSampler::new(tokens, confidence, options, vocab_size, rng)),
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
