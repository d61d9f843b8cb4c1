//! The engine end to end on tiny models: learning, checkpoints, resumption, decoding.

// The cache API takes a list of row ranges, and one range is a list of one.
#![allow(clippy::single_range_in_vec_init)]

use burn::module::Module;
use burn::prelude::*;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use tiny_diffusion::checkpoint::{self, CheckpointConfig};
use tiny_diffusion::data::{DataSource, TINY_SHAKESPEARE};
use tiny_diffusion::diffusion::{DecodeOptions, Denoiser, Generation, Strategy, Time};
use tiny_diffusion::kind::ModelDenoiser;
use tiny_diffusion::model::{ModelConfig, Preset, Rope, rms_norm};
use tiny_diffusion::train::{TrainEvent, TrainSettings, train};
use tiny_diffusion::vocab::{MASK_ID, Vocab};

/// The first 30k characters of the built-in Tiny Shakespeare, written to a temp file.
fn short_text(dir: &Path) -> DataSource {
    let path = dir.join("short.txt");
    std::fs::write(&path, &TINY_SHAKESPEARE[..30_000]).unwrap();
    DataSource::File(path)
}

fn tiny_settings(steps: usize) -> TrainSettings {
    TrainSettings {
        steps,
        batch: 16,
        seq_len: 32,
        warmup_steps: 10,
        eval_every: 0,
        eval_windows: 32,
        sample_every: 0,
        save_every: 0,
        ..TrainSettings::for_preset(Preset::Tiny)
    }
}

fn tiny_model_config(vocab: usize) -> ModelConfig {
    Preset::Tiny.config(vocab)
}

fn logits(denoiser: &dyn Denoiser, tokens: &[u32]) -> Vec<f32> {
    denoiser.logits(tokens, Time::MaskRate(0.5), &(0..tokens.len()).collect::<Vec<_>>())
}

#[test]
fn cached_rows_give_the_full_forward_when_nothing_changed_and_stay_close_when_the_rows_did() {
    let device = Device::flex();
    let (ckpt, model) = tiny_diffusion::shipped::load(&device).unwrap();
    let denoiser = ModelDenoiser::new(model, device);
    let vocab = denoiser.vocab_size();
    let mut tokens: Vec<u32> = (0..ckpt.model.context).map(|i| if i >= 100 { MASK_ID } else { 1 + (i * 7 % 60) as u32 }).collect();
    let positions = [100, 101, 102, 115];
    let max_diff = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);

    let refreshed = denoiser.logits_cached(&tokens, Time::MaskRate(0.5), &positions, &[96..128], true);
    let exact = denoiser.logits(&tokens, Time::MaskRate(0.5), &positions);
    assert!(max_diff(&refreshed, &exact) < 1e-4, "a refresh is the full pass");
    let reused = denoiser.logits_cached(&tokens, Time::MaskRate(0.5), &positions, &[96..128], false);
    assert!(max_diff(&reused, &exact) < 1e-4, "nothing changed: the cache is exact");
    // Several ranges (one per lane) recompute together, and are as exact.
    let (apart, lanes) = ([3, 100, 101, 200], [0..8, 96..128, 192..224]);
    let reused = denoiser.logits_cached(&tokens, Time::MaskRate(0.5), &apart, &lanes, false);
    let exact_apart = denoiser.logits(&tokens, Time::MaskRate(0.5), &apart);
    assert!(max_diff(&reused, &exact_apart) < 1e-4, "nothing changed: every range is exact");

    // Commit characters inside the rows: the reuse is now approximate, but must see the change.
    for (i, t) in tokens.iter_mut().enumerate().take(104).skip(100) {
        *t = 1 + (i % 50) as u32;
    }
    let positions = [104, 105, 110];
    let reused = denoiser.logits_cached(&tokens, Time::MaskRate(0.5), &positions, &[96..128], false);
    let exact = denoiser.logits(&tokens, Time::MaskRate(0.5), &positions);
    let before = denoiser.logits_cached(&tokens, Time::MaskRate(0.5), &positions, &[96..128], true);
    assert!(max_diff(&before, &exact) < 1e-4);
    let stale = max_diff(&reused, &exact);
    assert!(stale > 0.0 && stale < 2.0, "stale keys outside the rows move logits a little: {stale}");
    assert_eq!(reused.len(), positions.len() * vocab);
}

