//! The validated model: an SLO whose every field has been parsed and checked. Rendering and budget
//! decisions take this, never the raw API object, so they cannot meet bad input.

mod advice;
mod duration;
mod error;
pub mod names;
mod percent;
pub mod promql;
pub mod template;
mod validate;

use std::collections::BTreeMap;

pub use advice::{Advice, advise};
pub use duration::{Duration, DurationError};
pub use error::{FieldError, Problem, ValidationErrors};
pub use percent::{Percent, PercentError};
pub use promql::{LabelMatcher, MatchKind, Selector};
pub use validate::validate;

use crate::api::TargetKind;

/// A ServiceLevelObjective that passed validation.
#[derive(Debug, Clone, PartialEq)]
pub struct Slo {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`; `None` for a manifest that leaves it to the client.
    pub namespace: Option<String>,
    /// `metadata.uid`: the identity every generated series carries (`slo_uid`), so the operator
    /// reads only this SLO's series, never a predecessor's of the same name or a forged one.
    /// `None` for manifests from files (`generate`, local mode), which have no UID.
    pub uid: Option<String>,
    pub service: String,
    pub description: Option<String>,
    /// Percent of good events (or slices), 0 < objective < 100.
    pub objective: Percent,
    pub window: Window,
    pub method: BudgetingMethod,
    pub indicator: Indicator,
    pub alerting: Alerting,
    pub rollback: Option<RollbackPolicy>,
    /// `spec.partialResponseStrategy`: written on every rule group when set.
    pub partial_response_strategy: Option<crate::api::PartialResponseStrategy>,
}

impl Slo {
    /// The error budget as a share of events: 99.9 -> 0.1 percent.
    pub fn error_budget(&self) -> Percent {
        self.objective.complement()
    }
}

/// The window the budget is measured over.
#[derive(Debug, Clone, PartialEq)]
pub enum Window {
    /// The last `Duration`, sliding.
    Rolling(Duration),
    /// The current calendar period, starting in `time_zone`.
    Calendar {
        period: CalendarPeriod,
        /// IANA name, checked against the bundled time zone database.
        time_zone: String,
    },
}

/// Calendar periods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CalendarPeriod {
    Month,
    Week,
}

impl Window {
    /// The rolling window alerts are scaled to: calendar months count as 30d, weeks as 7d.
    pub fn rolling_equivalent(&self) -> Duration {
        match self {
            Window::Rolling(d) => *d,
            Window::Calendar {
                period: CalendarPeriod::Month,
                ..
            } => Duration::from_days(30),
            Window::Calendar {
                period: CalendarPeriod::Week,
                ..
            } => Duration::from_days(7),
        }
    }

    /// The calendar period `now` falls in, as [start, end): months from the 1st, weeks from
    /// Monday, both at midnight in the SLO's time zone (so a period can be 23 or 25 hours off
    /// a whole number of days across a DST change). `None` for rolling windows.
    pub fn period(&self, now: jiff::Timestamp) -> Option<(jiff::Timestamp, jiff::Timestamp)> {
        let Window::Calendar { period, time_zone } = self else {
            return None;
        };
        let tz = jiff::tz::TimeZone::get(time_zone).ok()?;
        let today = now.to_zoned(tz.clone()).date();
        let (first, next) = match period {
            CalendarPeriod::Month => {
                let first = today.first_of_month();
                (first, first.checked_add(jiff::Span::new().months(1)).ok()?)
            }
            CalendarPeriod::Week => {
                let back = i64::from(today.weekday().to_monday_zero_offset());
                let first = today.checked_sub(jiff::Span::new().days(back)).ok()?;
                (first, first.checked_add(jiff::Span::new().days(7)).ok()?)
            }
        };
        let start = first.to_zoned(tz.clone()).ok()?.timestamp();
        let end = next.to_zoned(tz).ok()?.timestamp();
        Some((start, end))
    }
}

/// How the budget is counted.
#[derive(Debug, Clone, PartialEq)]
pub enum BudgetingMethod {
    Occurrences,
    /// A slice is good when its own ratio of good events is at least `objective`.
    Timeslices {
        slice: Duration,
        objective: Percent,
    },
}

/// What is measured.
#[derive(Debug, Clone, PartialEq)]
pub enum Indicator {
    Ratio {
        bad: BadEvents,
        total: Selector,
        group_by: Vec<String>,
    },
    Latency {
        /// The histogram's base name and matchers (without `_bucket`).
        histogram: Selector,
        threshold: f64,
        group_by: Vec<String>,
    },
    /// A native histogram read with `histogram_fraction` (Prometheus 3 or later).
    NativeLatency {
        /// The native histogram's selector (its one series per label set, no suffix).
        histogram: Selector,
        threshold: f64,
        group_by: Vec<String>,
    },
    Gauge {
        metric: Selector,
        group_by: Vec<String>,
    },
    Query {
        /// PromQL with the `$window` placeholder, as printed from its parsed expression.
        error_ratio: String,
    },
}

impl Indicator {
    /// Labels that get a budget of their own.
    pub fn group_by(&self) -> &[String] {
        match self {
            Indicator::Ratio { group_by, .. }
            | Indicator::Latency { group_by, .. }
            | Indicator::NativeLatency { group_by, .. }
            | Indicator::Gauge { group_by, .. } => group_by,
            Indicator::Query { .. } => &[],
        }
    }

    /// True for indicators only Prometheus 3 or later evaluates (native histograms).
    pub fn needs_prometheus_3(&self) -> bool {
        matches!(self, Indicator::NativeLatency { .. })
    }
}

/// How failed events are counted in a ratio indicator.
#[derive(Debug, Clone, PartialEq)]
pub enum BadEvents {
    /// A counter of failures.
    Errors(Selector),
    /// A counter of successes: failures are `total - good`.
    Good(Selector),
}

/// The alerts to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct Alerting {
    /// Alert name prefix.
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// `None` when the tier (or all alerting) is disabled.
    pub page: Option<AlertTier>,
    pub ticket: Option<AlertTier>,
    pub absent: Option<AbsentAlert>,
}

/// Labels and annotations of one burn-rate tier, merged over the common ones.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertTier {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

/// The alert on vanished series.
#[derive(Debug, Clone, PartialEq)]
pub struct AbsentAlert {
    pub for_: Duration,
}

/// The error budget policy.
#[derive(Debug, Clone, PartialEq)]
pub struct RollbackPolicy {
    /// Trigger when the remaining budget, in percent, is below this.
    pub budget_remaining_below: Percent,
    /// Also trigger when the burn rate over a window exceeds a factor.
    pub burn_rate_above: Option<BurnRateTrigger>,
    /// Clear only when the remaining budget is back at or above this, in percent.
    pub recover_above: Percent,
    pub targets: Vec<Target>,
    pub abort_rollouts: bool,
    pub analysis_template: bool,
    pub dry_run: bool,
}

/// Hysteresis when `recoverAbove` is not given: this many points above the trigger.
pub(crate) const DEFAULT_RECOVERY_MARGIN: u64 = 10;

impl RollbackPolicy {
    /// The defaults of a `rollback` section without targets: what decides BudgetExhausted for
    /// SLOs that only observe.
    pub fn observe_only() -> Self {
        RollbackPolicy {
            budget_remaining_below: Percent::ZERO,
            burn_rate_above: None,
            recover_above: Percent::whole(DEFAULT_RECOVERY_MARGIN),
            targets: vec![],
            abort_rollouts: false,
            analysis_template: false,
            dry_run: false,
        }
    }
}

/// A burn-rate trigger.
#[derive(Debug, Clone, PartialEq)]
pub struct BurnRateTrigger {
    pub window: Duration,
    pub factor: f64,
}

/// A workload in the SLO's namespace.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Target {
    pub kind: TargetKind,
    pub name: String,
}
