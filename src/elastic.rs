//! Elastic gaps: `_*` in a prompt is a gap whose length the model chooses, from 0 to `--max-gap`.
//!
//! How: for every candidate length, the masked-diffusion model fills a gap of that length between
//! the text around it, and the judge (the autoregressive model) scores the result: the
//! log-likelihood of the context before the gap, the fill, and the context after it, with each
//! character of the fill credited `LENGTH_CREDIT` nats. The best score wins. A fill of the wrong
//! length shows at its boundary (a word cut short, or padded), and the text after the gap pays
//! for it. docs/infill.md has what was measured.
//!
//! A model trained with length states (`train --edits`) needs no search: `learned` decodes the
//! gap once, letting it grow and shrink (`grow`).

use crate::diffusion::{Belief, Cell, DEFAULT_OVERLAP, DecodeOptions, Denoiser, Frame, Remask, Strategy, cell};
use std::time::Instant;
use crate::judge::Judge;
use crate::vocab::{MASK_ID, Vocab, VocabError};
use rayon::prelude::*;

pub mod learned;
pub use learned::{GapBounds, GapStep};

/// Marks an elastic gap in a prompt, after the mask character.
pub const ELASTIC_MARK: char = '*';
/// Longest fill an elastic gap may get unless `--max-gap` says otherwise.
pub const DEFAULT_MAX_GAP: usize = 24;
/// The most `--max-gap` may ask for: every length up to it is decoded and judged.
pub const GAP_LIMIT: usize = 128;

/// Refuses a `--max-gap` past `GAP_LIMIT`.
pub fn check_max_gap(max_gap: usize) -> anyhow::Result<()> {
    anyhow::ensure!(max_gap <= GAP_LIMIT, "--max-gap is at most {GAP_LIMIT} characters (every length up to it is tried), got {max_gap}");
    Ok(())
}
/// Nats each character of a fill is credited when lengths are compared. Every character costs
/// nats, so the raw likelihood favours short fills; the credit offsets that. Chosen with
/// `bench infill` (docs/infill.md): on long-3, 0.8 chose lengths within 2 of the truth (median),
/// 1.2 and more chose long fills, and no credit short ones; on long-5, whose fills read better at
/// more lengths, 0.3–0.5 made real words most often (0.8 and more chose too long).
const LENGTH_CREDIT: f64 = 0.4;
/// How every candidate fill is decoded (with the user's seed): the factor rule over a 16-character
/// span at temperature 0.8, never two neighbours at once, remasking below 0.5, no polish. Measured
/// with `bench infill --lines 80` on the shipped model (docs/infill.md): its best candidates are
/// real words 0.84 of the time and their length is within 1 of the truth in the median case; at
/// 0.6 (chosen on the model shipped before) 0.76, at 1.0 0.85 but 2 off; the free-generation
/// defaults (lanes, polish, temperature 1) are chosen for long text, and polish would add six
/// full passes to each of the 25 candidates.
pub const SEARCH: DecodeOptions = DecodeOptions {
    strategy: Strategy::Factor,
    factor: 6.0,
    span: 16,
    lanes: 1,
    temperature: 0.8,
    top_p: 1.0,
    apart: true,
    remask: Remask::LowConfidence,
    remask_below: 0.5,
    polish: 0,
    ..DecodeOptions::DEFAULT
};
/// Characters of context on each side that candidate fills are decoded and judged in.
const CONTEXT_CHARS: usize = 96;
/// Most digits of a start count after an elastic gap (`_*12`).
const START_DIGITS: usize = 2;

/// Whether `text[i]` belongs to an elastic gap's marker rather than the text: the `*` after a
/// mask character, or a digit of the start count after it (as `ElasticPrompt::parse` reads them).
pub fn in_marker(text: &[char], i: usize, mask_char: char) -> bool {
    let star = |j: usize| j >= 1 && text[j] == ELASTIC_MARK && text[j - 1] == mask_char;
    star(i) || (1..=START_DIGITS).any(|k| i >= k && star(i - k) && text[i - k + 1..=i].iter().all(char::is_ascii_digit))
}

