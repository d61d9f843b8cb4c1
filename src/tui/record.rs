//! Recordings of the denoising: each frame is drawn with the Watch screen's own grid widget and
//! theme, then written as terminal bytes to an asciicast v2 file (what asciinema's player and
//! `agg` read: a JSON header line, then one `[seconds, "o", text]` event per frame, times
//! non-decreasing), or as pixels to an animated GIF.

use super::denoise_grid::DenoiseGrid;
use super::theme::Theme;
use super::theme::Palette;
use super::watch_state::{Cell, View};
use crate::diffusion::Frame;
use crate::vocab::{MASK_ID, Vocab};
use ratatui::buffer::Buffer;
use ratatui::prelude::*;
use std::io::Write;

/// Steps shown per second of the recording, as the Watch screen's default playback.
pub const FRAMES_PER_SECOND: f64 = 15.0;
/// How long the finished text stays on screen at the end.
const HOLD_SECONDS: f64 = 2.0;

/// What a recording shows: the Watch screen's grid (earlier blocks above the current window) and
/// a status line, drawn into a buffer of the recording's size for each frame.
pub struct Screen {
    vocab: Vocab,
    theme: Theme,
    area: Rect,
    /// Every position seen so far.
    cells: Vec<Cell>,
    /// The decode-order view, and the step that revealed each position of the current window.
    by_order: bool,
    reveal: Vec<Option<usize>>,
}

impl Screen {
    pub fn new(vocab: Vocab, width: u16, height: u16, look: Look) -> Self {
        let theme = Theme { palette: look.palette, ..Theme::new(true) };
        Screen { vocab, theme, area: Rect::new(0, 0, width, height), cells: Vec::new(), by_order: look.view == View::Order, reveal: Vec::new() }
    }

    pub fn draw(&mut self, frame: &Frame) -> Buffer {
        let end = frame.offset + frame.tokens.len();
        if self.cells.len() < end {
            self.cells.resize(end, Cell { token: MASK_ID, confidence: 0.0, prompt: false });
        }
        for (i, cell) in self.cells[frame.offset..end].iter_mut().enumerate() {
            *cell = frame.cell(i);
        }
        let [grid, status] = Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(self.area);
        let mut buf = Buffer::empty(self.area);
        let history = &self.cells[..frame.offset];
        let reveal = self.by_order.then(|| {
            // The step that revealed each position of this window, kept across its frames.
            if self.reveal.len() != frame.tokens.len() || frame.step <= 1 {
                self.reveal = vec![None; frame.tokens.len()];
            }
            super::watch_state::mark_reveals(&mut self.reveal, frame);
            (self.reveal.as_slice(), frame.step)
        });
        DenoiseGrid { frame: Some(frame), history, vocab: &self.vocab, theme: &self.theme, max_cols: GRID_COLUMNS, reveal }
            .render(grid, &mut buf);
        let masked = frame.masked.iter().filter(|&&m| m).count();
        let line = format!(
            " block {} · step {} · {masked} masked · +{} this step{}",
            frame.block + 1,
            frame.step,
            frame.decoded_now.len(),
            if frame.remasked_now.is_empty() { String::new() } else { format!(" · {} revised", frame.remasked_now.len()) }
        );
        Line::styled(line, self.theme.title).render(status, &mut buf);
        buf
    }
}

/// How a recording colours its cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Look {
    pub view: View,
    pub palette: Palette,
}

/// Columns of the grid, as the Watch screen draws it.
const GRID_COLUMNS: u16 = 64;

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
struct GifFrames {
    previous: Option<Buffer>,
}

impl GifFrames {
    fn next(&mut self, buf: &Buffer) -> gif::Frame<'static> {
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Cast,
    Gif,
}

/// Creates a recording file, its format named by its extension (`.cast` or `.gif`).
fn open(path: &std::path::Path) -> anyhow::Result<(Format, std::io::BufWriter<std::fs::File>)> {
    use anyhow::Context;
    let format = match path.extension().and_then(|e| e.to_str()) {
        Some("cast") => Format::Cast,
        Some("gif") => Format::Gif,
        _ => anyhow::bail!("--record writes FILE.cast (asciicast v2) or FILE.gif; got {}", path.display()),
    };
    let file = std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    Ok((format, std::io::BufWriter::new(file)))
}

/// A recording to a file, its format chosen by the file's extension.
pub enum Recorder {
    Cast(CastWriter<std::io::BufWriter<std::fs::File>>),
    Gif(GifWriter<std::io::BufWriter<std::fs::File>>),
}

