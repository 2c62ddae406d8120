//! Prometheus durations (`30d`, `1h30m`), whole seconds, with a canonical spelling.

use std::fmt;

/// A duration in whole seconds, parsed from and printed as a Prometheus duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(u64);

/// Units from largest to smallest, as Prometheus spells them. Years are left out on purpose: a
/// Prometheus year is 365d, which surprises people next to calendar windows.
const UNITS: [(char, u64); 5] = [
    ('w', 7 * 86_400),
    ('d', 86_400),
    ('h', 3_600),
    ('m', 60),
    ('s', 1),
];

/// Why a duration string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("empty duration")]
    Empty,
    #[error("a number must come before {0:?}")]
    MissingNumber(char),
    #[error("missing unit after {0}")]
    MissingUnit(String),
    #[error("unknown unit {0:?}")]
    UnknownUnit(String),
    #[error("units must go from largest to smallest, each once")]
    UnitOrder,
    #[error("number too large")]
    Overflow,
}

impl Duration {
    pub const fn from_secs(secs: u64) -> Self {
        Duration(secs)
    }

    pub const fn from_minutes(minutes: u64) -> Self {
        Duration(minutes * 60)
    }

    pub const fn from_hours(hours: u64) -> Self {
        Duration(hours * 3_600)
    }

    pub const fn from_days(days: u64) -> Self {
        Duration(days * 86_400)
    }

    pub const fn as_secs(self) -> u64 {
        self.0
    }

    /// Parses a Prometheus duration, accepting only the given unit letters.
    pub fn parse(text: &str, allowed_units: &str) -> Result<Self, DurationError> {
        if text.is_empty() {
            return Err(DurationError::Empty);
        }
        let mut total: u64 = 0;
        let mut last_rank = None;
        let mut chars = text.char_indices().peekable();
        while let Some(&(start, c)) = chars.peek() {
            if !c.is_ascii_digit() {
                return Err(DurationError::MissingNumber(c));
            }
            let mut end = start;
            while let Some(&(i, d)) = chars.peek() {
                if !d.is_ascii_digit() {
                    break;
                }
                end = i + 1;
                chars.next();
            }
            let number: u64 = text[start..end]
                .parse()
                .map_err(|_| DurationError::Overflow)?;
            let mut unit = String::new();
            while let Some(&(_, u)) = chars.peek() {
                if u.is_ascii_digit() {
                    break;
                }
                unit.push(u);
                chars.next();
            }
            if unit.is_empty() {
                return Err(DurationError::MissingUnit(text[start..end].to_string()));
            }
            let rank = UNITS
                .iter()
                .position(|(u, _)| unit.len() == 1 && unit.starts_with(*u))
                .filter(|_| allowed_units.contains(unit.as_str()))
                .ok_or(DurationError::UnknownUnit(unit))?;
            if last_rank.is_some_and(|last| rank <= last) {
                return Err(DurationError::UnitOrder);
            }
            last_rank = Some(rank);
            total = number
                .checked_mul(UNITS[rank].1)
                .and_then(|secs| total.checked_add(secs))
                .ok_or(DurationError::Overflow)?;
        }
        Ok(Duration(total))
    }

    /// True when `other` divides this duration without remainder.
    pub fn is_multiple_of(self, other: Duration) -> bool {
        other.0 != 0 && self.0.is_multiple_of(other.0)
    }
}

impl fmt::Display for Duration {
    /// Largest units first, like Prometheus: 5400s prints as `1h30m`, 30 days as `30d` (not `4w2d`,
    /// which is correct but harder to read for SLO windows).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("0s");
        }
        let mut rest = self.0;
        for (unit, secs) in UNITS {
            // Weeks only when they are the whole story: `4w` yes, `30d` stays `30d`.
            if unit == 'w' && !rest.is_multiple_of(secs) {
                continue;
            }
            if rest >= secs {
                write!(f, "{}{}", rest / secs, unit)?;
                rest %= secs;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: &str = "wdhms";

    #[test]
    fn parses_simple_and_compound_durations() {
        assert_eq!(Duration::parse("30d", ALL), Ok(Duration::from_days(30)));
        assert_eq!(Duration::parse("4w", ALL), Ok(Duration::from_days(28)));
        assert_eq!(
            Duration::parse("1h30m", ALL),
            Ok(Duration::from_minutes(90))
        );
        assert_eq!(Duration::parse("0d", ALL), Ok(Duration::from_secs(0)));
    }

    #[test]
    fn refuses_malformed_durations() {
        assert_eq!(Duration::parse("", ALL), Err(DurationError::Empty));
        assert_eq!(
            Duration::parse("d", ALL),
            Err(DurationError::MissingNumber('d'))
        );
        assert_eq!(
            Duration::parse("30", ALL),
            Err(DurationError::MissingUnit("30".into()))
        );
        assert_eq!(
            Duration::parse("30x", ALL),
            Err(DurationError::UnknownUnit("x".into()))
        );
        assert_eq!(
            Duration::parse("5ms", ALL),
            Err(DurationError::UnknownUnit("ms".into()))
        );
        assert_eq!(Duration::parse("1m1h", ALL), Err(DurationError::UnitOrder));
        assert_eq!(
            Duration::parse("99999999999999999999d", ALL),
            Err(DurationError::Overflow)
        );
        assert_eq!(
            Duration::parse("30m", "wdh"),
            Err(DurationError::UnknownUnit("m".into()))
        );
        assert_eq!(
            Duration::parse("2mo", "wdh"),
            Err(DurationError::UnknownUnit("mo".into()))
        );
    }

    #[test]
    fn prints_canonically() {
        assert_eq!(Duration::from_days(30).to_string(), "30d");
        assert_eq!(Duration::from_days(28).to_string(), "4w");
        assert_eq!(Duration::from_minutes(90).to_string(), "1h30m");
        assert_eq!(Duration::from_secs(0).to_string(), "0s");
        assert_eq!(Duration::from_secs(86_400 + 1).to_string(), "1d1s");
    }

    #[test]
    fn printing_then_parsing_round_trips() {
        for secs in [
            1, 59, 60, 61, 3_599, 3_600, 86_399, 86_400, 604_800, 2_592_000,
        ] {
            let d = Duration::from_secs(secs);
            assert_eq!(Duration::parse(&d.to_string(), ALL), Ok(d), "{secs}s");
        }
    }
}
