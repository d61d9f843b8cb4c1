//! Command-line interface: parses arguments, then calls the library.

use crate::backend::Backend;
use crate::checkpoint;
use crate::data::DataSource;
use crate::diffusion::masking::MaskSchedule;
use crate::diffusion::DecodeOptions;
use crate::kind::ModelDenoiser;
use crate::kind::ModelKind;
use crate::model::Preset;
use crate::train::{TrainEvent, TrainSettings, train};
use crate::vocab::{DEFAULT_MASK_CHAR, MASK_ID};
use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

mod bench;
pub mod compare;
mod interop;
mod life;
pub use bench::{BenchArgs, BenchCommand, BenchDecodeArgs};
pub use compare::CompareArgs;
pub use interop::{ExportArgs, ImportArgs};
pub use life::LifeArgs;

#[derive(Parser, Debug)]
#[command(name = "tiny-diffusion", version, about = "Train a character-level text-diffusion model and watch it denoise")]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// With no command, opens the terminal UI.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The terminal UI's options, so `tiny-diffusion --checkpoint DIR` works without `tui`.
    #[command(flatten)]
    pub tui: TuiArgs,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Watch a model denoise, infill gaps and train, in the terminal (the default).
    Tui(TuiArgs),
    /// Train a model (or continue one with --resume).
    Train(TrainArgs),
    /// Generate or infill text with a trained checkpoint.
    Generate(GenerateArgs),
    /// Validation loss, bits per character and the quality of generated text.
    Eval(EvalArgs),
    /// Race models of different kinds on the same prompt and seed (masked diffusion against
    /// autoregressive by default), with a scoreboard.
    Compare(CompareArgs),
    /// The game of life on a grid of the model's text: live cells are masked and written again.
    Life(LifeArgs),
    /// Measure denoising, generation, training and rendering speed.
    Bench(BenchArgs),
    /// Convert the Python tiny-diffusion's PyTorch weights into a checkpoint directory.
    Import(ImportArgs),
    /// Write a checkpoint as safetensors with the Python tiny-diffusion's key names.
    Export(ExportArgs),
}

#[derive(Args, Debug, Default)]
pub struct TuiArgs {
    /// Checkpoint directory (or PyTorch .pt file) to watch [default: the shipped Shakespeare model].
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Record the whole session, as drawn, to FILE.cast (asciicast v2) or FILE.gif; `R` in the UI
    /// starts and stops a recording to a file named by the time.
    #[arg(long)]
    pub record: Option<PathBuf>,
    #[command(flatten)]
    pub look: LookArgs,
    #[arg(long, value_enum, default_value = "flex")]
    pub device: Backend,
}

/// How cells are coloured, on screen and in recordings.
#[derive(Args, Debug, Default, Clone, Copy)]
pub struct LookArgs {
    /// Colour committed characters by the model's confidence, or by the step that revealed them.
    #[arg(long, value_enum, default_value_t)]
    pub view: crate::tui::watch_state::View,
    /// The colour scale: `viridis` is colour-blind safe and reads in grayscale.
    #[arg(long, value_enum, default_value_t)]
    pub palette: crate::tui::theme::Palette,
}

/// Which autoregressive model judges text (its NLL of the text, `judge.rs`).
#[derive(Args, Debug, Default, Clone)]
pub struct JudgeArgs {
    /// The autoregressive checkpoint (directory or PyTorch file) whose likelihood judges text
    /// [default: the shipped autoregressive model].
    #[arg(long)]
    pub judge: Option<PathBuf>,
}

impl JudgeArgs {
    pub fn load(&self, device: &burn::prelude::Device) -> Result<crate::judge::Judge> {
        crate::judge::Judge::load(self.judge.as_deref(), device)
    }
}

impl LookArgs {
    pub fn look(self) -> crate::tui::record::Look {
        crate::tui::record::Look { view: self.view, palette: self.palette }
    }
}

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
    #[arg(long)]
    pub steps: Option<usize>,
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
    #[arg(long, value_enum, default_value = "flex")]
    pub device: Backend,
}

