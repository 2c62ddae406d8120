//! The calendar read: the 5m counts summed since a period start, for every SLO whose period
//! started at the same instant, in one query.

use crate::small_map::SmallMap;
use std::collections::BTreeMap;

use k8s_openapi::jiff::Timestamp;

use super::answer::Sample;
use super::scope::ReadingScope;
use crate::model::Duration;
use crate::rules::names;
use crate::rules::windows::{self, COUNT_STEP};

/// Tells the sums of the calendar query apart.
pub(super) const AMOUNT_LABEL: &str = "plimsoll_amount";

/// One SLO of a period query: its namespace and name, and for timeslice SLOs the slice length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    pub slice: Option<Duration>,
}

/// One query for every SLO whose calendar period started at `start`, evaluated as of `now`: the
/// 5m error and total counts of the period so far (or, for timeslices, the share of bad slices).
/// `None` while no count of the period can exist yet (less than half a step after its start).
/// SLOs are picked by name and namespace alternations; pairs that do not exist together are
/// dropped by the caller's lookup, and label sets that are not an SLO's own by [`own`].
///
/// The counts lie on their step's grid (`rules::windows::on_grid`): the count for the interval
/// (g - step, g] is written at g + o, o being the group's evaluation offset, below a step. The
/// sum is a subquery on that grid, each step s reading the count written in the step before s
/// (`windows::newest_in_step`, `offset 1ms`): the one for (s - 2 step, s - step], whatever o and
/// the server's lookback, or nothing while it is not written yet. Its steps run from 2 steps
/// after the start (the period's first interval) to a step after `now` (the newest count, once
/// written); its range starts between two grid points, so Prometheus 2's closed and 3's
/// left-open ranges hold the same steps. `@` pins it to `now`, whatever the server's clock.
pub fn period_query(
    members: &[Member<'_>],
    start: Timestamp,
    now: Timestamp,
    scope: &ReadingScope,
) -> Option<String> {
    let mut parts = Vec::new();
    let counted: Vec<&Member> = members.iter().filter(|m| m.slice.is_none()).collect();
    if let Some(range) = GridRange::of(start, now, COUNT_STEP)
        && !counted.is_empty()
    {
        let selector = selector(&counted, scope);
        for (record, amount) in [(names::ERRORS_5M, "errors"), (names::TOTAL_5M, "total")] {
            parts.push(tagged(
                format!(
                    "sum_over_time({})",
                    range.over(&format!("{record}{selector}"))
                ),
                amount,
            ));
        }
    }
    let mut slices: Vec<Duration> = members.iter().filter_map(|m| m.slice).collect();
    slices.sort();
    slices.dedup();
    for slice in slices {
        let sliced: Vec<&Member> = members.iter().filter(|m| m.slice == Some(slice)).collect();
        if let Some(range) = GridRange::of(start, now, slice) {
            let selector = selector(&sliced, scope);
            parts.push(tagged(
                format!(
                    "1 - avg_over_time({})",
                    range.over(&format!("{}{selector}", names::SLICE_GOOD))
                ),
                "bad_share",
            ));
        }
    }
    (!parts.is_empty()).then(|| parts.join(" or "))
}

/// The steps of a period sum: see [`period_query`].
struct GridRange {
    step: Duration,
    /// The subquery's range, in milliseconds.
    range_ms: i64,
    /// Its end, `now` plus a step, in milliseconds since the epoch.
    end_ms: i64,
}

impl GridRange {
    fn of(start: Timestamp, now: Timestamp, step: Duration) -> Option<GridRange> {
        let step_ms = step.as_secs() as i64 * 1000;
        let end_ms = now.as_millisecond() + step_ms;
        let range_ms = end_ms - (start.as_millisecond() + step_ms + step_ms / 2);
        (range_ms > 0).then_some(GridRange {
            step,
            range_ms,
            end_ms,
        })
    }

    fn over(&self, series: &str) -> String {
        format!(
            "{}[{}ms:{}] @ {}.{:03}",
            windows::newest_in_step(series, self.step, " offset 1ms"),
            self.range_ms,
            self.step,
            self.end_ms.div_euclid(1000),
            self.end_ms.rem_euclid(1000)
        )
    }
}

fn selector(members: &[&Member], scope: &ReadingScope) -> String {
    let alternation = |values: Vec<&str>| {
        let mut v: Vec<String> = values.into_iter().map(regex_escape).collect();
        v.sort();
        v.dedup();
        crate::model::promql::quote(&v.join("|"))
    };
    format!(
        "{{{}=~{},{}=~{}{}}}",
        names::LABEL_SLO,
        alternation(members.iter().map(|m| m.name).collect()),
        names::LABEL_NAMESPACE,
        alternation(members.iter().map(|m| m.namespace).collect()),
        scope.suffix(),
    )
}

fn tagged(expr: String, amount: &str) -> String {
    format!(r#"label_replace({expr}, "{AMOUNT_LABEL}", "{amount}", "", "")"#)
}

/// `text` matched literally inside a regular expression.
pub fn regex_escape(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let special = r"\.+*?()|[]{}^$".contains(c);
            special.then_some('\\').into_iter().chain([c])
        })
        .collect()
}

/// Errors and total summed since a period start.
type Sums = (Option<f64>, Option<f64>);

/// The error ratio since the period start, per series label set (without the amount label):
/// errors over total (0 without traffic), or the share of bad slices.
pub fn period_ratios(samples: &[Sample]) -> Vec<(SmallMap<String, String>, f64)> {
    let mut sums: BTreeMap<SmallMap<String, String>, Sums> = BTreeMap::new();
    let mut out = Vec::new();
    for sample in samples {
        let Some(amount) = sample.labels.get(AMOUNT_LABEL) else {
            continue;
        };
        let mut labels = sample.labels.clone();
        labels.remove(AMOUNT_LABEL);
        match amount.as_str() {
            "errors" => sums.entry(labels).or_default().0 = Some(sample.value),
            "total" => sums.entry(labels).or_default().1 = Some(sample.value),
            "bad_share" => out.push((labels, sample.value)),
            _ => {}
        }
    }
    for (labels, sums) in sums {
        match sums {
            (Some(_), Some(0.0)) => out.push((labels, 0.0)),
            (Some(errors), Some(total)) => out.push((labels, errors / total)),
            _ => {}
        }
    }
    out
}
