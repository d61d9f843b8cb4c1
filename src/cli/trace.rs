//! `generate --trace`: one JSON line per denoising step.
//!
//! Each line holds the frame's fields (`block`, `step`, `offset`, `decoded_now`, `remasked_now`,
//! `elapsed` in ms), the window position by position (`tokens`, `masked`, `prompt`, `confidence`),
//! its `text`, and what the model believed about each position the last time it looked
//! (`top`: the likeliest characters as `[character, probability]` pairs; `entropy` in nats; both
//! null where it has not looked, as at the prompt), with `looked_now`, the positions it looked at in
//! this step.

use crate::diffusion::{Cell, Frame};
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
    tokens: Column<'a, u32>,
    masked: Column<'a, bool>,
    prompt: Column<'a, bool>,
    confidence: Column<'a, f32>,
    decoded_now: &'a [usize],
    remasked_now: &'a [usize],
    elapsed: f64,
    text: String,
    top: Column<'a, Option<Vec<(char, f32)>>>,
    entropy: Column<'a, Option<f32>>,
    looked_now: Vec<usize>,
}

/// One field of every cell of the window, written as a JSON array as it is read off the cells.
struct Column<'a, T>(&'a [Cell], &'a dyn Fn(&Cell) -> T);

impl<T: serde::Serialize> serde::Serialize for Column<'_, T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(self.1))
    }
}

fn line(frame: &Frame, vocab: &Vocab, mask_char: char) -> String {
    let cells = &frame.cells;
    let top = |c: &Cell| c.belief.map(|b| b.top.iter().filter(|(_, p)| *p > 0.0).map(|&(id, p)| (vocab.char(id).unwrap_or(mask_char), p)).collect());
    let line = Line {
        block: frame.block,
        step: frame.step,
        offset: frame.offset,
        tokens: Column(cells, &|c| c.token),
        masked: Column(cells, &Cell::is_masked),
        prompt: Column(cells, &|c| c.prompt),
        confidence: Column(cells, &|c| c.confidence),
        decoded_now: &frame.decoded_now,
        remasked_now: &frame.remasked_now,
        elapsed: frame.elapsed.as_secs_f64() * 1e3,
        text: vocab.decode(&frame.tokens(), mask_char),
        top: Column(cells, &top),
        entropy: Column(cells, &|c| c.belief.map(|b| b.entropy)),
        looked_now: (0..cells.len()).filter(|&i| cells[i].belief.is_some_and(|b| b.step as usize == frame.step)).collect(),
    };
    serde_json::to_string(&line).expect("a trace line serialises")
}
