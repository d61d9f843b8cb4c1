//! `train`: train a model, or continue one with --resume, with a progress bar and log lines;
//! Ctrl-C stops after the step in progress and saves.

use crate::backend::Backend;
use crate::checkpoint;
use crate::data::DataSource;
use crate::diffusion::masking::MaskSchedule;
use crate::fused::Matmul;
use crate::kind::ModelKind;
use crate::model::Preset;
use crate::train::{TrainEvent, TrainOutcome, TrainSettings, format_duration, parse_duration, train};
use anyhow::{Context, Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// UTF-8 text file to train on (the last 10% is held out for validation) [default: the
    /// built-in Tiny Shakespeare; with --resume, the text the checkpoint was trained on].
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// What the model learns: `masked` diffusion, or `ar` (autoregressive: each character from
    /// those before it) [default: masked; with --resume, the checkpoint's].
    #[arg(long, value_enum)]
    pub kind: Option<ModelKind>,
    /// Model size [default: small; with --resume, the checkpoint's].
    #[arg(long, value_enum)]
    pub preset: Option<Preset>,
    /// Total optimizer steps.
    #[arg(long, conflicts_with = "time")]
    pub steps: Option<usize>,
    /// Train for this much wall time instead of a step count (3h, 90m, 1h30m, 600): the learning
    /// rate decays with the clock, so the run ends on time on any machine. With --resume, the
    /// time already trained counts.
    #[arg(long, value_parser = parse_duration)]
    pub time: Option<f64>,
    /// Sequences per step.
    #[arg(long)]
    pub batch: Option<usize>,
    /// Characters per training sequence (at most the preset's context).
    #[arg(long)]
    pub seq_len: Option<usize>,
    /// Peak learning rate of AdamW, which trains the embedding and head (every weight when
    /// --muon-lr is 0); linear warmup, then cosine decay to --min-lr-ratio × lr.
    #[arg(long)]
    pub lr: Option<f64>,
    /// Train the blocks' weight matrices with Muon at this peak learning rate (0: AdamW for
    /// every weight). Muon follows --lr's warmup and decay.
    #[arg(long)]
    pub muon_lr: Option<f64>,
    /// Where the cosine decay ends, as a fraction of --lr (1.0: constant after warmup).
    #[arg(long)]
    pub min_lr_ratio: Option<f64>,
    #[arg(long)]
    pub warmup: Option<usize>,
    #[arg(long)]
    pub weight_decay: Option<f64>,
    #[arg(long)]
    pub seed: Option<u64>,
    /// How each sequence's mask rate is drawn.
    #[arg(long, value_enum)]
    pub mask_schedule: Option<MaskSchedule>,
    /// Add a learned timestep embedding with this many buckets (0: none).
    #[arg(long)]
    pub timesteps: Option<usize>,
    /// Override the preset's layer count.
    #[arg(long)]
    pub layers: Option<usize>,
    /// Override the preset's width (embedding size).
    #[arg(long)]
    pub width: Option<usize>,
    /// Override the preset's head count.
    #[arg(long)]
    pub heads: Option<usize>,
    /// How the step multiplies matrices: `bf16` products with f32 sums on CPUs with AMX tiles
    /// (f32 elsewhere), or `f32` throughout [default: bf16; with --resume, the checkpoint's].
    #[arg(long, value_enum)]
    pub matmul: Option<Matmul>,
    /// Start from this checkpoint's weights (a directory, or `shipped`) with a fresh optimizer:
    /// fine-tuning. The model keeps its shape and vocabulary.
    #[arg(long, conflicts_with_all = ["resume", "preset", "kind", "layers", "width", "heads", "timesteps"])]
    pub init: Option<String>,
    /// Teach the model the length states (expand, delete) with which an elastic gap `_*` finds
    /// its length while it is decoded; an --init model without them gets them.
    #[arg(long)]
    pub edits: bool,
    /// Checkpoint directory.
    #[arg(long, default_value = "checkpoints/run")]
    pub out: PathBuf,
    /// Continue from the checkpoint in --out (its optimizer state and step count).
    #[arg(long)]
    pub resume: bool,
    /// Validate every N steps (0: only at the end).
    #[arg(long)]
    pub eval_every: Option<usize>,
    /// Print a sample every N steps (0: only at the end).
    #[arg(long)]
    pub sample_every: Option<usize>,
    /// Save a checkpoint every N steps (and always at the end).
    #[arg(long)]
    pub save_every: Option<usize>,
    #[arg(long, value_enum, default_value_t)]
    pub device: Backend,
}

