//! Watch screen: the block being denoised, a status line and the confidence legend.

use super::component::{self, Binding, Component, Context, Keys};
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
    // Beside the grid where the terminal is wide enough for both, else below it, leaving the
    // grid the rows its window needs (the panel's last lines go first on a short terminal).
    let [grid, inspector] = if top.width >= MAX_COLUMNS + 2 + inspector::WIDTH {
        Layout::horizontal([Constraint::Min(MAX_COLUMNS + 2), Constraint::Length(inspector::WIDTH)]).areas(top)
    } else {
        let cols = top.width.saturating_sub(2).clamp(1, MAX_COLUMNS) as usize;
        let window_rows = w.frame().map_or(1, |f| f.cells.len().div_ceil(cols)) as u16;
        let panel = inspector::HEIGHT.min(top.height.saturating_sub(window_rows + 2)).max(inspector::MIN_HEIGHT);
        Layout::vertical([Constraint::Min(3), Constraint::Length(panel)]).areas(top)
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
fn render(w: &WatchState, model: &ModelInfo, note: Option<&str>, theme: &Theme, area: Rect, buf: &mut Buffer) {
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
    let resizing = w.frames.iter().any(|f| !f.resized_now.is_empty());
    Paragraph::new(legend(theme, parts.legend.width, w.settings.revises(), resizing, w.view)).render(parts.legend, buf);
}

/// Progress of the step on screen, then the settings that produced it.
fn status_lines(w: &WatchState, model: &ModelInfo, theme: &Theme) -> [Line<'static>; 2] {
    let s = &w.settings;
    let (step, decoded, ms, block) = match w.frame() {
        Some(f) => (f.step, f.decoded_now.len(), f.elapsed.as_secs_f64() * 1e3, w.block_base + f.block + 1),
        None => (0, 0, 0.0, w.block_base + 1),
    };
    let resizes = w.frame().map(|f| f.resizes()).unwrap_or_default();
    let total = match s.strategy {
        Strategy::Steps | Strategy::Random => format!("/{}", s.steps),
        _ => String::new(),
    };
    let play = if w.playing { "▶" } else { "⏸" };
    let edits = if s.revises() { format!(" · {} edits", w.edits_in_view()) } else { String::new() };
    let progress = format!(
        "{play} block {block} · step {step}{total} · {} masked · +{decoded} this step{resizes}{edits} · {ms:.0} ms/step",
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
fn handle_mouse(w: &mut WatchState, model: &ModelInfo, theme: &Theme, mouse: MouseEvent, body: Rect) {
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

/// The Watch screen's keys, in the order they are tried and listed.
const KEYS: &[Binding<WatchState>] = &[
    Binding { keys: Keys::Plain(&[KeyCode::Char(' ')]), shown: "space", does: "pause", run: |w, _, _| {
        w.playing = !w.playing;
        vec![]
    } },
    // With the inspector open the arrows move its cell; `,`/`.` (and vi's h/l) always scrub.
    Binding { keys: Keys::Plain(&[KeyCode::Left, KeyCode::Right, KeyCode::Up, KeyCode::Down]), shown: "←/→ ,/.", does: "scrub", run: |w, key, _| {
        let forward = matches!(key.code, KeyCode::Right | KeyCode::Down);
        match (w.inspected.is_some(), key.code) {
            (true, KeyCode::Left | KeyCode::Right) => w.move_inspected(if forward { 1 } else { -1 }),
            (true, _) => w.move_inspected(if forward { 1 } else { -1 } * MAX_COLUMNS as isize),
            (false, KeyCode::Left) => w.step_back(),
            (false, KeyCode::Right) => w.step_forward(),
            (false, _) => {}
        }
        vec![]
    } },
    Binding { keys: Keys::Plain(&[KeyCode::Char(','), KeyCode::Char('.'), KeyCode::Char('h'), KeyCode::Char('l')]), shown: "", does: "scrub", run: |w, key, _| {
        if matches!(key.code, KeyCode::Char('.') | KeyCode::Char('l')) { w.step_forward() } else { w.step_back() }
        vec![]
    } },
    Binding { keys: Keys::Plain(&[KeyCode::Char('x')]), shown: "x", does: "inspect a cell", run: |w, _, _| {
        w.toggle_inspector();
        vec![]
    } },
    // The inspector's own keys, which its hint line names.
    Binding { keys: Keys::Plain(&[KeyCode::Enter]), shown: "", does: "pin a character at the inspected cell", run: |w, _, _| {
        w.playing = false;
        w.pinning = w.inspected_in_view().is_some_and(|i| w.frame().is_some_and(|f| f.cells[i].is_masked()));
        vec![]
    } },
    Binding { keys: Keys::Plain(&[KeyCode::Backspace]), shown: "", does: "unpin the inspected cell", run: |w, _, _| {
        if w.inspected.is_some() { vec![Action::Steer(None)] } else { vec![] }
    } },
    Binding { keys: Keys::Plain(&[KeyCode::Esc]), shown: "", does: "close the inspector, or quit", run: |w, _, _| {
        if w.inspected.take().is_some() { vec![] } else { vec![Action::Quit] }
    } },
    Binding { keys: Keys::Plain(&[KeyCode::Char('+'), KeyCode::Char('='), KeyCode::Char('-'), KeyCode::Char('_')]), shown: "+/-", does: "rule parameter", run: |w, key, _| {
        w.settings.adjust(matches!(key.code, KeyCode::Char('+') | KeyCode::Char('=')));
        vec![Action::RestartBlock]
    } },
    Binding { keys: Keys::Plain(&[KeyCode::Char('t'), KeyCode::Char('T')]), shown: "t/T", does: "temperature", run: |w, key, _| {
        w.settings.adjust_temperature(key.code == KeyCode::Char('T'));
        vec![Action::RestartBlock]
    } },
    Binding { keys: Keys::Plain(&[KeyCode::Char('s')]), shown: "s", does: "strategy", run: |w, _, _| {
        w.settings.cycle_strategy();
        vec![Action::RestartBlock]
    } },
    Binding { keys: Keys::Plain(&[KeyCode::Char('w')]), shown: "w", does: "span", run: |w, _, _| {
        w.settings.cycle_span();
        vec![Action::RestartBlock]
    } },
    Binding { keys: Keys::Plain(&[KeyCode::Char('n')]), shown: "n", does: "lanes", run: |w, _, _| {
        w.settings.cycle_lanes();
        vec![Action::RestartBlock]
    } },
    Binding { keys: Keys::Plain(&[KeyCode::Char('N')]), shown: "N", does: "lane stretch", run: |w, _, _| {
        w.settings.cycle_stretch();
        vec![Action::RestartBlock]
    } },
    Binding { keys: Keys::Plain(&[KeyCode::Char('m')]), shown: "m", does: "remask", run: |w, _, _| {
        w.settings.cycle_remask();
        vec![Action::RestartBlock]
    } },
    Binding { keys: Keys::Plain(&[KeyCode::Char('o')]), shown: "o", does: "polish", run: |w, _, _| {
        w.settings.cycle_polish();
        vec![Action::RestartBlock]
    } },
    Binding { keys: Keys::Plain(&[KeyCode::Char('k')]), shown: "k", does: "kv cache", run: |w, _, _| {
        w.settings.cache = !w.settings.cache;
        vec![Action::RestartBlock]
    } },
    Binding { keys: Keys::Plain(&[KeyCode::Char('v')]), shown: "v", does: "view", run: |w, _, _| {
        w.view = w.view.next();
        vec![]
    } },
    Binding { keys: Keys::Plain(&[KeyCode::Char('p')]), shown: "p", does: "palette", run: |_, _, _| vec![Action::NextPalette] },
    Binding { keys: Keys::Plain(&[KeyCode::Char('r')]), shown: "r", does: "regenerate", run: |w, _, _| {
        w.settings.seed = w.settings.seed.wrapping_add(1);
        w.playing = true;
        vec![Action::GenerateFresh]
    } },
    Binding { keys: Keys::Plain(&[KeyCode::Char('c')]), shown: "c", does: "continue", run: |w, _, _| {
        w.playing = true;
        vec![Action::ContinueBlock]
    } },
    Binding { keys: Keys::Plain(&[KeyCode::Char('['), KeyCode::Char(']')]), shown: "[/]", does: "speed", run: |w, key, _| {
        if key.code == KeyCode::Char(']') { w.faster() } else { w.slower() }
        vec![]
    } },
    Binding { keys: Keys::Plain(&[KeyCode::Char('i')]), shown: "i", does: "infill", run: |_, _, _| vec![Action::Show(Screen::Infill)] },
    Binding::app("R", "record"),
    Binding::app("tab", "screens"),
    Binding::app("?", "help"),
    Binding::app("q", "quit"),
];

/// While a character is to be pinned: the next one typed is it.
const PINNING: &[Binding<WatchState>] = &[
    Binding { keys: Keys::Typed, shown: "type", does: "the character to pin", run: |_, key, _| match key.code {
        KeyCode::Char(c) => vec![Action::Steer(Some(c))],
        _ => vec![],
    } },
    Binding { keys: Keys::Plain(&[KeyCode::Enter]), shown: "enter", does: "pin a newline", run: |_, _, _| vec![Action::Steer(Some('\n'))] },
    Binding { keys: Keys::Plain(&[KeyCode::Esc]), shown: "esc", does: "cancel", run: |w, _, _| {
        w.pinning = false;
        vec![]
    } },
];

impl Component for WatchState {
    fn bindings(&self) -> Vec<(&'static str, &'static str)> {
        component::listed(KEYS)
    }

    fn handle_key(&mut self, key: KeyEvent, ctx: &Context) -> Vec<Action> {
        component::handle(if self.pinning { PINNING } else { KEYS }, self, key, ctx)
    }

    fn handle_mouse(&mut self, mouse: MouseEvent, body: Rect, ctx: &Context) {
        handle_mouse(self, ctx.model, ctx.theme, mouse, body);
    }

    fn render(&self, ctx: &Context, area: Rect, buf: &mut Buffer) {
        render(self, ctx.model, ctx.note, ctx.theme, area, buf);
    }
}
