//! Numbers read from Prometheus -> the error budget in the terms people use: SLI, budget left,
//! minutes of full outage spent and left, burn rates, when the budget runs out.

use crate::small_map::SmallMap;
use std::collections::BTreeMap;

use k8s_openapi::jiff::{SignedDuration, Timestamp};

use crate::model::{BudgetingMethod, Duration, Slo};
use crate::rules::windows::COUNT_STEP;

/// What Prometheus said about one SLO (or one group of it) at one instant.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Reading {
    /// `slo:sli_error:ratio_window`: the share of bad events (or slices) over the window.
    pub window_error_ratio: Option<f64>,
    /// Error ratios of the recorded burn windows (`slo:sli_error:ratio_rate<W>`).
    pub error_ratios: SmallMap<Duration, f64>,
    /// When each burn window's ratio was written: a ratio without a fresh sample is left out, so
    /// a trigger never fires on a number the rules stopped updating.
    pub ratios_written: SmallMap<Duration, Timestamp>,
    /// When the newest of these samples was written.
    pub newest_sample: Option<Timestamp>,
    /// Calendar windows: the error ratio since the period start, from the 5m counts.
    pub period_error_ratio: Option<f64>,
}

impl Reading {
    /// The same reading with every burn window's ratio written at `at` (tests and tools).
    pub fn written_at(mut self, at: Timestamp) -> Reading {
        self.ratios_written = self.error_ratios.keys().map(|w| (*w, at)).collect();
        self.newest_sample = Some(at);
        self
    }
}

/// Why there is no verdict: nothing is decided on missing or stale data.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NoData {
    #[error("no recorded series for this SLO in Prometheus yet")]
    Missing,
    /// No series, and the Prometheus read lists none of the SLO's rule groups: its
    /// PrometheusRule is not loaded (no Prometheus selects it, prometheus-operator rejected it,
    /// or the rules run in another Prometheus than the one read).
    #[error(
        "no recorded series, and Prometheus has loaded none of this SLO's rule groups \
         (plimsoll/{namespace}/{name}/...): no Prometheus has taken the PrometheusRule \
         {namespace}/{name}{labels}. Check that the ruleSelector of the Prometheus object (with \
         prometheus-operator) matches the rule's labels (kube-prometheus-stack selects \
         release=<its release name>: the chart's ruleLabels, --rule-label) and that its \
         ruleNamespaceSelector takes the namespace {namespace}; an invalid rule is named in a \
         Warning Event InvalidConfiguration. Rules evaluated by another Prometheus than the one \
         read (remote write) show here too",
        labels = match rule_labels.is_empty() {
            true => " (it carries no --rule-label)".to_string(),
            false => format!(" (labelled {rule_labels})"),
        }
    )]
    RulesNotLoaded {
        namespace: String,
        name: String,
        /// `key=value,...` of the operator's `--rule-label`.
        rule_labels: String,
    },
    #[error("the newest recorded sample is {age} old; the rules look stalled")]
    Stale { age: String },
    #[error("the recorded error ratio is not a number")]
    NotANumber,
    /// A calendar period so young that its first 5m count is not written yet: nothing of it has
    /// been measured, and the previous period's counts are not this one's.
    #[error(
        "the calendar period began at {start}; its first 5-minute count is not recorded yet, so \
         nothing of it has been measured"
    )]
    PeriodStarting { start: Timestamp },
    #[error("{message}")]
    Prometheus {
        /// PrometheusUnreachable, PrometheusRefused, PrometheusBadAnswer, ...
        reason: &'static str,
        message: String,
    },
}

impl NoData {
    pub fn reason(&self) -> &'static str {
        match self {
            NoData::Missing => "SeriesMissing",
            NoData::RulesNotLoaded { .. } => "RulesNotLoaded",
            NoData::Stale { .. } => "SeriesStale",
            NoData::NotANumber => "NotANumber",
            NoData::PeriodStarting { .. } => "PeriodStarting",
            NoData::Prometheus { reason, .. } => reason,
        }
    }
}

