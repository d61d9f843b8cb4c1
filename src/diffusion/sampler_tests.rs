//! Sampler behaviour on a stub denoiser with known logits.

use super::decode::{DecodeOptions, POLISH_STRIDE, Strategy};
use super::generation::Generation;
use super::cell::Frame;
use super::sampler::*;
use crate::vocab::MASK_ID;
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::cell::Cell;

/// Prefers character `1 + (pos % 3)` at each position, with a confidence that grows with the
/// position (so the order of commitment is known), and counts its calls.
struct Stub {
    vocab: usize,
    context: usize,
    calls: Cell<usize>,
}

impl Stub {
    fn new(context: usize) -> Self {
        Stub { vocab: 5, context, calls: Cell::new(0) }
    }
}

impl Denoiser for Stub {
    fn vocab_size(&self) -> usize {
        self.vocab
    }
    fn context(&self) -> usize {
        self.context
    }
    fn logits(&self, tokens: &[u32], _time: Time, positions: &[usize]) -> Vec<f32> {
        self.calls.set(self.calls.get() + 1);
        let mut out = vec![0.0; positions.len() * self.vocab];
        for (row, &i) in out.chunks_exact_mut(self.vocab).zip(positions) {
            assert!(i < tokens.len(), "asked for position {i} of a {}-token window", tokens.len());
            row[MASK_ID as usize] = -100.0; // as trained models have it (rules' tests cover a large one)
            row[1 + i % 3] = 0.5 * i as f32 + 0.25; // larger margin further right
        }
        out
    }
}

/// The defaults without lanes, polish, nucleus, remasking or the cache: one rule at work, exactly.
fn plain() -> DecodeOptions {
    DecodeOptions { remask: super::decode::Remask::None, cache: false, apart: false, lanes: 1, polish: 0, top_p: 1.0, ..DecodeOptions::DEFAULT }
}

fn greedy(strategy: Strategy) -> DecodeOptions {
    DecodeOptions { strategy, temperature: 0.0, top_k: 0, seed: 7, span: 0, ..plain() }
}

fn run_sampler(tokens: Vec<u32>, options: DecodeOptions) -> (Vec<Frame>, Vec<u32>) {
    let stub = Stub::new(64);
    let mut sampler = Sampler::new(tokens, options);
    let mut rng = StdRng::seed_from_u64(options.seed);
    let mut frames = Vec::new();
    while !sampler.is_done() {
        frames.push(sampler.step(&stub, &mut rng, 0, 0));
        assert!(frames.len() <= 1000, "sampler does not terminate");
    }
    (frames, sampler.tokens())
}

#[test]
fn threshold_commits_every_confident_position_and_at_least_one() {
    let (frames, out) = run_sampler(vec![MASK_ID; 12], DecodeOptions { threshold: 0.9, ..greedy(Strategy::Confidence) });
    // With 4 candidates, softmax prob of the best exceeds 0.9 once its margin is > ln(27) ≈ 3.3,
    // i.e. from position 7 on: the first step commits positions 7..12 together.
    assert_eq!(frames[0].decoded_now, vec![7, 8, 9, 10, 11]);
    for f in &frames {
        assert!(!f.decoded_now.is_empty(), "every step commits at least one position");
        for &i in &f.decoded_now[..] {
            let conf = f.cells[i].confidence;
            assert!(conf >= 0.9 || f.decoded_now.len() == 1, "low-confidence position {i} ({conf}) in a multi-commit step");
        }
    }
    assert!(out.iter().enumerate().all(|(i, &t)| t == 1 + (i % 3) as u32));
    assert!(!out.contains(&MASK_ID));
}

#[test]
fn threshold_above_every_confidence_commits_exactly_one_per_step() {
    let (frames, _) = run_sampler(vec![MASK_ID; 6], DecodeOptions { threshold: 1.0, ..greedy(Strategy::Confidence) });
    assert_eq!(frames.len(), 6);
    assert!(frames.iter().all(|f| f.decoded_now.len() == 1));
    // Most confident first: right to left.
    assert_eq!(frames[0].decoded_now, vec![5]);
}

#[test]
fn topk_commits_exactly_k_per_step() {
    let (frames, _) = run_sampler(vec![MASK_ID; 10], DecodeOptions { per_step: 3, ..greedy(Strategy::Topk) });
    let sizes: Vec<usize> = frames.iter().map(|f| f.decoded_now.len()).collect();
    assert_eq!(sizes, vec![3, 3, 3, 1]);
}

