//! Life screen: the game of life on a grid of the model's own text. Each generation applies
//! Conway's rules, masks the live cells (■) and lets the model write them again, coloured by its
//! confidence. The grid and the model live on the life thread (`spawn_lifer`); this screen shows
//! what it reports and asks for the next generation when it is time.

use super::effect::{Effect, LifeCommand};
use super::component::{self, Binding, Component, Context, Keys};
use super::shared::Action;
use super::theme::Theme;
use crate::diffusion::DecodeOptions;
use crate::kind::ModelDenoiser;
use crate::life::Life;
use crate::vocab::{MASK_ID, Vocab};
use burn::prelude::Device;
use crossterm::event::{KeyCode, KeyEvent};
use ratatui::prelude::*;
use ratatui::widgets::{Block, Borders};
use std::path::PathBuf;
use std::sync::mpsc::Receiver;
use std::time::Duration;


/// Pause between generations at speed ×1.
const INTERVAL: Duration = Duration::from_millis(1200);

#[derive(Debug, Clone)]
pub enum LifeMsg {
    /// The live cells of the next generation, masked, before the model writes them.
    Masked { tokens: Vec<u32>, alive: Vec<bool> },
    /// The grid after a generation (or a reseed), with the model's vocabulary.
    Grid { life: Life, vocab: Vocab },
    Failed(String),
}

#[derive(Debug, Clone)]
pub struct LifeState {
    pub size: (usize, usize),
    pub life: Option<Life>,
    pub vocab: Option<Vocab>,
    /// The masked grid shown while the model writes the live cells.
    pub masked: Option<Vec<u32>>,
    pub playing: bool,
    pub speed: f64,
    pub seed: u64,
    pub started: bool,
    /// A generation was asked for and has not come back.
    pub waiting: bool,
    since: Duration,
    pub error: Option<String>,
}

impl Default for LifeState {
    fn default() -> Self {
        LifeState {
            size: crate::life::DEFAULT_SIZE,
            life: None,
            vocab: None,
            masked: None,
            playing: true,
            speed: 1.0,
            seed: 0,
            started: false,
            waiting: false,
            since: Duration::ZERO,
            error: None,
        }
    }
}

impl LifeState {
    pub fn reseed(&mut self, seed: u64, options: DecodeOptions) -> Effect {
        (self.seed, self.started, self.waiting, self.masked, self.since) = (seed, true, true, None, Duration::ZERO);
        Effect::Life(LifeCommand::Reseed { seed, size: self.size, options })
    }

    fn next(&mut self, options: DecodeOptions) -> Option<Effect> {
        if self.waiting || self.life.is_none() {
            return None;
        }
        (self.waiting, self.since) = (true, Duration::ZERO);
        Some(Effect::Life(LifeCommand::Step { options }))
    }

    pub fn on_msg(&mut self, msg: LifeMsg) {
        match msg {
            LifeMsg::Masked { tokens, .. } => self.masked = Some(tokens),
            LifeMsg::Grid { life, vocab } => {
                (self.life, self.vocab, self.masked, self.waiting) = (Some(life), Some(vocab), None, false);
            }
            LifeMsg::Failed(e) => (self.error, self.waiting) = (Some(e), false),
        }
    }

    /// Time passes: returns the next generation's effect when it is due.
    pub fn tick(&mut self, dt: Duration, options: DecodeOptions) -> Option<Effect> {
        if !self.playing || self.waiting {
            return None;
        }
        self.since += dt;
        if self.since.as_secs_f64() * self.speed >= INTERVAL.as_secs_f64() { self.next(options) } else { None }
    }
}

/// The Life screen's keys, in the order they are tried and listed; the masked cells are decoded
/// with the Watch screen's settings.
const KEYS: &[Binding<LifeState>] = &[
    Binding { keys: Keys::Plain(&[KeyCode::Char(' ')]), shown: "space", does: "pause", run: |l, _, _| {
        l.playing = !l.playing;
        vec![]
    } },
    Binding { keys: Keys::Plain(&[KeyCode::Char('n')]), shown: "n", does: "next generation", run: |l, _, ctx| {
        l.playing = false;
        l.next(ctx.settings).into_iter().map(Action::Work).collect()
    } },
    Binding { keys: Keys::Plain(&[KeyCode::Char('['), KeyCode::Char(']')]), shown: "[/]", does: "speed", run: |l, key, _| {
        l.speed = if key.code == KeyCode::Char(']') { (l.speed * 2.0).min(16.0) } else { (l.speed / 2.0).max(1.0 / 8.0) };
        vec![]
    } },
    Binding { keys: Keys::Plain(&[KeyCode::Char('r')]), shown: "r", does: "reseed", run: |l, _, ctx| vec![Action::Work(l.reseed(l.seed + 1, ctx.settings))] },
    Binding::app("tab", "screens"),
    Binding::app("?", "help"),
    Binding::app("q", "quit"),
];

