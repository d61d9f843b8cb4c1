//! Command-line interface: parses arguments, then calls the library.

use crate::backend::Backend;
use crate::data::DataSource;
use crate::diffusion::DecodeOptions;
use crate::kind::ModelDenoiser;
use crate::kind::ModelKind;
use crate::vocab::{DEFAULT_MASK_CHAR, MASK_ID};
use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

mod bench;
pub mod compare;
mod interop;
mod life;
mod trace;
mod train;
pub use bench::{BenchArgs, BenchCommand, BenchDecodeArgs};
pub use compare::CompareArgs;
pub use interop::{ExportArgs, ImportArgs};
pub use life::LifeArgs;
pub use train::TrainArgs;

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
    #[arg(long, value_enum, default_value_t)]
    pub device: Backend,
    #[command(flatten)]
    pub inference: InferenceArgs,
}

/// How the commands that run a model multiply (not `train`'s steps: `train --matmul`).
#[derive(Args, Debug, Clone, Copy)]
pub struct InferenceArgs {
    /// f32 gives the same text on every CPU. bf16 multiplies on the AMX tiles where the CPU has
    /// them (f32 elsewhere): denoising steps about twice as fast on an AMX Xeon, in the precision
    /// PyTorch's autocast runs in; the text can then differ from f32's.
    #[arg(long, value_enum, default_value = "f32")]
    pub matmul: crate::fused::Matmul,
}

impl Default for InferenceArgs {
    fn default() -> Self {
        InferenceArgs { matmul: crate::fused::Matmul::F32 }
    }
}

impl InferenceArgs {
    /// Sets it for the rest of the process.
    pub fn apply(self) {
        crate::fused::set_inference_matmul(self.matmul);
    }
}

/// How cells are coloured, on screen and in recordings.
#[derive(Args, Debug, Default, Clone, Copy)]
pub struct LookArgs {
    /// Colour committed characters by the model's confidence, or by the step that revealed them;
    /// or shade masked cells by how sure the model already is of them.
    #[arg(long, value_enum, default_value_t)]
    pub view: crate::tui::View,
    /// The colour scale: `viridis` is colour-blind safe and reads in grayscale.
    #[arg(long, value_enum, default_value_t)]
    pub palette: crate::tui::Palette,
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
    pub fn look(self) -> crate::record::Look {
        crate::record::Look { view: self.view, palette: self.palette }
    }
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
    /// Choose elastic gaps' lengths by the judge's search over every length, even with a model
    /// that knows the length states (which otherwise grows and shrinks the gap itself).
    #[arg(long)]
    pub length_search: bool,
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
    #[arg(long, value_enum, default_value_t)]
    pub device: Backend,
    #[command(flatten)]
    pub inference: InferenceArgs,
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
    #[arg(long, value_enum, default_value_t)]
    pub device: Backend,
    #[command(flatten)]
    pub inference: InferenceArgs,
}