#[derive(Args, Debug)]
pub struct GenerateArgs {
    /// Checkpoint directory (from `train` or `import`) or PyTorch .pt file [default: the shipped Shakespeare model].
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Text to start from; each mask character (default `_`) is a gap to fill, and `_*` a gap
    /// whose length the model chooses (up to --max-gap).
    #[arg(long, default_value = "")]
    pub prompt: String,
    /// Longest fill of an elastic gap (`_*`).
    #[arg(long, default_value_t = crate::elastic::DEFAULT_MAX_GAP)]
    pub max_gap: usize,
    #[command(flatten)]
    pub judge: JudgeArgs,
    /// Total characters of output, prompt included [default: the prompt's length if it has
    /// gaps, else the model's context].
    #[arg(long)]
    pub length: Option<usize>,
    #[command(flatten)]
    pub decode: DecodeOptions,
    /// Characters of the previous block that condition the next one.
    #[arg(long, default_value_t = crate::diffusion::DEFAULT_OVERLAP)]
    pub overlap: usize,
    /// Character that marks a gap in --prompt.
    #[arg(long, default_value_t = DEFAULT_MASK_CHAR)]
    pub mask_char: char,
    /// Write every denoising step as a JSON line to FILE.
    #[arg(long)]
    pub trace: Option<PathBuf>,
    /// Record the denoising, coloured as the Watch screen: FILE.cast (asciicast v2, for asciinema
    /// or agg) or FILE.gif (an animated GIF).
    #[arg(long)]
    pub record: Option<PathBuf>,
    #[command(flatten)]
    pub look: LookArgs,
    #[arg(long, value_enum, default_value = "flex")]
    pub device: Backend,
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Checkpoint directory or PyTorch .pt file [default: the shipped Shakespeare model].
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// The text the checkpoint was trained on (its last 10% is the validation split)
    /// [default: the built-in Tiny Shakespeare].
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Decoding of the generated text (its seeds are --seed, --seed + 1, …).
    #[command(flatten)]
    pub decode: DecodeOptions,
    #[command(flatten)]
    pub judge: JudgeArgs,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    #[arg(long, value_enum, default_value = "flex")]
    pub device: Backend,
}

pub fn run(cli: Cli) -> ExitCode {
    let result = match cli.command.unwrap_or(Command::Tui(cli.tui)) {
        Command::Tui(args) => run_tui(args).map(|()| ExitCode::SUCCESS),
        Command::Train(args) => run_train(args),
        Command::Generate(args) => run_generate(args).map(|()| ExitCode::SUCCESS),
        Command::Eval(args) => run_eval(args).map(|()| ExitCode::SUCCESS),
        Command::Compare(args) => compare::run_compare(args).map(|()| ExitCode::SUCCESS),
        Command::Life(args) => life::run_life(args).map(|()| ExitCode::SUCCESS),
        Command::Bench(args) => bench::run_bench(args).map(|()| ExitCode::SUCCESS),
        Command::Import(args) => interop::run_import(args).map(|()| ExitCode::SUCCESS),
        Command::Export(args) => interop::run_export(args).map(|()| ExitCode::SUCCESS),
    };
    result.unwrap_or_else(|e| {
        eprintln!("error: {e:#}");
        ExitCode::FAILURE
    })
}

