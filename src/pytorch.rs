//! Interop with the Python tiny-diffusion: import its PyTorch weights (`.pt`), export ours with
//! PyTorch key names (`.safetensors`).
//!
//! The Python project saved four layouts. v1: 128 ASCII ids (id 0 is the mask), a learned
//! timestep embedding and `output_head`. v2: the mask then the sorted characters of the training
//! text, no timestep embedding, `lm_head`. v2's `gpt.py` and `uniform.py`: v2's names for an
//! autoregressive and a uniform-noise model, whose vocabulary is the characters alone (our models
//! keep id 0 for MASK, so its rows are added on import and dropped on export). The two have the
//! same keys and shapes: a 65-id file is taken for `gpt.py`'s unless `--format uniform` (or an
//! exported file's metadata) says otherwise. All use our block names, and PyTorch's Linear weights are
//! `[out, in]` where Burn's are `[in, out]` (the store adapters transpose them).
//!
//! `.pt` files are pickles. They are read by Burn's `pytorch-reader`, which interprets only the
//! calls PyTorch uses to rebuild tensors and never runs Python; on top of that, any other object
//! in the file makes the import fail, so a tampered file is reported rather than half-loaded.

use crate::checkpoint::{CheckpointConfig, TrainingMeta};
use crate::kind::ModelKind;
use crate::model::{Model, ModelConfig};
use crate::vocab::Vocab;
use anyhow::{Context, Result, bail, ensure};
use burn::module::Param;
use burn::prelude::*;
use burn::store::pytorch_reader::{self, PickleValue, PytorchReader};
use burn::store::{BurnToPyTorchAdapter, ModuleSnapshot, PyTorchToBurnAdapter, PytorchStore, SafetensorsStore};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// The reference's context length: rotary embeddings have no weights, so files do not say it.
pub const REFERENCE_CONTEXT: usize = 256;
/// The reference's head count: not recorded in its files either.
pub const REFERENCE_HEADS: usize = 6;
/// The characters of Tiny Shakespeare, the vocabulary of the reference's v2 release weights.
pub const TINY_SHAKESPEARE_CHARS: &str = "\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Layout {
    /// 128 ASCII ids, timestep embedding, `output_head`.
    V1,
    /// Mask + sorted characters of the training text, `lm_head`.
    V2,
    /// v2's `gpt.py`: the sorted characters (no mask), `lm_head`, causal attention.
    Gpt,
    /// v2's `uniform.py`: `gpt.py`'s keys, bidirectional attention, uniform-noise diffusion.
    Uniform,
}

impl Layout {
    /// Whether the file's vocabulary has a mask id (`gpt.py` and `uniform.py` have none).
    fn has_mask_id(self) -> bool {
        !matches!(self, Layout::Gpt | Layout::Uniform)
    }

