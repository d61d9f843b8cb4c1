//! What the screens share with the app without depending on it: which screen is shown, the
//! model being watched, and what a screen's key asks of the app beyond the screen's own state.
//! (`App` holds the screens; a screen never reaches back into `App`.)

use super::effect::Effect;
use crate::checkpoint::CheckpointConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    Watch,
    Infill,
    Compare,
    Life,
    Train,
}

impl Screen {
    pub const ALL: [Screen; 5] = [Screen::Watch, Screen::Infill, Screen::Train, Screen::Compare, Screen::Life];

    pub fn title(self) -> &'static str {
        match self {
            Screen::Watch => "Watch",
            Screen::Infill => "Infill",
            Screen::Compare => "Compare",
            Screen::Life => "Life",
            Screen::Train => "Train",
        }
    }

    pub fn next(self, back: bool) -> Screen {
        let i = Screen::ALL.iter().position(|&s| s == self).expect("listed");
        let n = Screen::ALL.len();
        Screen::ALL[if back { (i + n - 1) % n } else { (i + 1) % n }]
    }
}

/// What is known about the model being watched.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    pub name: String,
    pub config: CheckpointConfig,
    pub backend: String,
}

/// What a key asks of the app, beyond the screen's own state: the app owns the job numbers, the
/// screen shown, the palette and the decoding settings that several screens use.
// One action a key press, handled at once: an effect's decoding options inline cost nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Quit,
    Show(Screen),
    NextPalette,
    /// Redo the Watch screen's block with its (changed) settings.
    RestartBlock,
    /// A fresh generation from the Watch screen's base prompt.
    GenerateFresh,
    /// The next block after a finished one.
    ContinueBlock,
    /// Fill the Infill screen's prompt (Enter there).
    Fill,
    /// Fill again with the next (or previous, `worse: false`) length of an elastic gap's ranking.
    PickElastic { worse: bool },
    /// A new race on the Compare screen, from this seed.
    NewRace(u64),
    /// Pin this character at the inspected cell of the paused Watch run, or unpin it (`None`).
    Steer(Option<char>),
    /// Work the screen prepared itself, for the event loop.
    Work(Effect),
}
