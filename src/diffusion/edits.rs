//! Length states: a masked model that also predicts, at a masked position, *expand* (this mask
//! stands for two or more characters: it becomes two masks) or *delete* (it stands for none: it
//! vanishes), so that a gap finds its own length while it is decoded (DreamOn, arXiv 2602.01326).
//! The architecture does not change: the head gets two more outputs after the vocabulary's ids.
//! Their inputs never occur (the forward process writes MASK for both).
//!
//! Training (`training_batch`) turns some rows of each batch into gap rows, as DreamOn's data
//! does: a span is cut from the text, some of its characters masked, runs of masks merged into
//! one mask labelled *expand*, and masks labelled *delete* appended to it. The other rows are the
//! plain masked-diffusion objective, which keeps the model the writer it was.

use crate::data::{Batch, Position};
use crate::model::Model;
use crate::vocab::MASK_ID;
use burn::module::Param;
use burn::prelude::*;
use rand::{Rng, RngExt};

/// The states after the vocabulary: expand, then delete.
pub use crate::model::LENGTH_STATES as STATES;

/// What a length state did to a gap, as a viewer shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resize {
    /// A mask became two: each half is marked.
    Split,
    /// A mask vanished: drawn, masked, in the frame of its step and gone from the next.
    Vanished,
}

/// The id of *expand* in a model whose vocabulary (MASK and characters) has `vocab_ids` ids.
pub fn expand_id(vocab_ids: usize) -> u32 {
    vocab_ids as u32
}

/// The id of *delete*.
pub fn delete_id(vocab_ids: usize) -> u32 {
    vocab_ids as u32 + 1
}

/// How gap rows are made. The rates are DreamOn's where its setting carries over (pads up to a
/// fixed count, merge probability drawn per row so the model sees every degree of compression)
/// and chosen for short words otherwise: `bench infill` removes words of 3–12 letters. These
/// taught the shipped model. Two other rows, made so that a gap's mask count would say less of
/// its length (merges drawn uniformly; or the count drawn apart from the length, reached by
/// merges or pads), did not choose lengths better (docs/infill.md, "Length states").
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GapRows {
    /// Share of a batch's rows made gap rows; the rest keep the plain objective.
    pub share: f64,
    /// Longest span cut.
    pub max_span: usize,
    /// Most *delete* masks appended to a span.
    pub max_pads: usize,
    /// Adjacent masks merge with a probability drawn from U(0, max_merge) per row.
    pub max_merge: f32,
    /// Chance of a second merging pass, which merges merged masks again (a mask then stands
    /// for up to four characters, as a gap started from few masks needs).
    pub second_pass: f64,
}

pub const GAP_ROWS: GapRows = GapRows { share: 0.5, max_span: 16, max_pads: 8, max_merge: 0.9, second_pass: 0.5 };

impl GapRows {
    /// Characters a training window needs beyond the row's length: the span cut from it may
    /// shrink to a quarter.
    pub fn slack(&self) -> usize {
        self.max_span
    }

    /// Cells a gap may take: its longest span with every *delete* mask after it.
    fn widest(&self) -> usize {
        self.max_span + self.max_pads
    }

    /// Whether rows of `seq_len` leave room for a gap with context on both sides.
    fn fits(&self, seq_len: usize) -> bool {
        seq_len >= self.widest() + 2 * MIN_CONTEXT
    }
}

/// Characters of text a gap row keeps on each side of its gap, at least.
const MIN_CONTEXT: usize = 8;

/// One cell of a gap row before it is laid out: what the model reads, what it should predict,
/// and whether it is asked to.
#[derive(Debug, Clone, Copy, PartialEq)]
struct GapCell {
    input: u32,
    target: u32,
    asked: bool,
}

/// A training batch for a model with length states: rows of `windows` (each `seq_len +
/// GAP_ROWS.slack()` long; a plain row reads its first `seq_len`) with the plain masking at
/// `rates`, and a `GAP_ROWS.share` of them remade as gap rows. `is_letter` tells which ids are
/// letters: half the spans cut are whole words.
pub fn training_batch(windows: &[Vec<u32>], seq_len: usize, rates: &[f32], vocab_ids: usize, is_letter: &dyn Fn(u32) -> bool, rng: &mut impl Rng) -> Batch {
    let plain: Vec<Vec<u32>> = windows.iter().map(|w| w[..seq_len].to_vec()).collect();
    let mut batch = crate::diffusion::masking::mask_batch(&plain, rates, rng);
    if !GAP_ROWS.fits(seq_len) {
        return batch;
    }
    for (row, window) in windows.iter().enumerate() {
        if !rng.random_bool(GAP_ROWS.share) {
            continue;
        }
        let cells = gap_row(window, seq_len, vocab_ids, is_letter, rng);
        for (i, c) in (row * seq_len..(row + 1) * seq_len).zip(&cells) {
            batch.positions[i] = Position { input: c.input, target: c.target, weight: if c.asked { 1.0 } else { 0.0 } };
        }
        // A gap row is not a draw from the forward process: it has no place in the ELBO.
        batch.rows[row].per_char = 0.0;
    }
    batch
}

