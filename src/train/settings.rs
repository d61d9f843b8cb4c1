//! The settings of a training run, described once. `TrainSettings` is what decides a run and
//! what its checkpoint saves; `SETTINGS` lists the ones a person sets, each with its flag
//! (`train --name`), how its text reads and shows, and how ←/→ steps it on the Train screen. The
//! CLI makes its flags from the list and the Train screen its rows, so a new setting is a field
//! here and a line in the list. (`--init` and `--edits` are the CLI's own: they say where the
//! weights come from, with rules of their own against --resume.)

use crate::diffusion::edits;
use crate::diffusion::masking::MaskSchedule;
use crate::fused::Matmul;
use crate::kind::ModelKind;
use crate::model::{ModelConfig, Preset};
use crate::optimizer::setup_optimizer;
use anyhow::{Result, ensure};
use burn::optim::ModuleOptimizer;
use clap::ValueEnum;
use clap::builder::PossibleValue;
use serde::{Deserialize, Serialize};
use std::fmt::Display;
use std::ops::{Bound, RangeBounds};
use std::str::FromStr;

/// Most sequences a step may take: past it a batch's activations outgrow a machine's memory.
pub const MAX_BATCH: usize = 1024;
/// Most steps a run may be given (and the longest cadence of its evaluations and saves).
pub const MAX_STEPS: usize = 100_000_000;
/// Most validation windows an evaluation reads.
const MAX_EVAL_WINDOWS: usize = 4096;

/// Everything that decides a training run. Stored in the checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainSettings {
    /// What the model learns to predict (settings saved before kinds existed are masked).
    #[serde(default)]
    pub kind: ModelKind,
    pub preset: Preset,
    /// Total optimizer steps (a resumed run continues up to this number); 0 when `time_budget`
    /// sets the run's length instead.
    pub steps: usize,
    /// Seconds of wall time to train for, instead of a step count: the learning rate decays
    /// with the clock rather than the step, so a run ends on time on any machine (settings saved
    /// before this existed: none).
    #[serde(default)]
    pub time_budget: Option<f64>,
    pub batch: usize,
    /// Training window; at most the model's context.
    pub seq_len: usize,
    /// Peak learning rate (of AdamW, which trains every weight unless `muon_lr` is set).
    pub lr: f64,
    /// Peak learning rate of Muon, which then trains the blocks' weight matrices (None: AdamW
    /// trains everything). It follows the same warmup and decay as `lr`.
    #[serde(default)]
    pub muon_lr: Option<f64>,
    /// The cosine decay ends at `lr * min_lr_ratio`.
    pub min_lr_ratio: f64,
    pub warmup_steps: usize,
    pub weight_decay: f64,
    pub grad_clip: f32,
    pub seed: u64,
    pub mask_schedule: MaskSchedule,
    /// Learned timestep embedding with this many buckets (0: none).
    pub timesteps: usize,
    /// Shape overrides of the preset (layers, width, heads), for recipe studies.
    #[serde(default)]
    pub n_layer: Option<usize>,
    #[serde(default)]
    pub n_embd: Option<usize>,
    #[serde(default)]
    pub n_head: Option<usize>,
    /// How the step multiplies matrices (settings saved before this existed: the default).
    #[serde(default)]
    pub matmul: Matmul,
    /// Start from this checkpoint's weights (a directory, or `shipped`) with a fresh optimizer,
    /// instead of new weights: fine-tuning. The model keeps its shape and vocabulary.
    #[serde(default)]
    pub init: Option<String>,
    /// Teach the length states (`diffusion::edits`): gap rows in every batch. An `init` model
    /// without them gets them.
    #[serde(default)]
    pub edits: bool,
    pub eval_every: usize,
    /// Validation windows per evaluation.
    pub eval_windows: usize,
    pub sample_every: usize,
    pub save_every: usize,
}

impl TrainSettings {
    /// The optimiser these settings train with.
    pub fn optimizer(&self) -> ModuleOptimizer {
        setup_optimizer(self.lr, self.muon_lr, self.weight_decay, self.grad_clip)
    }

