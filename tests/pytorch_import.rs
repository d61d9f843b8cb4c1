//! Weights from the Python tiny-diffusion: logits must match PyTorch's, and bad files must fail
//! cleanly. Fixtures come from scripts/make_parity_fixture.py (PyTorch 2.15).

use burn::prelude::*;
use burn::store::pytorch_reader::PytorchReader;
use std::path::{Path, PathBuf};
use std::process::Command;
use tiny_diffusion::data::{Batch, Position, Row};
use tiny_diffusion::vocab::MASK_ID;
use tiny_diffusion::{checkpoint, train};
use tiny_diffusion::model::Model;
use tiny_diffusion::pytorch::{self, ImportOptions, Layout};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pytorch").join(name)
}

struct Expected {
    tokens: Vec<i64>,
    timesteps: Option<Vec<i64>>,
    logits: Vec<f32>,
    shape: Vec<usize>,
}

fn expected(name: &str) -> Expected {
    let reader = PytorchReader::new(fixture(name)).expect("read the expected-logits fixture");
    let ints = |key: &str| {
        reader.get(key).map(|t| t.read().unwrap().chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().unwrap())).collect())
    };
    let logits = reader.get("logits").unwrap();
    Expected {
        tokens: ints("tokens").unwrap(),
        timesteps: ints("timesteps"),
        shape: logits.shape().to_vec(),
        logits: logits.read().unwrap().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect(),
    }
}

fn logits(model: &Model, e: &Expected, device: &Device) -> Vec<f32> {
    let (b, t) = (e.shape[0], e.shape[1]);
    let tokens = Tensor::<2, Int>::from_data(TensorData::new(e.tokens.clone(), [b, t]), device);
    let timesteps = e.timesteps.clone().map(|ts| Tensor::<1, Int>::from_data(TensorData::new(ts, [b]), device));
    model.forward(tokens, timesteps).try_into_vec_as::<f32>().unwrap()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn import(name: &str, heads: usize) -> anyhow::Result<(checkpoint::CheckpointConfig, Model)> {
    let options = ImportOptions { heads: Some(heads), ..Default::default() };
    pytorch::import(&fixture(name), &options, &Device::flex())
}

#[test]
fn v1_logits_match_pytorch() {
    let (config, model) = import("v1.pt", 4).unwrap();
    assert_eq!((config.model.vocab_size, config.model.n_layer, config.model.n_embd, config.model.n_timesteps), (128, 2, 32, 128));
    assert_eq!(config.vocab.id('A'), Some(65), "v1 ids are ASCII codes");
    let e = expected("v1_expected.pt");
    let ours = logits(&model, &e, &Device::flex());
    let diff = max_abs_diff(&ours, &e.logits);
    eprintln!("v1: max |Δlogit| against PyTorch = {diff:e}");
    assert!(diff <= 1e-4, "max |Δlogit| = {diff}");
    let spread = e.logits.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    assert!(spread > 1.0, "the fixture's logits are not trivially small ({spread})");
}

#[test]
fn v2_logits_match_pytorch() {
    let (config, model) = import("v2.pt", 6).unwrap();
    assert_eq!(config.vocab.size(), 66);
    assert_eq!(config.vocab.id('a'), Some(40), "v2 ids: mask, then Tiny Shakespeare's sorted characters");
    let e = expected("v2_expected.pt");
    let diff = max_abs_diff(&logits(&model, &e, &Device::flex()), &e.logits);
    eprintln!("v2: max |Δlogit| against PyTorch = {diff:e}");
    assert!(diff <= 1e-4, "max |Δlogit| = {diff}");
}

/// Every weight of an imported model with PyTorch's name, and whether it is a linear (stored
/// `[in, out]` here, `[out, in]` in PyTorch).
fn named_weights(m: &Model) -> Vec<(String, Tensor<2>, bool)> {
    let mut out = vec![("token_emb.weight".to_string(), m.token_emb.weight.val(), false)];
    if let Some(t) = &m.time_emb {
        out.push(("time_emb.weight".into(), t.weight.val(), false));
    }
    for (i, b) in m.blocks.iter().enumerate() {
        for (name, linear) in [
            ("attn.c_q", &b.attn.c_q),
            ("attn.c_k", &b.attn.c_k),
            ("attn.c_v", &b.attn.c_v),
            ("attn.c_proj", &b.attn.c_proj),
            ("mlp.c_fc", &b.mlp.c_fc),
            ("mlp.c_proj", &b.mlp.c_proj),
        ] {
            out.push((format!("blocks.{i}.{name}.weight"), linear.weight.val(), true));
        }
    }
    let head = if m.time_emb.is_some() { "output_head" } else { "lm_head" };
    out.push((format!("{head}.weight"), m.lm_head.weight.val(), true));
    out
}

/// A fixture file's floats, by key.
fn fixture_floats(reader: &PytorchReader, key: &str) -> Vec<f32> {
    let bytes = reader.get(key).unwrap_or_else(|| panic!("{key} in the fixture")).read().unwrap();
    bytes.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()
}

/// The fixture's model on the autodiff device, and the training batch its gradients came from.
fn training_case(name: &str, heads: usize, timesteps: &[usize]) -> (Model, Batch, PytorchReader) {
    let options = ImportOptions { heads: Some(heads), ..Default::default() };
    let (_, model) = pytorch::import(&fixture(&format!("{name}.pt")), &options, &Device::flex().autodiff()).unwrap();
    let e = expected(&format!("{name}_expected.pt"));
    let reader = PytorchReader::new(fixture(&format!("{name}_grads.pt"))).unwrap();
    let targets = reader.get("targets").unwrap().read().unwrap();
    let inputs: Vec<u32> = e.tokens.iter().map(|&x| x as u32).collect();
    let rates: Vec<f32> = timesteps.iter().map(|&s| (s as f32 + 0.5) / 128.0).collect();
    let targets = targets.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap()) as u32);
    let batch = Batch {
        batch: e.shape[0],
        seq: e.shape[1],
        positions: inputs.iter().zip(targets).map(|(&input, target)| Position { input, target, weight: if input == MASK_ID { 1.0 } else { 0.0 } }).collect(),
        // The middle of each timestep bucket, so v1 models see the fixture's timesteps.
        rows: rates.iter().map(|&rate| Row { rate, per_char: 1.0 / (rate * e.shape[1] as f32) }).collect(),
    };
    (model, batch, reader)
}

