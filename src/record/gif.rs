//! Animated GIFs: each cell drawn with an 8×8 bitmap font at twice its size, in the colours the
//! terminal would show, each frame holding only the cells that changed.

use super::screen::Screen;
use super::{FRAMES_PER_SECOND, HOLD_SECONDS, Look};
use crate::diffusion::Frame;
use crate::vocab::Vocab;
use ratatui::buffer::Buffer;
use ratatui::prelude::*;
use std::io::Write;

/// Writes frames to an animated GIF as they come: each cell drawn with an 8×8 bitmap font at
/// twice its size, in the Watch screen's colours.
pub struct GifWriter<W: Write> {
    encoder: gif::Encoder<W>,
    screen: Screen,
    frames: GifFrames,
    /// The previous frame's pixels, written when the next arrives (so the last can be held).
    pending: Option<gif::Frame<'static>>,
}

/// Pixels per cell side (an 8×8 glyph at twice its size).
const CELL_PIXELS: u16 = 16;

impl<W: Write> GifWriter<W> {
    pub fn new(out: W, vocab: Vocab, width: u16, height: u16, look: Look) -> Result<Self, gif::EncodingError> {
        let screen = Screen::new(vocab, width, height, look);
        Ok(GifWriter { encoder: gif_encoder(out, width, height)?, screen, frames: GifFrames::default(), pending: None })
    }

    pub fn frame(&mut self, frame: &Frame) -> Result<(), gif::EncodingError> {
        let image = self.frames.next(&self.screen.draw(frame));
        if let Some(previous) = self.pending.replace(image) {
            self.encoder.write_frame(&previous)?;
        }
        Ok(())
    }

    /// Writes the last frame, held for a moment.
    pub fn finish(mut self) -> Result<(), gif::EncodingError> {
        if let Some(mut last) = self.pending.take() {
            last.delay = (HOLD_SECONDS * 100.0) as u16;
            self.encoder.write_frame(&last)?;
        }
        self.encoder.into_inner()?.flush()?;
        Ok(())
    }
}

/// Turns screens into GIF frames that hold only the cells that changed since the screen before
/// (drawn over it), so a long recording stays small.
#[derive(Default)]
pub(super) struct GifFrames {
    previous: Option<Buffer>,
}

impl GifFrames {
    pub(super) fn next(&mut self, buf: &Buffer) -> gif::Frame<'static> {
        let changed = match &self.previous {
            Some(prev) if prev.area == buf.area => {
                let cells = (buf.area.top()..buf.area.bottom())
                    .flat_map(|y| (buf.area.left()..buf.area.right()).map(move |x| (x, y)))
                    .filter(|&(x, y)| prev[(x, y)] != buf[(x, y)]);
                let (mut x0, mut y0, mut x1, mut y1) = (u16::MAX, u16::MAX, 0, 0);
                for (x, y) in cells {
                    (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x + 1), y1.max(y + 1));
                }
                // Nothing changed: one cell again, so every step still has its frame.
                if x0 == u16::MAX { Rect::new(buf.area.x, buf.area.y, 1, 1) } else { Rect::new(x0, y0, x1 - x0, y1 - y0) }
            }
            _ => buf.area,
        };
        self.previous = Some(buf.clone());
        pixels(buf, changed)
    }
}

