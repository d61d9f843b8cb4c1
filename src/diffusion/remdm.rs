//! ReMDM's remasking schedules (Wang et al., 2025, "Remasking Discrete Diffusion Models with
//! Inference-Time Scaling"), on MDLM's ancestral sampler with the linear schedule α_t = 1 − t.
//!
//! A block takes `steps` steps, from t = 1 to 0. In the step from t to s, every decoded character
//! is masked again with probability σ, and every masked position is decoded with probability
//! (α_s − (1 − σ) α_t) / (1 − α_t); σ ≤ σ_max = min(1, (1 − α_s) / α_t) keeps that a probability.
//! With σ = 0 this is MDLM's own sampler (`--strategy random`). The schedules choose σ:
//! `cap` min(η, σ_max), `rescale` η · σ_max, `conf` σ_max shared out by softmax(−confidence) over
//! the decoded characters, so the least sure go first. `loop` changes the schedule itself (as
//! ReMDM's code has it): MDLM decodes to α = 0.9 by t = 0.55; until t = 0.05, α is held there while
//! each step masks decoded characters again with probability η and decodes masked ones at the rate
//! that keeps the masked share; then MDLM finishes from α = 0.9 to 1.

use super::decode::Remask;

/// The probabilities of one step: how likely each decoded character (by its confidence) is
/// masked again, and how likely a masked position is decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct StepOdds {
    pub remask: Vec<f32>,
    pub unmask: f32,
}

/// The odds of step `index` (from 0) of `steps`, for decoded characters of the given confidences.
pub fn odds(schedule: Remask, eta: f32, index: usize, steps: usize, decoded_confidence: &[f32]) -> StepOdds {
    let steps = steps.max(1);
    let alpha_t = index as f32 / steps as f32;
    let alpha_s = ((index + 1) as f32 / steps as f32).min(1.0);
    if alpha_s >= 1.0 {
        // The last step decodes everything and takes nothing back.
        return StepOdds { remask: vec![0.0; decoded_confidence.len()], unmask: 1.0 };
    }
    if schedule == Remask::Loop {
        return loop_odds(eta, index, steps, decoded_confidence.len());
    }
    let sigma_max = if alpha_t > 0.0 { ((1.0 - alpha_s) / alpha_t).min(1.0) } else { 0.0 };
    let remask: Vec<f32> = match schedule {
        Remask::Cap => vec![eta.min(sigma_max); decoded_confidence.len()],
        Remask::Rescale => vec![(eta * sigma_max).min(sigma_max); decoded_confidence.len()],
        Remask::Conf => {
            let weights: Vec<f32> = decoded_confidence.iter().map(|&c| (-c).exp()).collect();
            let total: f32 = weights.iter().sum();
            weights.iter().map(|w| sigma_max * w / total.max(f32::MIN_POSITIVE)).collect()
        }
        Remask::None | Remask::LowConfidence | Remask::Loop => vec![0.0; decoded_confidence.len()],
    };
    // Masked positions are decoded at the rate that keeps the expected masked share on schedule,
    // given how many decoded ones are taken back (the mean σ).
    let mean_sigma = if remask.is_empty() { 0.0 } else { remask.iter().sum::<f32>() / remask.len() as f32 };
    let unmask = ((alpha_s - (1.0 - mean_sigma) * alpha_t) / (1.0 - alpha_t)).clamp(0.0, 1.0);
    StepOdds { remask, unmask }
}

/// ReMDM-loop's window (t from `LOOP_T_ON` down to `LOOP_T_OFF`) and the share decoded in it.
const LOOP_T_ON: f32 = 0.55;
const LOOP_T_OFF: f32 = 0.05;
const LOOP_ALPHA_ON: f32 = 0.9;

/// Whether ReMDM-loop's step `index` of `steps` is still before the end of its loop (so a fully
/// decoded window is not finished yet).
pub fn loop_revises(index: usize, steps: usize) -> bool {
    1.0 - index as f32 / steps.max(1) as f32 > LOOP_T_OFF
}

