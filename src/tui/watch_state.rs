//! State of the watch screen: decoding settings, the recorded frames of the current block,
//! and playback through them.

use crate::diffusion::{DecodeOptions, Frame};
pub use crate::diffusion::Cell;
use std::time::Duration;

/// Playback speeds in denoising steps per second.
pub const SPEEDS: [f64; 8] = [1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0, 120.0];
pub const DEFAULT_SPEED: usize = 4;

/// Records in `steps` (per window position) what `frame` did: the step that revealed each
/// position it committed, and none for each it took back. The decode-order view reads it.
/// A gap that changes its length moves the positions after it: `steps` follows the frame's
/// length, and positions it no longer holds are left out.
pub fn mark_reveals(steps: &mut Vec<Option<usize>>, frame: &Frame) {
    steps.resize(frame.cells.len(), None);
    for &i in &frame.remasked_now {
        steps[i] = None;
    }
    for &i in &frame.decoded_now {
        steps[i] = Some(frame.step);
    }
}

/// How the grid colours its cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum View {
    /// By the model's confidence when it committed them.
    #[default]
    Confidence,
    /// By the step that revealed them: the order the block was written in.
    Order,
    /// Masked positions shaded by how sure the model already is of them (the entropy of its
    /// belief), so one sees where it has made up its mind before it commits anything.
    Uncertainty,
}

impl View {
    /// The next view, as `v` cycles them.
    pub fn next(self) -> View {
        match self {
            View::Confidence => View::Order,
            View::Order => View::Uncertainty,
            View::Uncertainty => View::Confidence,
        }
    }
}


#[derive(Debug, Clone, PartialEq)]
pub struct WatchState {
    pub settings: DecodeOptions,
    pub view: View,
    /// The prompt of the current session (empty for free generation, with gaps for infill).
    pub base_prompt: Vec<u32>,
    /// The base prompt is filled in place (the output is as long as it is, with its gaps filled
    /// or closed), rather than continued to the model's context.
    pub base_in_place: bool,
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
    /// The window position the cell inspector shows, while it is open.
    pub inspected: Option<usize>,
    /// The next character typed is pinned at the inspected cell.
    pub pinning: bool,
    /// Positions (in the whole output) the user pinned a character at, in this job.
    pub pins: Vec<usize>,
    /// The current job carries on a paused one from this frame's step and block (after a pin):
    /// its frames count on from them, after the frames kept from before.
    pub branch: Option<(usize, usize)>,
}

