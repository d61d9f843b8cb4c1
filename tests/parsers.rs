//! Property tests of every parser that reads outside input: prompts, `config.json`, safetensors
//! weights and PyTorch `.pt` files. Whatever the bytes, the answer is a value or an error with a
//! message, never a panic.

use burn::prelude::Device;
use proptest::prelude::*;
use std::path::Path;
use tiny_diffusion::checkpoint::{self, CheckpointConfig};
use tiny_diffusion::model::Preset;
use tiny_diffusion::pytorch::{self, ImportOptions};
use tiny_diffusion::vocab::{MASK_ID, Vocab};

const SHIPPED_CONFIG: &str = include_str!("../checkpoints/shipped/config.json");

fn has_message(e: &anyhow::Error) -> bool {
    !format!("{e:#}").trim().is_empty()
}

fn config() -> ProptestConfig {
    ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() }
}

/// A byte string changed the ways files get damaged: cut short, bytes flipped, a run overwritten.
#[derive(Debug, Clone)]
enum Damage {
    Truncate(usize),
    Flip(Vec<(usize, u8)>),
    Overwrite(usize, Vec<u8>),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        any::<usize>().prop_map(Damage::Truncate),
        proptest::collection::vec((any::<usize>(), 1u8..=255), 1..8).prop_map(Damage::Flip),
        (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..16)).prop_map(|(at, b)| Damage::Overwrite(at, b)),
    ]
}

fn apply(mut bytes: Vec<u8>, damage: &Damage, head: usize) -> Vec<u8> {
    // Damage lands in the first `head` bytes half of the time (headers are where parsers trip).
    let at = |i: usize, len: usize| if i.is_multiple_of(2) { (i / 2) % head.min(len).max(1) } else { (i / 2) % len.max(1) };
    match damage {
        Damage::Truncate(n) => bytes.truncate(at(*n, bytes.len())),
        Damage::Flip(flips) => {
            for &(i, x) in flips {
                let i = at(i, bytes.len());
                bytes[i] ^= x;
            }
        }
        Damage::Overwrite(i, run) => {
            let start = at(*i, bytes.len());
            for (j, &b) in run.iter().enumerate() {
                if let Some(slot) = bytes.get_mut(start + j) {
                    *slot = b;
                }
            }
        }
    }
    bytes
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_prompt_is_ids_or_an_error(prompt in "\\PC{0,60}", mask in prop_oneof![Just('_'), any::<char>()]) {
        let vocab = Vocab::from_text("abc de_f\n!").unwrap();
        match vocab.encode_prompt(&prompt, mask) {
            Ok(ids) => {
                prop_assert_eq!(ids.len(), prompt.chars().count());
                let gaps = prompt.chars().filter(|&c| c == mask).count();
                prop_assert_eq!(ids.iter().filter(|&&i| i == MASK_ID).count(), gaps);
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn any_config_json_edit_is_a_config_or_an_error(
        field in prop_oneof![Just("vocab_size"), Just("n_layer"), Just("n_head"), Just("n_embd"), Just("context"), Just("n_timesteps"), Just("mask_id"), Just("format_version")],
        value in prop_oneof![Just("0".to_string()), Just("-1".to_string()), Just("1e300".to_string()), Just("1000000000".to_string()), Just(u64::MAX.to_string()), Just("\"x\"".to_string()), Just("null".to_string()), (0u64..100_000).prop_map(|v| v.to_string())],
    ) {
        let mut json: serde_json::Value = serde_json::from_str(SHIPPED_CONFIG).unwrap();
        let parsed: serde_json::Value = serde_json::from_str(&value).unwrap();
        if json["model"].get(field).is_some() { json["model"][field] = parsed } else { json[field] = parsed }
        match CheckpointConfig::from_json(&json.to_string()) {
            Ok(c) => prop_assert!(c.model.validate().is_ok() && c.model.vocab_ids() == c.vocab.size()),
            Err(e) => prop_assert!(has_message(&e)),
        }
    }

    #[test]
    fn any_damaged_config_json_text_is_an_error_or_a_valid_config(d in damage()) {
        let text = apply(SHIPPED_CONFIG.as_bytes().to_vec(), &d, 200);
        if let Ok(text) = String::from_utf8(text)
            && let Ok(c) = CheckpointConfig::from_json(&text)
        {
            prop_assert!(c.model.validate().is_ok());
        }
    }

    #[test]
    fn damaged_safetensors_weights_load_or_fail_with_a_message(d in damage()) {
        let device = Device::flex();
        let config = Preset::Tiny.config(12);
        let bytes = checkpoint::weights_to_bytes(&config.init(&device)).unwrap();
        let damaged = apply(bytes, &d, 512);
        if let Err(e) = checkpoint::model_from_bytes(&config, damaged, &device) {
            prop_assert!(has_message(&e));
        }
    }

    /// A config whose shape fields are multiplied (up to a billion times) is refused before the
    /// model is built: by its bounds, or because the weights' header disagrees.
    #[test]
    fn oversized_shape_fields_are_refused_against_the_weights(
        field in 0usize..4,
        factor in prop_oneof![2usize..10, Just(1000usize), Just(1_000_000usize), Just(1_000_000_000usize)],
    ) {
        let config = Preset::Tiny.config(12);
        let bytes = checkpoint::weights_to_bytes(&config.init(&Device::flex())).unwrap();
        let mut grown = config.clone();
        let slot = match field {
            0 => &mut grown.n_embd,
            1 => &mut grown.n_layer,
            2 => &mut grown.vocab_size,
            _ => &mut grown.n_timesteps,
        };
        *slot = (*slot).max(1) * factor;
        let refused = match grown.validate() {
            Err(e) => e,
            Ok(()) => format!("{:#}", checkpoint::model_from_bytes(&grown, bytes, &Device::flex()).expect_err("the weights do not fit")),
        };
        prop_assert!(!refused.is_empty());
    }

    #[test]
    fn damaged_pt_files_import_or_fail_with_a_message(d in damage()) {
        let original = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pytorch/v2.pt")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("damaged.pt");
        std::fs::write(&path, apply(original, &d, 4096)).unwrap();
        let options = ImportOptions { heads: Some(6), ..Default::default() };
        if let Err(e) = pytorch::import(&path, &options, &Device::flex()) {
            prop_assert!(has_message(&e));
        }
    }
}
