//! `life`: the game of life on a grid of the model's text, in the terminal UI's Life screen.

use crate::backend::Backend;
use anyhow::{Result, bail};
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct LifeArgs {
    /// A masked-diffusion checkpoint (directory or PyTorch file) [default: the shipped model].
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Columns of the grid.
    #[arg(long, default_value_t = crate::tui::life::DEFAULT_SIZE.0)]
    pub width: usize,
    /// Rows of the grid.
    #[arg(long, default_value_t = crate::tui::life::DEFAULT_SIZE.1)]
    pub height: usize,
    #[arg(long, value_enum, default_value = "flex")]
    pub device: Backend,
}

pub fn run_life(args: LifeArgs) -> Result<()> {
    if !(3..=200).contains(&args.width) || !(3..=200).contains(&args.height) {
        bail!("--width and --height must be between 3 and 200 cells, got {} × {}", args.width, args.height);
    }
    let device = args.device.device()?;
    let (config, model, name) = crate::shipped::load_or_shipped(args.checkpoint.as_deref(), &device)?;
    if config.model.kind != crate::kind::ModelKind::Masked {
        bail!("{name} is a {} model; the game of life needs a masked-diffusion model to fill its cells", config.model.kind);
    }
    let session = crate::tui::Session {
        life_checkpoint: args.checkpoint.clone(),
        life_size: (args.width, args.height),
        ..crate::tui::Session::on(crate::tui::app::Screen::Life)
    };
    crate::tui::run(crate::tui::LoadedModel { config, model, name }, device, args.device.name(), session)
}
