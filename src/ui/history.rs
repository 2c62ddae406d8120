//! What the charts draw, read from Prometheus: the SLOs' recorded 5m counts summed into buckets
//! by range queries (two per distinct span, whatever the number of SLOs), the alerts that fire,
//! and per-group budgets. Only series with the SLO's own identity are used.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;

use crate::model::promql::quote;
use crate::prometheus::period::regex_escape;
use crate::prometheus::{Client, Error, ReadingScope, Series};
use crate::rules::names;

/// The SLO a series must belong to: namespace, name and, for the operator's SLOs, the UID.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Owner {
    pub namespace: String,
    pub name: String,
    pub uid: Option<String>,
}

impl Owner {
    /// Whether a series' labels are this SLO's own: a series with another UID, or with a UID
    /// when the SLO has none, is a predecessor's or someone else's.
    fn owns(&self, labels: &BTreeMap<String, String>) -> bool {
        labels.get(names::LABEL_NAMESPACE) == Some(&self.namespace)
            && labels.get(names::LABEL_SLO) == Some(&self.name)
            && labels.get(names::LABEL_UID) == self.uid.as_ref()
    }
}

/// The `seconds` before `to` in `count` buckets: the last `count - 1` are `step` seconds long and
/// end at `to - (count - 1 - i) * step`; the first takes what is left ([`Span::first`]), so the
/// buckets cover exactly the window, no more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Span {
    pub to: u64,
    pub seconds: u64,
    pub step: u64,
    pub count: u64,
    /// The window's first instant belongs to it ([`Span::including_start`]).
    pub closed: bool,
}

impl Span {
    /// About `points` buckets over the `seconds` before `to`, each a whole number of 5 minutes
    /// (the counts' resolution).
    pub fn over(seconds: u64, to: u64, points: u64) -> Span {
        let seconds = seconds.max(1);
        let step = seconds.div_ceil(points.max(1)).div_ceil(300).max(1) * 300;
        Span {
            to,
            seconds,
            step,
            count: seconds.div_ceil(step).max(1),
            closed: false,
        }
    }

    /// The span with its first instant, `to - seconds`, inside it: a calendar period's first
    /// count is written a step after the period starts plus the rule group's evaluation offset,
    /// and that offset is 0 where the evaluations are aligned to the interval (vmalert's
    /// default), so the count lands on the span's start ([`crate::ui::window_seconds`]).
    pub fn including_start(self) -> Span {
        Span {
            closed: true,
            ..self
        }
    }

    /// The first bucket's length: a whole step when the step divides the window.
    pub fn first(&self) -> u64 {
        self.seconds - (self.count - 1) * self.step
    }

    /// When the first bucket ends.
    pub fn first_end(&self) -> u64 {
        self.to - (self.count - 1) * self.step
    }
}

/// Errors and totals per bucket: `(bucket end, errors, total)`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Spend {
    pub buckets: Vec<(f64, f64, f64)>,
}

impl Spend {
    /// Budget left, in percent, at each bucket end: what was spent since the span's start over
    /// the budget of the span's whole traffic. Its last point is the status' remaining budget;
    /// an even spend is the straight line from 100% at the start to it.
    pub fn burn_down(&self, budget_ratio: f64) -> Vec<(f64, f64)> {
        let total: f64 = self.buckets.iter().map(|b| b.2).sum();
        let allowed = budget_ratio * total;
        let mut spent = 0.0;
        self.buckets
            .iter()
            .map(|&(t, errors, _)| {
                spent += errors;
                let left = if allowed > 0.0 {
                    100.0 * (1.0 - spent / allowed)
                } else {
                    100.0
                };
                (t, left)
            })
            .collect()
    }

    /// The error ratio within each bucket (buckets without traffic are left out).
    pub fn error_ratios(&self) -> Vec<(f64, f64)> {
        self.buckets
            .iter()
            .filter(|b| b.2 > 0.0)
            .map(|&(t, errors, total)| (t, errors / total))
            .collect()
    }
}

