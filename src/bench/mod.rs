//! `tiny-diffusion bench`: the speeds that matter, measured the same way every time.
//!
//! Each case runs a few warm-up iterations, then reports the median of the timed ones. FLOP
//! counts are analytic (matmuls only), so "% of peak" says how close a case gets to the CPU.

pub mod decode;
pub mod infill;
pub mod peak;

use crate::checkpoint::CheckpointConfig;
use crate::diffusion::masking::MaskSchedule;
use crate::fused::Matmul;
use crate::kind::ModelKind;
use crate::diffusion::decode::CACHE_WINDOW_SPANS;
use crate::diffusion::{Cell, DecodeOptions, Denoiser, Frame, Generation};
use crate::kind::ModelDenoiser;
use crate::model::{ModelConfig, Preset};
use crate::train::train_step;
use crate::vocab::{MASK_ID, Vocab};
use burn::prelude::*;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Row {
    /// Stable id shared with bench/pytorch_reference.py, e.g. `small/train_8x256`.
    pub id: String,
    pub case: String,
    pub median: Duration,
    /// Throughput in the case's own unit (e.g. tokens/s), if it has one.
    pub throughput: Option<(f64, &'static str)>,
    pub gflop: Option<f64>,
    /// Multiplied in bf16 on the AMX tiles: a share of their peak, not of the f32 one.
    pub tiles: bool,
}

/// Forward FLOPs for `batch` sequences of `seq` tokens: 2 per multiply-add in every linear layer
/// and in attention's two matmuls.
pub fn forward_flops(c: &ModelConfig, batch: usize, seq: usize) -> f64 {
    let d = c.n_embd as f64;
    let tokens = (batch * seq) as f64;
    let linear = c.n_layer as f64 * 12.0 * d * d + d * c.vocab_size as f64;
    let attention = c.n_layer as f64 * 2.0 * seq as f64 * d;
    2.0 * tokens * (linear + attention)
}

/// The most timed runs a case takes (`bench --runs`).
pub const MAX_RUNS: usize = 1000;

/// Runs `f` `warmup` times, then `runs` times, and returns the median duration.
pub fn median_time(warmup: usize, runs: usize, mut f: impl FnMut()) -> Duration {
    for _ in 0..warmup {
        f();
    }
    let mut times: Vec<Duration> = (0..runs.max(1))
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

fn random_tokens(n: usize, vocab: usize, masked_share: f64, rng: &mut StdRng) -> Vec<u32> {
    (0..n)
        .map(|_| if rng.random::<f64>() < masked_share { MASK_ID } else { rng.random_range(1..vocab as u32) })
        .collect()
}

/// Which measurements to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Case {
    /// One denoising step (forward pass) at batch 1: the whole window, logits at a span, and a
    /// cached step as the default decoding takes it.
    Denoise,
    /// A full generation: untrained weights in a fixed 64 steps, and the shipped model with the default decoding.
    Generate,
    /// Training steps (forward, backward, AdamW) at each --batch.
    Train,
    /// One TUI frame.
    Render,
}

pub struct BenchOptions {
    pub presets: Vec<Preset>,
    pub train_batches: Vec<usize>,
    pub runs: usize,
    pub cases: Vec<Case>,
    pub device: Device,
    /// The training cases' precision (`train --matmul`).
    pub matmul: Matmul,
}

/// Peak resident memory of this process so far, in MiB (Linux; None elsewhere).
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

pub fn run(opts: &BenchOptions, mut report: impl FnMut(&Row)) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut push = |row: Row| {
        report(&row);
        rows.push(row);
    };
    let mut rng = StdRng::seed_from_u64(0);
    for &preset in &opts.presets {
        let config = preset.config(VOCAB);
        opts.device.seed(0);
        let denoiser = ModelDenoiser::new(config.init(&opts.device), opts.device.clone());
        let name = format!("{preset:?}").to_lowercase();
        if opts.cases.contains(&Case::Denoise) {
            denoise_rows(&name, &config, &denoiser, opts, &mut rng, &mut push);
        }
        if opts.cases.contains(&Case::Generate) {
            // Untrained weights commit about one position per step, so fix the step count.
            let options = DecodeOptions { strategy: crate::diffusion::Strategy::Steps, steps: 64, ..DecodeOptions::default() };
            let seq = config.context;
            let (t, _) = time_generation(&denoiser, options, seq, opts.runs);
            let gflop = Some(64.0 * forward_flops(&config, 1, seq) / 1e9);
            let throughput = Some((seq as f64 / t.as_secs_f64(), "chars/s"));
            push(Row { id: format!("{name}/generate_64_steps"), case: format!("{name}: generate {seq} chars in 64 steps"), median: t, throughput, gflop, tiles: inference_on_tiles() });
        }
        if opts.cases.contains(&Case::Train) {
            train_rows(preset, &name, &config, opts, &mut rng, &mut push);
        }
    }
    if opts.cases.contains(&Case::Generate)
        && let Some(row) = shipped_generate_row(opts)
    {
        push(row);
    }
    if opts.cases.contains(&Case::Render) {
        push(render_row());
    }
    rows
}

