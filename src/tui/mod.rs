//! The terminal UI: watch the model denoise, infill gaps, and train — live.
//!
//! The UI thread only draws and reacts to messages. The model runs on a generator thread and the
//! trainer on its own thread; they, checkpoint loads and a thread reading the terminal's input all
//! send on one channel (`Msg`), which the event loop drains between draws (see `worker`).

pub mod app;
pub mod compare;
pub mod component;
pub mod decode_keys;
pub mod denoise_grid;
pub mod effect;
pub mod help;
pub mod inspector;
pub mod infill;
pub mod life;
pub mod popup;
pub mod shared;
pub mod theme;
pub mod train_screen;
pub mod watch;
pub mod watch_state;
pub mod worker;

#[cfg(test)]
mod tests;

// What the command line sets up a session with.
pub use shared::Screen;
pub use theme::Palette;
pub use watch_state::View;

use crate::checkpoint::CheckpointConfig;
use crate::kind::ModelDenoiser;
use crate::model::Model;
use anyhow::{Context, Result};
use app::{App, Effect, ModelInfo};
use burn::prelude::Device;
use crossterm::event::{self, DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture, Event};
use crossterm::execute;
use ratatui::prelude::*;
use ratatui::widgets::Paragraph;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::{Duration, Instant};
use theme::Theme;
use worker::{GenCommand, GenMsg, TrainMsg};

pub const MIN_WIDTH: u16 = 40;
pub const MIN_HEIGHT: u16 = 12;
/// Messages handled between two draws at most, so the screen keeps up during a flood of keys.
const MAX_EVENTS_PER_DRAW: usize = 5000;
/// The longest the event loop waits for a message before it advances playback.
const TICK: Duration = Duration::from_millis(15);

/// A model ready to watch: its config, weights and a display name.
pub struct LoadedModel {
    pub config: CheckpointConfig,
    pub model: Model,
    pub name: String,
}

/// The Watch screen showing `frame` of a model shaped as `config`, as a drawing function: what
/// `bench` times, without reaching into the UI's state and messages.
pub fn watch_preview(config: CheckpointConfig, frame: crate::diffusion::Frame) -> impl Fn(&mut ratatui::Frame) {
    let mut app = App::new(ModelInfo { name: "preview".into(), config, backend: "flex".into() }, Theme::new(true));
    if let Effect::Generate(job) = app.generate_fresh() {
        app.on_gen(GenMsg::Frame { job: job.id, frame });
    }
    move |f| render(&app, f)
}

/// Draws the whole UI for `app` (pure: state in, widgets out).
pub fn render(app: &App, frame: &mut ratatui::Frame) {
    let area = frame.area();
    let buf = frame.buffer_mut();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let msg = format!("Terminal too small ({}×{}): need at least {MIN_WIDTH}×{MIN_HEIGHT}.", area.width, area.height);
        Paragraph::new(msg).wrap(ratatui::widgets::Wrap { trim: true }).render(area, buf);
        return;
    }
    let [header, body, footer] = layout(app, area);
    render_header(app, header, buf);
    let screen = app.component();
    screen.render(&app.screen_context(), body, buf);
    let bindings = screen.bindings();
    Paragraph::new(help::footer(&bindings, &app.theme)).wrap(ratatui::widgets::Wrap { trim: true }).render(footer, buf);
    if app.help {
        help::render_overlay(app.screen.title(), &bindings, &app.theme, body, buf);
    }
    if let Some(error) = &app.error {
        popup::render_error(error, &app.theme, body, buf);
    }
}

/// The header (tabs), the screen's body and the footer (its keys) in the terminal's `area`.
fn layout(app: &App, area: Rect) -> [Rect; 3] {
    let footer_lines = popup::wrapped_rows(&help::footer(&app.component().bindings(), &app.theme).to_string(), area.width).clamp(1, 4);
    Layout::vertical([Constraint::Length(1), Constraint::Min(5), Constraint::Length(footer_lines)]).areas(area)
}

/// The screen's body in a terminal of `size`: where a mouse event lands.
pub fn body_area(app: &App, size: Rect) -> Rect {
    layout(app, size)[1]
}