#[test]
fn steps_over_the_same_rows_read_the_full_pass_for_every_other_row() {
    // The recomputed rows' keys and values are written into the cache, in place; a step over the
    // same rows overwrites them before reading, so the second of two steps gives what it would
    // give straight after the full pass.
    let device = Device::flex();
    let (ckpt, model) = tiny_diffusion::shipped::load(&device).unwrap();
    let denoiser = ModelDenoiser::new(model, device);
    let full: Vec<u32> = (0..ckpt.model.context).map(|i| if (100..130).contains(&i) { MASK_ID } else { 1 + (i * 7 % 60) as u32 }).collect();
    let commit = |upto: usize| -> Vec<u32> { full.iter().enumerate().map(|(i, &t)| if (100..upto).contains(&i) { 1 + (i % 50) as u32 } else { t }).collect() };
    let (rows, positions, time) = ([96..128, 160..176], [110, 111, 120], Time::MaskRate(0.5));
    denoiser.logits_cached(&full, time, &positions, &rows, true);
    denoiser.logits_cached(&commit(104), time, &positions, &rows, false);
    let second = denoiser.logits_cached(&commit(108), time, &positions, &rows, false);
    denoiser.logits_cached(&full, time, &positions, &rows, true);
    let straight_after = denoiser.logits_cached(&commit(108), time, &positions, &rows, false);
    assert_eq!(second, straight_after);
}

#[test]
fn each_thread_reuses_its_own_cached_rows() {
    let device = Device::flex();
    let (ckpt, model) = tiny_diffusion::shipped::load(&device).unwrap();
    let denoiser = ModelDenoiser::new(model, device);
    let window = |shift: usize| -> Vec<u32> { (0..ckpt.model.context).map(|i| if (100..120).contains(&i) { MASK_ID } else { 1 + ((i * 7 + shift) % 60) as u32 }).collect() };
    let (mine, theirs) = (window(0), window(13));
    let positions = [100, 101, 110];
    let exact = denoiser.logits(&mine, Time::MaskRate(0.5), &positions);
    let both_cached = std::sync::Barrier::new(2);
    let reused = std::thread::scope(|s| {
        let me = s.spawn(|| {
            denoiser.logits_cached(&mine, Time::MaskRate(0.5), &positions, &[96..128], true);
            both_cached.wait();
            denoiser.logits_cached(&mine, Time::MaskRate(0.5), &positions, &[96..128], false)
        });
        s.spawn(|| {
            // Another window of the same length, cached on another thread in between.
            denoiser.logits_cached(&theirs, Time::MaskRate(0.5), &positions, &[96..128], true);
            both_cached.wait();
        });
        me.join().unwrap()
    });
    let max_diff = reused.iter().zip(&exact).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
    assert!(max_diff < 1e-4, "nothing changed in my window, so my cache is exact: {max_diff}");
}

#[test]
fn logits_at_a_few_positions_equal_the_full_forward_there() {
    // The shipped model: trained weights, so every block (the last one included) changes its input.
    let device = Device::flex();
    let (ckpt, model) = tiny_diffusion::shipped::load(&device).unwrap();
    let denoiser = ModelDenoiser::new(model, device);
    let vocab = denoiser.vocab_size();
    let tokens: Vec<u32> = (0..ckpt.model.context).map(|i| if i % 3 == 0 { MASK_ID } else { 1 + (i * 7 % 60) as u32 }).collect();
    let full = logits(&denoiser, &tokens);
    let positions = [255, 0, 99, 100, 3];
    let some = denoiser.logits(&tokens, Time::MaskRate(0.5), &positions);
    assert_eq!(some.len(), positions.len() * vocab);
    for (row, &p) in some.chunks_exact(vocab).zip(&positions) {
        let reference = &full[p * vocab..(p + 1) * vocab];
        let diff = row.iter().zip(reference).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(diff < 1e-4, "position {p}: logits differ by {diff}");
    }
}

