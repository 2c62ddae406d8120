//! The AnalysisTemplate's queries against a real Prometheus holding recorded series written
//! directly (no rules to wait for): they read the policy's own numbers from the SLO's own series
//! only, and answer an empty vector, which Argo's conditions take as Successful, where data is
//! missing or stale. Run on Prometheus 2.42 and 3.x.

mod support;

use std::fmt::Write as _;

use plimsoll::manifests::{self, Decoded};
use plimsoll::model::{LabelMatcher, MatchKind, Slo};
use plimsoll::rules::analysis_template;
use serde_json::json;
use support::prometheus::{Prometheus, Version, import_openmetrics_on, instant_values};

on_both_versions!(the_template_reads_the_policys_numbers_and_nothing_without_fresh_data);

const STEP: u64 = 300;
const DAY: u64 = 86_400;
const OWN: &str = r#"slo="checkout",slo_namespace="shop",slo_service="checkout""#;

fn slo(window: &str) -> Slo {
    let manifest = json!({
        "apiVersion": "plimsoll.dev/v1alpha1", "kind": "ServiceLevelObjective",
        "metadata": {"name": "checkout", "namespace": "shop"},
        "spec": {"service": "checkout", "objective": 99.9, "window": window,
                 "indicator": {"ratio": {"errors": "e_total", "total": "t_total"}},
                 "rollback": {"analysisTemplate": true, "trigger": {
                     "budgetRemainingBelow": 20, "burnRateAbove": {"window": "1h", "factor": 10}}}},
    });
    match manifests::decode(&manifest) {
        Decoded::Valid(v) => v.1,
        other => panic!("{other:?}"),
    }
}

/// The queries of the template, as it is rendered for the operator with UID and scope at `at`.
fn queries(window: &str, at: u64) -> Vec<String> {
    let slo = slo(window);
    let scope = [LabelMatcher {
        name: "cluster".into(),
        op: MatchKind::Equal,
        value: "a".into(),
    }];
    let t = analysis_template(
        &slo,
        slo.rollback.as_ref().unwrap(),
        "shop",
        plimsoll::rules::QueryTarget {
            address: "http://p",
            tenant: None,
        },
        Some("u1"),
        &scope,
        k8s_openapi::jiff::Timestamp::from_second(at as i64).unwrap(),
    );
    t.spec
        .metrics
        .iter()
        .map(|m| m.provider.prometheus.query.clone())
        .collect()
}

/// Errors per 5m count (the one written at `t` counts the 5 minutes before): 10% up to
/// `switch`, 0.05% after it, of 1000 requests.
fn errors(t: u64, switch: u64) -> f64 {
    if t <= switch { 100.0 } else { 0.5 }
}

/// 40 days of 5m counts up to `end`, for the SLO and for two foreign look-alikes (a previous SLO
/// of the same name, another cluster) that fail every request; and fresh window records.
fn history(end: u64, switch: u64) -> String {
    let own = format!(r#"{OWN},slo_uid="u1",cluster="a""#);
    let old = format!(r#"{OWN},slo_uid="u0",cluster="a""#);
    let other = format!(r#"{OWN},slo_uid="u1",cluster="b""#);
    let mut out = String::new();
    let mut family = |name: &str, value: &dyn Fn(&str, u64) -> f64, from: u64| {
        writeln!(out, "# TYPE {name} gauge").unwrap();
        for labels in [&own, &old, &other] {
            for t in (from..=end).step_by(STEP as usize) {
                writeln!(out, "{name}{{{labels}}} {} {t}", value(labels, t)).unwrap();
            }
        }
    };
    let foreign = |labels: &str| labels != own;
    family("slo:sli_total:increase5m", &|_, _| 1000.0, end - 40 * DAY);
    family(
        "slo:sli_errors:increase5m",
        &|l, t| {
            if foreign(l) {
                1000.0
            } else {
                errors(t, switch)
            }
        },
        end - 40 * DAY,
    );
    let recent = end - 3600;
    family("slo:sli_error:ratio_window", &|_, _| 0.0004, recent);
    family(
        "slo:error_budget_remaining:ratio",
        &|l, _| if foreign(l) { -5.0 } else { 0.6 },
        recent,
    );
    family(
        "slo:sli_error:ratio_rate1h",
        &|l, _| if foreign(l) { 1.0 } else { 0.002 },
        recent,
    );
    out.push_str("# EOF\n");
    out
}

/// One instant query at `time`: the values of the vector it answers.
fn query(prometheus: &Prometheus, q: &str, time: u64) -> Vec<f64> {
    instant_values(prometheus, q, time)
}

/// What the operator computes for a calendar window at `at`: the ratio of the counts of the
/// period's 5-minute intervals, spent over the share of the period gone by in whole steps.
fn expected_remaining(window: &str, at: u64, switch: u64) -> f64 {
    let when = k8s_openapi::jiff::Timestamp::from_second(at as i64).unwrap();
    let (start, end) = slo(window).window.period(when).unwrap();
    let (start, end) = (start.as_second() as u64, end.as_second() as u64);
    let steps = (start / STEP + 1..=at / STEP).map(|i| i * STEP);
    let (bad, total) = steps.fold((0.0, 0.0), |(b, n), t| (b + errors(t, switch), n + 1000.0));
    let elapsed = (at / STEP * STEP - start) as f64 / (end - start) as f64;
    1.0 - bad / total * elapsed / 0.001
}

fn the_template_reads_the_policys_numbers_and_nothing_without_fresh_data(version: Version) {
    // Saturday 2026-12-05T00:00Z: the week began in the previous month (Monday 30 November),
    // so its sum spans both sides of the month's switch of error rate.
    let end = 1_796_428_800;
    let at = end + 120;
    let month_start = slo("month")
        .window
        .period(k8s_openapi::jiff::Timestamp::from_second(at as i64).unwrap())
        .unwrap()
        .0
        .as_second() as u64;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let file = dir.path().join("history.om");
    std::fs::write(&file, history(end, month_start)).unwrap();
    import_openmetrics_on(version, &file, &data);
    let config = dir.path().join("prometheus.yml");
    std::fs::write(&config, "global: {evaluation_interval: 1m}\n").unwrap();
    let prometheus = Prometheus::start_on(version, &data, &config, &[]);

    // Rolling window: the recorded budget and the 1h burn rate of the SLO's own series.
    let rolling = queries("30d", at);
    assert_eq!(query(&prometheus, &rolling[0], at), [0.6]);
    let burn = query(&prometheus, &rolling[1], at);
    assert!(burn.len() == 1 && (burn[0] - 2.0).abs() < 1e-9, "{burn:?}");

    // Calendar windows: the period so far, as the operator computes it; the previous period's
    // 10% errors and the foreign series' 100% are not counted.
    for window in ["month", "week"] {
        let remaining = query(&prometheus, &queries(window, at)[0], at);
        let expected = expected_remaining(window, at, month_start);
        assert!(
            remaining.len() == 1 && (remaining[0] - expected).abs() < 1e-6,
            "{window}: {remaining:?} vs {expected}"
        );
    }

    // Before any data, and 20 minutes after the rules stopped: an empty vector, no error.
    for q in rolling
        .iter()
        .chain(&queries("month", at))
        .chain(&queries("week", at))
    {
        assert_eq!(query(&prometheus, q, end - 45 * DAY), [] as [f64; 0], "{q}");
        assert_eq!(query(&prometheus, q, end + 20 * 60), [] as [f64; 0], "{q}");
    }
}
