//! Styles, the confidence gradient, and the `NO_COLOR` fallback.

use super::watch_state::View;
use ratatui::prelude::*;

/// The shade a masked cell takes in the uncertainty view, from unsure to sure.
pub const SHADES: [char; 4] = ['░', '▒', '▓', '█'];

/// The colour scale of confidence (and of the decode-order view).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Palette {
    /// Red → amber → green.
    #[default]
    Default,
    /// Viridis (purple → teal → yellow): readable with colour-blindness, and its brightness rises
    /// with the value, so it still reads in grayscale.
    Viridis,
}

impl Palette {
    /// The colour of a value in [0, 1] (clamped).
    pub fn colour(self, value: f32) -> Color {
        match self {
            Palette::Default => gradient(value),
            Palette::Viridis => viridis(value),
        }
    }

    pub fn next(self) -> Palette {
        match self {
            Palette::Default => Palette::Viridis,
            Palette::Viridis => Palette::Default,
        }
    }
}

/// How a vanishing cell is drawn in the step it vanishes in.
pub const VANISHED_GLYPH: char = '×';

#[derive(Debug, Clone, PartialEq)]
pub struct Theme {
    pub color: bool,
    pub palette: Palette,
    pub masked: Style,
    /// A cell whose character the step on screen took back (`--remask`).
    pub remasked: Style,
    /// A mask that a gap finding its own length split in two, in the step on screen (both halves).
    pub split: Style,
    /// A mask that vanished from such a gap in the step on screen, drawn as `VANISHED_GLYPH`.
    pub vanished: Style,
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
            palette: Palette::Default,
            masked: c(Style::new().fg(Color::Rgb(90, 90, 110)), Style::new().add_modifier(Modifier::DIM)),
            remasked: c(Style::new().fg(Color::White).bg(Color::Rgb(170, 60, 170)).add_modifier(Modifier::BOLD), Style::new().add_modifier(Modifier::REVERSED | Modifier::CROSSED_OUT)),
            split: c(Style::new().fg(Color::Black).bg(Color::Rgb(90, 200, 220)).add_modifier(Modifier::BOLD), Style::new().add_modifier(Modifier::REVERSED)),
            vanished: c(Style::new().fg(Color::Rgb(255, 110, 110)).add_modifier(Modifier::BOLD), Style::new().add_modifier(Modifier::CROSSED_OUT)),
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
        Style::new().fg(self.palette.colour(confidence))
    }

    /// Characters committed in the step on screen stand out.
    pub fn decoded_now(&self, confidence: f32) -> Style {
        if self.color {
            Style::new().fg(Color::Black).bg(self.palette.colour(confidence)).add_modifier(Modifier::BOLD)
        } else {
            Style::new().add_modifier(Modifier::REVERSED)
        }
    }
}

/// Viridis at `value` in [0, 1]: matplotlib's colour map, by linear steps between eight of its
/// colours.
pub fn viridis(value: f32) -> Color {
    const STOPS: [[f32; 3]; 8] = [
        [68.0, 1.0, 84.0],
        [70.0, 50.0, 127.0],
        [54.0, 92.0, 141.0],
        [39.0, 127.0, 142.0],
        [31.0, 161.0, 135.0],
        [74.0, 194.0, 109.0],
        [159.0, 218.0, 58.0],
        [253.0, 231.0, 37.0],
    ];
    let x = value.clamp(0.0, 1.0) * (STOPS.len() - 1) as f32;
    let i = (x as usize).min(STOPS.len() - 2);
    let f = x - i as f32;
    let mix = |k: usize| (STOPS[i][k] + (STOPS[i + 1][k] - STOPS[i][k]) * f).round() as u8;
    Color::Rgb(mix(0), mix(1), mix(2))
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
/// The decode-order view's key reads early → late; the uncertainty view's adds the shades of
/// masked cells, unsure → sure.
pub fn legend(theme: &Theme, width: u16, revising: bool, resizing: bool, view: View) -> Line<'static> {
    let wide = width >= 72;
    let by_order = view == View::Order;
    let mut spans = vec![];
    if view == View::Uncertainty {
        spans.push(Span::raw("unsure "));
        for (k, &shade) in SHADES.iter().enumerate() {
            spans.push(Span::styled(shade.to_string(), theme.confidence((k as f32 + 0.5) / SHADES.len() as f32)));
        }
        spans.push(Span::raw(if wide { " sure   " } else { " sure  " }));
    }
    if wide {
        spans.push(Span::styled(if by_order { "revealed " } else { "confidence " }, theme.dim));
    }
    spans.push(Span::raw(if by_order { "early " } else { "low " }));
    if theme.color {
        for i in 0..10 {
            spans.push(Span::styled("█", Style::new().fg(theme.palette.colour(i as f32 / 9.0))));
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
        Span::raw(format!(" {}{gap}", if by_order { "late" } else { "high" })),
        Span::styled("x", theme.decoded_now(0.8)),
        Span::raw(if wide { " this step" } else { " new" }),
        Span::raw(gap),
        Span::styled("A", theme.prompt),
        Span::raw(format!(" prompt{gap}")),
        Span::styled(theme.mask_glyph.to_string(), theme.masked),
        Span::raw(" masked"),
    ]);
    if revising {
        spans.extend([Span::raw(gap), Span::styled(theme.mask_glyph.to_string(), theme.remasked), Span::raw(" revised")]);
    }
    if resizing {
        spans.extend([
            Span::raw(gap),
            Span::styled(theme.mask_glyph.to_string(), theme.split),
            Span::raw(" split"),
            Span::raw(gap),
            Span::styled(VANISHED_GLYPH.to_string(), theme.vanished),
            Span::raw(" gone"),
        ]);
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

    #[test]
    fn viridis_grows_brighter_so_it_reads_in_grayscale() {
        let luma = |c: Color| match c {
            Color::Rgb(r, g, b) => 0.299 * r as f32 + 0.587 * g as f32 + 0.114 * b as f32,
            _ => panic!("rgb"),
        };
        let l: Vec<f32> = (0..=20).map(|i| luma(Palette::Viridis.colour(i as f32 / 20.0))).collect();
        assert!(l.windows(2).all(|w| w[1] > w[0]), "{l:?}");
        assert_eq!(Palette::Viridis.colour(-1.0), Palette::Viridis.colour(0.0));
    }
}