/// Our weight as PyTorch lays it out (linears transposed), flattened.
fn torch_layout(weight: Tensor<2>, linear: bool) -> Vec<f32> {
    if linear { weight.transpose() } else { weight }.try_into_vec_as().unwrap()
}

/// The training loss and its gradient for every weight must match PyTorch's: the parity of the
/// logits says nothing about Burn's backward passes (attention, RMSNorm, rotary, gather).
fn gradients_match_pytorch(name: &str, heads: usize, timesteps: &[usize]) {
    let device = Device::flex().autodiff();
    let (model, batch, reader) = training_case(name, heads, timesteps);
    let (loss, _) = tiny_diffusion::loss::losses(&model, &batch, &device);
    let ours_loss = loss.clone().into_scalar::<f32>();
    let torch_loss = fixture_floats(&reader, "loss")[0];
    assert!((ours_loss - torch_loss).abs() < 1e-4, "loss {ours_loss} vs PyTorch {torch_loss}");

    let grads = loss.backward();
    let weights = named_weights(&model);
    assert_eq!(weights.len(), reader.keys().iter().filter(|k| k.starts_with("grad.")).count(), "every weight is compared");
    for (key, weight, linear) in weights {
        let grad = weight.grad(&grads).unwrap_or_else(|| panic!("no gradient for {key}"));
        let ours = torch_layout(grad, linear);
        let theirs = fixture_floats(&reader, &format!("grad.{key}"));
        let scale = theirs.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        let diff = max_abs_diff(&ours, &theirs);
        eprintln!("{name} {key}: max |Δgrad| = {diff:.2e} (max |grad| {scale:.2e})");
        assert!(scale > 0.0, "{key}: PyTorch's gradient is zero, the comparison would be empty");
        assert!(diff <= 1e-3 * scale + 1e-7, "{key}: max |Δgrad| = {diff:e}, max |grad| = {scale:e}");
    }
}