/// Every owner's spend over `span`, from two range queries. Owners without series get none.
pub async fn spend(
    client: &Client,
    scope: &ReadingScope,
    owners: &[Owner],
    span: Span,
) -> Result<HashMap<Owner, Spend>, Error> {
    if owners.is_empty() {
        return Ok(HashMap::new());
    }
    // Errors and totals summed over `length` milliseconds before each step from `start` to
    // `end`.
    let sums = |length: u64, start: u64, end: u64| {
        let (errors, total) = spend_queries(owners, length, scope);
        let step = std::time::Duration::from_secs(span.step);
        async move {
            futures::try_join!(
                client.query_range(&errors, start, end, step),
                client.query_range(&total, start, end, step)
            )
        }
    };
    let first_end = span.first_end();
    let (mut errors, mut total) = sums(span.step * 1000, first_end, span.to).await?;
    if span.first() < span.step || span.closed {
        // The first bucket again, over only the part of it inside the window (and its first
        // millisecond, when that belongs to it).
        let first = span.first() * 1000 + u64::from(span.closed);
        let (first_errors, first_total) = sums(first, first_end, first_end).await?;
        replace_first(&mut errors, &first_errors, first_end);
        replace_first(&mut total, &first_total, first_end);
    }
    let mut out = HashMap::new();
    for owner in owners {
        let of = |series: &[Series]| -> BTreeMap<u64, f64> {
            series
                .iter()
                .filter(|s| owner.owns(&s.labels))
                .flat_map(|s| s.samples.iter().map(|&(t, v)| (t.round() as u64, v)))
                .collect()
        };
        let (errors, total) = (of(&errors), of(&total));
        if total.is_empty() {
            continue;
        }
        let buckets = total
            .iter()
            .map(|(&t, &n)| (t as f64, errors.get(&t).copied().unwrap_or(0.0), n))
            .collect();
        out.insert(owner.clone(), Spend { buckets });
    }
    Ok(out)
}

/// Puts the clipped first bucket's values in place of the whole-step ones at `end`.
fn replace_first(series: &mut Vec<Series>, first: &[Series], end: u64) {
    for s in series.iter_mut() {
        s.samples.retain(|&(t, _)| t.round() as u64 != end);
    }
    for f in first {
        match series.iter_mut().find(|s| s.labels == f.labels) {
            Some(s) => s.samples.extend(f.samples.iter().copied()),
            None => series.push(f.clone()),
        }
    }
    for s in series.iter_mut() {
        s.samples.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
}

/// The errors and totals per bucket of `step_ms` milliseconds for the owners' namespaces and
/// names (a superset: the caller keeps each owner's own series): the counts written in
/// `(t - step, t]` at each bucket end t ([`within_step`]), so a count on a bucket's edge is
/// counted in one bucket only. Timeslice SLOs count bad and all slices instead.
pub fn spend_queries(owners: &[Owner], step_ms: u64, scope: &ReadingScope) -> (String, String) {
    let alternation = |values: Vec<&str>| {
        let mut v: Vec<String> = values.into_iter().map(regex_escape).collect();
        v.sort();
        v.dedup();
        quote(&v.join("|"))
    };
    let selector = format!(
        "{{{}=~{},{}=~{}{}}}",
        names::LABEL_SLO,
        alternation(owners.iter().map(|o| o.name.as_str()).collect()),
        names::LABEL_NAMESPACE,
        alternation(owners.iter().map(|o| o.namespace.as_str()).collect()),
        scope.suffix(),
    );
    let by = format!(
        "sum by ({}, {}, {})",
        names::LABEL_NAMESPACE,
        names::LABEL_SLO,
        names::LABEL_UID
    );
    let within = |function: &str, record: &str| {
        within_step(function, &format!("{record}{selector}"), step_ms)
    };
    let errors = format!(
        "{by} ({}) or {by} ({} - {})",
        within("sum_over_time", names::ERRORS_5M),
        within("count_over_time", names::SLICE_GOOD),
        within("sum_over_time", names::SLICE_GOOD),
    );
    let total = format!(
        "{by} ({}) or {by} ({})",
        within("sum_over_time", names::TOTAL_5M),
        within("count_over_time", names::SLICE_GOOD),
    );
    (errors, total)
}

/// `function` (`sum_over_time`, `count_over_time`) of the samples of `series` in `(t - step, t]`
/// on Prometheus 2 and 3 alike. Prometheus 2's ranges include their start and 3's do not, so
/// neither `[step]` nor `[step - 1ms]` is right on both: measured, a count written exactly at a
/// bucket's start was counted in two buckets by 2.42 with `[step]`, and one written a millisecond
/// after it in none by 3.16 with `[step - 1ms]` (groups whose offset is 1 ms past a whole second).
/// So: the range a millisecond longer than the step, less its first millisecond, `[1ms] offset
/// step`. Both ranges end at the same kind of edge, so what they hold differs by the same
/// samples in either version: `(t - step, t]`. Where that millisecond holds no sample the
/// difference has no series (nearly always): then the longer range alone is the answer.
fn within_step(function: &str, series: &str, step_ms: u64) -> String {
    let longer = format!("{function}({series}[{}ms])", step_ms + 1);
    format!("({longer} - {function}({series}[1ms] offset {step_ms}ms) or {longer})")
}

/// An alert as Prometheus' alerts API gives it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FiringAlert {
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// `pending` or `firing`.
    pub state: String,
    #[serde(default)]
    pub active_at: Option<String>,
}

