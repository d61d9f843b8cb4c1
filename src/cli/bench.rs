//! `bench`: speeds (against the PyTorch twin), and `bench decode`, the decoding frontier.

use crate::backend::Backend;
use super::JudgeArgs;
use crate::data::DataSource;
use crate::kind::ModelDenoiser;
use crate::model::Preset;
use anyhow::{Result, ensure};
use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchArgs {
    /// Without a command, measures speeds.
    #[command(subcommand)]
    pub command: Option<BenchCommand>,
    /// Model sizes to measure.
    #[arg(long = "preset", value_enum, default_values = ["small", "base"])]
    pub presets: Vec<Preset>,
    /// Training batch sizes to measure.
    #[arg(long = "batch", default_values_t = [8usize, 64])]
    pub batches: Vec<usize>,
    /// Timed runs per case (after warm-up); the median is reported.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// The CPU's peak f32 GFLOP/s, for the "% peak" column of rows multiplied in f32 [default:
    /// measured, every thread running independent multiply-adds as wide as the kernels' (AVX-512,
    /// AVX2, NEON)]. Rows on the AMX tiles are held to the tiles' peak, always measured.
    #[arg(long)]
    pub peak_gflops: Option<f64>,
    /// Which measurements to run.
    #[arg(long, value_enum, value_delimiter = ',', default_values = ["denoise", "generate", "train", "render"])]
    pub cases: Vec<crate::bench::Case>,
    /// One JSON object per line (ids shared with bench/pytorch_reference.py), then the peak memory.
    #[arg(long)]
    pub json: bool,
    #[arg(long, value_enum, default_value_t)]
    pub device: Backend,
    /// How every case multiplies [default: training as `train` does (bf16 on AMX tiles, with a
    /// row of the Muon step in f32 beside it), the rest as the other commands do (f32)]. `f32`:
    /// all in f32, as the PyTorch twin runs without `--bf16`; `bf16`: all on the AMX tiles where
    /// the CPU has them, as the twin runs with it.
    #[arg(long, value_enum)]
    pub matmul: Option<crate::fused::Matmul>,
}

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Each decoding setting's characters per step and per forward pass, and the quality of its text.
    Decode(BenchDecodeArgs),
    /// Held-out lines with a word taken out: gaps of wrong lengths, the right one, and elastic.
    Infill(BenchInfillArgs),
}

#[derive(Args, Debug)]
pub struct BenchInfillArgs {
    /// A masked-diffusion checkpoint [default: the shipped model].
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    #[command(flatten)]
    pub judge: JudgeArgs,
    /// How many held-out lines.
    #[arg(long, default_value_t = 40)]
    pub lines: usize,
    #[command(flatten)]
    pub decode: crate::diffusion::DecodeOptions,
    /// One JSON object per line.
    #[arg(long)]
    pub json: bool,
    #[arg(long, value_enum, default_value_t)]
    pub device: Backend,
    #[command(flatten)]
    pub inference: super::InferenceArgs,
}

#[derive(Args, Debug)]
pub struct BenchDecodeArgs {
    /// Checkpoint directory or PyTorch .pt file [default: the shipped Shakespeare model].
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// The text the checkpoint was trained on, whose words count as valid [default: the built-in
    /// Tiny Shakespeare].
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// A setting to measure, written as generate's decoding flags (e.g. "--strategy eb --gamma 1");
    /// repeat for more [default: a grid over every strategy, see docs/decoding.md].
    #[arg(long = "setting", allow_hyphen_values = true)]
    pub settings: Vec<String>,
    /// Seeds; each writes --length characters.
    #[arg(long = "seed", default_values_t = [1u64, 2, 3])]
    pub seeds: Vec<u64>,
    /// Characters written per seed.
    #[arg(long, default_value_t = 2000)]
    pub length: usize,
    #[command(flatten)]
    pub judge: JudgeArgs,
    /// One JSON object per line.
    #[arg(long)]
    pub json: bool,
    #[arg(long, value_enum, default_value_t)]
    pub device: Backend,
    #[command(flatten)]
    pub inference: super::InferenceArgs,
}

