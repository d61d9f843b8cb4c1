//! Elastic gaps decoded by the model alone, for a model that knows the length states
//! (`diffusion::edits`): the gap starts as a few masks; each step asks the model about every mask
//! of the gap and commits the one it is surest of (and any character it is very sure of). A mask
//! decoded as *expand* becomes two masks, one decoded as *delete* vanishes, so the gap grows and
//! shrinks until every mask is a character. The text around the gap never moves.
//!
//! The length search of `elastic.rs` decodes every length and asks the judge; this decodes one
//! gap, about as many steps as it has characters plus its edits.

use super::CONTEXT_CHARS;
use crate::diffusion::edits::{Resize, delete_id, expand_id};
use crate::diffusion::{Belief, Cell, DecodeOptions, Denoiser};
use crate::vocab::MASK_ID;
use anyhow::{Result, bail};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// Masks an elastic gap starts from: about a short word. DreamOn starts small and expands;
/// a mask can only split in two, so starting longer than most fills would only delete.
pub const START_MASKS: usize = 4;
/// Besides the surest position, a step commits every character (never an edit) at least this
/// sure: it saves steps on easy letters, and keeps the length decisions one at a time.
const ALSO_ABOVE: f32 = 0.9;
/// The temperature a learned gap is drawn at: below 1, like the search's candidates, so that
/// each step's draw stays near the model's best guess.
pub const TEMPERATURE: f32 = 0.5;

/// The gap after a step: its cells, where a vanished cell is still present (masked) so that a
/// viewer can show it go, and what the step did where.
#[derive(Debug, Clone, PartialEq)]
pub struct GapStep {
    pub step: usize,
    pub cells: Vec<Cell>,
    /// Gap positions (in `cells`) written in this step.
    pub written: Vec<usize>,
    /// Gap positions that split or vanished in this step, left to right.
    pub resized: Vec<(usize, Resize)>,
}

impl GapStep {
    /// The gap as the next step starts from it: vanished cells gone.
    pub fn settled(&self) -> Vec<Cell> {
        self.cells.iter().enumerate().filter(|(i, _)| !self.resized.contains(&(*i, Resize::Vanished))).map(|(_, c)| *c).collect()
    }
}

/// Bounds of one learned gap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GapBounds {
    /// Masks the gap starts from.
    pub start: usize,
    /// Longest the gap may grow: past it, *expand* is not offered.
    pub max_len: usize,
}

impl GapBounds {
    /// Steps after which *expand* and *delete* are no longer offered, so every gap ends:
    /// each character takes at most one step and each split adds one, with room to spare. A
    /// model torn between growing and shrinking may step back and forth until then (82 steps on
    /// one prompt with `--max-gap 24`); forbidding it to turn cost more than it saved, because the
    /// model could no longer undo a first edit (`bench infill`, 100 lines: real words 0.96 with
    /// no rule, 0.84 allowing one turn, 0.74 allowing none).
    fn edit_steps(&self) -> usize {
        3 * self.max_len.max(self.start) + 8
    }
}

/// One choice at one mask: the id drawn (a character, or a length state), its probability,
/// and the distribution it was drawn from as the inspector shows it.
#[derive(Debug, Clone, Copy)]
struct Choice {
    at: usize,
    id: u32,
    p: f32,
    belief: Belief,
}

/// Fills a gap between `before` and `after` (ids; their nearest `CONTEXT_CHARS` are read; the
/// context may hold masks: they stay masked), calling `on_step` after every step. Returns the
/// fill and the steps it took.
pub fn fill(model: &dyn Denoiser, before: &[u32], after: &[u32], bounds: GapBounds, options: &DecodeOptions, on_step: &mut dyn FnMut(&GapStep)) -> Result<(Vec<u32>, usize)> {
    let context = CONTEXT_CHARS.min(model.context().saturating_sub(bounds.max_len) / 2);
    let before = &before[before.len().saturating_sub(context)..];
    let after = &after[..after.len().min(context)];
    let vocab = model.vocab_size();
    let mut rng = StdRng::seed_from_u64(options.seed);
    let mut gap = vec![Cell::MASKED; bounds.start];
    let mut step = 0;
    while gap.iter().any(Cell::is_masked) {
        step += 1;
        let masks: Vec<usize> = (0..gap.len()).filter(|&i| gap[i].is_masked()).collect();
        let window: Vec<u32> = before.iter().copied().chain(gap.iter().map(|c| c.token)).chain(after.iter().copied()).collect();
        let positions: Vec<usize> = masks.iter().map(|&i| before.len() + i).collect();
        let Some(logits) = model.edit_logits(&window, &positions) else {
            bail!("this model has no length states: train one with `train --init DIR --edits`, or let the judge choose the length");
        };
        let edits_allowed = step <= bounds.edit_steps();
        let allow = |id: u32| match id {
            MASK_ID => false,
            id if id == expand_id(vocab) => edits_allowed && gap.len() < bounds.max_len,
            id if id == delete_id(vocab) => edits_allowed,
            _ => true,
        };
        let choices: Vec<Choice> = masks
            .iter()
            .zip(logits.chunks_exact(vocab + crate::diffusion::edits::STATES))
            .map(|(&at, row)| draw(at, row, &allow, options.temperature, step, &mut rng))
            .collect();
        // Every mask keeps what the model believed of it this step, edits included.
        for c in &choices {
            gap[c.at].belief = Some(c.belief);
        }
        let best = choices.iter().max_by(|a, b| a.p.total_cmp(&b.p)).copied().expect("a masked gap has a mask");
        let commit: Vec<Choice> = choices.into_iter().filter(|c| c.at == best.at || (c.p >= ALSO_ABOVE && (c.id as usize) < vocab)).collect();
        let state = apply(&gap, &commit, vocab);
        on_step(&GapStep { step, ..state.clone() });
        gap = state.settled();
    }
    Ok((gap.iter().map(|c| c.token).collect(), step))
}

