//! The GPU path gives the CPU's numbers: `cargo test --release --features wgpu --test wgpu`.
//! `.ci/run` runs it on Mesa's software Vulkan driver (lavapipe), so it is tested on every
//! machine, with or without a GPU.
#![cfg(feature = "wgpu")]

use burn::prelude::Device;
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::process::{Command, Output};
use std::time::{Duration, Instant};
use tiny_diffusion::backend::Backend;
use tiny_diffusion::checkpoint;
use tiny_diffusion::data::{DataSource, random_windows};
use tiny_diffusion::diffusion::{Denoiser, Time};
use tiny_diffusion::fused::Matmul;
use tiny_diffusion::kind::ModelDenoiser;
use tiny_diffusion::model::Preset;
use tiny_diffusion::train::{TrainSettings, train_step};
use tiny_diffusion::vocab::MASK_ID;

fn gpu() -> Device {
    Backend::Wgpu.device().expect("a wgpu adapter (on a machine without a GPU: apt-get install mesa-vulkan-drivers)")
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn the_shipped_models_logits_on_the_gpu_are_the_cpus() {
    let logits = |device: Device| {
        let (config, model) = tiny_diffusion::shipped::load(&device).unwrap();
        // 256 positions: text with every fourth character masked, logits at all of them.
        let text = config.vocab.encode(&tiny_diffusion::data::TINY_SHAKESPEARE[..config.model.context]).unwrap();
        let tokens: Vec<u32> = text.iter().enumerate().map(|(i, &t)| if i % 4 == 1 { MASK_ID } else { t }).collect();
        let positions: Vec<usize> = (0..tokens.len()).collect();
        ModelDenoiser::new(model, device).logits(&tokens, Time::MaskRate(0.25), &positions)
    };
    let (cpu, gpu) = (logits(Device::flex()), logits(gpu()));
    assert_eq!(cpu.len(), 256 * 66);
    let diff = max_diff(&cpu, &gpu);
    assert!(diff <= 1e-4, "max |logit difference| {diff}");
}

#[test]
fn a_cached_step_on_the_gpu_is_the_cpus() {
    let logits = |device: Device| {
        let (config, model) = tiny_diffusion::shipped::load(&device).unwrap();
        let text = config.vocab.encode(&tiny_diffusion::data::TINY_SHAKESPEARE[..config.model.context]).unwrap();
        let mut tokens: Vec<u32> = text.iter().enumerate().map(|(i, &t)| if i >= 100 { MASK_ID } else { t }).collect();
        let denoiser = ModelDenoiser::new(model, device);
        let positions = [100, 101, 102, 115, 200];
        let full = denoiser.logits_cached(&tokens, Time::MaskRate(0.5), &positions, &[96..128, 192..224], true);
        // Commit a few characters inside the rows, and recompute only the rows.
        tokens[100..104].copy_from_slice(&text[100..104]);
        let rows = denoiser.logits_cached(&tokens, Time::MaskRate(0.5), &[104, 105, 201], &[96..128, 192..224], false);
        (full, rows)
    };
    let ((cpu_full, cpu_rows), (gpu_full, gpu_rows)) = (logits(Device::flex()), logits(gpu()));
    let (full, rows) = (max_diff(&cpu_full, &gpu_full), max_diff(&cpu_rows, &gpu_rows));
    assert!(full <= 1e-4 && rows <= 1e-4, "max |logit difference|: full pass {full}, cached rows {rows}");
}

#[test]
fn twenty_training_steps_on_the_gpu_follow_the_cpus_with_adamw_and_with_muon() {
    let corpus = DataSource::BuiltIn.load(None).unwrap();
    for muon_lr in [None, Some(0.02)] {
        let settings = TrainSettings { muon_lr, batch: 8, seq_len: 64, warmup_steps: 5, ..TrainSettings::for_preset(Preset::Tiny) };
        let config = settings.model_config(corpus.vocab.size());
        // One initialisation for both devices.
        let weights = checkpoint::weights_to_bytes(&config.init(&Device::flex())).unwrap();
        let losses = |device: Device| {
            let device = device.autodiff();
            let mut model = checkpoint::model_from_bytes(&config, weights.clone(), &device).unwrap();
            let mut optim = settings.optimizer();
            let mut rng = StdRng::seed_from_u64(7);
            let mut losses = Vec::new();
            for step in 0..20 {
                let windows = random_windows(&corpus.train, settings.batch, settings.seq_len, &mut rng);
                let batch = config.kind.batch(&windows, settings.mask_schedule, config.vocab_size, &mut rng);
                let loss;
                (model, loss) = train_step(model, &mut optim, &batch, settings.lr_at(step, 0.0), Matmul::F32, &device);
                losses.push(loss);
            }
            losses
        };
        let (cpu, gpu) = (losses(Device::flex()), losses(gpu()));
        let diff = max_diff(&cpu, &gpu);
        assert!(diff <= 1e-3, "muon {muon_lr:?}: losses {cpu:?} on the CPU, {gpu:?} on the GPU");
    }
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tiny-diffusion")).args(args).output().expect("run the binary")
}

#[test]
fn greedy_generation_writes_the_same_text_on_both_devices() {
    let text = |device: &str| {
        let o = run(&["generate", "--device", device, "--temperature", "0", "--length", "200", "--seed", "1"]);
        assert!(o.status.success(), "{device}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    let cpu = text("flex");
    // generate ends its output with a newline; the text itself may end in white space.
    assert_eq!(cpu.strip_suffix('\n').unwrap_or(&cpu).chars().count(), 200);
    assert_eq!(text("wgpu"), cpu);
}

#[test]
fn without_a_vulkan_driver_wgpu_is_a_one_line_error_naming_what_to_install() {
    let start = Instant::now();
    let o = Command::new(env!("CARGO_BIN_EXE_tiny-diffusion"))
        .args(["generate", "--device", "wgpu", "--length", "10"])
        .env("VK_ICD_FILENAMES", "/nonexistent.json")
        .env("VK_DRIVER_FILES", "/nonexistent.json")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("no GPU adapter") && err.contains("mesa-vulkan-drivers") && err.contains("--device flex"), "{err}");
    assert!(!err.contains("panicked") && err.trim_end().lines().count() == 1, "{err}");
    assert!(start.elapsed() < Duration::from_secs(15), "took {:?}", start.elapsed());
}

#[test]
fn the_terminal_ui_runs_on_the_gpu() {
    if Command::new("tmux").arg("-V").output().is_err() {
        eprintln!("SKIPPED: tmux is not installed (.ci/run installs it)");
        return;
    }
    let session = format!("td-wgpu-{}", std::process::id());
    let command = format!("{} --device wgpu", env!("CARGO_BIN_EXE_tiny-diffusion"));
    let tmux = |args: &[&str]| Command::new("tmux").args(args).output().expect("run tmux");
    assert!(tmux(&["new-session", "-d", "-s", &session, "-x", "100", "-y", "30", &command]).status.success());
    let start = Instant::now();
    let mut screen;
    // The Watch screen shows the device and decodes the block to its end.
    loop {
        screen = String::from_utf8_lossy(&tmux(&["capture-pane", "-p", "-t", &session]).stdout).into_owned();
        if screen.contains("wgpu") && screen.contains("done") {
            break;
        }
        if start.elapsed() > Duration::from_secs(300) {
            tmux(&["kill-session", "-t", &session]);
            panic!("the Watch screen did not finish a block on wgpu; screen:\n{screen}");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    tmux(&["send-keys", "-t", &session, "q"]);
    std::thread::sleep(Duration::from_millis(500));
    tmux(&["kill-session", "-t", &session]);
}