/// The budget at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct Assessment {
    /// Good events over the window, in percent.
    pub sli: f64,
    /// Budget left, in percent of the whole budget; negative when overspent.
    pub remaining: f64,
    /// Budget spent, in minutes of full outage.
    pub consumed_minutes: f64,
    /// The whole budget, in minutes of full outage over the window.
    pub total_minutes: f64,
    /// Burn rate per window: 1 spends exactly the budget over the SLO window.
    pub burn_rates: BTreeMap<Duration, f64>,
    /// When the budget is gone at the projection window's burn rate; `None` when it burns at
    /// most 1 or is already gone.
    pub exhaustion: Option<Timestamp>,
}

/// Samples older than this many evaluations of the slow (5m) group mean the rules are not running.
pub const STALE_AFTER: Duration = Duration::from_minutes(10);

/// Judges one reading. `projection` is the window whose burn rate projects exhaustion (the 6h of
/// a 30d SLO).
pub fn assess(
    slo: &Slo,
    reading: &Reading,
    projection: Duration,
    now: Timestamp,
) -> Result<Assessment, NoData> {
    let ratio = reading.window_error_ratio.ok_or(NoData::Missing)?;
    if !ratio.is_finite() {
        return Err(NoData::NotANumber);
    }
    let newest = reading.newest_sample.ok_or(NoData::Missing)?;
    let age = now.duration_since(newest);
    if !fresh(newest, now) {
        return Err(NoData::Stale {
            age: Duration::from_secs(age.as_secs().max(0) as u64).to_string(),
        });
    }
    let budget = slo.error_budget().as_f64() / 100.0;
    let span = Span::of(slo, reading, ratio, now)?;
    let burn_rates: BTreeMap<Duration, f64> = reading
        .error_ratios
        .iter()
        .filter(|(w, r)| {
            r.is_finite()
                && reading
                    .ratios_written
                    .get(w)
                    .is_some_and(|t| fresh(*t, now))
        })
        .map(|(w, r)| (*w, r / budget))
        .collect();
    let consumed_minutes = span.ratio * span.minutes * span.elapsed;
    let total_minutes = budget * span.minutes;
    let remaining = (1.0 - consumed_minutes / total_minutes) * 100.0;
    let exhaustion = burn_rates
        .get(&projection)
        .filter(|burn| **burn > 1.0 && remaining > 0.0)
        .map(|burn| {
            // At `burn` times the sustainable rate, what is left lasts this share of the window.
            let minutes = remaining / 100.0 * span.minutes / burn;
            now + SignedDuration::from_secs((minutes * 60.0).round() as i64)
        })
        // A calendar budget starts afresh at the period's end.
        .filter(|at| span.end.is_none_or(|end| *at < end));
    Ok(Assessment {
        sli: (1.0 - span.ratio) * 100.0,
        remaining,
        consumed_minutes,
        total_minutes,
        burn_rates,
        exhaustion,
    })
}

/// Seconds from a period's start to the newest grid point of `step` (5m for counts, the slice
/// for timeslices) at or before `now`: the span its counts or slices cover once the newest is
/// written, and the share of the period the AnalysisTemplate counts in whole grid steps too
/// (`rules::analysis`).
pub fn elapsed_on_grid(start: Timestamp, now: Timestamp, step: Duration) -> f64 {
    let step = step.as_secs() as i64;
    let grid = now.as_second().div_euclid(step) * step;
    (grid - start.as_second()).max(0) as f64
}

/// The grid a calendar period's read lies on: the 5m counts', or the slices'.
pub fn period_grid(slo: &Slo) -> Duration {
    match slo.method {
        BudgetingMethod::Timeslices { slice, .. } => slice,
        BudgetingMethod::Occurrences => COUNT_STEP,
    }
}

/// Whether a sample written at `written` still counts at `now`.
fn fresh(written: Timestamp, now: Timestamp) -> bool {
    now.duration_since(written) <= SignedDuration::from_secs(STALE_AFTER.as_secs() as i64)
}

/// What the budget is measured over.
struct Span {
    /// Error ratio over the window, or over the calendar period so far.
    ratio: f64,
    /// Length of the window or of the whole period, in minutes.
    minutes: f64,
    /// Share of the period gone by (1 for rolling windows): a calendar budget is spent at the
    /// rate so far, projected over the whole period.
    elapsed: f64,
    /// The period's end; `None` for rolling windows.
    end: Option<Timestamp>,
}

