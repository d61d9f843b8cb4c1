//! Text of any length, window after window: `Generation` runs a model kind's `Stepper` over
//! each block in turn, each window conditioned on the tail of the one before.

use super::decode::DecodeOptions;
use super::sampler::{Cell, Denoiser, Frame, Sampler};
use crate::vocab::MASK_ID;
use rand::SeedableRng;
use rand::rngs::StdRng;

/// One window's decoding, one step per call: what `Generation` runs block after block. Masked
/// diffusion's `Sampler` is one; each model kind picks its own (`ModelKind::stepper`).
pub trait Stepper: Send {
    /// One step; a frame with nothing written once done.
    fn step(&mut self, model: &dyn Denoiser, rng: &mut StdRng, block: usize, offset: usize) -> Frame;
    fn is_done(&self) -> bool;
    fn tokens(&self) -> &[u32];
    fn confidence(&self) -> &[f32];
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

    fn tokens(&self) -> &[u32] {
        Sampler::tokens(self)
    }

    fn confidence(&self) -> &[f32] {
        Sampler::confidence(self)
    }

    fn initial_frame(&self, block: usize, offset: usize) -> Frame {
        Sampler::initial_frame(self, block, offset)
    }
}

/// One window to decode: its ids (MASK where a character is to be written), which of them the
/// user gave, and the confidence of those already written.
pub type Window = (Vec<u32>, Vec<bool>, Vec<f32>);

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
    buffer: Vec<u32>,
    prompt: Vec<bool>,
    confidence: Vec<f32>,
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
        let buffer = prompt.to_vec();
        let prompt: Vec<bool> = buffer.iter().map(|&t| t != MASK_ID).collect();
        let confidence = prompt.iter().map(|&p| if p { 1.0 } else { 0.0 }).collect();
        Generation {
            length: length.max(buffer.len()),
            buffer,
            prompt,
            confidence,
            origin: 0,
            context: context.max(1),
            overlap: overlap.min(context.saturating_sub(1)),
            new_stepper: Box::new(move |(tokens, prompt, confidence), _| Box::new(Sampler::resume(tokens, prompt, confidence, options))),
            rng: StdRng::seed_from_u64(options.seed),
            block: 0,
            current: None,
        }
    }

    /// The same generation with each window decoded by the stepper `new_stepper` makes.
    pub fn with_stepper(self, new_stepper: NewStepper) -> Self {
        Generation { new_stepper, ..self }
    }

    /// The output from the first position not yet taken by `take_finished` (all of it, if never
    /// called), as far as windows have reached: the whole output once `is_done`.
    pub fn tokens(&self) -> &[u32] {
        &self.buffer
    }

    pub fn prompt_mask(&self) -> &[bool] {
        &self.prompt
    }

    pub fn confidence(&self) -> &[f32] {
        &self.confidence
    }

    /// `tokens()` with their confidence and prompt flags.
    pub fn cells(&self) -> Vec<Cell> {
        (0..self.buffer.len()).map(|i| Cell { token: self.buffer[i], confidence: self.confidence[i], prompt: self.prompt[i] }).collect()
    }

    pub fn is_done(&self) -> bool {
        self.current.is_none() && self.next_window().is_none()
    }

    /// The window the next block will use (positions in the whole output), if any position is
    /// still masked.
    fn next_window(&self) -> Option<(usize, usize)> {
        let reached = self.origin + self.buffer.len();
        let first = match self.buffer.iter().position(|&t| t == MASK_ID) {
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
        let n = end.saturating_sub(self.origin + self.buffer.len());
        self.buffer.extend(std::iter::repeat_n(MASK_ID, n));
        self.prompt.extend(std::iter::repeat_n(false, n));
        self.confidence.extend(std::iter::repeat_n(0.0, n));
    }

    /// Hands over the text that is final and that no later window reads (between blocks; while
    /// a block is open, what lies before it), and forgets it. `tokens` then starts after it.
    pub fn take_finished(&mut self) -> Vec<u32> {
        let keep_from = match (&self.current, self.next_window()) {
            (Some((start, _)), _) => *start,
            (None, Some((start, _))) => start,
            (None, None) => self.origin + self.buffer.len(),
        };
        let n = keep_from - self.origin;
        self.origin = keep_from;
        self.prompt.drain(..n);
        self.confidence.drain(..n);
        self.buffer.drain(..n).collect()
    }

    /// Opens the next block, if none is open and any position is still masked, and returns its
    /// initial frame (nothing decoded yet).
    pub fn begin_block(&mut self) -> Option<Frame> {
        if self.current.is_some() {
            return None;
        }
        let (start, end) = self.next_window()?;
        self.reach(end);
        let (a, b) = (start - self.origin, end - self.origin);
        let window = (self.buffer[a..b].to_vec(), self.prompt[a..b].to_vec(), self.confidence[a..b].to_vec());
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
            let (a, n) = (offset - self.origin, sampler.tokens().len());
            self.buffer[a..a + n].copy_from_slice(sampler.tokens());
            self.confidence[a..a + n].copy_from_slice(sampler.confidence());
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
