//! A race between models of any kind: the same prompt, seed and length for each, one lane per
//! model, every step recorded with what it cost. A viewer replays the lanes on one clock: forward
//! passes (as the Python project's `visualize.py --compare`: one diffusion step against one GPT
//! character) or compute time. Lanes run one after another on the same machine, so their times
//! are comparable.

use crate::diffusion::{Cell, Denoiser, Frame, cell};
use crate::kind::ModelDenoiser;
use crate::diffusion::DecodeOptions;
use crate::eval::{text_stats, words};
use crate::judge::Judge;
use crate::kind::ModelKind;
use crate::vocab::Vocab;
use anyhow::Result;
use serde::Serialize;
use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

/// The most characters a lane writes (`compare --length`): every step copies each lane's whole
/// text into its frame, so the memory a race holds grows with the length (100 million characters
/// grew past 1.9 GB in 15 seconds).
pub const MAX_LENGTH: usize = 10_000;

/// The kinds whose shipped models race when no checkpoint is named.
pub const DEFAULT_LANES: [ModelKind; 2] = [ModelKind::Masked, ModelKind::Ar];

/// A model in the race, loaded.
pub struct Entrant {
    pub title: String,
    pub config: crate::checkpoint::CheckpointConfig,
    pub denoiser: ModelDenoiser,
    /// The race's prompt in this lane's vocabulary (empty: free generation).
    pub prompt: Vec<u32>,
}

/// The lanes asked for: the shipped model of each of `kinds`, then each of `paths`; with neither,
/// the shipped models of `DEFAULT_LANES`.
pub fn entrants(kinds: &[ModelKind], paths: &[PathBuf], device: &burn::prelude::Device) -> Result<Vec<Entrant>> {
    let kinds = if kinds.is_empty() && paths.is_empty() { &DEFAULT_LANES[..] } else { kinds };
    let mut loaded: Vec<_> = kinds
        .iter()
        .filter_map(|&k| crate::shipped::of_kind(k))
        .map(|shipped| shipped.load(device).map(|(c, m)| (c, m, shipped.name.to_string())))
        .collect::<Result<_>>()?;
    for p in paths {
        loaded.push(crate::shipped::load_or(Some(p), &crate::shipped::DIFFUSION, device)?);
    }
    Ok(loaded
        .into_iter()
        .map(|(config, model, name)| Entrant {
            title: lane_title(config.model.kind, &name),
            denoiser: ModelDenoiser::new(model, device.clone()),
            config,
            prompt: Vec::new(),
        })
        .collect())
}

/// How the lanes are replayed side by side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Clock {
    /// One tick is one forward pass of every lane.
    #[default]
    Passes,
    /// Each lane moves as its measured compute time allows.
    Time,
}

impl Clock {
    pub fn toggle(self) -> Clock {
        match self {
            Clock::Passes => Clock::Time,
            Clock::Time => Clock::Passes,
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Clock::Passes => "per forward pass",
            Clock::Time => "real time",
        }
    }
}

/// Everything a race needs, loaded: its lanes, the judge, each lane's prompt, the length.
pub struct RaceSetup {
    pub entrants: Vec<Entrant>,
    pub judge: crate::judge::Judge,
    pub length: usize,
}

/// Where the Compare screen's lanes come from: given (`tiny-diffusion compare`), or loaded on
/// first use: the shipped model of each kind, with the watched checkpoint in place of its kind's.
pub enum RaceSource {
    Ready(Box<RaceSetup>),
    Load { watched: Option<PathBuf> },
}

impl RaceSource {
    /// The setup, loading it if it is not loaded yet.
    pub fn load(self, device: &burn::prelude::Device) -> Result<RaceSetup> {
        let watched = match self {
            RaceSource::Ready(setup) => return Ok(*setup),
            RaceSource::Load { watched } => watched,
        };
        let mut lanes = entrants(&[], &[], device)?;
        if let Some(path) = watched {
            let mine = entrants(&[], &[path], device)?.remove(0);
            let same_kind = lanes.iter().position(|e| e.config.model.kind == mine.config.model.kind);
            if let Some(i) = same_kind {
                lanes[i] = mine;
            }
        }
        let length = lanes.iter().map(|e| e.config.model.context).min().unwrap_or(0);
        let judge = crate::judge::Judge::load(None, device)?;
        Ok(RaceSetup { entrants: lanes, judge, length })
    }
}

