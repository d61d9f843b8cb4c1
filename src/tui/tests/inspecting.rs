//! The cell inspector, the uncertainty view and the mouse on the Watch screen.

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