/// A window with a span cut out and laid out as a gap, `seq_len` cells long.
fn gap_row(window: &[u32], seq_len: usize, vocab_ids: usize, is_letter: &dyn Fn(u32) -> bool, rng: &mut impl Rng) -> Vec<GapCell> {
    let start = rng.random_range(MIN_CONTEXT..=seq_len - GAP_ROWS.widest() - MIN_CONTEXT);
    let span = if rng.random_bool(0.5) {
        word_at(window, start, is_letter)
    } else {
        start..start + rng.random_range(0..=GAP_ROWS.max_span)
    };
    let known = |t: u32| GapCell { input: t, target: t, asked: false };
    let mut cells: Vec<GapCell> = window[..span.start].iter().map(|&t| known(t)).collect();
    cells.extend(gap_cells(&window[span.clone()], vocab_ids, rng));
    cells.extend(window[span.end..].iter().map(|&t| known(t)));
    cells.truncate(seq_len);
    cells
}

/// The whole word around `at` (letters only, at most `max_span`), or an empty span where `at`
/// is not in a word.
fn word_at(window: &[u32], at: usize, is_letter: &dyn Fn(u32) -> bool) -> std::ops::Range<usize> {
    if !is_letter(window[at]) {
        return at..at;
    }
    let mut start = at;
    while start > 0 && is_letter(window[start - 1]) && at - start < GAP_ROWS.max_span {
        start -= 1;
    }
    let mut end = at;
    while end < window.len() && is_letter(window[end]) && end - start < GAP_ROWS.max_span {
        end += 1;
    }
    start..end
}

/// A span's characters as gap cells: each masked with a rate drawn for the row, runs of masks
/// merged into *expand*, and *delete* masks after them. At least one cell is asked about.
fn gap_cells(span: &[u32], vocab_ids: usize, rng: &mut impl Rng) -> Vec<GapCell> {
    let rate: f32 = rng.random();
    let mut cells: Vec<GapCell> = span
        .iter()
        .map(|&t| {
            let hide = rng.random::<f32>() < rate;
            GapCell { input: if hide { MASK_ID } else { t }, target: t, asked: hide }
        })
        .collect();
    let merge = rng.random::<f32>() * GAP_ROWS.max_merge;
    let passes = if rng.random_bool(GAP_ROWS.second_pass) { 2 } else { 1 };
    for _ in 0..passes {
        cells = merge_pass(cells, merge, expand_id(vocab_ids), rng);
    }
    let pads = rng.random_range(0..=GAP_ROWS.max_pads);
    let delete = GapCell { input: MASK_ID, target: delete_id(vocab_ids), asked: true };
    cells.extend(std::iter::repeat_n(delete, pads));
    if !cells.iter().any(|c| c.asked) {
        cells.push(delete);
    }
    cells
}

/// One left-to-right pass: each pair of adjacent masks becomes one mask labelled *expand* with
/// probability `p`.
fn merge_pass(cells: Vec<GapCell>, p: f32, expand: u32, rng: &mut impl Rng) -> Vec<GapCell> {
    let mut out = Vec::with_capacity(cells.len());
    let mut i = 0;
    while i < cells.len() {
        if i + 1 < cells.len() && cells[i].asked && cells[i + 1].asked && rng.random::<f32>() < p {
            out.push(GapCell { input: MASK_ID, target: expand, asked: true });
            i += 2;
        } else {
            out.push(cells[i]);
            i += 1;
        }
    }
    out
}

/// `model` with the two length states added to its head (zero weights: at first every state's
/// logit is 0, a small probability beside the characters') and to its embedding (never read).
pub fn add_states(mut model: Model) -> Model {
    assert!(!model.config.edits, "the model already has length states");
    let emb = model.token_emb.weight.val();
    let head = model.lm_head.weight.val();
    let d = emb.dims()[1];
    let device = emb.device();
    // Detached: under autodiff, a parameter must be a leaf of the graph.
    model.token_emb.weight = Param::from_tensor(Tensor::cat(vec![emb, Tensor::zeros([STATES, d], &device)], 0).detach());
    model.lm_head.weight = Param::from_tensor(Tensor::cat(vec![head, Tensor::zeros([d, STATES], &device)], 1).detach());
    model.config.vocab_size += STATES;
    model.config.edits = true;
    model
}

