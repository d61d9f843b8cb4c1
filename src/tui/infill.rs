//! Infill screen: a small editor for a prompt with gaps.
//!
//! Type text; `_` (the mask character) marks a gap. Select a range with shift+arrows and press
//! Ctrl-G to turn it into a gap (Ctrl-G with no selection inserts a 4-character gap); Alt+= and
//! Alt+- grow or shrink the gap under the cursor; `_*` is an elastic gap, whose length the model
//! chooses (Ctrl-E turns the gap under the cursor elastic and back); after a fill, Alt+↑/↓ take the
//! next or previous length in its ranking. Ctrl+arrows move by word, ctrl+backspace (or Ctrl-W,
//! alt+backspace) deletes one. Characters the model's vocabulary lacks are shown in red and block
//! the run until they are fixed.

use super::theme::Theme;
use crate::vocab::{DEFAULT_MASK_CHAR, Vocab};
use ratatui::prelude::*;
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use super::component::{self, Binding, Component, Context, Keys};
use super::shared::{Action, Screen};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};


pub const GAP: char = DEFAULT_MASK_CHAR;
use crate::elastic::{ELASTIC_MARK, in_marker};

/// The lengths tried for the last fill's elastic gaps, best first, and the one shown for the first.
#[derive(Debug, Clone, PartialEq)]
pub struct ElasticChoice {
    pub rankings: Vec<Vec<crate::elastic::Candidate>>,
    pub chosen: usize,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct InfillState {
    pub text: Vec<char>,
    pub cursor: usize,
    /// Where a shift-selection started; the selection is anchor..cursor.
    pub anchor: Option<usize>,
    pub message: Option<String>,
    pub elastic: Option<ElasticChoice>,
}

impl InfillState {
    pub fn with_text(text: &str) -> Self {
        let text: Vec<char> = text.chars().collect();
        InfillState { cursor: text.len(), text, anchor: None, message: None, elastic: None }
    }

    pub fn as_string(&self) -> String {
        self.text.iter().collect()
    }

    /// The selected range, within the text even if an edit shortened it since the anchor was set.
    pub fn selection(&self) -> Option<(usize, usize)> {
        let (a, c) = (self.anchor?.min(self.text.len()), self.cursor.min(self.text.len()));
        (a != c).then(|| (a.min(c), a.max(c)))
    }

    pub fn insert(&mut self, c: char) {
        self.delete_selection();
        self.text.insert(self.cursor, c);
        self.cursor += 1;
    }

    pub fn insert_str(&mut self, s: &str) {
        for c in s.chars().filter(|&c| c != '\r') {
            self.insert(c);
        }
    }

    fn delete_selection(&mut self) -> bool {
        if let Some((a, b)) = self.selection() {
            self.text.drain(a..b);
            self.cursor = a;
            self.anchor = None;
            return true;
        }
        self.anchor = None;
        false
    }

    pub fn backspace(&mut self) {
        if !self.delete_selection() && self.cursor > 0 {
            self.cursor -= 1;
            self.text.remove(self.cursor);
        }
    }

    pub fn delete(&mut self) {
        if !self.delete_selection() && self.cursor < self.text.len() {
            self.text.remove(self.cursor);
        }
    }

    /// Moves the cursor; with `select`, extends the selection.
    pub fn move_to(&mut self, pos: usize, select: bool) {
        if select {
            self.anchor.get_or_insert(self.cursor);
        } else {
            self.anchor = None;
        }
        self.cursor = pos.min(self.text.len());
    }

    pub fn left(&mut self, select: bool) {
        self.move_to(self.cursor.saturating_sub(1), select);
    }

    pub fn right(&mut self, select: bool) {
        self.move_to(self.cursor + 1, select);
    }

    /// Where the word before `pos` starts: back over spaces, then over the word (a gap's `_`s
    /// count as a word, as do letters and digits).
    fn word_start(&self, pos: usize) -> usize {
        let word = |c: char| c.is_alphanumeric() || c == GAP || c == ELASTIC_MARK || c == '\'';
        let mut i = pos;
        while i > 0 && !word(self.text[i - 1]) {
            i -= 1;
        }
        while i > 0 && word(self.text[i - 1]) {
            i -= 1;
        }
        i
    }

