//! Compare screen: models of different kinds race on the same prompt and seed, one lane each,
//! replayed on one clock (forward passes or compute time), each lane ending with a scoreboard.
//! The race itself runs on the racer thread (`worker::spawn_racer`); this screen replays it.

use super::shared::Action;
use super::theme::Theme;
use super::worker::RaceMsg;
use crate::race::{Clock, LaneFrame, Score, frame_at};
use crate::vocab::Vocab;
use crossterm::event::{KeyCode, KeyEvent};
use ratatui::prelude::*;
use ratatui::widgets::{Block, Borders, Paragraph, Sparkline};
use std::time::Duration;

pub use super::worker::{RaceSetup, RaceSource};

/// The keys of this screen (its footer and the `?` overlay read them).
pub const BINDINGS: &[(&str, &str)] = &[
    ("space", "pause"),
    ("c", "clock"),
    ("r", "race again (next seed)"),
    ("[/]", "speed"),
    ("tab", "screens"),
    ("?", "help"),
    ("q", "quit"),
];

/// Forward passes shown per second at speed ×1 (every lane makes one per tick).
const PASSES_PER_SEC: f64 = 25.0;
/// Compute time shown per second at speed ×1: slow motion, as a lane writes in about a second.
const TIME_SCALE: f64 = 0.1;

#[derive(Debug, Clone, Default)]
pub struct Lane {
    pub title: String,
    pub vocab: Option<Vocab>,
    pub frames: Vec<LaneFrame>,
    pub score: Option<Result<Score, String>>,
}

#[derive(Debug, Clone)]
pub struct CompareState {
    pub lanes: Vec<Lane>,
    pub clock: Clock,
    pub playing: bool,
    /// Playback position: forward passes (fractional) and compute time shown.
    pub passes: f64,
    pub elapsed: Duration,
    pub speed: f64,
    pub race: u64,
    pub started: bool,
    pub seed: u64,
    pub error: Option<String>,
}

impl Default for CompareState {
    fn default() -> Self {
        CompareState {
            lanes: Vec::new(),
            clock: Clock::default(),
            playing: true,
            passes: 0.0,
            elapsed: Duration::ZERO,
            speed: 1.0,
            race: 0,
            started: false,
            seed: 0,
            error: None,
        }
    }
}

impl CompareState {
    /// Starts race `race` (the previous one's lanes are dropped).
    pub fn start(&mut self, race: u64, seed: u64) {
        *self = CompareState { clock: self.clock, speed: self.speed, race, seed, started: true, ..CompareState::default() };
    }

    pub fn on_msg(&mut self, msg: RaceMsg) {
        match msg {
            RaceMsg::Lanes { race, lanes } if race == self.race => {
                self.lanes = lanes.into_iter().map(|(title, vocab)| Lane { title, vocab: Some(vocab), ..Lane::default() }).collect();
            }
            RaceMsg::Frame { race, lane, frame } if race == self.race => {
                if let Some(l) = self.lanes.get_mut(lane) {
                    l.frames.push(frame);
                }
            }
            RaceMsg::Score { race, lane, score } if race == self.race => {
                if let Some(l) = self.lanes.get_mut(lane) {
                    l.score = Some(score);
                }
            }
            RaceMsg::Failed { race, error } if race == self.race => self.error = Some(error),
            _ => {}
        }
    }

    /// Advances playback; returns whether anything on screen may have changed.
    pub fn tick(&mut self, dt: Duration) -> bool {
        if !self.playing || self.lanes.is_empty() || self.finished() {
            return false;
        }
        self.passes += dt.as_secs_f64() * PASSES_PER_SEC * self.speed;
        self.elapsed += dt.mul_f64(TIME_SCALE * self.speed);
        true
    }

    /// Whether every lane is scored and shown to its end.
    pub fn finished(&self) -> bool {
        self.lanes.iter().all(|l| l.score.is_some() && self.shown(l) + 1 >= l.frames.len())
    }

    /// Which of a lane's frames the clock shows now.
    pub fn shown(&self, lane: &Lane) -> usize {
        frame_at(&lane.frames, self.clock, self.passes as usize, self.elapsed)
    }

    /// Switches clock; each lane then shows where the other clock's position puts it.
    pub fn toggle_clock(&mut self) {
        self.clock = self.clock.toggle();
    }
}

