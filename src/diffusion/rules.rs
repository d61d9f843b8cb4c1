//! One denoising step's decisions: a proposed character for each candidate position (with the
//! statistics every rule reads), then which of them the step commits.

use super::cell::{Belief, TOP_CANDIDATES};
use super::decode::{DecodeOptions, Strategy};
use crate::vocab::MASK_ID;
use rand::{Rng, RngExt};

/// A candidate position with its proposed character and how sure the model is of it, measured
/// on the whole distribution (temperature applied, before any top-k truncation, the mask id in
/// the softmax as in the Python project).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Proposal {
    pub position: usize,
    pub token: u32,
    /// Probability of `token`.
    pub confidence: f32,
    /// Probability of the likeliest character minus that of the second.
    pub margin: f32,
    /// Entropy of the distribution, in nats.
    pub entropy: f32,
    /// Summed probability of the `top_k` likeliest characters (the Python v2 confidence).
    pub topk_sum: f32,
    /// The likeliest characters with their probabilities: what the inspector shows.
    pub top: [(u32, f32); TOP_CANDIDATES],
}

impl Proposal {
    /// What the model believed about the position, at `step`.
    pub fn belief(&self, step: usize) -> Belief {
        Belief { top: self.top, entropy: self.entropy, step: step as u32 }
    }
}

/// A position's distribution as the rules read it: the characters (never the mask) likeliest
/// first, each with its weight under the temperature, and the weights' total with the mask's.
struct Distribution {
    order: Vec<usize>,
    weights: Vec<f32>,
    mask_weight: f32,
    /// Every weight's sum, the mask's included: probabilities are weights over it.
    all: f32,
}

impl Distribution {
    fn new(logits: &[f32], temperature: f32) -> Self {
        let mut order: Vec<usize> = (0..logits.len()).filter(|&v| v != MASK_ID as usize).collect();
        order.sort_unstable_by(|&a, &b| logits[b].total_cmp(&logits[a]));
        // The largest logit, the mask's included, keeps every exponent ≤ 0.
        let max = logits[order[0]].max(logits[MASK_ID as usize]);
        let weights: Vec<f32> = order.iter().map(|&v| ((logits[v] - max) / temperature).exp()).collect();
        // Probabilities under the whole softmax, the mask id included (as the Python project
        // computes them), though the mask itself is never proposed.
        let mask_weight = ((logits[MASK_ID as usize] - max) / temperature).exp();
        let all = weights.iter().sum::<f32>() + mask_weight;
        Distribution { order, weights, mask_weight, all }
    }

    /// The probability of the `i`-th likeliest character.
    fn p(&self, i: usize) -> f32 {
        self.weights.get(i).map_or(0.0, |w| w / self.all)
    }

    fn entropy(&self) -> f32 {
        self.weights.iter().chain([&self.mask_weight]).map(|&w| w / self.all).filter(|&q| q > 0.0).map(|q| -q * q.ln()).sum()
    }

    fn top(&self) -> [(u32, f32); TOP_CANDIDATES] {
        std::array::from_fn(|i| (self.order.get(i).map_or(MASK_ID, |&v| v as u32), self.p(i)))
    }
}

/// Picks a character for one position from its logits and measures the distribution.
pub fn propose(position: usize, logits: &[f32], options: &DecodeOptions, rng: &mut impl Rng) -> Proposal {
    let greedy = options.temperature <= 0.0;
    let d = Distribution::new(logits, if greedy { 1.0 } else { options.temperature });
    let weights = &d.weights;
    let total: f32 = weights.iter().sum();
    let mut candidates = if options.top_k > 0 && !greedy { options.top_k.min(weights.len()) } else { weights.len() };
    if options.top_p < 1.0 && !greedy {
        // The fewest likeliest characters whose share of the whole distribution reaches top-p.
        let target = options.top_p * total;
        let mut sum = 0.0;
        let nucleus = weights.iter().take_while(|&&w| {
            let below = sum < target;
            sum += w;
            below
        });
        candidates = candidates.min(nucleus.count().max(1));
    }
    let pick = if greedy {
        0
    } else {
        let kept: f32 = weights[..candidates].iter().sum();
        let mut r = rng.random::<f32>() * kept;
        weights[..candidates]
            .iter()
            .position(|&w| {
                r -= w;
                r < 0.0
            })
            .unwrap_or(candidates - 1)
    };
    Proposal {
        position,
        token: d.order[pick] as u32,
        confidence: d.p(pick),
        margin: d.p(0) - d.p(1),
        entropy: d.entropy(),
        topk_sum: weights[..options.top_k.clamp(1, weights.len())].iter().sum::<f32>() / d.all,
        top: d.top(),
    }
}

