//! Compare screen: models of different kinds race on the same prompt and seed, one lane each,
//! replayed on one clock (forward passes or compute time), each lane ending with a scoreboard.
//! The race itself runs on the racer thread (`worker::spawn_racer`); this screen replays it.

use super::component::{self, Binding, Component, Context, Keys};
use super::shared::Action;
use super::theme::Theme;
use super::worker::RaceMsg;
use crate::race::{Clock, LaneFrame, Score, frame_at};
use crate::vocab::Vocab;
use crossterm::event::{KeyCode, KeyEvent, MouseButton, MouseEvent, MouseEventKind};
use ratatui::prelude::*;
use ratatui::widgets::{Block, Borders, Paragraph, Sparkline};
use std::time::Duration;



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
    /// A clicked cell: its lane and position, whose belief the lane's status line shows.
    pub selected: Option<(usize, usize)>,
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
            selected: None,
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

/// The Compare screen's keys, in the order they are tried and listed (a new race is `App`'s to
/// start: races share its job numbers and the Watch screen's settings).
const KEYS: &[Binding<CompareState>] = &[
    Binding { keys: Keys::Plain(&[KeyCode::Char(' ')]), shown: "space", does: "pause", run: |c, _, _| {
        c.playing = !c.playing;
        vec![]
    } },
    Binding { keys: Keys::Plain(&[KeyCode::Char('c')]), shown: "c", does: "clock", run: |c, _, _| {
        c.toggle_clock();
        vec![]
    } },
    Binding { keys: Keys::Plain(&[KeyCode::Char('r'), KeyCode::Enter]), shown: "r", does: "race again (next seed)", run: |c, _, _| vec![Action::NewRace(c.seed + 1)] },
    Binding { keys: Keys::Plain(&[KeyCode::Char('['), KeyCode::Char(']')]), shown: "[/]", does: "speed", run: |c, key, _| {
        c.speed = if key.code == KeyCode::Char(']') { (c.speed * 2.0).min(16.0) } else { (c.speed / 2.0).max(1.0 / 16.0) };
        vec![]
    } },
    Binding::app("click", "a cell's candidates"),
    Binding::app("tab", "screens"),
    Binding::app("?", "help"),
    Binding::app("q", "quit"),
];

impl Component for CompareState {
    fn bindings(&self) -> Vec<(&'static str, &'static str)> {
        component::listed(KEYS)
    }

    fn handle_key(&mut self, key: KeyEvent, ctx: &Context) -> Vec<Action> {
        component::handle(KEYS, self, key, ctx)
    }

    fn handle_mouse(&mut self, mouse: MouseEvent, body: Rect, _: &Context) {
        handle_mouse(self, mouse, body);
    }

    fn render(&self, ctx: &Context, area: Rect, buf: &mut Buffer) {
        render(self, ctx.theme, area, buf);
    }

    fn tick(&mut self, dt: Duration, _: &Context) -> (bool, Vec<Action>) {
        (CompareState::tick(self, dt), Vec::new())
    }
}

/// The rectangle each lane's text is drawn in, when the screen is drawn in `area`.
fn text_areas(c: &CompareState, area: Rect) -> Vec<Rect> {
    let [lanes_area, _] = Layout::vertical([Constraint::Min(3), Constraint::Length(1)]).areas(area);
    Layout::vertical(c.lanes.iter().map(|_| Constraint::Fill(1)))
        .split(lanes_area)
        .iter()
        .map(|&lane| {
            let inner = Block::default().borders(Borders::ALL).inner(lane);
            Layout::vertical([Constraint::Min(0), Constraint::Length(1)]).areas::<2>(inner)[0]
        })
        .collect()
}

/// How a lane's text is laid out in its area: columns, and the first row of text shown (the
/// end of the text stays in view).
fn text_placement(len: usize, area: Rect) -> (usize, usize) {
    let cols = area.width.clamp(1, 96) as usize;
    (cols, len.div_ceil(cols).saturating_sub(area.height as usize))
}

/// A click on a lane's text selects the cell under it (a click elsewhere clears it).
fn handle_mouse(c: &mut CompareState, mouse: MouseEvent, body: Rect) {
    if mouse.kind != MouseEventKind::Down(MouseButton::Left) {
        return;
    }
    let at = Position { x: mouse.column, y: mouse.row };
    for (k, area) in text_areas(c, body).into_iter().enumerate() {
        let Some(frame) = c.lanes.get(k).and_then(|lane| lane.frames.get(c.shown(lane))) else { continue };
        if area.contains(at) {
            let (cols, first_row) = text_placement(frame.cells.len(), area);
            let pos = (first_row + (at.y - area.y) as usize) * cols + (at.x - area.x) as usize;
            c.selected = ((at.x - area.x) < cols as u16 && pos < frame.cells.len()).then_some((k, pos));
            return;
        }
    }
    c.selected = None;
}

/// The selected cell's belief, for its lane's status line.
fn selected_line(cell: &crate::diffusion::Cell, pos: usize, vocab: &Vocab, theme: &Theme) -> String {
    let show = |id: u32| super::denoise_grid::glyph(vocab, id, theme.mask_glyph);
    match cell.belief {
        Some(b) => {
            let top: Vec<String> = b.top.iter().filter(|(_, p)| *p >= 0.005).map(|&(id, p)| format!("{} {:.0}%", show(id), 100.0 * p)).collect();
            format!("cell {} '{}' · step {}: {} · entropy {:.2}", pos + 1, show(cell.token), b.step, top.join(" · "), b.entropy)
        }
        None if cell.prompt => format!("cell {} '{}' · the prompt", pos + 1, show(cell.token)),
        None => format!("cell {} '{}' · the model has not looked here yet", pos + 1, show(cell.token)),
    }
}

fn render(c: &CompareState, theme: &Theme, area: Rect, buf: &mut Buffer) {
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
    for (k, (lane, &area)) in c.lanes.iter().zip(areas.iter()).enumerate() {
        let selected = c.selected.filter(|&(l, _)| l == k).map(|(_, pos)| pos);
        render_lane(c, lane, selected, theme, area, buf);
    }
}

fn render_lane(c: &CompareState, lane: &Lane, selected: Option<usize>, theme: &Theme, area: Rect, buf: &mut Buffer) {
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
        draw_text(frame, selected, vocab, theme, text_area, buf);
    }
    let at_end = i + 1 >= lane.frames.len();
    let masked = frame.cells.iter().filter(|c| c.is_masked()).count();
    let picked = selected.zip(lane.vocab.as_ref()).and_then(|(pos, vocab)| frame.cells.get(pos).map(|cell| selected_line(cell, pos, vocab, theme)));
    let line = match (&lane.score, at_end) {
        _ if picked.is_some() => picked.expect("some"),
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
fn draw_text(frame: &LaneFrame, selected: Option<usize>, vocab: &Vocab, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let (cols, first_row) = text_placement(frame.cells.len(), area);
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
        let style = if selected == Some(pos) { style.patch(theme.cursor) } else { style };
        let ch = super::denoise_grid::glyph(vocab, cell.token, theme.mask_glyph);
        buf[(area.x + col as u16, area.y + r as u16)].set_char(ch).set_style(style);
    }
}
