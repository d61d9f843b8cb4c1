//! Decoding options: one type for every front end. The CLI flattens it into flags (clap), the
//! TUI steps through it, and the sampler reads it. Each default is written once, in `DEFAULT`.
//!
//! A new decoding rule is a `Strategy` variant, its parameter here (flag, default, `param`), and
//! its selection in `rules.rs`.

use anyhow::{Result, bail};
use clap::{Args, ValueEnum};
use serde::{Deserialize, Serialize};

/// Which masked positions a denoising step commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Every position whose confidence (probability of its proposed character) ≥ --threshold.
    Confidence,
    /// Every position whose margin between its two likeliest characters ≥ --margin (Dream's topk_margin).
    Margin,
    /// Every position whose entropy ≤ --entropy nats.
    Entropy,
    /// EB-sampler: the lowest-entropy positions while their summed entropy, less the largest, ≤ --gamma.
    Eb,
    /// Fast-dLLM's factor rule: the n most confident while (n + 1)(1 − confidence of the n-th) ≤ --factor.
    Factor,
    /// The Python tiny-diffusion v2: confidence = the summed probability of the --top-k likeliest
    /// characters, committed when ≥ --threshold; characters are drawn among those --top-k.
    TopkSum,
    /// Exactly --per-step positions per step, most confident first.
    Topk,
    /// Each block in exactly --steps steps, most confident first.
    Steps,
    /// Each block in --steps steps, at random positions (ancestral sampling, as MDLM).
    Random,
}

/// With `--cache`, the rows a step recomputes: this many times the span, from the leftmost
/// position it needs (twice the span lets the span slide that far before a refresh).
pub const CACHE_WINDOW_SPANS: usize = 2;

/// A `--polish` pass hides every this-many-th character, so each hidden one is read with the four
/// characters on each side of it. Measured with `bench decode` on long-5 (docs/decoding.md): every
/// fifth scored 0.036 nats per character better than every third (30 seeds), every fourth 0.031,
/// every sixth better still but at fewer distinct bigrams; every other one 0.11 worse.
pub const POLISH_STRIDE: usize = 5;

impl Strategy {
    /// Every strategy, in the order the TUI's `s` key steps through them.
    pub const ALL: [Strategy; 9] = [
        Strategy::Confidence,
        Strategy::Margin,
        Strategy::Entropy,
        Strategy::Eb,
        Strategy::Factor,
        Strategy::TopkSum,
        Strategy::Topk,
        Strategy::Steps,
        Strategy::Random,
    ];

    /// Whether `--apart` applies: the rules whose count per step is not a promise.
    pub fn can_keep_apart(self) -> bool {
        !matches!(self, Strategy::Topk | Strategy::Steps | Strategy::Random)
    }

    /// Whether `--span` narrows its candidates. `steps` and `random` keep their promise of an
    /// exact step count instead.
    pub fn uses_span(self) -> bool {
        !matches!(self, Strategy::Steps | Strategy::Random)
    }
}

/// What a timestep-conditioned model is told at each step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Timestep {
    /// The share of the window still masked (what such models are trained with).
    MaskRate,
    /// The step index, as the Python tiny-diffusion v1's `sample()` does.
    Step,
}

/// Whether committed characters can be taken back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Remask {
    /// Committed characters are final.
    None,
    /// The step after a character is committed checks it in the context of everything committed
    /// with it, and masks it again (once) if its probability there is below --remask-below.
    LowConfidence,
    /// ReMDM-cap: each step masks every decoded character again with probability min(--eta, σ_max)
    /// (with --strategy random, MDLM's ancestral sampler, over --steps).
    Cap,
    /// ReMDM-rescale: with probability --eta × σ_max.
    Rescale,
    /// ReMDM-conf: σ_max shared out by softmax(−confidence), the least sure first.
    Conf,
    /// ReMDM-loop: decode to 90% by t = 0.55, then mask again and redecode at rate --eta with the
    /// masked share held, until t = 0.05, then finish (the paper uses η 0.02).
    Loop,
}

impl Remask {
    /// ReMDM's schedules, which run on MDLM's ancestral sampler.
    pub fn is_remdm(self) -> bool {
        matches!(self, Remask::Cap | Remask::Rescale | Remask::Conf | Remask::Loop)
    }
}

