//! Evaluation of a checkpoint: likelihood on held-out text, and the quality of what it writes.
//!
//! The text metrics are deliberately simple so anyone can recompute them: words are maximal runs
//! of letters (with inner apostrophes), compared in lower case.

use crate::data::Corpus;
use crate::diffusion::{DEFAULT_OVERLAP, DecodeOptions, Denoiser};
use crate::kind::ModelDenoiser;
use crate::judge::{Judge, Verdict};
use anyhow::Result;
use crate::vocab::DEFAULT_MASK_CHAR;
use crate::loss::{EvalResult, evaluate};
use serde::Serialize;
use std::collections::HashSet;

/// How much generated text the word metrics are computed on.
pub const GENERATED_CHARS: usize = 2000;

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TextStats {
    pub words: usize,
    /// Share of words that occur in the training text.
    pub valid_word_rate: f64,
    /// Distinct word bigrams / all word bigrams (1.0: no repeated pair).
    pub distinct_bigram_rate: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub val_loss: f32,
    pub val_bits_per_char: f32,
    pub generated: TextStats,
    /// The same statistics on held-out text of the same length, for scale.
    pub held_out: TextStats,
    /// The generated and held-out text's likelihood under an autoregressive judge.
    pub judge: Verdict,
    pub characters_per_step: f64,
    pub ms_per_step: f64,
    pub sample: String,
}

pub fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let chars: Vec<char> = text.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let inner_apostrophe = c == '\'' && !cur.is_empty() && chars.get(i + 1).is_some_and(|n| n.is_alphabetic());
        if c.is_alphabetic() || inner_apostrophe {
            cur.extend(c.to_lowercase());
        } else if !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

pub fn text_stats(text: &str, dictionary: &HashSet<String>) -> TextStats {
    let w = words(text);
    let valid = w.iter().filter(|x| dictionary.contains(*x)).count();
    let bigrams: Vec<(&String, &String)> = w.iter().zip(w.iter().skip(1)).collect();
    let distinct: HashSet<_> = bigrams.iter().collect();
    TextStats {
        words: w.len(),
        valid_word_rate: if w.is_empty() { 0.0 } else { valid as f64 / w.len() as f64 },
        distinct_bigram_rate: if bigrams.is_empty() { 0.0 } else { distinct.len() as f64 / bigrams.len() as f64 },
    }
}

/// Generates about `chars` characters as independent context-length samples from seeds
/// `options.seed`, `options.seed + 1`, …
/// Returns the ids and (characters per step, ms per step).
pub fn generate_samples(model: &dyn Denoiser, options: DecodeOptions, chars: usize) -> (Vec<u32>, f64, f64) {
    let context = model.context();
    let (mut tokens, mut steps, mut millis) = (Vec::new(), 0usize, 0.0f64);
    let mut seed = options.seed;
    while tokens.len() < chars {
        let mut g = crate::kind::generation(model, &[], context.min(chars - tokens.len()), DEFAULT_OVERLAP, DecodeOptions { seed, ..options });
        g.run(model, |f| {
            steps += 1;
            millis += f.elapsed.as_secs_f64() * 1e3;
        });
        tokens.extend(g.tokens());
        seed += 1;
    }
    let per_step = tokens.len() as f64 / steps.max(1) as f64;
    (tokens, per_step, millis / steps.max(1) as f64)
}

/// Full evaluation: validation likelihood plus word statistics and the judge's likelihood of
/// generated text.
pub fn run(denoiser: &ModelDenoiser, corpus: &Corpus, options: DecodeOptions, seq_len: usize, judge: &Judge) -> Result<Report> {
    let EvalResult { loss, bits_per_char } = evaluate(&denoiser.model, &corpus.val, 256, seq_len, &denoiser.device);
    let train_text = corpus.vocab.decode(&corpus.train, ' ');
    let dictionary: HashSet<String> = words(&train_text).into_iter().collect();
    let (ids, chars_per_step, ms_per_step) = generate_samples(denoiser, options, GENERATED_CHARS);
    let generated = corpus.vocab.decode(&ids, DEFAULT_MASK_CHAR);
    let held_out_len = GENERATED_CHARS.min(corpus.val.len());
    let held_out = corpus.vocab.decode(&corpus.val[..held_out_len], ' ');
    Ok(Report {
        val_loss: loss,
        val_bits_per_char: bits_per_char,
        generated: text_stats(&generated, &dictionary),
        held_out: text_stats(&held_out, &dictionary),
        judge: judge.verdict(&generated, &held_out)?,
        characters_per_step: chars_per_step,
        ms_per_step,
        sample: generated.chars().take(400).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_letter_runs_in_lower_case() {
        assert_eq!(words("O Romeo, ROMEO! wherefore art thou--'tis o'er"), vec!["o", "romeo", "romeo", "wherefore", "art", "thou", "tis", "o'er"]);
    }

    #[test]
    fn repetition_lowers_distinct_bigrams_and_nonsense_lowers_validity() {
        let dict: HashSet<String> = words("your grace the king is here").into_iter().collect();
        let rep = text_stats("your your your your your", &dict);
        assert_eq!(rep.valid_word_rate, 1.0);
        assert_eq!(rep.distinct_bigram_rate, 0.25);
        let junk = text_stats("the xqz king blorp", &dict);
        assert_eq!(junk.valid_word_rate, 0.5);
        assert_eq!(junk.distinct_bigram_rate, 1.0);
    }
}
