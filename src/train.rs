//! The training loop: the model kind's objective, warmup + cosine decay of the learning rate,
//! periodic validation, samples and checkpoints. It reports through `TrainEvent`s and
//! never prints, so the CLI progress bar and the TUI train screen can both drive it.

use crate::checkpoint::{self, CheckpointConfig, TrainingMeta};
use crate::data::{Corpus, DataSource, random_windows};
use crate::diffusion::edits;
use crate::diffusion::masking::{self, MaskSchedule};
use crate::kind::ModelKind;
use crate::data::Batch;
use crate::fused::Matmul;
use crate::loss::{EvalResult, evaluate, losses};
use crate::diffusion::{DEFAULT_OVERLAP, DecodeOptions};
use crate::kind::ModelDenoiser;
use crate::model::{Model, ModelConfig, Preset};
use crate::optimizer::setup_optimizer;
use crate::vocab::{DEFAULT_MASK_CHAR, Vocab};
use anyhow::{Result, ensure};
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

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

#[derive(Debug, Clone, PartialEq)]
pub enum TrainEvent {
    /// `wall_seconds`: training time already spent (by the run resumed; 0 for a new one).
    Started { step: usize, total_steps: usize, params: usize, resumed: bool, wall_seconds: f64 },
    /// `wall_seconds`: the run's training time so far, over all its resumptions.
    Step { step: usize, loss: f32, tokens_per_sec: f64, wall_seconds: f64 },
    Eval { step: usize, val_loss: f32, val_bits_per_char: f32 },
    Sample { step: usize, text: String },
    Saved { step: usize, path: PathBuf },
    Finished { step: usize, interrupted: bool },
}

/// One optimiser step on `batch`: the model after it, and the batch's loss before it.
pub fn train_step(model: Model, optim: &mut ModuleOptimizer, batch: &Batch, lr: f64, matmul: Matmul, device: &Device) -> (Model, f32) {
    crate::fused::on_own_pool(|| {
        let _precision = matmul.apply();
        let (loss, _) = losses(&model, batch, device);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let model = optim.step(lr, model, grads);
        (model, loss.into_scalar::<f32>())
    })
}

/// A short unconditional sample from the current weights.
pub fn sample_text(model: &Model, vocab: &Vocab, length: usize, seed: u64, device: &Device) -> String {
    let denoiser = ModelDenoiser::new(model.clone(), device.clone());
    let options = DecodeOptions { seed, ..DecodeOptions::default() };
    let mut generation = crate::kind::generation(&denoiser, &[], length, DEFAULT_OVERLAP, options);
    generation.run(&denoiser, |_| {});
    vocab.decode(&generation.tokens(), DEFAULT_MASK_CHAR)
}

pub struct TrainOutcome {
    pub config: CheckpointConfig,
    pub interrupted: bool,
    pub last_eval: Option<EvalResult>,
}

/// Trains a model and writes checkpoints to `out`. With `resume`, continues from the optimizer
/// state and step count saved in `out` (the settings' `steps` may be raised to train longer).
/// Setting `stop` ends the run after the current step, with a checkpoint.
/// The run's checkpoint config, model, optimizer and text: the checkpoint in `out` (with its
/// optimizer state) when resuming, else a model of `settings`' shape, seeded by them.
fn start(settings: &TrainSettings, data: &DataSource, out: &Path, resume: bool, device: &Device) -> Result<(CheckpointConfig, Model, ModuleOptimizer, Corpus)> {
    let ad_device = device.clone().autodiff();
    if resume {
        let (ckpt, model, optim) = checkpoint::load_resumable(out, &ad_device, settings.optimizer())?;
        let corpus = data.load(Some(ckpt.vocab.clone()))?;
        return Ok((ckpt, model, optim, corpus));
    }
    if let Some(init) = &settings.init {
        let (mut ckpt, mut model) = init_model(init, &ad_device)?;
        if settings.edits && !ckpt.model.edits {
            ensure!(ckpt.model.kind == ModelKind::Masked, "--edits needs a masked-diffusion model; {init} is {}", ckpt.model.kind);
            model = crate::diffusion::edits::add_states(model);
            ckpt.model = model.config.clone();
        }
        ckpt.training = TrainingMeta::default();
        let corpus = data.load(Some(ckpt.vocab.clone()))?;
        return Ok((ckpt, model, settings.optimizer(), corpus));
    }
    let corpus = data.load(None)?;
    let config = settings.model_config(corpus.vocab.size());
    config.validate().map_err(anyhow::Error::msg)?;
    device.seed(settings.seed);
    let model = config.init(&ad_device);
    Ok((CheckpointConfig::new(config, corpus.vocab.clone()), model, settings.optimizer(), corpus))
}

/// The checkpoint a fine-tuning run starts from: a directory, or `shipped`.
pub fn init_model(init: &str, device: &Device) -> Result<(CheckpointConfig, Model)> {
    if init == "shipped" {
        return crate::shipped::load(device);
    }
    checkpoint::load(Path::new(init), device)
}