/// The settings of one decoding run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Args)]
pub struct DecodeOptions {
    #[arg(long, value_enum, default_value_t = DecodeOptions::DEFAULT.strategy)]
    pub strategy: Strategy,
    /// Confidence threshold τ for --strategy confidence and topk-sum.
    #[arg(long, default_value_t = DecodeOptions::DEFAULT.threshold)]
    pub threshold: f32,
    /// Margin threshold for --strategy margin.
    #[arg(long, default_value_t = DecodeOptions::DEFAULT.margin)]
    pub margin: f32,
    /// Entropy bound (nats) for --strategy entropy.
    #[arg(long, default_value_t = DecodeOptions::DEFAULT.entropy)]
    pub entropy: f32,
    /// Entropy budget γ (nats) for --strategy eb.
    #[arg(long, default_value_t = DecodeOptions::DEFAULT.gamma)]
    pub gamma: f32,
    /// Factor f for --strategy factor.
    #[arg(long, default_value_t = DecodeOptions::DEFAULT.factor)]
    pub factor: f32,
    /// Positions per step for --strategy topk.
    #[arg(long, default_value_t = DecodeOptions::DEFAULT.per_step)]
    pub per_step: usize,
    /// Steps per block for --strategy steps and random.
    #[arg(long, default_value_t = DecodeOptions::DEFAULT.steps)]
    pub steps: usize,
    /// Sampling temperature (0: always the most likely character).
    #[arg(long, default_value_t = DecodeOptions::DEFAULT.temperature)]
    pub temperature: f32,
    /// Draw only among the K most likely characters (0: all). Confidence is still measured on the
    /// whole distribution.
    #[arg(long, default_value_t = DecodeOptions::DEFAULT.top_k)]
    pub top_k: usize,
    /// Draw only among the likeliest characters whose probabilities sum to P (nucleus sampling;
    /// 1: all), as the Python project's uniform sampler (0.9). Confidence is still measured on
    /// the whole distribution.
    #[arg(long, default_value_t = DecodeOptions::DEFAULT.top_p)]
    pub top_p: f32,
    /// Semi-autoregressive: each step considers only masked positions within N characters of the
    /// leftmost one (0: the whole block). Not for --strategy steps and random.
    #[arg(long, default_value_t = DecodeOptions::DEFAULT.span)]
    pub span: usize,
    /// Split each window's new text into N equal lanes, each decoded from its own left end within
    /// --span, all in the same steps.
    #[arg(long, default_value_t = DecodeOptions::DEFAULT.lanes)]
    pub lanes: usize,
    /// With lanes: cut the window's new text into stretches of N characters and decode the
    /// --lanes leftmost unfinished ones (0: as many stretches as lanes).
    #[arg(long, default_value_t = DecodeOptions::DEFAULT.stretch)]
    pub stretch: usize,
    /// Take back committed characters that their new context makes unlikely.
    #[arg(long, value_enum, default_value_t = DecodeOptions::DEFAULT.remask)]
    pub remask: Remask,
    /// With --remask low-confidence: the probability below which a checked character is masked again.
    #[arg(long, default_value_t = DecodeOptions::DEFAULT.remask_below)]
    pub remask_below: f32,
    /// Corrector passes over each finished window, at most (help: `polish_help`).
    #[arg(long, default_value_t = DecodeOptions::DEFAULT.polish, help = polish_help())]
    pub polish: usize,
    /// η of ReMDM's cap and rescale schedules (the paper uses about 0.008 and 0.015).
    #[arg(long, default_value_t = DecodeOptions::DEFAULT.eta)]
    pub eta: f32,
    /// Reuse keys and values outside a window around the span between steps (Fast-dLLM's dual
    /// cache, refreshed whenever the span leaves the window): approximate, much cheaper steps.
    /// `--cache false` recomputes every position every step.
    #[arg(long, default_value_t = DecodeOptions::DEFAULT.cache, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub cache: bool,
    /// Never commit two neighbouring positions in one step (most confident first; not for topk,
    /// steps, random): neighbours depend on each other most, and drawn together they disagree.
    /// `--apart false` allows it.
    #[arg(long, default_value_t = DecodeOptions::DEFAULT.apart, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub apart: bool,
    /// What a timestep-conditioned model is told: the masked share, or the step index (v1).
    #[arg(long, value_enum, default_value_t = DecodeOptions::DEFAULT.timestep)]
    pub timestep: Timestep,
    /// Same seed, same output.
    #[arg(long, default_value_t = DecodeOptions::DEFAULT.seed)]
    pub seed: u64,
}

