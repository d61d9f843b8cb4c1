//! The cell inspector on the Watch screen (`x`, or a click on a cell): what the model believed
//! about one position at the step on screen — its likeliest characters with their probabilities,
//! the entropy — and how sure it was of its likeliest character at every step of the block so far,
//! with the steps at which the position was written, taken back or polished.

use super::denoise_grid::glyph;
use super::theme::{Theme, VANISHED_GLYPH};
use crate::diffusion::edits::{delete_id, expand_id};
use crate::diffusion::{Belief, Frame};
use crate::vocab::Vocab;
use ratatui::prelude::*;
use ratatui::widgets::{Block, Borders};

/// What a step did to the position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    Written,
    /// Masked again (`--remask`).
    TakenBack,
    /// Rewritten by a polish pass (listed as both decoded and revised in its frame).
    Polished,
}

/// One step of a position's history.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub step: usize,
    /// The belief the model formed at this step, if it looked at the position in it.
    pub belief: Option<Belief>,
    pub mark: Option<Mark>,
}

/// The history of window position `i` through the frames of the block on screen (`frames[upto]`'s),
/// up to and including it.
pub fn history(frames: &[Frame], upto: usize, i: usize) -> Vec<Point> {
    let Some(current) = frames.get(upto) else { return Vec::new() };
    frames[..=upto]
        .iter()
        .filter(|f| f.block == current.block && i < f.cells.len())
        .map(|f| {
            let mark = match (f.decoded_now.contains(&i), f.remasked_now.contains(&i)) {
                (true, true) => Some(Mark::Polished),
                (true, false) => Some(Mark::Written),
                (false, true) => Some(Mark::TakenBack),
                (false, false) => None,
            };
            Point { step: f.step, belief: f.cells[i].belief.filter(|b| b.step as usize == f.step), mark }
        })
        .collect()
}

/// Rows the panel needs: its border, a line for the cell, the step its belief is from (when not
/// the one on screen), five candidates, the entropy, the history and its marks.
pub const HEIGHT: u16 = 12;
/// Rows it keeps on a short terminal: the cell and its likeliest candidates.
pub const MIN_HEIGHT: u16 = 5;
/// Columns it needs.
pub const WIDTH: u16 = 36;

/// How the inspector labels the *expand* state: the mask splitting in two.
const SPLIT_GLYPH: char = '↔';

const SPARKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
/// A bar's last cell, by eighths filled.
const PARTIAL: [char; 7] = ['▏', '▎', '▍', '▌', '▋', '▊', '▉'];

/// Draws the panel for window position `i` of `frames[upto]`.
pub fn render(frames: &[Frame], upto: usize, i: usize, vocab: &Vocab, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let Some(cell) = frames.get(upto).and_then(|f| f.cells.get(i)) else { return };
    let frame = &frames[upto];
    let block = Block::default().borders(Borders::ALL).title(format!(" cell {} · step {} ", frame.offset + i + 1, frame.step));
    let inner = block.inner(area);
    block.render(area, buf);
    let points = history(frames, upto, i);
    // A space shows as ␣ here: a bar's label must be visible. A gap that finds its own length
    // also weighs the length states: splitting in two, or vanishing.
    let show = |id: u32| match glyph(vocab, id, theme.mask_glyph) {
        _ if id == expand_id(vocab.size()) => SPLIT_GLYPH,
        _ if id == delete_id(vocab.size()) => VANISHED_GLYPH,
        ' ' => '␣',
        c => c,
    };
    let mut lines: Vec<Line> = Vec::new();
    let last_written = points.iter().rev().find(|p| matches!(p.mark, Some(Mark::Written | Mark::Polished)));
    lines.push(match (cell.prompt, cell.is_masked(), last_written) {
        (true, _, _) => Line::styled(format!("'{}' given by you", show(cell.token)), theme.prompt),
        (_, true, _) => Line::styled("masked", theme.masked),
        (_, false, Some(p)) => Line::from(vec![
            Span::styled(format!("'{}'", show(cell.token)), theme.confidence(cell.confidence)),
            Span::raw(format!(" {} at step {} · {:.0}%", if p.mark == Some(Mark::Polished) { "polished" } else { "written" }, p.step, 100.0 * cell.confidence)),
        ]),
        (_, false, None) => Line::styled(format!("'{}' from an earlier block · {:.0}%", show(cell.token), 100.0 * cell.confidence), theme.dim),
    });
    match cell.belief {
        Some(b) if b.step as usize != frame.step => {
            lines.push(Line::styled(format!("as the model saw it at step {}:", b.step), theme.dim));
            lines.extend(candidates(&b, cell.token, &show, theme, inner.width));
        }
        Some(b) => lines.extend(candidates(&b, cell.token, &show, theme, inner.width)),
        None => lines.push(Line::styled("the model has not looked here yet", theme.dim)),
    }
    if cell.belief.is_some_and(|b| b.top.iter().any(|&(id, p)| p > 0.0 && id >= expand_id(vocab.size()))) {
        lines.push(Line::styled(format!("{SPLIT_GLYPH} split in two · {VANISHED_GLYPH} vanish"), theme.dim));
    }
    // Until the character was last written, or to the step on screen while it is masked.
    let until = match (cell.is_masked(), points.iter().rposition(|p| p.mark.is_some_and(|m| m != Mark::TakenBack))) {
        (false, Some(k)) => k + 1,
        _ => points.len(),
    };
    lines.push(spark_line(&points[..until], theme, inner.width));
    lines.push(if cell.prompt { Line::styled("given or pinned: the model reads it, never writes it", theme.dim) } else { marks_line(&points, theme) });
    for (line, y) in lines.into_iter().zip(inner.y..inner.bottom()) {
        line.render(Rect { y, height: 1, ..inner }, buf);
    }
}

