//! Key bindings: the one-line footer of each screen and the `?` overlay.

use super::theme::Theme;
use ratatui::prelude::*;

/// A screen's bindings (its key table's listed rows) on one line, `?` first: however narrow the
/// terminal (the line wraps and its end may be cut), it shows where every key is listed.
pub fn footer(list: &[(&'static str, &'static str)], theme: &Theme) -> Line<'static> {
    let help_first = list.iter().filter(|(k, _)| *k == "?").chain(list.iter().filter(|(k, _)| *k != "?"));
    let mut spans = Vec::new();
    for (i, (keys, what)) in help_first.enumerate() {
        if i > 0 {
            spans.push(Span::styled(" · ", theme.dim));
        }
        spans.push(Span::styled(*keys, theme.key));
        spans.push(Span::raw(format!(" {what}")));
    }
    Line::from(spans)
}

/// The `?` overlay: every listed key of the screen titled `title`.
pub fn render_overlay(title: &str, list: &[(&'static str, &'static str)], theme: &Theme, area: Rect, buf: &mut Buffer) {
    let mut lines: Vec<Line> = list
        .iter()
        .map(|(k, what)| Line::from(vec![Span::styled(format!("{k:>14}  "), theme.key), Span::raw(*what)]))
        .collect();
    lines.push(Line::default());
    lines.push(Line::styled("Masked cells (░) resolve step by step, coloured by the model's confidence.", theme.dim));
    lines.push(Line::styled("Any key closes this help.", theme.dim));
    super::popup::render(&format!("Help — {title}"), lines, 64, theme, area, buf);
}