fn render_header(app: &App, area: Rect, buf: &mut Buffer) {
    let mut spans = vec![Span::styled(" tiny-diffusion ", app.theme.title)];
    for s in Screen::ALL {
        let style = if s == app.screen { app.theme.key.add_modifier(Modifier::REVERSED) } else { app.theme.dim };
        spans.push(Span::raw(" "));
        spans.push(Span::styled(format!(" {} ", s.title()), style));
    }
    if app.recording.is_some() {
        spans.push(Span::styled("  ● REC", app.theme.error));
    }
    let tabs = Line::from(spans);
    let tabs_width = tabs.width() as u16;
    tabs.render(area, buf);
    let m = &app.model.config.model;
    let info = format!("{:.1}M params · {} × {} · context {} ", m.num_params() as f64 / 1e6, m.n_layer, m.n_embd, m.context);
    let width = info.chars().count() as u16;
    // The model's shape, on the right, where it does not cover a tab.
    if area.width > width + tabs_width + 1 {
        Line::styled(info, app.theme.dim).render(Rect { x: area.x + area.width - width, width, ..area }, buf);
    }
}


/// Everything the event loop reacts to, on one channel drained between draws: the terminal's
/// input and what the workers report.
enum Msg {
    /// A key, a paste or a resize, from the input thread (`spawn_input_reader`).
    Input(Event),
    /// The terminal's input cannot be read any more.
    InputFailed(String),
    Gen(GenMsg),
    Train(TrainMsg),
    Race(worker::RaceMsg),
    Life(life::LifeMsg),
    /// A checkpoint chosen to watch, loaded (or not).
    Loaded(PathBuf, Result<ModelInfo, String>),
}

/// The threads the UI hands work to, and the channel on which they (and the input reader)
/// answer. `perform` turns an `Effect` into a command for one of them.
struct Workers {
    gen_tx: Sender<GenCommand>,
    race_tx: Sender<(u64, crate::diffusion::DecodeOptions)>,
    life_tx: Sender<effect::LifeCommand>,
    tx: Sender<Msg>,
    rx: Receiver<Msg>,
    device: Device,
    /// Set to stop the training run in progress, if any.
    stop_training: Option<Arc<AtomicBool>>,
}

impl Workers {
    fn perform(&mut self, effect: Effect) {
        match effect {
            Effect::Generate(job) => {
                let _ = self.gen_tx.send(GenCommand::Run(Box::new(job)));
            }
            Effect::StartRace(race, options) => {
                let _ = self.race_tx.send((race, options));
            }
            Effect::Life(command) => {
                let _ = self.life_tx.send(command);
            }
            Effect::StartTraining { settings, data, out } => {
                let stop = Arc::new(AtomicBool::new(false));
                self.stop_training = Some(stop.clone());
                let tx = self.tx.clone();
                worker::spawn_trainer(*settings, data, out, self.device.clone(), stop, move |m| {
                    let _ = tx.send(Msg::Train(m));
                });
            }
            Effect::StopTraining => {
                if let Some(stop) = &self.stop_training {
                    stop.store(true, Ordering::SeqCst);
                }
            }
            Effect::LoadCheckpoint(path) => spawn_loader(path, self.device.clone(), self.gen_tx.clone(), self.tx.clone()),
            Effect::ToggleRecording => {} // handled by the event loop, which owns the terminal
        }
    }
}

/// How a session starts: what it records, how it looks, where the Compare screen's lanes come
/// from, and the screen shown first.
pub struct Session<'a> {
    pub record: Option<&'a std::path::Path>,
    pub look: crate::record::Look,
    pub race: crate::race::RaceSource,
    /// The model the Life screen plays with (the shipped masked-diffusion model when None).
    pub life_checkpoint: Option<PathBuf>,
    /// The Life screen's grid, columns × rows.
    pub life_size: (usize, usize),
    /// The Compare screen's clock at first.
    pub clock: crate::race::Clock,
    pub screen: Screen,
}

impl Session<'_> {
    /// A session that opens on `screen`, with everything else as plain `tiny-diffusion` has it.
    pub fn on(screen: Screen) -> Self {
        Session {
            record: None,
            look: crate::record::Look::default(),
            race: crate::race::RaceSource::Load { watched: None },
            life_checkpoint: None,
            life_size: crate::life::DEFAULT_SIZE,
            clock: crate::race::Clock::default(),
            screen,
        }
    }
}