#[test]
fn tiny_model_loss_falls_well_below_its_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = short_text(dir.path());
    let mut losses = Vec::new();
    let mut evals = Vec::new();
    let settings = TrainSettings { eval_every: 400, lr: 5e-3, ..tiny_settings(400) };
    let outcome = train(&settings, &data, &dir.path().join("ck"), &Device::flex(), false, &AtomicBool::new(false), &mut |e| {
        match e {
            TrainEvent::Step { loss, .. } => losses.push(loss),
            TrainEvent::Eval { val_loss, val_bits_per_char, .. } => evals.push((val_loss, val_bits_per_char)),
            _ => {}
        }
    })
    .unwrap();
    // An untrained model guesses uniformly: ln(vocab) ≈ 4.1 nats.
    let start = losses[0];
    let end: f32 = losses[losses.len() - 50..].iter().sum::<f32>() / 50.0;
    assert!(start > 3.9, "initial loss {start}");
    assert!(end < start - 0.8, "loss went from {start} to {end}");
    // Below the text's unigram entropy (3.28 nats): the model uses context, not only frequencies.
    let (val_loss, bpc) = evals[0];
    assert!(val_loss < 3.2, "validation loss {val_loss}");
    assert!(bpc.is_finite() && bpc > 0.0 && bpc < 8.0, "bits/char {bpc}");
    assert_eq!(outcome.config.training.steps, 400);
    assert_eq!(outcome.config.training.tokens_seen, 400 * 16 * 32);
    assert_eq!(outcome.config.training.val_loss, Some(val_loss));
}

#[test]
fn checkpoint_roundtrip_gives_identical_logits() {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::flex();
    let vocab = Vocab::from_text("abcdefgh \n").unwrap();
    for n_timesteps in [0, 16] {
        let config = ModelConfig { n_timesteps, ..tiny_model_config(vocab.size()) };
        device.seed(n_timesteps as u64 + 1);
        let model = config.init(&device);
        let ck = CheckpointConfig::new(config.clone(), vocab.clone());
        checkpoint::save(dir.path(), &ck, &model, None).unwrap();
        let (loaded_ck, loaded) = checkpoint::load(dir.path(), &device).unwrap();
        assert_eq!(loaded_ck, ck);
        let tokens = vec![1, 2, MASK_ID, 4, MASK_ID, 6, 7, 8];
        let a = logits(&ModelDenoiser::new(model, device.clone()), &tokens);
        let b = logits(&ModelDenoiser::new(loaded, device.clone()), &tokens);
        assert_eq!(a, b);
    }
}

#[test]
fn broken_checkpoints_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::flex();
    let vocab = Vocab::from_text("abcdefgh").unwrap();
    let config = tiny_model_config(vocab.size());
    let ck = CheckpointConfig::new(config.clone(), vocab);
    checkpoint::save(dir.path(), &ck, &config.init(&device), None).unwrap();
    let weights = dir.path().join(checkpoint::WEIGHTS_FILE);
    let bytes = std::fs::read(&weights).unwrap();

    let err = checkpoint::load(&dir.path().join("nope"), &device).err().unwrap();
    assert!(format!("{err:#}").contains("does not exist"), "{err:#}");

    std::fs::write(&weights, &bytes[..bytes.len() / 2]).unwrap();
    let Err(err) = checkpoint::load(dir.path(), &device) else { panic!("truncated weights must not load") };
    assert!(format!("{err:#}").contains(checkpoint::WEIGHTS_FILE), "{err:#}");

    std::fs::write(&weights, &bytes).unwrap();
    let wider = CheckpointConfig::new(ModelConfig { n_embd: 96, ..config.clone() }, ck.vocab.clone());
    std::fs::write(dir.path().join("config.json"), serde_json::to_string(&wider).unwrap()).unwrap();
    let Err(err) = checkpoint::load(dir.path(), &device) else { panic!("wrong shapes must not load") };
    assert!(format!("{err:#}").contains("config.json's n_embd does not match the weights"), "{err:#}");

    std::fs::write(dir.path().join("config.json"), "{\"format_version\": 1").unwrap();
    assert!(checkpoint::load(dir.path(), &device).is_err());

    std::fs::remove_file(&weights).unwrap();
    std::fs::write(dir.path().join("config.json"), serde_json::to_string(&ck).unwrap()).unwrap();
    let err = checkpoint::load(dir.path(), &device).err().unwrap();
    assert!(format!("{err:#}").contains("cannot read"), "{err:#}");
}

