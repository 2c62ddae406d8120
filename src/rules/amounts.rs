//! PromQL for "how many events failed, out of how many" per indicator kind, over a range of raw
//! series. Everything else (ratios, counts, slices) is built from these two expressions.

use crate::model::promql::WINDOW_PLACEHOLDER;
use crate::model::{BadEvents, Duration, Indicator, LabelMatcher, MatchKind, Selector};

/// Failed and total events over one range, aggregated to the SLO's groups.
#[derive(Debug, Clone, PartialEq)]
pub struct Amounts {
    pub errors: String,
    pub total: String,
}

/// How counters are read: `rate` (per second) for ratios, `increase` (events) for counts. The
/// ratio is the same either way; counts are summed, so they must be events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    Rate,
    Increase,
    /// The increase over the last whole range on the range's grid (multiples of the range since
    /// the epoch), whenever the rule is evaluated: see [`super::windows::on_grid`].
    IncreaseOnGrid,
}

/// The amounts for counter, histogram and gauge indicators; `None` for free queries, which give
/// a ratio and nothing else.
pub fn amounts(indicator: &Indicator, range: Duration, reading: Reading) -> Option<Amounts> {
    let total = total(indicator, range, reading)?;
    Some(Amounts {
        errors: errors(indicator, range, reading, &total)?,
        total,
    })
}

/// The total events over a raw range, aggregated to the SLO's groups.
pub fn total(indicator: &Indicator, range: Duration, reading: Reading) -> Option<String> {
    match indicator {
        Indicator::Ratio {
            total, group_by, ..
        } => Some(counter(total, range, reading, group_by)),
        Indicator::Latency {
            histogram,
            group_by,
            ..
        } => {
            let count = histogram.with_metric(format!("{}_count", histogram.metric));
            Some(counter(&count, range, reading, group_by))
        }
        Indicator::NativeLatency {
            histogram,
            group_by,
            ..
        } => Some(read_as(
            reading,
            range,
            format!(
                "histogram_count({})",
                native_sum(histogram, range, reading, group_by)
            ),
        )),
        Indicator::Gauge { metric, group_by } => Some(read_as(
            reading,
            range,
            aggregate(group_by, &format!("count_over_time({metric}[{range}])")),
        )),
        Indicator::Query { .. } => None,
    }
}

/// The failed events over a raw range, given the total over the same range as an expression with
/// the groups' labels: the raw total, or a recorded one, so the raw total is read once.
pub fn errors(
    indicator: &Indicator,
    range: Duration,
    reading: Reading,
    total: &str,
) -> Option<String> {
    match indicator {
        Indicator::Ratio { bad, group_by, .. } => Some(match bad {
            // No error series at all means no errors, not no data.
            BadEvents::Errors(errors) => format!(
                "({} or 0 * {total})",
                counter(errors, range, reading, group_by)
            ),
            BadEvents::Good(good) => format!(
                "({total} - ({} or 0 * {total}))",
                counter(good, range, reading, group_by)
            ),
        }),
        Indicator::Latency {
            histogram,
            threshold,
            group_by,
        } => {
            // A missing bucket gives no data rather than a perfect score: the threshold must be a
            // bucket bound, and the absent alert watches for it.
            let fast = counter(le_bucket(histogram, *threshold), range, reading, group_by);
            Some(format!("({total} - {fast})"))
        }
        Indicator::NativeLatency {
            histogram,
            threshold,
            group_by,
        } => {
            // The share of the group's events above the threshold, times the total. Exact when
            // the threshold is a bucket boundary (histogram_fraction then adds whole buckets; see
            // native_sum); NaN without events (count 0), which `>= 0` drops so that no traffic
            // counts 0 errors, never NaN, which would poison every sum of counts over it.
            let slow = read_as(
                reading,
                range,
                format!(
                    "(histogram_fraction({threshold}, +Inf, {}) >= 0)",
                    native_sum(histogram, range, reading, group_by)
                ),
            );
            Some(format!("({slow} * {total} or 0 * {total})"))
        }
        Indicator::Gauge { metric, group_by } => {
            let good = aggregate(group_by, &format!("sum_over_time({metric}[{range}])"));
            Some(format!("({total} - {})", read_as(reading, range, good)))
        }
        Indicator::Query { .. } => None,
    }
}

/// A recorded series of this SLO as an expression with the groups' labels only, the shape the
/// raw aggregations have (one sample per group, so the `sum` costs nothing).
pub fn regrouped(indicator: &Indicator, recorded: &str) -> String {
    aggregate(indicator.group_by(), recorded)
}

