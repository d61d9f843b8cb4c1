//! The reverse process: a stepper that unmasks characters in parallel, one denoising step per call.
//!
//! Each step asks the denoiser for logits at the still-masked positions it may commit, proposes a
//! character (and its confidence) for each, then commits some of them according to the
//! strategy. Committed characters never change again, nor do prompt characters.

use super::cell::{self, Cell, Frame};
use super::decode::{CACHE_WINDOW_SPANS, DecodeOptions, POLISH_STRIDE, Remask, Timestep};
use super::rules::{self, Proposal};
use crate::model::ModelKind;
use crate::vocab::MASK_ID;
use rand::{Rng, RngExt};
use std::collections::BTreeSet;
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
    /// window (or, for rows an earlier call since then recomputed, from that call); `refresh` asks
    /// for a full pass, which becomes the new cache. Approximate: see `Model::forward_rows`.
    /// Without a cache, this is `logits`.
    fn logits_cached(&self, tokens: &[u32], time: Time, positions: &[usize], rows: &[std::ops::Range<usize>], refresh: bool) -> Vec<f32> {
        let _ = (rows, refresh);
        self.logits(tokens, time, positions)
    }

    /// Whether the model knows the length states (`edit_logits` answers).
    fn length_states(&self) -> bool {
        false
    }

    /// Logits at `positions` over the vocabulary and then the two length states
    /// (`edits::STATES`), `[positions.len(), vocab + 2]`, for a model trained with them; `None`
    /// for any other. `logits` leaves the states out.
    fn edit_logits(&self, tokens: &[u32], positions: &[usize]) -> Option<Vec<f32>> {
        let _ = (tokens, positions);
        None
    }
}

/// What a timestep-conditioned model is told at `step` (from 0) of a window of `len` positions
/// with `masked` of them hidden.
fn time_at(timestep: Timestep, masked: usize, len: usize, step: usize) -> Time {
    match timestep {
        Timestep::MaskRate => Time::MaskRate(masked as f32 / len.max(1) as f32),
        Timestep::Step => Time::Step(step),
    }
}

/// Asks a masked model what it believes about every still-masked position of `frame`, as the
/// next step would see them, and keeps each belief in its cell: a look that changes nothing in
/// the run (no draw, no commit), for viewers that show every position's belief at every step.
/// The steps themselves ask only about the positions they may commit (a lane's span), and with
/// the key/value cache only approximately. A causal model's belief is only about the next
/// character, which its steps already ask, so it is not looked at.
pub fn look(frame: &mut Frame, model: &dyn Denoiser, options: &DecodeOptions) {
    let masked: Vec<usize> = (0..frame.cells.len()).filter(|&i| frame.cells[i].is_masked()).collect();
    if masked.is_empty() || model.kind() != ModelKind::Masked {
        return;
    }
    let time = time_at(options.timestep, masked.len(), frame.cells.len(), frame.step);
    let logits = model.logits(&frame.tokens(), time, &masked);
    for (&i, row) in masked.iter().zip(logits.chunks_exact(model.vocab_size())) {
        frame.cells[i].belief = Some(rules::belief(row, options.temperature, frame.step));
    }
}

