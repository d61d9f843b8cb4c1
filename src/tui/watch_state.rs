//! State of the watch screen: decoding settings, the recorded frames of the current block,
//! and playback through them.

use crate::diffusion::{DecodeOptions, Frame, Strategy};
use crate::vocab::MASK_ID;
use std::time::Duration;

/// Playback speeds in denoising steps per second.
pub const SPEEDS: [f64; 8] = [1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0, 120.0];
const DEFAULT_SPEED: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrategyKind {
    Confidence,
    Steps,
    TopK,
    Random,
}

/// The knobs the user turns; turned into `DecodeOptions` for each job.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodeSettings {
    pub kind: StrategyKind,
    pub threshold: f32,
    pub steps: usize,
    pub per_step: usize,
    pub temperature: f32,
    pub top_k: usize,
    pub seed: u64,
    /// Semi-autoregressive span (0: the whole block).
    pub span: usize,
}

/// Spans the `w` key cycles through.
pub const SPANS: [usize; 5] = [0, 4, 8, 16, 32];

impl Default for DecodeSettings {
    fn default() -> Self {
        let d = DecodeOptions::default();
        let threshold = match d.strategy {
            Strategy::Confidence { threshold } => threshold,
            _ => 0.7,
        };
        DecodeSettings {
            kind: StrategyKind::Confidence,
            threshold,
            steps: 32,
            per_step: 4,
            temperature: d.temperature,
            top_k: d.top_k,
            seed: d.seed,
            span: d.span,
        }
    }
}

impl DecodeSettings {
    pub fn options(&self) -> DecodeOptions {
        let strategy = match self.kind {
            StrategyKind::Confidence => Strategy::Confidence { threshold: self.threshold },
            StrategyKind::Steps => Strategy::Steps { steps: self.steps },
            StrategyKind::TopK => Strategy::TopK { k: self.per_step },
            StrategyKind::Random => Strategy::Random { steps: self.steps },
        };
        DecodeOptions { strategy, temperature: self.temperature, top_k: self.top_k, seed: self.seed, span: self.span }
    }

    pub fn cycle_strategy(&mut self) {
        self.kind = match self.kind {
            StrategyKind::Confidence => StrategyKind::Steps,
            StrategyKind::Steps => StrategyKind::TopK,
            StrategyKind::TopK => StrategyKind::Random,
            StrategyKind::Random => StrategyKind::Confidence,
        };
    }

    /// `+` / `-`: more or fewer steps in steps mode, a higher or lower threshold in confidence
    /// mode, more or fewer characters per step in top-k mode.
    pub fn adjust(&mut self, up: bool) {
        match self.kind {
            StrategyKind::Confidence => {
                let t = self.threshold + if up { 0.05 } else { -0.05 };
                self.threshold = (t.clamp(0.05, 1.0) * 100.0).round() / 100.0;
            }
            StrategyKind::Steps | StrategyKind::Random => {
                self.steps = if up { (self.steps * 2).min(1024) } else { (self.steps / 2).max(1) };
            }
            StrategyKind::TopK => {
                self.per_step = if up { (self.per_step + 1).min(256) } else { self.per_step.saturating_sub(1).max(1) };
            }
        }
    }

    pub fn cycle_span(&mut self) {
        let i = SPANS.iter().position(|&s| s == self.span).map_or(0, |i| (i + 1) % SPANS.len());
        self.span = SPANS[i];
    }

    pub fn adjust_temperature(&mut self, up: bool) {
        let t = self.temperature + if up { 0.1 } else { -0.1 };
        self.temperature = (t.clamp(0.0, 3.0) * 10.0).round() / 10.0;
    }

    /// Short description for the status line, e.g. `confidence τ 0.90 · span 8`.
    pub fn describe(&self) -> String {
        let span = if self.span == 0 { "whole block".to_string() } else { format!("span {}", self.span) };
        let strategy = match self.kind {
            StrategyKind::Confidence => format!("confidence τ {:.2}", self.threshold),
            StrategyKind::Steps => format!("steps {}", self.steps),
            StrategyKind::TopK => format!("top-k {}/step", self.per_step),
            StrategyKind::Random => format!("random order, {} steps", self.steps),
        };
        format!("{strategy} · {span}")
    }
}

/// One committed character of earlier blocks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cell {
    pub token: u32,
    pub confidence: f32,
    pub prompt: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WatchState {
    pub settings: DecodeSettings,
    /// The prompt of the current session (empty for free generation, with gaps for infill).
    pub base_prompt: Vec<u32>,
    /// Committed text: before the job finishes, its prompt; after, the whole output.
    pub committed: Vec<Cell>,
    /// The committed cells the current job started from (to restart it).
    pub job_history: Vec<Cell>,
    pub job: u64,
    /// Blocks finished before the current job (continuations count on from them).
    pub block_base: usize,
    /// The prompt and length the current job was started with (to restart it).
    pub job_prompt: Vec<u32>,
    pub job_length: usize,
    pub frames: Vec<Frame>,
    /// Index of the frame on screen.
    pub cursor: usize,
    pub playing: bool,
    pub speed: usize,
    /// Time accumulated towards the next frame while playing.
    pub since_advance: Duration,
    /// The worker finished the current job.
    pub done: bool,
}

impl Default for WatchState {
    fn default() -> Self {
        WatchState {
            settings: DecodeSettings::default(),
            base_prompt: Vec::new(),
            committed: Vec::new(),
            job_history: Vec::new(),
            job: 0,
            block_base: 0,
            job_prompt: Vec::new(),
            job_length: 0,
            frames: Vec::new(),
            cursor: 0,
            playing: true,
            speed: DEFAULT_SPEED,
            since_advance: Duration::ZERO,
            done: false,
        }
    }
}