    fn kind(self) -> ModelKind {
        match self {
            Layout::V1 | Layout::V2 => ModelKind::Masked,
            Layout::Gpt => ModelKind::Ar,
            Layout::Uniform => ModelKind::Uniform,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Checked against the file's keys when given; detected from them otherwise.
    pub layout: Option<Layout>,
    /// Attention heads (default 6, the reference's).
    pub heads: Option<usize>,
    /// The vocabulary of a v2 file (default: Tiny Shakespeare's when the file has 66 ids).
    pub vocab: Option<Vocab>,
    pub context: Option<usize>,
}

/// Name, shape and element type of each tensor in a weights file, with PyTorch's key names.
type Inventory = BTreeMap<String, (Vec<usize>, String)>;

/// Loads a `.pt` state dict from the Python project, or a `.safetensors` file with PyTorch key
/// names (as written by `export`), into a model and the checkpoint config that describes it.
pub fn import(path: &Path, options: &ImportOptions, device: &Device) -> Result<(CheckpointConfig, Model)> {
    ensure!(path.is_file(), "{} does not exist", path.display());
    let is_safetensors = path.extension().is_some_and(|e| e == "safetensors");
    let (inventory, metadata, top_key) = if is_safetensors {
        let (inv, meta) = safetensors_inventory(path)?;
        (inv, meta, None)
    } else {
        let (inv, key) = pt_inventory(path)?;
        (inv, HashMap::new(), key)
    };
    let mut options = options.clone();
    if let Some(h) = metadata.get("n_head") {
        options.heads = options.heads.or(h.parse().ok());
    }
    if let Some(c) = metadata.get("context") {
        options.context = options.context.or(c.parse().ok());
    }
    if let Some(v) = metadata.get("vocab") {
        options.vocab = options.vocab.or(Some(Vocab::from_chars(v)));
    }
    match metadata.get("kind").map(String::as_str) {
        Some("ar") => options.layout = options.layout.or(Some(Layout::Gpt)),
        Some("uniform") => options.layout = options.layout.or(Some(Layout::Uniform)),
        _ => {}
    }
    // A gpt.py or uniform.py model is loaded as the file has it, then given a MASK row
    // (`with_mask_row`).
    let (layout, config, vocab) = infer(&inventory, &options)?;

    let mut model = config.init(device);
    let result = if is_safetensors {
        let mut store = SafetensorsStore::from_file(path)
            .with_from_adapter(PyTorchToBurnAdapter)
            .with_key_remapping(r"^output_head\.", "lm_head.");
        model.load_from(&mut store).map_err(|e| anyhow::anyhow!("{e}"))?
    } else {
        let mut store = PytorchStore::from_file(path)
            .with_key_remapping(format!(r"^({})\.", WRAPPERS.join("|")), "")
            .with_key_remapping(r"^output_head\.", "lm_head.");
        if let Some(key) = &top_key {
            store = store.with_top_level_key(key);
        }
        model.load_from(&mut store).map_err(|e| anyhow::anyhow!("{e}"))?
    };
    crate::checkpoint::ensure_complete(&result, &format!("{}: the weights do not fit the model", path.display()))?;
    if !layout.has_mask_id() {
        model = with_mask_row(model);
    }
    let mut checkpoint = CheckpointConfig::new(model.config.clone(), vocab);
    checkpoint.training = TrainingMeta {
        data_file: Some(format!("imported from {} ({layout:?} layout)", path.display())),
        ..TrainingMeta::default()
    };
    Ok((checkpoint, model))
}

/// Writes `model` as safetensors with the Python project's key names and `[out, in]` Linear
/// weights: v2 names, or v1's `output_head` for a model with a timestep embedding. The vocabulary,
/// head count and context go in the file's metadata.
pub fn export(path: &Path, config: &CheckpointConfig, model: &Model) -> Result<()> {
    let mut store = SafetensorsStore::from_bytes(None)
        .with_to_adapter(BurnToPyTorchAdapter)
        .metadata("vocab", String::from(config.vocab.clone()))
        .metadata("n_head", config.model.n_head.to_string())
        .metadata("context", config.model.context.to_string())
        .metadata("mask_id", config.mask_id.to_string());
    if config.model.n_timesteps > 0 {
        store = store.with_key_remapping(r"^lm_head\.", "output_head.");
    }
    let without_mask;
    let model = match config.model.kind {
        ModelKind::Masked => model,
        // Laid out as gpt.py / uniform.py save theirs: no mask id.
        kind @ (ModelKind::Ar | ModelKind::Uniform) => {
            store = store.metadata("kind", if kind == ModelKind::Ar { "ar" } else { "uniform" }.to_string());
            without_mask = without_mask_row(model.clone());
            &without_mask
        }
    };
    model.save_into(&mut store).map_err(|e| anyhow::anyhow!("cannot serialise weights: {e}"))?;
    let bytes = store.get_bytes().map_err(|e| anyhow::anyhow!("cannot serialise weights: {e}"))?;
    crate::checkpoint::write_atomic(path, &bytes)
}

/// A `gpt.py` or `uniform.py` model (vocabulary: the characters) with id 0 made MASK: a zero
/// embedding row and a zero head row (neither kind ever writes MASK: `autoregressive::next_char_logits`
/// and `rules::propose` leave it out).
fn with_mask_row(mut model: Model) -> Model {
    let emb = model.token_emb.weight.val();
    let head = model.lm_head.weight.val();
    let d = emb.dims()[1];
    let device = emb.device();
    model.token_emb.weight = Param::from_tensor(Tensor::cat(vec![Tensor::zeros([1, d], &device), emb], 0));
    model.lm_head.weight = Param::from_tensor(Tensor::cat(vec![Tensor::zeros([d, 1], &device), head], 1));
    model.config.vocab_size += 1;
    model
}

/// The inverse of `with_mask_row`: the model as `gpt.py` and `uniform.py` lay it out.
fn without_mask_row(mut model: Model) -> Model {
    let emb = model.token_emb.weight.val();
    let head = model.lm_head.weight.val();
    let v = model.config.vocab_size;
    model.token_emb.weight = Param::from_tensor(emb.narrow(0, 1, v - 1));
    model.lm_head.weight = Param::from_tensor(head.narrow(1, 1, v - 1));
    model.config.vocab_size -= 1;
    model
}

/// Lists the tensors of a `.pt` file after refusing anything in it that is not a tensor.
/// Returns the top-level key holding the state dict when it is nested (`{"model": {...}}`).
fn pt_inventory(path: &Path) -> Result<(Inventory, Option<String>)> {
    let what = |e: pytorch_reader::PytorchError| {
        anyhow::anyhow!("{} is not a readable PyTorch file: {e}", path.display())
    };
    let root = PytorchReader::read_pickle_data(path, None).map_err(what)?;
    let PickleValue::Dict(root) = root else {
        bail!("{} does not hold a state dict (a dictionary of tensors)", path.display());
    };
    let top_key = ["state_dict", "model_state_dict", "model"]
        .into_iter()
        .find(|k| matches!(root.get(*k), Some(PickleValue::Dict(_))) && !root.contains_key("token_emb.weight"))
        .map(str::to_string);
    let dict = match &top_key {
        Some(k) => match &root[k] {
            PickleValue::Dict(d) => d,
            _ => unreachable!("checked above"),
        },
        None => &root,
    };
    for (name, value) in dict {
        match value {
            // PyTorch's OrderedDict state dicts carry per-module version numbers here.
            PickleValue::Dict(_) if name == "_metadata" => {}
            PickleValue::Unsupported(ty) if ty.starts_with("torch.") && ty.ends_with("Tensor") => {}
            PickleValue::Unsupported(ty) if ty.starts_with("torch.") && ty.ends_with("Parameter") => {}
            PickleValue::Unsupported(ty) => bail!(
                "{}: entry '{name}' is not a tensor but a pickled `{ty}` call or object; the file is refused (nothing in it was run)",
                path.display()
            ),
            other => bail!("{}: entry '{name}' is not a tensor ({other:?})", path.display()),
        }
    }
    let reader = match &top_key {
        Some(k) => PytorchReader::with_top_level_key(path, k),
        None => PytorchReader::new(path),
    }
    .map_err(what)?;
    let inventory = reader
        .tensors()
        .iter()
        .map(|(name, t)| (strip_wrappers(name), (t.shape().to_vec(), format!("{:?}", t.dtype()).to_lowercase())))
        .collect();
    Ok((inventory, top_key))
}

/// The prefixes `torch.compile` and `DataParallel` put before every key; the weights are the same.
const WRAPPERS: [&str; 2] = ["_orig_mod", "module"];

/// A key without its wrapper prefix, as the loader maps it too.
fn strip_wrappers(name: &str) -> String {
    WRAPPERS
        .iter()
        .find_map(|w| name.strip_prefix(w).and_then(|rest| rest.strip_prefix('.')))
        .unwrap_or(name)
        .to_string()
}

/// Reads a safetensors header: tensor names, shapes and dtypes, and the metadata.
fn safetensors_inventory(path: &Path) -> Result<(Inventory, HashMap<String, String>)> {
    use std::io::Read;
    let bad = || anyhow::anyhow!("{} is not a valid safetensors file", path.display());
    // Only the header: the store reads the tensors themselves when loading.
    let mut file = std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let file_len = file.metadata()?.len();
    let mut len = [0u8; 8];
    file.read_exact(&mut len).map_err(|_| bad())?;
    let len = u64::from_le_bytes(len);
    ensure!(len <= file_len.saturating_sub(8), bad());
    let mut header = vec![0u8; len as usize];
    file.read_exact(&mut header).map_err(|_| bad())?;
    let header: BTreeMap<String, serde_json::Value> = serde_json::from_slice(&header).map_err(|_| bad())?;
    let mut inventory = Inventory::new();
    let mut metadata = HashMap::new();
    for (name, value) in header {
        if name == "__metadata__" {
            metadata = serde_json::from_value(value).map_err(|_| bad())?;
            continue;
        }
        let shape = serde_json::from_value(value["shape"].clone()).map_err(|_| bad())?;
        let dtype = value["dtype"].as_str().ok_or_else(bad)?.to_lowercase();
        inventory.insert(name, (shape, dtype));
    }
    Ok((inventory, metadata))
}

/// Works out the layout, model shape and vocabulary from the tensor names and shapes, and checks
/// that the file holds exactly the tensors of that model, each float32 and of the right shape.
fn infer(inventory: &Inventory, options: &ImportOptions) -> Result<(Layout, ModelConfig, Vocab)> {
    let shape = |name: &str| inventory.get(name).map(|(s, _)| s.as_slice());
    let detected = match (shape("output_head.weight"), shape("lm_head.weight")) {
        (Some(_), None) => Layout::V1,
        (None, Some(_)) => Layout::V2,
        (Some(_), Some(_)) => bail!("the file has both output_head.weight and lm_head.weight"),
        (None, None) => bail!(
            "missing key: neither output_head.weight (v1) nor lm_head.weight (v2) is in the file; found {}",
            summarize(inventory.keys())
        ),
    };
    let Some(&[vocab_size, n_embd]) = shape("token_emb.weight") else {
        bail!("missing key token_emb.weight (or it is not a matrix)");
    };
    // gpt.py and uniform.py share v2's names; their vocabulary has no mask id. Tiny Shakespeare's
    // 65 characters without one say it is one of them (gpt.py's unless --format uniform says
    // otherwise); for another vocabulary --format gpt or uniform does.
    let shakespeare_chars = TINY_SHAKESPEARE_CHARS.chars().count();
    let detected = match (detected, options.layout) {
        (Layout::V2, Some(asked @ (Layout::Gpt | Layout::Uniform))) => asked,
        (Layout::V2, None) if vocab_size == shakespeare_chars => Layout::Gpt,
        (d, _) => d,
    };
    if let Some(asked) = options.layout {
        ensure!(asked == detected, "--format {asked:?} given, but the file's keys are those of {detected:?}");
    }
    let n_timesteps = match (detected, shape("time_emb.weight")) {
        (Layout::V1, Some(&[n, _])) => n,
        (Layout::V1, _) => bail!("missing key time_emb.weight (v1 files have a timestep embedding)"),
        (_, None) => 0,
        (_, Some(_)) => bail!("a v2 file (lm_head) should not have time_emb.weight"),
    };
    let n_layer = inventory
        .keys()
        .filter_map(|k| k.strip_prefix("blocks.")?.split('.').next()?.parse::<usize>().ok())
        .max()
        .map_or(0, |n| n + 1);
    let n_head = options.heads.unwrap_or(REFERENCE_HEADS);
    let config = ModelConfig {
        vocab_size,
        n_layer,
        n_head,
        n_embd,
        context: options.context.unwrap_or(REFERENCE_CONTEXT),
        n_timesteps,
        kind: detected.kind(),
        edits: false,
    };
    // Say the head count that was used: the one asked for (import's --heads), or the one assumed.
    let heads = options.heads.map_or(format!("assumed {REFERENCE_HEADS}"), |n| format!("{n} used"));
    config.validate().map_err(|e| {
        anyhow::anyhow!(
            "{e}: PyTorch files do not store the head count ({heads}); convert the file \
             with `tiny-diffusion import FILE --heads N --out DIR` and use that directory"
        )
    })?;
    check_tensors(inventory, &expected_shapes(&config, detected))?;
    let vocab = file_vocab(detected, vocab_size, options)?;
    Ok((detected, config, vocab))
}

/// The file holds exactly the tensors `expected` names, with those shapes, in float32.
fn check_tensors(inventory: &Inventory, expected: &BTreeMap<String, Vec<usize>>) -> Result<()> {
    let missing: Vec<&String> = expected.keys().filter(|k| !inventory.contains_key(*k)).collect();
    ensure!(missing.is_empty(), "missing key(s): {}", summarize(missing.into_iter()));
    let unexpected: Vec<&String> = inventory.keys().filter(|k| !expected.contains_key(*k)).collect();
    ensure!(unexpected.is_empty(), "unexpected key(s): {}", summarize(unexpected.into_iter()));
    for (name, want) in expected {
        let (got, dtype) = &inventory[name];
        ensure!(got == want, "{name} has shape {got:?}, expected {want:?} for this model");
        ensure!(dtype == "f32", "{name} is {dtype}; only float32 weights can be imported (call .float() before saving)");
    }
    Ok(())
}

/// The vocabulary of a file in `detected` layout whose embedding has `vocab_size` rows: given
/// (`--vocab`, `--vocab-from`), or the one its layout implies.
fn file_vocab(detected: Layout, vocab_size: usize, options: &ImportOptions) -> Result<Vocab> {
    let shakespeare_chars = TINY_SHAKESPEARE_CHARS.chars().count();
    let vocab = match (detected, &options.vocab) {
        (_, Some(v)) => v.clone(),
        (Layout::V1, None) => Vocab::from_chars(&(1u8..128).map(char::from).collect::<String>()),
        (Layout::V2, None) if vocab_size == TINY_SHAKESPEARE_CHARS.chars().count() + 1 => {
            Vocab::from_chars(TINY_SHAKESPEARE_CHARS)
        }
        (Layout::Gpt | Layout::Uniform, None) if vocab_size == shakespeare_chars => Vocab::from_chars(TINY_SHAKESPEARE_CHARS),
        (_, None) => bail!(
            "v2 files do not store their vocabulary and this one has {vocab_size} ids: pass --vocab-from TEXTFILE (the text it was trained on) or --vocab CHARS"
        ),
    };
    // A gpt.py or uniform.py file has no mask id: one row fewer than our vocabulary.
    let file_ids = if detected.has_mask_id() { vocab.size() } else { vocab.size() - 1 };
    ensure!(
        file_ids == vocab_size,
        "the vocabulary has {} characters{} but the file's embedding has {vocab_size} rows",
        vocab.size() - 1,
        if detected.has_mask_id() { " and the mask" } else { "" }
    );
    Ok(vocab)
}

/// PyTorch names and `[out, in]` shapes of every tensor of `config` in `layout`.
fn expected_shapes(config: &ModelConfig, layout: Layout) -> BTreeMap<String, Vec<usize>> {
    let (v, d) = (config.vocab_size, config.n_embd);
    let mut out = BTreeMap::new();
    out.insert("token_emb.weight".to_string(), vec![v, d]);
    if layout == Layout::V1 {
        out.insert("time_emb.weight".to_string(), vec![config.n_timesteps, d]);
        out.insert("output_head.weight".to_string(), vec![v, d]);
    } else {
        out.insert("lm_head.weight".to_string(), vec![v, d]);
    }
    for i in 0..config.n_layer {
        for name in ["c_q", "c_k", "c_v", "c_proj"] {
            out.insert(format!("blocks.{i}.attn.{name}.weight"), vec![d, d]);
        }
        out.insert(format!("blocks.{i}.mlp.c_fc.weight"), vec![4 * d, d]);
        out.insert(format!("blocks.{i}.mlp.c_proj.weight"), vec![d, 4 * d]);
    }
    out
}

fn summarize<'a>(keys: impl Iterator<Item = &'a String>) -> String {
    let keys: Vec<&String> = keys.collect();
    let shown: Vec<&str> = keys.iter().take(6).map(|k| k.as_str()).collect();
    let more = keys.len().saturating_sub(shown.len());
    if more > 0 { format!("{} and {more} more", shown.join(", ")) } else { shown.join(", ") }
}

#[cfg(test)]
mod tests {
    #[test]
    fn wrapper_prefixes_come_off_and_nothing_else_does() {
        assert_eq!(super::strip_wrappers("_orig_mod.blocks.0.mlp.c_fc.weight"), "blocks.0.mlp.c_fc.weight");
        assert_eq!(super::strip_wrappers("module.lm_head.weight"), "lm_head.weight");
        assert_eq!(super::strip_wrappers("modules.lm_head.weight"), "modules.lm_head.weight");
        assert_eq!(super::strip_wrappers("lm_head.weight"), "lm_head.weight");
    }
}
