//! Which windows an SLO records and alerts on: the multiwindow, multi-burn-rate table of the SRE
//! workbook for 30 days, scaled to other windows.

use crate::model::{Duration, Window};

/// Reference window of the burn-rate table.
const REFERENCE: Duration = Duration::from_days(30);
/// Shortest window we record or alert on: one 5m count.
const MIN_WINDOW: Duration = Duration::from_minutes(5);
/// From this length on, windows are summed from the recorded 5m counts instead of raw series.
pub const FROM_COUNTS: Duration = Duration::from_hours(2);
/// The resolution of the recorded counts.
pub const COUNT_STEP: Duration = Duration::from_minutes(5);

/// Severity tier of a burn-rate alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    Page,
    Ticket,
}

/// One multiwindow condition: fire when both windows burn faster than `factor`.
#[derive(Debug, Clone, PartialEq)]
pub struct BurnWindow {
    pub tier: Tier,
    pub long: Duration,
    pub short: Duration,
    /// Burn rate; the spelling is kept for the rules (`14.4`, not `14.399999`).
    pub factor: &'static str,
}

/// The table for 30 days: page on 2% of the budget in 1h or 5% in 6h, ticket on 10% in 1d or 3d.
const TABLE: [(Tier, u64, u64, &str); 4] = [
    (Tier::Page, 60, 5, "14.4"),
    (Tier::Page, 360, 30, "6"),
    (Tier::Ticket, 1_440, 120, "3"),
    (Tier::Ticket, 4_320, 360, "1"),
];

/// The burn-rate windows for an SLO window: the 30d table with every window multiplied by
/// `window / 30d`, rounded to whole minutes (at least 5m), and to 5m multiples from 2h on. The
/// factors stay: the same share of the budget is spent in the same share of the window.
pub fn burn_windows(window: &Window) -> Vec<BurnWindow> {
    let scale = window.rolling_equivalent();
    TABLE
        .iter()
        .map(|&(tier, long, short, factor)| BurnWindow {
            tier,
            long: scaled(Duration::from_minutes(long), scale),
            short: scaled(Duration::from_minutes(short), scale),
            factor,
        })
        .collect()
}

fn scaled(reference: Duration, window: Duration) -> Duration {
    if window == REFERENCE {
        return reference;
    }
    let secs = reference.as_secs() as u128 * window.as_secs() as u128 / REFERENCE.as_secs() as u128;
    let minutes = ((secs + 30) / 60) as u64;
    let minutes = if minutes * 60 >= FROM_COUNTS.as_secs() {
        (minutes + 2) / 5 * 5
    } else {
        minutes
    };
    Duration::from_minutes(minutes).max(MIN_WINDOW)
}

/// Every window whose error ratio is recorded, shortest first, without the full window (recorded
/// separately as `ratio_window`).
pub fn recorded_windows(window: &Window) -> Vec<Duration> {
    let full = window.rolling_equivalent();
    let mut all: Vec<Duration> = burn_windows(window)
        .iter()
        .flat_map(|b| [b.long, b.short])
        .filter(|w| *w < full)
        .collect();
    all.sort();
    all.dedup();
    all
}

/// `function(series[W:step] offset -(step - 1ms))`: one recorded value per step over exactly the
/// last `window`. Without the offset, the subquery's steps sit on the step grid while the group
/// evaluates at a hashed offset after it, so the last step would read the previous evaluation's
/// value and the window would end one step early. Shifted by just under a step, the last step
/// falls after this evaluation and reads the value it has just written; the first reads the
/// value written one window minus a step ago. On the grid itself (offset 0, as promtool
/// evaluates) the steps are those of the grid, and the count is the same: one value per step.
///
/// A step longer than Prometheus' default lookback (5m: slices of 10m to 1h) reads the newest
/// value of its step with `last_over_time`: a plain selector finds nothing once the value was
/// written more than 5 minutes before the step, which for a 30m slice is most offsets.
pub fn over_steps(function: &str, series: &str, window: Duration, step: Duration) -> String {
    let almost_a_step = Duration::from_secs(step.as_secs().saturating_sub(1));
    let value = if step > COUNT_STEP {
        newest_in_step(series, step, "")
    } else {
        series.to_string()
    };
    format!("{function}({value}[{window}:{step}] offset -{almost_a_step}999ms)")
}

