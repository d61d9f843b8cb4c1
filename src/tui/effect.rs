//! Work that a key asks of the event loop: the screens return it, the loop carries it out (sending
//! jobs to workers), so state changes stay pure and testable.

use super::worker::GenJob;
use crate::data::DataSource;
use crate::train::TrainSettings;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Generate(GenJob),
    /// Race the Compare screen's lanes (race id, decoding options).
    StartRace(u64, crate::diffusion::DecodeOptions),
    /// Ask the life thread for a new grid or the next generation.
    Life(LifeCommand),
    StartTraining { settings: Box<TrainSettings>, data: DataSource, out: PathBuf },
    StopTraining,
    LoadCheckpoint(PathBuf),
    /// Start recording the screen to a new file, or stop and save the recording in progress.
    ToggleRecording,
}

/// What the Life screen asks of its thread.
#[derive(Debug, Clone, PartialEq)]
pub enum LifeCommand {
    /// A new grid of `size` over fresh text from `seed`.
    Reseed { seed: u64, size: (usize, usize), options: crate::diffusion::DecodeOptions },
    Step { options: crate::diffusion::DecodeOptions },
}
