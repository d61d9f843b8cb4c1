//! Screens rendered into `TestBackend` buffers, and key handling as state transitions.

use super::app::{App, Effect, ModelInfo, Screen};
use super::render;
use super::theme::Theme;
use super::worker::{GenMsg, TrainMsg};
use crate::checkpoint::CheckpointConfig;
use crate::diffusion::{Cell, Frame, Strategy};
use crate::model::Preset;
use crate::train::TrainEvent;
use crate::vocab::{MASK_ID, Vocab};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use ratatui::layout::Rect;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::style::Color;
use std::path::PathBuf;
use std::time::Duration;

const TEXT: &str = "ROMEO:\nBut soft, what light through yonder window breaks?\nIt is the east, and Juliet is the sun.\n";

fn app(color: bool) -> App {
    let vocab = Vocab::from_text(TEXT).unwrap();
    let config = CheckpointConfig::new(Preset::Small.config(vocab.size()), vocab);
    App::new(ModelInfo { name: "shakespeare".into(), config, backend: "flex".into() }, Theme::new(color))
}

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

fn chr(c: char) -> KeyEvent {
    key(KeyCode::Char(c))
}

/// A frame of 120 characters of TEXT, two-thirds decoded.
fn frame(app: &App, step: usize) -> Frame {
    let text: String = TEXT.chars().cycle().take(120).collect();
    let tokens: Vec<u32> = app.vocab().encode(&text).unwrap();
    let vocab = app.vocab();
    let cell = |(i, &token): (usize, &u32)| match i {
        _ if i % 3 == 2 && i > 6 => Cell { belief: Some(belief(vocab, i, step)), ..Cell::MASKED },
        _ if i < 6 => Cell::given(token),
        _ => Cell { token, confidence: (i % 10) as f32 / 10.0, prompt: false, belief: None },
    };
    Frame {
        block: 0,
        step,
        offset: 0,
        cells: tokens.iter().enumerate().map(cell).collect(),
        decoded_now: vec![7, 10, 13],
        remasked_now: vec![],
        resized_now: vec![],
        elapsed: Duration::from_millis(15),
    }
}

/// What the model believes about masked position `i` of the test frames: 'e' likeliest, surer
/// the further `i` is along a cycle of five.
fn belief(vocab: &Vocab, i: usize, step: usize) -> crate::diffusion::Belief {
    let p0 = 0.2 + 0.15 * (i % 5) as f32;
    let rest = 1.0 - p0;
    let p = [p0, rest / 2.0, rest / 4.0, rest / 8.0, rest / 16.0];
    let ids: Vec<u32> = "etao ".chars().map(|c| vocab.id(c).expect("in TEXT")).collect();
    crate::diffusion::Belief {
        top: std::array::from_fn(|k| (ids[k], p[k])),
        entropy: p.iter().map(|&q| -q * q.ln()).sum(),
        step: step as u32,
    }
}