/// The vocabulary of the untrained models the cases time (the shipped model's size).
const VOCAB: usize = 66;

/// Logits everywhere, as the PyTorch twin computes them; then at the 8 positions a step with the
/// default span asks for, as the sampler runs it.
fn denoise_rows(name: &str, config: &ModelConfig, denoiser: &ModelDenoiser, opts: &BenchOptions, rng: &mut StdRng, push: &mut impl FnMut(Row)) {
    let seq = config.context;
    let tokens = random_tokens(seq, VOCAB, 0.5, rng);
    let span = DecodeOptions::default().span;
    for (positions, id, label) in [
        ((0..seq).collect::<Vec<_>>(), String::new(), String::new()),
        ((0..span).collect(), format!("_at{span}"), format!(", logits at {span} positions")),
    ] {
        let t = median_time(3, opts.runs.max(5), || {
            std::hint::black_box(denoiser.logits(&tokens, crate::diffusion::Time::MaskRate(0.5), &positions));
        });
        let gflop = (positions.len() == seq).then(|| forward_flops(config, 1, seq) / 1e9);
        let case = format!("{name}: denoising step, 1×{seq}{label}");
        push(Row { id: format!("{name}/denoise_1x{seq}{id}"), case, median: t, throughput: None, gflop, tiles: inference_on_tiles() });
    }
    // The step the default decoding mostly takes (the Watch screen's): each of the lanes recomputes
    // a window of CACHE_WINDOW_SPANS spans and reads every other row's keys and values from the
    // cache of the last full pass; logits at each lane's span.
    let options = DecodeOptions::default();
    // As many lanes as the window holds without their rows overlapping (a short context).
    let window = (CACHE_WINDOW_SPANS * options.span).clamp(1, seq.max(1));
    let lanes = options.lanes.min(seq / window).max(1);
    let rows: Vec<std::ops::Range<usize>> = (0..lanes).map(|l| l * seq / lanes..l * seq / lanes + window).collect();
    let queried: Vec<usize> = rows.iter().flat_map(|r| r.start..r.start + options.span.min(window)).collect();
    let time = crate::diffusion::Time::MaskRate(0.5);
    denoiser.logits_cached(&tokens, time, &queried, &rows, true);
    let t = median_time(3, opts.runs.max(5), || {
        std::hint::black_box(denoiser.logits_cached(&tokens, time, &queried, &rows, false));
    });
    let case = format!("{name}: cached step, {lanes} lanes × {window} rows, logits at {}", queried.len());
    push(Row { id: format!("{name}/denoise_cached_{lanes}x{window}"), case, median: t, throughput: None, gflop: None, tiles: inference_on_tiles() });
}

