//! `tiny-diffusion bench decode`: each decoding setting's speed and the quality of what it writes,
//! and the settings on the frontier between them.
//!
//! Every setting writes `length` characters from an empty prompt, block by block as `generate`
//! does, once per seed. Quality is read from the word statistics `eval` uses and from the judge
//! (the autoregressive model's NLL of the text); speed as characters per step (forward passes) and
//! per time-of-one-full-forward-pass, timed on this machine.

use crate::diffusion::{DEFAULT_OVERLAP, DecodeOptions, Denoiser, Time};
use crate::eval::{TextStats, text_stats};
use crate::judge::Judge;
use crate::vocab::{DEFAULT_MASK_CHAR, MASK_ID, Vocab};
use anyhow::{Context, Result};
use clap::Parser;
use serde::Serialize;
use std::collections::HashSet;
use std::time::Instant;

/// The most characters a setting writes per seed (`bench decode --length`): every text is kept
/// for the judge.
pub const MAX_LENGTH: usize = 100_000;

/// The most seeds (`bench decode --seed`), each writing `--length` characters per setting.
pub const MAX_SEEDS: usize = 100;

/// The settings measured when none is named: the defaults, each of their ingredients taken away,
/// the earlier defaults, and every other rule once (docs/decoding.md). Written as the flags
/// `generate` takes; each is complete where the defaults would otherwise change it.
pub const DEFAULT_GRID: &[&str] = &[
    "",
    "--lanes 1",
    "--polish 0",
    "--lanes 1 --polish 0",
    "--top-p 1",
    "--cache false",
    "--stretch 0",
    "--temperature 1.1",
    // The defaults before closer lanes at temperature 1 (32-character stretches at 1.1), before
    // polishing to convergence (six passes; those hid every third character, these every fifth),
    // before close lanes (three far apart, temperature 1), before lanes and polish (factor rule),
    // and before that.
    "--stretch 32 --temperature 1.1",
    "--stretch 32 --temperature 1.1 --polish 6",
    "--lanes 3 --stretch 0 --temperature 1 --polish 6",
    "--strategy factor --factor 6 --span 16 --temperature 0.6 --top-p 1 --lanes 1 --apart --remask low-confidence --polish 0",
    "--strategy confidence --threshold 0.7 --span 8 --temperature 1 --top-p 1 --lanes 1 --polish 0 --cache false",
    "--strategy margin --margin 0.3 --span 16 --lanes 1 --polish 0",
    "--strategy entropy --entropy 1 --span 16 --lanes 1 --polish 0",
    "--strategy eb --gamma 1 --span 16 --lanes 1 --polish 0",
    "--strategy topk --per-step 4 --span 0 --polish 0",
    "--strategy steps --steps 64 --polish 0",
    "--strategy topk-sum --top-k 2 --threshold 0.95 --temperature 0.8 --top-p 1 --span 0 --polish 0",
];

#[derive(Parser)]
#[command(no_binary_name = true)]
struct Flags {
    #[command(flatten)]
    decode: DecodeOptions,
}

/// Parses a setting written as `generate`'s decoding flags, e.g. `--strategy eb --gamma 1`.
pub fn parse_setting(flags: &str) -> Result<DecodeOptions> {
    let options = Flags::try_parse_from(flags.split_whitespace())
        .map_err(|e| anyhow::anyhow!("{}", e.to_string().trim_end()))
        .with_context(|| format!("in the setting {flags:?}"))?
        .decode;
    options.validate()?;
    Ok(options)
}

#[derive(Debug, Clone, Serialize)]
pub struct DecodeRow {
    /// The flags, as given (empty: the defaults).
    pub setting: String,
    pub description: String,
    pub characters: usize,
    pub steps: usize,
    pub characters_per_step: f64,
    pub ms_per_character: f64,
    /// Characters written per time-of-one-full-forward-pass, end to end.
    pub characters_per_forward_time: f64,
    pub valid_word_rate: f64,
    pub distinct_bigram_rate: f64,
    /// Nats per character of the text under the judge (each seed's text, averaged).
    pub judge_nll: f64,
    pub words: usize,
    /// No other setting is at least as fast, as good on both word statistics and the judge, and
    /// better on one
    /// (known once every setting is measured; `--json` lists the frontier on its last line).
    #[serde(skip)]
    pub frontier: bool,
    pub sample: String,
}

pub struct DecodeBench<'a> {
    pub denoiser: &'a dyn Denoiser,
    pub vocab: &'a Vocab,
    /// Words of the training text: what counts as a valid word.
    pub dictionary: &'a HashSet<String>,
    pub judge: &'a Judge,
    pub seeds: Vec<u64>,
    pub length: usize,
}