fn draw(app: &App, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|f| render(app, f)).unwrap();
    let buffer = terminal.backend().buffer();
    (0..height)
        .map(|y| (0..width).map(|x| buffer[(x, y)].symbol()).collect::<String>().trim_end().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

fn watching() -> App {
    let mut a = app(true);
    let Effect::Generate(job) = a.generate_fresh() else { panic!("expected a job") };
    let f0 = frame(&a, 0);
    let f1 = frame(&a, 1);
    a.on_gen(GenMsg::Frame { job: job.id, frame: f0 });
    a.on_gen(GenMsg::Frame { job: job.id, frame: f1 });
    a.watch.cursor = 1;
    a.watch.playing = false;
    a
}

#[test]
fn watch_screen_100x30() {
    insta::assert_snapshot!(draw(&watching(), 100, 30));
}

#[test]
fn watch_screen_60x20() {
    insta::assert_snapshot!(draw(&watching(), 60, 20));
}

#[test]
fn too_small_terminal_shows_a_message() {
    let screen = draw(&watching(), 30, 8);
    assert!(screen.contains("Terminal too small"), "{screen}");
}

#[test]
fn help_overlay_lists_the_keys() {
    let mut a = watching();
    a.handle_key(chr('?'));
    insta::assert_snapshot!(draw(&a, 100, 30));
    a.handle_key(chr('x'));
    assert!(!a.help && !a.quit, "any key closes help");
}

#[test]
fn infill_screen_flags_unknown_characters() {
    let mut a = app(true);
    a.handle_key(chr('i'));
    a.handle_key(key(KeyCode::Char('u')).tap_ctrl());
    for c in "What light through yonder ___ breaks {".chars() {
        a.handle_key(chr(c));
    }
    insta::assert_snapshot!(draw(&a, 100, 30));
    assert!(a.handle_key(key(KeyCode::Enter)).is_empty(), "unknown characters block the run");
    assert!(a.infill.message.is_some());
}

#[test]
fn the_learning_rate_field_scales_both_optimisers_and_shows_halves_exactly() {
    let mut a = app(true);
    a.screen = Screen::Train;
    a.train.field = super::train_screen::Field::Setting("lr");
    a.handle_key(key(KeyCode::Left));
    let settings = a.train.settings();
    assert_eq!(settings.lr, 1.5e-3);
    assert_eq!(settings.muon_lr, Some(1e-2));
    assert!(draw(&a, 100, 30).contains("lr      1.5e-3 (Muon 1e-2)"), "{}", draw(&a, 100, 30));
}

#[test]
fn train_screen_with_a_run_in_progress() {
    let mut a = app(true);
    a.screen = Screen::Train;
    a.train.field = super::train_screen::Field::Setting("preset");
    let effects = a.handle_key(key(KeyCode::Enter));
    assert!(matches!(effects.as_slice(), [Effect::StartTraining { .. }]));
    a.on_train(TrainMsg::Event(TrainEvent::Started { step: 0, total_steps: 500, params: 100_000, resumed: false, wall_seconds: 0.0 }));
    for step in 1..=120 {
        let loss = 4.2 - step as f32 * 0.01;
        a.on_train(TrainMsg::Event(TrainEvent::Step { step, loss, tokens_per_sec: 5000.0, wall_seconds: step as f64 }));
    }
    a.on_train(TrainMsg::Event(TrainEvent::Eval { step: 100, val_loss: 3.3, val_bits_per_char: 4.1 }));
    a.on_train(TrainMsg::Event(TrainEvent::Sample { step: 100, text: "the the and".into() }));
    a.train.started = None; // ETA depends on the clock
    insta::assert_snapshot!(draw(&a, 100, 30));
    assert_eq!(a.handle_key(chr('x')), vec![Effect::StopTraining]);
    a.on_train(TrainMsg::Finished(Ok(PathBuf::from("checkpoints/tui-run"))));
    assert!(!a.train.running);
    assert_eq!(a.handle_key(chr('w')), vec![Effect::LoadCheckpoint(PathBuf::from("checkpoints/tui-run"))]);
}

#[test]
fn no_color_draws_without_colours() {
    let mut a = watching();
    a.theme = Theme::new(false);
    let mut terminal = Terminal::new(TestBackend::new(100, 30)).unwrap();
    terminal.draw(|f| render(&a, f)).unwrap();
    let buffer = terminal.backend().buffer();
    for cell in buffer.content() {
        assert_eq!(cell.fg, Color::Reset, "coloured cell {:?}", cell.symbol());
        assert_eq!(cell.bg, Color::Reset);
    }
}

#[test]
fn watch_keys_change_settings_and_restart_with_them() {
    let mut a = watching();
    assert_eq!(a.handle_key(chr(' ')), vec![]);
    assert!(a.watch.playing);
    while a.watch.settings.strategy != Strategy::Steps {
        a.handle_key(chr('s'));
    }
    let effects = a.handle_key(chr('+'));
    let [Effect::Generate(job)] = effects.as_slice() else { panic!("{effects:?}") };
    assert_eq!((job.options.strategy, job.options.steps), (Strategy::Steps, 64));
    assert_eq!(a.watch.job, job.id);
    assert!(a.watch.frames.is_empty(), "a restart clears the recorded frames");

    let before = a.watch.settings.temperature;
    a.handle_key(chr('T'));
    assert!(a.watch.settings.temperature > before);
    let effects = a.handle_key(chr('r'));
    let [Effect::Generate(job)] = effects.as_slice() else { panic!() };
    assert_eq!(job.options.seed, 1);
    assert_eq!(job.length, a.context());

    let speed = a.watch.speed;
    a.handle_key(chr(']'));
    assert_eq!(a.watch.speed, speed + 1);
    a.handle_key(chr('['));
    a.handle_key(chr('['));
    assert_eq!(a.watch.speed, speed - 1);
}

#[test]
fn continue_waits_for_the_block_then_conditions_on_it() {
    let mut a = app(true);
    let Effect::Generate(job) = a.generate_fresh() else { panic!() };
    assert!(a.handle_key(chr('c')).is_empty());
    assert!(a.note.is_some());
    let tokens: Vec<u32> = vec![3; job.length];
    a.on_gen(GenMsg::Done { job: job.id, cells: vec![Cell { token: 3, confidence: 0.5, prompt: false, belief: None }; job.length] });
    let effects = a.handle_key(chr('c'));
    let [Effect::Generate(next)] = effects.as_slice() else { panic!() };
    assert_eq!(next.prompt, tokens);
    assert_eq!(next.length, tokens.len() + a.context() - a.overlap);
    assert_eq!(a.watch.block_base, 1, "the status line counts on to block 2");
}

#[test]
fn stepping_scrubs_the_history() {
    let mut a = watching();
    a.handle_key(key(KeyCode::Left));
    assert_eq!(a.watch.cursor, 0);
    a.handle_key(key(KeyCode::Right));
    assert_eq!(a.watch.cursor, 1);
    assert!(!a.watch.playing);
}

#[test]
fn infill_enter_runs_only_the_gaps_on_the_watch_screen() {
    let mut a = app(true);
    a.handle_key(chr('i'));
    assert_eq!(a.screen, Screen::Infill);
    a.handle_key(key(KeyCode::Char('u')).tap_ctrl());
    for c in "It is the ___.".chars() {
        a.handle_key(chr(c));
    }
    let effects = a.handle_key(key(KeyCode::Enter));
    let [Effect::Generate(job)] = effects.as_slice() else { panic!("{effects:?}") };
    assert_eq!(a.screen, Screen::Watch);
    assert_eq!(job.length, 14, "only the prompt's own length: gaps, no continuation");
    assert_eq!(job.prompt.iter().filter(|&&t| t == MASK_ID).count(), 3);
}

#[test]
fn an_autoregressive_model_refuses_a_gap_before_known_text_and_says_why() {
    let mut a = app(true);
    a.model.config.model.kind = crate::kind::ModelKind::Ar;
    a.handle_key(chr('i'));
    a.handle_key(key(KeyCode::Char('u')).tap_ctrl());
    for c in "It ___ the east".chars() {
        a.handle_key(chr(c));
    }
    assert!(a.handle_key(key(KeyCode::Enter)).is_empty());
    assert_eq!(a.screen, Screen::Infill);
    assert!(a.infill.message.as_deref().is_some_and(|m| m.contains("left to right")), "{:?}", a.infill.message);
    assert!(draw(&a, 100, 30).contains("cannot see text to the right"));
    // Gaps at the end are a continuation, which it can write.
    a.handle_key(key(KeyCode::Char('u')).tap_ctrl());
    for c in "It is the ___".chars() {
        a.handle_key(chr(c));
    }
    assert!(matches!(a.handle_key(key(KeyCode::Enter)).as_slice(), [Effect::Generate(_)]));
    assert!(draw(&a, 100, 30).contains("one character per step, left to right"), "the Watch screen names its decoding");
}

#[test]
fn enter_on_the_train_screen_starts_training_even_with_the_data_path_selected() {
    let mut a = app(true);
    a.handle_key(key(KeyCode::Tab));
    a.handle_key(key(KeyCode::Tab));
    assert_eq!(a.screen, Screen::Train);
    assert_eq!(a.train.field, super::train_screen::Field::Data, "the data path is selected first");
    let effects = a.handle_key(key(KeyCode::Enter));
    assert!(matches!(effects.as_slice(), [Effect::StartTraining { .. }]), "{effects:?}");
    assert!(!a.train.editing);
}

#[test]
fn e_edits_the_data_path_and_enter_ends_the_edit() {
    let mut a = app(true);
    a.handle_key(key(KeyCode::Tab));
    a.handle_key(key(KeyCode::Tab));
    a.handle_key(chr('e'));
    assert!(a.train.editing);
    a.handle_key(key(KeyCode::Backspace));
    let effects = a.handle_key(key(KeyCode::Enter));
    assert!(effects.is_empty() && !a.train.editing, "Enter while editing only ends the edit");
}

#[test]
fn tab_cycles_screens_and_q_quits() {
    let mut a = app(true);
    a.handle_key(key(KeyCode::Tab));
    assert_eq!(a.screen, Screen::Infill);
    a.handle_key(chr('q')); // typed into the editor, not quit
    assert!(!a.quit);
    a.handle_key(key(KeyCode::Tab));
    assert_eq!(a.screen, Screen::Train);
    a.handle_key(key(KeyCode::BackTab));
    a.handle_key(key(KeyCode::BackTab));
    assert_eq!(a.screen, Screen::Watch);
    a.handle_key(chr('q'));
    assert!(a.quit);
    let mut b = app(true);
    b.handle_key(key(KeyCode::Char('c')).tap_ctrl());
    assert!(b.quit);
}

trait TapCtrl {
    fn tap_ctrl(self) -> Self;
}

impl TapCtrl for KeyEvent {
    fn tap_ctrl(mut self) -> Self {
        self.modifiers |= KeyModifiers::CONTROL;
        self
    }
}

#[test]
fn the_train_screen_trains_on_the_built_in_corpus_by_default_and_on_a_typed_path() {
    let mut a = app(true);
    a.screen = Screen::Train;
    assert!(draw(&a, 80, 24).contains("data    Tiny Shakespeare (built in)"), "{}", draw(&a, 80, 24));
    let effects = a.handle_key(key(KeyCode::Enter));
    let [Effect::StartTraining { data, .. }] = effects.as_slice() else { panic!("{effects:?}") };
    assert_eq!(*data, crate::data::DataSource::BuiltIn);

    let mut a = app(true);
    a.screen = Screen::Train;
    a.handle_key(chr('e'));
    assert!(!draw(&a, 80, 24).contains("(built in)"), "editing starts from an empty path");
    for c in "my.txt".chars() {
        a.handle_key(chr(c));
    }
    a.handle_key(key(KeyCode::Enter));
    let effects = a.handle_key(key(KeyCode::Enter));
    let [Effect::StartTraining { data, .. }] = effects.as_slice() else { panic!("{effects:?}") };
    assert_eq!(*data, crate::data::DataSource::File(PathBuf::from("my.txt")));
}

#[test]
fn a_training_error_is_shown_whole_at_80x24_and_any_key_closes_it() {
    let mut a = app(true);
    a.screen = Screen::Train;
    a.handle_key(key(KeyCode::Enter));
    let error = "in /home/someone/texts/corpus.txt: the training text is too short (12 characters); \
                 a text needs at least 20 characters, and more than a window's worth to train well";
    a.on_train(TrainMsg::Finished(Err(error.into())));
    let screen = draw(&a, 80, 24);
    for word in error.split_whitespace().chain(["Enter", "empty", "data", "built", "closes"]) {
        assert!(screen.contains(word), "{word:?} is missing from\n{screen}");
    }
    let effects = a.handle_key(chr('q'));
    assert!(effects.is_empty() && !a.quit, "the key only closes the message");
    assert!(!draw(&a, 80, 24).contains("too short"));
}

#[test]
fn a_remasked_cell_stands_out_and_the_edits_are_counted() {
    let mut a = app(true);
    a.watch.settings.remask = crate::diffusion::Remask::None;
    a.handle_key(chr('m'));
    assert_eq!(a.watch.settings.remask, crate::diffusion::Remask::LowConfidence, "m turns remasking on");
    let Effect::Generate(job) = a.generate_fresh() else { panic!("expected a job") };
    assert_eq!(job.options.remask, crate::diffusion::Remask::LowConfidence);
    let mut f = frame(&a, 1);
    f.cells[8] = Cell::MASKED;
    f.remasked_now = vec![8];
    a.on_gen(GenMsg::Frame { job: job.id, frame: frame(&a, 0) });
    a.on_gen(GenMsg::Frame { job: job.id, frame: f });
    a.watch.cursor = 1;
    a.watch.playing = false;
    let mut terminal = Terminal::new(TestBackend::new(100, 30)).unwrap();
    terminal.draw(|fr| render(&a, fr)).unwrap();
    let buffer = terminal.backend().buffer();
    let styles: Vec<_> = buffer.content().iter().map(|c| (c.symbol().to_string(), c.bg)).collect();
    let remasked_bg = a.theme.remasked.bg.unwrap();
    assert_eq!(styles.iter().filter(|(s, bg)| s == "░" && *bg == remasked_bg).count(), 2, "the taken-back cell and its legend");
    let screen = draw(&a, 100, 30);
    assert!(screen.contains("· 1 edits") && screen.contains("░ revised"), "{screen}");
}

#[test]
fn thousands_of_random_keys_and_sizes_never_panic_and_every_state_draws() {
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};
    let mut rng = StdRng::seed_from_u64(2026);
    let mut a = watching();
    let codes = [
        KeyCode::Tab, KeyCode::BackTab, KeyCode::Enter, KeyCode::Esc, KeyCode::Backspace, KeyCode::Delete,
        KeyCode::Left, KeyCode::Right, KeyCode::Up, KeyCode::Down, KeyCode::Home, KeyCode::End,
    ];
    let chars: Vec<char> = "abz_ _?+-=tTswmkrc[]ieqxhjlv,.\nÉ{".chars().collect();
    let modifiers = [KeyModifiers::NONE, KeyModifiers::SHIFT, KeyModifiers::CONTROL, KeyModifiers::ALT];
    for i in 0..3000 {
        let code = if rng.random_range(0..3) == 0 {
            codes[rng.random_range(0..codes.len())]
        } else {
            KeyCode::Char(chars[rng.random_range(0..chars.len())])
        };
        let key = KeyEvent::new(code, modifiers[rng.random_range(0..modifiers.len())]);
        a.handle_key(key);
        if rng.random_range(0..10) == 0 {
            // Clicks and the wheel anywhere, on terminals of any size.
            let kinds = [MouseEventKind::Down(MouseButton::Left), MouseEventKind::Drag(MouseButton::Left), MouseEventKind::ScrollUp, MouseEventKind::ScrollDown, MouseEventKind::Moved];
            let size = Rect::new(0, 0, rng.random_range(1..130), rng.random_range(1..45));
            let (column, row) = (rng.random_range(0..140), rng.random_range(0..50));
            let mouse = MouseEvent { kind: kinds[rng.random_range(0..kinds.len())], column, row, modifiers: KeyModifiers::NONE };
            a.handle_mouse(mouse, super::body_area(&a, size));
        }
        if rng.random_range(0..50) == 0 {
            a.paste("pasted _text_\n");
        }
        let _ = a.tick(Duration::from_millis(rng.random_range(0..200)));
        a.quit = false; // keep going: quitting is tested elsewhere
        if i % 7 == 0 {
            draw(&a, rng.random_range(1..130), rng.random_range(1..45));
        }
    }
    for screen in Screen::ALL {
        a.screen = screen;
        for (w, h) in [(1, 1), (40, 12), (80, 24), (200, 60)] {
            draw(&a, w, h);
        }
    }
}