/// `--polish`'s help, which names the stride the sampler uses rather than repeating it.
fn polish_help() -> String {
    let n = POLISH_STRIDE;
    format!(
        "Corrector passes over each finished window, at most: each hides every {n}th character (a different set each pass) and writes back, for each, the character the model then finds likeliest. Polishing stops early once {n} passes in a row (every character once) change nothing"
    )
}

impl DecodeOptions {
    /// The defaults of every front end (generate, eval, the TUI, training samples), chosen with
    /// `bench decode` and its judge (docs/decoding.md): four lanes over 24-character stretches,
    /// each committing the characters it is 90% sure of within an 8-character span (at least one
    /// per step), drawn at temperature 1 from the top 95% of the distribution, then polish
    /// passes (each rewriting every fifth character to the likeliest) until a round of them
    /// changes nothing (at most 30), with the key/value cache. On long-5 they write about 2.7
    /// characters per step at 0.856 distinct bigrams and judge 1.258 (36 seeds), where one-per-step
    /// decoding at the same temperature scores 1.247 at 0.841; 32-character stretches at
    /// temperature 1.1, the defaults before, scored 1.294 at 0.860.
    pub const DEFAULT: DecodeOptions = DecodeOptions {
        strategy: Strategy::Confidence,
        threshold: 0.9,
        margin: 0.5,
        entropy: 0.8,
        gamma: 1.0,
        factor: 6.0,
        per_step: 4,
        steps: 32,
        temperature: 1.0,
        top_k: 0,
        top_p: 0.95,
        span: 8,
        lanes: 4,
        stretch: 24,
        remask: Remask::None,
        remask_below: 0.5,
        polish: 30,
        eta: 0.01,
        cache: true,
        apart: false,
        timestep: Timestep::MaskRate,
        seed: 0,
    };

    /// Refuses settings that cannot work, naming the flag and its valid range.
    pub fn validate(&self) -> Result<()> {
        let unit = |name: &str, v: f32| {
            if !(v > 0.0 && v <= 1.0) {
                bail!("--{name} must be in (0, 1], got {v}");
            }
            Ok(())
        };
        let non_negative = |name: &str, v: f32| {
            if !(v >= 0.0 && v.is_finite()) {
                bail!("--{name} must be a number ≥ 0, got {v}");
            }
            Ok(())
        };
        unit("threshold", self.threshold)?;
        unit("margin", self.margin)?;
        unit("remask-below", self.remask_below)?;
        unit("eta", self.eta)?;
        unit("top-p", self.top_p)?;
        if self.remask.is_remdm() && self.strategy != Strategy::Random {
            let name = self.remask.to_possible_value().map(|v| v.get_name().to_string()).unwrap_or_default();
            bail!("--remask {name} is ReMDM's schedule for MDLM's ancestral sampler: use it with --strategy random (and --steps)");
        }
        non_negative("entropy", self.entropy)?;
        non_negative("gamma", self.gamma)?;
        non_negative("factor", self.factor)?;
        non_negative("temperature", self.temperature)?;
        if self.per_step == 0 {
            bail!("--per-step must be at least 1");
        }
        if self.steps == 0 {
            bail!("--steps must be at least 1");
        }
        if self.lanes == 0 {
            bail!("--lanes must be at least 1");
        }
        if self.strategy == Strategy::TopkSum && self.top_k == 0 {
            bail!("--strategy topk-sum needs --top-k ≥ 1 (the Python project uses 2 or 3)");
        }
        Ok(())
    }

    /// Whether committed characters can change (remasking or polish): the Watch screen then counts
    /// edits and shows the colour of a revised cell.
    pub fn revises(&self) -> bool {
        self.remask != Remask::None || self.polish > 0
    }

