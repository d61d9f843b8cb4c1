//! `tiny-diffusion bench infill`: held-out lines with one word taken out, filled through gaps of
//! the wrong length and of the right one, against an elastic gap whose length the judge's search
//! chooses, and (for a model with length states) one that the model grows and shrinks itself.

use crate::diffusion::{DEFAULT_OVERLAP, DecodeOptions, Denoiser};
use crate::elastic::{DEFAULT_MAX_GAP, GapBounds, learned, rank_lengths};
use crate::eval::words;
use crate::judge::Judge;
use crate::vocab::{MASK_ID, Vocab};
use anyhow::Result;
use serde::Serialize;
use std::collections::HashSet;
use std::time::Instant;

/// The most held-out lines `bench infill --lines` takes.
pub const MAX_LINES: usize = 1000;

/// Gap lengths tried, as multiples of the removed word's length.
pub const FACTORS: [f64; 5] = [0.5, 0.75, 1.0, 1.5, 2.0];

/// A held-out line pair with one word taken out.
#[derive(Debug, Clone)]
pub struct Case {
    pub before: Vec<u32>,
    pub word: String,
    pub after: Vec<u32>,
}

/// `n` cases from the validation text: two lines each, the removed word the one of at least three
/// letters nearest the middle of the second line (spread evenly through the text, so the set is
/// fixed).
pub fn cases(val: &[u32], vocab: &Vocab, n: usize) -> Vec<Case> {
    let text = vocab.decode(val, '_');
    let lines: Vec<&str> = text.lines().collect();
    let pairs: Vec<(usize, &str, &str)> = lines
        .windows(2)
        .enumerate()
        .filter(|(_, w)| w[0].len() > 10 && w[1].len() > 20)
        .map(|(i, w)| (i, w[0], w[1]))
        .collect();
    let step = (pairs.len() / n.max(1)).max(1);
    pairs
        .iter()
        .step_by(step)
        .take(n)
        .filter_map(|&(_, first, second)| {
            let (start, word) = middle_word(second)?;
            let before = format!("{first}\n{}", &second[..start]);
            let after = &second[start + word.len()..];
            Some(Case { before: vocab.encode(&before).ok()?, word: word.to_string(), after: vocab.encode(after).ok()? })
        })
        .collect()
}

/// The run of ≥ 3 ASCII letters nearest the middle of `line`: its byte offset and text.
fn middle_word(line: &str) -> Option<(usize, &str)> {
    let middle = line.len() / 2;
    let mut best: Option<(usize, &str)> = None;
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_alphabetic() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
                i += 1;
            }
            let w = &line[start..i];
            let distance = |s: usize, w: &str| (s + w.len() / 2).abs_diff(middle);
            if w.len() >= 3 && best.is_none_or(|(bs, b)| distance(start, w) < distance(bs, b)) {
                best = Some((start, w));
            }
        } else {
            i += 1;
        }
    }
    best
}

#[derive(Debug, Clone, Serialize)]
pub struct InfillRow {
    /// "fixed ×1.5", "elastic" (the judge's search) or "learned" (the length states).
    pub gap: String,
    pub fills: usize,
    /// Share of fills whose word at the gap is a word of the training text.
    pub valid_word_rate: f64,
    pub exact_rate: f64,
    /// Median |chosen length − true length| (elastic and learned only).
    pub median_length_error: Option<f64>,
    /// Pearson correlation of the chosen lengths with the true ones (elastic and learned only):
    /// the median error alone rewards a gap that always picks a typical word's length.
    pub length_correlation: Option<f64>,
    pub ms_per_fill: f64,
}

/// The word a fill makes at the gap: the letters of the fill joined with the letters touching it.
fn word_at_gap(before: &str, fill: &str, after: &str) -> String {
    let left: String = before.chars().rev().take_while(|c| c.is_alphabetic()).collect::<Vec<_>>().into_iter().rev().collect();
    let right: String = after.chars().take_while(|c| c.is_alphabetic()).collect();
    format!("{left}{fill}{right}")
}

/// Whether a filled gap reads as one real word: with the letters touching it, it makes exactly one
/// word (spaces and punctuation around it allowed), and the training text has that word.
fn is_valid(word: &str, dictionary: &HashSet<String>) -> bool {
    let w = words(word);
    w.len() == 1 && dictionary.contains(&w[0])
}