/// Draws an id for the mask at `at` from `row` (every output of the head) among the `allowed`
/// ids, at `temperature` (greedy at 0), in step `step`.
fn draw(at: usize, row: &[f32], allowed: &dyn Fn(u32) -> bool, temperature: f32, step: usize, rng: &mut StdRng) -> Choice {
    let ids: Vec<u32> = (0..row.len() as u32).filter(|&id| allowed(id)).collect();
    let max = ids.iter().map(|&id| row[id as usize]).fold(f32::NEG_INFINITY, f32::max);
    let t = if temperature > 0.0 { temperature } else { 1.0 };
    let weights: Vec<f32> = ids.iter().map(|&id| ((row[id as usize] - max) / t).exp()).collect();
    let total: f32 = weights.iter().sum();
    let pick = if temperature > 0.0 {
        let mut r = rng.random::<f32>() * total;
        weights.iter().position(|&w| {
            r -= w;
            r < 0.0
        })
    } else {
        None
    }
    .unwrap_or_else(|| weights.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map_or(0, |(i, _)| i));
    let mut ranked: Vec<usize> = (0..ids.len()).collect();
    ranked.sort_unstable_by(|&a, &b| weights[b].total_cmp(&weights[a]));
    let top = std::array::from_fn(|k| ranked.get(k).map_or((MASK_ID, 0.0), |&j| (ids[j], weights[j] / total)));
    let entropy = weights.iter().map(|&w| w / total).filter(|&q| q > 0.0).map(|q| -q * q.ln()).sum();
    Choice { at, id: ids[pick], p: weights[pick] / total, belief: Belief { top, entropy, step: step as u32 } }
}