impl DecodeBench<'_> {
    /// Median time of one full forward pass over a context-length window, in milliseconds.
    pub fn forward_ms(&self) -> f64 {
        let n = self.denoiser.context();
        let tokens = vec![MASK_ID; n];
        let positions: Vec<usize> = (0..n).collect();
        crate::bench::median_time(1, 5, || {
            std::hint::black_box(self.denoiser.logits(&tokens, Time::MaskRate(1.0), &positions));
        })
        .as_secs_f64()
            * 1e3
    }

    /// Measures one setting over every seed. The word statistics are each seed's, averaged (as
    /// `eval` computes them on one text), so that repeats across seeds do not count as repetition.
    pub fn measure(&self, setting: &str, options: DecodeOptions) -> Result<DecodeRow> {
        let forward_before = self.forward_ms();
        let (mut sample, mut steps, mut characters, mut seconds) = (String::new(), 0usize, 0usize, 0.0f64);
        let (mut stats, mut nll) = (Vec::new(), 0.0);
        for &seed in &self.seeds {
            let mut generation = crate::kind::generation(self.denoiser, &[], self.length, DEFAULT_OVERLAP, DecodeOptions { seed, ..options });
            let start = Instant::now();
            generation.run(self.denoiser, |_| steps += 1);
            seconds += start.elapsed().as_secs_f64();
            characters += generation.tokens().len();
            let text = self.vocab.decode(&generation.tokens(), DEFAULT_MASK_CHAR);
            stats.push(text_stats(&text, self.dictionary));
            nll += self.judge.nll(&text)? / self.seeds.len() as f64;
            if sample.is_empty() {
                sample = text.chars().take(300).collect();
            }
        }
        let forward_ms = (forward_before + self.forward_ms()) / 2.0;
        let words: usize = stats.iter().map(|s| s.words).sum();
        let mean = |f: fn(&TextStats) -> f64| stats.iter().map(f).sum::<f64>() / stats.len().max(1) as f64;
        Ok(DecodeRow {
            setting: setting.to_string(),
            description: options.describe(),
            characters,
            steps,
            characters_per_step: characters as f64 / steps.max(1) as f64,
            ms_per_character: seconds * 1e3 / characters.max(1) as f64,
            characters_per_forward_time: characters as f64 / (seconds * 1e3 / forward_ms),
            valid_word_rate: mean(|s| s.valid_word_rate),
            distinct_bigram_rate: mean(|s| s.distinct_bigram_rate),
            judge_nll: nll,
            words,
            frontier: false,
            sample,
        })
    }
}

/// Marks the rows no other row dominates on (characters per step, valid words, distinct bigrams,
/// judge NLL, the lower the better).
pub fn mark_frontier(rows: &mut [DecodeRow]) {
    let key = |r: &DecodeRow| [r.characters_per_step, r.valid_word_rate, r.distinct_bigram_rate, -r.judge_nll];
    let keys: Vec<[f64; 4]> = rows.iter().map(key).collect();
    for (i, row) in rows.iter_mut().enumerate() {
        let dominated = keys.iter().enumerate().any(|(j, other)| {
            j != i && other.iter().zip(&keys[i]).all(|(o, m)| o >= m) && other.iter().zip(&keys[i]).any(|(o, m)| o > m)
        });
        row.frontier = !dominated;
    }
}

pub fn header() -> String {
    format!(
        "{:<44} {:>9} {:>9} {:>9} {:>7} {:>8} {:>7}  {}",
        "setting", "chars/st", "ms/char", "chars/fw", "valid", "distinct", "judge", "frontier"
    )
}

pub fn format_row(row: &DecodeRow) -> String {
    format!(
        "{:<44} {:>9.2} {:>9.2} {:>9.2} {:>7.3} {:>8.3} {:>7.3}  {}",
        if row.setting.is_empty() { "(the defaults)" } else { &row.setting },
        row.characters_per_step,
        row.ms_per_character,
        row.characters_per_forward_time,
        row.valid_word_rate,
        row.distinct_bigram_rate,
        row.judge_nll,
        if row.frontier { "*" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diffusion::Strategy;

    #[test]
    fn every_default_setting_parses_and_flags_map_onto_the_options() {
        for flags in DEFAULT_GRID {
            parse_setting(flags).unwrap();
        }
        let o = parse_setting("--strategy eb --gamma 2 --span 32").unwrap();
        assert_eq!((o.strategy, o.gamma, o.span), (Strategy::Eb, 2.0, 32));
        assert_eq!(parse_setting("").unwrap(), DecodeOptions::DEFAULT);
        let err = parse_setting("--gamma -1").unwrap_err();
        assert!(format!("{err:#}").contains("--gamma"), "{err:#}");
        assert!(parse_setting("--no-such-flag").is_err());
    }

    fn row(cps: f64, valid: f64, distinct: f64, judge_nll: f64) -> DecodeRow {
        DecodeRow {
            setting: String::new(),
            description: String::new(),
            characters: 0,
            steps: 0,
            characters_per_step: cps,
            ms_per_character: 0.0,
            characters_per_forward_time: 0.0,
            valid_word_rate: valid,
            distinct_bigram_rate: distinct,
            judge_nll,
            words: 0,
            frontier: false,
            sample: String::new(),
        }
    }

    #[test]
    fn the_frontier_keeps_only_undominated_settings() {
        let mut rows = vec![
            row(1.0, 0.93, 0.86, 1.8),
            row(2.0, 0.90, 0.80, 1.8),
            row(1.5, 0.90, 0.80, 1.8),
            row(2.0, 0.85, 0.90, 1.8),
            // Dominated on the word statistics by the second row, but the judge likes it better.
            row(1.5, 0.90, 0.80, 1.7),
        ];
        mark_frontier(&mut rows);
        let on: Vec<bool> = rows.iter().map(|r| r.frontier).collect();
        assert_eq!(on, vec![true, true, false, true, true]);
    }
}
