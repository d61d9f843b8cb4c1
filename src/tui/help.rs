//! Key bindings: the one-line footer of each screen and the `?` overlay.

use super::shared::Screen;
use super::theme::Theme;
use ratatui::prelude::*;

/// (keys, what they do) on `screen`: each screen's own list, which its footer and the `?`
/// overlay both read.
pub fn bindings(screen: Screen) -> &'static [(&'static str, &'static str)] {
    match screen {
        Screen::Watch => super::watch::BINDINGS,
        Screen::Infill => super::infill::BINDINGS,
        Screen::Compare => super::compare::BINDINGS,
        Screen::Life => super::life::BINDINGS,
        Screen::Train => super::train_screen::BINDINGS,
    }
}

/// The screen's bindings on one line, `?` first: however narrow the terminal (the line wraps and
/// its end may be cut), it shows where every key is listed.
pub fn footer(screen: Screen, theme: &Theme) -> Line<'static> {
    let list = bindings(screen);
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

pub fn render_overlay(screen: Screen, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let mut lines: Vec<Line> = bindings(screen)
        .iter()
        .map(|(k, what)| Line::from(vec![Span::styled(format!("{k:>14}  "), theme.key), Span::raw(*what)]))
        .collect();
    lines.push(Line::default());
    lines.push(Line::styled("Masked cells (░) resolve step by step, coloured by the model's confidence.", theme.dim));
    lines.push(Line::styled("Any key closes this help.", theme.dim));
    super::popup::render(&format!("Help — {}", screen.title()), lines, 64, theme, area, buf);
}
