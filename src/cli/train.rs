//! `train`: train a model, or continue one with --resume, with a progress bar and log lines;
//! Ctrl-C stops after the step in progress and saves.

use crate::backend::Backend;
use crate::checkpoint;
use crate::data::DataSource;
use crate::fused::Matmul;
use crate::model::Preset;
use crate::train::{SETTINGS, TrainEvent, TrainOutcome, TrainSettings, format_duration, setting, train};
use anyhow::{Context, Result, anyhow, bail};
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
    /// The run's settings (`train::SETTINGS`: --preset, --steps, --lr, …).
    #[command(flatten)]
    pub settings: SettingFlags,
    /// Start from this checkpoint's weights (a directory, or `shipped`) with a fresh optimizer:
    /// fine-tuning. The model keeps its shape and vocabulary.
    #[arg(long, conflicts_with = "resume")]
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
    #[arg(long, value_enum, default_value_t)]
    pub device: Backend,
}

/// The flags of `train::SETTINGS` given on the command line: each one's name and text, in the
/// table's order (which applies `--preset` first).
#[derive(Debug, Clone, Default)]
pub struct SettingFlags(Vec<(&'static str, String)>);

impl SettingFlags {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| *n == name).map(|(_, text)| text.as_str())
    }
}

impl clap::FromArgMatches for SettingFlags {
    fn from_arg_matches(matches: &clap::ArgMatches) -> Result<Self, clap::Error> {
        Ok(SettingFlags(SETTINGS.iter().filter_map(|s| matches.get_one::<String>(s.name).map(|text| (s.name, text.clone()))).collect()))
    }

    fn update_from_arg_matches(&mut self, matches: &clap::ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl Args for SettingFlags {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        SETTINGS.iter().fold(cmd, |cmd, s| {
            let arg = clap::Arg::new(s.name).long(s.name).value_name(s.value).help(s.help);
            // A value is read as the run will read it, so a bad one is refused before anything loads.
            let arg = match s.choices {
                Some(choices) => arg.value_parser(clap::builder::PossibleValuesParser::new(choices())),
                None => arg.value_parser(move |text: &str| (s.set)(&mut TrainSettings::for_preset(Preset::Small), text).map(|()| text.to_string())),
            };
            let arg = s.conflicts_with.into_iter().fold(arg, |arg, other| arg.conflicts_with(other));
            // A fine-tuned model keeps the shape of the one it starts from.
            cmd.arg(if s.shapes_model { arg.conflicts_with("init") } else { arg })
        })
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

/// The run's settings: the saved ones when resuming (else the preset's recipe), with the
/// flags given now applied over them.
fn train_settings(args: &TrainArgs) -> Result<TrainSettings> {
    let flags = &args.settings;
    let mut s = match args.resume.then(|| checkpoint::read_config(&args.out)).transpose()?.and_then(|c| c.training.settings) {
        Some(saved) => serde_json::from_value(saved).context("the checkpoint's saved training settings are unreadable")?,
        None => {
            // A new run, or one saved before settings were: the preset's recipe, the one asked for.
            let mut s = TrainSettings::for_preset(Preset::Small);
            if let Some(preset) = flags.get("preset") {
                (setting("preset").set)(&mut s, preset).map_err(|e| anyhow!("--preset {preset}: {e}"))?;
            }
            s
        }
    };
    for (name, text) in &flags.0 {
        let setting = setting(name);
        let mut given = s.clone();
        (setting.set)(&mut given, text).map_err(|e| anyhow!("--{name} {text}: {e}"))?;
        // A resumed model keeps its kind and shape: a flag that would change them is refused,
        // not ignored (and the preset's recipe does not replace the saved settings).
        if args.resume && setting.shapes_model {
            let saved = (setting.show)(&s);
            if (setting.show)(&given) != saved {
                let saved = if saved.is_empty() { "the preset's".to_string() } else { saved };
                bail!("--{name} {text} does not match the checkpoint in {} ({saved}); leave it out to resume", args.out.display());
            }
            continue;
        }
        s = given;
    }
    if args.resume && args.edits && !s.edits {
        bail!("--edits cannot be added to a run being resumed; start one with --init {} --edits", args.out.display());
    }
    if !args.resume {
        s.edits = args.edits;
    }
    if let Some(init) = &args.init {
        // The settings describe the model the run starts from, so that they say what it trains.
        let ckpt = crate::train::init_config(init).with_context(|| format!("--init {init}: not a checkpoint directory (or `shipped`)"))?;
        let m = &ckpt.model;
        (s.kind, s.n_layer, s.n_embd, s.n_head, s.timesteps) = (m.kind, Some(m.n_layer), Some(m.n_embd), Some(m.n_head), m.n_timesteps);
        s.seq_len = s.seq_len.min(m.context);
        // A model that knows the length states goes on learning them.
        s.edits |= m.edits;
        s.init = Some(init.clone());
    }
    s.validate()?;
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
