//! The forward (noising) process used in training: hide a random share of characters.

use crate::data::{Batch, Position, Row};
use crate::vocab::MASK_ID;
use rand::{Rng, RngExt};

/// How the per-sequence mask rate t is drawn for a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MaskSchedule {
    /// t ~ U(0, 1) independently per sequence (the reference).
    Uniform,
    /// Low-discrepancy: t_i = (u + i / B) mod 1, one u per batch. Same distribution,
    /// lower-variance loss (as in MDLM).
    Stratified,
}

/// Smallest mask rate drawn: keeps the 1/t ELBO weight finite.
pub const MIN_MASK_RATE: f32 = 1e-3;

/// Draws one mask rate per sequence.
pub fn draw_rates(batch: usize, schedule: MaskSchedule, rng: &mut impl Rng) -> Vec<f32> {
    let u: f32 = rng.random();
    (0..batch)
        .map(|i| match schedule {
            MaskSchedule::Uniform => rng.random::<f32>(),
            MaskSchedule::Stratified => (u + i as f32 / batch as f32).fract(),
        })
        .map(|t| t.max(MIN_MASK_RATE))
        .collect()
}

/// Hides each position of each sequence with probability t (its rate). Every sequence keeps at
/// least one hidden position so that every row contributes to the loss.
pub fn mask_batch(sequences: &[Vec<u32>], rates: &[f32], rng: &mut impl Rng) -> Batch {
    let batch = sequences.len();
    let seq = sequences.first().map_or(0, Vec::len);
    let mut positions = Vec::with_capacity(batch * seq);
    for (row, &t) in sequences.iter().zip(rates) {
        assert_eq!(row.len(), seq, "all sequences in a batch have the same length");
        let start = positions.len();
        for &tok in row {
            let hide = rng.random::<f32>() < t;
            positions.push(if hide { Position::asked(MASK_ID, tok) } else { Position::read(tok) });
        }
        if seq > 0 && positions[start..].iter().all(|p| p.weight == 0.0) {
            let p = &mut positions[start + rng.random_range(0..seq)];
            *p = Position::asked(MASK_ID, p.target);
        }
    }
    // The ELBO weighs a sequence's masked losses by 1/t and spreads them over its length.
    let rows = rates.iter().map(|&t| Row { rate: t, per_char: 1.0 / (t * seq.max(1) as f32) }).collect();
    Batch { batch, seq, positions, rows }
}

/// Timestep bucket for a mask rate, for models with a timestep embedding.
pub fn timestep_bucket(rate: f32, n_timesteps: usize) -> u32 {
    ((rate * n_timesteps as f32) as usize).min(n_timesteps.saturating_sub(1)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn masks_roughly_rate_and_at_least_one() {
        let mut rng = StdRng::seed_from_u64(1);
        let seqs = vec![vec![5u32; 1000], vec![7u32; 1000]];
        let b = mask_batch(&seqs, &[0.3, MIN_MASK_RATE], &mut rng);
        let row0 = b.positions[..1000].iter().map(|p| p.weight).sum::<f32>();
        let row1 = b.positions[1000..].iter().map(|p| p.weight).sum::<f32>();
        assert!((250.0..350.0).contains(&row0), "row0 masked {row0}");
        assert!(row1 >= 1.0);
        for i in 0..2000 {
            assert_eq!(b.positions[i].input == MASK_ID, b.positions[i].weight == 1.0);
            assert_ne!(b.positions[i].target, MASK_ID);
        }
    }

    #[test]
    fn stratified_rates_cover_the_unit_interval() {
        let mut rng = StdRng::seed_from_u64(3);
        let mut rates = draw_rates(8, MaskSchedule::Stratified, &mut rng);
        rates.sort_by(f32::total_cmp);
        for (i, r) in rates.iter().enumerate() {
            assert!(*r >= i as f32 / 8.0 - 1e-6 && *r < (i + 1) as f32 / 8.0 + 1e-6, "{rates:?}");
        }
    }

    #[test]
    fn timestep_buckets_stay_in_range() {
        assert_eq!(timestep_bucket(0.0, 128), 0);
        assert_eq!(timestep_bucket(1.0, 128), 127);
        assert_eq!(timestep_bucket(0.5, 128), 64);
    }
}