#[test]
fn resume_continues_the_step_count_and_optimizer() {
    let dir = tempfile::tempdir().unwrap();
    let data = short_text(dir.path());
    let out = dir.path().join("ck");
    let stop = AtomicBool::new(false);
    train(&tiny_settings(20), &data, &out, &Device::flex(), false, &stop, &mut |_| {}).unwrap();
    assert!(checkpoint::is_resumable(&out));

    let mut started = None;
    let mut steps = Vec::new();
    let outcome = train(&tiny_settings(30), &data, &out, &Device::flex(), true, &stop, &mut |e| match e {
        TrainEvent::Started { step, resumed, .. } => started = Some((step, resumed)),
        TrainEvent::Step { step, .. } => steps.push(step),
        _ => {}
    })
    .unwrap();
    assert_eq!(started, Some((20, true)));
    assert_eq!(steps, (21..=30).collect::<Vec<_>>());
    assert_eq!(outcome.config.training.steps, 30);
    assert_eq!(outcome.config.training.tokens_seen, 30 * 16 * 32);

    // Already at 30 steps: resuming to 30 again is refused with a hint.
    let err = train(&tiny_settings(30), &data, &out, &Device::flex(), true, &stop, &mut |_| {}).err().unwrap();
    assert!(err.to_string().contains("--steps"), "{err}");
}

#[test]
fn a_timed_run_ends_on_its_budget_and_resumes_with_a_longer_one() {
    let dir = tempfile::tempdir().unwrap();
    let data = short_text(dir.path());
    let out = dir.path().join("ck");
    let stop = AtomicBool::new(false);
    let timed = |seconds: f64| TrainSettings { time_budget: Some(seconds), steps: 0, ..tiny_settings(1) };
    let mut walls = Vec::new();
    let outcome = train(&timed(1.0), &data, &out, &Device::flex(), false, &stop, &mut |e| {
        if let TrainEvent::Step { wall_seconds, .. } = e {
            walls.push(wall_seconds)
        }
    })
    .unwrap();
    // `steps` is no cap on a timed run: it stops at the first step that ends past the budget.
    let training = &outcome.config.training;
    assert!(!outcome.interrupted && training.steps > 1 && training.steps == walls.len());
    assert!(walls[walls.len() - 2] < 1.0 && walls[walls.len() - 1] >= 1.0, "{walls:?}");
    assert_eq!(training.wall_seconds, walls[walls.len() - 1]);

    // The budget is spent: resuming with it is refused with a hint; a longer one continues.
    let err = train(&timed(1.0), &data, &out, &Device::flex(), true, &stop, &mut |_| {}).err().unwrap();
    assert!(err.to_string().contains("--time"), "{err}");
    let before = training.steps;
    let resumed = train(&timed(1.5), &data, &out, &Device::flex(), true, &stop, &mut |_| {}).unwrap();
    assert!(resumed.config.training.steps > before && resumed.config.training.wall_seconds >= 1.5);
}

