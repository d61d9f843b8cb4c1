//! Train screen: pick data and a preset, train on a worker thread, watch the loss fall.

use super::effect::Effect;
use super::component::{self, Binding, Component, Context, Keys};
use super::shared::Action;
use super::theme::Theme;
use crate::data::{BUILT_IN_NAME, DataSource};
use crate::model::Preset;
use crate::train::{SETTINGS, TrainEvent, TrainSettings, setting};
use ratatui::prelude::*;
use ratatui::symbols::Marker;
use ratatui::widgets::{Axis, Block, Borders, Chart, Dataset, GraphType, Paragraph, Wrap};
use std::path::PathBuf;
use std::time::Instant;
use crossterm::event::{KeyCode, KeyEvent};


/// A row of the screen's form: the data path, or one of the training settings that the
/// Train screen steps (`train::SETTINGS`, those with a `step`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Data,
    Setting(&'static str),
}

impl Field {
    /// The rows, in order.
    fn all() -> Vec<Field> {
        std::iter::once(Field::Data).chain(SETTINGS.iter().filter(|s| s.step.is_some()).map(|s| Field::Setting(s.name))).collect()
    }

    fn name(self) -> &'static str {
        match self {
            Field::Data => "data",
            Field::Setting(name) => name,
        }
    }
}

/// Columns of the field names: short, so that the built-in corpus's name fits at 80 columns.
const LABEL_WIDTH: usize = 8;
/// A run started here is short: a first model in minutes.
const FIRST_STEPS: usize = 500;

#[derive(Debug, Clone, PartialEq)]
pub struct TrainScreenState {
    /// The path typed in the data field; empty means the built-in corpus.
    pub data: String,
    /// The settings the rows step; the checkpoint cadence follows from their steps.
    pub recipe: TrainSettings,
    pub field: Field,
    pub editing: bool,
    pub out: PathBuf,
    pub running: bool,
    /// (step, smoothed training loss)
    pub losses: Vec<(f64, f64)>,
    /// (step, validation loss)
    pub val: Vec<(f64, f64)>,
    pub step: usize,
    pub total: usize,
    pub tokens_per_sec: f64,
    pub started: Option<Instant>,
    pub sample: Option<(usize, String)>,
    pub last_bpc: Option<f32>,
    pub message: Option<String>,
    /// The checkpoint of the last run that ended, ready to watch.
    pub finished: Option<PathBuf>,
}

impl Default for TrainScreenState {
    fn default() -> Self {
        TrainScreenState {
            data: String::new(),
            recipe: TrainSettings { steps: FIRST_STEPS, ..TrainSettings::for_preset(Preset::Tiny) },
            field: Field::Data,
            editing: false,
            out: PathBuf::from("checkpoints/tui-run"),
            running: false,
            losses: Vec::new(),
            val: Vec::new(),
            step: 0,
            total: 0,
            tokens_per_sec: 0.0,
            started: None,
            sample: None,
            last_bpc: None,
            message: None,
            finished: None,
        }
    }
}

impl TrainScreenState {
    pub fn select(&mut self, down: bool) {
        let all = Field::all();
        let (i, n) = (all.iter().position(|&f| f == self.field).unwrap_or(0), all.len());
        self.field = all[if down { (i + 1) % n } else { (i + n - 1) % n }];
    }

    /// ←/→ on the selected field.
    pub fn change(&mut self, up: bool) {
        if self.running {
            self.message = Some("settings are fixed while training runs (x stops)".into());
            return;
        }
        // The data path is typed, after `e`.
        if let Field::Setting(name) = self.field
            && let Some(step) = setting(name).step
        {
            step(&mut self.recipe, up);
        }
    }

    /// The run the screen starts: its recipe, validating, sampling and saving as often as a
    /// short run needs.
    pub fn settings(&self) -> TrainSettings {
        let steps = self.recipe.steps;
        TrainSettings { eval_every: (steps / 10).max(10), sample_every: (steps / 5).max(10), save_every: (steps / 4).max(50), ..self.recipe.clone() }
    }

    /// The data field as a source: a typed path, or the built-in corpus when it is empty.
    pub fn data_source(&self) -> DataSource {
        let path = self.data.trim();
        DataSource::from_arg((!path.is_empty()).then(|| std::path::Path::new(path)))
    }

    pub fn start(&mut self) -> Effect {
        self.running = true;
        self.losses.clear();
        self.val.clear();
        self.sample = None;
        self.last_bpc = None;
        self.step = 0;
        self.total = self.recipe.steps;
        self.started = Some(Instant::now());
        self.message = Some(format!("training; checkpoints go to {}", self.out.display()));
        Effect::StartTraining { settings: Box::new(self.settings()), data: self.data_source(), out: self.out.clone() }
    }

