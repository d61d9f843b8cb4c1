//! The training loop: the model kind's objective, warmup + cosine decay of the learning rate,
//! periodic validation, samples and checkpoints. It reports through `TrainEvent`s and
//! never prints, so the CLI progress bar and the TUI train screen can both drive it.

use crate::checkpoint::{self, CheckpointConfig, TrainingMeta};
use crate::data::{Corpus, DataSource, random_windows};
use crate::diffusion::edits;
use crate::diffusion::masking;
use crate::kind::ModelKind;
use crate::data::Batch;
use crate::fused::Matmul;
use crate::loss::{EvalResult, evaluate, losses};
use crate::diffusion::{DEFAULT_OVERLAP, DecodeOptions};
use crate::kind::ModelDenoiser;
use crate::model::{Model, ModelConfig};
use crate::vocab::{DEFAULT_MASK_CHAR, Vocab};
use anyhow::{Context, Result, ensure};
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

mod settings;
pub use settings::{MAX_BATCH, MAX_STEPS, SETTINGS, Setting, TrainSettings, format_duration, parse_duration, setting};

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
        let (mut ckpt, mut model) = init_model(init, &ad_device).with_context(|| format!("--init {init}"))?;
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

/// The config of the checkpoint a fine-tuning run starts from, its weights not read: what the
/// run's settings take from it.
pub fn init_config(init: &str) -> Result<CheckpointConfig> {
    if init == "shipped" {
        return crate::shipped::DIFFUSION.config();
    }
    checkpoint::read_config(Path::new(init))
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

/// Refuses a run that cannot go ahead: windows that do not fit the text, or a resumed run that
/// has already reached its end.
fn check_run(settings: &TrainSettings, ckpt: &CheckpointConfig, corpus: &Corpus, seq_len: usize, resume: bool, out: &Path) -> Result<()> {
    ensure!(seq_len >= 2, "--seq-len must be at least 2");
    ensure!(
        seq_len <= corpus.max_seq_len(),
        "the text is too short for --seq-len {seq_len}: its validation split has {} characters",
        corpus.val.len()
    );
    ensure!(
        !ckpt.model.edits || seq_len + edits::GAP_ROWS.slack() <= corpus.train.len(),
        "the text is too short to teach length states with --seq-len {seq_len}"
    );
    let (steps, wall_seconds) = (ckpt.training.steps, ckpt.training.wall_seconds);
    ensure!(
        !resume || !settings.finished(steps, wall_seconds),
        "the checkpoint in {} already has {steps} steps in {}; pass a larger --{} to train further",
        out.display(),
        format_duration(wall_seconds),
        if settings.time_budget.is_some() { "time" } else { "steps" }
    );
    Ok(())
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
    settings.validate()?;
    checkpoint::ensure_writable(out)?;
    let (mut ckpt, mut model, mut optim, corpus) = start(settings, data, out, resume, device)?;
    let model_config = ckpt.model.clone();
    let seq_len = settings.seq_len.min(model_config.context);
    check_run(settings, &ckpt, &corpus, seq_len, resume, out)?;
    let start_step = ckpt.training.steps;
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
