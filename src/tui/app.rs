//! Application state and the keys every screen shares (tab, ?, q, R, Ctrl-C, closing popups);
//! each screen is a `Component` with its own key table and drawing, in its module (`watch`,
//! `infill`, `compare`, `life`, `train_screen`). Pure: keys change state and return `Effect`s
//! that the event loop carries out, so every transition is testable without a terminal or a model.

pub use super::effect::Effect;
pub use super::shared::{Action, ModelInfo, Screen};
use super::compare::CompareState;
use super::component::{Component, Context};
use super::infill::InfillState;
use super::life::LifeState;
use super::popup::ErrorPopup;
use super::theme::Theme;
use super::train_screen::TrainScreenState;
use super::watch_state::{Cell, WatchState};
use super::worker::{GenJob, GenMsg, TrainMsg};
use crate::diffusion::cell;
use crate::data::BUILT_IN_NAME;
use crate::vocab::{MASK_ID, Vocab};
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseEvent};
use ratatui::layout::Rect;
use std::time::Duration;

pub struct App {
    pub screen: Screen,
    pub help: bool,
    pub quit: bool,
    pub theme: Theme,
    pub model: ModelInfo,
    pub watch: WatchState,
    pub infill: InfillState,
    pub train: TrainScreenState,
    pub compare: CompareState,
    pub life: LifeState,
    /// Characters of the previous block that condition the next.
    pub overlap: usize,
    /// A short note for the status bar (hints).
    pub note: Option<String>,
    /// An error shown over the screen until a key is pressed.
    pub error: Option<ErrorPopup>,
    /// The file the session is being recorded to, if it is.
    pub recording: Option<String>,
    next_job: u64,
}

impl App {
    pub fn new(model: ModelInfo, theme: Theme) -> Self {
        App {
            screen: Screen::Watch,
            help: false,
            quit: false,
            theme,
            model,
            watch: WatchState::default(),
            infill: InfillState::with_text("ROMEO:\nWhat light through yonder ______ breaks? It is the ____,\nand Juliet is the ___."),
            train: TrainScreenState::default(),
            compare: CompareState::default(),
            life: LifeState::default(),
            overlap: crate::diffusion::DEFAULT_OVERLAP,
            note: None,
            error: None,
            recording: None,
            next_job: 0,
        }
    }

    pub fn vocab(&self) -> &Vocab {
        &self.model.config.vocab
    }

    pub fn context(&self) -> usize {
        self.model.config.model.context
    }

    /// Starts a job from `prompt` (MASK at gaps) generating up to `length`, with `history`
    /// the committed cells of the prompt (shown above the block being denoised).
    fn launch(&mut self, prompt: Vec<u32>, length: usize, history: Vec<Cell>) -> Effect {
        self.next_job += 1;
        self.watch.start_job(self.next_job, prompt.clone(), length, history);
        Effect::Generate(GenJob { id: self.next_job, prompt, length, overlap: self.overlap, options: self.watch.settings, elastic: None, resume: None })
    }

    /// Pins `ch` at the inspected cell of the paused run (or unpins it, `None`): the run goes on
    /// from the step on screen with that cell given (or masked again), keeping the steps before.
    fn steer(&mut self, ch: Option<char>) -> Option<Effect> {
        let token = match ch {
            Some(c) => match self.vocab().id(c) {
                Some(id) => Some(id),
                None => {
                    self.note = Some(format!("the model does not know {c:?}"));
                    return None;
                }
            },
            None => None,
        };
        self.next_job += 1;
        let cells = self.watch.steer(self.next_job, token)?;
        let job = GenJob {
            id: self.next_job,
            prompt: cell::tokens(&cells),
            length: self.watch.job_length,
            overlap: self.overlap,
            options: self.watch.settings,
            elastic: None,
            resume: Some(cells),
        };
        self.note = Some(if token.is_some() { "pinned · space resumes · backspace unpins" } else { "unpinned · space resumes" }.into());
        Some(Effect::Generate(job))
    }

    /// Fills a prompt with elastic gaps: the worker chooses their lengths, then generates.
    fn launch_elastic(&mut self, elastic: crate::elastic::ElasticPrompt) -> Effect {
        let provisional = elastic.resolve(&vec![0; elastic.gaps.len()]);
        let Effect::Generate(job) = self.launch(provisional.clone(), provisional.len(), cell::given(&provisional)) else {
            unreachable!("launch generates")
        };
        Effect::Generate(GenJob { elastic: Some(elastic), ..job })
    }

