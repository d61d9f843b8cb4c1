//! Checkpoint directories: `config.json` + `model.safetensors`, plus the optimizer state
//! (`train_state/`) when the checkpoint can be resumed.
//!
//! Every file is written to a temporary name, synced, then renamed into place, so a crash or
//! Ctrl-C never leaves a half-written file under a real name.

use crate::model::{Model, ModelConfig};
use crate::vocab::{MASK_ID, Vocab};
use anyhow::{Context, Result, bail, ensure};
use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::prelude::*;
use burn::store::{ModuleSnapshot, SafetensorsStore};
use burn::tensor::Bytes;
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

pub const CONFIG_FILE: &str = "config.json";
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// Resumable state: the model with its parameter ids (burnpack), and the optimizer state keyed by them.
pub const RESUME_MODEL_FILE: &str = "train_state/model.bpk";
pub const RESUME_OPTIM_FILE: &str = "train_state/optimizer.bpk";
const FORMAT_VERSION: u32 = 1;

/// What a checkpoint records about how it was trained.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainingMeta {
    pub steps: usize,
    pub tokens_seen: u64,
    pub val_loss: Option<f32>,
    pub val_bits_per_char: Option<f32>,
    pub data_sha256: Option<String>,
    pub data_file: Option<String>,
    pub wall_seconds: f64,
    /// The training settings, for reproduction and resumption.
    pub settings: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointConfig {
    pub format_version: u32,
    pub model: ModelConfig,
    pub vocab: Vocab,
    pub mask_id: u32,
    #[serde(default)]
    pub training: TrainingMeta,
}

impl CheckpointConfig {
    pub fn new(model: ModelConfig, vocab: Vocab) -> Self {
        CheckpointConfig { format_version: FORMAT_VERSION, model, vocab, mask_id: MASK_ID, training: TrainingMeta::default() }
    }

    pub fn from_json(text: &str) -> Result<Self> {
        let config: CheckpointConfig = serde_json::from_str(text).context("config.json is not a valid checkpoint config")?;
        ensure!(
            config.format_version <= FORMAT_VERSION,
            "checkpoint format {} is newer than this program understands ({FORMAT_VERSION})",
            config.format_version
        );
        config.model.validate().map_err(anyhow::Error::msg).context("config.json describes an invalid model")?;
        ensure!(
            config.model.vocab_size == config.vocab.size(),
            "config.json: model vocab_size {} does not match the vocabulary ({} ids)",
            config.model.vocab_size,
            config.vocab.size()
        );
        ensure!(config.mask_id == MASK_ID, "config.json: unsupported mask id {}", config.mask_id);
        Ok(config)
    }
}

/// Writes `bytes` to `path` atomically (temp file in the same directory, fsync, rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let name = path.file_name().context("path has no file name")?.to_string_lossy();
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        anyhow::Error::new(e).context(format!("cannot write {}", path.display()))
    })
}

pub fn weights_to_bytes(model: &Model) -> Result<Vec<u8>> {
    let mut store = SafetensorsStore::from_bytes(None);
    model.save_into(&mut store).map_err(|e| anyhow::anyhow!("cannot serialise weights: {e}"))?;
    store.get_bytes().map_err(|e| anyhow::anyhow!("cannot serialise weights: {e}"))
}

/// Saves config and weights; with `optimizer`, also the state needed by `--resume`.
pub fn save(dir: &Path, config: &CheckpointConfig, model: &Model, optimizer: Option<&ModuleOptimizer>) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create checkpoint directory {}", dir.display()))?;
    // Weights first, config last: config.json names what the directory holds.
    write_atomic(&dir.join(WEIGHTS_FILE), &weights_to_bytes(model)?)?;
    if let Some(optim) = optimizer {
        let model_bytes = model.clone().into_record().into_bytes().context("cannot serialise model state")?;
        write_atomic(&dir.join(RESUME_MODEL_FILE), &model_bytes)?;
        let optim_bytes = optim.into_bytes().context("cannot serialise optimizer state")?;
        write_atomic(&dir.join(RESUME_OPTIM_FILE), &optim_bytes)?;
    }
    write_atomic(&dir.join(CONFIG_FILE), serde_json::to_string_pretty(config)?.as_bytes())
}