/// The whole output of a lane after one step.
#[derive(Debug, Clone, PartialEq)]
pub struct LaneFrame {
    /// The whole output, masked past where any window has reached.
    pub cells: Vec<Cell>,
    /// Positions (in the whole output) written by this step.
    pub decoded_now: Vec<usize>,
    /// Forward passes so far (one per step).
    pub passes: usize,
    /// Compute time so far.
    pub compute: Duration,
}

/// Runs one lane: `model` writes `length` characters after `prompt`, with `options` as its kind
/// decodes them. `on_frame` gets the initial state, then every step; it returns false to stop.
pub fn run_lane(model: &dyn Denoiser, prompt: &[u32], length: usize, options: DecodeOptions, mut on_frame: impl FnMut(LaneFrame) -> bool) {
    let mut generation = crate::kind::generation(model, prompt, length, crate::diffusion::DEFAULT_OVERLAP, options);
    let mut compute = Duration::ZERO;
    let mut passes = 0;
    // Positions past the prompt exist once a window reaches them: show them masked from the start.
    let padded = |cells: &[Cell]| -> Vec<Cell> { cells.iter().copied().chain(std::iter::repeat(Cell::MASKED)).take(length.max(cells.len())).collect() };
    let first = LaneFrame { cells: padded(generation.cells()), decoded_now: Vec::new(), passes, compute };
    if !on_frame(first) {
        return;
    }
    while let Some(frame) = generation.step(model) {
        let Frame { offset, decoded_now, elapsed, cells, .. } = frame;
        passes += 1;
        compute += elapsed;
        let mut shown = padded(generation.cells());
        // While a window is open, its latest state lives in the frame, not yet in the generation.
        cell::merge(&mut shown, offset, &cells);
        let decoded_now = decoded_now.iter().map(|&i| i + offset).collect();
        if !on_frame(LaneFrame { cells: shown, decoded_now, passes, compute }) {
            return;
        }
    }
}

/// How a lane did, once finished.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Score {
    pub passes: usize,
    pub millis: f64,
    /// Characters written per second of compute.
    pub chars_per_sec: f64,
    /// Nats per character of the lane's text under the judge.
    pub judge_nll: f64,
    pub distinct_bigrams: f64,
}

/// The score of a finished lane whose last frame is `last`.
pub fn score(last: &LaneFrame, vocab: &Vocab, judge: &Judge) -> Result<Score> {
    let text = vocab.decode(&cell::tokens(&last.cells), '_');
    let written = last.cells.iter().filter(|c| !c.prompt).count();
    let secs = last.compute.as_secs_f64();
    Ok(Score {
        passes: last.passes,
        millis: secs * 1e3,
        chars_per_sec: if secs > 0.0 { written as f64 / secs } else { 0.0 },
        judge_nll: judge.nll(&text)?,
        distinct_bigrams: text_stats(&text, &words(&text).into_iter().collect::<HashSet<_>>()).distinct_bigram_rate,
    })
}

/// Which frame of a lane a clock shows at `tick` (passes) or after `elapsed` (compute time).
pub fn frame_at(frames: &[LaneFrame], clock: Clock, tick: usize, elapsed: Duration) -> usize {
    match clock {
        Clock::Passes => tick.min(frames.len().saturating_sub(1)),
        Clock::Time => frames.iter().rposition(|f| f.compute <= elapsed).unwrap_or(0),
    }
}

/// The title of a lane: the model's kind and name.
pub fn lane_title(kind: ModelKind, name: &str) -> String {
    format!("{} · {name}", kind.title())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(costs_ms: &[u64]) -> Vec<LaneFrame> {
        costs_ms
            .iter()
            .enumerate()
            .map(|(passes, &ms)| LaneFrame { cells: vec![], decoded_now: vec![], passes, compute: Duration::from_millis(ms) })
            .collect()
    }

    #[test]
    fn the_pass_clock_shows_one_frame_per_tick_and_the_time_clock_what_compute_allows() {
        let f = frames(&[0, 10, 20, 30]);
        assert_eq!(frame_at(&f, Clock::Passes, 2, Duration::ZERO), 2);
        assert_eq!(frame_at(&f, Clock::Passes, 9, Duration::ZERO), 3, "a finished lane stays at its end");
        assert_eq!(frame_at(&f, Clock::Time, 0, Duration::from_millis(25)), 2);
        assert_eq!(frame_at(&f, Clock::Time, 0, Duration::from_millis(9)), 0);
        assert_eq!(frame_at(&f, Clock::Time, 0, Duration::from_secs(1)), 3);
    }
}