/// The error ratio over a raw range. Zero traffic gives 0 (nothing failed), never NaN; missing
/// error amounts with traffic give no series (no data), never 0.
pub fn ratio(indicator: &Indicator, range: Duration) -> String {
    match (indicator, amounts(indicator, range, Reading::Rate)) {
        (Indicator::Query { error_ratio }, _) => {
            format!(
                "({})",
                error_ratio.replace(WINDOW_PLACEHOLDER, &range.to_string())
            )
        }
        (_, Some(a)) => guarded_ratio(&a.errors, &a.total),
        (_, None) => String::new(),
    }
}

/// `errors / total`, 0 where total is 0.
pub fn guarded_ratio(errors: &str, total: &str) -> String {
    format!("{errors} / ({total} > 0) or ({total} == 0)")
}

/// The series whose absence means the SLI cannot be computed: the total events (the error series
/// may legitimately not exist) or, for latency, the threshold bucket.
pub fn presence(indicator: &Indicator) -> String {
    match indicator {
        Indicator::Ratio { total, .. } => total.to_string(),
        Indicator::Latency {
            histogram,
            threshold,
            ..
        } => le_bucket(histogram, *threshold).to_string(),
        Indicator::NativeLatency { histogram, .. } => histogram.to_string(),
        Indicator::Gauge { metric, .. } => metric.to_string(),
        Indicator::Query { error_ratio } => error_ratio.replace(WINDOW_PLACEHOLDER, "5m"),
    }
}

/// The `le` texts the threshold's bucket selector matches. Prometheus 3 writes integer bounds as
/// `1.0` where older exporters wrote `1`, so integers match both spellings.
pub fn le_spellings(threshold: f64) -> Vec<String> {
    let spelled = threshold.to_string();
    if threshold.fract() == 0.0 && !spelled.contains('e') {
        let decimal = format!("{spelled}.0");
        vec![spelled, decimal]
    } else {
        vec![spelled]
    }
}

/// The histogram's bucket at the threshold, matching every spelling of [`le_spellings`].
pub fn le_bucket(histogram: &Selector, threshold: f64) -> String {
    let bucket = histogram.with_metric(format!("{}_bucket", histogram.metric));
    let le = match le_spellings(threshold).as_slice() {
        [one] => LabelMatcher::new("le", MatchKind::Equal, one.clone()),
        all => LabelMatcher::new("le", MatchKind::Regex, all.join("|").replace('.', "\\.")),
    };
    bucket.with_matcher(le).to_string()
}

/// A native histogram's events over a range, summed to the SLO's groups: one histogram per group.
///
/// Why `histogram_fraction` over this sum, and not the trim operators (`>/`) of later 3.x
/// releases: histogram_fraction is in every Prometheus 3 and documented as stable; at a bucket
/// boundary it adds whole buckets, so `histogram_fraction(t, +Inf, h) * histogram_count(h)` is the
/// exact count of events above `t` (up to one float rounding). Inside a bucket it interpolates
/// (exponentially for the exponential schemas, linearly for custom buckets), which is an
/// estimate: `validate --prometheus-url` refuses such a threshold. The sum of several series (or
/// of a series whose schema changed) is at the coarsest schema among them, so a threshold that is
/// a power of two stays a boundary for every schema from 0 up.
///
/// Counts (`Reading::Increase`) take each series' change since one range ago as histogram
/// subtraction, as [`counter`] does for floats, where the series' count did not fall (a reset),
/// and `increase()` elsewhere.
fn native_sum(
    histogram: &Selector,
    range: Duration,
    reading: Reading,
    group_by: &[String],
) -> String {
    let h = histogram;
    let per_series = match reading {
        Reading::Rate => format!("rate({h}[{range}])"),
        Reading::Increase | Reading::IncreaseOnGrid => format!(
            "(({h} - {h} offset {range}) and (histogram_count({h}) - histogram_count({h} offset \
             {range})) >= 0 or increase({h}[{range}]))"
        ),
    };
    aggregate(group_by, &per_series)
}

fn counter(
    selector: impl std::fmt::Display,
    range: Duration,
    reading: Reading,
    group_by: &[String],
) -> String {
    let per_series = match reading {
        Reading::Rate => format!("rate({selector}[{range}])"),
        // The counter's change since the evaluation one range ago: consecutive counts then add up
        // to exactly the counter's change over a long window. increase() would extrapolate each
        // range to its edges, and the sums drift wherever the rate changes. A reset, or a series
        // without a sample one range ago, has no such change and falls back to increase().
        Reading::Increase | Reading::IncreaseOnGrid => format!(
            "(({selector} - {selector} offset {range}) >= 0 or increase({selector}[{range}]))"
        ),
    };
    read_as(reading, range, aggregate(group_by, &per_series))
}

