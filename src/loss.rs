//! The objective of every model kind: cross-entropy where a batch asks for a prediction, and its
//! evaluation on fixed held-out windows. Training minimises it; `eval` and training's validation
//! report it. Each kind builds its batches (`ModelKind::batch`).

use crate::data::{Batch, Position, even_windows};
use crate::diffusion::masking::{MaskSchedule, timestep_bucket};
use crate::model::Model;
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use rand::SeedableRng;
use rand::rngs::StdRng;

/// Validation numbers: mean cross-entropy where predictions are asked for (nats; for masked
/// diffusion the masked-token loss, the reference's) and nats per character of the text in bits
/// (for masked diffusion the ELBO, comparable across mask schedules and recipes).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EvalResult {
    pub loss: f32,
    pub bits_per_char: f32,
}

/// Cross-entropy (mean over weighted positions) and nats per character (each sequence's summed
/// loss times its `per_char`, averaged over sequences).
pub fn losses(model: &Model, batch: &Batch, device: &Device) -> (Tensor<1>, Tensor<1>) {
    let (b, t) = (batch.batch, batch.seq);
    let ints = |id: fn(&Position) -> u32| {
        let data: Vec<i64> = batch.positions.iter().map(|p| id(p) as i64).collect();
        Tensor::<2, Int>::from_data(TensorData::new(data, [b, t]), device)
    };
    let timesteps = model.time_emb.as_ref().map(|emb| {
        let n = emb.weight.dims()[0];
        let ts: Vec<i64> = batch.rows.iter().map(|r| timestep_bucket(r.rate, n) as i64).collect();
        Tensor::<1, Int>::from_data(TensorData::new(ts, [b]), device)
    });
    let logits = model.forward(ints(|p| p.input), timesteps);
    let logp = log_softmax(logits, 2);
    let nll = -logp.gather(2, ints(|p| p.target).unsqueeze_dim::<3>(2)).squeeze_dim::<2>(2);
    let weights = Tensor::<2>::from_data(TensorData::new(batch.positions.iter().map(|p| p.weight).collect(), [b, t]), device);
    let weighted_nll = nll * weights.clone();
    let ce = weighted_nll.clone().sum() / weights.sum();
    let per_char = Tensor::<1>::from_data(TensorData::new(batch.rows.iter().map(|r| r.per_char).collect(), [b]), device);
    let nats_per_char = (weighted_nll.sum_dim(1).squeeze_dim::<1>(1) * per_char).mean();
    (ce, nats_per_char)
}

/// Windows per evaluation batch. Fixed, not the training batch: stratified rates are drawn per
/// batch, so the chunk size decides the masks, and runs with different batch sizes must be
/// measured on the same masks to be comparable.
pub const EVAL_BATCH: usize = 8;

/// Evaluates on fixed validation windows with fixed masks, so numbers are comparable between runs.
pub fn evaluate(model: &Model, val: &[u32], windows: usize, seq_len: usize, device: &Device) -> EvalResult {
    let model = model.valid();
    let seqs = even_windows(val, windows.max(1), seq_len);
    let mut rng = StdRng::seed_from_u64(0xE7A1);
    let (mut ce_sum, mut elbo_sum, mut n) = (0.0f64, 0.0f64, 0usize);
    for chunk in seqs.chunks(EVAL_BATCH) {
        let batch = model.config.kind.batch(chunk, MaskSchedule::Stratified, model.config.vocab_size, &mut rng);
        // On its own pool, as every forward pass runs: in inference's precision (`--matmul`).
        let (ce, elbo) = crate::fused::on_own_pool(|| losses(&model, &batch, device));
        ce_sum += ce.into_scalar::<f32>() as f64 * chunk.len() as f64;
        elbo_sum += elbo.into_scalar::<f32>() as f64 * chunk.len() as f64;
        n += chunk.len();
    }
    EvalResult { loss: (ce_sum / n as f64) as f32, bits_per_char: (elbo_sum / n as f64 / std::f64::consts::LN_2) as f32 }
}