/// The candidates as bars with percentages (the written character's in the key colour), then
/// the entropy.
fn candidates(b: &Belief, token: u32, show: &dyn Fn(u32) -> char, theme: &Theme, width: u16) -> Vec<Line<'static>> {
    let bar_width = width.saturating_sub(10).max(1) as f32;
    let mut lines: Vec<Line> = b
        .top
        .iter()
        .filter(|(_, p)| *p > 0.0)
        .map(|&(id, p)| {
            let eighths = (p * bar_width * 8.0).round() as usize;
            let partial = (eighths % 8).checked_sub(1).map(|k| PARTIAL[k]);
            let bar: String = "█".repeat(eighths / 8) + &partial.map_or(String::new(), String::from);
            let style = if id == token { theme.key } else { Style::new() };
            Line::from(vec![
                Span::styled(format!("{} ", show(id)), style),
                Span::styled(format!("{bar:<w$}", w = bar_width as usize), theme.confidence(p)),
                Span::styled(format!("{:>5.1}%", 100.0 * p), style),
            ])
        })
        .collect();
    // e^entropy: as unsure as an even choice between that many characters.
    lines.push(Line::styled(format!("entropy {:.2} (≈{:.1} choices)", b.entropy, b.entropy.exp()), theme.dim));
    lines
}

/// The probability of the likeliest character at each step (`·` where the model did not look),
/// coloured by what the step did; the latest steps when they do not all fit.
fn spark_line(points: &[Point], theme: &Theme, width: u16) -> Line<'static> {
    let shown = &points[points.len().saturating_sub(width as usize)..];
    let spans: Vec<Span> = shown
        .iter()
        .map(|p| {
            let ch = p.belief.map_or('·', |b| SPARKS[((b.top_probability() * SPARKS.len() as f32) as usize).min(SPARKS.len() - 1)]);
            let style = match p.mark {
                Some(Mark::Written | Mark::Polished) => theme.decoded_now(p.belief.map_or(1.0, |b| b.top_probability())),
                Some(Mark::TakenBack) => theme.remasked,
                None => p.belief.map_or(theme.dim, |b| theme.confidence(b.top_probability())),
            };
            Span::styled(ch.to_string(), style)
        })
        .collect();
    Line::from(spans)
}

/// The steps that wrote, took back or polished the position.
fn marks_line(points: &[Point], theme: &Theme) -> Line<'static> {
    let marks: Vec<String> = points
        .iter()
        .filter_map(|p| {
            let what = match p.mark? {
                Mark::Written => "written",
                Mark::TakenBack => "taken back",
                Mark::Polished => "polished",
            };
            Some(format!("{what} {}", p.step))
        })
        .collect();
    let text = if marks.is_empty() { "not written yet".to_string() } else { marks.join(" · ") };
    Line::styled(text, theme.dim)
}