    /// A fresh generation from the session's base prompt (empty, or the infill prompt).
    pub fn generate_fresh(&mut self) -> Effect {
        self.watch.block_base = 0;
        let prompt = self.watch.base_prompt.clone();
        let length = if self.watch.base_in_place { prompt.len() } else { prompt.len().max(self.context()) };
        let history = cell::given(&prompt);
        self.launch(prompt, length, history)
    }

    /// Redoes the current block with the current settings (same seed unless changed).
    fn restart_block(&mut self) -> Effect {
        let (prompt, length, history) = (self.watch.job_prompt.clone(), self.watch.job_length, self.watch.job_history.clone());
        self.launch(prompt, length, history)
    }

    /// Generates the next block after a finished one.
    fn continue_block(&mut self) -> Option<Effect> {
        if !self.watch.done {
            self.note = Some("the block is still being denoised; continue when it is done".into());
            return None;
        }
        self.watch.block_base += self.watch.frames.last().map_or(1, |f| f.block + 1);
        let text = self.watch.full_text();
        let length = text.len() + self.context().saturating_sub(self.overlap).max(1);
        let history = self.watch.committed.clone();
        Some(self.launch(text, length, history))
    }

    /// A new race on the Compare screen, with the Watch screen's decoding settings and `seed`.
    pub fn start_race(&mut self, seed: u64) -> Effect {
        self.next_job += 1;
        self.compare.start(self.next_job, seed);
        Effect::StartRace(self.next_job, crate::diffusion::DecodeOptions { seed, ..self.watch.settings })
    }

    /// Shows `screen`; the Compare screen's first visit starts its race.
    fn show(&mut self, screen: Screen) -> Vec<Effect> {
        self.screen = screen;
        self.train.editing = false;
        match screen {
            Screen::Compare if !self.compare.started => vec![self.start_race(self.watch.settings.seed)],
            Screen::Life if !self.life.started => vec![self.life.reseed(self.watch.settings.seed, self.watch.settings)],
            // A session that opened on the Compare screen generates on first sight of Watch.
            Screen::Watch if self.watch.job == 0 => vec![self.generate_fresh()],
            _ => vec![],
        }
    }

    pub fn handle_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        if key.kind == KeyEventKind::Release {
            return vec![];
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl && key.code == KeyCode::Char('c') {
            self.quit = true;
            return vec![];
        }
        if self.error.is_some() {
            // Any key closes the message, so nothing typed is lost to a screen behind it.
            self.error = None;
            return vec![];
        }
        if self.help {
            // Any key closes the overlay; q still quits.
            self.help = false;
            if key.code == KeyCode::Char('q') {
                self.quit = true;
            }
            return vec![];
        }
        let editing = self.screen == Screen::Infill || self.train.editing || (self.screen == Screen::Watch && self.watch.pinning);
        match key.code {
            KeyCode::Tab => return self.show(self.screen.next(false)),
            KeyCode::BackTab => return self.show(self.screen.next(true)),
            KeyCode::Char('?') if !editing => {
                self.help = true;
                return vec![];
            }
            KeyCode::Char('q') if !editing => {
                self.quit = true;
                return vec![];
            }
            KeyCode::Char('R') if !editing => return vec![Effect::ToggleRecording],
            _ => {}
        }
        self.note = None;
        let (screen, ctx) = self.component_mut();
        let actions = screen.handle_key(key, &ctx);
        actions.into_iter().flat_map(|action| self.act(action)).collect()
    }

    /// A click or the wheel, over the screen's `body` (the area between the tabs and the keys).
    pub fn handle_mouse(&mut self, mouse: MouseEvent, body: Rect) {
        if self.error.is_some() || self.help {
            return;
        }
        let (screen, ctx) = self.component_mut();
        screen.handle_mouse(mouse, body, &ctx);
    }

    /// Carries out what a screen's key asked of the app; returns the work for the event loop.
    fn act(&mut self, action: Action) -> Vec<Effect> {
        let effect = match action {
            Action::Quit => {
                self.quit = true;
                None
            }
            Action::Show(screen) => return self.show(screen),
            Action::NextPalette => {
                self.theme.palette = self.theme.palette.next();
                None
            }
            Action::RestartBlock => Some(self.restart_block()),
            Action::GenerateFresh => Some(self.generate_fresh()),
            Action::ContinueBlock => self.continue_block(),
            Action::Fill => self.fill(),
            Action::PickElastic { worse } => self.pick_elastic(worse),
            Action::NewRace(seed) => Some(self.start_race(seed)),
            Action::Steer(ch) => self.steer(ch),
            Action::Work(effect) => Some(effect),
        };
        effect.into_iter().collect()
    }

