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
/// Far above any real config.json (the largest vocabulary a model may have fits in a quarter of it).
const MAX_CONFIG_BYTES: u64 = 4 << 20;

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
            config.model.vocab_ids() == config.vocab.size(),
            "config.json: model vocab_size {} does not match the vocabulary ({} ids{})",
            config.model.vocab_size,
            config.vocab.size(),
            if config.model.edits { " and 2 length states" } else { "" }
        );
        ensure!(!config.model.edits || config.model.kind == crate::kind::ModelKind::Masked, "config.json: only a masked model has length states");
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
    // One metadata entry instead of Burn's three: it keeps them in a HashMap, whose order changes
    // from process to process, so the same weights were written as different bytes.
    let mut store = SafetensorsStore::from_bytes(None).clear_metadata().metadata("producer", concat!("tiny-diffusion ", env!("CARGO_PKG_VERSION"), " (burn)"));
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
    let size = fs::metadata(&path).with_context(|| format!("cannot read {}", path.display()))?.len();
    ensure!(size <= MAX_CONFIG_BYTES, "{} is {size} bytes; a checkpoint's config is at most {MAX_CONFIG_BYTES}", path.display());
    let text = fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    CheckpointConfig::from_json(&text).with_context(|| format!("in {}", path.display()))
}

/// Builds a model from config and safetensors bytes, rejecting missing, extra or misshapen tensors.
pub fn model_from_bytes(config: &ModelConfig, weights: Vec<u8>, device: &Device) -> Result<Model> {
    check_weights(config, &weights)?;
    let mut model = config.init(device);
    let mut store = SafetensorsStore::from_bytes(Some(weights));
    let result = model.load_from(&mut store).map_err(|e| anyhow::anyhow!("{e}"))?;
    ensure_complete(&result, "weights do not match the model in config.json")?;
    Ok(model)
}

/// Checks safetensors bytes against the model that config.json describes (every tensor's name,
/// dtype, shape and byte range) before any tensor is made, so that a config that does not match its
/// weights, damaged or written to make us allocate gigabytes, is refused at once and by field.
pub fn check_weights(config: &ModelConfig, bytes: &[u8]) -> Result<()> {
    #[derive(Deserialize)]
    struct Entry {
        dtype: String,
        shape: Vec<u64>,
        data_offsets: [u64; 2],
    }
    ensure!(bytes.len() > 8, "the weights file is {} bytes, too short to be safetensors", bytes.len());
    let (len, rest) = bytes.split_at(8);
    let header_len = u64::from_le_bytes(len.try_into().expect("eight bytes"));
    ensure!(header_len <= rest.len() as u64, "the safetensors header claims {header_len} bytes; the file has {}", rest.len());
    let (header, data) = rest.split_at(header_len as usize);
    let mut header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(header).context("the safetensors header is not valid JSON")?;
    header.remove("__metadata__");
    for (name, dims) in config.parameter_shapes() {
        let entry = header
            .remove(&name)
            .with_context(|| format!("the weights have no tensor '{name}', which config.json's model has (n_layer {}, n_timesteps {})", config.n_layer, config.n_timesteps))?;
        let entry: Entry = serde_json::from_value(entry).with_context(|| format!("tensor '{name}' has a malformed header entry"))?;
        let want = dims.map(|(_, n)| n as u64);
        if entry.shape != want {
            let field = dims.iter().zip(&entry.shape).find(|((_, n), got)| *n as u64 != **got).map_or("shape", |((field, _), _)| *field);
            bail!("config.json's {field} does not match the weights: tensor '{name}' is {:?}, config.json implies {want:?}", entry.shape);
        }
        let width = match entry.dtype.as_str() {
            "F64" => 8,
            "F32" => 4,
            "F16" | "BF16" => 2,
            other => bail!("tensor '{name}' is {other}; the model's weights are floating point"),
        };
        let [start, end] = entry.data_offsets;
        ensure!(
            start <= end && end <= data.len() as u64 && end - start == want[0].saturating_mul(want[1]).saturating_mul(width),
            "tensor '{name}': bytes {start}..{end} do not hold a {want:?} {} tensor in a {}-byte data section",
            entry.dtype,
            data.len()
        );
    }
    if let Some(extra) = header.keys().next() {
        bail!("the weights hold tensor '{extra}', which config.json's model does not have (n_layer {}, n_timesteps {})", config.n_layer, config.n_timesteps);
    }
    Ok(())
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
    // The weights beside the state were written with it: checking them against config.json
    // keeps a damaged config from sizing the model built below.
    let weights = dir.join(WEIGHTS_FILE);
    let bytes = fs::read(&weights).with_context(|| format!("cannot read {}", weights.display()))?;
    check_weights(&config.model, &bytes).with_context(|| format!("in {}", weights.display()))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Preset;

    #[test]
    fn the_shapes_read_from_a_config_are_the_ones_its_model_saves() {
        let device = Device::flex();
        for config in [Preset::Tiny.config(12), ModelConfig { n_timesteps: 8, n_layer: 3, ..Preset::Tiny.config(30) }] {
            let bytes = weights_to_bytes(&config.init(&device)).unwrap();
            check_weights(&config, &bytes).unwrap();
            // One byte short: the last tensor's range no longer fits.
            let err = check_weights(&config, &bytes[..bytes.len() - 1]).unwrap_err();
            assert!(format!("{err:#}").contains("do not hold"), "{err:#}");
        }
    }

    #[test]
    fn the_same_weights_are_written_as_the_same_bytes() {
        let model = Preset::Tiny.config(12).init(&Device::flex());
        let first = weights_to_bytes(&model).unwrap();
        // Each save builds its own map of metadata: with several entries their order varied.
        for _ in 0..5 {
            assert!(weights_to_bytes(&model).unwrap() == first, "two saves of one model differ");
        }
    }
}