/// The owner's alerts that are pending or firing now: Prometheus' alerts API; with a reading
/// scope, the `ALERTS` series with the scope's matchers instead (behind Thanos or Mimir the
/// scope's labels are on the series; the alerts API would also list other clusters' alerts).
pub async fn alerts(
    client: &Client,
    scope: &ReadingScope,
    owner: &Owner,
) -> Result<Vec<FiringAlert>, Error> {
    #[derive(Deserialize)]
    struct Alerts {
        alerts: Vec<FiringAlert>,
    }
    let all = if scope.matchers().is_empty() {
        let data = client.get_data("alerts").await?;
        let all: Alerts = serde_json::from_value(data)
            .map_err(|e| Error::Decode(format!("an alerts answer that does not decode: {e}")))?;
        all.alerts
    } else {
        let query = format!(
            "ALERTS{{{}={},{}={}{}}}",
            names::LABEL_SLO,
            quote(&owner.name),
            names::LABEL_NAMESPACE,
            quote(&owner.namespace),
            scope.suffix()
        );
        client
            .query(&query)
            .await?
            .into_iter()
            .map(|s| {
                let labels: BTreeMap<String, String> = s.labels.into_iter().collect();
                FiringAlert {
                    state: labels.get("alertstate").cloned().unwrap_or_default(),
                    labels,
                    annotations: BTreeMap::new(),
                    active_at: None,
                }
            })
            .collect()
    };
    // The absent alert carries namespace and name only: it fires when the series are gone.
    Ok(all
        .into_iter()
        .filter(|a| {
            a.labels.get(names::LABEL_NAMESPACE) == Some(&owner.namespace)
                && a.labels.get(names::LABEL_SLO) == Some(&owner.name)
                && a.labels
                    .get(names::LABEL_UID)
                    .is_none_or(|u| Some(u) == owner.uid.as_ref())
        })
        .collect())
}

/// Each group's budget left, in percent, worst first (`groupBy` SLOs).
pub async fn groups(
    client: &Client,
    scope: &ReadingScope,
    owner: &Owner,
    group_by: &[String],
) -> Result<Vec<(BTreeMap<String, String>, f64)>, Error> {
    let query = format!(
        "{}{{{}={},{}={}{}}}",
        names::BUDGET_REMAINING,
        names::LABEL_SLO,
        quote(&owner.name),
        names::LABEL_NAMESPACE,
        quote(&owner.namespace),
        scope.suffix()
    );
    Ok(worst_first(&client.query(&query).await?, owner, group_by))
}

