//! The grid of character cells: earlier blocks above, the block being denoised below.
//!
//! Every position keeps its cell while it resolves (newlines are drawn as `↵` rather than
//! breaking the line), so the eye can follow characters appearing in place.

use super::theme::{SHADES, Theme, VANISHED_GLYPH};
use crate::diffusion::edits::Resize;
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
    /// The uncertainty view: masked cells shaded by how sure the model already is of them.
    pub uncertainty: bool,
    /// The window position the inspector looks at, drawn reversed.
    pub cursor: Option<usize>,
}

/// Stands for a vanishing cell where the grid picks glyphs by token: no id is this large.
const VANISHED: u32 = u32::MAX;

/// Widest row of the grid, for readability on wide terminals (the Watch screen and recordings).
pub const MAX_COLUMNS: u16 = 64;

/// How sure a belief is, from 0 (an even guess over all `vocab_size` ids) to 1 (certain):
/// 1 − entropy / ln(vocab_size). A character model is rarely near-certain far ahead, so this
/// spreads its shades wider than a probability would: an even choice of two characters out of 66
/// is 0.83, of eight 0.5.
pub fn certainty(belief: &crate::diffusion::Belief, vocab_size: usize) -> f32 {
    (1.0 - belief.entropy / (vocab_size.max(2) as f32).ln()).clamp(0.0, 1.0)
}

fn shade(certainty: f32) -> char {
    SHADES[((certainty * SHADES.len() as f32) as usize).min(SHADES.len() - 1)]
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

/// Where the grid puts its text in an area: earlier text and the window flow as one text; the
/// window always shows in full and earlier rows scroll off the top.
struct Placement {
    cols: usize,
    /// The screen column of the first column, and the screen row of the first row shown.
    x0: u16,
    top: usize,
    /// The first row of the text that is shown, and the text's length.
    first_row: usize,
    total: usize,
}

impl DenoiseGrid<'_> {
    fn placement(&self, area: Rect) -> Placement {
        let cols = area.width.min(self.max_cols).max(1) as usize;
        let total = self.history.len() + self.frame.map_or(0, |f| f.cells.len());
        let rows = total.div_ceil(cols);
        let height = area.height as usize;
        Placement {
            cols,
            x0: area.x + (area.width - cols as u16) / 2,
            top: area.y as usize + height.saturating_sub(rows) / 2,
            first_row: rows.saturating_sub(height),
            total,
        }
    }

    /// The window position drawn at screen cell (`x`, `y`) of `area`, if one is.
    pub fn window_position_at(&self, area: Rect, x: u16, y: u16) -> Option<usize> {
        let p = self.placement(area);
        let col = x.checked_sub(p.x0)? as usize;
        let row = (y as usize).checked_sub(p.top)?;
        if col >= p.cols || !area.contains(Position { x, y }) {
            return None;
        }
        let pos = (p.first_row + row) * p.cols + col;
        pos.checked_sub(self.history.len()).filter(|_| pos < p.total)
    }
}

impl Widget for DenoiseGrid<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let Placement { cols, x0, top, first_row, total } = self.placement(area);
        let height = area.height as usize;
        for pos in first_row * cols..total {
            let (r, c) = (pos / cols - first_row, pos % cols);
            if r >= height {
                break;
            }
            let (token, style, unsure) = match pos.checked_sub(self.history.len()) {
                None => {
                    let cell = self.history[pos];
                    let style = if cell.prompt { self.theme.prompt } else { self.theme.confidence(cell.confidence) };
                    (cell.token, style.add_modifier(Modifier::DIM), None)
                }
                Some(i) => {
                    let frame = self.frame.expect("window cells come from a frame");
                    let cell = frame.cells[i];
                    let unsure = cell.belief.filter(|_| self.uncertainty && cell.is_masked()).map(|b| certainty(&b, self.vocab.size()));
                    let resized = frame.resized_now.iter().find(|r| r.0 == i).map(|r| r.1);
                    let style = if frame.remasked_now.contains(&i) {
                        self.theme.remasked
                    } else if let Some(r) = resized {
                        match r {
                            Resize::Split => self.theme.split,
                            Resize::Vanished => self.theme.vanished,
                        }
                    } else if let Some(c) = unsure {
                        self.theme.confidence(c)
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
                    let style = if self.cursor == Some(i) { style.patch(self.theme.cursor) } else { style };
                    (if resized == Some(Resize::Vanished) { VANISHED } else { cell.token }, style, unsure)
                }
            };
            let ch = match unsure {
                Some(c) => shade(c),
                None if token == VANISHED => VANISHED_GLYPH,
                None => glyph(self.vocab, token, self.theme.mask_glyph),
            };
            buf[(x0 + c as u16, (top + r) as u16)].set_char(ch).set_style(style);
        }
    }
}
