//! The uniform-noise kind (the Python project's `uniform.py`): noise replaces characters with
//! random ones instead of masking them, and the model learns to say, at every position, which
//! character belongs there. Generation starts from random characters and resamples every position
//! each step for `--steps` steps, so characters can change until the end.

use crate::diffusion::masking::{MaskSchedule, draw_rates};
use crate::diffusion::rules;
use crate::diffusion::{Cell, DecodeOptions, Denoiser, Frame, Stepper, Time, cell};
use crate::data::{Batch, Position, Row};
use crate::vocab::MASK_ID;
use rand::rngs::StdRng;
use rand::{Rng, RngExt};
use std::time::{Duration, Instant};

/// A random character id (never MASK) of a vocabulary of `vocab_size` ids.
pub fn random_char(vocab_size: usize, rng: &mut impl Rng) -> u32 {
    rng.random_range(MASK_ID + 1..vocab_size as u32)
}

/// Replaces each character of each window, with its sequence's probability t, by a uniformly
/// random character; the loss is on every position.
pub fn corrupted_batch(windows: &[Vec<u32>], schedule: MaskSchedule, vocab_size: usize, rng: &mut impl Rng) -> Batch {
    let batch = windows.len();
    let seq = windows.first().map_or(0, Vec::len);
    let rates = draw_rates(batch, schedule, rng);
    let mut positions = Vec::with_capacity(batch * seq);
    for (w, &t) in windows.iter().zip(&rates) {
        assert_eq!(w.len(), seq, "all sequences in a batch have the same length");
        for &c in w {
            positions.push(Position::asked(if rng.random::<f32>() < t { random_char(vocab_size, rng) } else { c }, c));
        }
    }
    let rows = rates.iter().map(|&rate| Row { rate, per_char: 1.0 / seq.max(1) as f32 }).collect();
    Batch { batch, seq, positions, rows }
}

/// Decodes one window of a uniform model: the positions to write start as random characters,
/// and every step resamples each of them from the model's prediction, for `--steps` steps.
pub struct UniformSampler {
    /// Every cell this window writes is unmasked from the start (and none is prompt).
    cells: Vec<Cell>,
    /// The positions this window writes (the others are prompt or earlier text).
    writable: Vec<usize>,
    step: usize,
    options: DecodeOptions,
}

impl UniformSampler {
    /// `cells` are masked where a character is to be written.
    pub fn new(mut cells: Vec<Cell>, options: DecodeOptions, vocab_size: usize, rng: &mut impl Rng) -> Self {
        let writable: Vec<usize> = (0..cells.len()).filter(|&i| cells[i].is_masked()).collect();
        for &i in &writable {
            cells[i].write(random_char(vocab_size, rng), 0.0);
        }
        UniformSampler { cells, writable, step: 0, options }
    }

    fn frame(&self, block: usize, offset: usize, changed: Vec<usize>, elapsed: Duration) -> Frame {
        Frame { block, step: self.step, offset, cells: self.cells.clone(), decoded_now: changed, remasked_now: Vec::new(), resized_now: Vec::new(), elapsed }
    }
}

impl Stepper for UniformSampler {
    fn step(&mut self, model: &dyn Denoiser, rng: &mut StdRng, block: usize, offset: usize) -> Frame {
        if self.is_done() {
            return self.frame(block, offset, Vec::new(), Duration::ZERO);
        }
        let start = Instant::now();
        let time = Time::MaskRate(1.0 - self.step as f32 / self.options.steps.max(1) as f32);
        let vocab = model.vocab_size();
        let logits = model.logits(&cell::tokens(&self.cells), time, &self.writable);
        assert_eq!(logits.len(), self.writable.len() * vocab, "denoiser returned logits of the wrong size");
        let mut changed = Vec::new();
        self.step += 1;
        for (&i, row) in self.writable.iter().zip(logits.chunks_exact(vocab)) {
            let p = rules::propose(i, row, &self.options, rng);
            let cell = &mut self.cells[i];
            if p.token != cell.token {
                changed.push(i);
            }
            cell.write(p.token, p.confidence);
            cell.belief = Some(p.belief(self.step));
        }
        self.frame(block, offset, changed, start.elapsed())
    }

    fn is_done(&self) -> bool {
        self.writable.is_empty() || self.step >= self.options.steps.max(1)
    }

    fn cells(&self) -> &[Cell] {
        &self.cells
    }

    fn initial_frame(&self, block: usize, offset: usize) -> Frame {
        self.frame(block, offset, Vec::new(), Duration::ZERO)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn corruption_replaces_about_t_of_each_window_with_random_characters_and_asks_for_all() {
        let mut rng = StdRng::seed_from_u64(5);
        let windows = vec![vec![7u32; 4000]; 8];
        let b = corrupted_batch(&windows, MaskSchedule::Stratified, 66, &mut rng);
        for (row, t) in b.rows.iter().map(|r| r.rate).enumerate() {
            let inputs: Vec<u32> = b.positions[row * 4000..(row + 1) * 4000].iter().map(|p| p.input).collect();
            // A replacement draws 7 again with probability 1/65.
            let changed = inputs.iter().filter(|&&c| c != 7).count() as f32 / 4000.0;
            let expected = t * 64.0 / 65.0;
            assert!((changed - expected).abs() < 0.03, "row {row}: t {t}, changed {changed}");
            assert!(inputs.iter().all(|&c| c != MASK_ID && (c as usize) < 66));
        }
        assert!(b.positions.iter().all(|p| p.target == 7));
        assert!(b.positions.iter().all(|p| p.weight == 1.0), "the loss is on every position");
    }

    /// Always predicts character `3` at every position.
    struct Threes;
    impl Denoiser for Threes {
        fn vocab_size(&self) -> usize {
            8
        }
        fn context(&self) -> usize {
            64
        }
        fn logits(&self, _: &[u32], _: Time, positions: &[usize]) -> Vec<f32> {
            positions.iter().flat_map(|_| (0..8).map(|v| if v == 3 { 10.0 } else { 0.0 })).collect()
        }
    }

    #[test]
    fn the_sampler_starts_from_noise_resamples_only_what_it_writes_for_its_steps() {
        let mut rng = StdRng::seed_from_u64(1);
        let cells = cell::given(&[5, MASK_ID, MASK_ID, 6, MASK_ID]);
        let options = DecodeOptions { steps: 4, temperature: 0.0, ..DecodeOptions::default() };
        let mut s = UniformSampler::new(cells, options, 8, &mut rng);
        let start = s.initial_frame(0, 0);
        assert_eq!(start.masked(), 0, "noise, not masks: {:?}", start.tokens());
        assert_eq!(start.cells.iter().map(|c| c.prompt).collect::<Vec<_>>(), vec![true, false, false, true, false]);
        let mut frames = Vec::new();
        while !s.is_done() {
            frames.push(s.step(&Threes, &mut rng, 0, 0));
        }
        assert_eq!(frames.len(), 4);
        assert_eq!(cell::tokens(s.cells()), vec![5, 3, 3, 6, 3]);
        assert!(s.cells()[1].belief.is_some_and(|b| b.top[0].0 == 3 && b.step == 4), "each step's belief is kept");
        let changed_first: Vec<usize> = [1, 2, 4].into_iter().filter(|&i| start.cells[i].token != 3).collect();
        assert_eq!(frames[0].decoded_now, changed_first, "the first step marks what it changed");
        assert!(frames[1..].iter().all(|f| f.decoded_now.is_empty()), "nothing changes once settled");
    }
}
