//! Watch screen: the block being denoised, a status line and the confidence legend.

use super::decode_keys::DecodeKeys;
use super::denoise_grid::{DenoiseGrid, MAX_COLUMNS};
use super::inspector;
use super::shared::{Action, ModelInfo, Screen};
use super::theme::{Theme, legend};
use super::watch_state::{View, WatchState};
use crate::diffusion::Strategy;
use crossterm::event::{KeyCode, KeyEvent, MouseButton, MouseEvent, MouseEventKind};
use ratatui::prelude::*;
use ratatui::widgets::{Block, Borders, Paragraph};

/// The keys of this screen (its footer and the `?` overlay read them); `App` handles them.
pub const BINDINGS: &[(&str, &str)] = &[
    ("space", "pause"),
    ("←/→ ,/.", "scrub"),
    ("x", "inspect a cell"),
    ("+/-", "rule parameter"),
    ("t/T", "temperature"),
    ("s", "strategy"),
    ("w", "span"),
    ("n", "lanes"),
    ("N", "lane stretch"),
    ("m", "remask"),
    ("o", "polish"),
    ("k", "kv cache"),
    ("v", "view"),
    ("p", "palette"),
    ("r", "regenerate"),
    ("c", "continue"),
    ("[/]", "speed"),
    ("i", "infill"),
    ("R", "record"),
    ("tab", "screens"),
    ("?", "help"),
    ("q", "quit"),
];

/// Where the screen draws its parts: the grid's box, the inspector's (while open), the status
/// lines and the legend.
struct Areas {
    grid: Rect,
    inspector: Option<Rect>,
    status: Rect,
    legend: Rect,
}

fn areas(w: &WatchState, area: Rect) -> Areas {
    let [top, status, legend] = Layout::vertical([Constraint::Min(3), Constraint::Length(3), Constraint::Length(1)]).areas(area);
    if w.inspected.is_none() {
        return Areas { grid: top, inspector: None, status, legend };
    }
    // Beside the grid where the terminal is wide enough for both, else below it.
    let [grid, inspector] = if top.width >= MAX_COLUMNS + 2 + inspector::WIDTH {
        Layout::horizontal([Constraint::Min(MAX_COLUMNS + 2), Constraint::Length(inspector::WIDTH)]).areas(top)
    } else {
        Layout::vertical([Constraint::Min(3), Constraint::Length(inspector::HEIGHT)]).areas(top)
    };
    Areas { grid, inspector: Some(inspector), status, legend }
}

/// The grid of the screen as drawn in `area` (the body), and the rectangle inside its box.
fn grid<'a>(w: &'a WatchState, model: &'a ModelInfo, theme: &'a Theme, reveal: Option<(&'a [Option<usize>], usize)>, area: Rect) -> (DenoiseGrid<'a>, Rect) {
    let inner = Block::default().borders(Borders::ALL).inner(areas(w, area).grid);
    let grid = DenoiseGrid {
        frame: w.frame(),
        history: w.history(),
        vocab: &model.config.vocab,
        theme,
        max_cols: MAX_COLUMNS,
        reveal,
        uncertainty: w.view == View::Uncertainty,
        cursor: w.inspected_in_view(),
    };
    (grid, inner)
}

/// The window position under screen cell (`x`, `y`) when the screen is drawn in `area`.
pub fn position_at(w: &WatchState, model: &ModelInfo, theme: &Theme, area: Rect, x: u16, y: u16) -> Option<usize> {
    let (grid, inner) = grid(w, model, theme, None, area);
    grid.window_position_at(inner, x, y)
}

/// The screen, for the model being watched; `note` replaces the hint line.
pub fn render(w: &WatchState, model: &ModelInfo, note: Option<&str>, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let parts = areas(w, area);
    Block::default().borders(Borders::ALL).title(format!(" {} ", model.name)).render(parts.grid, buf);
    let reveal = if w.view == View::Order { w.reveal_steps() } else { None };
    let reveal = reveal.as_ref().map(|(steps, last)| (steps.as_slice(), *last));
    let (grid, inner) = grid(w, model, theme, reveal, area);
    grid.render(inner, buf);
    if let (Some(rect), Some(i)) = (parts.inspector, w.inspected_in_view()) {
        inspector::render(&w.frames, w.cursor, i, &model.config.vocab, theme, rect, buf);
    }
    let [progress, settings] = status_lines(w, model, theme);
    Paragraph::new(vec![progress, settings, hint_line(w, note, theme)]).render(parts.status, buf);
    Paragraph::new(legend(theme, parts.legend.width, w.settings.revises(), w.view)).render(parts.legend, buf);
}

/// Progress of the step on screen, then the settings that produced it.
fn status_lines(w: &WatchState, model: &ModelInfo, theme: &Theme) -> [Line<'static>; 2] {
    let s = &w.settings;
    let (step, decoded, ms, block) = match w.frame() {
        Some(f) => (f.step, f.decoded_now.len(), f.elapsed.as_secs_f64() * 1e3, w.block_base + f.block + 1),
        None => (0, 0, 0.0, w.block_base + 1),
    };
    let total = match s.strategy {
        Strategy::Steps | Strategy::Random => format!("/{}", s.steps),
        _ => String::new(),
    };
    let play = if w.playing { "▶" } else { "⏸" };
    let edits = if s.revises() { format!(" · {} edits", w.edits_in_view()) } else { String::new() };
    let progress = format!(
        "{play} block {block} · step {step}{total} · {} masked · +{decoded} this step{edits} · {ms:.0} ms/step",
        w.masked_in_view()
    );
    let settings = format!(
        "{} · temp {:.1} · seed {} · {} · {} steps/s",
        model.config.model.kind.describe(s),
        s.temperature,
        s.seed,
        model.backend,
        w.steps_per_second()
    );
    [Line::styled(progress, theme.title), Line::from(settings)]
}

