//! Watch screen: the block being denoised, a status line and the confidence legend.

use super::watch_state::View;
use crate::diffusion::Strategy;
use super::app::App;
use super::denoise_grid::DenoiseGrid;
use super::theme::legend;
use ratatui::prelude::*;
use ratatui::widgets::{Block, Borders, Paragraph};
use super::app::Screen;
use super::effect::Effect;
use crossterm::event::{KeyCode, KeyEvent};

/// The keys of this screen (its footer and the `?` overlay read them); `App` handles them.
pub const BINDINGS: &[(&str, &str)] = &[
    ("space", "pause"),
    ("←/→", "scrub"),
    ("+/-", "rule parameter"),
    ("t/T", "temperature"),
    ("s", "strategy"),
    ("w", "span"),
    ("n", "lanes"),
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

pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let [grid_area, status_area, legend_area] =
        Layout::vertical([Constraint::Min(3), Constraint::Length(3), Constraint::Length(1)]).areas(area);
    let w = &app.watch;
    let block = Block::default().borders(Borders::ALL).title(format!(" {} ", app.model.name));
    let inner = block.inner(grid_area);
    block.render(grid_area, buf);
    let by_order = w.view == View::Order;
    let reveal = if by_order { w.reveal_steps() } else { None };
    let reveal = reveal.as_ref().map(|(steps, last)| (steps.as_slice(), *last));
    DenoiseGrid { frame: w.frame(), history: w.history(), vocab: app.vocab(), theme: &app.theme, max_cols: 64, reveal }
        .render(inner, buf);

    let [progress, settings] = status_lines(app);
    Paragraph::new(vec![progress, settings, hint_line(app)]).render(status_area, buf);
    Paragraph::new(legend(&app.theme, legend_area.width, app.watch.settings.revises(), by_order)).render(legend_area, buf);
}

/// Progress of the step on screen, then the settings that produced it.
fn status_lines(app: &App) -> [Line<'static>; 2] {
    let w = &app.watch;
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
        app.model.config.model.kind.describe(s),
        s.temperature,
        s.seed,
        app.model.backend,
        w.steps_per_second()
    );
    [Line::styled(progress, app.theme.title), Line::from(settings)]
}

fn hint_line(app: &App) -> Line<'static> {
    let w = &app.watch;
    if let Some(note) = &app.note {
        return Line::styled(note.clone(), app.theme.warning);
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
    Line::styled(text, app.theme.dim)
}

/// The Watch screen's keys (the global ones are handled by `App::handle_key`).
pub(super) fn handle_key(app: &mut App, key: KeyEvent) -> Vec<Effect> {
    let w = &mut app.watch;
    match key.code {
        KeyCode::Esc => app.quit = true,
        KeyCode::Char(' ') => w.playing = !w.playing,
        KeyCode::Right | KeyCode::Char('l') => w.step_forward(),
        KeyCode::Left | KeyCode::Char('h') => w.step_back(),
        KeyCode::Char('+') | KeyCode::Char('=') => {
            w.settings.adjust(true);
            return vec![app.restart_block()];
        }
        KeyCode::Char('-') | KeyCode::Char('_') => {
            w.settings.adjust(false);
            return vec![app.restart_block()];
        }
        KeyCode::Char('t') => {
            w.settings.adjust_temperature(false);
            return vec![app.restart_block()];
        }
        KeyCode::Char('T') => {
            w.settings.adjust_temperature(true);
            return vec![app.restart_block()];
        }
        KeyCode::Char('s') => {
            w.settings.cycle_strategy();
            return vec![app.restart_block()];
        }
        KeyCode::Char('w') => {
            w.settings.cycle_span();
            return vec![app.restart_block()];
        }
        KeyCode::Char('m') => {
            w.settings.cycle_remask();
            return vec![app.restart_block()];
        }
        KeyCode::Char('n') => {
            w.settings.cycle_lanes();
            return vec![app.restart_block()];
        }
        KeyCode::Char('o') => {
            w.settings.cycle_polish();
            return vec![app.restart_block()];
        }
        KeyCode::Char('k') => {
            w.settings.cache = !w.settings.cache;
            return vec![app.restart_block()];
        }
        KeyCode::Char('v') => {
            w.view = match w.view {
                View::Confidence => View::Order,
                View::Order => View::Confidence,
            };
        }
        KeyCode::Char('p') => app.theme.palette = app.theme.palette.next(),
        KeyCode::Char('r') => {
            w.settings.seed = w.settings.seed.wrapping_add(1);
            w.playing = true;
            return vec![app.generate_fresh()];
        }
        KeyCode::Char('c') => {
            app.watch.playing = true;
            return app.continue_block().into_iter().collect();
        }
        KeyCode::Char('[') => w.slower(),
        KeyCode::Char(']') => w.faster(),
        KeyCode::Char('i') => app.screen = Screen::Infill,
        _ => {}
    }
    vec![]
}
