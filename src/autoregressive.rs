//! The autoregressive kind: a causal model that predicts each character from those before it,
//! as the Python project's `gpt.py`. Its batches, its decoding (one character per step through the
//! same `Generation` stream as masked diffusion, with a key/value cache) and the judge's
//! likelihood of a text.
//!
//! Every window the model reads starts with MASK, used as "start of window": the model learns to
//! predict a window's first character from it, so generation can start from nothing. (A model
//! imported from `gpt.pt` never saw it: its MASK embedding is zero.)

use crate::diffusion::{DecodeOptions, Remask, Strategy};
use crate::data::{Batch, Position, Row};
use crate::model::{KvCache, Model};
use crate::vocab::MASK_ID;
use burn::prelude::*;

/// A batch that asks for every character of every window, each from the ones before it.
pub fn shifted_batch(windows: &[Vec<u32>]) -> Batch {
    let batch = windows.len();
    let seq = windows.first().map_or(0, Vec::len);
    let mut positions = Vec::with_capacity(batch * seq);
    for w in windows {
        assert_eq!(w.len(), seq, "all sequences in a batch have the same length");
        positions.extend(reading(w).zip(w).map(|(input, &target)| Position::asked(input, target)));
    }
    Batch { batch, seq, positions, rows: vec![Row { rate: 1.0, per_char: 1.0 / seq.max(1) as f32 }; batch] }
}

/// What the model reads to predict `text`: MASK (start of window), then all but its last character.
fn reading(text: &[u32]) -> impl Iterator<Item = u32> + '_ {
    std::iter::once(MASK_ID).chain(text.iter().copied().take(text.len().saturating_sub(1)))
}

/// Ids as a `[1, n]` tensor: one reading, batch of one.
fn reading_tensor(ids: &[u32], device: &Device) -> Tensor<2, Int> {
    let data: Vec<i64> = ids.iter().map(|&t| t as i64).collect();
    Tensor::<2, Int>::from_data(TensorData::new(data, [1, ids.len()]), device)
}

/// One character per step, the leftmost: the decoding rules' `topk` with one position in a span
/// of one. Temperature, top-k and seed are the user's; nothing is masked again.
pub fn decode_options(options: DecodeOptions) -> DecodeOptions {
    DecodeOptions { strategy: Strategy::Topk, per_step: 1, span: 1, lanes: 1, remask: Remask::None, polish: 0, apart: false, cache: false, ..options }
}

/// Characters that condition the next window: three quarters of it, so that each character is
/// predicted from at least that much text (the Python project slides its window by one; a fresh
/// window costs one pass over these characters).
pub fn overlap(context: usize) -> usize {
    context * 3 / 4
}

/// Next-character logits of a causal model at `positions` of `tokens` (row-major
/// `[positions, vocab]`), each from the characters before it; MASK gets −∞, as it is never
/// written. `cache` holds what the model read last time with its keys and values: a call that
/// extends it computes only the new rows, which makes generating a character one row's work.
pub fn next_char_logits(model: &Model, tokens: &[u32], positions: &[usize], cache: &mut Option<(Vec<u32>, KvCache)>) -> Vec<f32> {
    let device = model.devices()[0].clone();
    let ids = |v: &[u32]| reading_tensor(v, &device);
    let mut logits = match positions {
        // One position: read up to it, reusing the cached rows it shares with the last reading.
        &[p] => {
            let read: Vec<u32> = reading(&tokens[..=p]).collect();
            let (kept, kv) = cache.take().unwrap_or_default();
            let shared = kept.iter().zip(&read).take_while(|(a, b)| a == b).count().min(read.len() - 1);
            let past = (shared > 0).then(|| if shared < kv.len() { kv.truncate(shared) } else { kv });
            let (logits, kv) = crate::fused::on_own_pool(|| model.forward_append(ids(&read[shared..]), past, true));
            *cache = Some((read, kv));
            logits.try_into_vec_as::<f32>().expect("logits are readable as f32")
        }
        _ => {
            let end = positions.iter().max().map_or(0, |p| p + 1);
            let read: Vec<u32> = reading(&tokens[..end]).collect();
            let at: Vec<i64> = positions.iter().map(|&p| p as i64).collect();
            let at = Tensor::<1, Int>::from_data(TensorData::new(at, [positions.len()]), &device);
            let logits = crate::fused::on_own_pool(|| model.forward_at(ids(&read), None, Some(at)));
            logits.try_into_vec_as::<f32>().expect("logits are readable as f32")
        }
    };
    let vocab = model.config.vocab_size;
    logits.chunks_exact_mut(vocab).for_each(|row| row[MASK_ID as usize] = f32::NEG_INFINITY);
    logits
}

/// The negative log-likelihood (nats, summed) of `prefix` followed by each of `endings`, each as
/// `nll_per_char` reads it, with the rows of the shared prefix computed once: a causal model's
/// prefix rows do not depend on what follows. A text longer than the context is read in windows
/// by `nll_per_char`.
pub fn total_nll_after(model: &Model, prefix: &[u32], endings: &[Vec<u32>]) -> Vec<f64> {
    use rayon::prelude::*;
    let device = model.devices()[0].clone();
    let ids = |v: &[u32]| reading_tensor(v, &device);
    // Nats of `targets` under the logits `[1, n, vocab]` of the rows that predict them.
    let nats = |logits: Tensor<3>, targets: &[u32]| -> f64 {
        let logp = burn::tensor::activation::log_softmax(logits, 2).try_into_vec_as::<f32>().expect("logits are readable as f32");
        let vocab = model.config.vocab_size;
        targets.iter().enumerate().map(|(i, &t)| -(logp[i * vocab + t as usize] as f64)).sum()
    };
    // The prefix's rows read MASK and all but its last character (`reading`); that one is the
    // first row read after it.
    let read: Vec<u32> = reading(prefix).collect();
    let shared = (!prefix.is_empty()).then(|| {
        let (logits, kv) = crate::fused::on_own_pool(|| model.forward_append(ids(&read), None, false));
        (nats(logits, prefix), kv)
    });
    crate::fused::on_own_pool(|| {
        endings
            .par_iter()
            .map(|ending| {
                let n = prefix.len() + ending.len();
                if n > model.config.context || ending.is_empty() {
                    let text: Vec<u32> = prefix.iter().chain(ending).copied().collect();
                    return nll_per_char(model, &text) * n as f64;
                }
                let (before, past) = match &shared {
                    Some((nats, kv)) => (*nats, Some(kv.clone())),
                    None => (0.0, None),
                };
                let last = prefix.last().copied().unwrap_or(MASK_ID);
                let read: Vec<u32> = std::iter::once(last).chain(ending[..ending.len() - 1].iter().copied()).collect();
                let (logits, _) = model.forward_append(ids(&read), past, false);
                before + nats(logits, ending)
            })
            .collect()
    })
}

/// Mean negative log-likelihood of `text` under a causal model, in nats per character, reading it
/// in windows of the model's context (each from the start of window, as in training).
pub fn nll_per_char(model: &Model, text: &[u32]) -> f64 {
    let device = model.devices()[0].clone();
    let context = model.config.context;
    let (mut total, mut count) = (0.0f64, 0usize);
    for window in text.chunks(context) {
        let batch = shifted_batch(&[window.to_vec()]);
        let (_, nats) = crate::fused::on_own_pool(|| crate::loss::losses(model, &batch, &device));
        total += nats.into_scalar::<f32>() as f64 * window.len() as f64;
        count += window.len();
    }
    if count == 0 { 0.0 } else { total / count as f64 }
}