/// Denoises one window until no position is masked (nor, with `--remask`, awaits its check).
pub struct Sampler {
    cells: Vec<Cell>,
    /// Positions, in order, whose characters the next step checks in their full context (`--remask`).
    provisional: Vec<usize>,
    /// Positions masked again once already: each is final when next committed.
    remasked: BTreeSet<usize>,
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
        Self::resume(cell::given(&tokens), options)
    }

    /// Starts from a partly decoded window (the characters already committed keep their cells).
    pub fn resume(cells: Vec<Cell>, options: DecodeOptions) -> Self {
        Sampler { cells, provisional: Vec::new(), remasked: BTreeSet::new(), cache_rows: None, step: 0, polished: 0, unchanged_passes: 0, options }
    }

    pub fn cells(&self) -> &[Cell] {
        &self.cells
    }

    /// The window's characters, MASK where hidden: what the denoiser reads.
    pub fn tokens(&self) -> Vec<u32> {
        cell::tokens(&self.cells)
    }

    fn masked_positions(&self) -> Vec<usize> {
        (0..self.cells.len()).filter(|&i| self.cells[i].is_masked()).collect()
    }

    pub fn is_done(&self) -> bool {
        // ReMDM-loop keeps revising a fully decoded window until its steps are spent.
        let looping = self.options.remask == Remask::Loop && super::remdm::loop_revises(self.step, self.options.steps);
        !looping && !self.cells.iter().any(Cell::is_masked) && self.provisional.is_empty() && !self.polish_left()
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
        Frame { block, step: self.step, offset, cells: self.cells.clone(), decoded_now, remasked_now, resized_now: Vec::new(), elapsed }
    }

    /// One denoising step. Does nothing (and returns a frame with no decoded positions) when done.
    ///
    /// With `--remask`, the step first checks the characters the previous step committed, now in
    /// the context of everything committed with them: one whose probability there is below
    /// `--remask-below` is masked again (once per position), so a parallel step's inconsistent
    /// guesses are revised instead of kept.
    pub fn step(&mut self, model: &dyn Denoiser, rng: &mut impl Rng, block: usize, offset: usize) -> Frame {
        let start = Instant::now();
        let mut masked = self.masked_positions();
        // Taken: the checks below are this step's, and its commits make the next step's list.
        let provisional = std::mem::take(&mut self.provisional);
        let looping = self.options.remask == Remask::Loop && super::remdm::loop_revises(self.step, self.options.steps);
        if masked.is_empty() && provisional.is_empty() && !looping {
            // Polish passes follow every schedule, ReMDM's too: its odds have nothing left to do here.
            if self.polish_left() {
                return self.polish_step(model, rng, block, offset);
            }
            return self.frame(block, offset, Vec::new(), Vec::new(), Duration::ZERO);
        }
        if self.options.remask.is_remdm() {
            return self.remdm_step(model, rng, block, offset);
        }
        let time = self.time(masked.len());
        let lanes = self.lanes(&masked);
        masked = lanes.concat();
        let vocab = model.vocab_size();
        let queried: Vec<usize> = provisional.iter().chain(&masked).copied().collect();
        let tokens = self.tokens();
        let logits = if self.options.cache { self.logits_cached(model, &tokens, time, &queried) } else { model.logits(&tokens, time, &queried) };
        assert_eq!(logits.len(), queried.len() * vocab, "denoiser returned logits of the wrong size");
        let (checks, guesses) = logits.split_at(provisional.len() * vocab);
        // The step this one becomes (frames count from 1): what the beliefs formed in it say.
        let step = self.step + 1;

        let mut remasked_now = Vec::new();
        for (&i, row) in provisional.iter().zip(checks.chunks_exact(vocab)) {
            let cell = &mut self.cells[i];
            cell.belief = Some(rules::belief(row, self.options.temperature, step));
            if rules::probability(row, cell.token) < self.options.remask_below {
                cell.hide();
                self.remasked.insert(i);
                remasked_now.push(i);
            }
        }

        let proposals = self.propose(&masked, guesses, vocab, step, rng);
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
            self.cells[p.position].write(p.token, p.confidence);
            if self.options.remask == Remask::LowConfidence && !self.remasked.contains(&p.position) {
                self.provisional.push(p.position);
            }
            decoded_now.push(p.position);
        }
        decoded_now.sort_unstable();
        self.provisional.sort_unstable();
        self.frame(block, offset, decoded_now, remasked_now, start.elapsed())
    }
}

impl Sampler {
    /// A proposal for each of `positions` from its row of `logits`; each position's cell keeps
    /// the belief it shows, formed at `step`.
    fn propose(&mut self, positions: &[usize], logits: &[f32], vocab: usize, step: usize, rng: &mut impl Rng) -> Vec<Proposal> {
        let proposals: Vec<Proposal> =
            positions.iter().zip(logits.chunks_exact(vocab)).map(|(&i, row)| rules::propose(i, row, &self.options, rng)).collect();
        for p in &proposals {
            self.cells[p.position].belief = Some(p.belief(step));
        }
        proposals
    }