/// A prompt split at its elastic gaps: the text before the first, then each gap with the text
/// after it (any of these texts may hold fixed gaps).
#[derive(Debug, Clone, PartialEq)]
pub struct ElasticPrompt {
    pub head: Vec<u32>,
    pub gaps: Vec<ElasticGap>,
    /// The vocabulary the texts' ids are in.
    pub vocab: Vocab,
}

/// One elastic gap and the text after it, up to the next elastic gap.
#[derive(Debug, Clone, PartialEq)]
pub struct ElasticGap {
    /// The `_*N` count: the masks a learned gap starts from (`None`: `learned::START_MASKS`).
    pub start: Option<usize>,
    pub after: Vec<u32>,
}

/// `head` then each of `gaps`, given its length in `lengths`, as masks.
fn masked(head: &[u32], gaps: &[ElasticGap], lengths: &[usize]) -> Vec<u32> {
    let mut out = head.to_vec();
    for (gap, &n) in gaps.iter().zip(lengths) {
        out.extend(std::iter::repeat_n(MASK_ID, n));
        out.extend_from_slice(&gap.after);
    }
    out
}

impl ElasticPrompt {
    /// Parses `prompt`, where `{mask_char}*` is an elastic gap (`{mask_char}*N`: one a learned
    /// gap starts from N masks, N of at most two digits) and other `mask_char`s fixed gaps.
    pub fn parse(prompt: &str, mask_char: char, vocab: &Vocab) -> Result<ElasticPrompt, VocabError> {
        let marker = format!("{mask_char}{ELASTIC_MARK}");
        let mut offset = 0;
        let mut parts = prompt.split(marker.as_str());
        let mut encode = |text: &str, skipped: usize| {
            let ids = vocab.encode_prompt(text, mask_char).map_err(|e| match e {
                VocabError::UnknownChar { ch, pos } => VocabError::UnknownChar { ch, pos: pos + offset + skipped },
                other => other,
            });
            offset += skipped + text.chars().count() + marker.chars().count();
            ids
        };
        let head = encode(parts.next().unwrap_or(""), 0)?;
        let mut gaps = Vec::new();
        for part in parts {
            let digits = part.chars().take(START_DIGITS).take_while(char::is_ascii_digit).count();
            gaps.push(ElasticGap { start: part[..digits].parse().ok(), after: encode(&part[digits..], digits)? });
        }
        Ok(ElasticPrompt { head, gaps, vocab: vocab.clone() })
    }

    /// The prompt with each elastic gap given its length in `lengths`.
    pub fn resolve(&self, lengths: &[usize]) -> Vec<u32> {
        masked(&self.head, &self.gaps, lengths)
    }
}

/// One length tried for a gap, its fill, the judge's log-likelihood (nats) of the text around
/// it, and the score that ranks it (the log-likelihood with the fill's characters credited).
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub length: usize,
    pub fill: String,
    pub log_likelihood: f64,
    pub score: f64,
}

/// Tries every length from 0 to `max_gap` for a gap between `before` and `after` (ids; only
/// their nearest `CONTEXT_CHARS` characters are read, and `after` up to its first gap), best
/// first. Candidates are decoded as `SEARCH` says, from `seed`, several at once: a candidate's
/// window is short, and its forward passes too small to keep both cores busy on their own.
pub fn rank_lengths(model: &(dyn Denoiser + Sync), judge: &Judge, vocab: &Vocab, before: &[u32], after: &[u32], max_gap: usize, seed: u64) -> anyhow::Result<Vec<Candidate>> {
    let before = &before[before.len().saturating_sub(CONTEXT_CHARS)..];
    let after = &after[..after.iter().position(|&t| t == MASK_ID).unwrap_or(after.len()).min(CONTEXT_CHARS)];
    let options = DecodeOptions { seed, ..SEARCH };
    // Each candidate's window, filled: its gap, and any gap in the context before it.
    let windows: Vec<Vec<u32>> = crate::fused::on_own_pool(|| {
        (0..=max_gap)
            .into_par_iter()
            .map(|length| {
                let mut window = before.to_vec();
                window.extend(std::iter::repeat_n(MASK_ID, length));
                window.extend_from_slice(after);
                if !window.contains(&MASK_ID) {
                    return window;
                }
                let mut g = crate::kind::generation(model, &window, window.len(), DEFAULT_OVERLAP, options);
                g.run(model, |_| {});
                g.tokens().to_vec()
            })
            .collect()
    });
    // The judge reads the context before the gap once for every candidate, when it is the same
    // text in all of them (a gap in it is filled by each candidate its own way).
    let shared = if before.contains(&MASK_ID) { 0 } else { before.len() };
    let endings: Vec<String> = windows.iter().map(|w| vocab.decode(&w[shared..], '_')).collect();
    let nats = judge.total_nll_after(&vocab.decode(&before[..shared], '_'), &endings)?;
    let mut out: Vec<Candidate> = windows
        .iter()
        .zip(nats)
        .enumerate()
        .map(|(length, (window, nats))| {
            let fill = vocab.decode(&window[before.len()..before.len() + length], '_');
            Candidate { length, fill, log_likelihood: -nats, score: -nats + LENGTH_CREDIT * length as f64 }
        })
        .collect();
    out.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.length.cmp(&b.length)));
    Ok(out)
}