    /// Enter on the Infill screen: fills its prompt's gaps, animated on the Watch screen (elastic
    /// gaps first get their lengths chosen by the worker).
    fn fill(&mut self) -> Option<Effect> {
        let unknown = self.infill.unknown_positions(self.vocab());
        if !unknown.is_empty() {
            self.infill.message = Some(format!(
                "{} character(s) are not in the vocabulary (shown in red); edit them first",
                unknown.len()
            ));
            return None;
        }
        if self.infill.text.is_empty() {
            self.infill.message = Some("type a prompt first; _ marks a gap".into());
            return None;
        }
        let elastic = crate::elastic::ElasticPrompt::parse(&self.infill.as_string(), super::infill::GAP, self.vocab()).ok()?;
        self.infill.elastic = None;
        if !elastic.gaps.is_empty() {
            if self.model.config.model.kind != crate::kind::ModelKind::Masked {
                self.infill.message = Some("elastic gaps need a masked-diffusion model".into());
                return None;
            }
            self.watch.playing = true;
            self.screen = Screen::Watch;
            self.note = Some("choosing the elastic gap's length…".into());
            return Some(self.launch_elastic(elastic));
        }
        let prompt = elastic.head.clone();
        if let Err(why) = self.model.config.model.kind.check_prompt(&prompt) {
            self.infill.message = Some(why);
            return None;
        }
        let in_place = prompt.contains(&MASK_ID);
        Some(self.generate_on_watch(prompt, in_place))
    }

    /// Alt+↑/↓ after an elastic fill: fills again with the next (or previous) length of the first
    /// gap's ranking, the others as chosen.
    fn pick_elastic(&mut self, worse: bool) -> Option<Effect> {
        let e = self.infill.elastic.as_mut()?;
        let n = e.rankings.first()?.len();
        e.chosen = if worse { (e.chosen + 1).min(n - 1) } else { e.chosen.saturating_sub(1) };
        let lengths: Vec<usize> = e.rankings.iter().enumerate().map(|(k, r)| r[if k == 0 { e.chosen } else { 0 }].length).collect();
        let elastic = crate::elastic::ElasticPrompt::parse(&self.infill.as_string(), super::infill::GAP, self.vocab()).ok()?;
        if elastic.gaps.len() != lengths.len() {
            return None;
        }
        self.note = Some(format!("elastic gap: {} characters · i, then alt+↑/↓, for another length", lengths[0]));
        Some(self.generate_on_watch(elastic.resolve(&lengths), true))
    }

    /// Makes `prompt` the Watch screen's base prompt and shows it being generated from scratch,
    /// filled `in_place` or continued.
    fn generate_on_watch(&mut self, prompt: Vec<u32>, in_place: bool) -> Effect {
        self.watch.base_prompt = prompt;
        self.watch.base_in_place = in_place;
        self.watch.playing = true;
        self.screen = Screen::Watch;
        self.generate_fresh()
    }

    pub fn paste(&mut self, text: &str) {
        match self.screen {
            Screen::Infill => self.infill.insert_str(text),
            Screen::Train if self.train.editing => self.train.data.push_str(text.trim()),
            _ => {}
        }
    }

    /// Time passes: the Watch screen plays on wherever one is, and the screen shown keeps its
    /// clock. Returns whether to redraw, and the work that came due (Life's next generation).
    pub fn tick(&mut self, dt: Duration) -> (bool, Vec<Effect>) {
        let watched = self.watch.tick(dt);
        let (shown, actions) = match self.screen {
            Screen::Watch => (false, Vec::new()),
            _ => {
                let (screen, ctx) = self.component_mut();
                screen.tick(dt, &ctx)
            }
        };
        (watched || shown, actions.into_iter().flat_map(|action| self.act(action)).collect())
    }