fn hint_line(w: &WatchState, note: Option<&str>, theme: &Theme) -> Line<'static> {
    if let Some(note) = note {
        return Line::styled(note.to_string(), theme.warning);
    }
    let text = if w.frames.is_empty() {
        "starting the model…".to_string()
    } else if w.at_end() {
        "done · c continues with the next block · r regenerates with a new seed".to_string()
    } else if w.pinning {
        "type the character to pin at this cell (esc cancels)".to_string()
    } else if w.inspected.is_some() {
        "inspector · arrows or a click move the cell · ,/. scrub · enter pins a character · x/esc close".to_string()
    } else if !w.playing {
        "paused · ←/→ scrub through the steps · x inspects a cell · space resumes".to_string()
    } else if w.cursor + 1 >= w.frames.len() {
        "computing…".to_string()
    } else {
        String::new()
    };
    Line::styled(text, theme.dim)
}

/// A click selects a cell for the inspector (and opens it); the wheel scrubs.
pub(super) fn handle_mouse(w: &mut WatchState, model: &ModelInfo, theme: &Theme, mouse: MouseEvent, body: Rect) {
    match mouse.kind {
        MouseEventKind::Down(MouseButton::Left) => {
            // The grid as it was drawn: with the inspector open or not.
            if let Some(i) = position_at(w, model, theme, body, mouse.column, mouse.row) {
                w.inspected = Some(i);
            }
        }
        MouseEventKind::ScrollUp => w.step_back(),
        MouseEventKind::ScrollDown => w.step_forward(),
        _ => {}
    }
}

/// The Watch screen's keys (the global ones are handled by `App::handle_key`).
pub(super) fn handle_key(w: &mut WatchState, key: KeyEvent) -> Vec<Action> {
    let inspecting = w.inspected.is_some();
    if w.pinning {
        match key.code {
            KeyCode::Char(c) => return vec![Action::Steer(Some(c))],
            KeyCode::Enter => return vec![Action::Steer(Some('\n'))],
            _ => w.pinning = false,
        }
        return vec![];
    }
    match key.code {
        KeyCode::Enter if inspecting => {
            w.playing = false;
            w.pinning = w.inspected_in_view().is_some_and(|i| w.frame().is_some_and(|f| f.cells[i].is_masked()));
        }
        KeyCode::Backspace if inspecting => return vec![Action::Steer(None)],
        KeyCode::Esc if inspecting => w.inspected = None,
        KeyCode::Esc => return vec![Action::Quit],
        KeyCode::Char(' ') => w.playing = !w.playing,
        KeyCode::Char('x') => w.toggle_inspector(),
        KeyCode::Right if inspecting => w.move_inspected(1),
        KeyCode::Left if inspecting => w.move_inspected(-1),
        KeyCode::Down if inspecting => w.move_inspected(MAX_COLUMNS as isize),
        KeyCode::Up if inspecting => w.move_inspected(-(MAX_COLUMNS as isize)),
        KeyCode::Right | KeyCode::Char('l') | KeyCode::Char('.') => w.step_forward(),
        KeyCode::Left | KeyCode::Char('h') | KeyCode::Char(',') => w.step_back(),
        KeyCode::Char('+') | KeyCode::Char('=') => {
            w.settings.adjust(true);
            return vec![Action::RestartBlock];
        }
        KeyCode::Char('-') | KeyCode::Char('_') => {
            w.settings.adjust(false);
            return vec![Action::RestartBlock];
        }
        KeyCode::Char('t') => {
            w.settings.adjust_temperature(false);
            return vec![Action::RestartBlock];
        }
        KeyCode::Char('T') => {
            w.settings.adjust_temperature(true);
            return vec![Action::RestartBlock];
        }
        KeyCode::Char('s') => {
            w.settings.cycle_strategy();
            return vec![Action::RestartBlock];
        }
        KeyCode::Char('w') => {
            w.settings.cycle_span();
            return vec![Action::RestartBlock];
        }
        KeyCode::Char('m') => {
            w.settings.cycle_remask();
            return vec![Action::RestartBlock];
        }
        KeyCode::Char('n') => {
            w.settings.cycle_lanes();
            return vec![Action::RestartBlock];
        }
        KeyCode::Char('N') => {
            w.settings.cycle_stretch();
            return vec![Action::RestartBlock];
        }
        KeyCode::Char('o') => {
            w.settings.cycle_polish();
            return vec![Action::RestartBlock];
        }
        KeyCode::Char('k') => {
            w.settings.cache = !w.settings.cache;
            return vec![Action::RestartBlock];
        }
        KeyCode::Char('v') => w.view = w.view.next(),
        KeyCode::Char('p') => return vec![Action::NextPalette],
        KeyCode::Char('r') => {
            w.settings.seed = w.settings.seed.wrapping_add(1);
            w.playing = true;
            return vec![Action::GenerateFresh];
        }
        KeyCode::Char('c') => {
            w.playing = true;
            return vec![Action::ContinueBlock];
        }
        KeyCode::Char('[') => w.slower(),
        KeyCode::Char(']') => w.faster(),
        KeyCode::Char('i') => return vec![Action::Show(Screen::Infill)],
        _ => {}
    }
    vec![]
}
