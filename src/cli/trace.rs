//! `generate --trace`: one JSON line per denoising step.
//!
//! Each line holds the frame's fields (`block`, `step`, `offset`, `decoded_now`, `remasked_now`,
//! `elapsed` in ms), the window position by position (`tokens`, `masked`, `prompt`, `confidence`),
//! its `text`, and what the model believed about each position the last time it looked
//! (`top`: the likeliest characters as `[character, probability]` pairs; `entropy` in nats; both
//! null where it has not looked, as at the prompt), with `looked_now`, the positions it looked at in
//! this step.

use crate::diffusion::{Belief, Frame};
use crate::vocab::Vocab;
use anyhow::{Context, Result};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

pub struct Trace {
    out: BufWriter<File>,
    /// The first write that failed: reported once the run ends, so the output is not cut short.
    error: Option<std::io::Error>,
}

impl Trace {
    pub fn create(path: &Path) -> Result<Trace> {
        let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        Ok(Trace { out: BufWriter::new(file), error: None })
    }

    pub fn write(&mut self, frame: &Frame, vocab: &Vocab, mask_char: char) {
        if self.error.is_none()
            && let Err(e) = writeln!(self.out, "{}", line(frame, vocab, mask_char))
        {
            self.error = Some(e);
        }
    }

    pub fn finish(mut self) -> Result<()> {
        match self.error.take() {
            Some(e) => Err(e).context("cannot write the trace"),
            None => self.out.flush().context("cannot write the trace"),
        }
    }
}

/// One line, fields in the order above. (A struct rather than `json!`, which would write each f32
/// as the f64 it widens to: 0.3937820792198181 for 0.39378208.)
#[derive(serde::Serialize)]
struct Line<'a> {
    block: usize,
    step: usize,
    offset: usize,
    tokens: Vec<u32>,
    masked: Vec<bool>,
    prompt: Vec<bool>,
    confidence: Vec<f32>,
    decoded_now: &'a [usize],
    remasked_now: &'a [usize],
    elapsed: f64,
    text: String,
    top: Vec<Option<Vec<(char, f32)>>>,
    entropy: Vec<Option<f32>>,
    looked_now: Vec<usize>,
}

fn line(frame: &Frame, vocab: &Vocab, mask_char: char) -> String {
    let cells = &frame.cells;
    let tokens = frame.tokens();
    let top = |b: &Belief| b.top.iter().filter(|(_, p)| *p > 0.0).map(|&(id, p)| (vocab.char(id).unwrap_or(mask_char), p)).collect();
    let line = Line {
        block: frame.block,
        step: frame.step,
        offset: frame.offset,
        masked: cells.iter().map(|c| c.is_masked()).collect(),
        prompt: cells.iter().map(|c| c.prompt).collect(),
        confidence: cells.iter().map(|c| c.confidence).collect(),
        decoded_now: &frame.decoded_now,
        remasked_now: &frame.remasked_now,
        elapsed: frame.elapsed.as_secs_f64() * 1e3,
        text: vocab.decode(&tokens, mask_char),
        tokens,
        top: cells.iter().map(|c| c.belief.as_ref().map(top)).collect(),
        entropy: cells.iter().map(|c| c.belief.map(|b| b.entropy)).collect(),
        looked_now: (0..cells.len()).filter(|&i| cells[i].belief.is_some_and(|b| b.step as usize == frame.step)).collect(),
    };
    serde_json::to_string(&line).expect("a trace line serialises")
}