/// AdamW everywhere, as the PyTorch twin trains (bench/pytorch_reference.py); more rows price
/// Muon's Newton–Schulz iterations, and the autoregressive kind (causal attention, every position
/// predicted), at the first batch size; all in `opts.matmul`, and where that is bf16 on a CPU with
/// AMX tiles, the same Muon step in f32, to show what the tiles buy.
fn train_rows(preset: Preset, name: &str, config: &ModelConfig, opts: &BenchOptions, rng: &mut StdRng, push: &mut impl FnMut(Row)) {
    let seq = config.context;
    let adamw = crate::train::TrainSettings { muon_lr: None, matmul: opts.matmul, ..crate::train::TrainSettings::for_preset(preset) };
    let muon = crate::train::TrainSettings { muon_lr: Some(0.02), ..adamw.clone() };
    let muon_f32 = crate::train::TrainSettings { matmul: Matmul::F32, ..muon.clone() };
    let mut cases: Vec<(usize, &crate::train::TrainSettings, ModelKind)> = opts.train_batches.iter().map(|&b| (b, &adamw, ModelKind::Masked)).collect();
    if let Some(&b) = opts.train_batches.first() {
        cases.extend([(b, &muon, ModelKind::Masked), (b, &muon, ModelKind::Ar)]);
        if opts.matmul.on_this_cpu() == Matmul::Bf16 {
            cases.push((b, &muon_f32, ModelKind::Masked));
        }
    }
    for (batch, settings, kind) in cases {
        let ad = opts.device.clone().autodiff();
        let mut model = ModelConfig { kind, ..config.clone() }.init(&ad);
        let mut optim = settings.optimizer();
        // Batches past the floors' 8 × 256 are timed twice only; `bench/pytorch_reference.py`
        // times the same. Two warm-up steps, as the compiled twin takes: a process's first steps
        // fault in its memory (the first took seconds on a Xeon VM).
        let runs = if batch * seq > 8 * 256 { 2 } else { opts.runs };
        let t = median_time(2, runs, || {
            let windows: Vec<Vec<u32>> = (0..batch).map(|_| random_tokens(seq, VOCAB, 0.0, rng)).collect();
            let batch = kind.batch(&windows, MaskSchedule::Stratified, VOCAB, rng);
            model = train_step(model.clone(), &mut optim, &batch, 1e-4, settings.matmul, &ad).0;
        });
        let throughput = Some(((batch * seq) as f64 / t.as_secs_f64(), "tokens/s"));
        let gflop = Some(3.0 * forward_flops(config, batch, seq) / 1e9);
        let (id_suffix, label) = match (kind, settings.muon_lr.is_some(), settings.matmul != opts.matmul) {
            (ModelKind::Ar, _, _) => ("_muon_ar", " with Muon, autoregressive"),
            (_, true, true) => ("_muon_f32", " with Muon, f32 matmuls"),
            (_, true, false) => ("_muon", " with Muon"),
            _ => ("", ""),
        };
        let id = format!("{name}/train_{batch}x{seq}{id_suffix}");
        let tiles = settings.matmul.on_this_cpu() == Matmul::Bf16;
        push(Row { id, case: format!("{name}: training step, {batch}×{seq}{label}"), median: t, throughput, gflop, tiles });
    }
}

/// The experience a user gets: the shipped model with the default decoding settings.
fn shipped_generate_row(opts: &BenchOptions) -> Option<Row> {
    let (ckpt, model) = crate::shipped::load(&opts.device).ok()?;
    let seq = ckpt.model.context;
    let denoiser = ModelDenoiser::new(model, opts.device.clone());
    let (t, steps) = time_generation(&denoiser, DecodeOptions::default(), seq, opts.runs);
    let case = format!("shipped: generate {seq} chars, default decoding ({steps} steps)");
    let throughput = Some((seq as f64 / t.as_secs_f64(), "chars/s"));
    Some(Row { id: "shipped/generate_default".into(), case, median: t, throughput, gflop: None, tiles: inference_on_tiles() })
}

