//! The batched status query: two instant queries return every SLO's recorded ratios and their
//! ages, whatever the number of SLOs; this maps the answer to one reading per SLO and group.

use std::collections::BTreeMap;

use k8s_openapi::jiff::Timestamp;

use super::client::{Sample, Series};
use crate::budget::Reading;
use crate::model::Duration;
use crate::rules::names;

/// Every recorded error ratio of every SLO: the newest sample of the last 15 minutes. A plain
/// selector looks back only 5 minutes, exactly the slow group's interval, so a read just before
/// the next write would miss the window ratio and call fresh data missing.
pub const RATIOS_QUERY: &str =
    r#"last_over_time({__name__=~"slo:sli_error:ratio_.+", slo_namespace!=""}[15m])"#;
/// The window ratios' samples of the last 15 minutes (a range selector, so the answer carries
/// each sample's own time): the newest is when the rules last ran. Longer than the 10 minutes
/// after which data counts as stale, so stalled rules show as SeriesStale before SeriesMissing.
pub const AGES_QUERY: &str = r#"slo:sli_error:ratio_window{slo_namespace!=""}[15m]"#;

/// One SLO, or one group of a `groupBy` SLO.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SeriesKey {
    pub namespace: String,
    pub name: String,
    /// The `groupBy` labels; empty for SLOs without groups.
    pub group: BTreeMap<String, String>,
}

fn key(labels: &BTreeMap<String, String>) -> Option<SeriesKey> {
    let namespace = labels.get(names::LABEL_NAMESPACE)?.clone();
    let name = labels.get(names::LABEL_SLO)?.clone();
    let group = labels
        .iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "__name__"
                    | names::LABEL_SLO
                    | names::LABEL_NAMESPACE
                    | names::LABEL_SERVICE
                    | AMOUNT_LABEL
            )
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Some(SeriesKey {
        namespace,
        name,
        group,
    })
}

/// Each series' newest sample time (Unix seconds), in the shape [`readings`] takes.
pub fn newest(series: &[Series]) -> Vec<Sample> {
    series
        .iter()
        .filter_map(|s| {
            let newest = s.samples.iter().map(|(t, _)| *t).reduce(f64::max)?;
            Some(Sample {
                labels: s.labels.clone(),
                value: newest,
            })
        })
        .collect()
}

/// Folds both answers into readings.
pub fn readings(ratios: &[Sample], ages: &[Sample]) -> BTreeMap<SeriesKey, Reading> {
    let mut out: BTreeMap<SeriesKey, Reading> = BTreeMap::new();
    for sample in ratios {
        let (Some(key), Some(metric)) = (key(&sample.labels), sample.labels.get("__name__")) else {
            continue;
        };
        let reading = out.entry(key).or_default();
        if metric == names::RATIO_WINDOW {
            reading.window_error_ratio = Some(sample.value);
        } else if let Some(window) = metric
            .strip_prefix(names::RATIO_PREFIX)
            .and_then(|m| m.strip_prefix("ratio_rate"))
            .and_then(|w| Duration::parse(w, "wdhm").ok())
        {
            reading.error_ratios.insert(window, sample.value);
        }
    }
    for sample in ages {
        let Some(key) = key(&sample.labels) else {
            continue;
        };
        let written = Timestamp::from_millisecond((sample.value * 1000.0) as i64).ok();
        if let Some(reading) = out.get_mut(&key) {
            reading.newest_sample = written;
        }
    }
    out
}

/// Tells the sums of the calendar query apart.
const AMOUNT_LABEL: &str = "plimsoll_amount";

/// One query for every SLO whose calendar period started at the same instant, `seconds` ago: the
/// 5m error and total counts summed since then (or, for timeslices, the share of bad slices).
/// SLOs are picked by name and namespace alternations; pairs that do not exist together are
/// dropped by the caller's lookup.
pub fn period_query(slos: &[(&str, &str)], seconds: u64) -> String {
    let alternation = |values: Vec<&str>| {
        let mut v: Vec<String> = values.into_iter().map(regex_escape).collect();
        v.sort();
        v.dedup();
        crate::model::promql::quote(&v.join("|"))
    };
    let selector = format!(
        "{{{}=~{},{}=~{}}}",
        names::LABEL_SLO,
        alternation(slos.iter().map(|(_, name)| *name).collect()),
        names::LABEL_NAMESPACE,
        alternation(slos.iter().map(|(ns, _)| *ns).collect()),
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

fn regex_escape(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let special = r"\.+*?()|[]{}^$".contains(c);
            special.then_some('\\').into_iter().chain([c])
        })
        .collect()
}

