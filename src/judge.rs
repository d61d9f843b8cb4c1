//! The judge of generated text: its likelihood under an autoregressive model (generative
//! perplexity, as MDLM and ReMDM report it), in nats per character. Lower means the judge finds
//! the text more like what it was trained on; read it beside distinct bigrams, since text that
//! repeats itself also scores well.

use crate::kind::ModelKind;
use crate::model::Model;
use crate::vocab::Vocab;
use anyhow::{Result, ensure};
use burn::prelude::Device;
use serde::Serialize;
use std::path::Path;

/// An autoregressive model and its vocabulary.
pub struct Judge {
    model: Model,
    vocab: Vocab,
    pub name: String,
}

/// What `eval` reports: the same judge on generated text and on held-out text of the same length.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    pub model: String,
    /// Nats per character of the generated text.
    pub generated_nll: f64,
    /// Nats per character of held-out text (the judge's own validation loss, for scale).
    pub held_out_nll: f64,
}

impl Judge {
    /// The checkpoint at `path` (a directory or PyTorch file), or the shipped autoregressive model.
    pub fn load(path: Option<&Path>, device: &Device) -> Result<Judge> {
        let (config, model, name) = crate::shipped::load_or(path, &crate::shipped::AUTOREGRESSIVE, device)?;
        ensure!(
            config.model.kind == ModelKind::Ar,
            "the judge must be an autoregressive model, but {name} is a {} model (train one with `train --kind ar`)",
            config.model.kind
        );
        Ok(Judge { model, vocab: config.vocab, name })
    }

    /// Nats per character of `text` under the judge. Fails on a character it has never seen.
    pub fn nll(&self, text: &str) -> Result<f64> {
        let ids = self.encode(text)?;
        Ok(crate::autoregressive::nll_per_char(&self.model, &ids))
    }

    /// Nats (summed, not per character) of `prefix` followed by each of `endings`, the prefix read
    /// once. Fails on a character the judge has never seen.
    pub fn total_nll_after(&self, prefix: &str, endings: &[String]) -> Result<Vec<f64>> {
        let endings = endings.iter().map(|e| self.encode(e)).collect::<Result<Vec<_>>>()?;
        Ok(crate::autoregressive::total_nll_after(&self.model, &self.encode(prefix)?, &endings))
    }

    fn encode(&self, text: &str) -> Result<Vec<u32>> {
        self.vocab.encode(text).map_err(|e| anyhow::anyhow!("the judge ({}) cannot read the text: {e}", self.name))
    }

    pub fn verdict(&self, generated: &str, held_out: &str) -> Result<Verdict> {
        Ok(Verdict { model: self.name.clone(), generated_nll: self.nll(generated)?, held_out_nll: self.nll(held_out)? })
    }
}