impl Span {
    fn of(slo: &Slo, reading: &Reading, window_ratio: f64, now: Timestamp) -> Result<Span, NoData> {
        let Some((start, end)) = slo.window.period(now) else {
            return Ok(Span {
                ratio: window_ratio,
                minutes: slo.window.rolling_equivalent().as_secs() as f64 / 60.0,
                elapsed: 1.0,
                end: None,
            });
        };
        let length = end.duration_since(start).as_secs_f64();
        let grid = period_grid(slo);
        let gone = elapsed_on_grid(start, now, grid);
        let ratio = match reading.period_error_ratio {
            Some(r) if r.is_finite() => r,
            Some(_) => return Err(NoData::NotANumber),
            // The period's first count (or slice) covers its first step and is written up to
            // a step after it: until a slow group's staleness bound has passed, missing counts
            // mean a young period, not stalled rules.
            None if gone <= (grid.as_secs() + STALE_AFTER.as_secs()) as f64 => {
                return Err(NoData::PeriodStarting { start });
            }
            None => return Err(NoData::Missing),
        };
        Ok(Span {
            ratio,
            minutes: length / 60.0,
            elapsed: (gone / length).clamp(0.0, 1.0),
            end: Some(end),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ServiceLevelObjective;

    fn slo(objective: f64, window: &str) -> Slo {
        let object: ServiceLevelObjective = serde_json::from_value(serde_json::json!({
            "apiVersion": "plimsoll.dev/v1alpha1", "kind": "ServiceLevelObjective",
            "metadata": {"name": "checkout", "namespace": "shop"},
            "spec": {"service": "checkout", "objective": objective, "window": window,
                     "indicator": {"ratio": {"errors": "e", "total": "t"}}},
        }))
        .unwrap();
        crate::model::validate(&object).unwrap()
    }

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).unwrap()
    }

    const SIX_HOURS: Duration = Duration::from_hours(6);

    fn reading(window_ratio: f64, six_hour_ratio: f64, sampled: i64) -> Reading {
        Reading {
            window_error_ratio: Some(window_ratio),
            error_ratios: SmallMap::from([
                (Duration::from_hours(1), 0.0005),
                (SIX_HOURS, six_hour_ratio),
            ]),
            ratios_written: SmallMap::from([
                (Duration::from_hours(1), at(sampled)),
                (SIX_HOURS, at(sampled)),
            ]),
            newest_sample: Some(at(sampled)),
            period_error_ratio: None,
        }
    }

    #[test]
    fn the_api_example_adds_up() {
        // 99.9% over 30d: 43.2 minutes of budget; a 0.0588% error ratio spends 58.8% of it.
        let a = assess(
            &slo(99.9, "30d"),
            &reading(0.000588, 0.0011, 1000),
            SIX_HOURS,
            at(1000),
        )
        .unwrap();
        assert!((a.total_minutes - 43.2).abs() < 1e-9);
        assert!((a.consumed_minutes - 25.4016).abs() < 1e-9);
        assert!((a.remaining - 41.2).abs() < 1e-9);
        assert!((a.sli - 99.9412).abs() < 1e-9);
        assert!((a.burn_rates[&SIX_HOURS] - 1.1).abs() < 1e-9);
        assert!((a.burn_rates[&Duration::from_hours(1)] - 0.5).abs() < 1e-9);
    }

    #[test]
    fn exhaustion_is_projected_only_when_burning_faster_than_sustainable() {
        let s = slo(99.9, "30d");
        // 41.2% of a 30-day budget left at a 6h burn of 2: gone in 0.412 * 30d / 2 = 6.18 days.
        let a = assess(&s, &reading(0.000588, 0.002, 0), SIX_HOURS, at(0)).unwrap();
        let eta = a.exhaustion.unwrap();
        assert_eq!(
            eta.duration_since(at(0)).as_secs(),
            (0.412 * 30.0 * 86_400.0 / 2.0_f64).round() as i64
        );
        assert_eq!(
            assess(&s, &reading(0.000588, 0.001, 0), SIX_HOURS, at(0))
                .unwrap()
                .exhaustion,
            None
        );
        assert_eq!(
            assess(&s, &reading(0.002, 0.01, 0), SIX_HOURS, at(0))
                .unwrap()
                .exhaustion,
            None,
            "already gone"
        );
    }

    #[test]
    fn overspent_budgets_go_negative() {
        let a = assess(&slo(99.0, "7d"), &reading(0.03, 0.03, 0), SIX_HOURS, at(0)).unwrap();
        assert!((a.remaining + 200.0).abs() < 1e-9);
        assert!((a.total_minutes - 100.8).abs() < 1e-9);
    }

    #[test]
    fn missing_stale_or_nan_data_gives_no_verdict() {
        let s = slo(99.9, "30d");
        assert_eq!(
            assess(&s, &Reading::default(), SIX_HOURS, at(0)),
            Err(NoData::Missing)
        );
        let stale = assess(&s, &reading(0.0, 0.0, 0), SIX_HOURS, at(11 * 60));
        assert_eq!(stale, Err(NoData::Stale { age: "11m".into() }));
        assert!(assess(&s, &reading(0.0, 0.0, 0), SIX_HOURS, at(9 * 60)).is_ok());
        let nan = assess(&s, &reading(f64::NAN, 0.0, 0), SIX_HOURS, at(0));
        assert_eq!(nan, Err(NoData::NotANumber));
    }

    #[test]
    fn a_burn_rate_counts_only_while_its_own_series_is_fresh() {
        let s = slo(99.9, "30d");
        let mut r = reading(0.0, 0.05, 600);
        // The window ratio is fresh, the 1h ratio's rules stopped 11 minutes ago.
        r.ratios_written
            .insert(Duration::from_hours(1), at(600 - 11 * 60));
        let a = assess(&s, &r, SIX_HOURS, at(600)).unwrap();
        assert!(!a.burn_rates.contains_key(&Duration::from_hours(1)));
        assert!(a.burn_rates.contains_key(&SIX_HOURS));
        r.ratios_written.remove(&SIX_HOURS);
        let a = assess(&s, &r, SIX_HOURS, at(600)).unwrap();
        assert!(
            a.burn_rates.is_empty(),
            "a ratio of unknown age is no burn rate"
        );
    }
}

#[cfg(test)]
mod calendar_tests {
    use super::*;
    use crate::api::ServiceLevelObjective;

