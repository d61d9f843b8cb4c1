//! asciicast v2 (what asciinema's player and `agg` read): a JSON header line, then one
//! `[seconds, "o", text]` event per screen, times non-decreasing; each screen as terminal bytes.

use super::screen::Screen;
use super::{FRAMES_PER_SECOND, HOLD_SECONDS, Look, round};
use crate::diffusion::Frame;
use crate::vocab::Vocab;
use ratatui::buffer::Buffer;
use ratatui::prelude::*;
use std::io::Write;

/// Writes frames to an asciicast v2 stream as they come.
pub struct CastWriter<W: Write> {
    out: W,
    screen: Screen,
    events: usize,
}

impl<W: Write> CastWriter<W> {
    /// Writes the header: a `width` × `height` terminal titled `title`.
    pub fn new(mut out: W, vocab: Vocab, width: u16, height: u16, title: &str, look: Look) -> std::io::Result<Self> {
        write_cast_header(&mut out, width, height, title)?;
        Ok(CastWriter { out, screen: Screen::new(vocab, width, height, look), events: 0 })
    }

    /// Appends one frame as a screen of terminal output.
    pub fn frame(&mut self, frame: &Frame) -> std::io::Result<()> {
        let buf = self.screen.draw(frame);
        let clear = if self.events == 0 { "\x1b[2J" } else { "" };
        self.event(&format!("{clear}{}", ansi(&buf)))
    }

    /// Holds the last frame on screen for a moment and flushes.
    pub fn finish(mut self) -> std::io::Result<()> {
        let t = self.events as f64 / FRAMES_PER_SECOND + HOLD_SECONDS;
        writeln!(self.out, "{}", serde_json::json!([round(t), "o", "\x1b[0m"]))?;
        self.out.flush()
    }

    fn event(&mut self, text: &str) -> std::io::Result<()> {
        let t = self.events as f64 / FRAMES_PER_SECOND;
        self.events += 1;
        writeln!(self.out, "{}", serde_json::json!([round(t), "o", text]))
    }
}

/// The asciicast v2 header line of a `width` × `height` terminal.
pub(super) fn write_cast_header(out: &mut impl Write, width: u16, height: u16, title: &str) -> std::io::Result<()> {
    let timestamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let header = serde_json::json!({
        "version": 2,
        "width": width,
        "height": height,
        "timestamp": timestamp,
        "title": title,
        "env": { "TERM": "xterm-256color" },
    });
    writeln!(out, "{header}")
}

/// The buffer as terminal bytes: each row from its first column, with SGR codes where the style
/// changes (24-bit colour, as the TUI draws).
pub fn ansi(buf: &Buffer) -> String {
    let mut out = String::new();
    let area = buf.area;
    for y in area.top()..area.bottom() {
        out.push_str(&format!("\x1b[{};1H\x1b[0m", y - area.top() + 1));
        let mut current: Option<(Color, Color, Modifier)> = None;
        for x in area.left()..area.right() {
            let cell = &buf[(x, y)];
            let style = (cell.fg, cell.bg, cell.modifier);
            if current != Some(style) {
                out.push_str(&sgr(style.0, style.1, style.2));
                current = Some(style);
            }
            out.push_str(cell.symbol());
        }
    }
    out.push_str("\x1b[0m");
    out
}

fn sgr(fg: Color, bg: Color, modifier: Modifier) -> String {
    let mut codes = vec!["0".to_string()];
    for (flag, code) in [(Modifier::BOLD, "1"), (Modifier::DIM, "2"), (Modifier::UNDERLINED, "4"), (Modifier::REVERSED, "7"), (Modifier::CROSSED_OUT, "9")] {
        if modifier.contains(flag) {
            codes.push(code.into());
        }
    }
    codes.extend(colour(fg, 38));
    codes.extend(colour(bg, 48));
    format!("\x1b[{}m", codes.join(";"))
}

/// `38`/`48` SGR parameters for a colour (none for the terminal's default).
fn colour(c: Color, base: u8) -> Option<String> {
    let basic = |n: u8| Some(format!("{}", base - 8 + n));
    match c {
        Color::Rgb(r, g, b) => Some(format!("{base};2;{r};{g};{b}")),
        Color::Black => basic(0),
        Color::Red => basic(1),
        Color::Green => basic(2),
        Color::Yellow => basic(3),
        Color::Blue => basic(4),
        Color::Magenta => basic(5),
        Color::Cyan => basic(6),
        Color::Gray | Color::White => basic(7),
        Color::Indexed(i) => Some(format!("{base};5;{i}")),
        _ => None,
    }
}
