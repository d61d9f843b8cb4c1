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
    /// Columns of the grid [default: 32, or fewer if the terminal is narrower].
    #[arg(long)]
    pub width: Option<usize>,
    /// Rows of the grid [default: 32, or fewer if the terminal is shorter].
    #[arg(long)]
    pub height: Option<usize>,
    #[arg(long, value_enum, default_value_t)]
    pub device: Backend,
    #[command(flatten)]
    pub inference: super::InferenceArgs,
}

pub fn run_life(args: LifeArgs) -> Result<()> {
    // As large as the terminal allows, up to the default: its border, the header, the status line
    // and two footer lines take 4 rows more, the border 2 columns.
    let (default_w, default_h) = crate::life::DEFAULT_SIZE;
    let (cols, rows) = crossterm::terminal::size().map_or((default_w, default_h), |(c, r)| (c as usize, r as usize));
    let width = args.width.unwrap_or(default_w.min(cols.saturating_sub(2)).max(3));
    let height = args.height.unwrap_or(default_h.min(rows.saturating_sub(7)).max(3));
    if !(3..=200).contains(&width) || !(3..=200).contains(&height) {
        bail!("--width and --height must be between 3 and 200 cells, got {width} × {height}");
    }
    args.inference.apply();
    let device = args.device.device()?;
    let (config, model, name) = crate::shipped::load_or_shipped(args.checkpoint.as_deref(), &device)?;
    if config.model.kind != crate::kind::ModelKind::Masked {
        bail!("{name} is a {} model; the game of life needs a masked-diffusion model to fill its cells", config.model.kind);
    }
    let session = crate::tui::Session {
        life_checkpoint: args.checkpoint.clone(),
        life_size: (width, height),
        ..crate::tui::Session::on(crate::tui::Screen::Life)
    };
    crate::tui::run(crate::tui::LoadedModel { config, model, name }, device, args.device.name(), session)
}
