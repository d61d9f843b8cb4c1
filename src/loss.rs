//! The masked-diffusion objective: the losses of a masked batch, and their evaluation on fixed
//! held-out windows. Training minimises them; `eval` and training's validation report them.

use crate::data::even_windows;
use crate::diffusion::masking::{MaskSchedule, MaskedBatch, draw_rates, mask_batch, timestep_bucket};
use crate::model::DiffusionModel;
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use rand::SeedableRng;
use rand::rngs::StdRng;

/// Validation numbers: mean masked-token cross-entropy (nats, the reference's loss) and
/// the ELBO in bits per character (comparable across mask schedules and recipes).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EvalResult {
    pub loss: f32,
    pub bits_per_char: f32,
}

/// Masked cross-entropy (mean over masked positions) and the ELBO estimate in nats per character
/// (masked cross-entropy weighted by 1/t, summed, divided by length, averaged over sequences).
pub fn losses(model: &DiffusionModel, batch: &MaskedBatch, device: &Device) -> (Tensor<1>, Tensor<1>) {
    let (b, t) = (batch.batch, batch.seq);
    let ints = |v: &[u32]| {
        let data: Vec<i64> = v.iter().map(|&x| x as i64).collect();
        Tensor::<2, Int>::from_data(TensorData::new(data, [b, t]), device)
    };
    let timesteps = model.time_emb.as_ref().map(|emb| {
        let n = emb.weight.dims()[0];
        let ts: Vec<i64> = batch.rates.iter().map(|&r| timestep_bucket(r, n) as i64).collect();
        Tensor::<1, Int>::from_data(TensorData::new(ts, [b]), device)
    });
    let logits = model.forward(ints(&batch.inputs), timesteps);
    let logp = log_softmax(logits, 2);
    let nll = -logp.gather(2, ints(&batch.targets).unsqueeze_dim::<3>(2)).squeeze_dim::<2>(2);
    let masked = Tensor::<2>::from_data(TensorData::new(batch.masked.clone(), [b, t]), device);
    let masked_nll = nll * masked.clone();
    let ce = masked_nll.clone().sum() / masked.sum();
    let inv_rate: Vec<f32> = batch.rates.iter().map(|r| 1.0 / r).collect();
    let inv_rate = Tensor::<1>::from_data(TensorData::new(inv_rate, [b]), device);
    let elbo = (masked_nll.sum_dim(1).squeeze_dim::<1>(1) * inv_rate).mean() / t as f32;
    (ce, elbo)
}

/// Windows per evaluation batch. Fixed, not the training batch: stratified rates are drawn per
/// batch, so the chunk size decides the masks, and runs with different batch sizes must be
/// measured on the same masks to be comparable.
pub const EVAL_BATCH: usize = 8;

/// Evaluates on fixed validation windows with fixed masks, so numbers are comparable between runs.
pub fn evaluate(model: &DiffusionModel, val: &[u32], windows: usize, seq_len: usize, device: &Device) -> EvalResult {
    let model = model.valid();
    let seqs = even_windows(val, windows.max(1), seq_len);
    let mut rng = StdRng::seed_from_u64(0xE7A1);
    let (mut ce_sum, mut elbo_sum, mut n) = (0.0f64, 0.0f64, 0usize);
    for chunk in seqs.chunks(EVAL_BATCH) {
        let rates = draw_rates(chunk.len(), MaskSchedule::Stratified, &mut rng);
        let masked = mask_batch(chunk, &rates, &mut rng);
        let (ce, elbo) = losses(&model, &masked, device);
        ce_sum += ce.into_scalar::<f32>() as f64 * chunk.len() as f64;
        elbo_sum += elbo.into_scalar::<f32>() as f64 * chunk.len() as f64;
        n += chunk.len();
    }
    EvalResult { loss: (ce_sum / n as f64) as f32, bits_per_char: (elbo_sum / n as f64 / std::f64::consts::LN_2) as f32 }
}