#[test]
fn the_order_view_colours_each_character_by_the_step_that_revealed_it() {
    let mut a = app(true);
    let Effect::Generate(job) = a.generate_fresh() else { panic!("expected a job") };
    let mut first = frame(&a, 1);
    first.decoded_now = vec![7];
    let mut second = frame(&a, 2);
    second.decoded_now = vec![10];
    a.on_gen(GenMsg::Frame { job: job.id, frame: first });
    a.on_gen(GenMsg::Frame { job: job.id, frame: second });
    a.watch.cursor = 1;
    a.watch.playing = false;
    a.handle_key(chr('v'));
    assert_eq!(a.watch.view, super::watch_state::View::Order);
    let (steps, last) = a.watch.reveal_steps().unwrap();
    assert_eq!((steps[7], steps[10], steps[8], last), (Some(1), Some(2), None, 2));
    let mut terminal = Terminal::new(TestBackend::new(100, 30)).unwrap();
    terminal.draw(|f| render(&a, f)).unwrap();
    let colours: Vec<Color> = terminal.backend().buffer().content().iter().map(|c| c.fg).collect();
    let early = a.theme.palette.colour(0.5);
    assert!(colours.contains(&early), "the character revealed at step 1 of 2 has the scale's middle colour");
    assert!(draw(&a, 100, 30).contains("revealed early"), "{}", draw(&a, 100, 30));
    a.handle_key(chr('p'));
    assert_eq!(a.theme.palette, super::theme::Palette::Viridis);
}

