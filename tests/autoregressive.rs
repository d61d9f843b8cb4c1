//! The autoregressive twin: its causal mask, its cached decoding, training it, and the judge.

use burn::prelude::*;
use tiny_diffusion::data::TINY_SHAKESPEARE;
use tiny_diffusion::diffusion::{DecodeOptions, Denoiser, Time};
use tiny_diffusion::kind::ModelDenoiser;
use tiny_diffusion::judge::Judge;
use tiny_diffusion::kind::ModelKind;
use tiny_diffusion::model::{Model, ModelConfig, Preset};
use tiny_diffusion::vocab::{MASK_ID, Vocab};

fn tiny_ar(seed: u64) -> Model {
    let device = Device::flex();
    device.seed(seed);
    let config = ModelConfig { kind: ModelKind::Ar, ..Preset::Tiny.config(66) };
    let mut model = config.init(&device);
    // Zero-initialised projections make a fresh model ignore its context: give them weights.
    for block in &mut model.blocks {
        let d = block.attn.c_proj.weight.dims();
        block.attn.c_proj.weight = burn::module::Param::from_tensor(Tensor::random(d, burn::tensor::Distribution::Normal(0.0, 0.2), &device));
    }
    model
}

fn forward(model: &Model, tokens: &[u32]) -> Vec<f32> {
    let data: Vec<i64> = tokens.iter().map(|&t| t as i64).collect();
    let input = Tensor::<2, Int>::from_data(TensorData::new(data, [1, tokens.len()]), &Device::flex());
    model.forward(input, None).try_into_vec_as::<f32>().unwrap()
}

#[test]
fn no_position_sees_the_future() {
    let model = tiny_ar(1);
    let tokens: Vec<u32> = (0..40).map(|i| 1 + (i * 7 % 60) as u32).collect();
    let mut changed = tokens.clone();
    changed[25] = 3;
    let (a, b) = (forward(&model, &tokens), forward(&model, &changed));
    let row = |v: &[f32], i: usize| v[i * 66..(i + 1) * 66].to_vec();
    for i in 0..25 {
        assert_eq!(row(&a, i), row(&b, i), "position {i} saw position 25");
    }
    for i in 25..40 {
        assert_ne!(row(&a, i), row(&b, i), "position {i} should see position 25");
    }
    // A masked-diffusion model of the same weights does see it from earlier positions.
    let mut bidirectional = model.clone();
    bidirectional.blocks.iter_mut().for_each(|b| b.attn.causal = false);
    assert_ne!(row(&forward(&bidirectional, &tokens), 3), row(&forward(&bidirectional, &changed), 3));
}

#[test]
fn cached_next_character_logits_equal_a_fresh_forward_pass() {
    let model = tiny_ar(2);
    let denoiser = ModelDenoiser::new(model.clone(), Device::flex());
    let text: Vec<u32> = (0..30).map(|i| 1 + (i * 11 % 64) as u32).collect();
    // Position by position as generation asks (each call extends the cache by one row), then a
    // jump back, which must drop the rows that no longer match, and a restart from nothing.
    for p in (0..30).chain([5, 17, 0, 3]) {
        let mut window = text.clone();
        window[p..].fill(MASK_ID);
        let cached = denoiser.logits(&window, Time::MaskRate(1.0), &[p]);
        // The fresh pass reads MASK (start of window), then the text before p.
        let read: Vec<u32> = std::iter::once(MASK_ID).chain(text[..p].iter().copied()).collect();
        let fresh = forward(&model, &read);
        let last = &fresh[p * 66..(p + 1) * 66];
        assert_eq!(cached[MASK_ID as usize], f32::NEG_INFINITY, "MASK is never written");
        let diff = cached[1..].iter().zip(&last[1..]).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(diff < 1e-4, "position {p}: max |Δ| = {diff}");
    }
}