/// Checks, before any work, that `dir` can hold a checkpoint: it is (or can be made) a directory
/// and a file can be written in it. Training calls this first, so that a run is never lost to an
/// output path that was bad from the start.
pub fn ensure_writable(dir: &Path) -> Result<()> {
    ensure!(!dir.exists() || dir.is_dir(), "--out {} is a file, not a directory: choose another path for the checkpoint", dir.display());
    fs::create_dir_all(dir).with_context(|| format!("cannot create checkpoint directory {}", dir.display()))?;
    let probe = dir.join(format!(".write-test.tmp{}", std::process::id()));
    fs::write(&probe, b"").with_context(|| format!("cannot write in checkpoint directory {}", dir.display()))?;
    let _ = fs::remove_file(&probe);
    Ok(())
}

pub fn read_config(dir: &Path) -> Result<CheckpointConfig> {
    ensure!(dir.is_dir(), "checkpoint directory {} does not exist", dir.display());
    let path = dir.join(CONFIG_FILE);
    let text = fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    CheckpointConfig::from_json(&text).with_context(|| format!("in {}", path.display()))
}

/// Builds a model from config and safetensors bytes, rejecting missing, extra or misshapen tensors.
pub fn model_from_bytes(config: &ModelConfig, weights: Vec<u8>, device: &Device) -> Result<Model> {
    ensure!(!weights.is_empty(), "the weights file is empty");
    let mut model = config.init(device);
    let mut store = SafetensorsStore::from_bytes(Some(weights));
    let result = model.load_from(&mut store).map_err(|e| anyhow::anyhow!("{e}"))?;
    ensure_complete(&result, "weights do not match the model in config.json")?;
    Ok(model)
}

/// Fails, naming every problem after `what`, unless a store filled every tensor of the model.
pub fn ensure_complete(result: &burn::store::ApplyResult, what: &str) -> Result<()> {
    if !result.errors.is_empty() || !result.missing.is_empty() {
        let mut problems: Vec<String> = result.errors.iter().map(ToString::to_string).collect();
        problems.extend(result.missing.iter().map(|(p, _)| format!("missing tensor '{p}'")));
        bail!("{what}: {}", problems.join("; "));
    }
    Ok(())
}

/// Loads a checkpoint directory for inference or evaluation.
pub fn load(dir: &Path, device: &Device) -> Result<(CheckpointConfig, Model)> {
    let config = read_config(dir)?;
    let path = dir.join(WEIGHTS_FILE);
    let bytes = fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let model = model_from_bytes(&config.model, bytes, device).with_context(|| format!("in {}", path.display()))?;
    Ok((config, model))
}

pub fn is_resumable(dir: &Path) -> bool {
    dir.join(RESUME_MODEL_FILE).is_file() && dir.join(RESUME_OPTIM_FILE).is_file()
}

/// Loads a checkpoint with its optimizer state, to continue training.
pub fn load_resumable(dir: &Path, device: &Device, optimizer: ModuleOptimizer) -> Result<(CheckpointConfig, Model, ModuleOptimizer)> {
    let config = read_config(dir)?;
    ensure!(is_resumable(dir), "{} has no optimizer state (it was not saved by `train`), so it cannot be resumed", dir.display());
    let read = |name: &str| -> Result<Bytes> {
        let path: PathBuf = dir.join(name);
        let bytes = fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        Ok(Bytes::from_bytes_vec(bytes))
    };
    let record = burn::store::ModuleRecord::from_bytes(read(RESUME_MODEL_FILE)?).context("model state is corrupt")?;
    let model = config
        .model
        .init(device)
        .try_load_record(record)
        .map_err(|e| anyhow::anyhow!("model state does not match config.json: {e}"))?;
    let optimizer = optimizer.from_bytes(read(RESUME_OPTIM_FILE)?).context("optimizer state is corrupt")?;
    Ok((config, model, optimizer))
}