    pub fn for_preset(preset: Preset) -> Self {
        // Muon for the blocks learned far faster per step than AdamW on `small`
        // (docs/training.md); `base` keeps the AdamW recipe, untried with Muon here.
        let (lr, muon_lr, batch) = match preset {
            Preset::Tiny => (3e-3, Some(0.02), 16),
            Preset::Small => (3e-3, Some(0.02), 16),
            Preset::Base => (6e-4, None, 8),
        };
        TrainSettings {
            kind: ModelKind::Masked,
            preset,
            steps: 1000,
            time_budget: None,
            batch,
            seq_len: preset.config(2).context,
            lr,
            muon_lr,
            min_lr_ratio: 0.1,
            warmup_steps: 100,
            weight_decay: 0.01,
            grad_clip: 1.0,
            seed: 0,
            mask_schedule: MaskSchedule::Stratified,
            timesteps: 0,
            n_layer: None,
            n_embd: None,
            n_head: None,
            matmul: Matmul::default(),
            init: None,
            edits: false,
            eval_every: 250,
            eval_windows: 64,
            sample_every: 500,
            save_every: 500,
        }
    }

    /// The shape of a new model over a vocabulary of `vocab_size` ids (MASK and the characters),
    /// with the length states after them when the settings teach them.
    pub fn model_config(&self, vocab_size: usize) -> ModelConfig {
        let preset = self.preset.config(vocab_size + if self.edits { edits::STATES } else { 0 });
        ModelConfig {
            n_timesteps: self.timesteps,
            n_layer: self.n_layer.unwrap_or(preset.n_layer),
            n_embd: self.n_embd.unwrap_or(preset.n_embd),
            n_head: self.n_head.unwrap_or(preset.n_head),
            // A model trained on shorter windows gets that context, so eval and decoding use it too.
            context: self.seq_len.min(preset.context),
            kind: self.kind,
            edits: self.edits,
            ..preset
        }
    }

    /// Learning rate at `step` (0-based) after `wall_seconds` of training: linear warmup over
    /// the first steps, then a cosine decay over the rest of the steps or of the time budget.
    pub fn lr_at(&self, step: usize, wall_seconds: f64) -> f64 {
        let progress = match self.time_budget {
            Some(budget) => {
                // Warmup ends after its steps or a tenth of the budget, whichever comes first
                // (a counted run's is at most a tenth of its steps), so a short run still decays.
                let warmed = ((step + 1) as f64 / self.warmup_steps.max(1) as f64).max(wall_seconds / (0.1 * budget));
                if warmed < 1.0 {
                    return self.lr * warmed;
                }
                wall_seconds / budget
            }
            None => {
                let warmup = self.warmup_steps.min(self.steps / 10).max(1);
                if step < warmup {
                    return self.lr * (step + 1) as f64 / warmup as f64;
                }
                (step - warmup) as f64 / (self.steps - warmup).max(1) as f64
            }
        };
        let cosine = 0.5 * (1.0 + (std::f64::consts::PI * progress.min(1.0)).cos());
        self.lr * (self.min_lr_ratio + (1.0 - self.min_lr_ratio) * cosine)
    }

    /// Whether a run that has taken `step` steps in `wall_seconds` has reached its end.
    pub fn finished(&self, step: usize, wall_seconds: f64) -> bool {
        match self.time_budget {
            Some(budget) => wall_seconds >= budget,
            None => step >= self.steps,
        }
    }