pub fn run(cli: Cli) -> ExitCode {
    let result = match cli.command.unwrap_or(Command::Tui(cli.tui)) {
        Command::Tui(args) => run_tui(args).map(|()| ExitCode::SUCCESS),
        Command::Train(args) => train::run_train(args),
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
    args.inference.apply();
    let device = args.device.device()?;
    let (config, model, name) = crate::shipped::load_or_shipped(args.checkpoint.as_deref(), &device)?;
    let session = crate::tui::Session {
        record: args.record.as_deref(),
        look: args.look.look(),
        race: crate::race::RaceSource::Load { watched: args.checkpoint.clone() },
        life_checkpoint: args.checkpoint.clone(),
        ..crate::tui::Session::on(crate::tui::Screen::Watch)
    };
    crate::tui::run(crate::tui::LoadedModel { config, model, name }, device, args.device.name(), session)
}

fn run_generate(args: GenerateArgs) -> Result<()> {
    let options = args.decode;
    options.validate()?;
    args.inference.apply();
    let device = args.device.device()?;
    let (ckpt, model, name) = crate::shipped::load_or_shipped(args.checkpoint.as_deref(), &device)?;
    let (prompt, elastic_gaps, grown) = generation_prompt(&args, &ckpt, &model, &name, &device)?;
    ckpt.model.kind.check_prompt(&prompt).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    let context = ckpt.model.context;
    if args.overlap >= context {
        bail!("--overlap must be less than the model's context: 0 to {} characters, got {}", context - 1, args.overlap);
    }
    // A prompt with gaps is filled in place, even when every elastic gap closed (length 0).
    let has_gaps = prompt.contains(&MASK_ID) || elastic_gaps > 0;
    let length = args.length.unwrap_or(if has_gaps { prompt.len() } else { ckpt.model.context });
    if length < prompt.len() {
        bail!("--length {length} is shorter than the prompt ({} characters)", prompt.len());
    }
    let mut trace = args.trace.as_deref().map(trace::Trace::create).transpose()?;
    let mut recorder = match &args.record {
        Some(path) => {
            let title = format!(
                "tiny-diffusion · {name} · {} · temperature {} · seed {}",
                ckpt.model.kind.describe(&options),
                options.temperature,
                options.seed
            );
            Some(crate::record::Recorder::create(path, ckpt.vocab.clone(), length, &title, args.look.look())?)
        }
        None => None,
    };
    // A recording shows the elastic gaps growing and shrinking before the rest is filled.
    if let Some(recorder) = recorder.as_mut() {
        grown.iter().try_for_each(|frame| recorder.frame(frame))?;
    }
    let denoiser = ModelDenoiser::new(model, device);
    let mut generation = crate::kind::generation(&denoiser, &prompt, length, args.overlap, options);
    let (mut steps, mut decoded, mut millis) = (0usize, 0usize, 0.0f64);
    let to_fill = prompt.iter().filter(|&&t| t == MASK_ID).count() + (length - prompt.len());
    let bar = progress_bar(to_fill, context);
    // The text streams out block by block as it becomes final, so memory does not grow with
    // --length and long runs show their output as they go.
    let mut out = std::io::stdout().lock();
    // A recording in the uncertainty view shades every masked cell: the model is asked about all
    // of them after each step (a full pass more), as the Watch screen does.
    let look = recorder.is_some() && args.look.view == crate::tui::View::Uncertainty;
    while let Some(mut frame) = generation.step(&denoiser) {
        if look {
            crate::diffusion::look(&mut frame, &denoiser, &options);
        }
        steps += 1;
        decoded = decoded + frame.decoded_now.len() - frame.remasked_now.len();
        bar.set_position(decoded as u64);
        millis += frame.elapsed.as_secs_f64() * 1e3;
        if let Some(trace) = trace.as_mut() {
            trace.write(&frame, &ckpt.vocab, args.mask_char);
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
    if let Some(trace) = trace {
        trace.finish()?;
    }
    writeln!(out, "{}", ckpt.vocab.decode(&generation.take_finished(), args.mask_char)).context("cannot write to stdout")?;
    if let Some(recorder) = recorder {
        recorder.finish()?;
    }
    // A prompt whose only gaps were elastic ones, grown already, left nothing to decode.
    if to_fill > 0 {
        eprintln!("{}", summary(ckpt.model.kind, steps, to_fill, decoded, millis));
    }
    Ok(())
}

/// The ids `generate` starts from: `--prompt` with MASK at its gaps, each elastic gap (`_*`)
/// given the length the judge chose (reported on stderr), or grown by a model that knows the
/// length states; how many elastic gaps it had; and the frames of their growing.
fn generation_prompt(
    args: &GenerateArgs,
    ckpt: &crate::checkpoint::CheckpointConfig,
    model: &crate::model::Model,
    name: &str,
    device: &burn::prelude::Device,
) -> Result<(Vec<u32>, usize, Vec<crate::diffusion::Frame>)> {
    let elastic = crate::elastic::ElasticPrompt::parse(&args.prompt, args.mask_char, &ckpt.vocab).context("in --prompt")?;
    if elastic.gaps.is_empty() {
        return Ok((elastic.head.clone(), 0, Vec::new()));
    }
    if ckpt.model.kind != crate::kind::ModelKind::Masked {
        bail!("{name}: elastic gaps (`{}*`) need a masked-diffusion model", args.mask_char);
    }
    crate::elastic::check_max_gap(args.max_gap)?;
    let model = ModelDenoiser::new(model.clone(), device.clone());
    if ckpt.model.edits && !args.length_search {
        let mut frames = Vec::new();
        let (prompt, lengths) = crate::elastic::grow(&model, &elastic, args.max_gap, args.decode.seed, &mut |f| frames.push(f))?;
        let lengths: Vec<String> = lengths.iter().map(usize::to_string).collect();
        eprintln!("elastic gaps grown by the model in {} steps: {} characters", frames.len(), lengths.join(", "));
        return Ok((prompt, elastic.gaps.len(), frames));
    }
    let judge = args.judge.load(device)?;
    let (prompt, rankings) = crate::elastic::resolve(&model, &judge, &elastic, args.max_gap, args.decode.seed)?;
    for (k, ranking) in rankings.iter().enumerate() {
        let best: Vec<String> = ranking.iter().take(3).map(|c| format!("{} (score {:.1})", c.length, c.score)).collect();
        eprintln!("elastic gap {}: {} characters (best lengths: {})", k + 1, ranking[0].length, best.join(", "));
    }
    Ok((prompt, elastic.gaps.len(), Vec::new()))
}

/// A bar on stderr for jobs longer than a window (indicatif hides it when stderr is not a terminal).
fn progress_bar(to_fill: usize, context: usize) -> ProgressBar {
    let bar = ProgressBar::new(to_fill as u64);
    bar.set_style(ProgressStyle::with_template("{wide_bar} {pos}/{len} characters, ETA {eta}").expect("valid template"));
    if to_fill <= context {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar
}

/// The last line `generate` writes on stderr: steps, characters and speed.
fn summary(kind: ModelKind, steps: usize, to_fill: usize, decoded: usize, millis: f64) -> String {
    let per_step = millis / steps.max(1) as f64;
    if kind == ModelKind::Uniform {
        // Every step rewrites every position; what a step "decodes" is what it changed.
        return format!("{steps} steps over {to_fill} characters, {decoded} changes, {per_step:.1} ms/step");
    }
    format!("{steps} steps, {decoded} characters, {:.2} characters/step, {per_step:.1} ms/step", decoded as f64 / steps.max(1) as f64)
}

fn run_eval(args: EvalArgs) -> Result<()> {
    let options = args.decode;
    options.validate()?;
    args.inference.apply();
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
