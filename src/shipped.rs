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

/// A shipped checkpoint: compiled into the binary with the default `shipped` feature, else read
/// from `checkpoints/<dir>` in the working directory or beside the executable (a slim build carried
/// to another machine with its checkpoints folder).
pub struct Shipped {
    pub name: &'static str,
    dir: &'static str,
    /// config.json and model.safetensors, when compiled in.
    files: Option<(&'static str, &'static [u8])>,
}

#[cfg(feature = "shipped")]
macro_rules! compiled_in {
    ($dir:literal) => {
        Some((
            include_str!(concat!("../checkpoints/", $dir, "/config.json")),
            include_bytes!(concat!("../checkpoints/", $dir, "/model.safetensors")).as_slice(),
        ))
    };
}

#[cfg(not(feature = "shipped"))]
macro_rules! compiled_in {
    ($dir:literal) => {
        None
    };
}

/// The masked-diffusion model every front end uses by default.
pub const DIFFUSION: Shipped = Shipped { name: "shakespeare (shipped)", dir: "shipped", files: compiled_in!("shipped") };

/// The autoregressive model of the same size, trained on the same text.
pub const AUTOREGRESSIVE: Shipped = Shipped { name: "shakespeare-ar (shipped)", dir: "shipped-ar", files: compiled_in!("shipped-ar") };

/// Uniform-noise diffusion of the same size, trained on the same text.
pub const UNIFORM: Shipped = Shipped { name: "shakespeare-uniform (shipped)", dir: "shipped-uniform", files: compiled_in!("shipped-uniform") };

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
        let Some((_, weights)) = self.files else {
            return checkpoint::load(&self.dir_on_disk()?, device);
        };
        let config = self.config()?;
        let model = checkpoint::model_from_bytes(&config.model, weights.to_vec(), device)
            .with_context(|| format!("the {} checkpoint's weights", self.name))?;
        Ok((config, model))
    }

    /// The checkpoint's config alone, its weights not read.
    pub fn config(&self) -> Result<CheckpointConfig> {
        match self.files {
            Some((config, _)) => CheckpointConfig::from_json(config).with_context(|| format!("the {} checkpoint's config", self.name)),
            None => checkpoint::read_config(&self.dir_on_disk()?),
        }
    }

    /// Where a build without the compiled-in checkpoints reads them: `checkpoints/<dir>` in the
    /// working directory, or else beside the executable.
    fn dir_on_disk(&self) -> Result<std::path::PathBuf> {
        let relative = Path::new("checkpoints").join(self.dir);
        let beside_exe = std::env::current_exe().ok().and_then(|exe| Some(exe.parent()?.join(&relative)));
        let found = std::iter::once(relative.clone()).chain(beside_exe).find(|dir| dir.join(checkpoint::CONFIG_FILE).is_file());
        found.with_context(|| {
            format!(
                "this build has no compiled-in models (it was built without the `shipped` feature), and no {} was found \
                 here or beside the program: pass --checkpoint DIR, or copy the checkpoints folder beside it",
                relative.display()
            )
        })
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
