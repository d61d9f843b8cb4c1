//! The inspector on the shipped model: the candidates it lists are the model's, and a cell's
//! history runs over every step until it was written.

use burn::prelude::*;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use tiny_diffusion::diffusion::{DecodeOptions, Denoiser, Frame, Time, look};
use tiny_diffusion::kind::ModelDenoiser;
use tiny_diffusion::tui::inspector;
use tiny_diffusion::tui::theme::Theme;
use tiny_diffusion::vocab::MASK_ID;

/// The frames of the first block of 96 characters after "ROMEO:", each looked at as the Watch
/// screen's worker does, until position `until` of the window is written.
fn watched(denoiser: &ModelDenoiser, options: &DecodeOptions, prompt: &[u32], until: usize) -> Vec<Frame> {
    let mut generation = tiny_diffusion::kind::generation(denoiser, prompt, 96, 16, *options);
    let mut frames = Vec::new();
    let mut push = |mut f: Frame| {
        look(&mut f, denoiser, options);
        let written = !f.cells[until].is_masked();
        frames.push(f);
        written
    };
    push(generation.begin_block().expect("a block to decode"));
    while let Some(f) = generation.step(denoiser) {
        if push(f) {
            break;
        }
    }
    frames
}

#[test]
fn the_panel_lists_the_models_own_probabilities_and_a_history_of_every_step_until_written() {
    let device = Device::flex();
    let (ckpt, model) = tiny_diffusion::shipped::load(&device).unwrap();
    let denoiser = ModelDenoiser::new(model, device);
    let options = DecodeOptions { seed: 3, ..DecodeOptions::default() };
    let prompt = ckpt.vocab.encode("ROMEO:").unwrap();
    let target = 60;
    let frames = watched(&denoiser, &options, &prompt, target);

    // At a step where the target is still masked: a direct forward pass over that frame's text.
    let upto = frames.len() / 2;
    let frame = &frames[upto];
    assert!(frame.cells[target].is_masked());
    let masked = frame.masked() as f32 / frame.cells.len() as f32;
    let logits = denoiser.logits(&frame.tokens(), Time::MaskRate(masked), &[target]);
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let total: f32 = logits.iter().map(|l| (l - max).exp()).sum();
    let mut direct: Vec<(usize, f32)> = (0..logits.len()).filter(|&v| v != MASK_ID as usize).map(|v| (v, (logits[v] - max).exp() / total)).collect();
    direct.sort_by(|a, b| b.1.total_cmp(&a.1));

    let area = Rect::new(0, 0, inspector::WIDTH, inspector::HEIGHT);
    let mut buf = Buffer::empty(area);
    inspector::render(&frames, upto, target, &ckpt.vocab, &Theme::new(false), area, &mut buf);
    let line = |y: u16| (0..area.width).map(|x| buf[(x, y)].symbol().to_string()).collect::<String>();
    for (k, &(id, p)) in direct.iter().take(5).enumerate() {
        let shown = line(2 + k as u16);
        let ch = match ckpt.vocab.char(id as u32).unwrap() {
            ' ' => '␣',
            '\n' => '↵',
            c => c,
        };
        assert!(shown.starts_with(&format!("│{ch} ")), "candidate {k}: {shown}");
        assert!(shown.contains(&format!("{:.1}%", 100.0 * p)), "candidate {k}, {:.1}%: {shown}", 100.0 * p);
    }

    // Until the step that wrote it, every step formed a belief about the target.
    let last = frames.len() - 1;
    assert!(frames[last].decoded_now.contains(&target));
    let points = inspector::history(&frames, last, target);
    assert_eq!(points.len(), frames.len(), "one point per step of the block, from its first frame");
    assert!(points.iter().all(|p| p.belief.is_some()), "a belief at every step until written");
    assert_eq!(points[last].mark, Some(inspector::Mark::Written));
    let written = frames[last].cells[target];
    let b = written.belief.unwrap();
    assert!(b.top.iter().any(|&(id, p)| id == written.token && (p - written.confidence).abs() < 1e-6), "drawn from the belief shown");
}