impl Recorder {
    /// `FILE.cast` or `FILE.gif`, `rows` terminal rows tall (80 columns for a cast; the 64-column
    /// grid for a GIF).
    pub fn create(path: &std::path::Path, vocab: Vocab, rows: u16, title: &str, look: Look) -> anyhow::Result<Self> {
        let (format, out) = open(path)?;
        Ok(match format {
            Format::Cast => Recorder::Cast(CastWriter::new(out, vocab, 80, rows.max(4), title, look)?),
            Format::Gif => Recorder::Gif(GifWriter::new(out, vocab, GRID_COLUMNS + 2, rows.max(4), look)?),
        })
    }

    pub fn frame(&mut self, frame: &Frame) -> anyhow::Result<()> {
        use anyhow::Context;
        match self {
            Recorder::Cast(w) => w.frame(frame).context("cannot write the recording"),
            Recorder::Gif(w) => w.frame(frame).context("cannot write the recording"),
        }
    }

    pub fn finish(self) -> anyhow::Result<()> {
        use anyhow::Context;
        match self {
            Recorder::Cast(w) => w.finish().context("cannot write the recording"),
            Recorder::Gif(w) => w.finish().context("cannot write the recording"),
        }
    }
}

/// A recording of whatever the UI draws, as it draws it (the `tui --record FILE` flag and the
/// `R` key): each drawn screen is an event at its real time, so playback runs as the session ran.
pub struct SessionRecorder {
    path: std::path::PathBuf,
    start: std::time::Instant,
    size: (u16, u16),
    sink: SessionSink,
}

enum SessionSink {
    Cast(std::io::BufWriter<std::fs::File>),
    Gif {
        encoder: gif::Encoder<std::io::BufWriter<std::fs::File>>,
        frames: GifFrames,
        pending: Option<(gif::Frame<'static>, std::time::Instant)>,
    },
}

impl SessionRecorder {
    /// Starts a recording of a `width` × `height` terminal to `FILE.cast` or `FILE.gif` (a GIF
    /// keeps that first size; a cast records resizes).
    pub fn create(path: &std::path::Path, width: u16, height: u16) -> anyhow::Result<Self> {
        let (format, mut out) = open(path)?;
        let sink = if format == Format::Cast {
            write_cast_header(&mut out, width, height, "tiny-diffusion")?;
            SessionSink::Cast(out)
        } else {
            SessionSink::Gif { encoder: gif_encoder(out, width, height)?, frames: GifFrames::default(), pending: None }
        };
        Ok(SessionRecorder { path: path.to_path_buf(), start: std::time::Instant::now(), size: (width, height), sink })
    }

    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Records one drawn screen.
    pub fn screen(&mut self, buf: &Buffer) -> anyhow::Result<()> {
        let now = std::time::Instant::now();
        let t = round(now.duration_since(self.start).as_secs_f64());
        let size = (buf.area.width, buf.area.height);
        match &mut self.sink {
            SessionSink::Cast(out) => {
                if size != self.size {
                    writeln!(out, "{}", serde_json::json!([t, "r", format!("{}x{}", size.0, size.1)]))?;
                }
                writeln!(out, "{}", serde_json::json!([t, "o", ansi(buf)]))?;
            }
            SessionSink::Gif { encoder, frames, pending } => {
                if size != self.size {
                    return Ok(()); // a GIF has one size: screens of another are left out
                }
                if let Some((mut frame, at)) = pending.take() {
                    frame.delay = (now.duration_since(at).as_secs_f64() * 100.0).round().clamp(2.0, 65_535.0) as u16;
                    encoder.write_frame(&frame)?;
                }
                *pending = Some((frames.next(buf), now));
            }
        }
        if matches!(self.sink, SessionSink::Cast(_)) {
            self.size = size;
        }
        Ok(())
    }

    pub fn finish(self) -> anyhow::Result<()> {
        match self.sink {
            SessionSink::Cast(mut out) => out.flush()?,
            SessionSink::Gif { mut encoder, pending, .. } => {
                if let Some((mut frame, _)) = pending {
                    frame.delay = (HOLD_SECONDS * 100.0) as u16;
                    encoder.write_frame(&frame)?;
                }
                encoder.into_inner()?.flush()?;
            }
        }
        Ok(())
    }
}

/// The asciicast v2 header line of a `width` × `height` terminal.
fn write_cast_header(out: &mut impl Write, width: u16, height: u16, title: &str) -> std::io::Result<()> {
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

/// A looping GIF of `width` × `height` cells.
fn gif_encoder<W: Write>(out: W, width: u16, height: u16) -> Result<gif::Encoder<W>, gif::EncodingError> {
    let mut encoder = gif::Encoder::new(out, width * CELL_PIXELS, height * CELL_PIXELS, &[])?;
    encoder.set_repeat(gif::Repeat::Infinite)?;
    Ok(encoder)
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
        let mut cast = CastWriter::new(&mut bytes, vocab.clone(), 80, 24, "test", Look::default()).unwrap();
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