/// An aggregated amount as `reading` wants it: on the range's grid for [`Reading::IncreaseOnGrid`].
fn read_as(reading: Reading, range: Duration, aggregated: String) -> String {
    match reading {
        Reading::IncreaseOnGrid => super::windows::on_grid(&aggregated, range),
        Reading::Rate | Reading::Increase => aggregated,
    }
}

fn aggregate(group_by: &[String], inner: &str) -> String {
    if group_by.is_empty() {
        format!("sum({inner})")
    } else {
        format!("sum by ({}) ({inner})", group_by.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::promql::parse_selector;

    fn sel(text: &str) -> Selector {
        parse_selector(text).unwrap()
    }

    #[test]
    fn ratio_of_error_and_total_counters() {
        let ind = Indicator::Ratio {
            bad: BadEvents::Errors(sel(r#"req_total{code=~"5.."}"#)),
            total: sel("req_total"),
            group_by: vec!["route".into()],
        };
        let a = amounts(&ind, Duration::from_minutes(5), Reading::Rate).unwrap();
        assert_eq!(a.total, "sum by (route) (rate(req_total[5m]))");
        assert_eq!(
            a.errors,
            r#"(sum by (route) (rate(req_total{code=~"5.."}[5m])) or 0 * sum by (route) (rate(req_total[5m])))"#
        );
        let counts = amounts(&ind, Duration::from_minutes(5), Reading::Increase).unwrap();
        assert_eq!(
            counts.total,
            "sum by (route) (((req_total - req_total offset 5m) >= 0 or increase(req_total[5m])))"
        );
    }

    #[test]
    fn latency_bucket_matches_both_integer_spellings() {
        let h = sel(r#"lat_seconds{job="a"}"#);
        assert_eq!(
            le_bucket(&h, 0.3),
            r#"lat_seconds_bucket{job="a",le="0.3"}"#
        );
        assert_eq!(
            le_bucket(&sel("lat_seconds"), 1.0),
            r#"lat_seconds_bucket{le=~"1|1\\.0"}"#
        );
    }

    #[test]
    fn native_latency_counts_events_above_the_threshold_with_histogram_fraction() {
        let ind = Indicator::NativeLatency {
            histogram: sel(r#"lat_seconds{job="a"}"#),
            threshold: 0.25,
            group_by: vec!["route".into()],
        };
        let a = amounts(&ind, Duration::from_minutes(5), Reading::Rate).unwrap();
        let sum = r#"sum by (route) (rate(lat_seconds{job="a"}[5m]))"#;
        assert_eq!(a.total, format!("histogram_count({sum})"));
        assert_eq!(
            a.errors,
            format!(
                "((histogram_fraction(0.25, +Inf, {sum}) >= 0) * {total} or 0 * {total})",
                total = a.total
            )
        );
        assert_eq!(presence(&ind), r#"lat_seconds{job="a"}"#);
        let counts = amounts(&ind, Duration::from_minutes(5), Reading::Increase).unwrap();
        let h = r#"lat_seconds{job="a"}"#;
        assert_eq!(
            counts.total,
            format!(
                "histogram_count(sum by (route) ((({h} - {h} offset 5m) and \
                 (histogram_count({h}) - histogram_count({h} offset 5m)) >= 0 or \
                 increase({h}[5m]))))"
            )
        );
    }

    #[test]
    fn every_expression_parses() {
        let indicators = [
            Indicator::Ratio {
                bad: BadEvents::Good(sel("ok_total")),
                total: sel("all_total"),
                group_by: vec![],
            },
            Indicator::Latency {
                histogram: sel(r#"lat{job="x"}"#),
                threshold: 2.0,
                group_by: vec!["a".into(), "b".into()],
            },
            Indicator::NativeLatency {
                histogram: sel(r#"lat{job="x"}"#),
                threshold: 0.25,
                group_by: vec!["a".into()],
            },
            Indicator::Gauge {
                metric: sel("probe_success"),
                group_by: vec!["instance".into()],
            },
            Indicator::Query {
                error_ratio: "sum(rate(e[$window])) / sum(rate(t[$window]))".into(),
            },
        ];
        for ind in &indicators {
            let r = ratio(ind, Duration::from_hours(1));
            promql_parser::parser::parse(&r).unwrap_or_else(|e| panic!("{r}: {e}"));
            for reading in [Reading::Increase, Reading::IncreaseOnGrid] {
                if let Some(a) = amounts(ind, Duration::from_minutes(5), reading) {
                    for e in [&a.errors, &a.total] {
                        promql_parser::parser::parse(e).unwrap_or_else(|x| panic!("{e}: {x}"));
                    }
                }
            }
            promql_parser::parser::parse(&presence(ind)).unwrap();
        }
    }
}