/// What the model believes about a position whose logits are `logits`, at `step`, under
/// `temperature` as `propose` reads it (0 reads as 1): a look that draws nothing.
pub fn belief(logits: &[f32], temperature: f32, step: usize) -> Belief {
    let d = Distribution::new(logits, if temperature <= 0.0 { 1.0 } else { temperature });
    Belief { top: d.top(), entropy: d.entropy(), step: step as u32 }
}

/// The probability the model gives `token` (temperature 1, the whole softmax, as proposals).
pub fn probability(logits: &[f32], token: u32) -> f32 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let total: f32 = logits.iter().map(|&l| (l - max).exp()).sum();
    (logits[token as usize] - max).exp() / total
}

/// The resolution at which positions are ranked. Finer differences are float noise, and that noise
/// differs between backends (a GPU sums in another order than the CPU): the positions of a window
/// that is all masks differ by about 1e-6 in confidence, and ranked exactly they came out in
/// another order on wgpu than on flex, so the same seed wrote another text. Within it, positions
/// tie and the leftmost goes first.
const RANKING_RESOLUTION: f32 = 1.0 / 65536.0;

/// Chooses which proposals to commit this step: always at least one.
pub fn select(proposals: &[Proposal], options: &DecodeOptions, steps_done: usize, rng: &mut impl Rng) -> Vec<Proposal> {
    let mut order = proposals.to_vec();
    let by = |order: &mut Vec<Proposal>, key: fn(&Proposal) -> f32| {
        // Most first, at `RANKING_RESOLUTION`; ties go to the leftmost position.
        let rank = |p: &Proposal| (key(p) / RANKING_RESOLUTION).round();
        order.sort_by(|a, b| rank(b).total_cmp(&rank(a)).then(a.position.cmp(&b.position)));
    };
    let count = |order: &[Proposal], ok: &dyn Fn(&Proposal) -> bool| order.iter().filter(|p| ok(p)).count();
    let evenly = |steps: usize| proposals.len().div_ceil(steps.saturating_sub(steps_done).max(1));
    let n = match options.strategy {
        Strategy::Confidence => {
            by(&mut order, |p| p.confidence);
            count(&order, &|p| p.confidence >= options.threshold)
        }
        Strategy::Margin => {
            by(&mut order, |p| p.margin);
            count(&order, &|p| p.margin >= options.margin)
        }
        Strategy::Entropy => {
            by(&mut order, |p| -p.entropy);
            count(&order, &|p| p.entropy <= options.entropy)
        }
        Strategy::Eb => {
            // Lowest entropy first; the sorted prefix's largest entropy is its last.
            by(&mut order, |p| -p.entropy);
            let mut sum = 0.0;
            order.iter().take_while(|p| {
                sum += p.entropy;
                sum - p.entropy <= options.gamma
            })
            .count()
        }
        Strategy::Factor => {
            by(&mut order, |p| p.confidence);
            // The n-th most confident (from 1) goes while (n + 1)(1 − c) ≤ f, as Fast-dLLM's code has it.
            order.iter().enumerate().take_while(|(i, p)| (*i as f32 + 2.0) * (1.0 - p.confidence) <= options.factor).count()
        }
        Strategy::TopkSum => {
            by(&mut order, |p| p.topk_sum);
            count(&order, &|p| p.topk_sum >= options.threshold)
        }
        Strategy::Topk => {
            by(&mut order, |p| p.confidence);
            options.per_step
        }
        Strategy::Steps => {
            by(&mut order, |p| p.confidence);
            evenly(options.steps)
        }
        Strategy::Random => {
            let n = evenly(options.steps).min(order.len());
            // Partial Fisher–Yates: the first n entries become a uniform random subset.
            for i in 0..n {
                let j = rng.random_range(i..order.len());
                order.swap(i, j);
            }
            n
        }
    };
    order.truncate(n.clamp(1, proposals.len().max(1)));
    if options.apart && options.strategy.can_keep_apart() {
        // Most confident first, so the first (the one every step commits) is always kept.
        let mut kept: Vec<Proposal> = Vec::with_capacity(order.len());
        for p in order {
            if !kept.iter().any(|k| k.position.abs_diff(p.position) == 1) {
                kept.push(p);
            }
        }
        return kept;
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    /// The defaults with every candidate free to commit next to another.
    fn base() -> DecodeOptions {
        DecodeOptions { apart: false, ..Default::default() }
    }

    fn proposal(position: usize, confidence: f32, entropy: f32) -> Proposal {
        Proposal { position, token: 1, confidence, margin: confidence / 2.0, entropy, topk_sum: confidence, top: [(1, confidence); TOP_CANDIDATES] }
    }

    fn committed(proposals: &[Proposal], options: DecodeOptions) -> Vec<usize> {
        let mut rng = StdRng::seed_from_u64(1);
        let mut p: Vec<usize> = select(proposals, &options, 0, &mut rng).iter().map(|p| p.position).collect();
        p.sort_unstable();
        p
    }

    #[test]
    fn top_p_draws_only_from_the_nucleus_and_measures_confidence_on_everything() {
        // Probabilities ≈ 0.5, 0.3, 0.15, 0.05 for ids 1–4 (the mask, id 0, has none).
        let logits = [f32::NEG_INFINITY, 0.5f32.ln(), 0.3f32.ln(), 0.15f32.ln(), 0.05f32.ln()];
        let options = DecodeOptions { temperature: 1.0, top_p: 0.8, ..base() };
        let mut rng = StdRng::seed_from_u64(7);
        let drawn: std::collections::BTreeSet<u32> = (0..400).map(|_| propose(0, &logits, &options, &mut rng).token).collect();
        assert_eq!(drawn, [1, 2].into(), "0.5 + 0.3 reaches 0.8");
        let p = propose(0, &logits, &DecodeOptions { top_p: 0.01, ..options }, &mut rng);
        assert_eq!(p.token, 1, "a tiny nucleus keeps the likeliest character");
        assert!((p.confidence - 0.5).abs() < 1e-5, "confidence is on the whole distribution: {}", p.confidence);
        let everything: std::collections::BTreeSet<u32> =
            (0..400).map(|_| propose(0, &logits, &DecodeOptions { top_p: 1.0, ..options }, &mut rng).token).collect();
        assert_eq!(everything.len(), 4);
    }

    #[test]
    fn every_rule_commits_at_least_one_position_even_when_nothing_qualifies() {
        let unsure: Vec<Proposal> = (0..6).map(|i| proposal(i, 0.01 + i as f32 * 0.001, 4.0 - i as f32 * 0.01)).collect();
        for strategy in Strategy::ALL {
            let options = DecodeOptions { strategy, threshold: 1.0, margin: 1.0, entropy: 0.0, gamma: 0.0, factor: 0.0, top_k: 2, ..base() };
            let n = committed(&unsure, options).len();
            assert!(n >= 1, "{strategy:?} committed nothing");
            assert_eq!(committed(&unsure[..1], options), vec![0], "{strategy:?} with one candidate");
        }
    }

    #[test]
    fn threshold_rules_commit_exactly_the_positions_past_their_bound() {
        let p = [proposal(0, 0.95, 0.1), proposal(1, 0.5, 1.0), proposal(2, 0.8, 0.3), proposal(3, 0.2, 2.0)];
        let with = |strategy, f: fn(&mut DecodeOptions)| {
            let mut o = DecodeOptions { strategy, ..base() };
            f(&mut o);
            committed(&p, o)
        };
        assert_eq!(with(Strategy::Confidence, |o| o.threshold = 0.7), vec![0, 2]);
        assert_eq!(with(Strategy::Margin, |o| o.margin = 0.4), vec![0, 2]);
        assert_eq!(with(Strategy::Entropy, |o| o.entropy = 0.5), vec![0, 2]);
        assert_eq!(with(Strategy::TopkSum, |o| o.threshold = 0.5), vec![0, 1, 2]);
        assert_eq!(with(Strategy::Topk, |o| o.per_step = 3), vec![0, 1, 2]);
    }

    #[test]
    fn eb_commits_the_lowest_entropies_while_their_sum_less_the_largest_fits_gamma() {
        // Sorted entropies 0.1, 0.3, 1.0, 2.0: Σ − max is 0, 0.1, 0.4, 1.4.
        let p = [proposal(0, 0.9, 0.1), proposal(1, 0.5, 1.0), proposal(2, 0.8, 0.3), proposal(3, 0.2, 2.0)];
        let eb = |gamma| committed(&p, DecodeOptions { strategy: Strategy::Eb, gamma, ..base() });
        assert_eq!(eb(0.0), vec![0]);
        assert_eq!(eb(0.15), vec![0, 2]);
        assert_eq!(eb(0.5), vec![0, 1, 2]);
        assert_eq!(eb(1.5), vec![0, 1, 2, 3]);
    }

    #[test]
    fn factor_commits_the_n_most_confident_while_n_plus_one_times_the_doubt_fits() {
        // Sorted confidences 0.95, 0.9, 0.7: (n + 1)(1 − c) = 0.1, 0.3, 1.2.
        let p = [proposal(0, 0.7, 1.0), proposal(1, 0.95, 0.1), proposal(2, 0.9, 0.2)];
        let factor = |factor| committed(&p, DecodeOptions { strategy: Strategy::Factor, factor, ..base() });
        assert_eq!(factor(0.05), vec![1]);
        assert_eq!(factor(0.35), vec![1, 2]);
        assert_eq!(factor(1.25), vec![0, 1, 2]);
    }

    #[test]
    fn confidence_is_measured_before_top_k_truncation() {
        // Three nearly equally likely characters: truncating to one must not make it certain.
        let logits = [-100.0f32, 1.0, 0.9, 0.8];
        let e: Vec<f32> = logits[1..].iter().map(|l| l.exp()).collect();
        let total: f32 = e.iter().sum();
        let mut rng = StdRng::seed_from_u64(0);
        let options = DecodeOptions { top_k: 1, temperature: 1.0, ..base() };
        let p = propose(0, &logits, &options, &mut rng);
        assert_eq!(p.token, 1, "top-k 1 draws the likeliest");
        assert!((p.confidence - e[0] / total).abs() < 1e-5, "{}", p.confidence);
        let entropy: f32 = e.iter().map(|x| -(x / total) * (x / total).ln()).sum();
        assert!((p.entropy - entropy).abs() < 1e-5);
        assert!((p.margin - (e[0] - e[1]) / total).abs() < 1e-5);
    }

    #[test]
    fn the_mask_is_never_proposed_even_when_the_model_prefers_it() {
        let logits = [50.0f32, 1.0, 0.5, -1.0];
        for temperature in [0.0, 0.8, 3.0] {
            let options = DecodeOptions { temperature, ..base() };
            let p = propose(0, &logits, &options, &mut StdRng::seed_from_u64(3));
            assert_ne!(p.token, MASK_ID);
            assert!(p.confidence.is_finite() && p.confidence < 1e-6 || temperature > 1.0, "{p:?}");
            assert!(p.entropy.is_finite());
        }
    }

    #[test]
    fn topk_sum_is_the_python_v2_confidence_with_the_mask_in_the_softmax() {
        let logits = [0.0f32, 2.0, 1.0, -1.0];
        let options = DecodeOptions { strategy: Strategy::TopkSum, top_k: 2, temperature: 0.8, ..base() };
        let p = propose(0, &logits, &options, &mut StdRng::seed_from_u64(0));
        let e: Vec<f32> = logits.iter().map(|l| (l / 0.8f32).exp()).collect();
        let expected = (e[1] + e[2]) / e.iter().sum::<f32>();
        assert!((p.topk_sum - expected).abs() < 1e-6, "{} vs {expected}", p.topk_sum);
        assert!(p.token == 1 || p.token == 2, "drawn among the top 2");
    }

    #[test]
    fn apart_never_commits_neighbours_together_and_keeps_the_most_confident() {
        let p: Vec<Proposal> = [0.9, 0.95, 0.8, 0.85, 0.3, 0.99].iter().enumerate().map(|(i, &c)| proposal(i, c, 0.1)).collect();
        let options = DecodeOptions { strategy: Strategy::Confidence, threshold: 0.5, apart: true, ..base() };
        assert_eq!(committed(&p, options), vec![1, 3, 5], "0.99 at 5, then 0.95 at 1, then 0.85 at 3");
        assert_eq!(committed(&p, DecodeOptions { apart: false, ..options }), vec![0, 1, 2, 3, 5]);
        // Rules that promise a count keep it.
        let topk = DecodeOptions { strategy: Strategy::Topk, per_step: 3, apart: true, ..base() };
        assert_eq!(committed(&p, topk), vec![0, 1, 5]);
    }
}
