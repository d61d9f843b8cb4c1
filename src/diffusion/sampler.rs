//! The reverse process: a stepper that unmasks characters in parallel, one denoising step per call.
//!
//! Each step asks the denoiser for logits at the still-masked positions it may commit, proposes a
//! character (and its confidence) for each, then commits some of them according to the
//! strategy. Committed characters never change again, nor do prompt characters.

use super::decode::{CACHE_WINDOW_SPANS, DecodeOptions, POLISH_STRIDE, Remask, Timestep};
use super::rules::{self, Proposal};
use crate::model::ModelKind;
use crate::vocab::MASK_ID;
use rand::{Rng, RngExt};
use serde::Serialize;
use std::ops::Range;
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
    /// What the model predicts, which decides how it is decoded (`kind::generation`).
    fn kind(&self) -> ModelKind {
        ModelKind::Masked
    }
    /// Longest window the denoiser accepts.
    fn context(&self) -> usize;
    /// Logits at `positions` of the window, row-major `[positions.len(), vocab]`. `time` is read
    /// by timestep-conditioned models only.
    fn logits(&self, tokens: &[u32], time: Time, positions: &[usize]) -> Vec<f32>;

    /// Like `logits`, but a denoiser that can may recompute only the window's `rows` (which hold
    /// `positions`) and reuse the other rows' keys and values from its last full pass over this
    /// window; `refresh` asks for a full pass, which becomes the new cache. Approximate: see
    /// `Model::forward_rows`. Without a cache, this is `logits`.
    fn logits_cached(&self, tokens: &[u32], time: Time, positions: &[usize], rows: &[std::ops::Range<usize>], refresh: bool) -> Vec<f32> {
        let _ = (rows, refresh);
        self.logits(tokens, time, positions)
    }
}

/// One character of the output as a viewer draws it: what it is, how sure the model was when it
/// wrote it (1.0 for the prompt, 0.0 while masked), and whether the user gave it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cell {
    pub token: u32,
    pub confidence: f32,
    pub prompt: bool,
}

/// Everything a viewer needs to draw one step of one window, and a test needs to check it.
/// (Parallel arrays rather than `Cell`s, as `--trace` writes them: one JSON array per field.)
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
    /// Positions whose character this step took back (masked again), with `--remask`.
    pub remasked_now: Vec<usize>,
    #[serde(serialize_with = "ser_millis")]
    pub elapsed: Duration,
}

impl Frame {
    /// The window's character at `i`.
    pub fn cell(&self, i: usize) -> Cell {
        Cell { token: self.tokens[i], confidence: self.confidence[i], prompt: self.prompt[i] }
    }
}

fn ser_millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1e3)
}

/// Denoises one window until no position is masked (nor, with `--remask`, awaits its check).
pub struct Sampler {
    tokens: Vec<u32>,
    prompt: Vec<bool>,
    confidence: Vec<f32>,
    /// Committed characters the next step checks in their full context (`--remask`).
    provisional: Vec<bool>,
    /// Whether each position has been masked again once already (it is then final when next committed).
    remasked: Vec<bool>,
    /// With `--cache`: the rows the denoiser recomputes until the next refresh.
    cache_rows: Option<Vec<Range<usize>>>,
    step: usize,
    /// `--polish` passes done over the finished window.
    polished: usize,
    /// Polish passes in a row that changed nothing: after `POLISH_STRIDE` of them every character
    /// has been checked against the same text, so later passes would change nothing either.
    unchanged_passes: usize,
    options: DecodeOptions,
}

/// The shortest stretch a lane is given: a gap shorter than two of these (an infilled word) is
/// decoded as one lane, from its left end.
const MIN_LANE: usize = 32;

impl Sampler {
    /// `tokens` holds MASK where a character is to be generated; everything else is prompt.
    pub fn new(tokens: Vec<u32>, options: DecodeOptions) -> Self {
        let prompt: Vec<bool> = tokens.iter().map(|&t| t != MASK_ID).collect();
        let confidence = prompt.iter().map(|&p| if p { 1.0 } else { 0.0 }).collect();
        Self::resume(tokens, prompt, confidence, options)
    }