/// Chooses every elastic gap's length, left to right (each judged with the gaps before it filled
/// as the prompt had them, and the text after it up to the next gap), and returns the prompt with
/// fixed gaps of those lengths, and each gap's ranking.
pub fn resolve(model: &(dyn Denoiser + Sync), judge: &Judge, prompt: &ElasticPrompt, max_gap: usize, seed: u64) -> anyhow::Result<(Vec<u32>, Vec<Vec<Candidate>>)> {
    let mut lengths = Vec::new();
    let mut rankings = Vec::new();
    for (k, gap) in prompt.gaps.iter().enumerate() {
        // The text before this gap, with earlier elastic gaps at their chosen lengths.
        let before = masked(&prompt.head, &prompt.gaps[..k], &lengths);
        let ranking = rank_lengths(model, judge, &prompt.vocab, &before, &gap.after, max_gap, seed)?;
        lengths.push(ranking[0].length);
        rankings.push(ranking);
    }
    Ok((prompt.resolve(&lengths), rankings))
}

/// Fills every elastic gap of `prompt` with a model that knows the length states, left to right
/// (each with the gaps before it filled, and the text after it up to the next one), each gap at
/// most `max_gap` long. `on_frame` sees the whole prompt after every step, as one frame: the
/// gap's cells in place (later elastic gaps as the masks they start from) and what the step
/// wrote and resized. Returns the prompt with the gaps filled (its fixed gaps still masked), and
/// each gap's length. Draws at `learned::TEMPERATURE`, from `seed`.
pub fn grow(model: &dyn Denoiser, prompt: &ElasticPrompt, max_gap: usize, seed: u64, on_frame: &mut dyn FnMut(Frame)) -> anyhow::Result<(Vec<u32>, Vec<usize>)> {
    let options = DecodeOptions { temperature: learned::TEMPERATURE, seed, ..DecodeOptions::DEFAULT };
    let start = |gap: &ElasticGap| gap.start.unwrap_or(learned::START_MASKS).min(max_gap);
    let mut done = prompt.head.clone();
    let (mut lengths, mut steps) = (Vec::new(), 0);
    for (k, gap) in prompt.gaps.iter().enumerate() {
        let bounds = GapBounds { start: start(gap), max_len: max_gap };
        // What follows the gap, as it stands: later gaps at their starting lengths.
        let later = &prompt.gaps[k + 1..];
        let rest = cell::given(&masked(&gap.after, later, &later.iter().map(start).collect::<Vec<_>>()));
        let head = cell::given(&done);
        let mut last = Instant::now();
        let mut show = |s: &GapStep| {
            let at = head.len();
            on_frame(Frame {
                block: 0,
                step: steps + s.step,
                offset: 0,
                // Beliefs count steps as the frames do, over every gap so far.
                cells: head.iter().chain(&s.cells).chain(&rest).map(|&c| Cell { belief: c.belief.map(|b| Belief { step: b.step + steps as u32, ..b }), ..c }).collect(),
                decoded_now: s.written.iter().map(|i| at + i).collect(),
                remasked_now: Vec::new(),
                resized_now: s.resized.iter().map(|&(i, r)| (at + i, r)).collect(),
                elapsed: std::mem::replace(&mut last, Instant::now()).elapsed(),
            });
        };
        let (fill, taken) = learned::fill(model, &done, &gap.after, bounds, &options, &mut show)?;
        steps += taken;
        lengths.push(fill.len());
        done.extend(fill);
        done.extend_from_slice(&gap.after);
    }
    Ok((done, lengths))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elastic_gaps_split_the_prompt_and_fixed_gaps_stay() {
        let vocab = Vocab::from_text("abc de").unwrap();
        let p = ElasticPrompt::parse("ab _* c__d_*", '_', &vocab).unwrap();
        assert_eq!(p.gaps.len(), 2);
        assert_eq!(vocab.decode(&p.gaps[0].after, '_'), " c__d");
        assert_eq!(vocab.decode(&p.resolve(&[3, 0]), '_'), "ab ___ c__d");
        let err = ElasticPrompt::parse("ab_*cz", '_', &vocab).unwrap_err();
        assert_eq!(err, VocabError::UnknownChar { ch: 'z', pos: 5 }, "positions count in the whole prompt");
        assert!(p.gaps.iter().all(|g| g.start.is_none()));
    }

    #[test]
    fn the_marker_is_the_star_and_the_count_after_a_mask() {
        let text: Vec<char> = "a*_*12c_*123".chars().collect();
        let marked: Vec<usize> = (0..text.len()).filter(|&i| in_marker(&text, i, '_')).collect();
        assert_eq!(marked, vec![3, 4, 5, 8, 9, 10]);
    }

    #[test]
    fn a_count_after_an_elastic_gap_is_where_a_learned_gap_starts() {
        let vocab = Vocab::from_text("abc 123").unwrap();
        let p = ElasticPrompt::parse("a_*3 b_*12c_*123", '_', &vocab).unwrap();
        assert_eq!(p.gaps.iter().map(|g| g.start).collect::<Vec<_>>(), vec![Some(3), Some(12), Some(12)], "at most two digits");
        assert_eq!(vocab.decode(&p.gaps[0].after, '_'), " b");
        assert_eq!(vocab.decode(&p.gaps[2].after, '_'), "3", "a third digit is text");
        let err = ElasticPrompt::parse("a_*3 z", '_', &vocab).unwrap_err();
        assert_eq!(err, VocabError::UnknownChar { ch: 'z', pos: 5 });
    }

    /// The shipped model, its judge and its vocabulary.
    fn shipped() -> (crate::kind::ModelDenoiser, Judge, Vocab) {
        let device = burn::prelude::Device::flex();
        let (config, model) = crate::shipped::load(&device).unwrap();
        (crate::kind::ModelDenoiser::new(model, device.clone()), Judge::load(None, &device).unwrap(), config.vocab)
    }

    #[test]
    fn candidates_decoded_side_by_side_rank_as_one_at_a_time() {
        let (model, judge, vocab) = shipped();
        let (before, after) = (vocab.encode("But soft, what light through yonder ").unwrap(), vocab.encode(" breaks?").unwrap());
        let rank = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| rank_lengths(&model, &judge, &vocab, &before, &after, 6, 3).unwrap())
        };
        let (alone, side_by_side) = (rank(1), rank(2));
        assert_eq!(alone.len(), 7);
        for (a, b) in alone.iter().zip(&side_by_side) {
            assert_eq!((a.length, &a.fill), (b.length, &b.fill), "the same fills in the same order");
            assert!((a.score - b.score).abs() < 1e-6 * a.score.abs().max(1.0), "{} vs {}", a.score, b.score);
        }
    }

    #[test]
    fn a_gap_before_an_elastic_one_is_filled_in_every_candidate_before_the_judge_reads_it() {
        let (model, judge, vocab) = shipped();
        // Two elastic gaps, and a fixed one before the second.
        let prompt = ElasticPrompt::parse("To be, or _* to be: that is the q___tion _*.", '_', &vocab).unwrap();
        let (resolved, rankings) = resolve(&model, &judge, &prompt, 4, 3).unwrap();
        assert_eq!(rankings.len(), 2);
        for ranking in &rankings {
            assert_eq!(ranking.len(), 5);
            assert!(ranking.iter().all(|c| !c.fill.contains('_') && c.fill.chars().count() == c.length), "{ranking:?}");
        }
        let text = vocab.decode(&resolved, '_');
        assert!(text.starts_with("To be, or ") && text.ends_with('.'), "{text:?}");
    }
}
