//! Recordings of the denoising as asciicast v2 files (what asciinema's player and `agg` read):
//! each frame is drawn with the Watch screen's own grid widget and theme, and written as the
//! terminal bytes that show it.
//!
//! The file is a JSON header line, then one `[seconds, "o", text]` event per frame, times
//! non-decreasing.

use super::denoise_grid::DenoiseGrid;
use super::theme::Theme;
use super::watch_state::Cell;
use crate::diffusion::Frame;
use crate::vocab::{MASK_ID, Vocab};
use ratatui::buffer::Buffer;
use ratatui::prelude::*;
use std::io::Write;

/// Steps shown per second of the recording, as the Watch screen's default playback.
pub const FRAMES_PER_SECOND: f64 = 15.0;
/// How long the finished text stays on screen at the end.
const HOLD_SECONDS: f64 = 2.0;

/// Writes frames to an asciicast v2 stream as they come.
pub struct CastWriter<W: Write> {
    out: W,
    vocab: Vocab,
    theme: Theme,
    area: Rect,
    /// Every position seen so far (earlier blocks above the current window).
    cells: Vec<Cell>,
    events: usize,
}

impl<W: Write> CastWriter<W> {
    /// Writes the header: a `width` × `height` terminal titled `title`.
    pub fn new(mut out: W, vocab: Vocab, width: u16, height: u16, title: &str) -> std::io::Result<Self> {
        let timestamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let header = serde_json::json!({
            "version": 2,
            "width": width,
            "height": height,
            "timestamp": timestamp,
            "title": title,
            "env": { "TERM": "xterm-256color" },
        });
        writeln!(out, "{header}")?;
        Ok(CastWriter { out, vocab, theme: Theme::new(true), area: Rect::new(0, 0, width, height), cells: Vec::new(), events: 0 })
    }

    /// Appends one frame as a screen of terminal output.
    pub fn frame(&mut self, frame: &Frame) -> std::io::Result<()> {
        let end = frame.offset + frame.tokens.len();
        if self.cells.len() < end {
            self.cells.resize(end, Cell { token: MASK_ID, confidence: 0.0, prompt: false });
        }
        for (i, cell) in self.cells[frame.offset..end].iter_mut().enumerate() {
            *cell = Cell { token: frame.tokens[i], confidence: frame.confidence[i], prompt: frame.prompt[i] };
        }
        let [grid, status] = Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(self.area);
        let mut buf = Buffer::empty(self.area);
        let history = &self.cells[..frame.offset];
        DenoiseGrid { frame: Some(frame), history, vocab: &self.vocab, theme: &self.theme, max_cols: 64 }.render(grid, &mut buf);
        let masked = frame.masked.iter().filter(|&&m| m).count();
        let line = format!(
            " block {} · step {} · {masked} masked · +{} this step{}",
            frame.block + 1,
            frame.step,
            frame.decoded_now.len(),
            if frame.remasked_now.is_empty() { String::new() } else { format!(" · {} taken back", frame.remasked_now.len()) }
        );
        Line::styled(line, self.theme.title).render(status, &mut buf);
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

fn round(t: f64) -> f64 {
    (t * 1e6).round() / 1e6
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn frame(vocab: &Vocab, step: usize, committed: usize) -> Frame {
        let text = "ROMEO: But soft, what light";
        let tokens: Vec<u32> = vocab.encode(text).unwrap().iter().enumerate().map(|(i, &t)| if i < committed { t } else { MASK_ID }).collect();
        let n = tokens.len();
        Frame {
            block: 0,
            step,
            offset: 0,
            masked: tokens.iter().map(|&t| t == MASK_ID).collect(),
            tokens,
            prompt: vec![false; n],
            confidence: (0..n).map(|i| if i < committed { 0.5 } else { 0.0 }).collect(),
            decoded_now: if committed > 0 { vec![committed - 1] } else { vec![] },
            remasked_now: vec![],
            elapsed: Duration::ZERO,
        }
    }

    #[test]
    fn a_recording_is_a_valid_asciicast_v2_with_one_event_per_frame_in_time_order() {
        let vocab = Vocab::from_text("ROMEO: But soft, what light").unwrap();
        let mut bytes = Vec::new();
        let mut cast = CastWriter::new(&mut bytes, vocab.clone(), 80, 24, "test").unwrap();
        for step in 0..5 {
            cast.frame(&frame(&vocab, step, step * 5)).unwrap();
        }
        cast.finish().unwrap();
        let text = String::from_utf8(bytes).unwrap();
        let mut lines = text.lines();
        let header: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
        assert_eq!((header["version"].as_u64(), header["width"].as_u64(), header["height"].as_u64()), (Some(2), Some(80), Some(24)));
        let events: Vec<serde_json::Value> = lines.map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(events.len(), 5 + 1, "one per frame, and the hold at the end");
        let times: Vec<f64> = events.iter().map(|e| e[0].as_f64().unwrap()).collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
        assert!(events.iter().all(|e| e[1] == "o"));
        let last_frame = events[4][2].as_str().unwrap();
        assert!(last_frame.contains("ROMEO: But soft, wh") && last_frame.contains("38;2;"), "the text, coloured by confidence");
        assert!(events[0][2].as_str().unwrap().contains('░'), "masked cells at the start");
    }
}