    /// What the screens read of the app.
    pub fn screen_context(&self) -> Context<'_> {
        Context { model: &self.model, theme: &self.theme, note: self.note.as_deref(), settings: self.watch.settings }
    }

    /// The screen shown.
    pub fn component(&self) -> &dyn Component {
        match self.screen {
            Screen::Watch => &self.watch,
            Screen::Infill => &self.infill,
            Screen::Compare => &self.compare,
            Screen::Life => &self.life,
            Screen::Train => &self.train,
        }
    }

    /// The screen shown, to change, with what it reads of the rest of the app.
    fn component_mut(&mut self) -> (&mut dyn Component, Context<'_>) {
        let ctx = Context { model: &self.model, theme: &self.theme, note: self.note.as_deref(), settings: self.watch.settings };
        let screen: &mut dyn Component = match self.screen {
            Screen::Watch => &mut self.watch,
            Screen::Infill => &mut self.infill,
            Screen::Compare => &mut self.compare,
            Screen::Life => &mut self.life,
            Screen::Train => &mut self.train,
        };
        (screen, ctx)
    }

    pub fn on_gen(&mut self, msg: GenMsg) {
        match msg {
            GenMsg::Frame { job, frame } => self.watch.push_frame(job, frame),
            GenMsg::Done { job, cells } => self.watch.finish(job, cells),
            GenMsg::Grown { job, prompt, lengths } if job == self.watch.job => {
                // `r` fills the prompt again with the gaps at the lengths they grew to, as after a
                // search; the frames of their growing stay for scrubbing.
                if let Ok(elastic) = crate::elastic::ElasticPrompt::parse(&self.infill.as_string(), super::infill::GAP, self.vocab()) {
                    (self.watch.base_prompt, self.watch.base_in_place) = (elastic.resolve(&lengths), true);
                }
                let lengths: Vec<String> = lengths.iter().map(usize::to_string).collect();
                self.note = Some(format!("elastic gap grown by the model to {} characters", lengths.join(", ")));
                (self.watch.job_prompt, self.watch.job_length) = (prompt.clone(), prompt.len());
            }
            GenMsg::Resolved { job, prompt, rankings } if job == self.watch.job => match rankings {
                Ok(rankings) => {
                    // `r` fills this prompt again, with the lengths chosen, even where a gap closed.
                    (self.watch.base_prompt, self.watch.base_in_place) = (prompt.clone(), true);
                    self.watch.start_job(job, prompt.clone(), prompt.len(), cell::given(&prompt));
                    let chosen: Vec<String> = rankings.iter().filter_map(|r| r.first()).map(|c| c.length.to_string()).collect();
                    self.note = Some(format!("elastic gap: {} characters · i, then alt+↑/↓, for another length", chosen.join(", ")));
                    self.infill.elastic = Some(super::infill::ElasticChoice { rankings, chosen: 0 });
                }
                Err(e) => {
                    self.error = Some(ErrorPopup {
                        title: "Cannot choose the gap's length".into(),
                        message: e,
                        what_to_do: "Give the gap a fixed length (a run of _) on the Infill screen.".into(),
                    })
                }
            },
            GenMsg::Resolved { .. } | GenMsg::Grown { .. } => {}
        }
    }

    pub fn on_train(&mut self, msg: TrainMsg) {
        match msg {
            TrainMsg::Event(e) => self.train.on_event(e),
            TrainMsg::Finished(result) => {
                if let Err(e) = &result {
                    self.error = Some(ErrorPopup {
                        title: "Training failed".into(),
                        message: e.clone(),
                        what_to_do: format!(
                            "Change the settings on the Train screen and press Enter to try again. An empty data \
                             field trains on {BUILT_IN_NAME}; e edits it."
                        ),
                    });
                }
                self.train.on_finished(result)
            }
        }
    }

    /// A checkpoint chosen to watch could not be loaded; the current model stays.
    pub fn on_load_failed(&mut self, path: &std::path::Path, error: String) {
        self.error = Some(ErrorPopup {
            title: "Cannot load the checkpoint".into(),
            message: error,
            what_to_do: format!(
                "The model being watched is still {}. Train again to write a new checkpoint to {}, or \
                 start tiny-diffusion with --checkpoint DIR.",
                self.model.name,
                path.display()
            ),
        });
    }

    /// A new model is ready (trained or loaded): watch it generate from scratch.
    pub fn on_model_loaded(&mut self, model: ModelInfo) -> Effect {
        self.model = ModelInfo { backend: self.model.backend.clone(), ..model };
        self.note = Some(format!("loaded {}", self.model.name));
        self.generate_on_watch(Vec::new(), false)
    }
}