/// A race of two lanes: a masked lane done in 3 passes, an autoregressive one in 6.
fn racing(app: &mut App) {
    use crate::race::{LaneFrame, Score};
    use super::worker::RaceMsg;
    let Effect::StartRace(race, _) = app.start_race(0) else { panic!("a race starts") };
    app.screen = Screen::Compare;
    let vocab = app.vocab().clone();
    let text = vocab.encode("It is the east, and").unwrap();
    let lanes = vec![("masked diffusion · a".to_string(), vocab.clone()), ("autoregressive · b".to_string(), vocab.clone())];
    app.compare.on_msg(RaceMsg::Lanes { race, lanes });
    let frame = |written: &dyn Fn(usize) -> bool, passes: usize, ms: u64| LaneFrame {
        cells: text
            .iter()
            .enumerate()
            .map(|(i, &t)| if written(i) { Cell { token: t, confidence: (i % 10) as f32 / 10.0, prompt: false, belief: None } } else { Cell::MASKED })
            .collect(),
        decoded_now: (0..passes).collect(),
        passes,
        compute: Duration::from_millis(ms),
    };
    for p in 0..=3 {
        app.compare.on_msg(RaceMsg::Frame { race, lane: 0, frame: frame(&|i| i % 3 < p, p, 10 * p as u64) });
    }
    for p in 0..=6 {
        app.compare.on_msg(RaceMsg::Frame { race, lane: 1, frame: frame(&|i| i < p * 4, p, 2 * p as u64) });
    }
    for lane in 0..2 {
        let score = Score { passes: 3 * (lane + 1), millis: 30.0 - 18.0 * lane as f64, chars_per_sec: 600.0, judge_nll: 1.5, distinct_bigrams: 1.0 };
        app.compare.on_msg(RaceMsg::Score { race, lane, score: Ok(score) });
    }
    // A message from an older race is ignored.
    app.compare.on_msg(RaceMsg::Failed { race: race - 1, error: "stale".into() });
}

