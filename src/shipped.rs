//! The Shakespeare checkpoints compiled into the binary, so `tiny-diffusion` works from any
//! directory with nothing downloaded: the masked-diffusion model, its autoregressive twin (the judge
//! of generated text, and the other lane of `compare`) and a uniform-noise diffusion model.
//! `--checkpoint` overrides them.

use crate::checkpoint::{self, CheckpointConfig};
use crate::kind::ModelKind;
use crate::model::Model;
use anyhow::{Context, Result};
use burn::prelude::Device;
use std::path::Path;

/// A checkpoint compiled into the binary.
pub struct Shipped {
    pub name: &'static str,
    config: &'static str,
    weights: &'static [u8],
}

/// The masked-diffusion model every front end uses by default.
pub const DIFFUSION: Shipped = Shipped {
    name: "shakespeare (shipped)",
    config: include_str!("../checkpoints/shipped/config.json"),
    weights: include_bytes!("../checkpoints/shipped/model.safetensors"),
};

/// The autoregressive model of the same size, trained on the same text.
pub const AUTOREGRESSIVE: Shipped = Shipped {
    name: "shakespeare-ar (shipped)",
    config: include_str!("../checkpoints/shipped-ar/config.json"),
    weights: include_bytes!("../checkpoints/shipped-ar/model.safetensors"),
};

/// Uniform-noise diffusion of the same size, trained on the same text.
pub const UNIFORM: Shipped = Shipped {
    name: "shakespeare-uniform (shipped)",
    config: include_str!("../checkpoints/shipped-uniform/config.json"),
    weights: include_bytes!("../checkpoints/shipped-uniform/model.safetensors"),
};

/// The shipped model of a kind, if one ships.
pub fn of_kind(kind: ModelKind) -> Option<&'static Shipped> {
    match kind {
        ModelKind::Masked => Some(&DIFFUSION),
        ModelKind::Ar => Some(&AUTOREGRESSIVE),
        ModelKind::Uniform => Some(&UNIFORM),
    }
}

impl Shipped {
    pub fn load(&self, device: &Device) -> Result<(CheckpointConfig, Model)> {
        let config = CheckpointConfig::from_json(self.config).with_context(|| format!("the {} checkpoint's config", self.name))?;
        let model = checkpoint::model_from_bytes(&config.model, self.weights.to_vec(), device)
            .with_context(|| format!("the {} checkpoint's weights", self.name))?;
        Ok((config, model))
    }
}

/// The shipped masked-diffusion model.
pub fn load(device: &Device) -> Result<(CheckpointConfig, Model)> {
    DIFFUSION.load(device)
}

/// Loads a checkpoint directory, a PyTorch weights file (`.pt`, `.pth`, `.safetensors`, imported
/// on the fly), or the shipped masked-diffusion model when none is given. Returns a display name too.
pub fn load_or_shipped(dir: Option<&Path>, device: &Device) -> Result<(CheckpointConfig, Model, String)> {
    load_or(dir, &DIFFUSION, device)
}

/// Like `load_or_shipped`, with `fallback` when no path is given.
pub fn load_or(dir: Option<&Path>, fallback: &Shipped, device: &Device) -> Result<(CheckpointConfig, Model, String)> {
    match dir {
        Some(file) if file.is_file() => {
            let (config, model) = crate::pytorch::import(file, &Default::default(), device)?;
            let name = file.file_name().map_or_else(|| file.display().to_string(), |n| n.to_string_lossy().into_owned());
            Ok((config, model, name))
        }
        Some(dir) => {
            let (config, model) = checkpoint::load(dir, device)?;
            let name = dir.file_name().map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into_owned());
            Ok((config, model, name))
        }
        None => fallback.load(device).map(|(c, m)| (c, m, fallback.name.to_string())),
    }
}
