//! The grid of character cells: earlier blocks above, the block being denoised below.
//!
//! Every position keeps its cell while it resolves (newlines are drawn as `↵` rather than
//! breaking the line), so the eye can follow characters appearing in place.

use super::theme::Theme;
use super::watch_state::Cell;
use crate::diffusion::Frame;
use crate::vocab::{MASK_ID, Vocab};
use ratatui::prelude::*;

pub struct DenoiseGrid<'a> {
    pub frame: Option<&'a Frame>,
    pub history: &'a [Cell],
    pub vocab: &'a Vocab,
    pub theme: &'a Theme,
    /// Widest row, for readability on wide terminals.
    pub max_cols: u16,
}

fn glyph(vocab: &Vocab, token: u32, mask: char) -> char {
    match vocab.char(token) {
        Some('\n') => '↵',
        Some('\t') => '→',
        Some(c) if c.is_control() => '·',
        Some(c) => c,
        None => mask,
    }
}

impl Widget for DenoiseGrid<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let cols = area.width.min(self.max_cols).max(1) as usize;
        let x0 = area.x + (area.width - cols as u16) / 2;
        let window_len = self.frame.map_or(0, |f| f.tokens.len());
        let window_rows = window_len.div_ceil(cols);
        let height = area.height as usize;

        // The window sits at the bottom of the history, or fills the area if it must.
        let history_rows = self.history.len().div_ceil(cols);
        let spare = height.saturating_sub(window_rows);
        let shown_history_rows = history_rows.min(spare.saturating_sub(1)); // one blank row between
        let first_history_row = history_rows - shown_history_rows;
        // Centre vertically what is drawn; earlier blocks push the window down.
        let used = window_rows + shown_history_rows + usize::from(shown_history_rows > 0);
        let mut y = area.y as usize + height.saturating_sub(used) / 2;
        for r in first_history_row..history_rows {
            for (c, cell) in self.history[r * cols..((r + 1) * cols).min(self.history.len())].iter().enumerate() {
                let style = if cell.prompt { self.theme.prompt } else { self.theme.confidence(cell.confidence) };
                let ch = glyph(self.vocab, cell.token, self.theme.mask_glyph);
                buf[(x0 + c as u16, y as u16)].set_char(ch).set_style(style.add_modifier(Modifier::DIM));
            }
            y += 1;
        }
        if shown_history_rows > 0 {
            y += 1;
        }
        let Some(frame) = self.frame else { return };
        for (i, &token) in frame.tokens.iter().enumerate() {
            let (r, c) = (i / cols, i % cols);
            if y + r >= (area.y + area.height) as usize {
                break;
            }
            let style = if token == MASK_ID {
                self.theme.masked
            } else if frame.prompt[i] {
                self.theme.prompt
            } else if frame.decoded_now.binary_search(&i).is_ok() {
                self.theme.decoded_now(frame.confidence[i])
            } else {
                self.theme.confidence(frame.confidence[i])
            };
            let ch = glyph(self.vocab, token, self.theme.mask_glyph);
            buf[(x0 + c as u16, (y + r) as u16)].set_char(ch).set_style(style);
        }
    }
}