/// Two training steps with the Muon recipe (Muon for the blocks, AdamW for embedding and head)
/// must move every weight as PyTorch's `torch.optim.Muon` + `AdamW` do (the fixture runs Muon's
/// Newton–Schulz iterations in f32, as Burn does, instead of PyTorch's bfloat16).
#[test]
fn muon_steps_match_pytorch() {
    use tiny_diffusion::train::TrainSettings;

    let device = Device::flex().autodiff();
    let (mut model, batch, _) = training_case("v2", 6, &[64, 64]);
    let before: Vec<Vec<f32>> = named_weights(&model).into_iter().map(|(_, w, linear)| torch_layout(w, linear)).collect();
    let settings = TrainSettings {
        lr: 1e-3,
        muon_lr: Some(0.02),
        weight_decay: 0.01,
        grad_clip: 0.0,
        ..TrainSettings::for_preset(tiny_diffusion::model::Preset::Small)
    };
    let mut optim = settings.optimizer();
    for _ in 0..2 {
        // f32 products, as the fixture's (training elsewhere multiplies in bf16 where it can).
        model = train::train_step(model, &mut optim, &batch, settings.lr, tiny_diffusion::fused::Matmul::F32, &device).0;
    }
    let reader = PytorchReader::new(fixture("v2_muon_steps.pt")).unwrap();
    for ((key, weight, linear), before) in named_weights(&model).into_iter().zip(before) {
        let theirs = fixture_floats(&reader, &format!("after.{key}"));
        let ours = torch_layout(weight, linear);
        let step = |after: &[f32]| -> Vec<f32> { after.iter().zip(&before).map(|(a, b)| a - b).collect() };
        let (ours_step, theirs_step) = (step(&ours), step(&theirs));
        let scale = theirs_step.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        let diff = max_abs_diff(&ours_step, &theirs_step);
        // Each side rounds its new weight to f32 once, so one unit in the last place of the weight
        // is rounding, not a different step (for an embedding weight between 2 and 4 that unit,
        // 2.4e-7, is more than 1e-4 of its 2e-3 step; a change in the order of Muon's sums moved
        // one weight by it).
        let ulp = |w: f32| f32::from_bits(w.abs().to_bits() + 1) - w.abs();
        let beyond_rounding = ours.iter().zip(&theirs).map(|(o, t)| (o - t).abs() - ulp(*t)).fold(0.0f32, f32::max);
        eprintln!("{key}: max |Δstep| = {diff:.2e} (max |step| {scale:.2e}; beyond a unit in the last place {beyond_rounding:.2e})");
        assert!(scale > 0.0, "{key}: PyTorch did not move it");
        assert!(beyond_rounding <= 1e-4 * scale, "{key}: max |Δstep| = {diff:e} ({beyond_rounding:e} beyond rounding), max |step| = {scale:e}");
    }
}

#[test]
fn v1_gradients_match_pytorch() {
    gradients_match_pytorch("v1", 4, &[5, 120]);
}

#[test]
fn v2_gradients_match_pytorch() {
    gradients_match_pytorch("v2", 6, &[64, 64]);
}

/// gpt.py's autoregressive model: our ids are its ids + 1 (id 0 is MASK), and our logits at
/// those ids must be PyTorch's.
#[test]
fn gpt_logits_match_pytorch() {
    let (config, model) = import("gpt.pt", 6).unwrap();
    assert_eq!(config.model.kind, tiny_diffusion::kind::ModelKind::Ar);
    assert_eq!(config.model.vocab_size, 66);
    let e = expected_without_mask("gpt_expected.pt");
    let diff = max_abs_diff(&logits_at_chars(&model, &e), &e.logits);
    assert!(diff < 1e-4, "max |Δ| = {diff}");
}

/// A fixture of a model without a mask id (gpt.py, uniform.py), its tokens in our ids (its + 1).
fn expected_without_mask(name: &str) -> Expected {
    let mut e = expected(name);
    e.tokens.iter_mut().for_each(|t| *t += 1);
    e
}

/// Our logits at the characters' ids only (dropping MASK's column), as such a model gives them.
fn logits_at_chars(model: &Model, e: &Expected) -> Vec<f32> {
    logits(model, e, &Device::flex()).chunks_exact(66).flat_map(|row| row[1..].to_vec()).collect()
}