    /// A short description, e.g. `confidence τ 0.70 · span 8`.
    pub fn describe(&self) -> String {
        // Two decimals at most, trailing zeros dropped: 0.7, 4, 0.25.
        let n = |v: f32| format!("{v:.2}").trim_end_matches('0').trim_end_matches('.').to_string();
        let rule = match self.strategy {
            Strategy::Confidence => format!("confidence τ {}", n(self.threshold)),
            Strategy::Margin => format!("margin ≥ {}", n(self.margin)),
            Strategy::Entropy => format!("entropy ≤ {}", n(self.entropy)),
            Strategy::Eb => format!("eb γ {}", n(self.gamma)),
            Strategy::Factor => format!("factor {}", n(self.factor)),
            Strategy::TopkSum => format!("top-{} sum τ {}", self.top_k, n(self.threshold)),
            Strategy::Topk => format!("top-k {}/step", self.per_step),
            Strategy::Steps => format!("steps {}", self.steps),
            Strategy::Random => format!("random order, {} steps", self.steps),
        };
        let span = match (self.strategy.uses_span(), self.span) {
            (false, _) => String::new(),
            (true, 0) => " · whole block".to_string(),
            (true, n) => format!(" · span {n}"),
        };
        let remask = match self.remask {
            Remask::None => String::new(),
            Remask::LowConfidence => format!(" · remask < {}", n(self.remask_below)),
            Remask::Cap => format!(" · remdm cap η {}", n(self.eta)),
            Remask::Rescale => format!(" · remdm rescale η {}", n(self.eta)),
            Remask::Conf => " · remdm conf".to_string(),
            Remask::Loop => format!(" · remdm loop η {}", n(self.eta)),
        };
        let lanes = match (self.lanes > 1 && self.strategy.uses_span(), self.stretch) {
            (false, _) => String::new(),
            (true, 0) => format!(" · {} lanes", self.lanes),
            (true, stretch) => format!(" · {}×{stretch} lanes", self.lanes),
        };
        let apart = if self.apart && self.strategy.can_keep_apart() { " · apart" } else { "" };
        let polish = if self.polish > 0 { format!(" · polish ≤{}", self.polish) } else { String::new() };
        let cache = if self.cache { " · cached" } else { "" };
        format!("{rule}{span}{lanes}{apart}{remask}{polish}{cache}")
    }
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        decode: DecodeOptions,
    }

    #[test]
    fn the_flags_default_to_the_one_default() {
        assert_eq!(Cli::parse_from(["x"]).decode, DecodeOptions::DEFAULT);
        assert!(!Cli::parse_from(["x", "--cache", "false"]).decode.cache);
        assert!(Cli::parse_from(["x", "--cache"]).decode.cache);
        let d = Cli::parse_from(["x", "--strategy", "eb", "--gamma", "2.5", "--span", "0"]).decode;
        assert_eq!((d.strategy, d.gamma, d.span), (Strategy::Eb, 2.5, 0));
    }

    #[test]
    fn validation_names_the_flag_and_the_range() {
        let bad = [
            (DecodeOptions { threshold: 1.5, ..Default::default() }, "--threshold must be in (0, 1]"),
            (DecodeOptions { threshold: f32::NAN, ..Default::default() }, "--threshold"),
            (DecodeOptions { gamma: -1.0, ..Default::default() }, "--gamma"),
            (DecodeOptions { temperature: f32::INFINITY, ..Default::default() }, "--temperature"),
            (DecodeOptions { steps: 0, ..Default::default() }, "--steps"),
            (DecodeOptions { lanes: 0, ..Default::default() }, "--lanes"),
            (DecodeOptions { strategy: Strategy::TopkSum, ..Default::default() }, "--top-k"),
        ];
        for (options, expect) in bad {
            let err = options.validate().unwrap_err().to_string();
            assert!(err.contains(expect), "{err}");
        }
        DecodeOptions::DEFAULT.validate().unwrap();
    }

    #[test]
    fn descriptions_name_the_rule_and_what_is_on() {
        assert_eq!(DecodeOptions::DEFAULT.describe(), "confidence τ 0.9 · span 8 · 4×24 lanes · polish ≤30 · cached");
        let factor = DecodeOptions { strategy: Strategy::Factor, span: 0, lanes: 1, apart: true, remask: Remask::LowConfidence, ..DecodeOptions::DEFAULT };
        assert_eq!(factor.describe(), "factor 6 · whole block · apart · remask < 0.5 · polish ≤30 · cached");
        assert_eq!(DecodeOptions { strategy: Strategy::Steps, polish: 0, ..DecodeOptions::DEFAULT }.describe(), "steps 32 · cached");
    }
}