    pub fn on_event(&mut self, event: TrainEvent) {
        match event {
            TrainEvent::Started { step, total_steps, .. } => {
                self.step = step;
                self.total = total_steps;
            }
            TrainEvent::Step { step, loss, tokens_per_sec, .. } => {
                self.step = step;
                // An exponential moving average keeps the curve readable at batch 8.
                let smoothed = self.losses.last().map_or(loss as f64, |&(_, prev)| 0.95 * prev + 0.05 * loss as f64);
                self.losses.push((step as f64, smoothed));
                self.tokens_per_sec = if self.tokens_per_sec == 0.0 { tokens_per_sec } else { 0.9 * self.tokens_per_sec + 0.1 * tokens_per_sec };
            }
            TrainEvent::Eval { step, val_loss, val_bits_per_char } => {
                self.val.push((step as f64, val_loss as f64));
                self.last_bpc = Some(val_bits_per_char);
            }
            TrainEvent::Sample { step, text } => self.sample = Some((step, text)),
            TrainEvent::Saved { step, path } => self.message = Some(format!("step {step}: saved {}", path.display())),
            TrainEvent::Finished { .. } => {}
        }
    }

    pub fn on_finished(&mut self, result: Result<PathBuf, String>) {
        self.running = false;
        match result {
            Ok(path) => {
                self.message = Some(format!("saved {} · press w to watch it generate", path.display()));
                self.finished = Some(path);
            }
            Err(_) => self.message = Some("training failed; nothing was saved by this run".into()),
        }
    }

    fn eta(&self) -> Option<f64> {
        let started = self.started?;
        if self.step == 0 {
            return None;
        }
        let per_step = started.elapsed().as_secs_f64() / self.step as f64;
        Some(per_step * self.total.saturating_sub(self.step) as f64)
    }
}

fn field_value(s: &TrainScreenState, field: Field) -> String {
    match field {
        Field::Data if s.editing => s.data.clone(),
        Field::Data if s.data.trim().is_empty() => BUILT_IN_NAME.to_string(),
        Field::Data => s.data.clone(),
        Field::Setting(name) => (setting(name).show)(&s.recipe),
    }
}

/// Long paths keep their end (the file name) visible.
fn keep_tail(text: String, room: usize) -> String {
    let n = text.chars().count();
    if n <= room || room < 2 {
        return text;
    }
    let tail: String = text.chars().skip(n - (room - 1)).collect();
    format!("…{tail}")
}

fn render(s: &TrainScreenState, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let sample_rows = if area.height < 24 { 3 } else { 6 };
    let [top, chart_area, sample_area] =
        Layout::vertical([Constraint::Length(7), Constraint::Min(3), Constraint::Length(sample_rows)]).areas(area);
    let [form, stats] = Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(top);

    let lines: Vec<Line> = Field::all()
        .into_iter()
        .map(|field| {
            let (selected, name) = (field == s.field, field.name());
            let marker = if selected { "▶ " } else { "  " };
            let room = (form.width as usize).saturating_sub(2 + 2 + LABEL_WIDTH + 1);
            let mut value = keep_tail(field_value(s, field), room);
            if selected && s.editing {
                value.push('▏');
            }
            let style = if selected { theme.key } else { Style::new() };
            Line::from(vec![Span::styled(marker, theme.key), Span::raw(format!("{name:<LABEL_WIDTH$}")), Span::styled(value, style)])
        })
        .collect();
    Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(" Settings ")).render(form, buf);

    let eta = s.eta().map_or("–".into(), |secs| format!("{:.0}s", secs));
    let val = s.val.last().map_or("–".into(), |&(_, v)| format!("{v:.3}"));
    let bpc = s.last_bpc.map_or("–".into(), |b| format!("{b:.2}"));
    let train_loss = s.losses.last().map_or("–".into(), |&(_, l)| format!("{l:.3}"));
    let state = if s.running { "training" } else if s.finished.is_some() { "finished" } else { "idle" };
    let stats_lines = vec![
        Line::from(format!("{state} · step {}/{} · ETA {eta}", s.step, s.total.max(s.recipe.steps))),
        Line::from(format!("loss {train_loss} · val {val} · {bpc} bpc")),
        Line::from(format!("{:.0} tokens/s", s.tokens_per_sec)),
        Line::from(format!("checkpoint: {}", s.out.display())),
        Line::styled(s.message.clone().unwrap_or_default(), theme.warning),
    ];
    Paragraph::new(stats_lines)
        .wrap(Wrap { trim: true })
        .block(Block::default().borders(Borders::ALL).title(" Progress "))
        .render(stats, buf);

    render_chart(s, theme, chart_area, buf);

    let sample = s.sample.as_ref().map_or("(a sample appears here as training goes)".to_string(), |(step, text)| {
        format!("step {step}: {}", text.replace('\n', "↵ "))
    });
    Paragraph::new(sample)
        .wrap(Wrap { trim: false })
        .block(Block::default().borders(Borders::ALL).title(" Latest sample "))
        .render(sample_area, buf);
}

