//! The calendar read: the 5m counts summed since a period start, for every SLO whose period
//! started at the same instant, in one query.

use crate::small_map::SmallMap;
use std::collections::BTreeMap;

use super::answer::Sample;
use super::scope::ReadingScope;
use crate::rules::names;

/// Tells the sums of the calendar query apart.
pub(super) const AMOUNT_LABEL: &str = "plimsoll_amount";

/// One query for every SLO whose calendar period started at the same instant, `seconds` ago: the
/// 5m error and total counts summed since then (or, for timeslices, the share of bad slices).
/// SLOs are picked by name and namespace alternations; pairs that do not exist together are
/// dropped by the caller's lookup, and label sets that are not an SLO's own by [`own`].
pub fn period_query(slos: &[(&str, &str)], seconds: u64, scope: &ReadingScope) -> String {
    let alternation = |values: Vec<&str>| {
        let mut v: Vec<String> = values.into_iter().map(regex_escape).collect();
        v.sort();
        v.dedup();
        crate::model::promql::quote(&v.join("|"))
    };
    let selector = format!(
        "{{{}=~{},{}=~{}{}}}",
        names::LABEL_SLO,
        alternation(slos.iter().map(|(_, name)| *name).collect()),
        names::LABEL_NAMESPACE,
        alternation(slos.iter().map(|(ns, _)| *ns).collect()),
        scope.suffix(),
    );
    let tagged = |expr: String, amount: &str| {
        format!(r#"label_replace({expr}, "{AMOUNT_LABEL}", "{amount}", "", "")"#)
    };
    [
        tagged(
            format!("sum_over_time({}{selector}[{seconds}s])", names::ERRORS_5M),
            "errors",
        ),
        tagged(
            format!("sum_over_time({}{selector}[{seconds}s])", names::TOTAL_5M),
            "total",
        ),
        tagged(
            format!(
                "1 - avg_over_time({}{selector}[{seconds}s])",
                names::SLICE_GOOD
            ),
            "bad_share",
        ),
    ]
    .join(" or ")
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
