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

/// Buckets of `step` seconds whose last one ends at `to`: bucket `i` counts what happened in
/// `(to - (count - i) * step, to - (count - 1 - i) * step]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub to: u64,
    pub step: u64,
    pub count: u64,
}

impl Span {
    /// About `points` buckets over the `seconds` before `to`, each a whole number of 5 minutes
    /// (the counts' resolution).
    pub fn over(seconds: u64, to: u64, points: u64) -> Span {
        let step = seconds.div_ceil(points.max(1)).div_ceil(300).max(1) * 300;
        Span {
            to,
            step,
            count: seconds.div_ceil(step).max(1),
        }
    }

    pub fn from(&self) -> u64 {
        self.to.saturating_sub(self.count * self.step)
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
    let (errors_query, total_query) = spend_queries(owners, span.step, scope);
    let range = |query: String| async move {
        let start = span.to - (span.count - 1) * span.step;
        let step = std::time::Duration::from_secs(span.step);
        client.query_range(&query, start, span.to, step).await
    };
    let (errors, total) = futures::try_join!(range(errors_query), range(total_query))?;
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

/// The errors and totals per bucket of `step` seconds for the owners' namespaces and names (a
/// superset: the caller keeps each owner's own series). The range is a millisecond short of
/// the step so a count on a bucket's edge is not counted in two buckets (2.42's ranges include
/// both ends). Timeslice SLOs count bad and all slices instead.
pub fn spend_queries(owners: &[Owner], step: u64, scope: &ReadingScope) -> (String, String) {
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
    let range = format!("[{}ms]", step * 1000 - 1);
    let by = format!(
        "sum by ({}, {}, {})",
        names::LABEL_NAMESPACE,
        names::LABEL_SLO,
        names::LABEL_UID
    );
    let slices = format!("{}{selector}{range}", names::SLICE_GOOD);
    let errors = format!(
        "{by} (sum_over_time({}{selector}{range})) or {by} (count_over_time({slices}) - \
         sum_over_time({slices}))",
        names::ERRORS_5M
    );
    let total = format!(
        "{by} (sum_over_time({}{selector}{range})) or {by} (count_over_time({slices}))",
        names::TOTAL_5M
    );
    (errors, total)
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

/// The owner's alerts that are pending or firing now (`GET /api/v1/alerts`).
pub async fn alerts(client: &Client, owner: &Owner) -> Result<Vec<FiringAlert>, Error> {
    #[derive(Deserialize)]
    struct Alerts {
        alerts: Vec<FiringAlert>,
    }
    let data = client.get_data("alerts").await?;
    let all: Alerts = serde_json::from_value(data)
        .map_err(|e| Error::Decode(format!("an alerts answer that does not decode: {e}")))?;
    // The absent alert carries namespace and name only: it fires when the series are gone.
    Ok(all
        .alerts
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
    let mut out: Vec<(BTreeMap<String, String>, f64)> = client
        .query(&query)
        .await?
        .into_iter()
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
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_are_whole_five_minutes_and_cover_the_window() {
        let month = Span::over(30 * 86_400, 1_000_000_000, 120);
        assert_eq!((month.step, month.count), (21_600, 120));
        let odd = Span::over(7 * 86_400 + 60, 1_000_000_000, 100);
        assert_eq!(odd.step % 300, 0);
        assert!(odd.count * odd.step >= 7 * 86_400 + 60);
        assert_eq!(Span::over(60, 1000, 10).step, 300);
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
        let (errors, _) = spend_queries(&[owner], 300, &ReadingScope::default());
        assert!(errors.contains("[299999ms]"), "{errors}");
        assert!(errors.contains(r#"slo=~"a""#), "{errors}");
    }
}