pub fn run(model: &(dyn Denoiser + Sync), judge: &Judge, vocab: &Vocab, dictionary: &HashSet<String>, cases: &[Case], options: DecodeOptions) -> Result<Vec<InfillRow>> {
    let mut rows = Vec::new();
    let summarize = |gap: String, results: &[Outcome], lengths: Option<Vec<(usize, usize)>>| {
        let n = results.len().max(1) as f64;
        let valid = results.iter().filter(|o| is_valid(&o.word, dictionary)).count() as f64 / n;
        let exact = results.iter().filter(|o| o.exact).count() as f64 / n;
        let median = lengths.as_deref().map(median_error);
        let correlation = lengths.as_deref().and_then(correlation);
        let ms_per_fill = results.iter().map(|o| o.ms).sum::<f64>() / n;
        InfillRow { gap, fills: results.len(), valid_word_rate: valid, exact_rate: exact, median_length_error: median, length_correlation: correlation, ms_per_fill }
    };
    for factor in FACTORS {
        let mut results = Vec::new();
        for c in cases {
            let length = ((c.word.len() as f64 * factor).round() as usize).max(1);
            let start = Instant::now();
            let mut window = c.before.clone();
            window.extend(std::iter::repeat_n(MASK_ID, length));
            window.extend_from_slice(&c.after);
            let mut g = crate::kind::generation(model, &window, window.len(), DEFAULT_OVERLAP, options);
            g.run(model, |_| {});
            let fill = vocab.decode(&g.tokens()[c.before.len()..c.before.len() + length], '_');
            results.push(outcome(c, vocab, &fill, start.elapsed().as_secs_f64() * 1e3));
        }
        rows.push(summarize(format!("fixed ×{factor}"), &results, None));
    }
    let (mut results, mut lengths) = (Vec::new(), Vec::new());
    for c in cases {
        let start = Instant::now();
        let ranking = rank_lengths(model, judge, vocab, &c.before, &c.after, DEFAULT_MAX_GAP, options.seed)?;
        let best = &ranking[0];
        results.push(outcome(c, vocab, &best.fill, start.elapsed().as_secs_f64() * 1e3));
        lengths.push((best.length, c.word.len()));
    }
    rows.push(summarize("elastic".into(), &results, Some(lengths)));
    if model.length_states() {
        let (mut results, mut lengths) = (Vec::new(), Vec::new());
        let learned = DecodeOptions { temperature: learned::TEMPERATURE, seed: options.seed, ..DecodeOptions::DEFAULT };
        let bounds = GapBounds { start: learned::START_MASKS, max_len: DEFAULT_MAX_GAP };
        for c in cases {
            let start = Instant::now();
            let (fill, _) = learned::fill(model, &c.before, &c.after, bounds, &learned, &mut |_| {})?;
            results.push(outcome(c, vocab, &vocab.decode(&fill, '_'), start.elapsed().as_secs_f64() * 1e3));
            lengths.push((fill.len(), c.word.len()));
        }
        rows.push(summarize("learned".into(), &results, Some(lengths)));
    }
    Ok(rows)
}

/// Median |chosen − true| over (chosen, true) length pairs.
fn median_error(lengths: &[(usize, usize)]) -> f64 {
    let mut e: Vec<usize> = lengths.iter().map(|&(chosen, truth)| chosen.abs_diff(truth)).collect();
    e.sort_unstable();
    e.get(e.len() / 2).copied().unwrap_or(0) as f64
}

/// Pearson correlation of chosen with true lengths; none where either never varies.
fn correlation(lengths: &[(usize, usize)]) -> Option<f64> {
    let n = lengths.len() as f64;
    let mean = |f: fn(&(usize, usize)) -> usize| lengths.iter().map(|p| f(p) as f64).sum::<f64>() / n;
    let (mx, my) = (mean(|p| p.0), mean(|p| p.1));
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for &(x, y) in lengths {
        let (dx, dy) = (x as f64 - mx, y as f64 - my);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    (sxx > 0.0 && syy > 0.0).then(|| sxy / (sxx * syy).sqrt())
}

/// One fill: the word it makes at the gap, whether it is the removed word, what it took.
struct Outcome {
    word: String,
    exact: bool,
    ms: f64,
}

fn outcome(c: &Case, vocab: &Vocab, fill: &str, ms: f64) -> Outcome {
    let word = word_at_gap(&vocab.decode(&c.before, '_'), fill, &vocab.decode(&c.after, '_'));
    Outcome { word, exact: fill == c.word, ms }
}

/// Recovery against a wrong fixed length: (elastic − wrong) / (true − wrong), on valid words.
pub fn recovery(rows: &[InfillRow], wrong: f64) -> Option<f64> {
    let get = |name: &str| rows.iter().find(|r| r.gap == name).map(|r| r.valid_word_rate);
    let (elastic, truth, wrong) = (get("elastic")?, get("fixed ×1")?, get(&format!("fixed ×{wrong}"))?);
    (truth != wrong).then(|| (elastic - wrong) / (truth - wrong))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_removed_word_is_the_middle_one_and_the_gap_word_joins_its_neighbours() {
        assert_eq!(middle_word("To be, or not to be: that is"), Some((10, "not")));
        assert_eq!(middle_word("O Romeo, Romeo! wherefore"), Some((9, "Romeo")));
        assert_eq!(middle_word("a be it"), None);
        assert_eq!(word_at_gap("the sw", "eet", "ness of"), "sweetness");
        let dict: HashSet<String> = ["sweet".to_string()].into();
        assert!(is_valid("sweet", &dict));
        assert!(is_valid(" sweet,", &dict));
        assert!(!is_valid("swe et", &dict) && !is_valid("sweets", &dict) && !is_valid(" ", &dict));
    }

    #[test]
    fn recovery_is_the_share_of_the_lost_quality_won_back() {
        let row = |gap: &str, v: f64| InfillRow { gap: gap.into(), fills: 1, valid_word_rate: v, exact_rate: 0.0, median_length_error: None, length_correlation: None, ms_per_fill: 0.0 };
        let rows = vec![row("fixed ×1", 0.5), row("fixed ×1.5", 0.1), row("elastic", 0.42)];
        assert!((recovery(&rows, 1.5).unwrap() - 0.8).abs() < 1e-9);
    }

    #[test]
    fn lengths_are_scored_by_median_error_and_correlation() {
        let exact = [(3, 3), (5, 5), (8, 8)];
        assert_eq!(median_error(&exact), 0.0);
        assert!((correlation(&exact).unwrap() - 1.0).abs() < 1e-12);
        // Always four: a small median error on short words, and no correlation at all.
        let constant = [(4, 3), (4, 5), (4, 4), (4, 8)];
        assert_eq!(median_error(&constant), 1.0);
        assert_eq!(correlation(&constant), None);
        let reversed = [(8, 3), (5, 5), (3, 8)];
        assert!(correlation(&reversed).unwrap() < -0.9);
    }
}