    /// Where the word after `pos` ends.
    fn word_end(&self, pos: usize) -> usize {
        let word = |c: char| c.is_alphanumeric() || c == GAP || c == ELASTIC_MARK || c == '\'';
        let mut i = pos;
        while i < self.text.len() && !word(self.text[i]) {
            i += 1;
        }
        while i < self.text.len() && word(self.text[i]) {
            i += 1;
        }
        i
    }

    pub fn word_left(&mut self, select: bool) {
        self.move_to(self.word_start(self.cursor), select);
    }

    pub fn word_right(&mut self, select: bool) {
        self.move_to(self.word_end(self.cursor), select);
    }

    /// Deletes the selection, or the word before the cursor.
    pub fn delete_word(&mut self) {
        if !self.delete_selection() {
            let start = self.word_start(self.cursor);
            self.text.drain(start..self.cursor);
            self.cursor = start;
        }
    }

    /// Start and end of the line holding the cursor.
    fn line_bounds(&self, pos: usize) -> (usize, usize) {
        let start = self.text[..pos].iter().rposition(|&c| c == '\n').map_or(0, |i| i + 1);
        let end = self.text[pos..].iter().position(|&c| c == '\n').map_or(self.text.len(), |i| pos + i);
        (start, end)
    }

    pub fn home(&mut self, select: bool) {
        self.move_to(self.line_bounds(self.cursor).0, select);
    }

    pub fn end(&mut self, select: bool) {
        self.move_to(self.line_bounds(self.cursor).1, select);
    }

    pub fn up(&mut self, select: bool) {
        let (start, _) = self.line_bounds(self.cursor);
        if start == 0 {
            return self.move_to(0, select);
        }
        let col = self.cursor - start;
        let (prev_start, prev_end) = self.line_bounds(start - 1);
        self.move_to((prev_start + col).min(prev_end), select);
    }

    pub fn down(&mut self, select: bool) {
        let (start, end) = self.line_bounds(self.cursor);
        if end == self.text.len() {
            return self.move_to(end, select);
        }
        let col = self.cursor - start;
        let (next_start, next_end) = self.line_bounds(end + 1);
        self.move_to((next_start + col).min(next_end), select);
    }

    /// Turns the selection into a gap, or inserts a 4-character gap at the cursor.
    pub fn make_gap(&mut self) {
        match self.selection() {
            Some((a, b)) => {
                self.text[a..b].iter_mut().for_each(|c| *c = GAP);
                self.anchor = None;
                self.cursor = b;
            }
            None => {
                self.anchor = None;
                for _ in 0..4 {
                    self.insert(GAP);
                }
            }
        }
    }

    /// The gap touching the cursor, as a range.
    fn gap_at_cursor(&self) -> Option<(usize, usize)> {
        let at = |i: usize| self.text.get(i) == Some(&GAP);
        let pos = if at(self.cursor) {
            self.cursor
        } else if self.cursor > 0 && at(self.cursor - 1) {
            self.cursor - 1
        } else {
            return None;
        };
        let start = (0..=pos).rev().take_while(|&i| at(i)).last()?;
        let end = (pos..self.text.len()).take_while(|&i| at(i)).last()? + 1;
        Some((start, end))
    }

    pub fn grow_gap(&mut self) {
        self.anchor = None;
        if let Some((_, end)) = self.gap_at_cursor() {
            self.text.insert(end, GAP);
        } else {
            self.insert(GAP);
        }
    }

    pub fn shrink_gap(&mut self) {
        self.anchor = None;
        if let Some((start, end)) = self.gap_at_cursor() {
            self.text.remove(end - 1);
            if self.cursor > end - 1 {
                self.cursor -= 1;
            }
            self.cursor = self.cursor.max(start.min(self.text.len()));
        }
    }

    pub fn gap_count(&self) -> usize {
        self.text.iter().filter(|&&c| c == GAP).count()
    }

    /// Positions whose characters the vocabulary lacks.
    pub fn unknown_positions(&self, vocab: &Vocab) -> Vec<usize> {
        let marker = |i: usize| crate::elastic::in_marker(&self.text, i, GAP);
        (0..self.text.len()).filter(|&i| self.text[i] != GAP && !marker(i) && vocab.id(self.text[i]).is_none()).collect()
    }

