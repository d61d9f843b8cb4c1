//! The grid of character cells: earlier blocks above, the block being denoised below.
//!
//! Every position keeps its cell while it resolves (newlines are drawn as `↵` rather than
//! breaking the line), so the eye can follow characters appearing in place.

use super::theme::Theme;
use super::watch_state::Cell;
use crate::diffusion::Frame;
use crate::vocab::Vocab;
use ratatui::prelude::*;

pub struct DenoiseGrid<'a> {
    pub frame: Option<&'a Frame>,
    pub history: &'a [Cell],
    pub vocab: &'a Vocab,
    pub theme: &'a Theme,
    /// Widest row, for readability on wide terminals.
    pub max_cols: u16,
    /// The decode-order view: the step that revealed each window position, and the last step;
    /// committed cells are coloured by it instead of by confidence.
    pub reveal: Option<(&'a [Option<usize>], usize)>,
}

/// How a character shows in a cell: control characters get a visible stand-in, MASK the mask glyph.
pub fn glyph(vocab: &Vocab, token: u32, mask: char) -> char {
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
        // Earlier text and the window flow as one text; the window always shows in full and
        // earlier rows scroll off the top.
        let cols = area.width.min(self.max_cols).max(1) as usize;
        let x0 = area.x + (area.width - cols as u16) / 2;
        let window_len = self.frame.map_or(0, |f| f.cells.len());
        let total = self.history.len() + window_len;
        let rows = total.div_ceil(cols);
        let height = area.height as usize;
        let first_row = rows.saturating_sub(height);
        let top = area.y as usize + height.saturating_sub(rows) / 2;
        for pos in first_row * cols..total {
            let (r, c) = (pos / cols - first_row, pos % cols);
            if r >= height {
                break;
            }
            let (token, style) = match pos.checked_sub(self.history.len()) {
                None => {
                    let cell = self.history[pos];
                    let style = if cell.prompt { self.theme.prompt } else { self.theme.confidence(cell.confidence) };
                    (cell.token, style.add_modifier(Modifier::DIM))
                }
                Some(i) => {
                    let frame = self.frame.expect("window cells come from a frame");
                    let cell = frame.cells[i];
                    let style = if frame.remasked_now.contains(&i) {
                        self.theme.remasked
                    } else if cell.is_masked() {
                        self.theme.masked
                    } else if cell.prompt {
                        self.theme.prompt
                    } else {
                        // Colour by confidence, or in the decode-order view by the revealing step.
                        let value = match self.reveal {
                            Some((steps, last)) => steps.get(i).copied().flatten().map_or(1.0, |s| s as f32 / last.max(1) as f32),
                            None => cell.confidence,
                        };
                        if frame.decoded_now.binary_search(&i).is_ok() { self.theme.decoded_now(value) } else { self.theme.confidence(value) }
                    };
                    (cell.token, style)
                }
            };
            let ch = glyph(self.vocab, token, self.theme.mask_glyph);
            buf[(x0 + c as u16, (top + r) as u16)].set_char(ch).set_style(style);
        }
    }
}