    fn slo(window: &str, zone: &str) -> Slo {
        let mut spec = serde_json::json!({"service": "checkout", "objective": 99.9, "window": window,
                                          "indicator": {"ratio": {"errors": "e", "total": "t"}}});
        if matches!(window, "month" | "week") {
            spec["timeZone"] = serde_json::json!(zone);
        }
        let object: ServiceLevelObjective = serde_json::from_value(serde_json::json!({
            "apiVersion": "plimsoll.dev/v1alpha1", "kind": "ServiceLevelObjective",
            "metadata": {"name": "checkout", "namespace": "shop"}, "spec": spec,
        }))
        .unwrap();
        crate::model::validate(&object).unwrap()
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn reading(period: Option<f64>, now: Timestamp) -> Reading {
        Reading {
            window_error_ratio: Some(0.0009),
            error_ratios: SmallMap::new(),
            ratios_written: SmallMap::new(),
            newest_sample: Some(now),
            period_error_ratio: period,
        }
    }

    #[test]
    fn periods_start_at_midnight_in_the_slos_time_zone() {
        // 23:30 UTC on 31 March is already 1 April in Berlin (CEST, UTC+2).
        let month = slo("month", "Europe/Berlin").window;
        let (start, end) = month.period(at("2027-03-31T23:30:00Z")).unwrap();
        assert_eq!(start, at("2027-03-31T22:00:00Z"));
        assert_eq!(end, at("2027-04-30T22:00:00Z"));
        // March in Berlin has the switch to summer time: one hour short of 31 days.
        let (start, end) = month.period(at("2027-03-15T12:00:00Z")).unwrap();
        assert_eq!(start, at("2027-02-28T23:00:00Z"));
        assert_eq!(end.duration_since(start).as_hours(), 31 * 24 - 1);
        // Weeks start on Monday: 2027-01-14 is a Thursday.
        let week = slo("week", "UTC").window;
        let (start, end) = week.period(at("2027-01-14T08:00:00Z")).unwrap();
        assert_eq!(
            (start, end),
            (at("2027-01-11T00:00:00Z"), at("2027-01-18T00:00:00Z"))
        );
        assert!(
            slo("30d", "UTC")
                .window
                .period(at("2027-01-14T08:00:00Z"))
                .is_none()
        );
    }

    #[test]
    fn a_calendar_budget_is_the_ratio_so_far_spread_over_the_whole_period() {
        let s = slo("week", "UTC");
        // Half the week gone (Thursday noon), 0.05% errors so far: half the budget's rate for half
        // the time -> a quarter spent.
        let now = at("2027-01-14T12:00:00Z");
        let a = assess(
            &s,
            &reading(Some(0.0005), now),
            Duration::from_hours(6),
            now,
        )
        .unwrap();
        assert!((a.sli - 99.95).abs() < 1e-9);
        assert!((a.remaining - 75.0).abs() < 1e-9, "{}", a.remaining);
        assert!((a.total_minutes - 0.001 * 7.0 * 1440.0).abs() < 1e-9);
        assert!((a.consumed_minutes - 0.0005 * 3.5 * 1440.0).abs() < 1e-9);
    }

    #[test]
    fn the_share_gone_by_counts_whole_grid_steps_like_the_counts() {
        let s = slo("week", "UTC");
        // 3 minutes past a grid point: the counts cover up to it, and so does the share.
        let now = at("2027-01-14T12:03:00Z");
        let a = assess(&s, &reading(Some(0.001), now), Duration::from_hours(6), now).unwrap();
        let share = (3.5 * 86_400.0) / (7.0 * 86_400.0);
        assert!(
            (a.remaining - (1.0 - share) * 100.0).abs() < 1e-9,
            "{}",
            a.remaining
        );
        let start = at("2027-01-11T00:00:00Z");
        let five = COUNT_STEP;
        assert_eq!(
            elapsed_on_grid(start, at("2027-01-11T00:04:59Z"), five),
            0.0
        );
        assert_eq!(
            elapsed_on_grid(start, at("2027-01-11T00:05:00Z"), five),
            300.0
        );
        assert_eq!(
            elapsed_on_grid(start, at("2027-01-10T23:59:00Z"), five),
            0.0
        );
        let minute = Duration::from_minutes(1);
        assert_eq!(
            elapsed_on_grid(start, at("2027-01-11T00:04:59Z"), minute),
            240.0
        );
    }

    #[test]
    fn exhaustion_after_the_period_end_is_not_projected() {
        let s = slo("week", "UTC");
        let now = at("2027-01-17T12:00:00Z");
        let mut r = reading(Some(0.0005), now);
        // 1.5x: the budget left would last longer than the 12 hours left in the week.
        r.error_ratios.insert(Duration::from_hours(6), 0.0015);
        r.ratios_written.insert(Duration::from_hours(6), now);
        let a = assess(&s, &r, Duration::from_hours(6), now).unwrap();
        assert!(a.exhaustion.is_none());
        r.error_ratios.insert(Duration::from_hours(6), 0.5);
        let a = assess(&s, &r, Duration::from_hours(6), now).unwrap();
        assert!(a.exhaustion.is_some_and(|t| t < at("2027-01-18T00:00:00Z")));
    }

    #[test]
    fn missing_period_sums_are_a_young_period_then_no_data_never_a_full_budget() {
        let s = slo("month", "UTC");
        // The first count (0:00 to 0:05] is written up to 5 minutes after 0:05; the slow group's
        // staleness bound later, missing counts mean stalled rules.
        for minute in ["00:00:00", "00:04:00", "00:09:59", "00:15:00"] {
            let early = at(&format!("2027-02-01T{minute}Z"));
            assert_eq!(
                assess(&s, &reading(None, early), Duration::from_hours(6), early),
                Err(NoData::PeriodStarting {
                    start: at("2027-02-01T00:00:00Z")
                }),
                "{minute}"
            );
        }
        assert_eq!(
            NoData::PeriodStarting {
                start: at("2027-02-01T00:00:00Z")
            }
            .reason(),
            "PeriodStarting"
        );
        let later = at("2027-02-01T00:30:00Z");
        assert_eq!(
            assess(&s, &reading(None, later), Duration::from_hours(6), later),
            Err(NoData::Missing)
        );
    }
}