/// The owner's groups from budget-left samples, in percent, least left first.
fn worst_first(
    samples: &[crate::prometheus::Sample],
    owner: &Owner,
    group_by: &[String],
) -> Vec<(BTreeMap<String, String>, f64)> {
    let mut out: Vec<(BTreeMap<String, String>, f64)> = samples
        .iter()
        .filter(|s| s.labels.get(names::LABEL_UID) == owner.uid.as_ref())
        .map(|s| {
            let labels = group_by
                .iter()
                .map(|l| (l.clone(), s.labels.get(l).cloned().unwrap_or_default()))
                .collect();
            (labels, s.value * 100.0)
        })
        .collect();
    out.sort_by(|a, b| a.1.total_cmp(&b.1));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_are_whole_five_minutes_and_cover_exactly_the_window() {
        let month = Span::over(30 * 86_400, 1_000_000_000, 120);
        assert_eq!(
            (month.step, month.count, month.first()),
            (21_600, 120, 21_600)
        );
        // 28 days in 119 buckets of 5h40m: the first is shorter, so no bucket reaches before.
        let four_weeks = Span::over(28 * 86_400, 1_000_000_000, 120);
        assert_eq!((four_weeks.step, four_weeks.count), (20_400, 119));
        assert_eq!(
            four_weeks.first() + (four_weeks.count - 1) * four_weeks.step,
            28 * 86_400
        );
        assert!(four_weeks.first() > 0 && four_weeks.first() < four_weeks.step);
        // A calendar month so far: any number of seconds.
        let so_far = Span::over(1_234_567, 1_000_000_000, 120);
        assert_eq!(so_far.step % 300, 0);
        assert_eq!(so_far.first() + (so_far.count - 1) * so_far.step, 1_234_567);
        assert_eq!(
            so_far.first_end(),
            1_000_000_000 - (so_far.count - 1) * so_far.step
        );
        let short = Span::over(60, 1000, 10);
        assert_eq!((short.step, short.count, short.first()), (300, 1, 60));
    }

    #[test]
    fn the_clipped_first_bucket_replaces_the_whole_one() {
        let labels = BTreeMap::from([("slo".to_string(), "a".to_string())]);
        let mut series = vec![Series {
            labels: labels.clone(),
            samples: vec![(100.0, 50.0), (200.0, 7.0)],
        }];
        let first = vec![Series {
            labels,
            samples: vec![(100.0, 20.0)],
        }];
        replace_first(&mut series, &first, 100);
        assert_eq!(series[0].samples, [(100.0, 20.0), (200.0, 7.0)]);
    }

    #[test]
    fn groups_come_least_budget_first_and_only_the_owners() {
        let owner = Owner {
            namespace: "shop".into(),
            name: "a".into(),
            uid: Some("u1".into()),
        };
        let sample = |route: &str, uid: &str, value: f64| crate::prometheus::Sample {
            labels: [("route", route), (names::LABEL_UID, uid)]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            value,
        };
        let samples = [
            sample("/list", "u1", 0.8),
            sample("/pay", "u1", -0.12),
            sample("/old", "u0", -5.0),
        ];
        let groups = worst_first(&samples, &owner, &["route".to_string()]);
        let routes: Vec<&str> = groups.iter().map(|(l, _)| l["route"].as_str()).collect();
        assert_eq!(
            routes,
            ["/pay", "/list"],
            "a predecessor's group is not shown"
        );
        assert!((groups[0].1 + 12.0).abs() < 1e-9);
    }

    #[test]
    fn the_burn_down_ends_at_the_windows_budget() {
        // 1,000,000 requests, 0.1% budget = 1,000 errors allowed; 300 spent.
        let spend = Spend {
            buckets: vec![(1.0, 100.0, 500_000.0), (2.0, 200.0, 500_000.0)],
        };
        let left = spend.burn_down(0.001);
        assert!((left[0].1 - 90.0).abs() < 1e-9 && (left[1].1 - 70.0).abs() < 1e-9);
        assert_eq!(spend.error_ratios(), [(1.0, 0.0002), (2.0, 0.0004)]);
        assert_eq!(Spend::default().burn_down(0.001), []);
    }

    #[test]
    fn only_the_owners_own_series_count() {
        let owner = Owner {
            namespace: "shop".into(),
            name: "a".into(),
            uid: None,
        };
        let mut labels = BTreeMap::from([
            (names::LABEL_NAMESPACE.to_string(), "shop".to_string()),
            (names::LABEL_SLO.to_string(), "a".to_string()),
        ]);
        assert!(owner.owns(&labels));
        labels.insert(names::LABEL_UID.to_string(), "u1".into());
        assert!(!owner.owns(&labels), "a UID the SLO does not have");
        let (errors, _) = spend_queries(&[owner], 300_000, &ReadingScope::default());
        assert!(errors.contains("[300001ms]"), "{errors}");
        assert!(errors.contains("[1ms] offset 300000ms"), "{errors}");
        assert!(errors.contains(r#"slo=~"a""#), "{errors}");
    }
}
