//! Exact percentages. `100 - 99.9` in floating point is `0.09999999999999432`; rules and status
//! must say `0.001` (as a ratio), so objectives are kept as decimals.

use std::fmt;

/// Most decimal places an objective may have. 99.9999999 (nine nines) fits with room to spare.
pub const MAX_DECIMALS: u32 = 9;

/// A non-negative percentage with at most [`MAX_DECIMALS`] decimal places, held exactly as
/// `units / 10^MAX_DECIMALS` percent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Percent {
    units: u64,
}

const SCALE: u64 = 10u64.pow(MAX_DECIMALS);

/// Why a number is not a usable percentage.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PercentError {
    #[error("is not a finite number")]
    NotFinite,
    #[error("is negative")]
    Negative,
    #[error("has more than {MAX_DECIMALS} decimal places")]
    TooPrecise,
    #[error("is larger than 100")]
    TooLarge,
}

impl Percent {
    pub const HUNDRED: Percent = Percent { units: 100 * SCALE };
    pub const ZERO: Percent = Percent { units: 0 };

    /// A whole number of percent, at most 100.
    pub const fn whole(percent: u64) -> Self {
        let percent = if percent > 100 { 100 } else { percent };
        Percent {
            units: percent * SCALE,
        }
    }

    /// Reads the number as the user wrote it: YAML `99.9` arrives as the nearest double, whose
    /// shortest decimal spelling is again `99.9`.
    pub fn from_f64(value: f64) -> Result<Self, PercentError> {
        if !value.is_finite() {
            return Err(PercentError::NotFinite);
        }
        if value < 0.0 {
            return Err(PercentError::Negative);
        }
        if value > 100.0 {
            return Err(PercentError::TooLarge);
        }
        // Rust prints the shortest string that reads back as the same double, never in exponent
        // form, so this is the user's own spelling.
        let text = value.to_string();
        let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
        if fraction.len() > MAX_DECIMALS as usize {
            return Err(PercentError::TooPrecise);
        }
        let whole: u64 = whole.parse().map_err(|_| PercentError::TooLarge)?;
        let padded = format!("{fraction:0<width$}", width = MAX_DECIMALS as usize);
        let fraction: u64 = padded.parse().map_err(|_| PercentError::TooPrecise)?;
        Ok(Percent {
            units: whole * SCALE + fraction,
        })
    }

    /// `100 - self`, exactly: the error budget of an objective.
    pub fn complement(self) -> Percent {
        Percent {
            units: Self::HUNDRED.units.saturating_sub(self.units),
        }
    }

    pub fn as_f64(self) -> f64 {
        self.units as f64 / SCALE as f64
    }

    /// The same quantity as a ratio (percent / 100), as an exact decimal string: 99.9 -> `0.999`,
    /// 0.1 -> `0.001`.
    pub fn ratio_string(self) -> String {
        decimal_string(self.units, MAX_DECIMALS + 2)
    }
}

/// `units / 10^scale` without trailing zeros.
fn decimal_string(units: u64, scale: u32) -> String {
    let divisor = 10u64.pow(scale);
    let whole = units / divisor;
    let fraction = units % divisor;
    if fraction == 0 {
        return whole.to_string();
    }
    let digits = format!("{fraction:0width$}", width = scale as usize);
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&decimal_string(self.units, MAX_DECIMALS))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pct(value: f64) -> Percent {
        Percent::from_f64(value).unwrap()
    }

    #[test]
    fn keeps_the_users_spelling() {
        assert_eq!(pct(99.9).to_string(), "99.9");
        assert_eq!(pct(99.95).to_string(), "99.95");
        assert_eq!(pct(99.999999999).to_string(), "99.999999999");
        assert_eq!(pct(100.0).to_string(), "100");
        assert_eq!(pct(0.5).to_string(), "0.5");
    }

    #[test]
    fn complement_and_ratio_are_exact() {
        assert_eq!(pct(99.9).complement().ratio_string(), "0.001");
        assert_eq!(pct(99.9).ratio_string(), "0.999");
        assert_eq!(pct(99.95).complement().ratio_string(), "0.0005");
        assert_eq!(pct(95.0).complement().ratio_string(), "0.05");
        assert_eq!(pct(99.0).complement().to_string(), "1");
        assert_eq!(pct(100.0).ratio_string(), "1");
        assert_eq!(pct(0.0).ratio_string(), "0");
    }

    #[test]
    fn refuses_what_is_not_a_percentage() {
        assert_eq!(Percent::from_f64(f64::NAN), Err(PercentError::NotFinite));
        assert_eq!(Percent::from_f64(-1.0), Err(PercentError::Negative));
        assert_eq!(Percent::from_f64(150.0), Err(PercentError::TooLarge));
        assert_eq!(
            Percent::from_f64(99.1234567891),
            Err(PercentError::TooPrecise)
        );
    }

    #[test]
    fn whole_percentages() {
        assert_eq!(Percent::whole(10), pct(10.0));
        assert_eq!(Percent::whole(250), Percent::HUNDRED);
    }

    #[test]
    fn orders_like_numbers() {
        assert!(pct(99.9) < pct(99.95));
        assert!(pct(10.0) > pct(9.99));
        assert_eq!(pct(42.0).as_f64(), 42.0);
    }
}