/// `odds` for ReMDM-loop at step `index` of `steps` (not the last, which `odds` finishes).
fn loop_odds(eta: f32, index: usize, steps: usize, decoded: usize) -> StepOdds {
    let t = 1.0 - index as f32 / steps as f32;
    let dt = 1.0 / steps as f32;
    // Each phase reads both ends of the step on its own schedule, as ReMDM's code does.
    let alpha: Option<fn(f32) -> f32> = if t > LOOP_T_ON {
        Some(|t| (1.0 - t) * LOOP_ALPHA_ON / (1.0 - LOOP_T_ON))
    } else if t <= LOOP_T_OFF {
        Some(|t| 1.0 - t * (1.0 - LOOP_ALPHA_ON) / LOOP_T_OFF)
    } else {
        None
    };
    match alpha {
        Some(alpha) => {
            let (alpha_t, alpha_s) = (alpha(t), alpha(t - dt));
            let unmask = ((alpha_s - alpha_t) / (1.0 - alpha_t)).clamp(0.0, 1.0);
            StepOdds { remask: vec![0.0; decoded], unmask }
        }
        None => {
            let unmask = (eta * LOOP_ALPHA_ON / (1.0 - LOOP_ALPHA_ON)).clamp(0.0, 1.0);
            StepOdds { remask: vec![eta; decoded], unmask }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_remasking_the_odds_are_mdlm_ancestral_sampling() {
        // From t = 1 − i/N to s: a masked position is decoded with probability 1 / (N − i).
        for i in 0..8 {
            let o = odds(Remask::Cap, 0.0, i, 8, &[0.5, 0.9]);
            assert!((o.unmask - 1.0 / (8 - i) as f32).abs() < 1e-6, "step {i}: {}", o.unmask);
            assert!(o.remask.iter().all(|&r| r == 0.0));
        }
    }

    #[test]
    fn loop_decodes_to_ninety_percent_then_holds_the_masked_share_while_it_remasks() {
        // Expected masked share after each of 100 steps, from the odds alone.
        let (steps, eta) = (100, 0.02);
        let mut masked = 1.0f32;
        let mut remasking_steps = 0;
        for i in 0..steps {
            let o = odds(Remask::Loop, eta, i, steps, &[0.5]);
            let decoded = 1.0 - masked;
            masked = masked * (1.0 - o.unmask) + decoded * o.remask[0];
            let t = 1.0 - (i + 1) as f32 / steps as f32;
            if o.remask[0] > 0.0 {
                remasking_steps += 1;
                assert!((masked - 0.1).abs() < 1e-3, "step {i}: masked share {masked} during the loop");
            }
            if (t - 0.55).abs() < 1e-4 {
                assert!((masked - 0.1).abs() < 1e-3, "90% decoded at t_on: {masked}");
            }
        }
        assert!((50..=51).contains(&remasking_steps), "t from 0.55 down to 0.05: {remasking_steps} steps");
        assert!(masked.abs() < 1e-6, "finished: {masked}");
    }

    #[test]
    fn schedules_stay_within_sigma_max_and_the_last_step_finishes() {
        for schedule in [Remask::Cap, Remask::Rescale, Remask::Conf] {
            for i in 0..10 {
                let o = odds(schedule, 0.5, i, 10, &[0.2, 0.6, 0.99]);
                let alpha_t = i as f32 / 10.0;
                let alpha_s = (i + 1) as f32 / 10.0;
                let sigma_max = if alpha_t > 0.0 { ((1.0 - alpha_s) / alpha_t).min(1.0) } else { 0.0 };
                assert!(o.remask.iter().all(|&r| (0.0..=sigma_max + 1e-6).contains(&r)), "{schedule:?} step {i}: {o:?}");
                assert!((0.0..=1.0).contains(&o.unmask));
            }
            let last = odds(schedule, 0.5, 9, 10, &[0.2]);
            assert_eq!((last.unmask, last.remask[0]), (1.0, 0.0));
        }
        // conf takes back the least sure first.
        let o = odds(Remask::Conf, 1.0, 3, 10, &[0.2, 0.99]);
        assert!(o.remask[0] > o.remask[1]);
        // cap is η where σ_max allows it.
        assert!((odds(Remask::Cap, 0.01, 3, 10, &[0.5]).remask[0] - 0.01).abs() < 1e-7);
    }
}