impl Default for WatchState {
    fn default() -> Self {
        WatchState {
            settings: DecodeOptions::default(),
            view: View::default(),
            base_prompt: Vec::new(),
            base_in_place: false,
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
            inspected: None,
            pinning: false,
            pins: Vec::new(),
            branch: None,
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
        (self.pinning, self.branch) = (false, None);
        self.pins.clear();
    }

    /// Pins `token` at the inspected cell if it is masked (`Some`), or unpins it if the user
    /// pinned it (`None`), in the frame on screen; the frames after it are dropped and job `job`
    /// carries on from there. Returns the output as it stands at that frame, the change made,
    /// for the job to start from; `None` (and nothing changed) if there is nothing to change.
    pub fn steer(&mut self, job: u64, token: Option<u32>) -> Option<Vec<Cell>> {
        self.pinning = false;
        let i = self.inspected_in_view()?;
        let frame = self.frame()?;
        let (position, cell) = (frame.offset + i, frame.cells[i]);
        let changed = match token {
            Some(t) if cell.is_masked() => Cell { belief: cell.belief, ..Cell::given(t) },
            None if self.pins.contains(&position) => Cell { belief: cell.belief, ..Cell::MASKED },
            _ => return None,
        };
        let (step, block) = (frame.step, frame.block);
        self.frames.truncate(self.cursor + 1);
        self.frames[self.cursor].cells[i] = changed;
        // The output as it stood at the frame on screen: the job's start, then each frame in turn.
        let mut cells = self.job_history.clone();
        for f in &self.frames {
            crate::diffusion::cell::merge(&mut cells, f.offset, &f.cells);
        }
        match token {
            Some(_) => self.pins.push(position),
            None => self.pins.retain(|&p| p != position),
        }
        (self.job, self.done, self.branch, self.playing) = (job, false, Some((step, block)), false);
        Some(cells)
    }

    /// A frame from the worker. Frames of an earlier block of the same job replace the view
    /// when playback reaches them; stale jobs are ignored.
    pub fn push_frame(&mut self, job: u64, mut frame: Frame) {
        if job == self.job {
            if let Some((step, block)) = self.branch {
                (frame.step, frame.block) = (frame.step + step, frame.block + block);
            }
            self.frames.push(frame);
        }
    }

    pub fn finish(&mut self, job: u64, cells: Vec<Cell>) {
        if job != self.job {
            return;
        }
        self.done = true;
        self.committed = cells;
    }

    /// Cells before the window on screen, from earlier blocks and jobs; with no window on screen,
    /// every committed cell (a prompt with nothing left to fill, such as one whose only elastic
    /// gap closed, finishes without a single frame).
    pub fn history(&self) -> &[Cell] {
        let offset = self.frame().map_or(self.committed.len(), |f| f.offset);
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

    /// Characters revised (remasked or polished) up to the frame on screen, in this job.
    pub fn edits_in_view(&self) -> usize {
        self.frames.iter().take(self.cursor + 1).map(|f| f.remasked_now.len()).sum()
    }

    /// For the frame on screen: the step that revealed each position of its window (None while
    /// masked or given), and the frame's own step.
    pub fn reveal_steps(&self) -> Option<(Vec<Option<usize>>, usize)> {
        let current = self.frame()?;
        let mut steps = Vec::new();
        for f in self.frames.iter().take(self.cursor + 1).filter(|f| f.block == current.block) {
            mark_reveals(&mut steps, f);
        }
        steps.resize(current.cells.len(), None);
        Some((steps, current.step))
    }

    /// Opens the cell inspector on the first position still masked on screen (the first of the
    /// window when none is), or closes it.
    pub fn toggle_inspector(&mut self) {
        self.inspected = match self.inspected {
            Some(_) => None,
            None => Some(self.frame().and_then(|f| f.cells.iter().position(|c| c.is_masked())).unwrap_or(0)),
        };
    }

    /// Moves the inspected cell by `delta` positions, within the window on screen.
    pub fn move_inspected(&mut self, delta: isize) {
        let len = self.frame().map_or(1, |f| f.cells.len()).max(1);
        if let Some(i) = self.inspected.as_mut() {
            *i = i.saturating_add_signed(delta).min(len - 1);
        }
    }

    /// The inspected position, if the inspector is open and the window on screen has it.
    pub fn inspected_in_view(&self) -> Option<usize> {
        self.inspected.filter(|&i| self.frame().is_some_and(|f| i < f.cells.len()))
    }

    pub fn masked_in_view(&self) -> usize {
        self.frame().map_or(0, Frame::masked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diffusion::Strategy;
    use crate::tui::decode_keys::DecodeKeys;

    fn frame(step: usize) -> Frame {
        Frame {
            block: 0,
            step,
            offset: 0,
            cells: vec![Cell::MASKED; 4],
            decoded_now: vec![],
            remasked_now: vec![],
            resized_now: vec![],
            elapsed: Duration::ZERO,
        }
    }

    #[test]
    fn a_job_with_nothing_to_fill_shows_its_text_without_frames() {
        let mut w = WatchState::default();
        let cells = crate::diffusion::cell::given(&[3, 4, 5]);
        w.start_job(1, vec![3, 4, 5], 3, cells.clone());
        assert_eq!(w.history(), cells.as_slice(), "the prompt shows while the worker runs");
        w.finish(1, cells.clone());
        assert!(w.frame().is_none());
        assert_eq!(w.history(), cells.as_slice());
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
        w.finish(1, crate::diffusion::cell::given(&[1, 1]));
        assert!(!w.done);
    }

    #[test]
    fn settings_adjust_within_bounds() {
        let mut s = DecodeOptions { strategy: Strategy::Confidence, ..DecodeOptions::default() };
        for _ in 0..40 {
            s.adjust(true);
        }
        assert_eq!(s.threshold, 1.0);
        s.strategy = Strategy::Steps;
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
    }
}