/// The gap with `commit` applied: characters written, splits as two masks, vanished cells kept
/// (masked) and marked.
fn apply(gap: &[Cell], commit: &[Choice], vocab: usize) -> GapStep {
    let mut cells = Vec::with_capacity(gap.len() + commit.len());
    let (mut written, mut resized) = (Vec::new(), Vec::new());
    for (i, &cell) in gap.iter().enumerate() {
        match commit.iter().find(|c| c.at == i) {
            // Both halves of a split, and a vanishing cell, keep the belief that decided it.
            Some(c) if c.id == expand_id(vocab) => {
                resized.extend([(cells.len(), Resize::Split), (cells.len() + 1, Resize::Split)]);
                cells.extend([cell, cell]);
            }
            Some(c) if c.id == delete_id(vocab) => {
                resized.push((cells.len(), Resize::Vanished));
                cells.push(cell);
            }
            Some(c) => {
                written.push(cells.len());
                let mut cell = cell;
                cell.write(c.id, c.p);
                cells.push(cell);
            }
            None => cells.push(cell),
        }
    }
    GapStep { step: 0, cells, written, resized }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diffusion::Time;

    /// A toy model with length states over ids 0..4 (MASK, a, b, c) + expand (4) + delete (5),
    /// whose every output a test gives as a function of the window and the positions asked.
    struct Toy(fn(&[u32], &[usize]) -> Vec<f32>);

    impl Denoiser for Toy {
        fn vocab_size(&self) -> usize {
            4
        }
        fn context(&self) -> usize {
            64
        }
        fn logits(&self, _: &[u32], _: Time, _: &[usize]) -> Vec<f32> {
            unreachable!("a learned gap asks for every output")
        }
        fn edit_logits(&self, tokens: &[u32], positions: &[usize]) -> Option<Vec<f32>> {
            Some((self.0)(tokens, positions))
        }
    }

    /// Wants the gap to be `abc`. Each mask reads the gap so far: with fewer cells than three it
    /// says expand; with more, the surplus say delete; else the character of its place.
    fn wants_abc(tokens: &[u32], positions: &[usize]) -> Vec<f32> {
        // The gap is what lies between the two 9s that frame it in these tests.
        let start = tokens.iter().position(|&t| t == 9).unwrap() + 1;
        let len = tokens[start..].iter().position(|&t| t == 9).unwrap();
        let mut out = Vec::new();
        for &p in positions {
            let mut row = vec![0.0f32; 6];
            let i = p - start;
            let want = match len.cmp(&3) {
                std::cmp::Ordering::Less if i == 0 => 4,
                std::cmp::Ordering::Greater if i >= 3 => 5,
                _ if i < 3 => 1 + i,
                _ => 5,
            };
            // Its place's character comes next when an edit is not offered.
            if i < 3 {
                row[1 + i] = 5.0;
            }
            // Surer at the left, so one position wins each step.
            row[want] = 10.0 - i as f32;
            out.extend(row);
        }
        out
    }

    fn run(start: usize, max_len: usize) -> (Vec<u32>, Vec<GapStep>) {
        let mut steps = Vec::new();
        let options = DecodeOptions { temperature: 0.0, ..DecodeOptions::DEFAULT };
        let (fill, taken) = fill(&Toy(wants_abc), &[9], &[9], GapBounds { start, max_len }, &options, &mut |s| steps.push(s.clone())).unwrap();
        assert_eq!(taken, steps.len());
        (fill, steps)
    }

    #[test]
    fn a_short_gap_splits_until_it_is_long_enough() {
        let (fill, steps) = run(1, 8);
        // (A character written before a split moves right with it: the toy's places shift.)
        assert_eq!(fill.len(), 3);
        assert!(fill.iter().all(|&t| (1..4).contains(&t)), "{fill:?}");
        assert_eq!(steps[0].resized, vec![(0, Resize::Split), (1, Resize::Split)]);
        assert_eq!(steps[0].cells.len(), 2);
        let split = steps[0].cells[1].belief.expect("a split half keeps the belief that split it");
        assert_eq!((split.top[0].0, split.step), (4, 1), "expand, at step 1");
        assert!(steps[1..].iter().any(|s| s.resized.contains(&(0, Resize::Split))), "still short: the first mask splits again: {steps:?}");
    }

    #[test]
    fn a_long_gap_loses_its_surplus() {
        let (fill, steps) = run(5, 8);
        assert_eq!(fill, vec![1, 2, 3]);
        let vanished: usize = steps.iter().map(|s| s.resized.iter().filter(|e| e.1 == Resize::Vanished).count()).sum();
        assert_eq!(vanished, 2);
        // A vanished cell is drawn in its step and gone from the next.
        let s = steps.iter().find(|s| s.resized.iter().any(|e| e.1 == Resize::Vanished)).unwrap();
        assert_eq!(s.settled().len(), s.cells.len() - 1);
    }

    #[test]
    fn a_gap_never_grows_past_its_bound() {
        let (fill, steps) = run(1, 2);
        assert!(steps.iter().all(|s| s.settled().len() <= 2));
        assert_eq!(fill.len(), 2);
        assert!(fill.iter().all(|&t| (1..4).contains(&t)));
    }

    #[test]
    fn a_torn_model_stops_editing_after_its_edit_steps() {
        // It splits the first mask when the gap's length is even and deletes it when odd.
        let torn = Toy(|tokens, positions| {
            let (len, first) = (tokens.len() - 2, positions[0]);
            let row = |p: usize| {
                // Unsure of the characters elsewhere: one commit a step.
                let mut row = vec![0.0f32; 6];
                row[1] = if p == first { 5.0 } else { 2.0 };
                if p == first {
                    row[if len % 2 == 0 { 4 } else { 5 }] = 10.0;
                }
                row
            };
            positions.iter().flat_map(|&p| row(p)).collect()
        });
        let bounds = GapBounds { start: 2, max_len: 6 };
        let options = DecodeOptions { temperature: 0.0, ..DecodeOptions::DEFAULT };
        let (fill, steps) = fill(&torn, &[9], &[9], bounds, &options, &mut |_| {}).unwrap();
        assert!(steps > bounds.edit_steps() && steps <= bounds.edit_steps() + bounds.max_len, "{steps} steps");
        assert!((2..=3).contains(&fill.len()) && fill.iter().all(|&t| t == 1), "{fill:?}");
    }

    #[test]
    fn a_model_without_length_states_is_refused_with_a_way_out() {
        struct Plain;
        impl Denoiser for Plain {
            fn vocab_size(&self) -> usize {
                4
            }
            fn context(&self) -> usize {
                64
            }
            fn logits(&self, _: &[u32], _: Time, p: &[usize]) -> Vec<f32> {
                vec![0.0; 4 * p.len()]
            }
        }
        let err = fill(&Plain, &[1], &[2], GapBounds { start: 2, max_len: 4 }, &DecodeOptions::DEFAULT, &mut |_| {}).unwrap_err();
        assert!(err.to_string().contains("--edits"), "{err}");
    }
}