    /// What a timestep-conditioned model is told this step, with `masked` positions still hidden.
    fn time(&self, masked: usize) -> Time {
        time_at(self.options.timestep, masked, self.cells.len(), self.step)
    }

    /// One step of MDLM's ancestral sampler with one of ReMDM's remasking schedules (see `remdm`):
    /// decoded characters are masked again, and masked positions decoded, each at random with the
    /// step's odds; at least one position is decoded while any is masked.
    fn remdm_step(&mut self, model: &dyn Denoiser, rng: &mut impl Rng, block: usize, offset: usize) -> Frame {
        let start = Instant::now();
        let masked = self.masked_positions();
        let decoded: Vec<usize> = (0..self.cells.len()).filter(|&i| !self.cells[i].prompt && !self.cells[i].is_masked()).collect();
        let confidences: Vec<f32> = decoded.iter().map(|&i| self.cells[i].confidence).collect();
        let odds = super::remdm::odds(self.options.remask, self.options.eta, self.step, self.options.steps, &confidences);
        let time = self.time(masked.len());
        let vocab = model.vocab_size();
        let logits = model.logits(&self.tokens(), time, &masked);
        let proposals = self.propose(&masked, &logits, vocab, self.step + 1, rng);
        let mut chosen: Vec<Proposal> = proposals.iter().copied().filter(|_| rng.random::<f32>() < odds.unmask).collect();
        if chosen.is_empty() {
            chosen.extend(proposals.iter().copied().max_by(|a, b| a.confidence.total_cmp(&b.confidence)));
        }
        let mut remasked_now: Vec<usize> = Vec::new();
        for (&i, &p) in decoded.iter().zip(&odds.remask) {
            if rng.random::<f32>() < p {
                self.cells[i].hide();
                remasked_now.push(i);
            }
        }
        let mut decoded_now: Vec<usize> = Vec::with_capacity(chosen.len());
        for p in chosen {
            self.cells[p.position].write(p.token, p.confidence);
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
        let first = self.cells.iter().position(|c| !c.prompt).unwrap_or(0);
        let end = self.cells.iter().rposition(|c| !c.prompt).map_or(first, |i| i + 1);
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
        let open = |r: &Range<usize>| self.cells[r.clone()].iter().any(Cell::is_masked);
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
        let checked: Vec<usize> = (0..self.cells.len()).filter(|&i| !self.cells[i].prompt && i % POLISH_STRIDE == phase).collect();
        let mut changed = Vec::new();
        // A gap shorter than the stride has phases with nothing to hide: no pass, nothing changed.
        if !checked.is_empty() {
            let mut hidden = self.tokens();
            for &i in &checked {
                hidden[i] = MASK_ID;
            }
            let vocab = model.vocab_size();
            let logits = model.logits(&hidden, self.time(checked.len()), &checked);
            self.step += 1;
            for (&i, row) in checked.iter().zip(logits.chunks_exact(vocab)) {
                let likeliest = rules::propose(i, row, &DecodeOptions { temperature: 0.0, top_k: 0, top_p: 1.0, ..self.options }, rng);
                let cell = &mut self.cells[i];
                cell.belief = Some(likeliest.belief(self.step));
                if likeliest.token != cell.token {
                    cell.write(likeliest.token, likeliest.confidence);
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
    fn logits_cached(&mut self, model: &dyn Denoiser, tokens: &[u32], time: Time, queried: &[usize]) -> Vec<f32> {
        let inside = |rows: &Vec<Range<usize>>| queried.iter().all(|p| rows.iter().any(|r| r.contains(p)));
        let fits = self.cache_rows.as_ref().is_some_and(inside);
        if !fits {
            let n = self.cells.len();
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
        model.logits_cached(tokens, time, queried, &rows, !fits)
    }
}