    /// Starts from a partly decoded window: `prompt` marks user-given characters, `confidence`
    /// the confidence of characters already committed.
    pub fn resume(tokens: Vec<u32>, prompt: Vec<bool>, confidence: Vec<f32>, options: DecodeOptions) -> Self {
        let n = tokens.len();
        Sampler { tokens, prompt, confidence, provisional: vec![false; n], remasked: vec![false; n], cache_rows: None, step: 0, polished: 0, unchanged_passes: 0, options }
    }

    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    pub fn confidence(&self) -> &[f32] {
        &self.confidence
    }

    pub fn is_done(&self) -> bool {
        // ReMDM-loop keeps revising a fully decoded window until its steps are spent.
        let looping = self.options.remask == Remask::Loop && super::remdm::loop_revises(self.step, self.options.steps);
        !looping && !self.tokens.contains(&MASK_ID) && !self.provisional.contains(&true) && !self.polish_left()
    }

    /// Whether the finished window still gets polish passes: fewer than `--polish` done, and the
    /// last round of them changed something.
    fn polish_left(&self) -> bool {
        self.polished < self.options.polish && self.unchanged_passes < POLISH_STRIDE
    }

    /// The frame before any step: what the viewer shows first.
    pub fn initial_frame(&self, block: usize, offset: usize) -> Frame {
        self.frame(block, offset, Vec::new(), Vec::new(), Duration::ZERO)
    }

    fn frame(&self, block: usize, offset: usize, decoded_now: Vec<usize>, remasked_now: Vec<usize>, elapsed: Duration) -> Frame {
        Frame {
            block,
            step: self.step,
            offset,
            tokens: self.tokens.clone(),
            masked: self.tokens.iter().map(|&t| t == MASK_ID).collect(),
            prompt: self.prompt.clone(),
            confidence: self.confidence.clone(),
            decoded_now,
            remasked_now,
            elapsed,
        }
    }

    /// One denoising step. Does nothing (and returns a frame with no decoded positions) when done.
    ///
    /// With `--remask`, the step first checks the characters the previous step committed, now in
    /// the context of everything committed with them: one whose probability there is below
    /// `--remask-below` is masked again (once per position), so a parallel step's inconsistent
    /// guesses are revised instead of kept.
    pub fn step(&mut self, model: &dyn Denoiser, rng: &mut impl Rng, block: usize, offset: usize) -> Frame {
        if self.options.remask.is_remdm() {
            return self.remdm_step(model, rng, block, offset);
        }
        let start = Instant::now();
        let mut masked: Vec<usize> = (0..self.tokens.len()).filter(|&i| self.tokens[i] == MASK_ID).collect();
        let provisional: Vec<usize> = (0..self.tokens.len()).filter(|&i| self.provisional[i]).collect();
        if masked.is_empty() && provisional.is_empty() {
            if self.polish_left() {
                return self.polish_step(model, rng, block, offset);
            }
            return self.frame(block, offset, Vec::new(), Vec::new(), Duration::ZERO);
        }
        let time = self.time(masked.len());
        let lanes = self.lanes(&masked);
        masked = lanes.concat();
        let vocab = model.vocab_size();
        let queried: Vec<usize> = provisional.iter().chain(&masked).copied().collect();
        let logits = if self.options.cache { self.logits_cached(model, time, &queried) } else { model.logits(&self.tokens, time, &queried) };
        assert_eq!(logits.len(), queried.len() * vocab, "denoiser returned logits of the wrong size");
        let (checks, guesses) = logits.split_at(provisional.len() * vocab);

        let mut remasked_now = Vec::new();
        for (&i, row) in provisional.iter().zip(checks.chunks_exact(vocab)) {
            self.provisional[i] = false;
            if rules::probability(row, self.tokens[i]) < self.options.remask_below {
                self.tokens[i] = MASK_ID;
                self.confidence[i] = 0.0;
                self.remasked[i] = true;
                remasked_now.push(i);
            }
        }

        let proposals: Vec<Proposal> =
            masked.iter().zip(guesses.chunks_exact(vocab)).map(|(&i, row)| rules::propose(i, row, &self.options, rng)).collect();
        // Each lane chooses on its own, so each commits at least one position per step.
        let mut chosen = Vec::new();
        let mut rest = &proposals[..];
        for lane in &lanes {
            let (mine, others) = rest.split_at(lane.len());
            rest = others;
            if !mine.is_empty() {
                chosen.extend(rules::select(mine, &self.options, self.step, rng));
            }
        }
        self.step += 1;
        let mut decoded_now = Vec::with_capacity(chosen.len());
        for p in chosen {
            self.tokens[p.position] = p.token;
            self.confidence[p.position] = p.confidence;
            self.provisional[p.position] = self.options.remask == Remask::LowConfidence && !self.remasked[p.position];
            decoded_now.push(p.position);
        }
        decoded_now.sort_unstable();
        self.frame(block, offset, decoded_now, remasked_now, start.elapsed())
    }
}