impl Component for LifeState {
    fn bindings(&self) -> Vec<(&'static str, &'static str)> {
        component::listed(KEYS)
    }

    fn handle_key(&mut self, key: KeyEvent, ctx: &Context) -> Vec<Action> {
        component::handle(KEYS, self, key, ctx)
    }

    fn render(&self, ctx: &Context, area: Rect, buf: &mut Buffer) {
        render(self, ctx.theme, area, buf);
    }

    fn tick(&mut self, dt: Duration, ctx: &Context) -> (bool, Vec<Action>) {
        let next = LifeState::tick(self, dt, ctx.settings);
        (next.is_some(), next.into_iter().map(Action::Work).collect())
    }
}

fn render(l: &LifeState, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let [grid_area, status_area] = Layout::vertical([Constraint::Min(3), Constraint::Length(1)]).areas(area);
    let (Some(life), Some(vocab)) = (&l.life, &l.vocab) else {
        let what = l.error.as_deref().map_or("writing the seed text…".to_string(), |e| format!("cannot start: {e}"));
        Line::styled(what, if l.error.is_some() { theme.error } else { theme.dim }).render(grid_area, buf);
        return;
    };
    let (w, h) = (life.width, life.height());
    let block = Block::default().borders(Borders::ALL);
    let outer = Rect { width: (w as u16 + 2).min(grid_area.width), height: (h as u16 + 2).min(grid_area.height), ..grid_area };
    let outer = Rect { x: grid_area.x + (grid_area.width - outer.width) / 2, ..outer };
    let inner = block.inner(outer);
    block.render(outer, buf);
    let tokens = l.masked.clone().unwrap_or_else(|| life.tokens());
    for (i, &t) in tokens.iter().enumerate() {
        let (r, c) = ((i / w) as u16, (i % w) as u16);
        if r >= inner.height || c >= inner.width {
            continue;
        }
        let (ch, style) = if t == MASK_ID {
            ('■', theme.masked)
        } else {
            (super::denoise_grid::glyph(vocab, t, theme.mask_glyph), theme.confidence(life.squares[i].cell.confidence))
        };
        buf[(inner.x + c, inner.y + r)].set_char(ch).set_style(style);
    }
    let live = life.live();
    let clipped = if (w as u16) > inner.width || (h as u16) > inner.height { " · grid larger than the terminal: clipped" } else { "" };
    let status = format!(
        "{} generation {} · {w}×{h} · {live} live cells{} · speed ×{} · seed {}{clipped}",
        if l.playing { "▶" } else { "⏸" },
        life.generation,
        if l.masked.is_some() { " · the model is writing them" } else { "" },
        l.speed,
        l.seed
    );
    Line::styled(status, theme.dim).render(status_area, buf);
}

/// Runs the game on its own thread with the masked-diffusion model at `checkpoint` (the shipped
/// one when none is given, or when the checkpoint is of another kind).
pub fn spawn_lifer(checkpoint: Option<PathBuf>, device: Device, commands: Receiver<LifeCommand>, send: impl Fn(LifeMsg) -> bool + Send + 'static) {
    super::worker::spawn("life", move || {
        let inbox = super::worker::Inbox::new(commands);
        let mut loaded: Option<(ModelDenoiser, Vocab)> = None;
        let mut life: Option<Life> = None;
        for command in inbox {
            let (denoiser, vocab) = match super::worker::load_once(&mut loaded, || crate::life::load_model(checkpoint.as_deref(), &device)) {
                Ok(model) => model,
                Err(e) => {
                    send(LifeMsg::Failed(e));
                    return;
                }
            };
            match command {
                LifeCommand::Reseed { seed, size: (w, h), options } => {
                    let text = crate::life::seed_text(denoiser, w * h, DecodeOptions { seed, ..options });
                    life = Some(Life::new(&text, w, h, seed));
                }
                LifeCommand::Step { options } => {
                    let Some(l) = life.as_mut() else { continue };
                    let (alive, tokens) = l.next_masked();
                    if !send(LifeMsg::Masked { tokens, alive }) {
                        return;
                    }
                    l.step(denoiser, options);
                }
            }
            let grid = LifeMsg::Grid { life: life.clone().expect("seeded"), vocab: vocab.clone() };
            if !send(grid) {
                return;
            }
        }
    });
}
