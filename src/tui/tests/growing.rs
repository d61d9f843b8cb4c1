//! A gap that finds its own length, on the Watch screen: split and vanishing cells.

use super::{TapCtrl, app, chr, draw, key};
use crate::diffusion::edits::Resize;
use crate::diffusion::{Cell, Frame};
use crate::tui::app::{Effect, Screen};
use crate::tui::render;
use crate::tui::worker::GenMsg;
use crossterm::event::KeyCode;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use std::time::Duration;

/// The Watch screen after the worker grew `It is the _* sun` with a model that knows the length
/// states: two masks, one split (3 cells), one vanished (drawn, then gone), then `sun` written.
fn grown() -> crate::tui::app::App {
    let mut a = app(true);
    a.handle_key(chr('i'));
    a.handle_key(key(KeyCode::Char('u')).tap_ctrl());
    for c in "It is the _*2 sun".chars() {
        a.handle_key(chr(c));
    }
    assert!(a.infill.unknown_positions(a.vocab()).is_empty(), "the start count is the marker's, not text");
    let effects = a.handle_key(key(KeyCode::Enter));
    let [Effect::Generate(job)] = effects.as_slice() else { panic!("{effects:?}") };
    assert_eq!(job.elastic.as_ref().unwrap().gaps[0].start, Some(2));
    let (head, tail) = (a.vocab().encode("It is the ").unwrap(), a.vocab().encode(" sun").unwrap());
    let frame = |step: usize, gap: Vec<Cell>, decoded_now: Vec<usize>, resized_now: Vec<(usize, Resize)>| {
        let at = |v: Vec<usize>| v.into_iter().map(|i| i + head.len()).collect();
        let cells = crate::diffusion::cell::given(&head).into_iter().chain(gap).chain(crate::diffusion::cell::given(&tail)).collect();
        let resized_now = resized_now.into_iter().map(|(i, r)| (i + head.len(), r)).collect();
        Frame { block: 0, step, offset: 0, cells, decoded_now: at(decoded_now), remasked_now: vec![], resized_now, elapsed: Duration::ZERO }
    };
    let m = Cell::MASKED;
    let w = |c: char| Cell { token: a.vocab().id(c).unwrap(), confidence: 0.9, prompt: false, belief: None };
    let (expand, delete) = (crate::diffusion::edits::expand_id(a.vocab().size()), crate::diffusion::edits::delete_id(a.vocab().size()));
    let s_id = a.vocab().id('s').unwrap();
    let top = [(expand, 0.6), (s_id, 0.3), (delete, 0.1), (0, 0.0), (0, 0.0)];
    let believed = Cell { belief: Some(crate::diffusion::Belief { top, entropy: 0.9, step: 1 }), ..m };
    let frames = [
        frame(1, vec![believed, m, m], vec![], vec![(0, Resize::Split), (1, Resize::Split)]),
        frame(2, vec![m, m, m, m], vec![], vec![(3, Resize::Split), (2, Resize::Split)]),
        frame(3, vec![w('s'), m, m, m], vec![0], vec![(3, Resize::Vanished)]),
        frame(4, vec![w('s'), w('u'), w('n')], vec![1, 2], vec![]),
    ];
    for f in frames {
        a.on_gen(GenMsg::Frame { job: job.id, frame: f });
    }
    let prompt = a.vocab().encode("It is the sun sun").unwrap();
    a.on_gen(GenMsg::Grown { job: job.id, prompt: prompt.clone(), lengths: vec![3] });
    assert_eq!((a.watch.job_prompt.clone(), a.watch.job_length), (prompt.clone(), prompt.len()));
    assert_eq!(a.screen, Screen::Watch);
    a.watch.playing = false;
    a
}

#[test]
fn a_split_cell_and_a_vanishing_one_are_drawn_and_counted_and_the_gap_keeps_its_grown_length() {
    let mut a = grown();
    assert!(a.note.as_deref().unwrap().contains("grown by the model to 3 characters"), "{:?}", a.note);
    a.watch.cursor = 0;
    let screen = draw(&a, 100, 24);
    assert!(screen.contains("It is the ░░░ sun") && screen.contains("· 1 split"), "{screen}");
    assert!(screen.contains("░ split") && screen.contains("× gone"), "the legend names both marks: {screen}");
    let mut terminal = Terminal::new(TestBackend::new(100, 24)).unwrap();
    terminal.draw(|fr| render(&a, fr)).unwrap();
    let split_bg = a.theme.split.bg.unwrap();
    let split = terminal.backend().buffer().content().iter().filter(|c| c.symbol() == "░" && c.bg == split_bg).count();
    assert_eq!(split, 3, "both halves of the split mask, and the legend's");
    // The inspector weighs the length states beside the characters.
    a.handle_key(chr('x'));
    let screen = draw(&a, 120, 30);
    assert!(screen.contains("↔ ") && screen.contains("60.0%") && screen.contains("× ") && screen.contains("↔ split in two · × vanish"), "{screen}");
    a.handle_key(key(KeyCode::Esc));
    a.watch.cursor = 2;
    let screen = draw(&a, 100, 24);
    assert!(screen.contains("It is the s░░× sun") && screen.contains("· 1 gone"), "a vanishing cell is drawn in its step: {screen}");
    a.watch.cursor = 3;
    assert!(draw(&a, 100, 24).contains("It is the sun sun"), "and gone from the next");
    // The decode-order view follows the gap as it changes length.
    a.handle_key(chr('v'));
    assert!(draw(&a, 100, 24).contains("It is the sun sun"));
    // `r` fills the prompt again with the gap at its grown length.
    let Effect::Generate(again) = a.generate_fresh() else { panic!("expected a job") };
    assert_eq!(a.vocab().decode(&again.prompt, '_'), "It is the ___ sun");
}