impl Sampler {
    /// What a timestep-conditioned model is told this step, with `masked` positions still hidden.
    fn time(&self, masked: usize) -> Time {
        match self.options.timestep {
            Timestep::MaskRate => Time::MaskRate(masked as f32 / self.tokens.len() as f32),
            Timestep::Step => Time::Step(self.step),
        }
    }

    /// One step of MDLM's ancestral sampler with one of ReMDM's remasking schedules (see `remdm`):
    /// decoded characters are masked again, and masked positions decoded, each at random with the
    /// step's odds; at least one position is decoded while any is masked.
    fn remdm_step(&mut self, model: &dyn Denoiser, rng: &mut impl Rng, block: usize, offset: usize) -> Frame {
        let start = Instant::now();
        let masked: Vec<usize> = (0..self.tokens.len()).filter(|&i| self.tokens[i] == MASK_ID).collect();
        if self.is_done() {
            return self.frame(block, offset, Vec::new(), Vec::new(), Duration::ZERO);
        }
        let decoded: Vec<usize> = (0..self.tokens.len()).filter(|&i| !self.prompt[i] && self.tokens[i] != MASK_ID).collect();
        let confidences: Vec<f32> = decoded.iter().map(|&i| self.confidence[i]).collect();
        let odds = super::remdm::odds(self.options.remask, self.options.eta, self.step, self.options.steps, &confidences);
        let time = self.time(masked.len());
        let vocab = model.vocab_size();
        let logits = model.logits(&self.tokens, time, &masked);
        let proposals: Vec<Proposal> =
            masked.iter().zip(logits.chunks_exact(vocab)).map(|(&i, row)| rules::propose(i, row, &self.options, rng)).collect();
        let mut chosen: Vec<Proposal> = proposals.iter().copied().filter(|_| rng.random::<f32>() < odds.unmask).collect();
        if chosen.is_empty() {
            chosen.extend(proposals.iter().copied().max_by(|a, b| a.confidence.total_cmp(&b.confidence)));
        }
        let mut remasked_now: Vec<usize> = Vec::new();
        for (&i, &p) in decoded.iter().zip(&odds.remask) {
            if rng.random::<f32>() < p {
                self.tokens[i] = MASK_ID;
                self.confidence[i] = 0.0;
                remasked_now.push(i);
            }
        }
        let mut decoded_now: Vec<usize> = Vec::with_capacity(chosen.len());
        for p in chosen {
            self.tokens[p.position] = p.token;
            self.confidence[p.position] = p.confidence;
            decoded_now.push(p.position);
        }
        decoded_now.sort_unstable();
        self.step += 1;
        self.frame(block, offset, decoded_now, remasked_now, start.elapsed())
    }

    /// The stretches the window's generated region is cut into: with several lanes, `--stretch`
    /// characters each, or as many equal ones as `--lanes`, each at least `MIN_LANE` characters;
    /// one lane, or a region shorter than two `MIN_LANE`s (an infilled word), is one stretch.
    fn stretches(&self) -> Vec<Range<usize>> {
        let first = self.prompt.iter().position(|&p| !p).unwrap_or(0);
        let end = self.prompt.iter().rposition(|&p| !p).map_or(first, |i| i + 1);
        let len = end - first;
        let count = match self.options.stretch {
            _ if len < 2 * MIN_LANE || self.options.lanes <= 1 => 1,
            0 => self.options.lanes.min(len / MIN_LANE),
            stretch => len.div_ceil(stretch),
        };
        (0..count).map(|k| first + k * len / count..first + (k + 1) * len / count).collect()
    }