fn train_settings(args: &TrainArgs) -> Result<TrainSettings> {
    // Resuming keeps the saved settings; flags given now override them.
    let preset = args.preset.unwrap_or(Preset::Small);
    let mut s = if args.resume {
        let saved = checkpoint::read_config(&args.out)?.training.settings;
        match saved {
            Some(v) => serde_json::from_value(v).context("the checkpoint's saved training settings are unreadable")?,
            None => TrainSettings::for_preset(preset),
        }
    } else {
        TrainSettings::for_preset(preset)
    };
    // A resumed model keeps its shape: flags that would change it are refused, not ignored.
    if args.resume {
        if let Some(p) = args.preset.filter(|&p| p != s.preset) {
            bail!("--preset {p:?} does not match the checkpoint in {} ({:?}); leave it out to resume", args.out.display(), s.preset);
        }
        if let Some(k) = args.kind.filter(|&k| k != s.kind) {
            bail!("--kind {k:?} does not match the checkpoint in {} ({:?}); leave it out to resume", args.out.display(), s.kind);
        }
        if args.layers.is_some() || args.width.is_some() || args.heads.is_some() {
            bail!("--layers, --width and --heads cannot change a model being resumed; leave them out");
        }
    }
    macro_rules! apply {
        ($($field:ident = $arg:expr),*) => { $(if let Some(v) = $arg { s.$field = v; })* };
    }
    apply!(steps = args.steps, batch = args.batch, seq_len = args.seq_len, lr = args.lr,
        warmup_steps = args.warmup, weight_decay = args.weight_decay, seed = args.seed,
        mask_schedule = args.mask_schedule, timesteps = args.timesteps, eval_every = args.eval_every,
        sample_every = args.sample_every, save_every = args.save_every, min_lr_ratio = args.min_lr_ratio,
        matmul = args.matmul);
    // The run's length is a step count or a time budget: the one given now replaces the other.
    if args.steps.is_some() {
        s.time_budget = None;
    }
    if args.time.is_some() {
        s.time_budget = args.time;
        s.steps = 0; // not a cap: the saved settings say so rather than keep a stale count
    }
    if !args.resume {
        s.kind = args.kind.unwrap_or_default();
        s.n_layer = args.layers;
        s.n_embd = args.width;
        s.n_head = args.heads;
        s.edits = args.edits;
    } else if args.edits && !s.edits {
        bail!("--edits cannot be added to a run being resumed; start one with --init {} --edits", args.out.display());
    }
    if let Some(init) = &args.init {
        // The settings describe the model the run starts from, so that they say what it trains.
        let (ckpt, _) = crate::train::init_model(init, &burn::prelude::Device::flex())
            .with_context(|| format!("--init {init}: not a checkpoint directory (or `shipped`)"))?;
        let m = &ckpt.model;
        (s.kind, s.n_layer, s.n_embd, s.n_head, s.timesteps) = (m.kind, Some(m.n_layer), Some(m.n_embd), Some(m.n_head), m.n_timesteps);
        s.seq_len = s.seq_len.min(m.context);
        // A model that knows the length states goes on learning them.
        s.edits |= m.edits;
        s.init = Some(init.clone());
    }
    if let Some(muon_lr) = args.muon_lr {
        if !(muon_lr >= 0.0 && muon_lr.is_finite()) {
            bail!("--muon-lr must be a positive number, or 0 to train every weight with AdamW");
        }
        s.muon_lr = (muon_lr > 0.0).then_some(muon_lr);
    }
    if !(0.0..=1.0).contains(&s.min_lr_ratio) {
        bail!("--min-lr-ratio must be between 0 and 1");
    }
    if !(s.lr > 0.0 && s.lr.is_finite()) {
        bail!("--lr must be a positive number");
    }
    if s.steps == 0 && s.time_budget.is_none() {
        bail!("--steps must be at least 1");
    }
    Ok(s)
}

/// `--data`, or else what a resumed checkpoint was trained on, or else the built-in corpus.
fn train_data(args: &TrainArgs) -> Result<DataSource> {
    if args.data.is_some() || !args.resume {
        return Ok(DataSource::from_arg(args.data.as_deref()));
    }
    Ok(DataSource::from_recorded(checkpoint::read_config(&args.out)?.training.data_file.as_deref()))
}

