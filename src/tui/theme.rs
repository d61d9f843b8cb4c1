//! Styles, the confidence gradient, and the `NO_COLOR` fallback.

use ratatui::prelude::*;

#[derive(Debug, Clone, PartialEq)]
pub struct Theme {
    pub color: bool,
    pub masked: Style,
    /// A cell whose character the step on screen took back (`--remask`).
    pub remasked: Style,
    pub prompt: Style,
    pub cursor: Style,
    pub error: Style,
    pub warning: Style,
    pub title: Style,
    pub key: Style,
    pub dim: Style,
    pub mask_glyph: char,
}

impl Theme {
    /// Colour unless `NO_COLOR` is set (to anything non-empty), as https://no-color.org asks.
    pub fn from_env() -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Theme::new(!no_color)
    }

    pub fn new(color: bool) -> Self {
        let c = |s: Style, fallback: Style| if color { s } else { fallback };
        Theme {
            color,
            masked: c(Style::new().fg(Color::Rgb(90, 90, 110)), Style::new().add_modifier(Modifier::DIM)),
            remasked: c(Style::new().fg(Color::White).bg(Color::Rgb(170, 60, 170)).add_modifier(Modifier::BOLD), Style::new().add_modifier(Modifier::REVERSED | Modifier::CROSSED_OUT)),
            prompt: c(Style::new().fg(Color::Rgb(120, 190, 255)).add_modifier(Modifier::BOLD), Style::new().add_modifier(Modifier::BOLD)),
            cursor: Style::new().add_modifier(Modifier::REVERSED),
            error: c(Style::new().fg(Color::White).bg(Color::Red), Style::new().add_modifier(Modifier::REVERSED | Modifier::UNDERLINED)),
            warning: c(Style::new().fg(Color::Yellow), Style::new().add_modifier(Modifier::BOLD)),
            title: c(Style::new().fg(Color::Rgb(255, 200, 90)).add_modifier(Modifier::BOLD), Style::new().add_modifier(Modifier::BOLD)),
            key: c(Style::new().fg(Color::Rgb(255, 200, 90)), Style::new().add_modifier(Modifier::BOLD)),
            dim: Style::new().add_modifier(Modifier::DIM),
            mask_glyph: '░',
        }
    }

    /// Style of a character committed with `confidence`: a red → amber → green gradient in
    /// colour; without colour, low confidence is underlined, medium plain, high bold.
    pub fn confidence(&self, confidence: f32) -> Style {
        if !self.color {
            return match confidence {
                c if c < 0.5 => Style::new().add_modifier(Modifier::UNDERLINED),
                c if c < 0.9 => Style::new(),
                _ => Style::new().add_modifier(Modifier::BOLD),
            };
        }
        Style::new().fg(gradient(confidence))
    }

    /// Characters committed in the step on screen stand out.
    pub fn decoded_now(&self, confidence: f32) -> Style {
        if self.color {
            Style::new().fg(Color::Black).bg(gradient(confidence)).add_modifier(Modifier::BOLD)
        } else {
            Style::new().add_modifier(Modifier::REVERSED)
        }
    }
}

/// Low → high confidence: red (0) → amber (0.5) → green (1).
pub fn gradient(confidence: f32) -> Color {
    const STOPS: [(f32, [f32; 3]); 3] = [(0.0, [230.0, 70.0, 60.0]), (0.5, [240.0, 190.0, 60.0]), (1.0, [80.0, 220.0, 120.0])];
    let c = confidence.clamp(0.0, 1.0);
    let i = if c < STOPS[1].0 { 0 } else { 1 };
    let (t0, a) = STOPS[i];
    let (t1, b) = STOPS[i + 1];
    let f = (c - t0) / (t1 - t0);
    let mix = |k: usize| (a[k] + (b[k] - a[k]) * f).round() as u8;
    Color::Rgb(mix(0), mix(1), mix(2))
}

/// `confidence low ██████████ high   x this step   A prompt   ░ masked`; shorter when narrow.
/// The key to the cell styles; `remasking` adds the style of a taken-back cell.
pub fn legend(theme: &Theme, width: u16, remasking: bool) -> Line<'static> {
    let wide = width >= 72;
    let mut spans = vec![];
    if wide {
        spans.push(Span::styled("confidence ", theme.dim));
    }
    spans.push(Span::raw("low "));
    if theme.color {
        for i in 0..10 {
            spans.push(Span::styled("█", Style::new().fg(gradient(i as f32 / 9.0))));
        }
    } else {
        spans.push(Span::styled("abc", theme.confidence(0.2)));
        spans.push(Span::raw(" "));
        spans.push(Span::styled("abc", theme.confidence(0.7)));
        spans.push(Span::raw(" "));
        spans.push(Span::styled("abc", theme.confidence(0.95)));
    }
    let gap = if wide { "   " } else { "  " };
    spans.extend([
        Span::raw(format!(" high{gap}")),
        Span::styled("x", theme.decoded_now(0.8)),
        Span::raw(if wide { " this step" } else { " new" }),
        Span::raw(gap),
        Span::styled("A", theme.prompt),
        Span::raw(format!(" prompt{gap}")),
        Span::styled(theme.mask_glyph.to_string(), theme.masked),
        Span::raw(" masked"),
    ]);
    if remasking {
        spans.extend([Span::raw(gap), Span::styled(theme.mask_glyph.to_string(), theme.remasked), Span::raw(" taken back")]);
    }
    Line::from(spans)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gradient_runs_red_to_green() {
        assert_eq!(gradient(0.0), Color::Rgb(230, 70, 60));
        assert_eq!(gradient(1.0), Color::Rgb(80, 220, 120));
        assert_eq!(gradient(2.0), gradient(1.0));
    }

    #[test]
    fn no_color_uses_modifiers_only() {
        let t = Theme::new(false);
        for style in [t.confidence(0.1), t.confidence(0.95), t.decoded_now(0.5), t.masked, t.prompt] {
            assert_eq!(style.fg, None);
            assert_eq!(style.bg, None);
        }
        assert_ne!(t.confidence(0.1), t.confidence(0.95));
    }
}