#[test]
fn compare_screen_shows_each_lane_by_kind_on_one_clock_with_scoreboards() {
    let mut a = app(false);
    racing(&mut a);
    a.compare.playing = false;
    // Two passes in: the masked lane is at its pass 2, the autoregressive one too.
    a.compare.passes = 2.0;
    let two = draw(&a, 80, 20);
    assert!(two.contains("masked diffusion · a") && two.contains("autoregressive · b"), "{two}");
    assert_eq!(two.matches("pass 2 ·").count(), 2, "{two}");
    // Past the masked lane's end: it shows its scoreboard; the other is still writing.
    a.compare.passes = 4.0;
    let four = draw(&a, 80, 20);
    assert!(four.contains("done · 3 passes"), "{four}");
    assert!(four.contains("pass 4 ·"), "{four}");
    insta::assert_snapshot!(four);
    // On the time clock, 8 ms shows the masked lane at 0 passes and the fast lane at 4.
    a.compare.toggle_clock();
    a.compare.elapsed = Duration::from_millis(8);
    let timed = draw(&a, 80, 20);
    assert!(timed.contains("pass 0 ·") && timed.contains("pass 4 ·") && timed.contains("real time"), "{timed}");
}

#[test]
fn compare_keys_toggle_the_clock_pause_and_race_again_with_the_next_seed() {
    let mut a = app(true);
    assert!(a.handle_key(key(KeyCode::BackTab)).iter().any(|e| matches!(e, Effect::Life(_))), "Life starts its grid");
    let effects = a.handle_key(key(KeyCode::BackTab));
    assert_eq!(a.screen, Screen::Compare, "two back-tabs from Watch");
    let Some(Effect::StartRace(first, options)) = effects.first().cloned() else { panic!("the first visit starts a race: {effects:?}") };
    assert_eq!(options.seed, a.watch.settings.seed);
    a.handle_key(chr('c'));
    assert_eq!(a.compare.clock, crate::race::Clock::Time);
    a.handle_key(chr(' '));
    assert!(!a.compare.playing);
    let effects = a.handle_key(chr('r'));
    let Some(Effect::StartRace(second, options)) = effects.first().cloned() else { panic!("r races again: {effects:?}") };
    assert!(second > first);
    assert_eq!(options.seed, a.watch.settings.seed + 1);
    assert_eq!(a.compare.clock, crate::race::Clock::Time, "the clock survives a new race");
    // Leaving and coming back does not restart it.
    a.handle_key(key(KeyCode::BackTab));
    assert_eq!(a.screen, Screen::Train);
    assert!(a.handle_key(key(KeyCode::Tab)).is_empty());
}