    /// Ctrl-E: the gap under (or just before) the cursor becomes one elastic gap `_*`, or an
    /// elastic gap becomes a fixed gap of four.
    pub fn toggle_elastic(&mut self) {
        let at = self.cursor.min(self.text.len());
        let on_gap = |i: usize| self.text.get(i) == Some(&GAP);
        let on_marker = |i: usize| i < self.text.len() && in_marker(&self.text, i, GAP);
        // On an elastic gap's marker (`*`, or its start count's digits), or just after it, the
        // gap is the `_` before the `*`.
        let marker_gap = [at, at.wrapping_sub(1)].into_iter().find(|&i| on_marker(i)).map(|i| {
            let star = (0..=i).rev().find(|&j| self.text[j] == ELASTIC_MARK).expect("a marker has its star");
            star - 1
        });
        let Some(inside) = marker_gap.or_else(|| [at, at.wrapping_sub(1)].into_iter().find(|&i| on_gap(i))) else {
            self.message = Some("put the cursor on a gap (_) first".into());
            return;
        };
        let start = (0..=inside).rev().take_while(|&i| on_gap(i)).last().unwrap_or(inside);
        let end = (inside..self.text.len()).take_while(|&i| on_gap(i)).last().map_or(inside + 1, |i| i + 1);
        let replacement: Vec<char> = if self.text.get(end) == Some(&ELASTIC_MARK) {
            // The star and the start count after it.
            let marker_end = (end..self.text.len()).take_while(|&i| on_marker(i)).last().map_or(end + 1, |i| i + 1);
            self.text.drain(start..marker_end);
            vec![GAP; 4]
        } else {
            self.text.drain(start..end);
            vec![GAP, ELASTIC_MARK]
        };
        self.cursor = start + replacement.len();
        self.text.splice(start..start, replacement);
        self.anchor = None;
    }
}

/// Where the editor draws each position of the text (and the cursor's place after its end): rows
/// wrap at `width` characters, whole characters rather than words, so that a click finds the
/// character under it; a newline shows as ↵ at the end of its row.
fn placements(text: &[char], width: usize) -> Vec<(usize, usize)> {
    let width = width.max(1);
    let (mut row, mut col) = (0, 0);
    let mut at = Vec::with_capacity(text.len() + 1);
    for i in 0..=text.len() {
        if col == width {
            (row, col) = (row + 1, 0);
        }
        at.push((row, col));
        if text.get(i) == Some(&'\n') {
            (row, col) = (row + 1, 0);
        } else {
            col += 1;
        }
    }
    at
}

/// The rectangle inside the editor's box, when the screen is drawn in `area`.
fn editor_inner(area: Rect) -> Rect {
    let [editor, _] = Layout::vertical([Constraint::Min(3), Constraint::Length(3)]).areas(area);
    Block::default().borders(Borders::ALL).inner(editor)
}

/// The first row shown: the cursor's row stays in view.
fn first_row(at: &[(usize, usize)], cursor: usize, height: u16) -> usize {
    at[cursor.min(at.len() - 1)].0.saturating_sub((height as usize).saturating_sub(1))
}

/// A click puts the cursor on the character under it (or at the end of the row, past it); a drag
/// selects from there, for ctrl-g to make a gap of.
fn handle_mouse(s: &mut InfillState, mouse: MouseEvent, body: Rect) {
    let inner = editor_inner(body);
    if !inner.contains(Position { x: mouse.column, y: mouse.row }) {
        return;
    }
    let at = placements(&s.text, inner.width as usize);
    let row = first_row(&at, s.cursor, inner.height) + (mouse.row - inner.y) as usize;
    let col = (mouse.column - inner.x) as usize;
    // The last position of that row at or before the column: the row's end when past it.
    let target = at.iter().rposition(|&(r, c)| r == row && c <= col).unwrap_or(s.text.len());
    match mouse.kind {
        MouseEventKind::Down(MouseButton::Left) => s.move_to(target, false),
        MouseEventKind::Drag(MouseButton::Left) => s.move_to(target, true),
        _ => {}
    }
}

fn render(state: &InfillState, vocab: &Vocab, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let [editor, info] = Layout::vertical([Constraint::Min(3), Constraint::Length(3)]).areas(area);
    let unknown = state.unknown_positions(vocab);
    let mut is_unknown = vec![false; state.text.len()];
    unknown.iter().for_each(|&i| is_unknown[i] = true);
    let selection = state.selection();
    Block::default().borders(Borders::ALL).title(" Prompt — _ marks a gap ").render(editor, buf);
    let inner = editor_inner(area);
    let at = placements(&state.text, inner.width as usize);
    let first = first_row(&at, state.cursor, inner.height);
    for (i, &(row, col)) in at.iter().enumerate() {
        let Some(y) = row.checked_sub(first).filter(|&r| r < inner.height as usize) else { continue };
        let c = state.text.get(i).copied();
        let mut style = match c {
            Some(GAP) => theme.masked,
            Some(_) if is_unknown[i] => theme.error,
            _ => theme.prompt,
        };
        if selection.is_some_and(|(a, b)| (a..b).contains(&i)) {
            style = style.add_modifier(Modifier::REVERSED);
        }
        if i == state.cursor {
            style = theme.cursor;
        }
        let ch = match c {
            Some(GAP) => theme.mask_glyph,
            Some('\n') => '↵',
            Some(c) => c,
            None => ' ',
        };
        buf[(inner.x + col as u16, inner.y + y as u16)].set_char(ch).set_style(style);
    }

    let status = if let Some(msg) = &state.message {
        Line::styled(msg.clone(), theme.warning)
    } else if !unknown.is_empty() {
        Line::styled(
            format!("{} character(s) not in the model's vocabulary (red): edit them before running", unknown.len()),
            theme.error,
        )
    } else if let Some(e) = &state.elastic {
        let ranking = e.rankings.first().map(Vec::as_slice).unwrap_or(&[]);
        let lengths: Vec<String> = ranking
            .iter()
            .take(6)
            .enumerate()
            .map(|(i, c)| format!("{}{} {:?}", if i == e.chosen { "▶" } else { "" }, c.length, c.fill))
            .collect();
        Line::from(format!("elastic gap: {} · alt+↑/↓ picks another length", lengths.join(" · ")))
    } else {
        Line::from(format!(
            "{} characters, {} to fill · Enter runs the denoiser on the gaps",
            state.text.len(),
            state.gap_count()
        ))
    };
    Paragraph::new(vec![status]).wrap(Wrap { trim: true }).block(Block::default().borders(Borders::TOP)).render(info, buf);
}

/// Arrows, home and end move the cursor; with shift they select.
fn move_cursor(s: &mut InfillState, key: KeyEvent) {
    let shift = key.modifiers.contains(KeyModifiers::SHIFT);
    match key.code {
        KeyCode::Left => s.left(shift),
        KeyCode::Right => s.right(shift),
        KeyCode::Up => s.up(shift),
        KeyCode::Down => s.down(shift),
        KeyCode::Home => s.home(shift),
        KeyCode::End => s.end(shift),
        _ => {}
    }
}

/// The Infill screen's keys, in the order they are tried and listed: the editor takes every
/// character typed, so its commands are ctrl and alt keys.
const KEYS: &[Binding<InfillState>] = &[
    Binding { keys: Keys::Typed, shown: "type", does: "edit; _ is a gap", run: |s, key, _| {
        if let KeyCode::Char(c) = key.code {
            s.insert(c);
        }
        vec![]
    } },
    Binding { keys: Keys::Plain(&[KeyCode::Left, KeyCode::Right, KeyCode::Up, KeyCode::Down, KeyCode::Home, KeyCode::End]), shown: "shift+arrows", does: "select", run: |s, key, _| {
        move_cursor(s, key);
        vec![]
    } },
    // As in other editors: ctrl moves by word (with shift, selects), ctrl+backspace and ctrl-w
    // delete the word before the cursor.
    Binding { keys: Keys::Ctrl(&[KeyCode::Left, KeyCode::Right]), shown: "", does: "word", run: |s, key, _| {
        let select = key.modifiers.contains(KeyModifiers::SHIFT);
        if key.code == KeyCode::Left { s.word_left(select) } else { s.word_right(select) }
        vec![]
    } },
    Binding { keys: Keys::Ctrl(&[KeyCode::Backspace, KeyCode::Char('w'), KeyCode::Char('h')]), shown: "", does: "delete word", run: |s, _, _| {
        s.delete_word();
        vec![]
    } },
    Binding { keys: Keys::Alt(&[KeyCode::Backspace]), shown: "", does: "delete word", run: |s, _, _| {
        s.delete_word();
        vec![]
    } },
    Binding { keys: Keys::Ctrl(&[KeyCode::Char('g')]), shown: "ctrl-g", does: "selection → gap", run: |s, _, _| {
        s.make_gap();
        vec![]
    } },
    Binding { keys: Keys::Alt(&[KeyCode::Char('='), KeyCode::Char('+'), KeyCode::Char('-')]), shown: "alt+=/alt+-", does: "grow/shrink gap", run: |s, key, _| {
        if key.code == KeyCode::Char('-') { s.shrink_gap() } else { s.grow_gap() }
        vec![]
    } },
    Binding { keys: Keys::Ctrl(&[KeyCode::Up, KeyCode::Down]), shown: "", does: "grow/shrink gap", run: |s, key, _| {
        if key.code == KeyCode::Down { s.shrink_gap() } else { s.grow_gap() }
        vec![]
    } },
    Binding { keys: Keys::Ctrl(&[KeyCode::Char('e')]), shown: "ctrl-e", does: "elastic gap", run: |s, _, _| {
        s.toggle_elastic();
        vec![]
    } },
    Binding { keys: Keys::Alt(&[KeyCode::Up, KeyCode::Down]), shown: "alt+↑/↓", does: "other length", run: |_, key, _| {
        vec![Action::PickElastic { worse: key.code == KeyCode::Down }]
    } },
    Binding { keys: Keys::Ctrl(&[KeyCode::Char('n')]), shown: "ctrl-n", does: "newline", run: |s, _, _| {
        s.insert('\n');
        vec![]
    } },
    Binding { keys: Keys::Alt(&[KeyCode::Enter]), shown: "", does: "newline", run: |s, _, _| {
        s.insert('\n');
        vec![]
    } },
    Binding { keys: Keys::Plain(&[KeyCode::Enter]), shown: "enter", does: "fill the gaps", run: |s, key, _| {
        // Shift+enter is a newline where the terminal tells it apart.
        if key.modifiers.contains(KeyModifiers::SHIFT) {
            s.insert('\n');
            return vec![];
        }
        vec![Action::Fill]
    } },
    Binding { keys: Keys::Ctrl(&[KeyCode::Char('u')]), shown: "ctrl-u", does: "clear", run: |s, _, _| {
        *s = InfillState::default();
        vec![]
    } },
    Binding { keys: Keys::Plain(&[KeyCode::Backspace, KeyCode::Delete]), shown: "", does: "delete", run: |s, key, _| {
        if key.code == KeyCode::Backspace { s.backspace() } else { s.delete() }
        vec![]
    } },
    Binding { keys: Keys::Plain(&[KeyCode::Esc]), shown: "esc", does: "back", run: |_, _, _| vec![Action::Show(Screen::Watch)] },
    Binding::app("tab", "screens"),
];

impl Component for InfillState {
    fn bindings(&self) -> Vec<(&'static str, &'static str)> {
        component::listed(KEYS)
    }

