//! `compare`: models of different kinds race on the same prompt and seed (the TUI's Compare screen
//! in a terminal, a printed scoreboard otherwise).

use crate::backend::Backend;
use super::JudgeArgs;
use crate::diffusion::DecodeOptions;
use crate::race::{self, Clock, LaneFrame};
use crate::vocab::DEFAULT_MASK_CHAR;
use anyhow::{Context, Result, bail};
use clap::Args;
use std::io::IsTerminal;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct CompareArgs {
    /// A checkpoint directory or PyTorch file per lane, repeated [default: the shipped masked
    /// diffusion model and the shipped autoregressive model].
    #[arg(long)]
    pub checkpoint: Vec<PathBuf>,
    /// A lane for the shipped model of this kind, repeated (`masked`, `ar`, `uniform`); races
    /// beside any --checkpoint lanes.
    #[arg(long, value_enum)]
    pub shipped: Vec<crate::kind::ModelKind>,
    /// Text every lane starts from (no gaps: an autoregressive model cannot fill them).
    #[arg(long, default_value = "")]
    pub prompt: String,
    /// Total characters of each lane's output, prompt included [default: the smallest context].
    #[arg(long)]
    pub length: Option<usize>,
    #[command(flatten)]
    pub decode: DecodeOptions,
    #[command(flatten)]
    pub judge: JudgeArgs,
    /// How the TUI replays the lanes at first (`c` toggles).
    #[arg(long, value_enum, default_value_t)]
    pub clock: Clock,
    /// Print the lanes' texts and the scoreboard instead of opening the terminal UI.
    #[arg(long)]
    pub print: bool,
    #[arg(long, value_enum, default_value_t)]
    pub device: Backend,
    #[command(flatten)]
    pub inference: super::InferenceArgs,
}

pub fn run_compare(args: CompareArgs) -> Result<()> {
    args.decode.validate()?;
    args.inference.apply();
    let device = args.device.device()?;
    let mut entrants = crate::race::entrants(&args.shipped, &args.checkpoint, &device)?;
    let judge = args.judge.load(&device)?;
    for e in &mut entrants {
        e.prompt = e.config.vocab.encode_prompt(&args.prompt, DEFAULT_MASK_CHAR).with_context(|| format!("in --prompt, for {}", e.title))?;
        e.config.model.kind.check_prompt(&e.prompt).map_err(|m| anyhow::anyhow!("{}: {m}", e.title))?;
    }
    let context = entrants.iter().map(|e| e.config.model.context).min().unwrap_or(0);
    let prompt_len = entrants[0].prompt.len();
    let length = args.length.unwrap_or(context.max(prompt_len));
    if length < prompt_len {
        bail!("--length {length} is shorter than the prompt ({prompt_len} characters)");
    }
    let max = crate::race::MAX_LENGTH;
    if !(1..=max).contains(&length) {
        bail!("--length must be between 1 and {max} (every lane's whole text is copied each step), got {length}");
    }
    if !args.print && std::io::stdout().is_terminal() {
        // The Watch screen shows the shipped diffusion model; the Compare screen opens first.
        let (config, model) = crate::shipped::DIFFUSION.load(&device)?;
        let loaded = crate::tui::LoadedModel { config, model, name: crate::shipped::DIFFUSION.name.to_string() };
        let race = crate::race::RaceSource::Ready(Box::new(crate::race::RaceSetup { entrants, judge, length }));
        let session = crate::tui::Session { race, clock: args.clock, ..crate::tui::Session::on(crate::tui::Screen::Compare) };
        return crate::tui::run(loaded, device, args.device.name(), session);
    }
    let mut rows = Vec::new();
    for e in &entrants {
        let mut last: Option<LaneFrame> = None;
        race::run_lane(&e.denoiser, &e.prompt, length, args.decode, |f| {
            last = Some(f);
            true
        });
        let last = last.expect("a lane reports its initial state");
        println!("── {} ──\n{}\n", e.title, e.config.vocab.decode(&crate::diffusion::cell::tokens(&last.cells), DEFAULT_MASK_CHAR));
        rows.push((e.title.clone(), race::score(&last, &e.config.vocab, &judge)?));
    }
    println!("{:<44}{:>8}{:>10}{:>10}{:>11}{:>10}", "lane", "passes", "ms", "chars/s", "judge NLL", "distinct");
    for (title, s) in rows {
        let title: String = title.chars().take(43).collect();
        println!("{title:<44}{:>8}{:>10.0}{:>10.0}{:>11.3}{:>10.3}", s.passes, s.millis, s.chars_per_sec, s.judge_nll, s.distinct_bigrams);
    }
    println!("judge: {} (nats per character; lower reads more like its training text, read beside distinct bigrams)", judge.name);
    Ok(())
}