pub fn run_train(args: TrainArgs) -> Result<ExitCode> {
    let settings = train_settings(&args)?;
    let data = train_data(&args)?;
    let device = args.device.device()?;
    let stop = stop_on_ctrl_c()?;
    // A timed run's bar counts seconds of its budget, a counted one steps.
    let timed = settings.time_budget.is_some();
    let bar_position = |step: usize, wall_seconds: f64| if timed { wall_seconds.round() as u64 } else { step as u64 };
    let bar = progress_bar(&settings);
    // A hidden bar (stderr is not a terminal) drops println, so log lines go straight to stderr.
    let say = |line: String| if bar.is_hidden() { eprintln!("{line}") } else { bar.println(line) };
    let mut last_val = String::new();
    let mut on_event = |event: TrainEvent| match event {
        TrainEvent::Started { step, params, resumed, wall_seconds, .. } => {
            bar.set_position(bar_position(step, wall_seconds));
            let what = if resumed { "resuming" } else { "training" };
            // The shape does not depend on the vocabulary: any size shows the layers and width.
            let shape = settings.model_config(1);
            say(format!(
                "{what} {:?} model, {} layers × {} ({:.2}M params), on {} for {}, batch {} × {}, device {}{}",
                settings.preset,
                shape.n_layer,
                shape.n_embd,
                params as f64 / 1e6,
                data,
                match (resumed, settings.time_budget) {
                    (true, Some(_)) => format!("{} ({} trained)", settings.length(), format_duration(wall_seconds)),
                    _ => settings.length(),
                },
                settings.batch,
                settings.seq_len,
                args.device.name(),
                // Only the CPU backend's fused layers use the tiles.
                if settings.matmul.on_this_cpu() == Matmul::Bf16 && args.device == Backend::Flex {
                    ", bf16 matmuls on AMX tiles"
                } else {
                    ""
                }
            ));
        }
        TrainEvent::Step { step, loss, tokens_per_sec, wall_seconds } => {
            bar.set_position(bar_position(step, wall_seconds));
            let at = if timed { format!("step {step} · ") } else { String::new() };
            bar.set_message(format!("{at}loss {loss:.3} · {:.0} tok/s{last_val}", tokens_per_sec));
        }
        TrainEvent::Eval { step, val_loss, val_bits_per_char } => {
            last_val = format!(" · val {val_loss:.3} ({val_bits_per_char:.2} bpc)");
            say(format!("step {step}: val loss {val_loss:.4} nats, {val_bits_per_char:.3} bits/char"));
        }
        TrainEvent::Sample { step, text } => {
            say(format!("--- sample at step {step} ---\n{text}\n---"));
        }
        TrainEvent::Saved { step, path } => say(format!("step {step}: saved checkpoint to {}", path.display())),
        TrainEvent::Finished { .. } => bar.finish_and_clear(),
    };
    let outcome = train(&settings, &data, &args.out, &device, args.resume, &stop, &mut on_event)?;
    Ok(report(&outcome, &args.out))
}

/// A flag the first Ctrl-C raises (training stops after its step and saves); a second one exits
/// at once.
fn stop_on_ctrl_c() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let raised = stop.clone();
    ctrlc::set_handler(move || {
        if raised.swap(true, Ordering::SeqCst) {
            eprintln!("\ninterrupted again: exiting without saving");
            std::process::exit(130);
        }
        eprintln!("\nstopping after this step and saving (Ctrl-C again to quit at once)…");
    })
    .context("cannot install the Ctrl-C handler")?;
    Ok(stop)
}

/// A bar on stderr: seconds of the budget for a timed run, steps for a counted one.
fn progress_bar(settings: &TrainSettings) -> ProgressBar {
    let timed = settings.time_budget.is_some();
    let bar = ProgressBar::new(settings.time_budget.map_or(settings.steps as u64, |b| b.round() as u64));
    bar.set_style(
        ProgressStyle::with_template(if timed {
            "{spinner} [{elapsed_precise}] {wide_bar} {percent}% {msg} ETA {eta}"
        } else {
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} {msg} ETA {eta}"
        })
        .expect("valid template"),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// What a run ended with, on stderr, and the exit code: 130 when interrupted (with how to go on).
fn report(outcome: &TrainOutcome, out: &std::path::Path) -> ExitCode {
    let steps = outcome.config.training.steps;
    if outcome.interrupted {
        eprintln!(
            "interrupted at step {steps}; checkpoint saved in {}. Continue with:\n  tiny-diffusion train --out {} --resume",
            out.display(),
            out.display()
        );
        return ExitCode::from(130);
    }
    eprintln!("done: {steps} steps in {}; checkpoint in {}", format_duration(outcome.config.training.wall_seconds), out.display());
    if let Some(r) = &outcome.last_eval {
        eprintln!("validation: {} {:.4} nats, {:.3} bits/char", outcome.config.model.kind.loss_name(), r.loss, r.bits_per_char);
    }
    ExitCode::SUCCESS
}