    fn handle_key(&mut self, key: KeyEvent, ctx: &Context) -> Vec<Action> {
        self.message = None;
        component::handle(KEYS, self, key, ctx)
    }

    fn handle_mouse(&mut self, mouse: MouseEvent, body: Rect, _: &Context) {
        handle_mouse(self, mouse, body);
    }

    fn render(&self, ctx: &Context, area: Rect, buf: &mut Buffer) {
        render(self, &ctx.model.config.vocab, ctx.theme, area, buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctrl_moves_and_deletes_by_word_as_other_editors_do() {
        let ctx_keys = |s: &mut InfillState, code: KeyCode, mods: KeyModifiers| {
            let vocab = Vocab::from_text("ab").unwrap();
            let model = crate::tui::shared::ModelInfo { name: String::new(), config: crate::checkpoint::CheckpointConfig::new(crate::model::Preset::Tiny.config(vocab.size()), vocab), backend: String::new() };
            let theme = Theme::new(false);
            let ctx = Context { model: &model, theme: &theme, note: None, settings: Default::default() };
            s.handle_key(KeyEvent::new(code, mods), &ctx);
        };
        let mut s = InfillState::with_text("To be, or __ not");
        ctx_keys(&mut s, KeyCode::Left, KeyModifiers::CONTROL);
        assert_eq!(s.cursor, 13, "to the start of `not`");
        ctx_keys(&mut s, KeyCode::Left, KeyModifiers::CONTROL);
        assert_eq!(s.cursor, 10, "a gap is a word");
        ctx_keys(&mut s, KeyCode::Right, KeyModifiers::CONTROL | KeyModifiers::SHIFT);
        assert_eq!(s.selection(), Some((10, 12)), "shift selects by word");
        ctx_keys(&mut s, KeyCode::End, KeyModifiers::NONE);
        ctx_keys(&mut s, KeyCode::Backspace, KeyModifiers::CONTROL);
        assert_eq!(s.as_string(), "To be, or __ ");
        ctx_keys(&mut s, KeyCode::Char('w'), KeyModifiers::CONTROL);
        assert_eq!(s.as_string(), "To be, or ");
        ctx_keys(&mut s, KeyCode::Backspace, KeyModifiers::ALT);
        assert_eq!((s.as_string().as_str(), s.cursor), ("To be, ", 7));
    }

    #[test]
    fn selection_becomes_a_gap() {
        let mut s = InfillState::with_text("to be or not");
        s.move_to(3, false);
        s.right(true);
        s.right(true);
        s.make_gap();
        assert_eq!(s.as_string(), "to __ or not");
        assert_eq!(s.selection(), None);
    }

    #[test]
    fn gap_grows_and_shrinks_under_the_cursor() {
        let mut s = InfillState::with_text("a__b");
        s.move_to(2, false);
        s.grow_gap();
        assert_eq!(s.as_string(), "a___b");
        s.shrink_gap();
        s.shrink_gap();
        assert_eq!(s.as_string(), "a_b");
        s.shrink_gap();
        assert_eq!(s.as_string(), "ab");
        s.shrink_gap();
        assert_eq!(s.as_string(), "ab", "no gap, nothing to shrink");
    }

    #[test]
    fn ctrl_e_turns_a_gap_elastic_and_back_with_its_start_count() {
        let mut s = InfillState::with_text("a __ b");
        s.move_to(3, false);
        s.toggle_elastic();
        assert_eq!((s.as_string().as_str(), s.cursor), ("a _* b", 4));
        s.toggle_elastic();
        assert_eq!(s.as_string(), "a ____ b");
        // A start count (`_*12`) is part of the marker: toggled back, no digits are left behind;
        // digits beyond the two a count can have are text.
        for (text, fixed) in [("a _*12 b", "a ____ b"), ("a _*7b", "a ____b"), ("a _*123", "a ____3")] {
            let mut s = InfillState::with_text(text);
            s.move_to(2, false);
            s.toggle_elastic();
            assert_eq!((s.as_string().as_str(), s.cursor), (fixed, 6), "{text}");
        }
    }

    #[test]
    fn typing_replaces_selection_and_lines_navigate() {
        let mut s = InfillState::with_text("abc\ndefg");
        s.up(false);
        assert_eq!(s.cursor, 3);
        s.home(true);
        s.insert('X');
        assert_eq!(s.as_string(), "X\ndefg");
        s.down(false);
        assert_eq!(s.cursor, 3);
        s.backspace();
        assert_eq!(s.as_string(), "X\nefg");
    }

    #[test]
    fn unknown_characters_are_found() {
        let v = Vocab::from_text("abc ").unwrap();
        let s = InfillState::with_text("ab_z c{");
        assert_eq!(s.unknown_positions(&v), vec![3, 6]);
    }

    #[test]
    fn typing_after_shrinking_a_gap_inside_a_selection_stays_in_the_text() {
        // Found by the key fuzz: the anchor outlived the characters it pointed past.
        let mut s = InfillState::with_text("ab____");
        s.left(true); // anchor 6, cursor 5
        s.shrink_gap();
        s.shrink_gap();
        s.insert('x');
        assert_eq!(s.as_string().chars().filter(|&c| c == 'x').count(), 1);
        assert!(s.cursor <= s.text.len());
    }
}