/// The error ratio since the period start, per SLO and group: errors over total (0 without
/// traffic), or the share of bad slices.
pub fn period_ratios(samples: &[Sample]) -> BTreeMap<SeriesKey, f64> {
    let mut sums: BTreeMap<SeriesKey, (Option<f64>, Option<f64>)> = BTreeMap::new();
    let mut out = BTreeMap::new();
    for sample in samples {
        let (Some(key), Some(amount)) = (key(&sample.labels), sample.labels.get(AMOUNT_LABEL))
        else {
            continue;
        };
        match amount.as_str() {
            "errors" => sums.entry(key).or_default().0 = Some(sample.value),
            "total" => sums.entry(key).or_default().1 = Some(sample.value),
            "bad_share" => {
                out.insert(key, sample.value);
            }
            _ => {}
        }
    }
    for (key, sums) in sums {
        match sums {
            (Some(_), Some(0.0)) => {
                out.insert(key, 0.0);
            }
            (Some(errors), Some(total)) => {
                out.insert(key, errors / total);
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(labels: &[(&str, &str)], value: f64) -> Sample {
        Sample {
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            value,
        }
    }

    /// A series of the checkout SLO: its labels, the record name and extra (group) labels.
    fn own(name: &str, extra: &[(&str, &str)], value: f64) -> Sample {
        let mut labels = vec![
            ("slo", "checkout"),
            ("slo_namespace", "shop"),
            ("slo_service", "checkout"),
            ("__name__", name),
        ];
        labels.extend_from_slice(extra);
        sample(&labels, value)
    }

    #[test]
    fn the_newest_sample_dates_each_series() {
        let labels: BTreeMap<String, String> = [("slo".to_string(), "checkout".to_string())].into();
        let series = [
            Series {
                labels: labels.clone(),
                samples: vec![(100.0, 0.1), (400.0, 0.2), (300.0, 0.3)],
            },
            Series {
                labels,
                samples: vec![],
            },
        ];
        let newest = newest(&series);
        assert_eq!(newest.len(), 1, "a series without samples has no age");
        assert_eq!(newest[0].value, 400.0);
        for q in [RATIOS_QUERY, AGES_QUERY] {
            assert!(promql_parser::parser::parse(q).is_ok(), "{q}");
        }
    }

    #[test]
    fn the_period_query_parses_and_escapes_names() {
        let q = period_query(&[("shop", "checkout.v2"), ("pay", "api")], 3600);
        assert!(promql_parser::parser::parse(&q).is_ok(), "{q}");
        assert!(q.contains(r#"slo=~"api|checkout\\.v2""#), "{q}");
        assert!(q.contains(r#"slo_namespace=~"pay|shop""#), "{q}");
        assert!(
            q.contains("sum_over_time(slo:sli_errors:increase5m{"),
            "{q}"
        );
        assert!(q.contains("[3600s]"));
    }

    #[test]
    fn period_sums_become_ratios_per_slo_and_group() {
        let amount = |amount: &str, group: &str, value: f64| {
            sample(
                &[
                    ("slo", "checkout"),
                    ("slo_namespace", "shop"),
                    ("route", group),
                    ("plimsoll_amount", amount),
                ],
                value,
            )
        };
        let ratios = period_ratios(&[
            amount("errors", "/pay", 3.0),
            amount("total", "/pay", 1000.0),
            amount("errors", "/cart", 0.0),
            amount("total", "/cart", 0.0),
            amount("errors", "/gone", 1.0),
            amount("bad_share", "/slices", 0.25),
        ]);
        let by_route = |r: &str| {
            ratios
                .iter()
                .find(|(k, _)| k.group.get("route").map(String::as_str) == Some(r))
                .map(|(k, v)| (k.group.len(), *v))
        };
        assert_eq!(
            by_route("/pay"),
            Some((1, 0.003)),
            "the amount label is no group"
        );
        assert_eq!(by_route("/cart"), Some((1, 0.0)), "no traffic, no errors");
        assert_eq!(
            by_route("/gone"),
            None,
            "errors without a total are no ratio"
        );
        assert_eq!(by_route("/slices"), Some((1, 0.25)));
    }

    #[test]
    fn maps_series_to_slos_and_groups() {
        let ratios = [
            own("slo:sli_error:ratio_window", &[], 0.0005),
            own("slo:sli_error:ratio_rate1h", &[], 0.002),
            own("slo:sli_error:ratio_rate5h35m", &[], 0.001),
            own("slo:sli_error:ratio_window", &[("route", "/pay")], 0.1),
            sample(&[("__name__", "slo:sli_error:ratio_window")], 0.3),
        ];
        let ages = [sample(
            &[
                ("slo", "checkout"),
                ("slo_namespace", "shop"),
                ("slo_service", "checkout"),
            ],
            1_800_000_000.5,
        )];
        let r = readings(&ratios, &ages);
        assert_eq!(r.len(), 2, "the unlabelled series is not an SLO's");
        let plain = &r[&SeriesKey {
            namespace: "shop".into(),
            name: "checkout".into(),
            group: BTreeMap::new(),
        }];
        assert_eq!(plain.window_error_ratio, Some(0.0005));
        assert_eq!(plain.error_ratios[&Duration::from_hours(1)], 0.002);
        assert_eq!(plain.error_ratios[&Duration::from_minutes(335)], 0.001);
        assert_eq!(
            plain.newest_sample,
            Some(Timestamp::from_millisecond(1_800_000_000_500).unwrap())
        );
        let pay = r
            .iter()
            .find(|(k, _)| k.group.get("route").map(String::as_str) == Some("/pay"))
            .unwrap();
        assert_eq!(pay.1.window_error_ratio, Some(0.1));
        assert_eq!(
            pay.1.newest_sample, None,
            "no age for that group: it will count as missing"
        );
    }
}