fn render_chart(s: &TrainScreenState, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let max_x = (s.total.max(s.recipe.steps).max(1)) as f64;
    let all = s.losses.iter().chain(&s.val).map(|&(_, y)| y);
    let max_y = all.clone().fold(0.0f64, f64::max).max(1.0).ceil();
    let min_y = all.fold(f64::INFINITY, f64::min).min(max_y - 0.5).max(0.0).floor();
    let (train_style, val_style) = if theme.color {
        (Style::new().fg(Color::Cyan), Style::new().fg(Color::Rgb(255, 200, 90)))
    } else {
        (Style::new(), Style::new().add_modifier(Modifier::BOLD))
    };
    let datasets = vec![
        Dataset::default().name("train (EMA)").marker(Marker::Braille).graph_type(GraphType::Line).style(train_style).data(&s.losses),
        Dataset::default().name("validation").marker(if theme.color { Marker::Dot } else { Marker::Block }).graph_type(GraphType::Line).style(val_style).data(&s.val),
    ];
    let label = |v: f64| Span::raw(format!("{v:.1}"));
    Chart::new(datasets)
        .block(Block::default().borders(Borders::ALL).title(" Masked-token loss (nats) "))
        .x_axis(Axis::default().bounds([0.0, max_x]).labels(vec![Span::raw("0"), Span::raw(format!("{}", max_x as usize))]))
        .y_axis(Axis::default().bounds([min_y, max_y]).labels(vec![label(min_y), label(max_y)]))
        .render(area, buf);
}

/// The Train screen's keys, in the order they are tried and listed.
const KEYS: &[Binding<TrainScreenState>] = &[
    Binding { keys: Keys::Plain(&[KeyCode::Up, KeyCode::Down, KeyCode::Char('k'), KeyCode::Char('j')]), shown: "↑/↓", does: "field", run: |t, key, _| {
        t.select(matches!(key.code, KeyCode::Down | KeyCode::Char('j')));
        vec![]
    } },
    Binding { keys: Keys::Plain(&[KeyCode::Left, KeyCode::Right, KeyCode::Char('h'), KeyCode::Char('l')]), shown: "←/→", does: "change", run: |t, key, _| {
        t.change(matches!(key.code, KeyCode::Right | KeyCode::Char('l')));
        vec![]
    } },
    Binding { keys: Keys::Plain(&[KeyCode::Char('e')]), shown: "e", does: "edit data path", run: |t, _, _| {
        t.editing = t.field == Field::Data && !t.running;
        vec![]
    } },
    // Enter starts wherever the selection is, as the footer says; `e` edits the data path.
    Binding { keys: Keys::Plain(&[KeyCode::Enter, KeyCode::Char('s')]), shown: "enter", does: "start", run: |t, _, _| {
        if t.running { vec![] } else { vec![Action::Work(t.start())] }
    } },
    Binding { keys: Keys::Plain(&[KeyCode::Char('x')]), shown: "x", does: "stop & save", run: |t, _, _| {
        if !t.running {
            return vec![];
        }
        t.message = Some("stopping after this step; saving a checkpoint…".into());
        vec![Action::Work(Effect::StopTraining)]
    } },
    Binding { keys: Keys::Plain(&[KeyCode::Char('w')]), shown: "w", does: "watch the result", run: |t, _, _| match &t.finished {
        Some(path) => vec![Action::Work(Effect::LoadCheckpoint(path.clone()))],
        None => {
            t.message = Some("no finished checkpoint yet: train one first".into());
            vec![]
        }
    } },
    Binding { keys: Keys::Plain(&[KeyCode::Esc]), shown: "", does: "quit", run: |_, _, _| vec![Action::Quit] },
    Binding::app("R", "record"),
    Binding::app("tab", "screens"),
    Binding::app("?", "help"),
    Binding::app("q", "quit"),
];

/// While the data path is edited.
const EDITING: &[Binding<TrainScreenState>] = &[
    Binding { keys: Keys::Typed, shown: "type", does: "the data path", run: |t, key, _| {
        if let KeyCode::Char(c) = key.code {
            t.data.push(c);
        }
        vec![]
    } },
    Binding { keys: Keys::Plain(&[KeyCode::Backspace]), shown: "backspace", does: "delete", run: |t, _, _| {
        t.data.pop();
        vec![]
    } },
    Binding { keys: Keys::Plain(&[KeyCode::Enter, KeyCode::Esc]), shown: "enter", does: "done", run: |t, _, _| {
        t.editing = false;
        vec![]
    } },
];

impl Component for TrainScreenState {
    fn bindings(&self) -> Vec<(&'static str, &'static str)> {
        component::listed(KEYS)
    }

    fn handle_key(&mut self, key: KeyEvent, ctx: &Context) -> Vec<Action> {
        component::handle(if self.editing { EDITING } else { KEYS }, self, key, ctx)
    }

    fn render(&self, ctx: &Context, area: Rect, buf: &mut Buffer) {
        render(self, ctx.theme, area, buf);
    }
}