    /// Refuses settings that no run can use, wherever they came from (flags, the Train screen,
    /// a checkpoint's saved settings). The model's shape is checked by `ModelConfig::validate`.
    pub fn validate(&self) -> Result<()> {
        ensure!((1..=MAX_BATCH).contains(&self.batch), "--batch must be between 1 and {MAX_BATCH}");
        ensure!(self.steps <= MAX_STEPS, "--steps must be at most {MAX_STEPS}");
        ensure!(self.steps > 0 || self.time_budget.is_some(), "--steps must be at least 1");
        ensure!(self.lr > 0.0 && self.lr.is_finite(), "--lr must be a positive number");
        ensure!(self.muon_lr.is_none_or(|m| m > 0.0 && m.is_finite()), "--muon-lr must be a positive number, or 0 to train every weight with AdamW");
        ensure!((0.0..=1.0).contains(&self.min_lr_ratio), "--min-lr-ratio must be between 0 and 1");
        ensure!(self.weight_decay >= 0.0 && self.weight_decay.is_finite(), "--weight-decay must be 0 or more");
        ensure!(self.grad_clip > 0.0 && self.grad_clip.is_finite(), "the gradient clip must be a positive number");
        ensure!((1..=MAX_EVAL_WINDOWS).contains(&self.eval_windows), "eval_windows must be between 1 and {MAX_EVAL_WINDOWS}");
        Ok(())
    }

    /// The run's length as a person would say it: "6500 steps" or "3h 0m".
    pub fn length(&self) -> String {
        match self.time_budget {
            Some(budget) => format_duration(budget),
            None => format!("{} steps", self.steps),
        }
    }
}

/// Parses a wall-time budget: a number of seconds, or hours, minutes and seconds written as
/// `3h`, `90m`, `1h30m`, `45s`.
pub fn parse_duration(text: &str) -> Result<f64, String> {
    let bad = || format!("cannot read {text:?} as a duration: write e.g. 3h, 90m, 1h30m or 600 (seconds)");
    let text = text.trim();
    if let Ok(seconds) = text.parse::<f64>() {
        return (seconds > 0.0 && seconds.is_finite()).then_some(seconds).ok_or_else(bad);
    }
    let (mut total, mut number) = (0.0, String::new());
    for c in text.chars() {
        let unit = match c {
            'h' => 3600.0,
            'm' => 60.0,
            's' => 1.0,
            c if c.is_ascii_digit() || c == '.' => {
                number.push(c);
                continue;
            }
            _ => return Err(bad()),
        };
        total += number.parse::<f64>().map_err(|_| bad())? * unit;
        number.clear();
    }
    (number.is_empty() && total > 0.0 && total.is_finite()).then_some(total).ok_or_else(bad)
}

/// `3h 5m`, `12m 30s` or `45s`.
pub fn format_duration(seconds: f64) -> String {
    let s = seconds.round() as u64;
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m {s}s"),
        (h, m, _) => format!("{h}h {m}m"),
    }
}


/// One setting a person sets: the flag `--{name}` of `train`, and (with a `step`) a row of the
/// Train screen.
pub struct Setting {
    /// The flag's name and the Train screen's label.
    pub name: &'static str,
    /// What its value looks like in the help: N, RATE, DURATION.
    pub value: &'static str,
    pub help: &'static str,
    /// The names an enum setting takes (the help lists them).
    pub choices: Option<fn() -> Vec<PossibleValue>>,
    /// It fixes the model's kind or shape: a resumed run refuses another value, and a
    /// fine-tuning run (`--init`) takes it from its model.
    pub shapes_model: bool,
    /// The setting this one replaces, so that both cannot be given.
    pub conflicts_with: Option<&'static str>,
    /// Reads the value's text into the settings; the error says what is allowed.
    pub set: fn(&mut TrainSettings, &str) -> Result<(), String>,
    pub show: fn(&TrainSettings) -> String,
    /// ←/→ on the Train screen (false: ←); None where the screen does not show it.
    pub step: Option<fn(&mut TrainSettings, bool)>,
}

impl Setting {
    const fn new(name: &'static str, value: &'static str, help: &'static str, set: fn(&mut TrainSettings, &str) -> Result<(), String>, show: fn(&TrainSettings) -> String) -> Self {
        Setting { name, value, help, choices: None, shapes_model: false, conflicts_with: None, set, show, step: None }
    }
    const fn shapes_model(self) -> Self {
        Setting { shapes_model: true, ..self }
    }
    const fn choices(self, choices: fn() -> Vec<PossibleValue>) -> Self {
        Setting { choices: Some(choices), ..self }
    }
    const fn conflicts_with(self, other: &'static str) -> Self {
        Setting { conflicts_with: Some(other), ..self }
    }
    const fn on_screen(self, step: fn(&mut TrainSettings, bool)) -> Self {
        Setting { step: Some(step), ..self }
    }
}

