//! Boxes drawn over a screen: the `?` help and error messages. Text wraps inside the box, so a
//! long message is readable whole even at 80×24.

use super::theme::Theme;
use ratatui::prelude::*;
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

/// An error to show until the user presses a key: what went wrong and what to do about it.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorPopup {
    pub title: String,
    pub message: String,
    pub what_to_do: String,
}

/// Rows `text` takes when word-wrapped to `width` columns (greedy, as `Paragraph` wraps; a word
/// longer than a row is broken across rows).
pub fn wrapped_rows(text: &str, width: u16) -> u16 {
    let width = width.max(1) as usize;
    let mut rows = 0;
    for line in text.split('\n') {
        let mut used = 0;
        rows += 1;
        for word in line.split(' ') {
            let len = word.chars().count();
            let need = if used == 0 { len } else { used + 1 + len };
            if need <= width {
                used = need;
            } else if len <= width {
                rows += 1;
                used = len;
            } else {
                let extra = len.div_ceil(width) - 1;
                rows += (used > 0) as u16 + extra as u16;
                used = len - extra * width;
            }
        }
    }
    rows
}

/// Draws `lines` in a bordered box centred in `area`, at most `max_width` wide and as tall as the
/// wrapped text needs (at most the area).
pub fn render(title: &str, lines: Vec<Line>, max_width: u16, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let width = area.width.min(max_width);
    let inner = width.saturating_sub(2);
    let rows: u16 = lines.iter().map(|l| wrapped_rows(&l.to_string(), inner)).sum();
    let height = area.height.min(rows + 2);
    let popup = Rect { x: area.x + (area.width - width) / 2, y: area.y + (area.height - height) / 2, width, height };
    Clear.render(popup, buf);
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .block(Block::default().borders(Borders::ALL).title(format!(" {title} ")).title_style(theme.title))
        .render(popup, buf);
}

pub fn render_error(error: &ErrorPopup, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let lines = vec![
        Line::styled(error.message.clone(), theme.warning),
        Line::default(),
        Line::from(error.what_to_do.clone()),
        Line::default(),
        Line::styled("Any key closes this message.", theme.dim),
    ];
    render(&error.title, lines, 72, theme, area, buf);
}

#[cfg(test)]
mod tests {
    use super::wrapped_rows;

    #[test]
    fn rows_count_word_wrapping() {
        assert_eq!(wrapped_rows("", 10), 1);
        assert_eq!(wrapped_rows("one two", 10), 1);
        assert_eq!(wrapped_rows("one two three", 10), 2, "three moves to a new row");
        assert_eq!(wrapped_rows("a\nb", 10), 2);
        assert_eq!(wrapped_rows("abcdefghijklmnopqrstuvwxyz", 10), 3, "a long word is broken");
        assert_eq!(wrapped_rows("ab abcdefghijklmnopqrst x", 10), 4);
    }
}
