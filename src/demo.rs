//! The demo's month (`make demo`): three services with exactly known traffic whose error budgets
//! end healthy, burning and exhausted, and the order in which the history of their recorded rules
//! can be backfilled with `promtool tsdb create-blocks-from rules`.
//!
//! The SLOs themselves live in `demo/slos/`; the services here carry the same `job` names.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};

use crate::prometheus::Series;
use crate::rules::{Rule, RuleGroup, names};
use crate::synthetic::{Disturbed, Incident, Service};

/// Seconds between two samples of the synthetic counters.
pub const SCRAPE: u64 = 60;
/// History before the 30-day window begins, so the first 5m counts and burn windows are whole.
pub const LEAD_IN: u64 = 3600;
/// The SLO window the demo's SLOs use.
pub const WINDOW: u64 = 30 * DAY;
/// How far the data reaches past the moment the demo starts: instant queries look back 5
/// minutes, the slow rules record every 5 minutes, and the demo needs a minute or two before it
/// reads. Ending the history a little in the future keeps a recorded sample within the look-back.
pub const AHEAD: u64 = 600;

const HOUR: u64 = 3600;
const DAY: u64 = 86_400;

/// The checkout service's bad release: errors rose this long before the end of the data.
pub const BAD_RELEASE_BEFORE_END: u64 = 2 * DAY;
/// The payments outage: it began this long before the end of the data and lasted an hour.
pub const OUTAGE_BEFORE_END: u64 = 4 * HOUR;
pub const OUTAGE_LENGTH: u64 = HOUR;

/// The three services, for data that lasts `duration` seconds (the demo writes
/// [`WINDOW`] + [`LEAD_IN`]); incidents are placed relative to the end.
///
/// - `catalog`: 0.03% of requests fail all month; 70% of a 99.9% budget stays.
/// - `checkout`: 0.04% fail, then a bad release two days before the end makes it 0.3%: the
///   budget burns at 3x and half of it is gone.
/// - `payments`: 0.02% fail, then an hour-long outage at the daily peak fails half of all
///   requests: the budget is overspent, and the rollback policy triggers.
pub fn services(duration: u64) -> Vec<Disturbed> {
    let flat = |job: &str, peak: f64, share: f64, phase_hours: f64| Service {
        job: job.to_string(),
        peak_per_second: peak,
        quiet_error_share: share,
        busy_error_share: share,
        phase_hours,
    };
    // The traffic curve peaks at hour 14 of its day; put that hour in the middle of the outage.
    let outage_middle = duration.saturating_sub(OUTAGE_BEFORE_END) + OUTAGE_LENGTH / 2;
    let payments_phase = (14.0 - outage_middle as f64 / HOUR as f64).rem_euclid(24.0);
    vec![
        Disturbed {
            service: flat("catalog", 30.0, 0.0003, 0.0),
            incidents: vec![],
        },
        Disturbed {
            service: flat("checkout", 50.0, 0.0004, 6.0),
            incidents: vec![Incident {
                from: duration.saturating_sub(BAD_RELEASE_BEFORE_END),
                to: u64::MAX, // still going
                error_share: 0.003,
            }],
        },
        Disturbed {
            service: flat("payments", 20.0, 0.0002, payments_phase),
            incidents: vec![Incident {
                from: duration.saturating_sub(OUTAGE_BEFORE_END),
                to: duration.saturating_sub(OUTAGE_BEFORE_END) + OUTAGE_LENGTH,
                error_share: 0.5,
            }],
        },
    ]
}

/// Recording rules in the order their history can be backfilled.
#[derive(Debug, Clone, PartialEq)]
pub struct BackfillPlan {
    /// The 5m counts, backfilled over the whole history, since every long window sums them; in
    /// stages too, since the errors read the recorded total.
    pub counts: Vec<Vec<RuleGroup>>,
    /// Everything else, in stages: the rules of a stage read only raw series, counts and the
    /// records of earlier stages. `promtool` evaluates each rule against a running Prometheus,
    /// which must already hold what the rule reads, so each stage needs a restart on the blocks
    /// of the one before.
    pub stages: Vec<Vec<RuleGroup>>,
}