pub fn run_bench(args: BenchArgs) -> Result<()> {
    match args.command {
        Some(BenchCommand::Decode(args)) => return run_bench_decode(args),
        Some(BenchCommand::Infill(args)) => return run_bench_infill(args),
        None => {}
    }
    // Each flag sizes work: a run count or a batch past these is a typo, not a measurement.
    let max_runs = crate::bench::MAX_RUNS;
    ensure!((1..=max_runs).contains(&args.runs), "--runs must be between 1 and {max_runs}");
    let max_batch = crate::train::MAX_BATCH;
    ensure!(args.batches.iter().all(|b| (1..=max_batch).contains(b)), "--batch must be between 1 and {max_batch}");
    ensure!(args.peak_gflops.is_none_or(|p| p.is_finite() && p > 0.0), "--peak-gflops must be a positive number");
    let inference = args.matmul.unwrap_or(crate::fused::Matmul::F32);
    crate::fused::set_inference_matmul(inference);
    let device = args.device.device()?;
    let threads = rayon::current_num_threads();
    let matmul = args.matmul.unwrap_or_default();
    let opts = crate::bench::BenchOptions { presets: args.presets, train_batches: args.batches, runs: args.runs, cases: args.cases, device, matmul };
    // The fused CPU kernels run on flex alone, and the FLOP peak is the CPU's: on a GPU neither
    // describes the run.
    let kernels = if args.device == Backend::Flex { crate::fused::kernels() } else { "none" };
    let on_cpu = matches!(args.device, Backend::Flex | Backend::Ndarray);
    // The CPU's peaks, measured after the cases (with --json) or before them, not beside them.
    let peaks = || crate::bench::peak::Peaks {
        f32: args.peak_gflops.unwrap_or_else(|| crate::bench::peak::measured_gflops(threads)),
        tiles: crate::bench::peak::measured_tile_gflops(threads),
    };
    if args.json {
        crate::bench::run(&opts, |row| println!("{}", crate::bench::json_row(row)));
        println!("{}", serde_json::json!({ "case": "process/peak_rss", "peak_rss_mb": crate::bench::peak_rss_mib() }));
        println!("{}", serde_json::json!({ "case": "process/kernels", "kernels": kernels, "device": args.device.name() }));
        if on_cpu {
            let peaks = peaks();
            println!("{}", serde_json::json!({ "case": "process/f32_peak", "gflops": peaks.f32, "measured": args.peak_gflops.is_none() }));
            if let Some(tiles) = peaks.tiles {
                println!("{}", serde_json::json!({ "case": "process/tile_peak", "gflops": tiles, "measured": true }));
            }
        }
        return Ok(());
    }
    let peaks = on_cpu.then(peaks);
    if let Some(peaks) = peaks {
        let name = |m: crate::fused::Matmul| if m.on_this_cpu() == crate::fused::Matmul::Bf16 { "bf16 on AMX tiles" } else { "f32" };
        let (training, inference) = (name(matmul), name(inference));
        println!("backend {} · {threads} threads · {kernels} kernels · products: training {training}, inference {inference} · f32 peak {:.0} GFLOP/s{}{} · median of {} runs", args.device.name(), peaks.f32, if args.peak_gflops.is_some() { "" } else { " (measured)" }, peaks.tiles.map_or(String::new(), |t| format!(", AMX bf16 peak {t:.0} (measured)")), args.runs);
    } else {
        println!("backend {} · median of {} runs (no % of peak: --peak-gflops is a CPU's)", args.device.name(), args.runs);
    }
    println!("{}", crate::bench::header());
    crate::bench::run(&opts, |row| println!("{}", crate::bench::format_row(row, peaks)));
    if let Some(mb) = crate::bench::peak_rss_mib() {
        println!("peak memory (resident) of this process: {mb:.0} MiB");
    }
    Ok(())
}