/// Every setting, in the order the help and the Train screen list them. `preset` comes first:
/// it sets every default, and the others are applied after it.
pub const SETTINGS: &[Setting] = &[
    Setting::new("preset", "PRESET", "Model size; the other settings default to its recipe [default: small; with --resume, the checkpoint's]", |s, t| {
        *s = TrainSettings::for_preset(choice(t)?);
        Ok(())
    }, |s| name_of(&s.preset)).shapes_model().choices(choices::<Preset>).on_screen(|s, up| {
        // A new size brings its recipe; the run keeps its length.
        let steps = s.steps;
        *s = TrainSettings::for_preset(cycle(&s.preset, up));
        s.steps = steps;
    }),
    Setting::new("kind", "KIND", "What the model learns [default: masked; with --resume, the checkpoint's]", |s, t| {
        s.kind = choice(t)?;
        Ok(())
    }, |s| name_of(&s.kind)).shapes_model().choices(choices::<ModelKind>),
    Setting::new("steps", "N", "Total optimizer steps", |s, t| {
        (s.steps, s.time_budget) = (number(t, 1..=MAX_STEPS)?, None);
        Ok(())
    }, |s| s.steps.to_string()).conflicts_with("time").on_screen(|s, up| s.steps = if up { (s.steps * 2).min(1_000_000) } else { (s.steps / 2).max(10) }),
    Setting::new("time", "DURATION", "Train for this much wall time instead of a step count (3h, 90m, 1h30m, 600): the learning rate decays with the clock, so the run ends on time on any machine. With --resume, the time already trained counts", |s, t| {
        // Not a cap: the saved settings say so rather than keep a stale count.
        (s.time_budget, s.steps) = (Some(parse_duration(t)?), 0);
        Ok(())
    }, |s| s.time_budget.map(format_duration).unwrap_or_default()),
    Setting::new("batch", "N", "Sequences per step", |s, t| set_number(&mut s.batch, t, 1..=MAX_BATCH), |s| s.batch.to_string())
        .on_screen(|s, up| s.batch = if up { (s.batch * 2).min(256) } else { (s.batch / 2).max(1) }),
    Setting::new("seq-len", "N", "Characters per training sequence (at most the preset's context)", |s, t| set_number(&mut s.seq_len, t, 2..), |s| s.seq_len.to_string()),
    Setting::new("lr", "RATE", "Peak learning rate of AdamW, which trains the embedding and head (every weight when --muon-lr is 0); linear warmup, then cosine decay to --min-lr-ratio × lr", |s, t| {
        s.lr = positive(t)?;
        Ok(())
    }, show_lr).on_screen(|s, up| {
        // Both optimisers move together, keeping the recipe's ratio.
        let lr = if up { (s.lr * 2.0).min(0.1) } else { (s.lr / 2.0).max(1e-6) };
        s.muon_lr = s.muon_lr.map(|muon| muon * lr / s.lr);
        s.lr = lr;
    }),
    Setting::new("muon-lr", "RATE", "Train the blocks' weight matrices with Muon at this peak learning rate (0: AdamW for every weight). Muon follows --lr's warmup and decay", |s, t| {
        let rate: f64 = number(t, 0.0..)?;
        s.muon_lr = (rate > 0.0).then_some(rate);
        Ok(())
    }, |s| s.muon_lr.map_or("0".into(), short_rate)),
    Setting::new("min-lr-ratio", "RATIO", "Where the cosine decay ends, as a fraction of --lr (1.0: constant after warmup)", |s, t| set_number(&mut s.min_lr_ratio, t, 0.0..=1.0), |s| s.min_lr_ratio.to_string()),
    Setting::new("warmup", "N", "Steps of linear warmup (at most a tenth of the run)", |s, t| set_number(&mut s.warmup_steps, t, 0..=MAX_STEPS), |s| s.warmup_steps.to_string()),
    Setting::new("weight-decay", "RATE", "AdamW's decoupled weight decay", |s, t| set_number(&mut s.weight_decay, t, 0.0..=1.0), |s| s.weight_decay.to_string()),
    Setting::new("seed", "N", "Seeds the weights, the batches and the masks", |s, t| set_number(&mut s.seed, t, 0..), |s| s.seed.to_string()),
    Setting::new("mask-schedule", "SCHEDULE", "How each sequence's mask rate is drawn", |s, t| {
        s.mask_schedule = choice(t)?;
        Ok(())
    }, |s| name_of(&s.mask_schedule)).choices(choices::<MaskSchedule>),
    Setting::new("timesteps", "N", "Add a learned timestep embedding with this many buckets (0: none)", |s, t| set_number(&mut s.timesteps, t, 0..), |s| s.timesteps.to_string()).shapes_model(),
    Setting::new("layers", "N", "Override the preset's layer count", |s, t| set_some(&mut s.n_layer, t), |s| show_some(s.n_layer)).shapes_model(),
    Setting::new("width", "N", "Override the preset's width (embedding size)", |s, t| set_some(&mut s.n_embd, t), |s| show_some(s.n_embd)).shapes_model(),
    Setting::new("heads", "N", "Override the preset's head count", |s, t| set_some(&mut s.n_head, t), |s| show_some(s.n_head)).shapes_model(),
    Setting::new("matmul", "MATMUL", "How the step multiplies matrices: `bf16` products with f32 sums on CPUs with AMX tiles (f32 elsewhere), or `f32` throughout [default: bf16; with --resume, the checkpoint's]", |s, t| {
        s.matmul = choice(t)?;
        Ok(())
    }, |s| name_of(&s.matmul)).choices(choices::<Matmul>),
    Setting::new("eval-every", "N", "Validate every N steps (0: only at the end)", |s, t| set_number(&mut s.eval_every, t, 0..=MAX_STEPS), |s| s.eval_every.to_string()),
    Setting::new("sample-every", "N", "Print a sample every N steps (0: only at the end)", |s, t| set_number(&mut s.sample_every, t, 0..=MAX_STEPS), |s| s.sample_every.to_string()),
    Setting::new("save-every", "N", "Save a checkpoint every N steps (and always at the end)", |s, t| set_number(&mut s.save_every, t, 0..=MAX_STEPS), |s| s.save_every.to_string()),
];

