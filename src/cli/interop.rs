//! `import` and `export`: the Python tiny-diffusion's weights in, ours out with its key names.

use crate::pytorch::{self, ImportOptions, Layout};
use crate::vocab::Vocab;
use anyhow::{Context, Result, bail};
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// A `.pt` state dict saved by the Python tiny-diffusion (or a `.safetensors` from `export`).
    pub file: PathBuf,
    /// Which of its layouts the file is in: v1 or v2 diffusion, v2's autoregressive `gpt.py`, or
    /// its uniform-noise `uniform.py` (the same keys as gpt.py's, so it must be named)
    /// [default: detected from its keys, and gpt for a 65-character Tiny Shakespeare vocabulary].
    #[arg(long, value_enum)]
    pub format: Option<Layout>,
    /// Checkpoint directory to write.
    #[arg(long)]
    pub out: PathBuf,
    /// v2, gpt and uniform: the text the model was trained on; its sorted characters are the
    /// vocabulary [default for 66-id v2 and 65-id gpt or uniform files: Tiny Shakespeare's characters].
    #[arg(long, conflicts_with = "vocab")]
    pub vocab_from: Option<PathBuf>,
    /// v2, gpt and uniform: the vocabulary's characters (the mask is added as id 0).
    #[arg(long)]
    pub vocab: Option<String>,
    /// Attention heads (the files do not record it).
    #[arg(long, default_value_t = pytorch::REFERENCE_HEADS)]
    pub heads: usize,
    /// Context length in characters.
    #[arg(long, default_value_t = pytorch::REFERENCE_CONTEXT)]
    pub context: usize,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Checkpoint directory [default: the shipped Shakespeare model].
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// The `.safetensors` file to write (PyTorch key names, `[out, in]` Linear weights).
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run_import(args: ImportArgs) -> Result<()> {
    let vocab = match (&args.vocab_from, &args.vocab) {
        (Some(path), _) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            Some(Vocab::from_text(&text)?)
        }
        (None, Some(chars)) => Some(Vocab::from_chars(&chars.replace("\\n", "\n"))),
        (None, None) => None,
    };
    let options = ImportOptions { layout: args.format, heads: Some(args.heads), vocab, context: Some(args.context) };
    if args.out.join(crate::checkpoint::CONFIG_FILE).exists() && args.out.join(crate::checkpoint::WEIGHTS_FILE).exists() {
        bail!("{} already holds a checkpoint; choose another --out", args.out.display());
    }
    let device = burn::prelude::Device::flex();
    let (config, model) = pytorch::import(&args.file, &options, &device)?;
    crate::checkpoint::save(&args.out, &config, &model, None)?;
    let m = &config.model;
    let is_pt = args.file.extension().is_none_or(|e| e != "safetensors");
    if is_pt && m.n_timesteps == 0 && args.vocab.is_none() && args.vocab_from.is_none() {
        eprintln!("note: v2 files do not record their vocabulary; assumed Tiny Shakespeare's (--vocab-from TEXT to change)");
    }
    eprintln!(
        "imported {} ({} layers × {} wide, {} heads, {} ids, {:.2}M params) into {}",
        args.file.display(),
        m.n_layer,
        m.n_embd,
        m.n_head,
        m.vocab_size,
        m.num_params() as f64 / 1e6,
        args.out.display()
    );
    Ok(())
}

pub fn run_export(args: ExportArgs) -> Result<()> {
    let device = burn::prelude::Device::flex();
    let (mut config, mut model, name) = crate::shipped::load_or_shipped(args.checkpoint.as_deref(), &device)?;
    if config.model.edits {
        // The Python project has no length states: it gets the masked model without them.
        model = crate::diffusion::edits::remove_states(model);
        config.model = model.config.clone();
        eprintln!("{name}'s length states (expand, delete) are left out: the Python project does not know them");
    }
    pytorch::export(&args.out, &config, &model)?;
    eprintln!("exported {name} to {}", args.out.display());
    Ok(())
}