impl WatchState {
    pub fn frame(&self) -> Option<&Frame> {
        self.frames.get(self.cursor)
    }

    pub fn steps_per_second(&self) -> f64 {
        SPEEDS[self.speed]
    }

    pub fn faster(&mut self) {
        self.speed = (self.speed + 1).min(SPEEDS.len() - 1);
    }

    pub fn slower(&mut self) {
        self.speed = self.speed.saturating_sub(1);
    }

    /// Begins a new job: clears the recorded frames.
    pub fn start_job(&mut self, id: u64, prompt: Vec<u32>, length: usize, history: Vec<Cell>) {
        self.job = id;
        self.committed = history.clone();
        self.job_history = history;
        self.job_prompt = prompt;
        self.job_length = length;
        self.frames.clear();
        self.cursor = 0;
        self.done = false;
        self.since_advance = Duration::ZERO;
    }

    /// A frame from the worker. Frames of an earlier block of the same job replace the view
    /// when playback reaches them; stale jobs are ignored.
    pub fn push_frame(&mut self, job: u64, frame: Frame) {
        if job == self.job {
            self.frames.push(frame);
        }
    }

    pub fn finish(&mut self, job: u64, tokens: &[u32], confidence: &[f32], prompt: &[bool]) {
        if job != self.job {
            return;
        }
        self.done = true;
        self.committed = tokens
            .iter()
            .zip(confidence)
            .zip(prompt)
            .map(|((&token, &confidence), &prompt)| Cell { token, confidence, prompt })
            .collect();
    }

    /// Cells before the window on screen, from earlier blocks and jobs.
    pub fn history(&self) -> &[Cell] {
        let offset = self.frame().map_or(0, |f| f.offset);
        &self.committed[..offset.min(self.committed.len())]
    }

    /// Advances playback by `dt`; returns whether the frame on screen changed.
    pub fn tick(&mut self, dt: Duration) -> bool {
        if !self.playing || self.cursor + 1 >= self.frames.len() {
            self.since_advance = Duration::ZERO;
            return false;
        }
        self.since_advance += dt;
        let period = Duration::from_secs_f64(1.0 / self.steps_per_second());
        let mut moved = false;
        while self.since_advance >= period && self.cursor + 1 < self.frames.len() {
            self.since_advance -= period;
            self.cursor += 1;
            moved = true;
        }
        moved
    }

    pub fn step_forward(&mut self) {
        self.playing = false;
        if self.cursor + 1 < self.frames.len() {
            self.cursor += 1;
        }
    }

    pub fn step_back(&mut self) {
        self.playing = false;
        self.cursor = self.cursor.saturating_sub(1);
    }

    /// Playback has shown the last frame of a finished job.
    pub fn at_end(&self) -> bool {
        self.done && self.cursor + 1 >= self.frames.len()
    }

    /// All text known so far (for continuing): committed cells once the job is done.
    pub fn full_text(&self) -> Vec<u32> {
        self.committed.iter().map(|c| c.token).collect()
    }

    pub fn masked_in_view(&self) -> usize {
        self.frame().map_or(0, |f| f.tokens.iter().filter(|&&t| t == MASK_ID).count())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(step: usize) -> Frame {
        Frame {
            block: 0,
            step,
            offset: 0,
            tokens: vec![MASK_ID; 4],
            masked: vec![true; 4],
            prompt: vec![false; 4],
            confidence: vec![0.0; 4],
            decoded_now: vec![],
            elapsed: Duration::ZERO,
        }
    }

    #[test]
    fn playback_advances_at_the_chosen_speed_and_stops_at_the_newest_frame() {
        let mut w = WatchState::default();
        w.start_job(1, vec![], 4, vec![]);
        for s in 0..5 {
            w.push_frame(1, frame(s));
        }
        w.speed = 3; // 8 steps/s: one frame per 125 ms
        assert!(!w.tick(Duration::from_millis(100)));
        assert!(w.tick(Duration::from_millis(30)));
        assert_eq!(w.cursor, 1);
        w.tick(Duration::from_secs(10));
        assert_eq!(w.cursor, 4);
    }

    #[test]
    fn stepping_pauses_and_stays_in_bounds() {
        let mut w = WatchState::default();
        w.start_job(1, vec![], 4, vec![]);
        w.push_frame(1, frame(0));
        w.push_frame(1, frame(1));
        w.step_back();
        assert!(!w.playing);
        assert_eq!(w.cursor, 0);
        w.step_forward();
        w.step_forward();
        assert_eq!(w.cursor, 1);
        assert!(!w.tick(Duration::from_secs(1)), "paused playback does not move");
    }

    #[test]
    fn stale_jobs_are_ignored() {
        let mut w = WatchState::default();
        w.start_job(2, vec![], 4, vec![]);
        w.push_frame(1, frame(0));
        assert!(w.frames.is_empty());
        w.finish(1, &[1, 2], &[1.0, 1.0], &[false, false]);
        assert!(!w.done);
    }

    #[test]
    fn settings_adjust_within_bounds() {
        let mut s = DecodeSettings::default();
        for _ in 0..40 {
            s.adjust(true);
        }
        assert_eq!(s.threshold, 1.0);
        s.cycle_strategy();
        assert_eq!(s.kind, StrategyKind::Steps);
        s.adjust(false);
        assert_eq!(s.steps, 16);
        for _ in 0..10 {
            s.adjust(false);
        }
        assert_eq!(s.steps, 1);
        for _ in 0..50 {
            s.adjust_temperature(false);
        }
        assert_eq!(s.temperature, 0.0);
        assert!(matches!(s.options().strategy, Strategy::Steps { steps: 1 }));
    }
}
