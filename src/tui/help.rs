//! Key bindings: the one-line footer of each screen and the `?` overlay.

use super::app::Screen;
use super::theme::Theme;
use ratatui::prelude::*;

/// (keys, what they do) per screen. The footer and the overlay both read this table.
pub fn bindings(screen: Screen) -> &'static [(&'static str, &'static str)] {
    match screen {
        Screen::Watch => &[
            ("space", "pause"),
            ("←/→", "scrub"),
            ("+/-", "rule parameter"),
            ("t/T", "temperature"),
            ("s", "strategy"),
            ("w", "span"),
            ("m", "remask"),
            ("k", "kv cache"),
            ("v", "view"),
            ("p", "palette"),
            ("r", "regenerate"),
            ("c", "continue"),
            ("[/]", "speed"),
            ("i", "infill"),
            ("R", "record"),
            ("tab", "screens"),
            ("?", "help"),
            ("q", "quit"),
        ],
        Screen::Infill => &[
            ("type", "edit; _ is a gap"),
            ("shift+arrows", "select"),
            ("ctrl-g", "selection → gap"),
            ("alt+=/alt+-", "grow/shrink gap"),
            ("ctrl-n", "newline"),
            ("enter", "fill the gaps"),
            ("ctrl-u", "clear"),
            ("esc", "back"),
            ("tab", "screens"),
        ],
        Screen::Train => &[
            ("↑/↓", "field"),
            ("←/→", "change"),
            ("e", "edit data path"),
            ("enter", "start"),
            ("x", "stop & save"),
            ("w", "watch the result"),
            ("R", "record"),
            ("tab", "screens"),
            ("?", "help"),
            ("q", "quit"),
        ],
    }
}

pub fn footer(screen: Screen, theme: &Theme) -> Line<'static> {
    let mut spans = Vec::new();
    for (i, (keys, what)) in bindings(screen).iter().enumerate() {
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