#[test]
fn stop_flag_saves_and_reports_interruption() {
    let dir = tempfile::tempdir().unwrap();
    let data = short_text(dir.path());
    let out = dir.path().join("ck");
    let stop = AtomicBool::new(false);
    let outcome = train(&tiny_settings(1000), &data, &out, &Device::flex(), false, &stop, &mut |e| {
        if let TrainEvent::Step { step: 5, .. } = e {
            stop.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    })
    .unwrap();
    assert!(outcome.interrupted);
    assert_eq!(checkpoint::read_config(&out).unwrap().training.steps, 5);
    assert!(checkpoint::is_resumable(&out));
}

#[test]
fn presets_have_the_documented_sizes() {
    let device = Device::flex();
    for (preset, approx) in [(Preset::Small, 3.2e6), (Preset::Base, 10.7e6)] {
        let config = preset.config(66);
        let n = config.init(&device).num_params();
        assert_eq!(n, config.num_params());
        assert!((n as f64 - approx).abs() / approx < 0.05, "{preset:?}: {n} params");
    }
}

#[test]
fn attention_is_bidirectional() {
    let device = Device::flex();
    device.seed(5);
    let config = tiny_model_config(10);
    let model = config.init(&device);
    // Zero-initialised projections make blocks the identity; perturb them so attention matters.
    let model = model.map(&mut Perturb);
    let d = ModelDenoiser::new(model, device);
    let a = logits(&d, &[1, 2, 3, 4, 5, 6]);
    let b = logits(&d, &[1, 2, 3, 4, 5, 9]);
    // Changing the last character changes the prediction at the first.
    let first = |v: &[f32]| v[..10].to_vec();
    assert_ne!(first(&a), first(&b));
}

#[test]
fn a_new_timestep_model_starts_as_the_plain_model() {
    // A randomly initialised timestep embedding stalled training at the unigram loss; starting
    // from zero, the timestep changes nothing until the model learns to use it.
    let device = Device::flex();
    let config = ModelConfig { n_timesteps: 16, ..tiny_model_config(10) };
    let model = config.init(&device);
    let weights = model.time_emb.as_ref().unwrap().weight.val().into_data().try_to_vec::<f32>().unwrap();
    assert!(weights.iter().all(|&w| w == 0.0));
    let tokens = || Tensor::<2, Int>::from_data(TensorData::new(vec![1i64, 0, 3, 0, 5, 6], [1, 6]), &device);
    let at = |t: i64| {
        let ts = Tensor::<1, Int>::from_data(TensorData::new(vec![t], [1]), &device);
        model.forward(tokens(), Some(ts)).into_data().try_to_vec::<f32>().unwrap()
    };
    assert_eq!(at(0), at(15));
}

/// Four masked sequences of 16 ids below 10, the same every time.
fn fixed_batch() -> tiny_diffusion::data::Batch {
    use tiny_diffusion::diffusion::masking::{MaskSchedule, draw_rates, mask_batch};
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(0);
    let windows: Vec<Vec<u32>> = (0..4).map(|r| (0..16).map(|i| 1 + (r * 3 + i) % 9).collect()).collect();
    mask_batch(&windows, &draw_rates(4, MaskSchedule::Stratified, &mut rng), &mut rng)
}

#[test]
fn the_first_adamw_step_moves_weights_by_the_learning_rate_even_for_small_gradients() {
    // Adam divides by the gradient's own size, so its first step is ±lr whatever the scale, as
    // long as ε is negligible. Burn's default ε = 1e-5 is not, for gradients this small, and it
    // trained measurably slower than PyTorch (ε = 1e-8) on the same recipe (docs/training.md).
    use burn::optim::GradientsParams;
    use tiny_diffusion::loss::losses;
    let device = Device::flex().autodiff();
    let model = tiny_model_config(10).init(&device);
    let batch = fixed_batch();
    let head_grad_max = |grads: &burn::tensor::Gradients| {
        let g = model.lm_head.weight.val().grad(grads).unwrap().into_data().try_to_vec::<f32>().unwrap();
        g.iter().fold(0.0f32, |m, x| m.max(x.abs()))
    };
    let probe = head_grad_max(&losses(&model, &batch, &device).0.backward());
    // Scale the loss so the head's largest gradient is 1e-6.
    let grads = (losses(&model, &batch, &device).0 * (1e-6 / probe)).backward();
    assert!((head_grad_max(&grads) / 1e-6 - 1.0).abs() < 1e-3);
    let before = model.lm_head.weight.val().into_data().try_to_vec::<f32>().unwrap();
    let grads = GradientsParams::from_grads(grads, &model);
    let lr = 1e-3;
    let model = tiny_settings(10).optimizer().step(lr, model.clone(), grads);
    let after = model.lm_head.weight.val().into_data().try_to_vec::<f32>().unwrap();
    let moved = before.iter().zip(&after).map(|(b, a)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!((moved as f64 / lr - 1.0).abs() < 0.02, "largest step {moved:e}, expected ≈ lr = {lr:e}");
}

#[test]
fn a_checkpoint_keeps_the_muon_and_adamw_state() {
    // A resumed run must go on with the saved momentum (Muon) and moments (AdamW): the next step
    // from the reloaded optimiser is the one the running optimiser would have taken, and a
    // fresh optimiser would take a different one.
    use burn::optim::ModuleOptimizer;
    use tiny_diffusion::model::Model;
    use tiny_diffusion::train::train_step;
    let dir = tempfile::tempdir().unwrap();
    let device = Device::flex().autodiff();
    let vocab = Vocab::from_text("abcdefgh \n").unwrap();
    let config = tiny_model_config(vocab.size());
    let settings = TrainSettings { muon_lr: Some(0.02), ..tiny_settings(10) };
    let batch = fixed_batch();
    let step = |model: Model, optim: &mut ModuleOptimizer| train_step(model, optim, &batch, settings.lr, settings.matmul, &device).0;
    let weights = |m: &Model| -> Vec<f32> {
        let mut w = m.blocks[0].mlp.c_fc.weight.val().try_into_vec_as::<f32>().unwrap();
        w.extend(m.token_emb.weight.val().try_into_vec_as::<f32>().unwrap());
        w
    };

    let mut optim = settings.optimizer();
    let mut model = config.init(&device);
    for _ in 0..2 {
        model = step(model, &mut optim);
    }
    checkpoint::save(dir.path(), &CheckpointConfig::new(config, vocab), &model.valid(), Some(&optim)).unwrap();
    let (_, reloaded, mut reloaded_optim) = checkpoint::load_resumable(dir.path(), &device, settings.optimizer()).unwrap();
    assert_eq!(weights(&reloaded), weights(&model));

    let fresh = step(reloaded.clone(), &mut settings.optimizer());
    let continued = step(model, &mut optim);
    let resumed = step(reloaded, &mut reloaded_optim);
    assert_eq!(weights(&resumed), weights(&continued));
    assert_ne!(weights(&fresh), weights(&continued));
}

struct Perturb;
impl burn::module::ModuleMapper for Perturb {
    fn map_float<const D: usize>(&mut self, param: burn::module::Param<Tensor<D>>) -> burn::module::Param<Tensor<D>> {
        param.map(|t| t.clone() + t.random_like(burn::tensor::Distribution::Normal(0.0, 0.1)))
    }
}

#[test]
fn rms_norm_and_rope_preserve_what_they_should() {
    let device = Device::flex();
    let x = Tensor::<4>::random([1, 2, 5, 8], burn::tensor::Distribution::Normal(0.0, 3.0), &device);
    let normed = rms_norm(x.clone());
    let rms: Vec<f32> = normed.square().mean_dim(3).sqrt().try_into_vec_as::<f32>().unwrap();
    assert!(rms.iter().all(|r| (r - 1.0).abs() < 1e-4), "{rms:?}");
    // Rotation keeps each vector's length, and position 0 is not rotated.
    let rotated = Rope::new(5, 8, &device).apply(x.clone());
    let norm = |t: Tensor<4>| -> Vec<f32> { t.square().sum_dim(3).try_into_vec_as::<f32>().unwrap() };
    for (a, b) in norm(x.clone()).iter().zip(norm(rotated.clone())) {
        assert!((a - b).abs() < 1e-3 * a.max(1.0));
    }
    let p0 = |t: Tensor<4>| -> Vec<f32> { t.narrow(2, 0, 1).try_into_vec_as::<f32>().unwrap() };
    assert_eq!(p0(x), p0(rotated));
}

#[test]
fn trained_model_infills_only_the_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let data = short_text(dir.path());
    let out = dir.path().join("ck");
    train(&tiny_settings(40), &data, &out, &Device::flex(), false, &AtomicBool::new(false), &mut |_| {}).unwrap();
    let (ck, model) = checkpoint::load(&out, &Device::flex()).unwrap();
    let prompt = ck.vocab.encode_prompt("ROMEO:\nI ____ thee, ___ lady.", '_').unwrap();
    let d = ModelDenoiser::new(model, Device::flex());
    let options = DecodeOptions { strategy: Strategy::Steps, steps: 4, ..DecodeOptions::default() };
    let mut g = Generation::new(&prompt, prompt.len(), ck.model.context, 16, options);
    g.run(&d, |_| {});
    let text = ck.vocab.decode(&g.tokens(), '_');
    assert_eq!(text.chars().count(), prompt.len());
    assert!(!text.contains('_'));
    for (i, (a, b)) in "ROMEO:\nI ____ thee, ___ lady.".chars().zip(text.chars()).enumerate() {
        if a != '_' {
            assert_eq!(a, b, "prompt character {i} changed: {text:?}");
        }
    }
}

#[test]
fn any_utf8_text_trains_and_generates() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("unicode.txt");
    std::fs::write(&data, "Καλημέρα κόσμε — 日本語のテキスト, emoji 🎭 and ünïcödé.\n".repeat(40)).unwrap();
    let out = dir.path().join("ck");
    train(&tiny_settings(5), &DataSource::File(data), &out, &Device::flex(), false, &AtomicBool::new(false), &mut |_| {}).unwrap();
    let (ck, model) = checkpoint::load(&out, &Device::flex()).unwrap();
    assert!(ck.vocab.id('🎭').is_some() && ck.vocab.id('日').is_some());
    let prompt = ck.vocab.encode_prompt("日本__", '_').unwrap();
    let d = ModelDenoiser::new(model, Device::flex());
    let mut g = Generation::new(&prompt, 4, ck.model.context, 16, DecodeOptions::default());
    g.run(&d, |_| {});
    let text = ck.vocab.decode(&g.tokens(), '_');
    assert!(text.starts_with("日本") && text.chars().count() == 4 && !text.contains('_'), "{text}");
}
