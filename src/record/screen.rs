//! One frame of a recording, drawn as the Watch screen draws it: its own grid widget and theme
//! (earlier blocks above the current window) and a status line, into a buffer of the recording's
//! size.

use super::Look;
use crate::tui::denoise_grid::{DenoiseGrid, MAX_COLUMNS};
use crate::tui::theme::Theme;
use crate::tui::watch_state::{Cell, View, mark_reveals};
use crate::diffusion::Frame;
use crate::vocab::Vocab;
use ratatui::buffer::Buffer;
use ratatui::prelude::*;

/// What a recording shows: the Watch screen's grid (earlier blocks above the current window) and
/// a status line, drawn into a buffer of the recording's size for each frame.
pub struct Screen {
    vocab: Vocab,
    theme: Theme,
    area: Rect,
    /// Every position seen so far.
    cells: Vec<Cell>,
    view: View,
    /// The step that revealed each position of the current window (for the decode-order view).
    reveal: Vec<Option<usize>>,
}

impl Screen {
    pub fn new(vocab: Vocab, width: u16, height: u16, look: Look) -> Self {
        let theme = Theme { palette: look.palette, ..Theme::new(true) };
        Screen { vocab, theme, area: Rect::new(0, 0, width, height), cells: Vec::new(), view: look.view, reveal: Vec::new() }
    }

    pub fn draw(&mut self, frame: &Frame) -> Buffer {
        crate::diffusion::cell::merge(&mut self.cells, frame.offset, &frame.cells);
        let [grid, status] = Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(self.area);
        let mut buf = Buffer::empty(self.area);
        let history = &self.cells[..frame.offset];
        let reveal = (self.view == View::Order).then(|| {
            // The step that revealed each position of this window, kept across its frames.
            if self.reveal.len() != frame.cells.len() || frame.step <= 1 {
                self.reveal = vec![None; frame.cells.len()];
            }
            mark_reveals(&mut self.reveal, frame);
            (self.reveal.as_slice(), frame.step)
        });
        let uncertainty = self.view == View::Uncertainty;
        DenoiseGrid { frame: Some(frame), history, vocab: &self.vocab, theme: &self.theme, max_cols: MAX_COLUMNS, reveal, uncertainty, cursor: None }
            .render(grid, &mut buf);
        let masked = frame.masked();
        let line = format!(
            " block {} · step {} · {masked} masked · +{} this step{}",
            frame.block + 1,
            frame.step,
            frame.decoded_now.len(),
            if frame.remasked_now.is_empty() { String::new() } else { format!(" · {} revised", frame.remasked_now.len()) }
        ) + &frame.resizes();
        Line::styled(line, self.theme.title).render(status, &mut buf);
        buf
    }
}