/// One training batch of `seq_len`-character rows: the kind's objective, with gap rows for a
/// model learning the length states.
fn training_batch(config: &ModelConfig, settings: &TrainSettings, corpus: &Corpus, seq_len: usize, rng: &mut StdRng) -> Batch {
    if !config.edits {
        let windows = random_windows(&corpus.train, settings.batch, seq_len, rng);
        return config.kind.batch(&windows, settings.mask_schedule, config.vocab_size, rng);
    }
    let windows = random_windows(&corpus.train, settings.batch, seq_len + edits::GAP_ROWS.slack(), rng);
    let rates = masking::draw_rates(settings.batch, settings.mask_schedule, rng);
    let is_letter = |id: u32| corpus.vocab.char(id).is_some_and(char::is_alphabetic);
    edits::training_batch(&windows, seq_len, &rates, config.vocab_ids(), &is_letter, rng)
}

pub fn train(
    settings: &TrainSettings,
    data: &DataSource,
    out: &Path,
    device: &Device,
    resume: bool,
    stop: &AtomicBool,
    on_event: &mut dyn FnMut(TrainEvent),
) -> Result<TrainOutcome> {
    let ad_device = device.clone().autodiff();
    checkpoint::ensure_writable(out)?;
    let (mut ckpt, mut model, mut optim, corpus) = start(settings, data, out, resume, device)?;
    let model_config = ckpt.model.clone();
    let seq_len = settings.seq_len.min(model_config.context);
    ensure!(seq_len >= 2, "--seq-len must be at least 2");
    ensure!(
        seq_len <= corpus.max_seq_len(),
        "the text is too short for --seq-len {seq_len}: its validation split has {} characters",
        corpus.val.len()
    );
    ensure!(
        !model_config.edits || seq_len + edits::GAP_ROWS.slack() <= corpus.train.len(),
        "the text is too short to teach length states with --seq-len {seq_len}"
    );
    ensure!(settings.batch > 0, "--batch must be positive");
    let start_step = ckpt.training.steps;
    ensure!(
        !resume || !settings.finished(start_step, ckpt.training.wall_seconds),
        "the checkpoint in {} already has {start_step} steps in {}; pass a larger --{} to train further",
        out.display(),
        format_duration(ckpt.training.wall_seconds),
        if settings.time_budget.is_some() { "time" } else { "steps" }
    );
    let mut meta = TrainingMeta {
        data_sha256: Some(corpus.sha256.clone()),
        data_file: Some(data.to_string()),
        settings: Some(serde_json::to_value(settings)?),
        ..ckpt.training.clone()
    };
    on_event(TrainEvent::Started {
        step: start_step,
        total_steps: settings.steps,
        params: model_config.num_params(),
        resumed: resume,
        wall_seconds: meta.wall_seconds,
    });

    // Seeding by start step makes a resumed run draw fresh batches rather than replaying old ones.
    let mut rng = StdRng::seed_from_u64(settings.seed ^ (start_step as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let tokens_per_step = (settings.batch * seq_len) as u64;
    let mut last_eval = None;
    let mut interrupted = false;
    let mut step = start_step;
    let run_start = Instant::now();
    let wall_before = meta.wall_seconds;

    let save = |model: &Model, optim: &ModuleOptimizer, meta: &TrainingMeta, ckpt: &mut CheckpointConfig| -> Result<()> {
        ckpt.training = meta.clone();
        checkpoint::save(out, ckpt, &model.valid(), Some(optim))
    };

    while !settings.finished(step, meta.wall_seconds) {
        if stop.load(Ordering::Relaxed) {
            interrupted = true;
            break;
        }
        let t0 = Instant::now();
        let batch = training_batch(&model_config, settings, &corpus, seq_len, &mut rng);
        let lr = settings.lr_at(step, meta.wall_seconds);
        let loss;
        (model, loss) = train_step(model, &mut optim, &batch, lr, settings.matmul, &ad_device);
        step += 1;
        meta.steps = step;
        meta.tokens_seen += tokens_per_step;
        meta.wall_seconds = wall_before + run_start.elapsed().as_secs_f64();
        let tokens_per_sec = tokens_per_step as f64 / t0.elapsed().as_secs_f64();
        on_event(TrainEvent::Step { step, loss, tokens_per_sec, wall_seconds: meta.wall_seconds });
        ensure!(loss.is_finite(), "loss became {loss} at step {step}; try a lower --lr");

        let last = settings.finished(step, meta.wall_seconds);
        if last || (settings.eval_every > 0 && step % settings.eval_every == 0) {
            let r = evaluate(&model, &corpus.val, settings.eval_windows, seq_len, device);
            meta.val_loss = Some(r.loss);
            meta.val_bits_per_char = Some(r.bits_per_char);
            last_eval = Some(r);
            on_event(TrainEvent::Eval { step, val_loss: r.loss, val_bits_per_char: r.bits_per_char });
        }
        if last || (settings.sample_every > 0 && step % settings.sample_every == 0) {
            let text = sample_text(&model, &corpus.vocab, seq_len.min(200), step as u64, device);
            on_event(TrainEvent::Sample { step, text });
        }
        if !last && settings.save_every > 0 && step % settings.save_every == 0 {
            save(&model, &optim, &meta, &mut ckpt)?;
            on_event(TrainEvent::Saved { step, path: out.to_path_buf() });
        }
    }
    save(&model, &optim, &meta, &mut ckpt)?;
    on_event(TrainEvent::Saved { step, path: out.to_path_buf() });
    on_event(TrainEvent::Finished { step, interrupted });
    Ok(TrainOutcome { config: ckpt, interrupted, last_eval })
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
}