    /// Where each of the `--lanes` runs this step: the leftmost stretches with masked positions.
    fn lane_regions(&self) -> Vec<Range<usize>> {
        let open = |r: &Range<usize>| self.tokens[r.clone()].contains(&MASK_ID);
        self.stretches().into_iter().filter(open).take(self.options.lanes.max(1)).collect()
    }

    /// The masked positions this step may commit, lane by lane: in each lane, those within
    /// `--span` of its leftmost masked position. Distant characters depend on each other least,
    /// so lanes decode in parallel where a wider span would draw neighbours together.
    fn lanes(&self, masked: &[usize]) -> Vec<Vec<usize>> {
        if !self.options.strategy.uses_span() {
            return vec![masked.to_vec()];
        }
        self.lane_regions()
            .into_iter()
            .map(|region| {
                let mut lane: Vec<usize> = masked.iter().copied().filter(|i| region.contains(i)).collect();
                if let (Some(&leftmost), true) = (lane.first(), self.options.span > 0) {
                    lane.retain(|&i| i < leftmost + self.options.span);
                }
                lane
            })
            .collect()
    }

    /// One `--polish` pass over the finished window: every `POLISH_STRIDE`-th generated character
    /// (a different set each pass) is hidden and predicted from the rest, and where the model now
    /// prefers another character, that one is written (iterated conditional modes: a corrector step that
    /// repairs what parallel steps drew inconsistently, as the joint text is not a product of the
    /// marginals each step sampled from).
    fn polish_step(&mut self, model: &dyn Denoiser, rng: &mut impl Rng, block: usize, offset: usize) -> Frame {
        let start = Instant::now();
        let phase = self.polished % POLISH_STRIDE;
        self.polished += 1;
        let checked: Vec<usize> = (0..self.tokens.len()).filter(|&i| !self.prompt[i] && i % POLISH_STRIDE == phase).collect();
        let mut changed = Vec::new();
        // A gap shorter than the stride has phases with nothing to hide: no pass, nothing changed.
        if !checked.is_empty() {
            let mut hidden = self.tokens.clone();
            for &i in &checked {
                hidden[i] = MASK_ID;
            }
            let vocab = model.vocab_size();
            let logits = model.logits(&hidden, self.time(checked.len()), &checked);
            self.step += 1;
            for (&i, row) in checked.iter().zip(logits.chunks_exact(vocab)) {
                let likeliest = rules::propose(i, row, &DecodeOptions { temperature: 0.0, top_k: 0, top_p: 1.0, ..self.options }, rng);
                if likeliest.token != self.tokens[i] {
                    self.tokens[i] = likeliest.token;
                    self.confidence[i] = likeliest.confidence;
                    changed.push(i);
                }
            }
        }
        self.unchanged_passes = if changed.is_empty() { self.unchanged_passes + 1 } else { 0 };
        self.frame(block, offset, changed.clone(), changed, start.elapsed())
    }

    /// Logits through the denoiser's cache: the cached rows are reused while every queried position
    /// lies inside them, and refreshed (a full pass) when not: then each lane recomputes a window
    /// of `CACHE_WINDOW_SPANS` spans from its leftmost queried position.
    fn logits_cached(&mut self, model: &dyn Denoiser, time: Time, queried: &[usize]) -> Vec<f32> {
        let inside = |rows: &Vec<Range<usize>>| queried.iter().all(|p| rows.iter().any(|r| r.contains(p)));
        let fits = self.cache_rows.as_ref().is_some_and(inside);
        if !fits {
            let n = self.tokens.len();
            let window = if self.options.span > 0 { CACHE_WINDOW_SPANS * self.options.span } else { n };
            let mut rows: Vec<Range<usize>> = Vec::new();
            for region in self.lane_regions() {
                let mine = queried.iter().copied().filter(|p| region.contains(p));
                if let (Some(lo), Some(hi)) = (mine.clone().min(), mine.max()) {
                    let r = lo..(lo + window).max(hi + 1).min(n);
                    // Ranges overlap when a lane's window reaches into the next: merge them.
                    match rows.last_mut() {
                        Some(last) if last.end >= r.start => last.end = last.end.max(r.end),
                        _ => rows.push(r),
                    }
                }
            }
            self.cache_rows = Some(rows);
        }
        let rows = self.cache_rows.clone().expect("set above");
        model.logits_cached(&self.tokens, time, queried, &rows, !fits)
    }
}