/// The setting called `name`.
pub fn setting(name: &str) -> &'static Setting {
    SETTINGS.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("no setting {name}"))
}

/// A number in `range` (NaN is in none); the error names the range.
fn number<T: FromStr + PartialOrd + Display>(text: &str, range: impl RangeBounds<T>) -> Result<T, String> {
    let value: T = text.trim().parse().map_err(|_| format!("cannot read {text:?} as a number"))?;
    if !range.contains(&value) {
        return Err(match (range.start_bound(), range.end_bound()) {
            (Bound::Included(min), Bound::Included(max)) => format!("must be between {min} and {max}"),
            (Bound::Included(min), _) => format!("must be at least {min}"),
            _ => "is out of range".to_string(),
        });
    }
    Ok(value)
}

fn set_number<T: FromStr + PartialOrd + Display>(field: &mut T, text: &str, range: impl RangeBounds<T>) -> Result<(), String> {
    *field = number(text, range)?;
    Ok(())
}

fn set_some(field: &mut Option<usize>, text: &str) -> Result<(), String> {
    *field = Some(number(text, 1..)?);
    Ok(())
}

fn show_some(value: Option<usize>) -> String {
    value.map_or(String::new(), |v| v.to_string())
}

fn positive(text: &str) -> Result<f64, String> {
    let value: f64 = number(text, 0.0..)?;
    if value == 0.0 {
        return Err("must be a positive number".into());
    }
    Ok(value)
}

