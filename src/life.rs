//! The game of life on a grid of text (the Python project's `animations/game-of-life.py`): each
//! generation applies Conway's rules to a grid of live and dead cells laid over the text, masks the
//! live cells and lets the model write them again from what surrounds them.

use crate::diffusion::{Cell, DecodeOptions, Denoiser, Sampler, cell};
use crate::vocab::MASK_ID;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// The grid's size (columns, rows) unless `life --width --height` says otherwise.
pub const DEFAULT_SIZE: (usize, usize) = (32, 32);

/// Conway's rules on a toroidal grid of `width` columns: a live cell with two or three live
/// neighbours lives on, a dead cell with exactly three comes alive, every other cell is dead.
pub fn conway(alive: &[bool], width: usize) -> Vec<bool> {
    let height = alive.len() / width.max(1);
    (0..alive.len())
        .map(|i| {
            let (r, c) = (i / width, i % width);
            let mut n = 0;
            for dr in [height - 1, 0, 1] {
                for dc in [width - 1, 0, 1] {
                    if (dr, dc) != (0, 0) && alive[((r + dr) % height) * width + (c + dc) % width] {
                        n += 1;
                    }
                }
            }
            n == 3 || (n == 2 && alive[i])
        })
        .collect()
}

/// One square of the grid: its character (the seed text as given, then as the model last wrote
/// it) and whether the game has it alive.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Square {
    pub cell: Cell,
    pub alive: bool,
}

/// A grid of text with a live/dead cell under each character.
#[derive(Debug, Clone, PartialEq)]
pub struct Life {
    pub width: usize,
    /// Row by row.
    pub squares: Vec<Square>,
    pub generation: usize,
    /// Each generation's decoding draws from this seed, the generation and the window.
    seed: u64,
}

impl Life {
    /// A grid over `text` (at least `width` × `height` ids, row by row), its cells alive by the
    /// parity of each character id plus a random offset (as the Python project seeds it).
    pub fn new(text: &[u32], width: usize, height: usize, seed: u64) -> Life {
        let n = width * height;
        assert!(text.len() >= n && n > 0, "the seed text must fill the grid");
        let mut rng = StdRng::seed_from_u64(seed);
        let squares = cell::given(&text[..n]).into_iter().map(|cell| Square { cell, alive: (cell.token + rng.random_range(0..256u32)) % 2 == 1 }).collect();
        Life { width, squares, generation: 0, seed }
    }

    pub fn height(&self) -> usize {
        self.squares.len() / self.width
    }

    pub fn tokens(&self) -> Vec<u32> {
        self.squares.iter().map(|s| s.cell.token).collect()
    }

    pub fn live(&self) -> usize {
        self.squares.iter().filter(|s| s.alive).count()
    }

    /// The next generation's live cells, masked: what the model is about to rewrite.
    pub fn next_masked(&self) -> (Vec<bool>, Vec<u32>) {
        let alive = conway(&self.squares.iter().map(|s| s.alive).collect::<Vec<_>>(), self.width);
        let masked = self.squares.iter().zip(&alive).map(|(s, &a)| if a { MASK_ID } else { s.cell.token }).collect();
        (alive, masked)
    }

    /// One generation: Conway's rules, then the model writes every live cell again, window by
    /// window of its context (each window reads the characters around its cells).
    pub fn step(&mut self, model: &dyn Denoiser, options: DecodeOptions) {
        let (alive, mut tokens) = self.next_masked();
        for chunk in (0..tokens.len()).step_by(model.context().max(1)) {
            let end = (chunk + model.context()).min(tokens.len());
            if !tokens[chunk..end].contains(&MASK_ID) {
                continue;
            }
            // Everything but the live cells reads as prompt: only they are written (and polished).
            let mut sampler = Sampler::new(tokens[chunk..end].to_vec(), options);
            let mut rng = StdRng::seed_from_u64(self.seed ^ ((self.generation as u64) << 32) ^ chunk as u64);
            while !sampler.is_done() {
                sampler.step(model, &mut rng, 0, chunk);
            }
            for (i, written) in sampler.cells().iter().enumerate().filter(|&(i, _)| alive[chunk + i]) {
                self.squares[chunk + i].cell = Cell { prompt: false, ..*written };
                tokens[chunk + i] = written.token;
            }
        }
        for (square, alive) in self.squares.iter_mut().zip(alive) {
            square.alive = alive;
        }
        self.generation += 1;
    }
}