/// `model` without its length states: the masked model that the Python project can load.
pub fn remove_states(mut model: Model) -> Model {
    assert!(model.config.edits, "the model has no length states");
    let ids = model.config.vocab_ids();
    model.token_emb.weight = Param::from_tensor(model.token_emb.weight.val().narrow(0, 0, ids));
    model.lm_head.weight = Param::from_tensor(model.lm_head.weight.val().narrow(1, 0, ids));
    (model.config.vocab_size, model.config.edits) = (ids, false);
    model
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    const V: usize = 10;
    const LETTER: fn(u32) -> bool = |t| (1..=5).contains(&t);

    #[test]
    fn a_merge_pass_labels_each_merged_pair_expand_and_keeps_the_rest() {
        let mut rng = StdRng::seed_from_u64(0);
        let m = |t| GapCell { input: MASK_ID, target: t, asked: true };
        let k = |t| GapCell { input: t, target: t, asked: false };
        let cells = vec![m(1), m(2), k(3), m(4), m(5), m(6)];
        let all = merge_pass(cells.clone(), 1.0, expand_id(V), &mut rng);
        assert_eq!(all, vec![m(expand_id(V)), k(3), m(expand_id(V)), m(6)]);
        assert_eq!(merge_pass(cells.clone(), 0.0, expand_id(V), &mut rng), cells);
        // A second pass merges merged masks again: four characters under one mask.
        assert_eq!(merge_pass(vec![m(expand_id(V)), m(expand_id(V))], 1.0, expand_id(V), &mut rng), vec![m(expand_id(V))]);
    }

    #[test]
    fn gap_rows_come_at_their_rate_keep_their_length_and_ask_only_inside_the_gap() {
        let mut rng = StdRng::seed_from_u64(7);
        let seq = 96;
        let windows: Vec<Vec<u32>> = (0..400).map(|_| (0..seq + GAP_ROWS.slack()).map(|_| rng.random_range(1..V as u32)).collect()).collect();
        let rates = vec![0.5; windows.len()];
        let b = training_batch(&windows, seq, &rates, V, &LETTER, &mut rng);
        assert_eq!(b.positions.len(), windows.len() * seq);
        let (inputs, targets): (Vec<u32>, Vec<u32>) = b.positions.iter().map(|p| (p.input, p.target)).unzip();
        let (mut gap_rows, mut expands, mut deletes, mut asked) = (0, 0, 0, 0);
        for (row, window) in windows.iter().enumerate() {
            let at = row * seq..(row + 1) * seq;
            if b.rows[row].per_char != 0.0 {
                assert_eq!(targets[at.clone()], window[..seq], "a plain row is its window");
                continue;
            }
            gap_rows += 1;
            let asked_at: Vec<usize> = at.clone().filter(|&i| b.positions[i].weight > 0.0).collect();
            assert!(!asked_at.is_empty());
            // The asked cells are one run: the gap, with known characters inside it only.
            let (first, last) = (asked_at[0], *asked_at.last().unwrap());
            assert!(last - first < GAP_ROWS.widest());
            for i in asked_at {
                assert_eq!(inputs[i], MASK_ID);
                expands += (targets[i] == expand_id(V)) as usize;
                deletes += (targets[i] == delete_id(V)) as usize;
                asked += 1;
            }
            // The text before the gap is the window's.
            assert_eq!(targets[at.start..first], window[..first - at.start]);
        }
        let share = gap_rows as f64 / windows.len() as f64;
        assert!((share - GAP_ROWS.share).abs() < 0.08, "gap rows {share}");
        // Pads average max_pads / 2 a row; merges come from every degree of compression.
        assert!(deletes as f64 / gap_rows as f64 > 0.4 * GAP_ROWS.max_pads as f64, "{deletes} deletes in {gap_rows} rows");
        assert!(expands > gap_rows / 4 && expands < asked / 2, "{expands} expands of {asked}");
    }

    #[test]
    fn a_word_span_covers_the_whole_word() {
        let w = [7, 1, 2, 3, 8, 4, 5];
        assert_eq!(word_at(&w, 2, &LETTER), 1..4);
        assert_eq!(word_at(&w, 4, &LETTER), 4..4);
        assert_eq!(word_at(&w, 6, &LETTER), 5..7);
    }

    #[test]
    fn added_states_leave_the_characters_logits_as_they_were() {
        let device = Device::flex();
        let config = crate::model::Preset::Tiny.config(V);
        let model = config.init(&device);
        let tokens = Tensor::<2, Int>::from_data(TensorData::new(vec![1i64, 0, 3, 0], [1, 4]), &device);
        let before = model.forward(tokens.clone(), None).into_data().try_to_vec::<f32>().unwrap();
        let grown = add_states(model);
        assert!(grown.config.edits && grown.config.vocab_ids() == V);
        let after = grown.forward(tokens, None).into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(after.len(), 4 * (V + STATES));
        for (row, old) in after.chunks(V + STATES).zip(before.chunks(V)) {
            assert_eq!(&row[..V], old);
            assert_eq!(&row[V..], &[0.0, 0.0]);
        }
        let back = remove_states(grown);
        assert!(!back.config.edits && back.config.vocab_size == V);
        let tokens = Tensor::<2, Int>::from_data(TensorData::new(vec![1i64, 0, 3, 0], [1, 4]), &device);
        assert_eq!(back.forward(tokens, None).into_data().try_to_vec::<f32>().unwrap(), before);
    }
}
