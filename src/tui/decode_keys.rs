//! The Watch screen's keys for the decoding options: `+`/`-` the strategy's parameter, `t`/`T` the
//! temperature, and `s`, `m`, `w`, `n`, `N`, `o` each step one setting through its list. Only the
//! TUI steps through settings; the CLI sets them from flags.

use crate::diffusion::decode::POLISH_STRIDE;
use crate::diffusion::{DecodeOptions, Remask, Strategy};

/// Spans the `w` key cycles through.
pub const SPANS: [usize; 5] = [0, 4, 8, 16, 32];

/// Lane counts the `n` key cycles through.
pub const LANES: [usize; 4] = [1, 2, 3, 4];

/// Lane stretches the `N` key cycles through (0: the window divided among the lanes).
pub const STRETCHES: [usize; 4] = [0, 24, 32, 48];

/// Polish passes the `o` key cycles through: none, one and two rounds (a round of
/// `POLISH_STRIDE` passes checks every character once), and the defaults' ceiling.
pub const POLISH: [usize; 4] = [0, POLISH_STRIDE, 2 * POLISH_STRIDE, DecodeOptions::DEFAULT.polish];

/// One notch of a decoding setting, for a key.
pub trait DecodeKeys {
    /// Raises or lowers the strategy's own parameter by one notch, staying valid.
    fn adjust(&mut self, up: bool);

    /// The next strategy in `Strategy::ALL` (topk-sum brings a top-k if none is set; leaving
    /// random ends a ReMDM schedule, which needs it).
    fn cycle_strategy(&mut self);

    /// The TUI's `m`: remasking on and off (ReMDM's schedules in turn with `--strategy random`).
    fn cycle_remask(&mut self);

    /// The next span in `SPANS`.
    fn cycle_span(&mut self);

    /// The next lane count in `LANES`.
    fn cycle_lanes(&mut self);

    /// The next lane stretch in `STRETCHES`.
    fn cycle_stretch(&mut self);

    /// The next number of polish passes in `POLISH`.
    fn cycle_polish(&mut self);

    /// Temperature in steps of 0.1, between 0 (argmax) and 3.
    fn adjust_temperature(&mut self, up: bool);
}

impl DecodeKeys for DecodeOptions {
    fn adjust(&mut self, up: bool) {
        let notch = |v: f32, by: f32, lo: f32, hi: f32| ((v + if up { by } else { -by }).clamp(lo, hi) * 100.0).round() / 100.0;
        match self.strategy {
            Strategy::Confidence | Strategy::TopkSum => self.threshold = notch(self.threshold, 0.05, 0.05, 1.0),
            Strategy::Margin => self.margin = notch(self.margin, 0.05, 0.05, 1.0),
            Strategy::Entropy => self.entropy = notch(self.entropy, 0.1, 0.0, 4.0),
            Strategy::Eb => self.gamma = notch(self.gamma, 0.25, 0.0, 20.0),
            Strategy::Factor => self.factor = notch(self.factor, 0.25, 0.0, 20.0),
            Strategy::Topk => self.per_step = if up { (self.per_step + 1).min(256) } else { (self.per_step - 1).max(1) },
            Strategy::Steps | Strategy::Random => self.steps = if up { (self.steps * 2).min(1024) } else { (self.steps / 2).max(1) },
        }
    }

    fn cycle_strategy(&mut self) {
        let i = Strategy::ALL.iter().position(|&s| s == self.strategy).expect("listed");
        self.strategy = Strategy::ALL[(i + 1) % Strategy::ALL.len()];
        if self.strategy == Strategy::TopkSum && self.top_k == 0 {
            self.top_k = 2;
        }
        if self.strategy != Strategy::Random && self.remask.is_remdm() {
            self.remask = Remask::LowConfidence;
        }
    }

    fn cycle_remask(&mut self) {
        self.remask = match (self.strategy, self.remask) {
            (Strategy::Random, Remask::None) => Remask::Cap,
            (Strategy::Random, Remask::Cap) => Remask::Rescale,
            (Strategy::Random, Remask::Rescale) => Remask::Conf,
            (Strategy::Random, Remask::Conf) => Remask::Loop,
            (_, Remask::None) => Remask::LowConfidence,
            _ => Remask::None,
        };
    }

    fn cycle_span(&mut self) {
        self.span = next_in(&SPANS, self.span);
    }

    fn cycle_lanes(&mut self) {
        self.lanes = next_in(&LANES, self.lanes);
    }

    fn cycle_stretch(&mut self) {
        self.stretch = next_in(&STRETCHES, self.stretch);
    }

    fn cycle_polish(&mut self) {
        self.polish = next_in(&POLISH, self.polish);
    }

    fn adjust_temperature(&mut self, up: bool) {
        let t = self.temperature + if up { 0.1 } else { -0.1 };
        self.temperature = (t.clamp(0.0, 3.0) * 10.0).round() / 10.0;
    }
}

/// The value after `current` in `list`, wrapping; the first when `current` is not listed.
fn next_in(list: &[usize], current: usize) -> usize {
    list.iter().position(|&v| v == current).map_or(list[0], |i| list[(i + 1) % list.len()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_strategy_adjusts_within_its_valid_range() {
        for strategy in Strategy::ALL {
            let mut o = DecodeOptions { strategy, top_k: 2, ..Default::default() };
            for _ in 0..100 {
                o.adjust(true);
            }
            o.validate().unwrap();
            let high = o.describe();
            for _ in 0..300 {
                o.adjust(false);
            }
            o.validate().unwrap();
            assert_ne!(o.describe(), high, "{strategy:?}: - undoes +");
        }
    }

    #[test]
    fn lanes_and_polish_cycle_through_their_lists_and_polish_counts_as_revising() {
        let mut o = DecodeOptions { remask: Remask::None, ..DecodeOptions::DEFAULT };
        let (mut lanes, mut stretches, mut polish) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..LANES.len() {
            lanes.push(o.lanes);
            o.cycle_lanes();
        }
        for _ in 0..STRETCHES.len() {
            stretches.push(o.stretch);
            o.cycle_stretch();
        }
        assert_eq!(o.stretch, DecodeOptions::DEFAULT.stretch, "wraps around");
        stretches.sort_unstable();
        assert_eq!(stretches, STRETCHES);
        for _ in 0..POLISH.len() {
            polish.push(o.polish);
            o.cycle_polish();
        }
        assert_eq!((o.lanes, o.polish), (DecodeOptions::DEFAULT.lanes, DecodeOptions::DEFAULT.polish), "both wrap around");
        lanes.sort_unstable();
        polish.sort_unstable();
        assert_eq!((lanes.as_slice(), polish.as_slice()), (&LANES[..], &POLISH[..]));
        assert!(DecodeOptions { polish: 3, ..o }.revises() && !DecodeOptions { polish: 0, ..o }.revises());
        assert!(DecodeOptions { polish: 0, remask: Remask::LowConfidence, ..o }.revises());
    }

    #[test]
    fn cycling_visits_every_strategy_and_returns() {
        let mut o = DecodeOptions { strategy: Strategy::ALL[0], ..DecodeOptions::DEFAULT };
        let mut seen = Vec::new();
        for _ in 0..Strategy::ALL.len() {
            seen.push(o.strategy);
            o.cycle_strategy();
            o.validate().unwrap();
        }
        assert_eq!(seen, Strategy::ALL);
        assert_eq!(o.strategy, Strategy::ALL[0]);
    }
}
