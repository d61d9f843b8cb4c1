//! What every screen is to the app: a `Component` with its own key table, drawing and clock.
//!
//! A screen's keys are described once, in a table of `Binding`s: `handle` runs the first row that
//! answers a key, and the footer and the `?` overlay list the same rows. The app holds the five
//! screens and reaches the one shown through this trait, in one place (`App::component`).

use super::shared::{Action, ModelInfo};
use super::theme::Theme;
use crate::diffusion::DecodeOptions;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseEvent};
use ratatui::prelude::*;
use std::time::Duration;

/// What a screen reads of the app besides its own state.
pub struct Context<'a> {
    pub model: &'a ModelInfo,
    pub theme: &'a Theme,
    /// A note for the status bar, which replaces the screen's hint.
    pub note: Option<&'a str>,
    /// The Watch screen's decoding settings, which the other screens decode with too.
    pub settings: DecodeOptions,
}

pub trait Component {
    /// The rows of the screen's key table, as the footer and `?` list them: (keys, what they do).
    fn bindings(&self) -> Vec<(&'static str, &'static str)>;
    fn handle_key(&mut self, key: KeyEvent, ctx: &Context) -> Vec<Action>;
    fn handle_mouse(&mut self, _mouse: MouseEvent, _body: Rect, _ctx: &Context) {}
    fn render(&self, ctx: &Context, area: Rect, buf: &mut Buffer);
    /// Time passes while the screen is shown: whether it needs a redraw, and any work it asks for.
    fn tick(&mut self, _dt: Duration, _ctx: &Context) -> (bool, Vec<Action>) {
        (false, Vec::new())
    }
}

/// Which keys a row answers.
pub enum Keys {
    /// These codes, without ctrl or alt (shift is the handler's to read: it selects text, and a
    /// letter's case already says it).
    Plain(&'static [KeyCode]),
    /// These codes with ctrl held.
    Ctrl(&'static [KeyCode]),
    /// These codes with alt held.
    Alt(&'static [KeyCode]),
    /// Any character typed without ctrl or alt.
    Typed,
    /// A key the app answers on every screen (tab, ?, q, R): listed here, never run.
    App,
}

impl Keys {
    fn answers(&self, key: &KeyEvent) -> bool {
        let (ctrl, alt) = (key.modifiers.contains(KeyModifiers::CONTROL), key.modifiers.contains(KeyModifiers::ALT));
        match self {
            Keys::Plain(codes) => !ctrl && !alt && codes.contains(&key.code),
            Keys::Ctrl(codes) => ctrl && codes.contains(&key.code),
            Keys::Alt(codes) => alt && codes.contains(&key.code),
            Keys::Typed => !ctrl && !alt && matches!(key.code, KeyCode::Char(_)),
            Keys::App => false,
        }
    }
}

/// One row of a screen's key table. A row with an empty `shown` works but is not listed (a
/// second way to the same thing, such as vi's h/l beside the arrows).
pub struct Binding<S> {
    pub keys: Keys,
    pub shown: &'static str,
    pub does: &'static str,
    pub run: fn(&mut S, KeyEvent, &Context) -> Vec<Action>,
}

impl<S> Binding<S> {
    /// A key the app answers, listed on this screen.
    pub const fn app(shown: &'static str, does: &'static str) -> Self {
        Binding { keys: Keys::App, shown, does, run: nothing::<S> }
    }
}

fn nothing<S>(_: &mut S, _: KeyEvent, _: &Context) -> Vec<Action> {
    Vec::new()
}

/// Runs the first row of `table` that answers `key`; nothing if none does.
pub fn handle<S>(table: &[Binding<S>], state: &mut S, key: KeyEvent, ctx: &Context) -> Vec<Action> {
    table.iter().find(|b| b.keys.answers(&key)).map_or_else(Vec::new, |b| (b.run)(state, key, ctx))
}

/// The listed rows of `table`.
pub fn listed<S>(table: &[Binding<S>]) -> Vec<(&'static str, &'static str)> {
    table.iter().filter(|b| !b.shown.is_empty()).map(|b| (b.shown, b.does)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::CheckpointConfig;
    use crate::model::Preset;
    use crate::vocab::Vocab;

    /// The keys a toy screen received, by the row that took them.
    const TABLE: &[Binding<Vec<&'static str>>] = &[
        Binding { keys: Keys::Plain(&[KeyCode::Char('a'), KeyCode::Char('A')]), shown: "a/A", does: "first", run: |s, _, _| {
            s.push("first");
            vec![]
        } },
        Binding { keys: Keys::Ctrl(&[KeyCode::Char('a')]), shown: "ctrl-a", does: "ctrl", run: |s, _, _| {
            s.push("ctrl");
            vec![Action::Quit]
        } },
        Binding { keys: Keys::Typed, shown: "", does: "typed", run: |s, _, _| {
            s.push("typed");
            vec![]
        } },
        Binding::app("tab", "screens"),
    ];

    #[test]
    fn the_first_row_that_answers_a_key_runs_and_the_listed_rows_are_the_help() {
        let vocab = Vocab::from_text("ab").unwrap();
        let model = ModelInfo { name: "m".into(), config: CheckpointConfig::new(Preset::Tiny.config(vocab.size()), vocab), backend: "flex".into() };
        let theme = Theme::new(false);
        let ctx = Context { model: &model, theme: &theme, note: None, settings: DecodeOptions::default() };
        let mut got = Vec::new();
        let press = |got: &mut Vec<&'static str>, code, modifiers| handle(TABLE, got, KeyEvent::new(code, modifiers), &ctx);
        press(&mut got, KeyCode::Char('a'), KeyModifiers::NONE);
        press(&mut got, KeyCode::Char('A'), KeyModifiers::SHIFT);
        assert_eq!(press(&mut got, KeyCode::Char('a'), KeyModifiers::CONTROL), vec![Action::Quit]);
        press(&mut got, KeyCode::Char('z'), KeyModifiers::NONE);
        press(&mut got, KeyCode::Char('z'), KeyModifiers::ALT);
        press(&mut got, KeyCode::Tab, KeyModifiers::NONE);
        assert_eq!(got, vec!["first", "first", "ctrl", "typed"], "alt+z and tab are no row's to run");
        assert_eq!(listed(TABLE), vec![("a/A", "first"), ("ctrl-a", "ctrl"), ("tab", "screens")]);
    }
}
