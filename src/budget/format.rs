//! Status numbers as decimal strings with a fixed precision, so a status patch happens when a
//! rounded value changes, not on every evaluation's noise.

/// Decimals of each status number.
pub const SLI_DECIMALS: usize = 4;
pub const BUDGET_DECIMALS: usize = 1;
pub const MINUTES_DECIMALS: usize = 1;
pub const BURN_RATE_DECIMALS: usize = 1;

/// `value` with `decimals` places; `-0.0` prints as `0.0`.
pub fn fixed(value: f64, decimals: usize) -> String {
    let text = format!("{value:.decimals$}");
    if text.starts_with('-') && text[1..].chars().all(|c| c == '0' || c == '.') {
        text[1..].to_string()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_precision_without_negative_zero() {
        assert_eq!(fixed(99.94123, SLI_DECIMALS), "99.9412");
        assert_eq!(fixed(41.25, BUDGET_DECIMALS), "41.2");
        assert_eq!(fixed(-0.04, BUDGET_DECIMALS), "0.0");
        assert_eq!(fixed(-12.36, BUDGET_DECIMALS), "-12.4");
        assert_eq!(fixed(0.0, BURN_RATE_DECIMALS), "0.0");
    }
}