/// Splits rendered rule groups into a backfill plan; alerting rules are left out (promtool
/// evaluates recording rules only). Groups keep their names and intervals, so promtool evaluates
/// each rule on the same schedule as Prometheus would.
pub fn backfill_plan(groups: &[RuleGroup]) -> BackfillPlan {
    let is_count = |record: &str| record == names::ERRORS_5M || record == names::TOTAL_5M;
    BackfillPlan {
        counts: staged(groups, &is_count, &|_| false),
        stages: staged(groups, &|r| !is_count(r), &is_count),
    }
}

/// The recording rules whose record is `wanted`, in stages: a rule's stage is 0 when it reads
/// only raw series and `given` records, else one past the latest stage of any rule writing a
/// record it reads. Stages belong to rules, not record names: SLOs of different windows write
/// the same names from different reads (`slo:burn_rate:page_slow` reads the 6h ratio at 30d, the
/// 1h24m one at 7d). Iterated to a fixed point; a record that depends on itself in a cycle (not
/// something render produces) stays unplaced and is left out.
fn staged(
    groups: &[RuleGroup],
    wanted: &dyn Fn(&str) -> bool,
    given: &dyn Fn(&str) -> bool,
) -> Vec<Vec<RuleGroup>> {
    let rules: Vec<&Rule> = groups.iter().flat_map(|g| &g.rules).collect();
    let recorded: BTreeSet<&str> = rules.iter().filter_map(|r| r.record.as_deref()).collect();
    let mut stage: Vec<Option<usize>> = vec![None; rules.len()];
    // The stage after which `record` is complete: every rule writing it placed.
    let done = |stage: &[Option<usize>], record: &str| -> Option<usize> {
        rules
            .iter()
            .zip(stage)
            .filter(|(r, _)| r.record.as_deref() == Some(record))
            .map(|(_, s)| *s)
            .try_fold(0, |latest, s| s.map(|s| latest.max(s)))
    };
    for _ in 0..=rules.len() {
        let mut changed = false;
        for (i, rule) in rules.iter().enumerate() {
            let Some(record) = rule.record.as_deref() else {
                continue;
            };
            if !wanted(record) || stage[i].is_some() {
                continue;
            }
            let placed: Option<Vec<usize>> = recorded
                .iter()
                .copied()
                .filter(|r| *r != record && !given(r) && mentions(&rule.expr, r))
                .map(|r| done(&stage, r))
                .collect();
            if let Some(placed) = placed {
                stage[i] = Some(placed.iter().map(|s| s + 1).max().unwrap_or(0));
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let keep = |n: usize| -> Vec<RuleGroup> {
        let mut at = 0;
        groups
            .iter()
            .map(|g| {
                let rules = g
                    .rules
                    .iter()
                    .filter(|_| {
                        at += 1;
                        stage[at - 1] == Some(n)
                    })
                    .cloned()
                    .collect();
                RuleGroup { rules, ..g.clone() }
            })
            .filter(|g| !g.rules.is_empty())
            .collect()
    };
    let last = stage.iter().flatten().copied().max();
    last.map(|last| (0..=last).map(keep).collect())
        .unwrap_or_default()
}

/// Seconds as OpenMetrics writes them, read back to the same millisecond: promtool truncates
/// seconds times 1000, so a fraction gets half a millisecond more than its float may lose.
fn openmetrics_timestamp(seconds: f64) -> String {
    let ms = (seconds * 1000.0).round() as i64;
    match ms % 1000 {
        0 => (ms / 1000).to_string(),
        part => format!("{}.{part:03}5", ms / 1000),
    }
}

/// Writes what a recording rule produced over a range (the answer of a range query of its
/// expression) as OpenMetrics for `promtool tsdb create-blocks-from openmetrics`: named after the
/// record, with the rule's labels over the expression's, as Prometheus records them. Call it once
/// per record name, so each metric family stays in one piece; finish the file with `# EOF`.
pub fn write_recorded(
    record: &str,
    rules: &[(&Rule, Vec<Series>)],
    out: &mut impl Write,
) -> io::Result<()> {
    writeln!(out, "# TYPE {record} unknown")?;
    for (rule, answer) in rules {
        for series in answer {
            let mut labels: BTreeMap<&str, &str> = series
                .labels
                .iter()
                .filter(|(k, _)| k.as_str() != "__name__")
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            labels.extend(rule.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            let labels: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                .collect();
            for (at, value) in &series.samples {
                writeln!(
                    out,
                    "{record}{{{}}} {} {}",
                    labels.join(","),
                    openmetrics_number(*value),
                    openmetrics_timestamp(*at)
                )?;
            }
        }
    }
    Ok(())
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn openmetrics_number(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_string()
    } else if value == f64::INFINITY {
        "+Inf".to_string()
    } else if value == f64::NEG_INFINITY {
        "-Inf".to_string()
    } else {
        value.to_string()
    }
}

/// Whether `expr` reads the metric `name`: the name stands alone, not as part of a longer one.
fn mentions(expr: &str, name: &str) -> bool {
    let part_of_name = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    expr.match_indices(name).any(|(at, _)| {
        let before = expr[..at].chars().next_back();
        let after = expr[at + name.len()..].chars().next();
        !before.is_some_and(part_of_name) && !after.is_some_and(part_of_name)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::Traffic;

    const DURATION: u64 = WINDOW + LEAD_IN;

    #[test]
    fn recorded_timestamps_read_back_to_their_millisecond() {
        for ms in [
            1_709_510_400_000_i64,
            1_709_510_400_001,
            1_709_510_699_999,
            1_711_321_199_999,
        ] {
            let text = openmetrics_timestamp(ms as f64 / 1000.0);
            // As promtool reads them: seconds times 1000, truncated.
            let read = (text.parse::<f64>().unwrap() * 1000.0) as i64;
            assert_eq!(read, ms, "{text}");
        }
        assert_eq!(openmetrics_timestamp(1_709_510_400.0), "1709510400");
    }

    fn ratio_over(t: &dyn Traffic, from: u64, to: u64) -> f64 {
        let (a, b) = (t.counts_until(from), t.counts_until(to));
        (b.errors - a.errors) / (b.requests - a.requests)
    }

    /// The budget left at the end of the data for a 99.9% SLO over 30 days, in percent.
    fn remaining(t: &dyn Traffic) -> f64 {
        (1.0 - ratio_over(t, DURATION - WINDOW, DURATION) / 0.001) * 100.0
    }

    #[test]
    fn the_three_services_end_healthy_burning_and_exhausted() {
        let s = services(DURATION);
        let jobs: Vec<&str> = s.iter().map(|d| d.job()).collect();
        assert_eq!(jobs, ["catalog", "checkout", "payments"]);
        let six_hours = |t: &dyn Traffic| ratio_over(t, DURATION - 6 * HOUR, DURATION) / 0.001;

        let catalog = remaining(&s[0]);
        assert!((catalog - 70.0).abs() < 1e-6, "{catalog}");
        assert!((six_hours(&s[0]) - 0.3).abs() < 1e-9);

        let checkout = remaining(&s[1]);
        assert!((30.0..60.0).contains(&checkout), "{checkout}");
        assert!((six_hours(&s[1]) - 3.0).abs() < 1e-9, "burning at 3x");

        let payments = remaining(&s[2]);
        assert!(payments < -20.0, "{payments}");
        assert!(six_hours(&s[2]) > 14.4);
        let last_hour = ratio_over(&s[2], DURATION - HOUR, DURATION) / 0.001;
        assert!((last_hour - 0.2).abs() < 1e-9, "the outage is over");
    }

    #[test]
    fn the_outage_hits_the_daily_peak() {
        let s = services(DURATION);
        let start = DURATION - OUTAGE_BEFORE_END;
        let peak = s[2].service.peak_per_second;
        let middle = s[2].rate(start + OUTAGE_LENGTH / 2);
        assert!((middle - peak).abs() < 1e-6 * peak, "{middle} vs {peak}");
        assert_eq!(s[2].error_share(start - 1), 0.0002);
        assert_eq!(s[2].error_share(start), 0.5);
        assert_eq!(s[2].error_share(start + OUTAGE_LENGTH), 0.0002);
    }

    fn record(name: &str, expr: &str) -> Rule {
        Rule {
            record: Some(name.to_string()),
            expr: expr.to_string(),
            ..Rule::default()
        }
    }

    fn names_of(groups: &[RuleGroup]) -> Vec<(String, Vec<String>)> {
        groups
            .iter()
            .map(|g| {
                let records = g.rules.iter().filter_map(|r| r.record.clone()).collect();
                (g.name.clone(), records)
            })
            .collect()
    }

    #[test]
    fn a_plan_orders_records_by_what_they_read() {
        let groups = vec![
            RuleGroup {
                name: "fast".into(),
                interval: "30s".into(),
                partial_response_strategy: None,
                rules: vec![
                    record("a:rate5m", "sum(rate(x_total[5m]))"),
                    record("a:rate5m_doubled", "2 * a:rate5m"),
                    Rule {
                        alert: Some("High".into()),
                        expr: "a:rate5m > 1".into(),
                        ..Rule::default()
                    },
                ],
            },
            RuleGroup {
                name: "slow".into(),
                interval: "5m".into(),
                partial_response_strategy: None,
                rules: vec![
                    record(names::TOTAL_5M, "sum(increase(t_total[5m]))"),
                    record(
                        names::ERRORS_5M,
                        &format!("sum(increase(e_total[5m])) or 0 * sum({})", names::TOTAL_5M),
                    ),
                    record(
                        "w:sum",
                        &format!("sum_over_time({}[1d:5m])", names::ERRORS_5M),
                    ),
                    record("w:ratio", "w:sum / on() a:rate5m_doubled"),
                    // `a:rate5m` inside a longer name is not a read of it.
                    record("w:other", "a:rate5m_total_unrelated"),
                ],
            },
        ];
        let plan = backfill_plan(&groups);
        let counts: Vec<_> = plan.counts.iter().map(|s| names_of(s)).collect();
        assert_eq!(
            counts,
            [
                [("slow".to_string(), vec![names::TOTAL_5M.to_string()])],
                [("slow".to_string(), vec![names::ERRORS_5M.to_string()])]
            ]
        );
        let stages: Vec<_> = plan.stages.iter().map(|s| names_of(s)).collect();
        let own = |g: &str, r: &[&str]| (g.to_string(), r.iter().map(|s| s.to_string()).collect());
        assert_eq!(
            stages,
            vec![
                vec![
                    own("fast", &["a:rate5m"]),
                    own("slow", &["w:sum", "w:other"])
                ],
                vec![own("fast", &["a:rate5m_doubled"])],
                vec![own("slow", &["w:ratio"])],
            ]
        );
        assert_eq!(
            plan.stages[0][1].interval, "5m",
            "groups keep their interval"
        );
    }

    #[test]
    fn one_record_name_written_from_different_reads_waits_for_each() {
        // Two SLOs write `burn` from records of different stages (as the burn rates of a 30d and
        // a 7d SLO do): each rule is placed after what it reads, and what reads `burn` after both.
        let groups = vec![RuleGroup {
            name: "g".into(),
            interval: "30s".into(),
            partial_response_strategy: None,
            rules: vec![
                record("short", "sum(rate(x_total[5m]))"),
                record("long", "sum(rate(x_total[1h]))"),
                record("long:twice", "2 * long"),
                record("burn", "short"),
                record("burn", "long:twice"),
                record("burn:max", "max(burn)"),
            ],
        }];
        let plan = backfill_plan(&groups);
        let stages: Vec<_> = plan.stages.iter().map(|s| names_of(s)).collect();
        let own = |r: &[&str]| vec![("g".to_string(), r.iter().map(|s| s.to_string()).collect())];
        assert_eq!(
            stages,
            vec![
                own(&["short", "long"]),
                own(&["long:twice", "burn"]),
                own(&["burn"]),
                own(&["burn:max"]),
            ]
        );
    }

    #[test]
    fn recorded_series_carry_the_rule_labels_and_the_record_name() {
        let mut rule = record("slo:x:ratio", "sum by (route) (x)");
        rule.labels = BTreeMap::from([("slo".to_string(), "a \"b\"".to_string())]);
        let answer = vec![Series {
            labels: BTreeMap::from([
                ("__name__".to_string(), "x".to_string()),
                ("route".to_string(), "/pay".to_string()),
                ("slo".to_string(), "overridden".to_string()),
            ]),
            samples: vec![(300.0, 0.25), (600.0, f64::NAN)],
        }];
        let mut out = Vec::new();
        write_recorded("slo:x:ratio", &[(&rule, answer)], &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "# TYPE slo:x:ratio unknown\n\
             slo:x:ratio{route=\"/pay\",slo=\"a \\\"b\\\"\"} 0.25 300\n\
             slo:x:ratio{route=\"/pay\",slo=\"a \\\"b\\\"\"} NaN 600\n"
        );
    }

    #[test]
    fn the_demo_slos_need_three_stages_after_the_counts() {
        let files = crate::manifests::expand(&[std::path::PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/demo/slos"
        ))])
        .unwrap();
        let (checked, errors) = crate::manifests::check_files(&files);
        assert!(errors.is_empty());
        let mut groups = Vec::new();
        for doc in checked {
            let crate::manifests::Outcome::Decoded(crate::manifests::Decoded::Valid(v)) =
                doc.outcome
            else {
                panic!("{} is not a valid SLO", doc.location);
            };
            groups.extend(crate::rules::render(&v.1, "shop"));
        }
        let plan = backfill_plan(&groups);
        let recorded = |stage: &[RuleGroup]| -> BTreeSet<String> {
            stage
                .iter()
                .flat_map(|g| &g.rules)
                .filter_map(|r| r.record.clone())
                .collect()
        };
        // The total first, then the errors, which read it.
        assert_eq!(plan.counts.len(), 2);
        assert!(
            plan.counts.iter().all(|c| c.len() == 3),
            "one slow group per SLO"
        );
        assert_eq!(
            recorded(&plan.counts[0]),
            BTreeSet::from([names::TOTAL_5M.to_string()])
        );
        assert_eq!(plan.stages.len(), 3);
        assert!(recorded(&plan.stages[0]).contains(names::ERRORS_WINDOW));
        assert!(recorded(&plan.stages[0]).contains("slo:sli_total:rate5m"));
        // The short ratios read their recorded totals.
        assert_eq!(
            recorded(&plan.stages[1]),
            BTreeSet::from(
                [
                    names::RATIO_WINDOW,
                    "slo:sli_error:ratio_rate5m",
                    "slo:sli_error:ratio_rate30m",
                    "slo:sli_error:ratio_rate1h",
                    // The burn rates of the long windows, which read the counts' sums.
                    "slo:burn_rate:page_slow",
                    "slo:burn_rate:ticket_fast",
                    "slo:burn_rate:ticket_slow",
                ]
                .map(String::from)
            )
        );
        assert_eq!(
            recorded(&plan.stages[2]),
            BTreeSet::from([
                names::BUDGET_REMAINING.to_string(),
                "slo:burn_rate:page_fast".to_string()
            ])
        );
        let every: usize = groups
            .iter()
            .flat_map(|g| &g.rules)
            .filter(|r| r.record.is_some())
            .count();
        let planned: usize = plan
            .counts
            .iter()
            .chain(&plan.stages)
            .flat_map(|s| s.iter().map(|g| g.rules.len()))
            .sum();
        assert_eq!(planned, every, "every recording rule is in the plan once");
    }
}
