//! The Shakespeare checkpoint compiled into the binary, so `tiny-diffusion` works from any
//! directory with nothing downloaded. `--checkpoint DIR` overrides it everywhere.

use crate::checkpoint::{self, CheckpointConfig};
use crate::model::DiffusionModel;
use anyhow::{Context, Result};
use burn::prelude::Device;
use std::path::Path;

pub const NAME: &str = "shakespeare (shipped)";
const CONFIG: &str = include_str!("../checkpoints/shipped/config.json");
const WEIGHTS: &[u8] = include_bytes!("../checkpoints/shipped/model.safetensors");

pub fn load(device: &Device) -> Result<(CheckpointConfig, DiffusionModel)> {
    let config = CheckpointConfig::from_json(CONFIG).context("the shipped checkpoint's config")?;
    let model = checkpoint::model_from_bytes(&config.model, WEIGHTS.to_vec(), device).context("the shipped checkpoint's weights")?;
    Ok((config, model))
}

/// Loads a checkpoint directory, a PyTorch weights file (`.pt`, `.pth`, `.safetensors`, imported
/// on the fly), or the shipped checkpoint when none is given. Returns a display name too.
pub fn load_or_shipped(dir: Option<&Path>, device: &Device) -> Result<(CheckpointConfig, DiffusionModel, String)> {
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
        None => load(device).map(|(c, m)| (c, m, NAME.to_string())),
    }
}