#[test]
fn life_screen_shows_the_grid_masks_live_cells_and_steps_on_n() {
    use super::effect::LifeCommand;
    use super::life::LifeMsg;
    let mut a = app(false);
    a.life.size = (8, 4);
    let seeded = a.life.reseed(3, a.watch.settings);
    assert!(matches!(seeded, Effect::Life(LifeCommand::Reseed { seed: 3, size: (8, 4), .. })));
    a.screen = Screen::Life;
    assert!(draw(&a, 60, 16).contains("writing the seed text"));
    let text = a.vocab().encode("It is the east, and Juliet is th").unwrap();
    let life = crate::life::Life::new(&text, 8, 4, 1);
    a.life.on_msg(LifeMsg::Grid { life: life.clone(), vocab: a.vocab().clone() });
    let (alive, masked) = life.next_masked();
    let shown = draw(&a, 60, 16);
    assert!(shown.contains("It is th") && shown.contains("generation 0"), "{shown}");
    // n asks for one generation and pauses; while it is computed the live cells show masked.
    let effects = a.handle_key(chr('n'));
    assert!(matches!(effects.as_slice(), [Effect::Life(LifeCommand::Step { .. })]), "{effects:?}");
    assert!(!a.life.playing);
    assert!(a.handle_key(chr('n')).is_empty(), "one generation at a time");
    a.life.on_msg(LifeMsg::Masked { tokens: masked, alive: alive.clone() });
    let writing = draw(&a, 60, 16);
    assert_eq!(writing.matches('■').count(), alive.iter().filter(|&&x| x).count(), "{writing}");
    insta::assert_snapshot!(writing);
    // r reseeds with the next seed.
    assert!(matches!(a.handle_key(chr('r')).as_slice(), [Effect::Life(LifeCommand::Reseed { seed: 4, .. })]));
}