fn run_bench_decode(args: BenchDecodeArgs) -> Result<()> {
    use crate::bench::decode::{self, DecodeBench, MAX_LENGTH, MAX_SEEDS};
    ensure!((1..=MAX_LENGTH).contains(&args.length), "--length must be between 1 and {MAX_LENGTH}");
    ensure!((1..=MAX_SEEDS).contains(&args.seeds.len()), "give between 1 and {MAX_SEEDS} --seed values");
    let flags: Vec<String> = if args.settings.is_empty() {
        decode::DEFAULT_GRID.iter().map(|s| s.to_string()).collect()
    } else {
        args.settings.clone()
    };
    // Every setting is checked before the first is measured.
    let settings = flags.iter().map(|f| Ok((f.clone(), decode::parse_setting(f)?))).collect::<Result<Vec<_>>>()?;
    args.inference.apply();
    let device = args.device.device()?;
    let (ckpt, model, name) = crate::shipped::load_or_shipped(args.checkpoint.as_deref(), &device)?;
    let corpus = DataSource::from_arg(args.data.as_deref()).load(Some(ckpt.vocab.clone()))?;
    let dictionary = crate::eval::words(&corpus.vocab.decode(&corpus.train, ' ')).into_iter().collect();
    let judge = args.judge.load(&device)?;
    let denoiser = ModelDenoiser::new(model, device);
    let bench =
        DecodeBench { denoiser: &denoiser, vocab: &ckpt.vocab, dictionary: &dictionary, judge: &judge, seeds: args.seeds.clone(), length: args.length };
    if !args.json {
        println!("{name} · {} characters × seeds {:?} · {}", args.length, args.seeds, args.device.name());
        println!("{}", decode::header());
    }
    let mut rows = Vec::new();
    // Rows print as they are measured (a grid takes minutes); the frontier comes last.
    for (flags, options) in settings {
        let row = bench.measure(&flags, options)?;
        if args.json {
            println!("{}", serde_json::to_string(&row)?);
        } else {
            println!("{}", decode::format_row(&row));
        }
        rows.push(row);
    }
    decode::mark_frontier(&mut rows);
    if args.json {
        let frontier: Vec<&str> = rows.iter().filter(|r| r.frontier).map(|r| r.setting.as_str()).collect();
        println!("{}", serde_json::json!({ "frontier": frontier }));
    } else {
        println!("\nfrontier (no setting is faster and better on both word statistics and the judge):");
        for row in rows.iter().filter(|r| r.frontier) {
            println!("{}", decode::format_row(row));
        }
    }
    Ok(())
}

fn run_bench_infill(args: BenchInfillArgs) -> Result<()> {
    use crate::bench::infill;
    ensure!((1..=infill::MAX_LINES).contains(&args.lines), "--lines must be between 1 and {}", infill::MAX_LINES);
    args.decode.validate()?;
    args.inference.apply();
    let device = args.device.device()?;
    let (ckpt, model, name) = crate::shipped::load_or_shipped(args.checkpoint.as_deref(), &device)?;
    ensure!(ckpt.model.kind == crate::kind::ModelKind::Masked, "{name}: infill needs a masked-diffusion model");
    let judge = args.judge.load(&device)?;
    let corpus = DataSource::BuiltIn.load(Some(ckpt.vocab.clone()))?;
    let dictionary = crate::eval::words(&corpus.vocab.decode(&corpus.train, ' ')).into_iter().collect();
    let cases = infill::cases(&corpus.val, &ckpt.vocab, args.lines);
    let denoiser = ModelDenoiser::new(model, device);
    let rows = infill::run(&denoiser, &judge, &ckpt.vocab, &dictionary, &cases, args.decode)?;
    let recovery = infill::recovery(&rows, 1.5);
    if args.json {
        for row in &rows {
            println!("{}", serde_json::to_string(row)?);
        }
        println!("{}", serde_json::json!({ "recovery_vs_1.5x": recovery }));
        return Ok(());
    }
    println!("{name} · {} held-out lines, one word out · judge {}", cases.len(), judge.name);
    println!("{:<14}{:>8}{:>8}{:>10}{:>8}{:>12}", "gap", "valid", "exact", "|Δlen|", "corr", "ms/fill");
    for r in &rows {
        let err = r.median_length_error.map_or("".to_string(), |e| format!("{e:.0}"));
        let corr = r.length_correlation.map_or("".to_string(), |c| format!("{c:.2}"));
        println!("{:<14}{:>8.3}{:>8.3}{:>10}{:>8}{:>12.0}", r.gap, r.valid_word_rate, r.exact_rate, err, corr, r.ms_per_fill);
    }
    if let Some(r) = recovery {
        println!("recovery against a gap 1.5× too long: {r:.2}");
    }
    Ok(())
}