/// Runs the UI until the user quits. The terminal is restored on every exit path, panics included.
pub fn run(loaded: LoadedModel, device: Device, backend_name: &str, session: Session) -> Result<()> {
    let Session { record, look, race, life_checkpoint, life_size, clock, screen } = session;
    let (gen_tx, gen_commands) = mpsc::channel();
    let (race_tx, race_commands) = mpsc::channel();
    let (tx, rx) = mpsc::channel();
    // The header names the precision where it is not the default f32 (`--matmul bf16` on tiles).
    let precision = if crate::fused::inference_matmul().is_some() { " · bf16" } else { "" };
    let info = ModelInfo { name: loaded.name, config: loaded.config.clone(), backend: format!("{backend_name}{precision}") };
    let denoiser = ModelDenoiser::new(loaded.model, device.clone());
    let gen_out = tx.clone();
    worker::spawn_generator(Box::new(denoiser), device.clone(), gen_commands, move |m| gen_out.send(Msg::Gen(m)).is_ok());
    let race_out = tx.clone();
    worker::spawn_racer(race, device.clone(), race_commands, move |m| race_out.send(Msg::Race(m)).is_ok());
    let (life_tx, life_commands) = mpsc::channel();
    let life_out = tx.clone();
    life::spawn_lifer(life_checkpoint, device.clone(), life_commands, move |m| life_out.send(Msg::Life(m)).is_ok());
    let mut workers = Workers { gen_tx, race_tx, life_tx, tx, rx, device, stop_training: None };

    let mut app = App::new(info, Theme { palette: look.palette, ..Theme::from_env() });
    app.watch.view = look.view;
    app.compare.clock = clock;
    app.life.size = life_size;
    // The first screen starts its work; the other waits until shown, so that a race is timed
    // with the machine to itself.
    app.screen = screen;
    let first = match screen {
        Screen::Compare => app.start_race(app.watch.settings.seed),
        Screen::Life => app.life.reseed(app.watch.settings.seed, app.watch.settings),
        _ => app.generate_fresh(),
    };
    workers.perform(first);

    let mut terminal = ratatui::try_init().context("cannot open the terminal UI (is stdout a terminal?)")?;
    // Clicks and the wheel reach the screens; a terminal without mouse reporting ignores this.
    let _ = execute!(std::io::stdout(), EnableBracketedPaste, EnableMouseCapture);
    let ratatui_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let _ = execute!(std::io::stdout(), DisableMouseCapture, DisableBracketedPaste);
        ratatui_hook(info);
    }));
    let mut recorder = None;
    let stop_input = Arc::new(AtomicBool::new(false));
    let input = spawn_input_reader(workers.tx.clone(), stop_input.clone());
    let result = (|| {
        if let Some(path) = record {
            let size = terminal.size()?;
            recorder = Some(crate::record::SessionRecorder::create(path, size.width, size.height)?);
            app.recording = Some(path.display().to_string());
        }
        event_loop(&mut terminal, &mut app, &mut workers, &mut recorder)
    })();
    // Stop reading before the terminal goes back to the shell, so no later keystroke is taken.
    stop_input.store(true, Ordering::SeqCst);
    let _ = input.join();
    let _ = execute!(std::io::stdout(), DisableMouseCapture, DisableBracketedPaste);
    ratatui::restore();
    if let Some(recorder) = recorder {
        let path = recorder.path().display().to_string();
        recorder.finish()?;
        eprintln!("saved the recording to {path}");
    }

    if let Some(stop) = &workers.stop_training
        && app.train.running
    {
        // Quitting mid-training keeps the work done so far: stop, let the trainer save, then exit.
        stop.store(true, Ordering::SeqCst);
        eprintln!("stopping training and saving a checkpoint to {}…", app.train.out.display());
        while let Ok(msg) = workers.rx.recv() {
            if let Msg::Train(TrainMsg::Finished(r)) = msg {
                match r {
                    Ok(path) => eprintln!("saved {}", path.display()),
                    Err(e) => eprintln!("training ended with an error: {e}"),
                }
                break;
            }
        }
    }
    result
}

fn event_loop(
    terminal: &mut ratatui::DefaultTerminal,
    app: &mut App,
    workers: &mut Workers,
    recorder: &mut Option<crate::record::SessionRecorder>,
) -> Result<()> {
    let mut last_tick = Instant::now();
    let mut dirty = true;
    while !app.quit {
        if dirty {
            let drawn = terminal.draw(|f| render(app, f))?;
            if let Some(r) = recorder.as_mut()
                && let Err(e) = r.screen(drawn.buffer)
            {
                app.note = Some(format!("recording stopped: {e:#}"));
                app.recording = None;
                *recorder = None;
            }
            dirty = false;
        }
        // Everything already waiting is handled before the next draw: a paste typed as thousands
        // of keystrokes (a terminal without bracketed paste) costs one draw, not one per key, so
        // nothing backs up and nothing is lost.
        let (mut handled, batch_start) = (0, Instant::now());
        let mut next = workers.rx.recv_timeout(TICK).ok();
        while let Some(msg) = next {
            let input = matches!(msg, Msg::Input(_));
            handle(msg, terminal, app, workers, recorder)?;
            dirty = true;
            handled += 1;
            let full = handled >= MAX_EVENTS_PER_DRAW || batch_start.elapsed() > Duration::from_millis(100);
            if app.quit || full {
                break;
            }
            // In a flood of input (a paste arriving in chunks), wait a moment for the next chunk
            // rather than redrawing a long text between every two chunks.
            next = if input {
                workers.rx.recv_timeout(Duration::from_millis(if handled >= 32 { 5 } else { 1 })).ok()
            } else {
                workers.rx.try_recv().ok()
            };
        }
        let now = Instant::now();
        let (changed, due) = app.tick(now - last_tick);
        dirty |= changed;
        for effect in due {
            workers.perform(effect);
        }
        last_tick = now;
    }
    Ok(())
}