fn choice<T: ValueEnum>(text: &str) -> Result<T, String> {
    T::from_str(text, true).map_err(|_| format!("is one of {}", choices::<T>().iter().map(|p| p.get_name().to_string()).collect::<Vec<_>>().join(", ")))
}

fn choices<T: ValueEnum>() -> Vec<PossibleValue> {
    T::value_variants().iter().filter_map(ValueEnum::to_possible_value).collect()
}

fn name_of<T: ValueEnum>(value: &T) -> String {
    value.to_possible_value().map_or(String::new(), |p| p.get_name().to_string())
}

/// The next (or previous) of an enum's values, round.
fn cycle<T: ValueEnum + PartialEq + Clone>(value: &T, up: bool) -> T {
    let all = T::value_variants();
    let (i, n) = (all.iter().position(|v| v == value).unwrap_or(0), all.len());
    all[if up { (i + 1) % n } else { (i + n - 1) % n }].clone()
}

/// Two significant digits, so halving 3e-3 shows 1.5e-3 rather than rounding to 2e-3.
fn short_rate(rate: f64) -> String {
    format!("{rate:.1e}").replace(".0e", "e")
}

/// The learning rate, with Muon's beside it when Muon trains the blocks.
fn show_lr(s: &TrainSettings) -> String {
    match s.muon_lr {
        Some(muon) => format!("{} (Muon {})", short_rate(s.lr), short_rate(muon)),
        None => short_rate(s.lr),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timed(budget: f64) -> TrainSettings {
        TrainSettings { time_budget: Some(budget), warmup_steps: 10, min_lr_ratio: 0.0, ..TrainSettings::for_preset(Preset::Small) }
    }

    #[test]
    fn a_timed_schedule_warms_up_by_step_and_decays_by_the_clock() {
        let s = timed(100.0);
        // Warmup counts steps, or a tenth of the budget if that comes first.
        assert!((s.lr_at(4, 1.0) - s.lr * 0.5).abs() < 1e-12);
        assert!((s.lr_at(1, 6.0) - s.lr * 0.6).abs() < 1e-12);
        let cosine_at_a_tenth = 0.5 * (1.0 + (0.1 * std::f64::consts::PI).cos());
        assert!((s.lr_at(2, 10.0) - s.lr * cosine_at_a_tenth).abs() < 1e-12);
        // After it, the clock alone sets the rate: the same at any step count.
        assert!((s.lr_at(10, 0.0) - s.lr).abs() < 1e-12);
        assert!((s.lr_at(50, 50.0) - s.lr * 0.5).abs() < 1e-12);
        assert_eq!(s.lr_at(50, 50.0), s.lr_at(5000, 50.0));
        assert!(s.lr_at(50, 75.0) < s.lr_at(50, 50.0));
        assert!(s.lr_at(50, 100.0).abs() < 1e-12 && s.lr_at(50, 250.0).abs() < 1e-12);
        assert!(!s.finished(1_000_000, 99.9) && s.finished(1, 100.0));
    }

    #[test]
    fn a_counted_schedule_ignores_the_clock() {
        let s = TrainSettings { steps: 110, warmup_steps: 10, min_lr_ratio: 0.0, ..TrainSettings::for_preset(Preset::Small) };
        assert_eq!(s.lr_at(60, 0.0), s.lr_at(60, 1e9));
        assert!((s.lr_at(60, 0.0) - s.lr * 0.5).abs() < 1e-12);
        assert!(!s.finished(109, 1e9) && s.finished(110, 0.0));
        assert_eq!(s.length(), "110 steps");
    }

    #[test]
    fn durations_read_and_print_as_people_write_them() {
        assert_eq!(parse_duration("3h"), Ok(10_800.0));
        assert_eq!(parse_duration("1h30m"), Ok(5_400.0));
        assert_eq!(parse_duration("90m"), Ok(5_400.0));
        assert_eq!(parse_duration("2m30s"), Ok(150.0));
        assert_eq!(parse_duration(" 600 "), Ok(600.0));
        assert_eq!(parse_duration("0.5h"), Ok(1_800.0));
        for bad in ["", "h", "3x", "3h20", "-5", "0", "0m", "1d", "nan"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} was accepted");
        }
        assert_eq!(format_duration(10_800.0), "3h 0m");
        assert_eq!(format_duration(750.0), "12m 30s");
        assert_eq!(format_duration(45.2), "45s");
    }

    /// Applies flags as `train` does on a new run: in the table's order.
    fn with(flags: &[(&str, &str)]) -> Result<TrainSettings, String> {
        let mut s = TrainSettings::for_preset(Preset::Small);
        for setting in SETTINGS {
            if let Some((_, text)) = flags.iter().find(|(n, _)| *n == setting.name) {
                (setting.set)(&mut s, text)?;
            }
        }
        Ok(s)
    }

    #[test]
    fn each_setting_reads_its_flag_into_its_field_and_shows_it_back() {
        let s = with(&[("batch", "24"), ("preset", "base"), ("muon-lr", "0"), ("layers", "3"), ("mask-schedule", "uniform"), ("time", "90m")]).unwrap();
        // The preset's recipe first, whatever the order given: its batch does not undo --batch.
        assert_eq!((s.preset, s.batch, s.muon_lr, s.n_layer, s.mask_schedule), (Preset::Base, 24, None, Some(3), MaskSchedule::Uniform));
        assert_eq!((s.time_budget, s.steps), (Some(5400.0), 0));
        assert_eq!((setting("batch").show)(&s), "24");
        assert_eq!((setting("preset").show)(&s), "base");
        assert_eq!((setting("time").show)(&s), "1h 30m");
        assert_eq!((setting("lr").show)(&with(&[("lr", "1.5e-3"), ("muon-lr", "0.01")]).unwrap()), "1.5e-3 (Muon 1e-2)");
        for name in ["steps", "seed", "warmup", "eval-every"] {
            let s = with(&[(name, "7")]).unwrap();
            assert_eq!((setting(name).show)(&s), "7", "--{name}");
        }
    }

    #[test]
    fn a_setting_refuses_what_no_run_can_use_and_says_what_it_takes() {
        for (name, text, says) in [
            ("batch", "0", "between 1 and 1024"),
            ("batch", "100000", "between 1 and 1024"),
            ("steps", "0", "between 1 and"),
            ("lr", "0", "positive"),
            ("lr", "NaN", "at least 0"),
            ("min-lr-ratio", "1.5", "between 0 and 1"),
            ("layers", "0", "at least 1"),
            ("preset", "huge", "tiny, small, base"),
            ("time", "soon", "duration"),
            ("seed", "-1", "as a number"),
        ] {
            let err = with(&[(name, text)]).unwrap_err();
            assert!(err.contains(says), "--{name} {text}: {err}");
        }
    }

    #[test]
    fn settings_from_anywhere_are_checked_before_a_run() {
        let ok = TrainSettings::for_preset(Preset::Tiny);
        assert!(ok.validate().is_ok());
        // A hostile saved file: a batch that would not fit in memory, a learning rate of NaN.
        for bad in [TrainSettings { batch: 1 << 30, ..ok.clone() }, TrainSettings { lr: f64::NAN, ..ok.clone() }, TrainSettings { steps: 0, ..ok.clone() }] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_train_screen_steps_its_settings_within_bounds() {
        let mut s = TrainSettings::for_preset(Preset::Tiny);
        let step = |s: &mut TrainSettings, name: &str, up: bool| (setting(name).step.expect("on the screen"))(s, up);
        step(&mut s, "lr", false);
        assert_eq!((s.lr, s.muon_lr), (1.5e-3, Some(1e-2)), "both optimisers move together");
        s.steps = 777;
        step(&mut s, "preset", true);
        assert_eq!((s.preset, s.steps, s.lr), (Preset::Small, 777, TrainSettings::for_preset(Preset::Small).lr), "a new size brings its recipe, the run keeps its length");
        for _ in 0..20 {
            step(&mut s, "batch", true);
        }
        assert_eq!(s.batch, 256);
        assert!(s.validate().is_ok());
    }
}