/// The value written in the step that ends at each evaluation, whatever the query lookback:
/// `last_over_time(series[step])`. A value on its step's grid is written once per step at the
/// group's offset, so each step of a subquery over this finds exactly one, or none while the
/// newest is not written yet (where a plain selector would read the previous one again).
/// `shift` (such as ` offset 1ms`) goes inside: PromQL takes no offset after a function.
pub fn newest_in_step(series: &str, step: Duration, shift: &str) -> String {
    format!("last_over_time({series}[{step}]{shift})")
}

/// `expr` as of the newest multiple of `step` since the epoch at or before the evaluation:
/// `last_over_time((expr)[step:step])`. A subquery's steps lie on that grid whatever the rule
/// group's evaluation offset (a hash of its name), so a 5m count evaluated at 10:07:13 covers
/// (10:00, 10:05]. Every calendar period starts on the 5-minute grid (time zones are offset from
/// UTC by whole quarter hours), so no count straddles a period's start and the period's counts
/// are exactly those after it. Where the range holds two grid points (an evaluation exactly on
/// the grid, Prometheus 2's closed ranges) the later one is the value.
pub fn on_grid(expr: &str, step: Duration) -> String {
    format!("last_over_time(({expr})[{step}:{step}])")
}

/// `slo:sli_error:ratio_rate1h` style suffix for a window.
pub fn rate_suffix(window: Duration) -> String {
    format!("ratio_rate{window}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rolling(days: u64) -> Window {
        Window::Rolling(Duration::from_days(days))
    }

    fn spelled(w: &Window) -> Vec<String> {
        burn_windows(w)
            .iter()
            .map(|b| format!("{}/{}x{}", b.long, b.short, b.factor))
            .collect()
    }

    #[test]
    fn thirty_days_is_the_workbook_table() {
        assert_eq!(
            spelled(&rolling(30)),
            ["1h/5mx14.4", "6h/30mx6", "1d/2hx3", "3d/6hx1"]
        );
        let recorded: Vec<String> = recorded_windows(&rolling(30))
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(recorded, ["5m", "30m", "1h", "2h", "6h", "1d", "3d"]);
    }

    #[test]
    fn other_windows_scale_with_sensible_rounding() {
        // 28d: 6h -> 336m -> 335m; 1d -> 1344m -> 1345m; 2h -> 112m stays (under 2h).
        assert_eq!(
            spelled(&rolling(28)),
            [
                "56m/5mx14.4",
                "5h35m/28mx6",
                "22h25m/1h52mx3",
                "2d19h10m/5h35mx1"
            ]
        );
        // 7d: short windows hit the 5m floor.
        assert_eq!(
            spelled(&rolling(7)),
            ["14m/5mx14.4", "1h24m/7mx6", "5h35m/28mx3", "16h50m/1h24mx1"]
        );
        // Calendar months alert like 30 days.
        let month = Window::Calendar {
            period: crate::model::CalendarPeriod::Month,
            time_zone: "UTC".into(),
        };
        assert_eq!(spelled(&month), spelled(&rolling(30)));
    }

    #[test]
    fn windows_from_two_hours_are_whole_five_minutes() {
        for days in 1..=90 {
            for w in recorded_windows(&rolling(days)) {
                assert!(w >= MIN_WINDOW, "{days}d: {w}");
                assert_eq!(w.as_secs() % 60, 0, "{days}d: {w}");
                if w >= FROM_COUNTS {
                    assert!(w.is_multiple_of(COUNT_STEP), "{days}d: {w}");
                }
            }
        }
    }
}
