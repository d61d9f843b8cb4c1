//! One position of the output as every stepper, viewer, recording and trace sees it: its
//! character, whether the user gave it, how sure the model was when it wrote it, and what the model
//! believed about it the last time it looked.

use super::edits::Resize;
use crate::vocab::MASK_ID;
use std::time::Duration;

/// How many of a position's likeliest characters a `Belief` keeps: what the inspector lists.
pub const TOP_CANDIDATES: usize = 5;

/// What the model believed about one position at one step: its likeliest characters with their
/// probabilities, and the entropy of the whole distribution. Both are read off the distribution the
/// step drew from (temperature applied, before any top-k/top-p cut, the mask id in the softmax
/// but never a candidate), so the top probability of a character drawn greedily is its confidence.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Belief {
    /// The likeliest characters first, with their probabilities (which sum to at most 1).
    /// A vocabulary of fewer than `TOP_CANDIDATES` characters pads with probability 0.
    pub top: [(u32, f32); TOP_CANDIDATES],
    /// In nats.
    pub entropy: f32,
    /// The step (as `Frame::step` counts, from 1) at which the model formed it.
    pub step: u32,
}

impl Belief {
    /// The probability of the likeliest character.
    pub fn top_probability(&self) -> f32 {
        self.top[0].1
    }
}

/// One character of the output: what it is (MASK while hidden), whether the user gave it, how sure
/// the model was when it wrote it (1.0 for the prompt, 0.0 while masked), and the model's latest
/// belief about the position (none for the prompt, nor before the model first looks at it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cell {
    pub token: u32,
    pub confidence: f32,
    pub prompt: bool,
    pub belief: Option<Belief>,
}

impl Cell {
    /// A character of the prompt, or MASK where the prompt leaves a gap.
    pub fn given(token: u32) -> Cell {
        let prompt = token != MASK_ID;
        Cell { token, confidence: if prompt { 1.0 } else { 0.0 }, prompt, belief: None }
    }

    /// A position still to be written.
    pub const MASKED: Cell = Cell { token: MASK_ID, confidence: 0.0, prompt: false, belief: None };

    pub fn is_masked(&self) -> bool {
        self.token == MASK_ID
    }

    /// Writes `token` with `confidence` (the model's choice).
    pub fn write(&mut self, token: u32, confidence: f32) {
        self.token = token;
        self.confidence = confidence;
    }

    /// Takes the character back: the position is masked again.
    pub fn hide(&mut self) {
        self.write(MASK_ID, 0.0);
    }
}

/// The cells of a prompt: MASK at its gaps.
pub fn given(tokens: &[u32]) -> Vec<Cell> {
    tokens.iter().map(|&t| Cell::given(t)).collect()
}

/// The characters of `cells`, MASK where hidden.
pub fn tokens(cells: &[Cell]) -> Vec<u32> {
    cells.iter().map(|c| c.token).collect()
}

/// Writes a window's `cells`, which start at position `offset` of the whole output, into `output`,
/// growing it (with masked cells) to reach them: the one way a window's state joins the text
/// around it.
pub fn merge(output: &mut Vec<Cell>, offset: usize, cells: &[Cell]) {
    let end = offset + cells.len();
    if output.len() < end {
        output.resize(end, Cell::MASKED);
    }
    output[offset..end].copy_from_slice(cells);
}

/// Everything a viewer needs to draw one step of one window, and a test needs to check it.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// Which block of a long generation (0-based).
    pub block: usize,
    /// Step within the block, from 1.
    pub step: usize,
    /// Position of the window's first character in the whole output.
    pub offset: usize,
    pub cells: Vec<Cell>,
    /// Positions (within the window) committed in this step.
    pub decoded_now: Vec<usize>,
    /// Positions whose character this step took back (masked again), with `--remask`.
    pub remasked_now: Vec<usize>,
    /// Positions where a gap that finds its own length changed it in this step
    /// (`diffusion::edits`), left to right.
    pub resized_now: Vec<(usize, Resize)>,
    pub elapsed: Duration,
}

impl Frame {
    /// The window's characters, MASK where hidden.
    pub fn tokens(&self) -> Vec<u32> {
        tokens(&self.cells)
    }

    /// How many positions of the window are still masked.
    pub fn masked(&self) -> usize {
        self.cells.iter().filter(|c| c.is_masked()).count()
    }

    /// What the step did to a gap's length, for a status line: " · 1 split · 2 gone", or nothing.
    pub fn resizes(&self) -> String {
        let count = |r: Resize| self.resized_now.iter().filter(|x| x.1 == r).count();
        // A split marks both its halves.
        let (split, gone) = (count(Resize::Split) / 2, count(Resize::Vanished));
        [(split, "split"), (gone, "gone")].iter().filter(|(n, _)| *n > 0).map(|(n, what)| format!(" · {n} {what}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cell_stays_within_the_64_bytes_the_readme_bounds_frames_by() {
        assert!(std::mem::size_of::<Cell>() <= 64, "{} bytes", std::mem::size_of::<Cell>());
    }

    #[test]
    fn a_window_merges_into_the_output_at_its_offset_and_grows_it() {
        let mut output = given(&[5, 6, 7]);
        let window = given(&[8, MASK_ID, 9]);
        merge(&mut output, 2, &window);
        assert_eq!(tokens(&output), vec![5, 6, 8, MASK_ID, 9]);
        assert!(output[2].prompt && !output[3].prompt && output[3].is_masked());
        merge(&mut output, 0, &given(&[1]));
        assert_eq!(tokens(&output), vec![1, 6, 8, MASK_ID, 9], "a window inside the output leaves its length alone");
    }
}
