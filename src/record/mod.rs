//! Recordings of the denoising, for `generate --record` and the TUI (`R`, `tui --record`): frames
//! drawn as the Watch screen draws them (`screen`), written as asciicast v2 (`cast`) or as an
//! animated GIF (`gif`).

mod cast;
mod gif;
mod screen;

pub use cast::{CastWriter, ansi};
pub use gif::GifWriter;
pub use screen::Screen;

use crate::diffusion::Frame;
use crate::tui::theme::Palette;
use crate::tui::watch_state::View;
use crate::vocab::Vocab;
use cast::write_cast_header;
use gif::{GifFrames, gif_encoder};
use ratatui::buffer::Buffer;
use crate::tui::denoise_grid::MAX_COLUMNS;
use std::io::Write;

/// Steps shown per second of the recording: the Watch screen's default playback.
pub const FRAMES_PER_SECOND: f64 = crate::tui::watch_state::SPEEDS[crate::tui::watch_state::DEFAULT_SPEED];
/// How long the finished text stays on screen at the end.
const HOLD_SECONDS: f64 = 2.0;

/// How a recording colours its cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Look {
    pub view: View,
    pub palette: Palette,
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
    /// A recording of the generation of `length` characters: tall enough for all of them (when
    /// they fit a terminal), as wide as the Watch screen's grid.
    pub fn create(path: &std::path::Path, vocab: Vocab, length: usize, title: &str, look: Look) -> anyhow::Result<Self> {
        let rows = (length.div_ceil(MAX_COLUMNS as usize) + 3).min(24) as u16;
        let (format, out) = open(path)?;
        Ok(match format {
            Format::Cast => Recorder::Cast(CastWriter::new(out, vocab, 80, rows.max(4), title, look)?),
            Format::Gif => Recorder::Gif(GifWriter::new(out, vocab, MAX_COLUMNS + 2, rows.max(4), look)?),
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
        encoder: ::gif::Encoder<std::io::BufWriter<std::fs::File>>,
        frames: GifFrames,
        pending: Option<(::gif::Frame<'static>, std::time::Instant)>,
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

fn round(t: f64) -> f64 {
    (t * 1e6).round() / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diffusion::Cell;
    use std::time::Duration;

    fn frame(vocab: &Vocab, step: usize, committed: usize) -> Frame {
        let text = "ROMEO: But soft, what light";
        let cell = |(i, &token): (usize, &u32)| if i < committed { Cell { token, confidence: 0.5, prompt: false, belief: None } } else { Cell::MASKED };
        Frame {
            block: 0,
            step,
            offset: 0,
            cells: vocab.encode(text).unwrap().iter().enumerate().map(cell).collect(),
            decoded_now: if committed > 0 { vec![committed - 1] } else { vec![] },
            remasked_now: vec![],
            resized_now: vec![],
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