#[test]
fn life_plays_one_generation_per_interval_and_waits_for_each() {
    use super::life::LifeMsg;
    let mut a = app(true);
    a.screen = Screen::Life;
    let _ = a.life.reseed(0, a.watch.settings);
    let text = a.vocab().encode("It is the east, and Juliet is th").unwrap();
    a.life.on_msg(LifeMsg::Grid { life: crate::life::Life::new(&text, 8, 4, 1), vocab: a.vocab().clone() });
    assert!(a.tick(Duration::from_millis(500)).1.is_empty(), "not yet due");
    assert!(a.tick(Duration::from_millis(800)).1.len() == 1, "due after the interval");
    assert!(a.tick(Duration::from_secs(5)).1.is_empty(), "the last one has not come back");
}

#[test]
fn an_elastic_gap_is_resolved_by_the_worker_ranked_on_the_infill_screen_and_another_length_can_be_picked() {
    use crate::elastic::Candidate;
    let mut a = app(false);
    a.handle_key(chr('i'));
    a.handle_key(key(KeyCode::Char('u')).tap_ctrl());
    for c in "It is the ___ sun".chars() {
        a.handle_key(chr(c));
    }
    // Ctrl-E with the cursor after the gap's run... it must be on it: move back into it.
    for _ in 0..5 {
        a.handle_key(key(KeyCode::Left));
    }
    a.handle_key(key(KeyCode::Char('e')).tap_ctrl());
    assert_eq!(a.infill.as_string(), "It is the _* sun");
    assert!(a.infill.unknown_positions(a.vocab()).is_empty(), "* after _ is the elastic mark, not a character");
    let effects = a.handle_key(key(KeyCode::Enter));
    let [Effect::Generate(job)] = effects.as_slice() else { panic!("{effects:?}") };
    let elastic = job.elastic.clone().expect("the worker chooses the length");
    assert_eq!(elastic.gaps.len(), 1);
    // The worker's answer: lengths 3, 5, 0 in that order.
    let cand = |length: usize, fill: &str| Candidate { length, fill: fill.into(), log_likelihood: 0.0, score: -(length as f64) };
    let prompt = elastic.resolve(&[3]);
    a.on_gen(GenMsg::Resolved { job: job.id, prompt: prompt.clone(), rankings: Ok(vec![vec![cand(3, "sun"), cand(5, "great"), cand(0, "")]]) });
    assert_eq!(a.watch.job_prompt, prompt);
    a.screen = Screen::Infill;
    let shown = draw(&a, 100, 30);
    assert!(shown.contains("elastic gap: ▶3 \"sun\" · 5 \"great\" · 0 \"\""), "{shown}");
    // Alt+↓: the next length, filled as a fixed gap of 5.
    let effects = a.handle_key(KeyEvent::new(KeyCode::Down, KeyModifiers::ALT));
    let [Effect::Generate(job)] = effects.as_slice() else { panic!("{effects:?}") };
    assert!(job.elastic.is_none());
    assert_eq!(job.prompt.iter().filter(|&&t| t == MASK_ID).count(), 5);
    // Alt+↓ once more: length 0 closes the gap; the output is the prompt, not a continuation of it.
    a.screen = Screen::Infill;
    let effects = a.handle_key(KeyEvent::new(KeyCode::Down, KeyModifiers::ALT));
    let [Effect::Generate(job)] = effects.as_slice() else { panic!("{effects:?}") };
    assert_eq!(a.vocab().decode(&job.prompt, '_'), "It is the  sun");
    assert_eq!(job.length, job.prompt.len(), "a closed gap is filled in place");
    let Effect::Generate(again) = a.generate_fresh() else { panic!("expected a job") };
    assert_eq!((again.prompt.len(), again.length), (job.prompt.len(), job.length), "and so is its regeneration");
    // Ctrl-E on an elastic gap makes it a fixed gap again.
    a.screen = Screen::Infill;
    a.infill.cursor = 11;
    a.handle_key(key(KeyCode::Char('e')).tap_ctrl());
    assert_eq!(a.infill.as_string(), "It is the ____ sun");
}

#[test]
fn esc_on_the_train_screen_ends_editing_first_and_quits_after() {
    let mut a = app(false);
    a.screen = Screen::Train;
    a.handle_key(chr('e'));
    assert!(a.train.editing, "e edits the data path");
    assert!(a.handle_key(key(KeyCode::Esc)).is_empty());
    assert!(!a.train.editing && !a.quit, "the first Esc only stops editing");
    assert!(a.handle_key(key(KeyCode::Esc)).is_empty(), "quitting is no effect for the event loop");
    assert!(a.quit);
}

mod growing;
mod inspecting;
