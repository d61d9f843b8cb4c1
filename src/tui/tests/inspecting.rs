//! The cell inspector, the uncertainty view and the mouse (Watch, Compare, Infill).

use super::{chr, draw, frame, key, watching};
use crate::tui::app::App;
use crate::tui::inspector::{Mark, history};
use crate::tui::watch_state::View;
use crossterm::event::{KeyCode, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use ratatui::layout::Rect;

fn click(a: &mut App, kind: MouseEventKind, column: u16, row: u16, size: Rect) {
    let body = crate::tui::body_area(a, size);
    a.handle_mouse(MouseEvent { kind, column, row, modifiers: KeyModifiers::NONE }, body);
}

#[test]
fn x_opens_the_inspector_on_the_first_masked_cell_and_arrows_move_it() {
    let mut a = watching();
    a.handle_key(chr('x'));
    assert_eq!(a.watch.inspected, Some(8), "position 8 is the first masked one of the test frame");
    insta::assert_snapshot!(draw(&a, 120, 30));
    a.handle_key(key(KeyCode::Right));
    a.handle_key(key(KeyCode::Down));
    assert_eq!(a.watch.inspected, Some(9 + 64), "down moves a grid row");
    a.handle_key(key(KeyCode::Down));
    assert_eq!(a.watch.inspected, Some(119), "within the window");
    let cursor = a.watch.cursor;
    a.handle_key(chr(','));
    assert_eq!(a.watch.cursor, cursor - 1, ", scrubs back while arrows move the cell");
    a.handle_key(key(KeyCode::Esc));
    assert!(a.watch.inspected.is_none() && !a.quit, "esc closes the inspector first");
}

#[test]
fn the_panel_fits_below_the_grid_on_a_narrow_terminal() {
    let mut a = watching();
    a.handle_key(chr('x'));
    let screen = draw(&a, 80, 34);
    assert!(screen.contains("cell 9 · step 1") && screen.contains("masked"), "{screen}");
    assert!(screen.contains("e ") && screen.contains("65.0%"), "the likeliest candidate of position 8: {screen}");
}

#[test]
fn the_uncertainty_view_shades_each_masked_cell_by_how_sure_the_model_is() {
    let mut a = watching();
    a.handle_key(chr('v'));
    a.handle_key(chr('v'));
    assert_eq!(a.watch.view, View::Uncertainty);
    let screen = draw(&a, 100, 30);
    insta::assert_snapshot!(screen);
    // Masked positions 8, 11, 14, … are sure 20% + 15% × (i mod 5) of 'e'; the entropy of that
    // belief sets the shade, so positions sure alike look alike and the surest is darkest.
    let shades: String = screen.lines().flat_map(|l| l.chars()).filter(|c| "▒▓█".contains(*c)).collect();
    assert!(!shades.is_empty(), "{screen}");
    a.handle_key(chr('v'));
    assert_eq!(a.watch.view, View::Confidence, "v cycles back");
}

#[test]
fn a_click_selects_the_cell_drawn_under_it_and_the_wheel_scrubs() {
    let size = Rect::new(0, 0, 100, 30);
    let mut a = watching();
    let shown = frame(&a, 1);
    let screen = draw(&a, size.width, size.height);
    let rows: Vec<Vec<char>> = screen.lines().map(|l| l.chars().collect()).collect();
    // Every screen cell that selects a position shows that position's character, and every
    // position of the window is selected by exactly one screen cell.
    let mut hits = vec![0; shown.cells.len()];
    for row in 0..size.height {
        for column in 0..size.width {
            let mut b = watching();
            click(&mut b, MouseEventKind::Down(MouseButton::Left), column, row, size);
            let Some(i) = b.watch.inspected else { continue };
            hits[i] += 1;
            let drawn = rows[row as usize].get(column as usize).copied().unwrap_or(' ');
            let expected = crate::tui::denoise_grid::glyph(a.vocab(), shown.cells[i].token, a.theme.mask_glyph);
            assert_eq!(drawn, expected, "({column}, {row}) selects position {i}");
        }
    }
    assert!(hits.iter().all(|&n| n == 1), "{hits:?}");
    let cursor = a.watch.cursor;
    click(&mut a, MouseEventKind::ScrollUp, 10, 10, size);
    assert_eq!(a.watch.cursor, cursor - 1);
    click(&mut a, MouseEventKind::ScrollDown, 10, 10, size);
    assert_eq!(a.watch.cursor, cursor);
    click(&mut a, MouseEventKind::Down(MouseButton::Left), 0, 0, size);
    assert!(a.watch.inspected.is_none(), "a click off the grid selects nothing");
}

#[test]
fn a_cells_history_marks_the_steps_that_looked_wrote_and_took_it_back() {
    let a = watching();
    let mut frames: Vec<_> = (0..5).map(|s| frame(&a, s)).collect();
    frames[2].decoded_now = vec![8];
    frames[3].remasked_now = vec![8];
    frames[4].decoded_now = vec![8];
    frames[4].remasked_now = vec![8];
    // Step 3 did not look at position 8: its belief is the one from step 2.
    frames[3].cells[8].belief.as_mut().unwrap().step = 2;
    let points = history(&frames, 4, 8);
    assert_eq!(points.iter().map(|p| p.step).collect::<Vec<_>>(), vec![0, 1, 2, 3, 4]);
    assert_eq!(points.iter().map(|p| p.mark).collect::<Vec<_>>(), vec![None, None, Some(Mark::Written), Some(Mark::TakenBack), Some(Mark::Polished)]);
    assert_eq!(points.iter().map(|p| p.belief.is_some()).collect::<Vec<_>>(), vec![true, true, true, false, true]);
    assert_eq!(history(&frames, 1, 8).len(), 2, "up to the frame on screen");
    let mut other_block = frames.clone();
    other_block[4].block = 1;
    assert_eq!(history(&other_block, 4, 8).len(), 1, "only the block on screen");
}

#[test]
fn a_pinned_character_stays_and_the_run_goes_on_around_it_from_the_step_it_was_pinned_at() {
    use crate::diffusion::Denoiser;
    use crate::tui::app::{Effect, ModelInfo};
    use crate::tui::worker::{GenJob, GenMsg};
    use burn::prelude::Device;
    let device = Device::flex();
    let (config, model) = crate::shipped::load(&device).unwrap();
    let denoiser = crate::kind::ModelDenoiser::new(model, device);
    let mut a = App::new(ModelInfo { name: "shipped".into(), config, backend: "flex".into() }, crate::tui::theme::Theme::new(false));
    // What the generation worker does with a job.
    let run = |a: &mut App, job: GenJob| {
        let mut g = crate::kind::generation(&denoiser as &dyn Denoiser, &job.prompt, job.length, job.overlap, job.options);
        if let Some(cells) = job.resume {
            g = g.resumed_from(cells);
        }
        while let Some(frame) = g.step(&denoiser) {
            a.on_gen(GenMsg::Frame { job: job.id, frame });
        }
        a.on_gen(GenMsg::Done { job: job.id, cells: g.cells().to_vec() });
    };
    let Effect::Generate(job) = a.generate_fresh() else { panic!("a job") };
    run(&mut a, job);
    let unpinned = a.watch.full_text();
    let before: Vec<_> = a.watch.frames[..=5].to_vec();
    a.watch.cursor = 5;
    a.handle_key(chr('x'));
    let i = a.watch.inspected.unwrap();
    assert!(a.watch.frames[5].cells[i].is_masked());
    let pin = if a.vocab().char(unpinned[i]) == Some('Z') { 'Q' } else { 'Z' };
    a.handle_key(key(KeyCode::Enter));
    assert!(a.watch.pinning && !a.watch.playing);
    let effects = a.handle_key(chr(pin));
    let [Effect::Generate(job)] = effects.as_slice() else { panic!("a job carrying on the run: {effects:?}") };
    assert!(job.resume.as_ref().is_some_and(|c| c[i].prompt && c[i].token == a.vocab().id(pin).unwrap()));
    run(&mut a, job.clone());
    let pinned = a.watch.full_text();
    assert_eq!(a.vocab().char(pinned[i]), Some(pin), "the pinned character is in the finished text");
    assert_ne!(pinned, unpinned, "the run went another way around it");
    assert_eq!(a.watch.frames[..5], before[..5], "the steps before the pin are kept");
    assert_eq!(a.watch.frames[6].step, a.watch.frames[5].step + 1, "and the run counts on from them");
    // Backspace unpins: paused again before the end, the cell is masked once more.
    a.watch.cursor = 7;
    let effects = a.handle_key(key(KeyCode::Backspace));
    assert!(matches!(effects.as_slice(), [Effect::Generate(_)]), "{effects:?}");
    assert!(a.watch.frames[7].cells[i].is_masked() && a.watch.pins.is_empty());
}

#[test]
fn a_click_on_a_compare_lane_shows_that_cells_belief_in_its_status_line() {
    let size = Rect::new(0, 0, 80, 20);
    let mut a = super::app(false);
    super::racing(&mut a);
    a.compare.playing = false;
    a.compare.passes = 6.0;
    a.screen = crate::tui::app::Screen::Compare;
    let screen = draw(&a, size.width, size.height);
    // The lanes' texts, top and bottom: find the first character of the second lane's text.
    let rows: Vec<&str> = screen.lines().collect();
    let second = rows.iter().rposition(|l| l.contains("autoregressive · b")).unwrap() + 1;
    let column = rows[second].chars().position(|c| c == 'I').unwrap() as u16;
    click(&mut a, MouseEventKind::Down(MouseButton::Left), column, second as u16, size);
    assert_eq!(a.compare.selected, Some((1, 0)));
    let shown = draw(&a, size.width, size.height);
    assert!(shown.contains("cell 1 'I'"), "{shown}");
    click(&mut a, MouseEventKind::Down(MouseButton::Left), 0, 0, size);
    assert_eq!(a.compare.selected, None, "a click off the lanes clears it");
}

#[test]
fn in_infill_a_click_places_the_cursor_and_a_drag_selects_a_span_for_ctrl_g_to_make_a_gap() {
    let size = Rect::new(0, 0, 80, 24);
    let mut a = super::app(false);
    a.screen = crate::tui::app::Screen::Infill;
    a.infill = crate::tui::infill::InfillState::with_text("To be, or not to be:\nthat is the question.");
    let screen = draw(&a, size.width, size.height);
    let (row, line) = screen.lines().enumerate().find(|(_, l)| l.contains("not to")).unwrap();
    let column = line.chars().collect::<String>().split("not").next().unwrap().chars().count() as u16;
    click(&mut a, MouseEventKind::Down(MouseButton::Left), column, row as u16, size);
    assert_eq!((a.infill.cursor, a.infill.selection()), (10, None), "the cursor on the n of not");
    click(&mut a, MouseEventKind::Drag(MouseButton::Left), column + 3, row as u16, size);
    assert_eq!(a.infill.selection(), Some((10, 13)));
    a.handle_key(crossterm::event::KeyEvent::new(KeyCode::Char('g'), KeyModifiers::CONTROL));
    assert_eq!(a.infill.as_string(), "To be, or ___ to be:\nthat is the question.");
    // Past the end of a row: the end of that row.
    let (row, _) = draw(&a, size.width, size.height).lines().enumerate().find(|(_, l)| l.contains("that is")).unwrap();
    click(&mut a, MouseEventKind::Down(MouseButton::Left), 70, row as u16, size);
    assert_eq!(a.infill.cursor, a.infill.text.len());
}

#[test]
fn on_a_short_terminal_the_panel_gives_way_to_the_window() {
    let mut a = watching();
    a.handle_key(chr('x'));
    let screen = draw(&a, 80, 20);
    // The test window is 120 characters: two rows of the 64-column grid, both shown.
    assert!(screen.contains("ROMEO:↵B") && screen.contains("Ju"), "{screen}");
    assert!(screen.contains("cell 9 · step 1") && screen.contains("65.0%"), "{screen}");
}