#[test]
fn an_exported_autoregressive_model_has_gpt_py_shapes_and_imports_back() {
    let (config, model) = import("gpt.pt", 6).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gpt.safetensors");
    pytorch::export(&path, &config, &model).unwrap();
    let (back_config, back) = pytorch::import(&path, &ImportOptions::default(), &Device::flex()).unwrap();
    assert_eq!(back_config.model, config.model);
    let e = expected_without_mask("gpt_expected.pt");
    assert_eq!(logits(&model, &e, &Device::flex()), logits(&back, &e, &Device::flex()));
    let header = std::fs::read(&path).unwrap();
    let text = String::from_utf8_lossy(&header[8..2000]);
    assert!(text.contains(r#""token_emb.weight":{"dtype":"F32","shape":[65,48]"#), "{text}");
}

#[test]
fn the_wrong_head_count_gives_different_logits() {
    // The head count is not in the file; this shows the parity test above actually depends on it.
    let (_, model) = import("v2.pt", 3).unwrap();
    let e = expected("v2_expected.pt");
    assert!(max_abs_diff(&logits(&model, &e, &Device::flex()), &e.logits) > 1e-2);
}

#[test]
fn a_format_that_contradicts_the_keys_is_refused() {
    let options = ImportOptions { layout: Some(Layout::V1), heads: Some(6), ..Default::default() };
    let err = pytorch::import(&fixture("v2.pt"), &options, &Device::flex()).unwrap_err().to_string();
    assert!(err.contains("V2"), "{err}");
}

#[test]
fn export_then_import_round_trips_with_pytorch_names() {
    let dir = tempfile::tempdir().unwrap();
    let (config, model) = import("v2.pt", 6).unwrap();
    let file = dir.path().join("model.safetensors");
    pytorch::export(&file, &config, &model).unwrap();

    // PyTorch's names and [out, in] Linear shapes, so `load_state_dict` in Python accepts it.
    let bytes = std::fs::read(&file).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    assert_eq!(header["lm_head.weight"]["shape"], serde_json::json!([66, 48]));
    assert_eq!(header["blocks.1.mlp.c_fc.weight"]["shape"], serde_json::json!([192, 48]));
    assert_eq!(header["__metadata__"]["n_head"], "6");

    // Reading it back needs no flags: the vocabulary and head count travel in the metadata.
    let (again_config, again) = pytorch::import(&file, &ImportOptions::default(), &Device::flex()).unwrap();
    assert_eq!(again_config.model, config.model);
    assert_eq!(again_config.vocab, config.vocab);
    let e = expected("v2_expected.pt");
    assert_eq!(logits(&again, &e, &Device::flex()), logits(&model, &e, &Device::flex()));
}

#[test]
fn v1_exports_keep_output_head() {
    let dir = tempfile::tempdir().unwrap();
    let (config, model) = import("v1.pt", 4).unwrap();
    let file = dir.path().join("v1.safetensors");
    pytorch::export(&file, &config, &model).unwrap();
    let (_, again) = pytorch::import(&file, &ImportOptions::default(), &Device::flex()).unwrap();
    let e = expected("v1_expected.pt");
    assert!(max_abs_diff(&logits(&again, &e, &Device::flex()), &e.logits) <= 1e-4);
}

fn import_error(path: &Path) -> String {
    let options = ImportOptions { heads: Some(6), ..Default::default() };
    format!("{:#}", pytorch::import(path, &options, &Device::flex()).unwrap_err())
}

#[test]
fn missing_keys_are_named() {
    let err = import_error(&fixture("bad_missing_key.pt"));
    assert!(err.contains("missing key"), "{err}");
}

#[test]
fn wrong_shapes_are_named() {
    let err = import_error(&fixture("bad_wrong_shape.pt"));
    assert!(err.contains("blocks.0.attn.c_k.weight") && err.contains("[12, 10]"), "{err}");
}

#[test]
fn a_truncated_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(fixture("v1.pt")).unwrap();
    for keep in [0, 100, bytes.len() / 2, bytes.len() - 10] {
        let path = dir.path().join(format!("cut{keep}.pt"));
        std::fs::write(&path, &bytes[..keep]).unwrap();
        let err = import_error(&path);
        assert!(!err.is_empty(), "truncated to {keep} bytes");
    }
}

#[test]
fn a_pickle_that_calls_a_function_is_refused_and_never_runs() {
    // The fixture's pickle calls os.system("touch /tmp/tiny-diffusion-pickle-ran") when unpickled.
    let marker = Path::new("/tmp/tiny-diffusion-pickle-ran");
    let _ = std::fs::remove_file(marker);
    let err = import_error(&fixture("bad_calls_function.pt"));
    assert!(err.contains("payload") && err.contains("system"), "{err}");
    assert!(!marker.exists(), "the pickle's call was executed");
}

#[test]
fn the_cli_imports_and_generates_from_a_pt_file_directly() {
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_tiny-diffusion");
    let out = dir.path().join("imported");
    let o = Command::new(bin).args(["import"]).arg(fixture("v2.pt")).arg("--out").arg(&out).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(checkpoint::load(&out, &Device::flex()).is_ok());

    for source in [out.as_path(), fixture("v2.pt").as_path()] {
        let o = Command::new(bin)
            .args(["generate", "--length", "30", "--prompt", "AB", "--checkpoint"])
            .arg(source)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(String::from_utf8_lossy(&o.stdout).trim_end_matches('\n').chars().count(), 30);
    }

    let o = Command::new(bin).args(["import"]).arg(fixture("bad_calls_function.pt")).arg("--out").arg(dir.path().join("x")).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).starts_with("error: "));
    assert!(!dir.path().join("x").exists(), "nothing is written for a refused file");
}