#[test]
fn fixed_step_count_is_respected() {
    for (masked, steps, expect) in [(10, 4, 4), (256, 32, 32), (3, 8, 3)] {
        let (frames, _) = run_sampler(vec![MASK_ID; masked], DecodeOptions { steps, ..greedy(Strategy::Steps) });
        assert_eq!(frames.len(), expect, "{masked} masked in {steps} steps");
        let total: usize = frames.iter().map(|f| f.decoded_now.len()).sum();
        assert_eq!(total, masked);
    }
}

#[test]
fn prompt_and_decoded_positions_never_change() {
    let prompt = vec![4, MASK_ID, MASK_ID, 4, MASK_ID, 4, MASK_ID, MASK_ID];
    let options = DecodeOptions { strategy: Strategy::Topk, per_step: 1, temperature: 1.5, top_k: 0, seed: 3, span: 0, ..plain() };
    let (frames, out) = run_sampler(prompt.clone(), options);
    let mut committed: Vec<Option<u32>> = prompt.iter().map(|&t| (t != MASK_ID).then_some(t)).collect();
    for f in &frames {
        for (i, c) in committed.iter().enumerate() {
            if let Some(t) = c {
                assert_eq!(f.cells[i].token, *t, "position {i} changed after being fixed");
            }
        }
        for &i in &f.decoded_now {
            assert!(committed[i].is_none(), "position {i} decoded twice");
            committed[i] = Some(f.cells[i].token);
        }
        assert!(f.cells[0].prompt && f.cells[3].prompt && !f.cells[1].prompt);
    }
    assert!(out.iter().all(|&t| t != MASK_ID));
}