/// The cells of `buf` within `rect` as an indexed GIF frame at their place, with a palette of
/// exactly their colours.
fn pixels(buf: &Buffer, rect: Rect) -> gif::Frame<'static> {
    const BACKGROUND: (u8, u8, u8) = (18, 18, 24);
    const FOREGROUND: (u8, u8, u8) = (220, 220, 220);
    // Confidence colours are continuous: steps of 16 per channel keep a palette well under 256.
    let q = |v: u8| (v & 0xF0) | 0x08;
    let rgb = |c: Color, default: (u8, u8, u8)| match c {
        Color::Rgb(r, g, b) => (q(r), q(g), q(b)),
        Color::Black => (0, 0, 0),
        Color::White | Color::Gray => (230, 230, 230),
        Color::Red => (220, 60, 60),
        Color::Yellow => (230, 200, 60),
        Color::Cyan => (80, 200, 220),
        _ => default,
    };
    let (cols, rows) = (rect.width as usize, rect.height as usize);
    let side = CELL_PIXELS as usize;
    let width = cols * side;
    let mut palette: Vec<(u8, u8, u8)> = vec![BACKGROUND];
    let index = |c: (u8, u8, u8), palette: &mut Vec<(u8, u8, u8)>| -> u8 {
        if let Some(i) = palette.iter().position(|&p| p == c) {
            return i as u8;
        }
        if palette.len() < 256 {
            palette.push(c);
            return (palette.len() - 1) as u8;
        }
        // A full palette takes the nearest colour it has.
        let distance = |p: &(u8, u8, u8)| (p.0 as i32 - c.0 as i32).pow(2) + (p.1 as i32 - c.1 as i32).pow(2) + (p.2 as i32 - c.2 as i32).pow(2);
        (0..palette.len()).min_by_key(|&i| distance(&palette[i])).unwrap_or(0) as u8
    };
    let mut image = vec![0u8; width * rows * side];
    for y in 0..rows {
        for x in 0..cols {
            let cell = &buf[(rect.x + x as u16, rect.y + y as u16)];
            let (mut fg, mut bg) = (rgb(cell.fg, FOREGROUND), rgb(cell.bg, BACKGROUND));
            if cell.modifier.contains(Modifier::REVERSED) {
                std::mem::swap(&mut fg, &mut bg);
            }
            if cell.modifier.contains(Modifier::DIM) {
                fg = (fg.0 / 2, fg.1 / 2, fg.2 / 2);
            }
            let (fg, bg) = (index(fg, &mut palette), index(bg, &mut palette));
            let ch = cell.symbol().chars().next().unwrap_or(' ');
            let glyph = glyph(ch);
            for (gy, bits) in glyph.iter().enumerate() {
                for gx in 0..8 {
                    let on = bits & (1 << gx) != 0;
                    for (dy, dx) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                        let py = y * side + gy * 2 + dy;
                        let px = x * side + gx * 2 + dx;
                        image[py * width + px] = if on { fg } else { bg };
                    }
                }
            }
        }
    }
    let mut frame = gif::Frame::from_indexed_pixels(width as u16, (rows * side) as u16, image, None);
    frame.left = (rect.x - buf.area.x) * CELL_PIXELS;
    frame.top = (rect.y - buf.area.y) * CELL_PIXELS;
    frame.dispose = gif::DisposalMethod::Keep;
    frame.palette = Some(palette.iter().flat_map(|&(r, g, b)| [r, g, b]).collect());
    frame.delay = (100.0 / FRAMES_PER_SECOND).round() as u16;
    frame
}

/// An 8×8 bitmap of `ch` (bit 0 of each row is its leftmost pixel); `↵` drawn here, anything the
/// font lacks as `?`.
fn glyph(ch: char) -> [u8; 8] {
    use font8x8::UnicodeFonts;
    const RETURN: [u8; 8] = [0x00, 0x40, 0x40, 0x44, 0x46, 0x7F, 0x06, 0x04];
    if ch == '↵' {
        return RETURN;
    }
    font8x8::BASIC_FONTS
        .get(ch)
        .or_else(|| font8x8::BLOCK_FONTS.get(ch))
        .or_else(|| font8x8::LATIN_FONTS.get(ch))
        .or_else(|| font8x8::BOX_FONTS.get(ch))
        .or_else(|| font8x8::MISC_FONTS.get(ch))
        .unwrap_or_else(|| font8x8::BASIC_FONTS.get('?').expect("in the font"))
}

/// A looping GIF of `width` × `height` cells.
pub(super) fn gif_encoder<W: Write>(out: W, width: u16, height: u16) -> Result<gif::Encoder<W>, gif::EncodingError> {
    let mut encoder = gif::Encoder::new(out, width * CELL_PIXELS, height * CELL_PIXELS, &[])?;
    encoder.set_repeat(gif::Repeat::Infinite)?;
    Ok(encoder)
}