fn run_tui(args: TuiArgs) -> Result<()> {
    let device = args.device.device()?;
    let (config, model, name) = crate::shipped::load_or_shipped(args.checkpoint.as_deref(), &device)?;
    let session = crate::tui::Session {
        record: args.record.as_deref(),
        look: args.look.look(),
        race: crate::tui::compare::RaceSource::Load { watched: args.checkpoint.clone() },
        life_checkpoint: args.checkpoint.clone(),
        ..crate::tui::Session::on(crate::tui::shared::Screen::Watch)
    };
    crate::tui::run(crate::tui::LoadedModel { config, model, name }, device, args.device.name(), session)
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
        sample_every = args.sample_every, save_every = args.save_every, min_lr_ratio = args.min_lr_ratio);
    if !args.resume {
        s.kind = args.kind.unwrap_or_default();
        s.n_layer = args.layers;
        s.n_embd = args.width;
        s.n_head = args.heads;
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
    if s.steps == 0 {
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

fn run_train(args: TrainArgs) -> Result<ExitCode> {
    let settings = train_settings(&args)?;
    let data = train_data(&args)?;
    let device = args.device.device()?;
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || {
            if stop.swap(true, Ordering::SeqCst) {
                eprintln!("\ninterrupted again: exiting without saving");
                std::process::exit(130);
            }
            eprintln!("\nstopping after this step and saving (Ctrl-C again to quit at once)…");
        })
        .context("cannot install the Ctrl-C handler")?;
    }

    let bar = ProgressBar::new(settings.steps as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} {msg} ETA {eta}")
            .expect("valid template"),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    // A hidden bar (stderr is not a terminal) drops println, so log lines go straight to stderr.
    let say = |line: String| if bar.is_hidden() { eprintln!("{line}") } else { bar.println(line) };
    let mut last_val = String::new();
    let mut on_event = |event: TrainEvent| match event {
        TrainEvent::Started { step, total_steps, params, resumed } => {
            bar.set_position(step as u64);
            let what = if resumed { "resuming" } else { "training" };
            say(format!(
                "{what} {:?} model ({:.2}M params) on {} for {total_steps} steps, batch {} × {}, device {}",
                settings.preset,
                params as f64 / 1e6,
                data,
                settings.batch,
                settings.seq_len,
                args.device.name()
            ));
        }
        TrainEvent::Step { step, loss, tokens_per_sec } => {
            bar.set_position(step as u64);
            bar.set_message(format!("loss {loss:.3} · {:.0} tok/s{last_val}", tokens_per_sec));
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
    let steps = outcome.config.training.steps;
    if outcome.interrupted {
        eprintln!(
            "interrupted at step {steps}; checkpoint saved in {}. Continue with:\n  tiny-diffusion train --out {} --resume",
            args.out.display(),
            args.out.display()
        );
        return Ok(ExitCode::from(130));
    }
    eprintln!("done: {steps} steps; checkpoint in {}", args.out.display());
    if let Some(r) = outcome.last_eval {
        eprintln!("validation: {} {:.4} nats, {:.3} bits/char", outcome.config.model.kind.loss_name(), r.loss, r.bits_per_char);
    }
    Ok(ExitCode::SUCCESS)
}

/// One line of `--trace`: the frame plus its window as text, for readers without the vocabulary.
#[derive(serde::Serialize)]
struct TraceLine<'a> {
    #[serde(flatten)]
    frame: &'a crate::diffusion::Frame,
    text: String,
}

fn run_generate(args: GenerateArgs) -> Result<()> {
    let options = args.decode;
    options.validate()?;
    let device = args.device.device()?;
    let (ckpt, model, name) = crate::shipped::load_or_shipped(args.checkpoint.as_deref(), &device)?;
    let elastic = crate::elastic::ElasticPrompt::parse(&args.prompt, args.mask_char, &ckpt.vocab).context("in --prompt")?;
    let prompt = if elastic.gaps() == 0 {
        elastic.pieces[0].clone()
    } else {
        if ckpt.model.kind != crate::kind::ModelKind::Masked {
            bail!("{name}: elastic gaps (`{}*`) need a masked-diffusion model", args.mask_char);
        }
        let judge = args.judge.load(&device)?;
        let model = ModelDenoiser::new(model.clone(), device.clone());
        let (prompt, rankings) = crate::elastic::resolve(&model, &judge, &elastic, args.max_gap, options.seed)?;
        for (k, ranking) in rankings.iter().enumerate() {
            let best: Vec<String> = ranking.iter().take(3).map(|c| format!("{} (score {:.1})", c.length, c.score)).collect();
            eprintln!("elastic gap {}: {} characters (best lengths: {})", k + 1, ranking[0].length, best.join(", "));
        }
        prompt
    };
    ckpt.model.kind.check_prompt(&prompt).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    let context = ckpt.model.context;
    if args.overlap >= context {
        bail!("--overlap must be less than the model's context: 0 to {} characters, got {}", context - 1, args.overlap);
    }
    let has_gaps = prompt.contains(&MASK_ID);
    let length = args.length.unwrap_or(if has_gaps { prompt.len() } else { ckpt.model.context });
    if length < prompt.len() {
        bail!("--length {length} is shorter than the prompt ({} characters)", prompt.len());
    }
    let mut trace = match &args.trace {
        Some(path) => Some(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => None,
    };
    let mut recorder = match &args.record {
        Some(path) => {
            let title = format!(
                "tiny-diffusion · {name} · {} · temperature {} · seed {}",
                ckpt.model.kind.describe(&options),
                options.temperature,
                options.seed
            );
            // Tall enough for the whole output (when it fits a terminal), 64 columns as the Watch screen.
            let rows = (length.div_ceil(64) + 3).min(24) as u16;
            Some(crate::tui::record::Recorder::create(path, ckpt.vocab.clone(), rows, &title, args.look.look())?)
        }
        None => None,
    };
    let denoiser = ModelDenoiser::new(model, device);
    let mut generation = crate::kind::generation(&denoiser, &prompt, length, args.overlap, options);
    let (mut steps, mut decoded, mut millis) = (0usize, 0usize, 0.0f64);
    let mut trace_error = None;
    // A bar on stderr for long jobs (indicatif hides it when stderr is not a terminal).
    let to_fill = prompt.iter().filter(|&&t| t == MASK_ID).count() + (length - prompt.len());
    let bar = ProgressBar::new(to_fill as u64);
    bar.set_style(ProgressStyle::with_template("{wide_bar} {pos}/{len} characters, ETA {eta}").expect("valid template"));
    if to_fill <= ckpt.model.context {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    // The text streams out block by block as it becomes final, so memory does not grow with
    // --length and long runs show their output as they go.
    let mut out = std::io::stdout().lock();
    while let Some(frame) = generation.step(&denoiser) {
        steps += 1;
        decoded = decoded + frame.decoded_now.len() - frame.remasked_now.len();
        bar.set_position(decoded as u64);
        millis += frame.elapsed.as_secs_f64() * 1e3;
        if let Some(w) = trace.as_mut()
            && trace_error.is_none()
        {
            let text = ckpt.vocab.decode(&frame.tokens, args.mask_char);
            let line = serde_json::to_string(&TraceLine { frame: &frame, text }).expect("frames serialise");
            if let Err(e) = writeln!(w, "{line}") {
                trace_error = Some(e);
            }
        }
        if let Some(recorder) = recorder.as_mut() {
            recorder.frame(&frame)?;
        }
        let finished = generation.take_finished();
        if !finished.is_empty() {
            bar.suspend(|| write!(out, "{}", ckpt.vocab.decode(&finished, args.mask_char)).and_then(|()| out.flush()))
                .context("cannot write to stdout")?;
        }
    }
    bar.finish_and_clear();
    if let Some(e) = trace_error {
        bail!("cannot write the trace: {e}");
    }
    if let Some(mut w) = trace {
        w.flush().context("cannot write the trace")?;
    }
    writeln!(out, "{}", ckpt.vocab.decode(&generation.take_finished(), args.mask_char)).context("cannot write to stdout")?;
    if let Some(recorder) = recorder {
        recorder.finish()?;
    }
    if ckpt.model.kind == crate::kind::ModelKind::Uniform {
        // Every step rewrites every position; what a step "decodes" is what it changed.
        eprintln!("{steps} steps over {to_fill} characters, {decoded} changes, {:.1} ms/step", millis / steps.max(1) as f64);
    } else {
        eprintln!(
            "{steps} steps, {decoded} characters, {:.2} characters/step, {:.1} ms/step",
            decoded as f64 / steps.max(1) as f64,
            millis / steps.max(1) as f64
        );
    }
    Ok(())
}

fn run_eval(args: EvalArgs) -> Result<()> {
    let options = args.decode;
    options.validate()?;
    let device = args.device.device()?;
    let (ckpt, model, name) = crate::shipped::load_or_shipped(args.checkpoint.as_deref(), &device)?;
    let data = DataSource::from_arg(args.data.as_deref());
    let corpus = data.load(Some(ckpt.vocab.clone()))?;
    if ckpt.training.data_sha256.as_ref().is_some_and(|sha| *sha != corpus.sha256) {
        eprintln!("warning: {data} is not the text this checkpoint was trained on");
    }
    let judge = args.judge.load(&device)?;
    let denoiser = ModelDenoiser::new(model, device);
    let seq_len = ckpt.model.context.min(corpus.max_seq_len());
    let r = crate::eval::run(&denoiser, &corpus, options, seq_len, &judge)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    let kind = ckpt.model.kind;
    println!("checkpoint            {name} ({kind}, {} steps)", ckpt.training.steps);
    println!("validation loss       {:.4} nats ({})", r.val_loss, kind.loss_name());
    println!("validation bits/char  {:.4}{}", r.val_bits_per_char, if kind == ModelKind::Masked { " (ELBO)" } else { "" });
    println!();
    println!("{:<22}{:>10}{:>10}", "", "generated", "held-out");
    println!("{:<22}{:>10}{:>10}", "words", r.generated.words, r.held_out.words);
    println!("{:<22}{:>10.3}{:>10.3}", "valid-word rate", r.generated.valid_word_rate, r.held_out.valid_word_rate);
    println!("{:<22}{:>10.3}{:>10.3}", "distinct bigrams", r.generated.distinct_bigram_rate, r.held_out.distinct_bigram_rate);
    println!("{:<22}{:>10.3}{:>10.3}", "judge NLL (nats/char)", r.judge.generated_nll, r.judge.held_out_nll);
    println!("  judged by {}: lower is more like the text it learned from; read it beside", r.judge.model);
    println!("  distinct bigrams, as text that repeats itself also scores well");
    println!();
    println!("decoding              {:.2} characters/step, {:.1} ms/step", r.characters_per_step, r.ms_per_step);
    println!("sample:\n{}", r.sample);
    Ok(())
}