#[test]
fn sampling_is_reproducible_by_seed_and_varies_across_seeds() {
    let opts = |seed| DecodeOptions { strategy: Strategy::Topk, per_step: 2, temperature: 5.0, top_k: 0, seed, span: 0, ..plain() };
    let (_, a) = run_sampler(vec![MASK_ID; 40], opts(1));
    let (_, b) = run_sampler(vec![MASK_ID; 40], opts(1));
    let (_, c) = run_sampler(vec![MASK_ID; 40], opts(2));
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn top_k_one_equals_argmax_even_when_hot() {
    let opts = DecodeOptions { strategy: Strategy::Topk, per_step: 4, temperature: 50.0, top_k: 1, seed: 9, span: 0, ..plain() };
    let (_, out) = run_sampler(vec![MASK_ID; 12], opts);
    assert!(out.iter().enumerate().skip(1).all(|(i, &t)| t == 1 + (i % 3) as u32));
}

#[test]
fn generation_spans_blocks_with_overlap_and_fills_only_gaps() {
    let stub = Stub::new(16);
    let mut prompt = vec![4u32; 40];
    for i in [3, 4, 20, 21, 22, 35] {
        prompt[i] = MASK_ID;
    }
    let mut g = Generation::new(&prompt, 60, 16, 4, DecodeOptions { per_step: 2, ..greedy(Strategy::Topk) });
    let mut frames = Vec::new();
    g.run(&stub, |f| frames.push(f.clone()));
    assert!(g.is_done());
    let out = g.tokens();
    assert_eq!(out.len(), 60);
    for i in 0..40 {
        if prompt[i] != MASK_ID {
            assert_eq!(out[i], 4, "prompt character {i} changed");
        }
    }
    assert!(out.iter().all(|&t| t != MASK_ID));
    // Every window fits the context, and later blocks start `overlap` before their first gap.
    for f in &frames {
        assert!(f.cells.len() <= 16);
    }
    let blocks = frames.last().unwrap().block + 1;
    assert!(blocks >= 4, "expected several blocks, got {blocks}");
    let second = frames.iter().find(|f| f.block == 1).unwrap();
    assert_eq!(second.offset, 20 - 4);
}

#[test]
fn generation_is_reproducible() {
    let stub = Stub::new(16);
    let opts = DecodeOptions { strategy: Strategy::Confidence, threshold: 0.5, temperature: 2.0, top_k: 3, seed: 11, span: 0, ..plain() };
    let run = || {
        let mut g = Generation::new(&[1, 2], 50, 16, 4, opts);
        g.run(&stub, |_| {});
        g.tokens().to_vec()
    };
    assert_eq!(run(), run());
}

#[test]
fn random_order_commits_evenly_but_not_by_confidence() {
    let opts = DecodeOptions { steps: 4, ..greedy(Strategy::Random) };
    let (frames, out) = run_sampler(vec![MASK_ID; 40], opts);
    assert_eq!(frames.len(), 4);
    assert!(frames.iter().all(|f| f.decoded_now.len() == 10));
    // Confidence order would take positions 30..40 first; a random subset almost surely does not.
    assert_ne!(frames[0].decoded_now, (30..40).collect::<Vec<_>>());
    assert!(!out.contains(&MASK_ID));
}

#[test]
fn span_commits_left_to_right_within_the_window() {
    let opts = DecodeOptions { span: 4, per_step: 2, ..greedy(Strategy::Topk) };
    let (frames, _) = run_sampler(vec![MASK_ID; 12], opts);
    for f in &frames {
        let first_masked_before = f.decoded_now[0];
        assert!(f.decoded_now.iter().all(|&i| i < first_masked_before + 4), "{:?}", f.decoded_now);
    }
    // Within the span, the more confident (rightmost) positions go first.
    assert_eq!(frames[0].decoded_now, vec![2, 3]);
}

#[test]
fn span_does_not_break_the_step_count_promise() {
    let opts = DecodeOptions { span: 2, steps: 4, ..greedy(Strategy::Steps) };
    let (frames, _) = run_sampler(vec![MASK_ID; 40], opts);
    assert_eq!(frames.len(), 4);
}

/// Proposes 1 or 2 at masked positions (nearly evenly), but in context believes only in 1: every
/// committed 2 fails its check.
struct Picky;

impl Denoiser for Picky {
    fn vocab_size(&self) -> usize {
        4
    }
    fn context(&self) -> usize {
        64
    }
    fn logits(&self, tokens: &[u32], _time: Time, positions: &[usize]) -> Vec<f32> {
        positions
            .iter()
            .flat_map(|&i| if tokens[i] == MASK_ID { [-9.0, 0.1, 0.0, -9.0] } else { [-9.0, 5.0, -5.0, -9.0] })
            .collect()
    }
}

#[test]
fn low_confidence_remasking_takes_back_unlikely_characters_once_and_then_finishes() {
    use super::decode::Remask;
    let options = DecodeOptions { strategy: Strategy::Topk, per_step: 3, span: 0, remask: Remask::LowConfidence, remask_below: 0.5, temperature: 1.0, seed: 5, ..plain() };
    let mut sampler = Sampler::new(vec![MASK_ID; 24], options);
    let mut rng = StdRng::seed_from_u64(options.seed);
    let mut previous = sampler.initial_frame(0, 0);
    let mut remasked_once = std::collections::HashSet::new();
    let mut steps = 0;
    while !sampler.is_done() {
        let frame = sampler.step(&Picky, &mut rng, 0, 0);
        steps += 1;
        for &i in &frame.remasked_now {
            assert_eq!(previous.cells[i].token, 2, "only the characters the context rejects are taken back");
            assert!(remasked_once.insert(i), "position {i} was taken back twice");
            assert!(frame.cells[i].is_masked() || frame.decoded_now.contains(&i));
        }
        if previous.masked() > 0 {
            assert!(!frame.decoded_now.is_empty(), "a step that starts with masked positions commits one");
        }
        previous = frame;
        assert!(steps <= 2 * 24 + 1, "remasking must not loop");
    }
    assert!(!remasked_once.is_empty(), "some 2s were drawn and taken back");
    assert!(sampler.tokens().iter().all(|&t| t == 1 || t == 2));

    // Without remasking the same run never takes anything back.
    let options = DecodeOptions { remask: Remask::None, ..options };
    let (frames, _) = run_sampler(vec![MASK_ID; 24], options);
    assert!(frames.iter().all(|f| f.remasked_now.is_empty()));
}

#[test]
fn taking_finished_text_as_it_goes_gives_the_same_output_in_a_bounded_buffer() {
    let stub = Stub::new(16);
    let opts = DecodeOptions { per_step: 3, ..greedy(Strategy::Topk) };
    let mut whole = Generation::new(&[1, 2], 500, 16, 4, opts);
    whole.run(&stub, |_| {});
    let mut streamed = Generation::new(&[1, 2], 500, 16, 4, opts);
    let mut out = Vec::new();
    while streamed.step(&stub).is_some() {
        out.extend(streamed.take_finished());
        assert!(streamed.tokens().len() <= 16 + 4, "the buffer holds about a window, not the output");
    }
    out.extend(streamed.take_finished());
    assert!(streamed.is_done());
    assert_eq!(out, whole.tokens());
    assert_eq!(out.len(), 500);
}

#[test]
fn remdm_finishes_in_its_steps_takes_characters_back_and_commits_every_step() {
    use super::decode::Remask;
    for schedule in [Remask::Cap, Remask::Rescale, Remask::Conf, Remask::Loop] {
        let options = DecodeOptions { strategy: Strategy::Random, steps: 40, remask: schedule, eta: 0.2, temperature: 1.0, seed: 2, ..plain() };
        options.validate().unwrap();
        let (frames, out) = run_sampler(vec![MASK_ID; 24], options);
        assert!(frames.len() <= 40, "{schedule:?}: {} steps", frames.len());
        if schedule == Remask::Loop {
            // It keeps revising until its loop ends, even with nothing left masked.
            assert!(frames.len() >= 38, "loop: {} steps", frames.len());
        } else {
            assert!(frames.iter().all(|f| !f.decoded_now.is_empty()), "{schedule:?}: a step without a commit");
        }
        assert!(frames.iter().any(|f| !f.remasked_now.is_empty()), "{schedule:?}: nothing was taken back");
        assert!(!out.contains(&MASK_ID));
    }
    let wrong = DecodeOptions { strategy: Strategy::Confidence, remask: Remask::Cap, ..plain() };
    assert!(wrong.validate().unwrap_err().to_string().contains("--strategy random"));
}

#[test]
fn remdm_schedules_end_with_their_polish_passes() {
    // ReMDM once stepped on forever after its last step when polish passes were asked for (the
    // default): the schedule had nothing left to do and the polish never ran.
    use super::decode::Remask;
    for schedule in [Remask::Cap, Remask::Loop] {
        let options = DecodeOptions { strategy: Strategy::Random, steps: 20, remask: schedule, eta: 0.2, temperature: 1.0, seed: 2, ..plain() };
        let (bare, _) = run_sampler(vec![MASK_ID; 24], options);
        let (frames, out) = run_sampler(vec![MASK_ID; 24], DecodeOptions { polish: 4, ..options });
        let passes = frames.len() - bare.len();
        assert!((1..=4).contains(&passes), "{schedule:?}: {passes} polish passes");
        assert!(!out.contains(&MASK_ID));
    }
}

#[test]
fn lanes_decode_each_stretch_from_its_own_left_end_in_the_same_steps() {
    let opts = DecodeOptions { span: 2, per_step: 1, lanes: 3, stretch: 0, ..greedy(Strategy::Topk) };
    let (frames, out) = run_sampler(vec![MASK_ID; 96], opts);
    assert!(!out.contains(&MASK_ID));
    assert_eq!(frames.len(), 32, "three lanes of 32 characters, one each per step");
    for f in &frames {
        let lanes: Vec<usize> = f.decoded_now.iter().map(|&i| i / 32).collect();
        assert_eq!(lanes, vec![0, 1, 2], "one position in each lane: {:?}", f.decoded_now);
    }
    // Each lane starts at its own left end, within its two-character span.
    assert!(frames[0].decoded_now.iter().zip([0, 32, 64]).all(|(&i, start)| i == start || i == start + 1), "{:?}", frames[0].decoded_now);
    // A gap too short for two lanes (a word to infill) is one.
    let (frames, _) = run_sampler(vec![MASK_ID; 40], opts);
    assert_eq!(frames.len(), 40);
}

#[test]
fn with_stretches_the_lanes_decode_the_leftmost_unfinished_ones() {
    let opts = DecodeOptions { span: 2, per_step: 1, lanes: 2, stretch: 16, ..greedy(Strategy::Topk) };
    let (frames, out) = run_sampler(vec![MASK_ID; 96], opts);
    assert!(!out.contains(&MASK_ID));
    assert_eq!(frames.len(), 48, "six stretches of 16, two at a time, one character each per step");
    for (k, f) in frames.iter().enumerate() {
        let pair = 2 * (k / 16);
        let stretches: Vec<usize> = f.decoded_now.iter().map(|&i| i / 16).collect();
        assert_eq!(stretches, vec![pair, pair + 1], "step {k}: {:?}", f.decoded_now);
    }
    // One lane ignores --stretch, as its flag says: its span runs on across stretch boundaries.
    let one = DecodeOptions { span: 4, per_step: 2, lanes: 1, ..greedy(Strategy::Topk) };
    let (whole, _) = run_sampler(vec![MASK_ID; 96], one);
    let (stretched, _) = run_sampler(vec![MASK_ID; 96], DecodeOptions { stretch: 10, ..one });
    let steps = |frames: &[Frame]| frames.iter().map(|f| f.decoded_now.clone()).collect::<Vec<_>>();
    assert_eq!(steps(&stretched), steps(&whole));
}

/// Proposes 1 or 2 evenly where the left neighbour is hidden; where it is known, believes
/// strongly in the same character: a parallel draw disagrees with its neighbours, and the
/// polish passes make them agree.
struct Copycat;

impl Denoiser for Copycat {
    fn vocab_size(&self) -> usize {
        4
    }
    fn context(&self) -> usize {
        64
    }
    fn logits(&self, tokens: &[u32], _time: Time, positions: &[usize]) -> Vec<f32> {
        let mut out = Vec::new();
        for &i in positions {
            let mut row = [-9.0, 0.0, 0.0, -9.0];
            match i.checked_sub(1).map(|l| tokens[l]) {
                Some(left) if left != MASK_ID => row[left as usize] = 5.0,
                _ => {}
            }
            out.extend(row);
        }
        out
    }
}

/// 24 characters drawn 8 per step with `Copycat`, then `polish` passes: every frame, and the text.
fn copycat_with_polish(polish: usize) -> (Vec<Frame>, Vec<u32>) {
    let options = DecodeOptions { strategy: Strategy::Topk, per_step: 8, span: 0, temperature: 1.0, seed: 3, polish, ..plain() };
    let mut sampler = Sampler::new(vec![MASK_ID; 24], options);
    let mut rng = StdRng::seed_from_u64(options.seed);
    let mut frames = Vec::new();
    while !sampler.is_done() {
        frames.push(sampler.step(&Copycat, &mut rng, 0, 0));
        assert!(frames.len() < 100);
    }
    (frames, sampler.tokens())
}

#[test]
fn polish_passes_rewrite_hidden_characters_to_the_likeliest_and_take_their_steps() {
    let run = copycat_with_polish;
    let disagreements = |t: &[u32]| t.windows(2).filter(|w| w[0] != w[1]).count();
    let (plain_frames, drawn) = run(0);
    let (frames, polished) = run(3);
    assert_eq!(frames.len(), plain_frames.len() + 3, "each pass is one step");
    let tokens = |frames: &[Frame]| frames.iter().map(Frame::tokens).collect::<Vec<_>>();
    assert_eq!(tokens(&frames[..plain_frames.len()]), tokens(&plain_frames), "decoding itself is unchanged");
    for (phase, f) in frames[plain_frames.len()..].iter().enumerate() {
        for &i in &f.decoded_now {
            assert_eq!(i % POLISH_STRIDE, phase, "a pass rewrites only the characters it hides");
            if i > 0 {
                assert_eq!(f.cells[i].token, f.cells[i - 1].token, "rewritten to the likeliest: its left neighbour");
            }
            assert!(f.remasked_now.contains(&i), "shown as an edit");
        }
    }
    assert!(disagreements(&polished) < disagreements(&drawn), "{drawn:?} → {polished:?}");
}

#[test]
fn polish_stops_after_a_round_of_passes_that_changed_nothing() {
    let (plain_frames, _) = copycat_with_polish(0);
    let (frames, polished) = copycat_with_polish(60);
    let passes = &frames[plain_frames.len()..];
    assert!(passes.len() < 60, "converged before the last pass: {} passes", passes.len());
    let round = passes.len() - POLISH_STRIDE;
    assert!(passes[round..].iter().all(|f| f.decoded_now.is_empty()), "the last round changed nothing");
    assert!(!passes[round - 1].decoded_now.is_empty(), "and stopped right after it");
    assert!(polished.windows(2).all(|w| w[0] == w[1]), "every character agrees with its neighbour: {polished:?}");
    assert_eq!(copycat_with_polish(passes.len()).1, polished, "the same text as exactly that many passes");
}

#[test]
fn polish_of_a_gap_shorter_than_the_stride_stops_after_one_round() {
    // Two masked characters between known ones: Copycat fills them as their left neighbour, so no
    // pass changes anything, and most passes have nothing of the gap to hide.
    let mut tokens = vec![1; 12];
    tokens[5] = MASK_ID;
    tokens[6] = MASK_ID;
    let options = DecodeOptions { strategy: Strategy::Topk, per_step: 1, span: 0, seed: 3, polish: 30, ..plain() };
    let mut sampler = Sampler::new(tokens, options);
    let mut rng = StdRng::seed_from_u64(options.seed);
    let mut steps = 0;
    while !sampler.is_done() {
        sampler.step(&Copycat, &mut rng, 0, 0);
        steps += 1;
        assert!(steps < 100);
    }
    assert_eq!(sampler.tokens(), &[1; 12][..]);
    assert_eq!(steps, 2 + POLISH_STRIDE, "two to fill, then one round of passes that change nothing");
}