/// The masked-diffusion model the game runs on: the one at `checkpoint`, or the shipped one when
/// none is given or the checkpoint is of another kind (the game masks and rewrites cells).
pub fn load_model(checkpoint: Option<&std::path::Path>, device: &burn::prelude::Device) -> anyhow::Result<(crate::kind::ModelDenoiser, crate::vocab::Vocab)> {
    let (config, model) = crate::shipped::load_or(checkpoint, &crate::shipped::DIFFUSION, device)
        .ok()
        .filter(|(c, _, _)| c.model.kind == crate::kind::ModelKind::Masked)
        .map_or_else(|| crate::shipped::DIFFUSION.load(device), |(c, m, _)| Ok((c, m)))?;
    Ok((crate::kind::ModelDenoiser::new(model, device.clone()), config.vocab))
}

/// Seed text for a grid: the model's own writing, `n` characters from an empty prompt.
pub fn seed_text(model: &dyn Denoiser, n: usize, options: DecodeOptions) -> Vec<u32> {
    let mut generation = crate::kind::generation(model, &[], n, crate::diffusion::DEFAULT_OVERLAP, options);
    generation.run(model, |_| {});
    generation.tokens()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(rows: &[&str]) -> (Vec<bool>, usize) {
        (rows.iter().flat_map(|r| r.chars().map(|c| c == '#')).collect(), rows[0].len())
    }

    #[test]
    fn a_blinker_turns_and_a_block_stays() {
        let (blinker, w) = grid(&[".....", "..#..", "..#..", "..#..", "....."]);
        assert_eq!(conway(&blinker, w), grid(&[".....", ".....", ".###.", ".....", "....."]).0);
        let (block, w) = grid(&["....", ".##.", ".##.", "...."]);
        assert_eq!(conway(&block, w), block);
    }

    #[test]
    fn neighbours_wrap_around_the_edges() {
        // Three cells in the top row's corners and the bottom-left corner: all neighbours of (0, 0)
        // on a torus, which therefore comes alive... and so do the others' shared neighbours.
        let (corners, w) = grid(&["#...#", ".....", ".....", ".....", "#...."]);
        let next = conway(&corners, w);
        // Hand-counted: (4, 4) touches (0, 0), (0, 4) and (4, 0) across the edges: three, born.
        assert!(next[4 * 5 + 4], "{next:?}");
        // (0, 0) has two live neighbours (0, 4) and (4, 0): it survives.
        assert!(next[0]);
        // (2, 2), in the middle, has none.
        assert!(!next[2 * 5 + 2]);
    }

    /// Writes `7` wherever asked, with confidence 0.9.
    struct Sevens;
    impl Denoiser for Sevens {
        fn vocab_size(&self) -> usize {
            10
        }
        fn context(&self) -> usize {
            6
        }
        fn logits(&self, _: &[u32], _: crate::diffusion::Time, positions: &[usize]) -> Vec<f32> {
            positions.iter().flat_map(|_| (0..10).map(|v| if v == 7 { 5.0 } else { 0.0 })).collect()
        }
    }

    #[test]
    fn a_generation_rewrites_exactly_the_live_cells_window_by_window() {
        let text: Vec<u32> = (0..25).map(|i| 1 + i % 5).collect();
        let mut life = Life::new(&text, 5, 5, 3);
        let (alive, masked) = life.next_masked();
        assert_eq!(masked.iter().filter(|&&t| t == MASK_ID).count(), alive.iter().filter(|&&a| a).count());
        let before = life.tokens();
        life.step(&Sevens, DecodeOptions { temperature: 0.0, ..DecodeOptions::default() });
        for i in 0..25 {
            assert_eq!(life.squares[i].cell.token, if alive[i] { 7 } else { before[i] }, "cell {i}");
            assert_eq!(life.squares[i].cell.prompt, !alive[i], "cell {i}: the seed text stays given until written");
        }
        assert_eq!((life.squares.iter().map(|s| s.alive).collect::<Vec<_>>(), life.generation), (alive, 1));
    }
}