/// One message: a key or paste goes to the app (whose effects are performed here), a worker's
/// report to the screen it concerns.
fn handle(
    msg: Msg,
    terminal: &mut ratatui::DefaultTerminal,
    app: &mut App,
    workers: &mut Workers,
    recorder: &mut Option<crate::record::SessionRecorder>,
) -> Result<()> {
    let effects = match msg {
        Msg::Input(Event::Key(key)) => app.handle_key(key),
        Msg::Input(Event::Mouse(mouse)) => {
            let size = terminal.size()?;
            app.handle_mouse(mouse, body_area(app, Rect::new(0, 0, size.width, size.height)));
            vec![]
        }
        Msg::Input(Event::Paste(text)) => {
            app.paste(&text);
            vec![]
        }
        Msg::Input(_) => vec![], // a resize: the next draw takes the new size
        Msg::InputFailed(e) => anyhow::bail!("cannot read the terminal's input: {e}"),
        Msg::Gen(msg) => {
            app.on_gen(msg);
            vec![]
        }
        Msg::Train(msg) => {
            app.on_train(msg);
            vec![]
        }
        Msg::Race(msg) => {
            app.compare.on_msg(msg);
            vec![]
        }
        Msg::Life(msg) => {
            app.life.on_msg(msg);
            vec![]
        }
        Msg::Loaded(_, Ok(info)) => vec![app.on_model_loaded(info)],
        Msg::Loaded(path, Err(e)) => {
            app.on_load_failed(&path, e);
            vec![]
        }
    };
    for effect in effects {
        if effect == Effect::ToggleRecording {
            toggle_recording(app, recorder, terminal.size()?);
        } else {
            workers.perform(effect);
        }
    }
    Ok(())
}

/// Reads the terminal's input on a thread of its own onto the event loop's channel, until `stop`
/// (checked every `TICK`, so it ends promptly when the UI does).
fn spawn_input_reader(tx: Sender<Msg>, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while !stop.load(Ordering::SeqCst) {
            let msg = match event::poll(TICK) {
                Ok(false) => continue,
                Ok(true) => event::read().map_or_else(|e| Msg::InputFailed(e.to_string()), Msg::Input),
                Err(e) => Msg::InputFailed(e.to_string()),
            };
            let failed = matches!(msg, Msg::InputFailed(_));
            if tx.send(msg).is_err() || failed {
                return;
            }
        }
    })
}

/// `R`: starts a recording to a new file named by the time, or stops and saves the one running.
fn toggle_recording(app: &mut App, recorder: &mut Option<crate::record::SessionRecorder>, size: Size) {
    if let Some(r) = recorder.take() {
        let path = r.path().display().to_string();
        app.note = Some(match r.finish() {
            Ok(()) => format!("saved the recording to {path}"),
            Err(e) => format!("cannot save the recording to {path}: {e:#}"),
        });
        app.recording = None;
        return;
    }
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let path = PathBuf::from(format!("tiny-diffusion-{secs}.cast"));
    match crate::record::SessionRecorder::create(&path, size.width, size.height) {
        Ok(r) => {
            app.note = Some(format!("recording to {} · R stops", path.display()));
            app.recording = Some(path.display().to_string());
            *recorder = Some(r);
        }
        Err(e) => app.note = Some(format!("cannot record: {e:#}")),
    }
}

/// Loads a checkpoint off the UI thread; the generator gets the model before the UI hears of it,
/// so the next job runs on the new model.
fn spawn_loader(path: PathBuf, device: Device, gen_tx: Sender<GenCommand>, done: Sender<Msg>) {
    worker::spawn("loader", move || {
        let result = crate::shipped::load_or_shipped(Some(&path), &device).map(|(config, model, name)| {
            let info = ModelInfo { name, config: config.clone(), backend: String::new() };
            let denoiser = ModelDenoiser::new(model, device);
            let _ = gen_tx.send(GenCommand::Model(Box::new(denoiser)));
            info
        });
        let _ = done.send(Msg::Loaded(path, result.map_err(|e| format!("{e:#}"))));
    });
}
