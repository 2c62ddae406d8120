//! The three rule designs the cost benchmarks compare, for any set of services: ours, every
//! window as `increase` over raw counters (`raw-increase`), and burn windows over raw counters
//! with the 30d SLI as the average of recorded 5m ratios (`ratio-average`).

use plimsoll::manifests::{self, Decoded};
use plimsoll::rules::{self, Rule, RuleGroup};
use plimsoll::synthetic::Service;

const BURN_WINDOWS: [&str; 7] = ["5m", "30m", "1h", "2h", "6h", "1d", "3d"];

fn slo_manifest(service: &Service, window: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "plimsoll.dev/v1alpha1",
        "kind": "ServiceLevelObjective",
        "metadata": {"name": service.job, "namespace": "bench"},
        "spec": {
            "service": service.job,
            "objective": 99.9,
            "window": window,
            "indicator": {"ratio": {
                "errors": format!("http_requests_total{{job=\"{}\",code=\"500\"}}", service.job),
                "total": format!("http_requests_total{{job=\"{}\"}}", service.job),
            }},
        },
    })
}

/// Rule groups of one design for all services.
pub struct Design {
    pub name: &'static str,
    pub groups: Vec<RuleGroup>,
    /// The design's 30d error ratio for a service; `None` for a calendar window.
    pub window_ratio: Option<fn(&Service) -> String>,
    /// Recording rules whose history the measured expressions read, in passes: promtool backfills
    /// each rule on its own, so a rule that reads another's record comes in a later pass.
    pub backfill: Vec<Vec<RuleGroup>>,
    /// What every series it records starts with.
    pub record_prefix: &'static str,
    /// A record written by the evaluation that reads the window: the window is read at that
    /// evaluation's time (backfilled groups evaluate at their hashed offset, as live ones do).
    pub evaluated_at: Option<&'static str>,
}

fn record(name: String, expr: String) -> Rule {
    Rule {
        record: Some(name),
        expr,
        ..Rule::default()
    }
}

fn raw_ratio(s: &Service, window: &str, function: &str) -> String {
    format!(
        "sum({function}(http_requests_total{{job=\"{job}\",code=\"500\"}}[{window}])) / \
         sum({function}(http_requests_total{{job=\"{job}\"}}[{window}]))",
        job = s.job
    )
}

pub fn plimsoll_design(services: &[Service]) -> Design {
    let mut groups = Vec::new();
    let mut backfill = vec![Vec::new(), Vec::new()];
    for s in services {
        let Decoded::Valid(valid) = manifests::decode(&slo_manifest(s, "30d")) else {
            panic!("bench SLO is invalid");
        };
        let rendered = rules::render(&valid.1, "bench");
        // The 5m errors read the recorded 5m total.
        for (pass, record) in [rules::names::TOTAL_5M, rules::names::ERRORS_5M]
            .into_iter()
            .enumerate()
        {
            let mut counts = rendered[1].clone();
            counts.name = format!("{}/{record}", counts.name);
            counts.rules.retain(|r| r.record.as_deref() == Some(record));
            backfill[pass].push(counts);
        }
        groups.extend(rendered);
    }
    Design {
        name: "plimsoll",
        record_prefix: "slo:",
        evaluated_at: Some(rules::names::TOTAL_5M),
        groups,
        // The expressions of slo:sli_errors/total:increase_window, read from the backfilled counts.
        window_ratio: Some(|s| {
            format!(
                "sum_over_time(slo:sli_errors:increase5m{{slo=\"{0}\"}}[30d:5m] offset -4m59s999ms) / \
                 sum_over_time(slo:sli_total:increase5m{{slo=\"{0}\"}}[30d:5m] offset -4m59s999ms)",
                s.job
            )
        }),
        backfill,
    }
}

/// Ours for the same services over the calendar month (UTC): what the period's budget costs
/// beside the rolling window's. It reads the 5m counts [`plimsoll_design`] backfills (the same
/// SLO names and labels), so it must be measured beside it.
pub fn plimsoll_month_design(services: &[Service]) -> Design {
    let groups = services
        .iter()
        .flat_map(|s| {
            let Decoded::Valid(valid) = manifests::decode(&slo_manifest(s, "month")) else {
                panic!("bench SLO is invalid");
            };
            rules::render(&valid.1, "bench")
        })
        .collect();
    Design {
        name: "plimsoll, calendar month",
        record_prefix: "slo:",
        evaluated_at: None,
        groups,
        window_ratio: None,
        backfill: Vec::new(),
    }
}

pub fn raw_increase_design(services: &[Service]) -> Design {
    let mut groups = Vec::new();
    for s in services {
        let mut rules: Vec<Rule> = BURN_WINDOWS
            .iter()
            .map(|w| record(format!("raw:error_ratio:rate{w}"), raw_ratio(s, w, "rate")))
            .collect();
        rules.push(record(
            "raw:error_ratio:increase30d".into(),
            raw_ratio(s, "30d", "increase"),
        ));
        // One series per SLO, as a live Prometheus must keep them apart.
        for rule in &mut rules {
            rule.labels.insert("job".into(), s.job.clone());
        }
        groups.push(RuleGroup {
            name: format!("raw/{}", s.job),
            interval: "30s".into(),
            partial_response_strategy: None,
            rules,
        });
    }
    Design {
        name: "raw-increase",
        record_prefix: "raw:",
        evaluated_at: None,
        groups,
        window_ratio: Some(|s| raw_ratio(s, "30d", "increase")),
        backfill: vec![Vec::new()],
    }
}

pub fn ratio_average_design(services: &[Service]) -> Design {
    let mut groups = Vec::new();
    let mut backfill = Vec::new();
    for s in services {
        let mut rules: Vec<Rule> = BURN_WINDOWS
            .iter()
            .map(|w| {
                let mut r = record(format!("avg:error_ratio:rate{w}"), raw_ratio(s, w, "rate"));
                r.labels.insert("job".into(), s.job.clone());
                r
            })
            .collect();
        backfill.push(RuleGroup {
            name: format!("avg-5m/{}", s.job),
            interval: "30s".into(),
            partial_response_strategy: None,
            rules: vec![rules[0].clone()],
        });
        rules.push(record(
            "avg:error_ratio:rate30d".into(),
            format!(
                "sum_over_time(avg:error_ratio:rate5m{{job=\"{0}\"}}[30d]) / \
                 count_over_time(avg:error_ratio:rate5m{{job=\"{0}\"}}[30d])",
                s.job
            ),
        ));
        groups.push(RuleGroup {
            name: format!("avg/{}", s.job),
            interval: "30s".into(),
            partial_response_strategy: None,
            rules,
        });
    }
    Design {
        name: "ratio-average",
        record_prefix: "avg:",
        evaluated_at: None,
        groups,
        window_ratio: Some(|s| {
            format!(
                "sum_over_time(avg:error_ratio:rate5m{{job=\"{0}\"}}[30d]) / \
                 count_over_time(avg:error_ratio:rate5m{{job=\"{0}\"}}[30d])",
                s.job
            )
        }),
        backfill: vec![backfill],
    }
}