#[test]
fn a_head_count_that_does_not_divide_the_width_says_how_to_set_it() {
    let err = format!("{:#}", import("v2.pt", 5).unwrap_err());
    assert!(err.contains("not divisible") && err.contains("import FILE --heads N"), "{err}");
}

/// The Python project's own decoding loops (scripts/make_sampler_fixture.py), step by step, against
/// ours with the flags that name the same rule.
#[test]
fn the_python_samplers_decode_the_same_characters_step_by_step() {
    use tiny_diffusion::diffusion::Generation;
    use tiny_diffusion::kind::ModelDenoiser;
    let cases: Vec<serde_json::Value> = serde_json::from_str(&std::fs::read_to_string(fixture("samplers.json")).unwrap()).unwrap();
    assert_eq!(cases.len(), 5);
    for case in &cases {
        let name = case["name"].as_str().unwrap();
        let heads = if case["weights"] == "v1.pt" { 4 } else { 6 };
        let (config, model) = import(case["weights"].as_str().unwrap(), heads).unwrap();
        let ids = |v: &serde_json::Value| -> Vec<u32> { v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect() };
        let prompt = ids(&case["prompt"]);
        let length = case["length"].as_u64().unwrap() as usize;
        let options = tiny_diffusion::bench::decode::parse_setting(case["flags"].as_str().unwrap()).unwrap();
        let denoiser = ModelDenoiser::new(model, Device::flex());
        let mut generation = Generation::new(&prompt, length, config.model.context, 16, options);
        let mut ours = Vec::new();
        generation.run(&denoiser, |frame| ours.push(frame.tokens()));
        let theirs: Vec<Vec<u32>> = case["steps"].as_array().unwrap().iter().map(ids).collect();
        assert_eq!(ours.len(), theirs.len(), "{name}: step count");
        for (step, (a, b)) in ours.iter().zip(&theirs).enumerate() {
            assert_eq!(a, b, "{name}: the window after step {}", step + 1);
        }
    }
}

/// uniform.py's model: gpt.py's keys, so `--format uniform` names it; bidirectional attention,
/// and our logits at its ids + 1 must be PyTorch's.
#[test]
fn uniform_logits_match_pytorch_and_export_round_trips() {
    let options = ImportOptions { layout: Some(Layout::Uniform), heads: Some(6), ..Default::default() };
    let (config, model) = pytorch::import(&fixture("uniform.pt"), &options, &Device::flex()).unwrap();
    assert_eq!(config.model.kind, tiny_diffusion::kind::ModelKind::Uniform);
    assert_eq!(config.model.vocab_size, 66);
    let e = expected_without_mask("uniform_expected.pt");
    let diff = max_abs_diff(&logits_at_chars(&model, &e), &e.logits);
    assert!(diff < 1e-4, "max |Δ| = {diff}");

    // Read as gpt.py's (what its keys alone suggest), the same weights attend causally: wrong.
    let (as_gpt, causal) = import("uniform.pt", 6).unwrap();
    assert_eq!(as_gpt.model.kind, tiny_diffusion::kind::ModelKind::Ar);
    assert!(max_abs_diff(&logits_at_chars(&causal, &e), &e.logits) > 1e-2);

    // Exported, it says it is uniform, and imports back to the same logits without --format.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("uniform.safetensors");
    pytorch::export(&path, &config, &model).unwrap();
    let (back_config, back) = pytorch::import(&path, &ImportOptions::default(), &Device::flex()).unwrap();
    assert_eq!(back_config.model, config.model);
    assert_eq!(logits(&model, &e, &Device::flex()), logits(&back, &e, &Device::flex()));
}