/// Whether inference multiplies on the AMX tiles (`--matmul bf16` on a CPU that has them).
fn inference_on_tiles() -> bool {
    crate::fused::inference_matmul().is_some()
}

/// Median time of a full unconditional generation of `seq` characters, and its step count.
fn time_generation(denoiser: &ModelDenoiser, options: DecodeOptions, seq: usize, runs: usize) -> (Duration, usize) {
    let mut steps = 0;
    let t = median_time(1, runs.clamp(1, 3), || {
        let mut g = Generation::new(&[], seq, seq, crate::diffusion::DEFAULT_OVERLAP, options);
        steps = 0;
        g.run(denoiser, |_| steps += 1);
    });
    (t, steps)
}

/// One watch-screen frame of a 256-character block, drawn into an off-screen 100×30 buffer.
fn render_row() -> Row {
    let text: String = "ROMEO:\nBut soft, what light through yonder window breaks?\n".chars().cycle().take(256).collect();
    let vocab = Vocab::from_text(&text).expect("non-empty");
    let config = CheckpointConfig::new(Preset::Small.config(vocab.size()), vocab.clone());
    let tokens = vocab.encode(&text).expect("own text");
    let n = tokens.len();
    let cell = |i: usize| match i {
        _ if i.is_multiple_of(3) => Cell::MASKED,
        _ if i < 6 => Cell::given(tokens[i]),
        _ => Cell { token: tokens[i], confidence: (i % 10) as f32 / 10.0, prompt: false, belief: None },
    };
    let frame = Frame {
        block: 0,
        step: 3,
        offset: 0,
        cells: (0..n).map(cell).collect(),
        decoded_now: (1..n).step_by(17).collect(),
        remasked_now: vec![],
        resized_now: vec![],
        elapsed: Duration::from_millis(10),
    };
    let draw = crate::tui::watch_preview(config, frame);
    let mut terminal = Terminal::new(TestBackend::new(100, 30)).expect("test backend");
    let t = median_time(20, 200, || {
        terminal.draw(&draw).expect("draw");
    });
    Row { id: "tui/render_watch".into(), case: "tui: render watch frame (256 cells, 100×30)".into(), median: t, throughput: None, gflop: None, tiles: false }
}

/// Wide enough for the longest case name, so rows printed as they are measured line up.
const CASE_WIDTH: usize = 57;

/// A table row; where the row counts its FLOPs and peaks apply, its share of the peak of what it
/// multiplied on: the AMX tiles' bf16 peak for rows on them, else the f32 one.
pub fn format_row(row: &Row, peaks: Option<peak::Peaks>) -> String {
    let ms = row.median.as_secs_f64() * 1e3;
    let throughput = row.throughput.map_or(String::new(), |(v, unit)| format!("{v:.0} {unit}"));
    let peak = peaks.and_then(|p| if row.tiles { p.tiles } else { Some(p.f32) });
    let peak = row.gflop.zip(peak).map_or(String::new(), |(g, peak)| format!("{:.0}%", 100.0 * g / row.median.as_secs_f64() / peak));
    format!("| {:<CASE_WIDTH$} | {:>10.3} | {:>16} | {:>7} |", row.case, ms, throughput, peak)
}

pub fn json_row(row: &Row) -> String {
    let mut v = serde_json::json!({ "case": row.id, "median_ms": row.median.as_secs_f64() * 1e3 });
    if let Some((value, unit)) = row.throughput {
        v[unit.replace('/', "_per_")] = serde_json::json!(value);
    }
    if let Some(g) = row.gflop {
        v["gflop"] = serde_json::json!(g);
    }
    v.to_string()
}

pub fn header() -> String {
    let rule = |n: usize| "-".repeat(n + 2);
    format!(
        "| {:<CASE_WIDTH$} | {:>10} | {:>16} | {:>7} |\n|{}|{}|{}|{}|",
        "case", "median ms", "throughput", "% peak", rule(CASE_WIDTH), rule(10), rule(16), rule(7)
    )
}
