//! The reverse process: a stepper that unmasks characters in parallel, one denoising step per call.
//!
//! Each step asks the denoiser for logits at the still-masked positions it may commit, proposes a
//! character (and its confidence) for each, then commits some of them according to the
//! strategy. Committed characters never change again, nor do prompt characters.

use super::decode::{DecodeOptions, Timestep};
use super::rules::{self, Proposal};
use crate::vocab::MASK_ID;
use rand::Rng;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::Serialize;
use std::time::{Duration, Instant};

/// What a timestep-conditioned model is told about how far denoising has come.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Time {
    /// The share of the window still hidden.
    MaskRate(f32),
    /// The index of the step (from 0).
    Step(usize),
}

/// Anything that maps a window of ids (MASK where hidden) to logits.
pub trait Denoiser {
    fn vocab_size(&self) -> usize;
    /// Longest window the denoiser accepts.
    fn context(&self) -> usize;
    /// Logits at `positions` of the window, row-major `[positions.len(), vocab]`. `time` is read
    /// by timestep-conditioned models only.
    fn logits(&self, tokens: &[u32], time: Time, positions: &[usize]) -> Vec<f32>;
}

/// Everything a viewer needs to draw one step of one window, and a test needs to check it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Frame {
    /// Which block of a long generation (0-based).
    pub block: usize,
    /// Step within the block, from 1.
    pub step: usize,
    /// Position of the window's first character in the whole output.
    pub offset: usize,
    pub tokens: Vec<u32>,
    pub masked: Vec<bool>,
    /// Characters given by the user (never changed by the sampler).
    pub prompt: Vec<bool>,
    /// Confidence with which each position was committed (1.0 for prompt, 0.0 while masked).
    pub confidence: Vec<f32>,
    /// Positions (within the window) committed in this step.
    pub decoded_now: Vec<usize>,
    #[serde(serialize_with = "ser_millis")]
    pub elapsed: Duration,
}

fn ser_millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1e3)
}

/// Denoises one window until no position is masked.
pub struct Sampler {
    tokens: Vec<u32>,
    prompt: Vec<bool>,
    confidence: Vec<f32>,
    step: usize,
    options: DecodeOptions,
}

impl Sampler {
    /// `tokens` holds MASK where a character is to be generated; everything else is prompt.
    pub fn new(tokens: Vec<u32>, options: DecodeOptions) -> Self {
        let prompt: Vec<bool> = tokens.iter().map(|&t| t != MASK_ID).collect();
        let confidence = prompt.iter().map(|&p| if p { 1.0 } else { 0.0 }).collect();
        Sampler { tokens, prompt, confidence, step: 0, options }
    }

    /// Starts from a partly decoded window: `prompt` marks user-given characters, `confidence`
    /// the confidence of characters already committed.
    pub fn resume(tokens: Vec<u32>, prompt: Vec<bool>, confidence: Vec<f32>, options: DecodeOptions) -> Self {
        Sampler { tokens, prompt, confidence, step: 0, options }
    }

    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    pub fn confidence(&self) -> &[f32] {
        &self.confidence
    }

    pub fn is_done(&self) -> bool {
        !self.tokens.contains(&MASK_ID)
    }

    /// The frame before any step: what the viewer shows first.
    pub fn initial_frame(&self, block: usize, offset: usize) -> Frame {
        self.frame(block, offset, Vec::new(), Duration::ZERO)
    }

    fn frame(&self, block: usize, offset: usize, decoded_now: Vec<usize>, elapsed: Duration) -> Frame {
        Frame {
            block,
            step: self.step,
            offset,
            tokens: self.tokens.clone(),
            masked: self.tokens.iter().map(|&t| t == MASK_ID).collect(),
            prompt: self.prompt.clone(),
            confidence: self.confidence.clone(),
            decoded_now,
            elapsed,
        }
    }

