//! Text of any length, window after window: `Generation` runs a model kind's `Stepper` over
//! each block in turn, each window conditioned on the tail of the one before.

use super::cell::{self, Cell, Frame};
use super::decode::DecodeOptions;
use super::sampler::{Denoiser, Sampler};
use rand::SeedableRng;
use rand::rngs::StdRng;

/// One window's decoding, one step per call: what `Generation` runs block after block. Masked
/// diffusion's `Sampler` is one; each model kind picks its own (`ModelKind::stepper`).
pub trait Stepper: Send {
    /// One step; a frame with nothing written once done.
    fn step(&mut self, model: &dyn Denoiser, rng: &mut StdRng, block: usize, offset: usize) -> Frame;
    fn is_done(&self) -> bool;
    /// The window as it stands.
    fn cells(&self) -> &[Cell];
    /// The frame before any step.
    fn initial_frame(&self, block: usize, offset: usize) -> Frame;
}

impl Stepper for Sampler {
    fn step(&mut self, model: &dyn Denoiser, rng: &mut StdRng, block: usize, offset: usize) -> Frame {
        Sampler::step(self, model, rng, block, offset)
    }

    fn is_done(&self) -> bool {
        Sampler::is_done(self)
    }

    fn cells(&self) -> &[Cell] {
        Sampler::cells(self)
    }

    fn initial_frame(&self, block: usize, offset: usize) -> Frame {
        Sampler::initial_frame(self, block, offset)
    }
}

/// One window to decode: its cells, masked where a character is to be written.
pub type Window = Vec<Cell>;

/// Makes the stepper that decodes a window (the model kind's choice: `kind::generation`).
pub type NewStepper = Box<dyn FnMut(Window, &mut StdRng) -> Box<dyn Stepper> + Send>;

/// Characters of the previous block that condition the next, unless a front end says otherwise.
pub const DEFAULT_OVERLAP: usize = 16;

/// Generates text of any length, window after window.
///
/// The output is the prompt (MASK at gaps) followed by MASK up to `length`. Each block is a window
/// of at most `context` characters that starts `overlap` characters before the first position
/// still masked (earlier when the text ends sooner), so it is conditioned on the tail of what came
/// before and on any prompt text after it.
///
/// Memory does not grow with `length`: positions past the prompt are created as windows reach
/// them, and `take_finished` hands over (and forgets) the text no later window can read.
pub struct Generation {
    /// The output from position `origin` on, as far as any window has reached.
    cells: Vec<Cell>,
    origin: usize,
    length: usize,
    context: usize,
    overlap: usize,
    /// How each window is decoded: masked diffusion's `Sampler` unless `with_stepper` says otherwise.
    new_stepper: NewStepper,
    rng: StdRng,
    block: usize,
    /// The open block: its window's start (a position in the whole output) and its stepper.
    current: Option<(usize, Box<dyn Stepper>)>,
}

impl Generation {
    pub fn new(prompt: &[u32], length: usize, context: usize, overlap: usize, options: DecodeOptions) -> Self {
        Generation {
            length: length.max(prompt.len()),
            cells: cell::given(prompt),
            origin: 0,
            context: context.max(1),
            overlap: overlap.min(context.saturating_sub(1)),
            new_stepper: Box::new(move |window, _| Box::new(Sampler::resume(window, options))),
            rng: StdRng::seed_from_u64(options.seed),
            block: 0,
            current: None,
        }
    }

    /// The same generation carried on from `cells` (the output from its first position, as far as
    /// a run reached: its characters, prompt and written, keep their cells), rather than from the
    /// prompt alone. A viewer that pauses a run, changes a cell and resumes starts one so.
    pub fn resumed_from(self, cells: Vec<Cell>) -> Self {
        assert!(cells.len() <= self.length, "resumed past the output's length");
        Generation { cells, ..self }
    }

    /// The same generation with each window decoded by the stepper `new_stepper` makes.
    pub fn with_stepper(self, new_stepper: NewStepper) -> Self {
        Generation { new_stepper, ..self }
    }

    /// The output from the first position not yet taken by `take_finished` (all of it, if never
    /// called), as far as windows have reached: the whole output once `is_done`.
    pub fn tokens(&self) -> Vec<u32> {
        cell::tokens(&self.cells)
    }

    /// `tokens()` with their confidence, prompt flags and beliefs.
    pub fn cells(&self) -> &[Cell] {
        &self.cells
    }

    pub fn is_done(&self) -> bool {
        self.current.is_none() && self.next_window().is_none()
    }

    /// The window the next block will use (positions in the whole output), if any position is
    /// still masked.
    fn next_window(&self) -> Option<(usize, usize)> {
        let reached = self.origin + self.cells.len();
        let first = match self.cells.iter().position(Cell::is_masked) {
            Some(i) => self.origin + i,
            None if reached < self.length => reached,
            None => return None,
        };
        // `overlap` characters before the first gap, or earlier if the window would otherwise
        // run past the end (more context is never worse).
        let start = first.saturating_sub(self.overlap).min(self.length.saturating_sub(self.context)).max(self.origin);
        Some((start, (start + self.context).min(self.length)))
    }

    /// Creates the positions up to `end` (masked, not prompt).
    fn reach(&mut self, end: usize) {
        let n = end.saturating_sub(self.origin + self.cells.len());
        self.cells.extend(std::iter::repeat_n(Cell::MASKED, n));
    }

    /// Hands over the text that is final and that no later window reads (between blocks; while
    /// a block is open, what lies before it), and forgets it. `tokens` then starts after it.
    pub fn take_finished(&mut self) -> Vec<u32> {
        let keep_from = match (&self.current, self.next_window()) {
            (Some((start, _)), _) => *start,
            (None, Some((start, _))) => start,
            (None, None) => self.origin + self.cells.len(),
        };
        let n = keep_from - self.origin;
        self.origin = keep_from;
        self.cells.drain(..n).map(|c| c.token).collect()
    }

    /// Opens the next block, if none is open and any position is still masked, and returns its
    /// initial frame (nothing decoded yet).
    pub fn begin_block(&mut self) -> Option<Frame> {
        if self.current.is_some() {
            return None;
        }
        let (start, end) = self.next_window()?;
        self.reach(end);
        let window = self.cells[start - self.origin..end - self.origin].to_vec();
        let sampler = (self.new_stepper)(window, &mut self.rng);
        let frame = sampler.initial_frame(self.block, start);
        self.current = Some((start, sampler));
        Some(frame)
    }

    /// One denoising step; `None` once every position is decoded.
    pub fn step(&mut self, model: &dyn Denoiser) -> Option<Frame> {
        if self.current.is_none() {
            self.begin_block()?;
        }
        let (offset, sampler) = self.current.as_mut().expect("a block is open");
        let offset = *offset;
        let frame = sampler.step(model, &mut self.rng, self.block, offset);
        if sampler.is_done() {
            cell::merge(&mut self.cells, offset - self.origin, sampler.cells());
            self.current = None;
            self.block += 1;
        }
        Some(frame)
    }

    /// Runs to the end, handing every frame to `on_frame`.
    pub fn run(&mut self, model: &dyn Denoiser, mut on_frame: impl FnMut(&Frame)) {
        while let Some(frame) = self.step(model) {
            on_frame(&frame);
        }
    }
}
