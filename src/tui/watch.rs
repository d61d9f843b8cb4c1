//! Watch screen: the block being denoised, a status line and the confidence legend.

use super::decode_keys::DecodeKeys;
use super::denoise_grid::DenoiseGrid;
use super::shared::{Action, ModelInfo, Screen};
use super::theme::{Theme, legend};
use super::watch_state::{View, WatchState};
use crate::diffusion::Strategy;
use crossterm::event::{KeyCode, KeyEvent};
use ratatui::prelude::*;
use ratatui::widgets::{Block, Borders, Paragraph};

/// The keys of this screen (its footer and the `?` overlay read them); `App` handles them.
pub const BINDINGS: &[(&str, &str)] = &[
    ("space", "pause"),
    ("←/→", "scrub"),
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

/// The screen, for the model being watched; `note` replaces the hint line.
pub fn render(w: &WatchState, model: &ModelInfo, note: Option<&str>, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let [grid_area, status_area, legend_area] =
        Layout::vertical([Constraint::Min(3), Constraint::Length(3), Constraint::Length(1)]).areas(area);
    let block = Block::default().borders(Borders::ALL).title(format!(" {} ", model.name));
    let inner = block.inner(grid_area);
    block.render(grid_area, buf);
    let by_order = w.view == View::Order;
    let reveal = if by_order { w.reveal_steps() } else { None };
    let reveal = reveal.as_ref().map(|(steps, last)| (steps.as_slice(), *last));
    DenoiseGrid { frame: w.frame(), history: w.history(), vocab: &model.config.vocab, theme, max_cols: 64, reveal }
        .render(inner, buf);

    let [progress, settings] = status_lines(w, model, theme);
    Paragraph::new(vec![progress, settings, hint_line(w, note, theme)]).render(status_area, buf);
    Paragraph::new(legend(theme, legend_area.width, w.settings.revises(), by_order)).render(legend_area, buf);
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
    } else if !w.playing {
        "paused · ←/→ scrub through the steps · space resumes".to_string()
    } else if w.cursor + 1 >= w.frames.len() {
        "computing…".to_string()
    } else {
        String::new()
    };
    Line::styled(text, theme.dim)
}

/// The Watch screen's keys (the global ones are handled by `App::handle_key`).
pub(super) fn handle_key(w: &mut WatchState, key: KeyEvent) -> Vec<Action> {
    match key.code {
        KeyCode::Esc => return vec![Action::Quit],
        KeyCode::Char(' ') => w.playing = !w.playing,
        KeyCode::Right | KeyCode::Char('l') => w.step_forward(),
        KeyCode::Left | KeyCode::Char('h') => w.step_back(),
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
        KeyCode::Char('v') => {
            w.view = match w.view {
                View::Confidence => View::Order,
                View::Order => View::Confidence,
            };
        }
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