/// The Compare screen's keys (a new race is `App`'s to start: races share its job numbers and
/// the Watch screen's settings).
pub fn handle_key(c: &mut CompareState, key: KeyEvent) -> Vec<Action> {
    match key.code {
        KeyCode::Char(' ') => c.playing = !c.playing,
        KeyCode::Char('c') => c.toggle_clock(),
        KeyCode::Char('r') | KeyCode::Enter => return vec![Action::NewRace(c.seed + 1)],
        KeyCode::Char(']') => c.speed = (c.speed * 2.0).min(16.0),
        KeyCode::Char('[') => c.speed = (c.speed / 2.0).max(1.0 / 16.0),
        _ => {}
    }
    vec![]
}

pub fn render(c: &CompareState, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let [lanes_area, status_area] = Layout::vertical([Constraint::Min(3), Constraint::Length(1)]).areas(area);
    let status = format!(
        "{} clock: {} · speed ×{} · seed {}",
        if c.playing { "▶" } else { "⏸" },
        c.clock.describe(),
        c.speed,
        c.seed
    );
    Line::styled(status, theme.dim).render(status_area, buf);
    if let Some(error) = &c.error {
        Paragraph::new(format!("The race could not start: {error}")).style(theme.error).wrap(ratatui::widgets::Wrap { trim: true }).render(lanes_area, buf);
        return;
    }
    if c.lanes.is_empty() {
        Line::styled("loading the models…", theme.dim).render(lanes_area, buf);
        return;
    }
    let areas = Layout::vertical(c.lanes.iter().map(|_| Constraint::Fill(1))).split(lanes_area);
    for (lane, &area) in c.lanes.iter().zip(areas.iter()) {
        render_lane(c, lane, theme, area, buf);
    }
}

fn render_lane(c: &CompareState, lane: &Lane, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let block = Block::default().borders(Borders::ALL).title(Span::styled(format!(" {} ", lane.title), theme.title));
    let inner = block.inner(area);
    block.render(area, buf);
    if inner.height == 0 {
        return;
    }
    let [text_area, score_area] = Layout::vertical([Constraint::Min(0), Constraint::Length(1)]).areas(inner);
    let i = c.shown(lane);
    let Some(frame) = lane.frames.get(i) else {
        Line::styled("waiting for its turn…", theme.dim).render(text_area, buf);
        return;
    };
    if let Some(vocab) = &lane.vocab {
        draw_text(frame, vocab, theme, text_area, buf);
    }
    let at_end = i + 1 >= lane.frames.len();
    let masked = frame.cells.iter().filter(|c| c.is_masked()).count();
    let line = match (&lane.score, at_end) {
        (Some(Ok(s)), true) => format!(
            "done · {} passes · {:.0} ms · {:.0} chars/s · judge {:.2} · distinct {:.2}",
            s.passes, s.millis, s.chars_per_sec, s.judge_nll, s.distinct_bigrams
        ),
        (Some(Err(e)), true) => format!("done · {} passes · no score: {e}", frame.passes),
        _ => format!("pass {} · {:.0} ms · {masked} masked", frame.passes, frame.compute.as_secs_f64() * 1e3),
    };
    // Characters written (or, for uniform diffusion, changed) by each step so far, on the right.
    let spark_width = score_area.width.saturating_sub(72).min(40);
    let [line_area, _, spark_area] =
        Layout::horizontal([Constraint::Min(0), Constraint::Length(1), Constraint::Length(spark_width)]).areas(score_area);
    Line::styled(line, theme.key).render(line_area, buf);
    let per_step: Vec<u64> = lane.frames[1..=i].iter().map(|f| f.decoded_now.len() as u64).collect();
    let recent = &per_step[per_step.len().saturating_sub(spark_width as usize)..];
    Sparkline::default().data(recent).style(theme.dim).render(spark_area, buf);
}

/// The lane's text as cells: prompt, masked, written this step, and written earlier by confidence.
fn draw_text(frame: &LaneFrame, vocab: &Vocab, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let cols = area.width.clamp(1, 96) as usize;
    let rows = frame.cells.len().div_ceil(cols);
    let first_row = rows.saturating_sub(area.height as usize);
    for (pos, cell) in frame.cells.iter().enumerate().skip(first_row * cols) {
        let (r, col) = (pos / cols - first_row, pos % cols);
        if r >= area.height as usize {
            break;
        }
        let style = if cell.is_masked() {
            theme.masked
        } else if cell.prompt {
            theme.prompt
        } else if frame.decoded_now.contains(&pos) {
            theme.decoded_now(cell.confidence)
        } else {
            theme.confidence(cell.confidence)
        };
        let ch = super::denoise_grid::glyph(vocab, cell.token, theme.mask_glyph);
        buf[(area.x + col as u16, area.y + r as u16)].set_char(ch).set_style(style);
    }
}