    /// One denoising step. Does nothing (and returns a frame with no decoded positions) when done.
    pub fn step(&mut self, model: &dyn Denoiser, rng: &mut impl Rng, block: usize, offset: usize) -> Frame {
        let start = Instant::now();
        let mut masked: Vec<usize> = (0..self.tokens.len()).filter(|&i| self.tokens[i] == MASK_ID).collect();
        if masked.is_empty() {
            return self.frame(block, offset, Vec::new(), Duration::ZERO);
        }
        let time = match self.options.timestep {
            Timestep::MaskRate => Time::MaskRate(masked.len() as f32 / self.tokens.len() as f32),
            Timestep::Step => Time::Step(self.step),
        };
        if self.options.strategy.uses_span() && self.options.span > 0 {
            let limit = masked[0] + self.options.span;
            masked.retain(|&i| i < limit);
        }
        let vocab = model.vocab_size();
        let logits = model.logits(&self.tokens, time, &masked);
        assert_eq!(logits.len(), masked.len() * vocab, "denoiser returned logits of the wrong size");
        let proposals: Vec<Proposal> =
            masked.iter().zip(logits.chunks_exact(vocab)).map(|(&i, row)| rules::propose(i, row, &self.options, rng)).collect();
        let chosen = rules::select(&proposals, &self.options, self.step, rng);
        self.step += 1;
        let mut decoded_now = Vec::with_capacity(chosen.len());
        for p in chosen {
            self.tokens[p.position] = p.token;
            self.confidence[p.position] = p.confidence;
            decoded_now.push(p.position);
        }
        decoded_now.sort_unstable();
        self.frame(block, offset, decoded_now, start.elapsed())
    }
}

/// Generates text of any length, window after window.
///
/// The output buffer holds the prompt (MASK at gaps) followed by MASK up to `length`.
/// Each block is a window of at most `context` characters that starts `overlap` characters
/// before the first position still masked (earlier when the text ends sooner), so it is
/// conditioned on the tail of what came before and on any prompt text after it.
pub struct Generation {
    buffer: Vec<u32>,
    prompt: Vec<bool>,
    confidence: Vec<f32>,
    context: usize,
    overlap: usize,
    options: DecodeOptions,
    rng: StdRng,
    block: usize,
    current: Option<(usize, Sampler)>,
}

impl Generation {
    pub fn new(prompt: &[u32], length: usize, context: usize, overlap: usize, options: DecodeOptions) -> Self {
        let length = length.max(prompt.len());
        let mut buffer = prompt.to_vec();
        buffer.resize(length, MASK_ID);
        let prompt: Vec<bool> = buffer.iter().map(|&t| t != MASK_ID).collect();
        let confidence = prompt.iter().map(|&p| if p { 1.0 } else { 0.0 }).collect();
        Generation {
            buffer,
            prompt,
            confidence,
            context: context.max(1),
            overlap: overlap.min(context.saturating_sub(1)),
            options,
            rng: StdRng::seed_from_u64(options.seed),
            block: 0,
            current: None,
        }
    }

    pub fn tokens(&self) -> &[u32] {
        &self.buffer
    }

    pub fn prompt_mask(&self) -> &[bool] {
        &self.prompt
    }

    pub fn confidence(&self) -> &[f32] {
        &self.confidence
    }

    pub fn is_done(&self) -> bool {
        self.current.is_none() && !self.buffer.contains(&MASK_ID)
    }

    /// The window the next block will use, if any position is still masked.
    fn next_window(&self) -> Option<(usize, usize)> {
        let first = self.buffer.iter().position(|&t| t == MASK_ID)?;
        let len = self.buffer.len();
        // `overlap` characters before the first gap, or earlier if the window would otherwise
        // run past the end (more context is never worse).
        let start = first.saturating_sub(self.overlap).min(len.saturating_sub(self.context));
        Some((start, (start + self.context).min(len)))
    }

    /// Opens the next block, if none is open and any position is still masked, and returns its
    /// initial frame (nothing decoded yet).
    pub fn begin_block(&mut self) -> Option<Frame> {
        if self.current.is_some() {
            return None;
        }
        let (start, end) = self.next_window()?;
        let sampler = Sampler::resume(
            self.buffer[start..end].to_vec(),
            self.prompt[start..end].to_vec(),
            self.confidence[start..end].to_vec(),
            self.options,
        );
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
            let n = sampler.tokens().len();
            self.buffer[offset..offset + n].copy_from_slice(sampler.tokens());
            self.confidence[offset..offset + n].copy_from_slice(sampler.confidence());
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