#[test]
fn an_autoregressive_generation_writes_one_character_per_step_left_to_right() {
    let denoiser = ModelDenoiser::new(tiny_ar(3), Device::flex());
    let prompt = [5u32, 6, 7];
    let options = DecodeOptions { seed: 4, ..DecodeOptions::default() };
    let mut generation = tiny_diffusion::kind::generation(&denoiser, &prompt, 150, 16, options);
    let mut written = Vec::new();
    while let Some(frame) = generation.step(&denoiser) {
        assert_eq!(frame.decoded_now.len(), 1, "one character per step");
        let i = frame.decoded_now[0];
        assert!(frame.cells[..i].iter().all(|c| !c.is_masked()), "everything left of the new character is written");
        assert!(frame.cells[i].confidence > 0.0 && frame.cells[i].confidence <= 1.0);
        written.push(frame.offset + i);
    }
    assert_eq!(written, (3..150).collect::<Vec<_>>());
    assert_eq!(&generation.tokens()[..3], &prompt);
    assert!(!generation.tokens().contains(&MASK_ID));
}

#[test]
fn a_gap_before_known_text_is_refused_for_an_autoregressive_model_with_a_reason() {
    let err = ModelKind::Ar.check_prompt(&[4, MASK_ID, 5]).unwrap_err();
    assert!(err.contains("cannot see text to the right"), "{err}");
    assert!(ModelKind::Ar.check_prompt(&[4, 5, MASK_ID, MASK_ID]).is_ok());
    assert!(ModelKind::Masked.check_prompt(&[4, MASK_ID, 5]).is_ok());
}

#[test]
fn the_judge_prefers_shakespeare_to_noise_and_refuses_a_masked_model() {
    let judge = Judge::load(None, &Device::flex()).unwrap();
    let held_out = &TINY_SHAKESPEARE[TINY_SHAKESPEARE.len() - 1500..];
    let vocab = Vocab::from_text(TINY_SHAKESPEARE).unwrap();
    // The same characters in a scrambled order: the same letters, no language.
    let ids = vocab.encode(held_out).unwrap();
    let scrambled: Vec<u32> = (0..ids.len()).map(|i| ids[(i * 7919) % ids.len()]).collect();
    let (good, bad) = (judge.nll(held_out).unwrap(), judge.nll(&vocab.decode(&scrambled, '_')).unwrap());
    assert!(good < 2.0, "held-out Shakespeare: {good} nats/char");
    assert!(bad > good + 1.0, "scrambled {bad} vs held-out {good}");
    assert!(judge.nll("ROMEO \u{263a}").unwrap_err().to_string().contains("cannot read"));

    let dir = tempfile::tempdir().unwrap();
    let (config, model) = tiny_diffusion::shipped::load(&Device::flex()).unwrap();
    tiny_diffusion::checkpoint::save(dir.path(), &config, &model, None).unwrap();
    let err = Judge::load(Some(dir.path()), &Device::flex()).err().unwrap().to_string();
    assert!(err.contains("must be an autoregressive model"), "{err}");
}

#[test]
fn the_judge_reads_a_shared_prefix_once_and_scores_each_ending_as_the_whole_text() {
    let judge = Judge::load(None, &Device::flex()).unwrap();
    let prefix = "But soft, what light through yonder ";
    let endings = ["window breaks?", " breaks?", "", "w"].map(String::from);
    let shared = judge.total_nll_after(prefix, &endings).unwrap();
    for (ending, nats) in endings.iter().zip(&shared) {
        let text = format!("{prefix}{ending}");
        let whole = judge.nll(&text).unwrap() * text.chars().count() as f64;
        assert!((nats - whole).abs() < 1e-3, "{ending:?}: {nats} with the prefix read once, {whole} read whole");
    }
    // No prefix; and texts longer than the judge's context (read in windows).
    let long = TINY_SHAKESPEARE[..300].to_string();
    let alone = judge.total_nll_after("", std::slice::from_ref(&long)).unwrap()[0];
    assert!((alone - judge.nll(&long).unwrap() * 300.0).abs() < 1e-2);
    assert!(judge.total_nll_after(prefix, &["\u{263a}".to_string()]).unwrap_err().to_string().contains("cannot read"));
}
