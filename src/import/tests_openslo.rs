//! OpenSLO's defaults as its specification states them (OpenSLO/OpenSLO README.md).

use super::{at, run};

/// A v1 SLO with a Prometheus good/total ratio; `window`, `method` and `objective` vary.
fn slo(window: &str, method: &str, objective: &str, policies: &str) -> super::Import {
    run(&format!(
        r#"
apiVersion: openslo/v1
kind: SLO
metadata: {{name: a}}
spec:
  service: s
  indicator:
    spec:
      ratioMetric:
        good: {{metricSource: {{type: Prometheus, spec: {{query: good_total}}}}}}
        total: {{metricSource: {{type: Prometheus, spec: {{query: all_total}}}}}}
  timeWindow: [{window}]
  {method}
  objectives: [{objective}]
  alertPolicies: [{policies}]
"#
    ))
}

#[test]
fn openslo_defaults_are_read_as_the_specification_states_them() {
    // "isRolling: false # if omitted assumed false if calendar: is present"
    let out = slo(
        "{duration: 1w, calendar: {startTime: '2026-01-05 00:00:00', timeZone: Europe/Berlin}}",
        "budgetingMethod: Occurrences",
        "{target: 0.99}",
        "",
    );
    let spec = &out.slos[0].object.spec;
    assert_eq!(
        (spec.window.as_str(), spec.time_zone.as_deref()),
        ("week", Some("Europe/Berlin"))
    );
    assert!(at(&out, "spec.timeWindow[0].isRolling")[0].contains("calendar-aligned"));
    // budgetingMethod is required: reported when missing.
    let out = slo("{duration: 7d, isRolling: true}", "", "{target: 0.99}", "");
    assert!(at(&out, "spec.budgetingMethod")[0].contains("read as Occurrences"));
    // timeSliceWindow: "if specified as a number in minutes".
    let out = slo(
        "{duration: 7d, isRolling: true}",
        "budgetingMethod: Timeslices",
        "{target: 0.99, timeSliceTarget: 0.9, timeSliceWindow: 5}",
        "",
    );
    let slice = out.slos[0].object.spec.timeslice.clone().unwrap();
    assert_eq!(slice.duration, "5m");
    // An AlertCondition's kind "defaults to burnrate": its severity maps.
    let out = slo(
        "{duration: 7d, isRolling: true}",
        "budgetingMethod: Occurrences",
        "{target: 0.99}",
        "{kind: AlertPolicy, metadata: {name: p}, spec: {conditions: [{kind: AlertCondition, \
         metadata: {name: c}, spec: {severity: sev1, condition: {op: gt, threshold: 14, \
         lookbackWindow: 1h, alertAfter: 2m}}}]}}",
    );
    let page = out.slos[0]
        .object
        .spec
        .alerting
        .clone()
        .unwrap()
        .page
        .unwrap();
    assert_eq!(
        page.labels.get("severity").map(String::as_str),
        Some("sev1")
    );
}

#[test]
fn v1alpha_incremental_is_v1_counter_and_a_raw_ratio_without_raw_type_is_reported() {
    // incremental: false: the queries are not read as counters.
    let out = run(r#"
apiVersion: openslo/v1alpha
kind: SLO
metadata: {name: a}
spec:
  service: s
  timeWindows: [{unit: Day, count: 7, isRolling: true}]
  budgetingMethod: Occurrences
  objectives:
    - target: 0.99
      ratioMetrics:
        incremental: false
        good: {source: prometheus, queryType: promql, query: 'sum(good_gauge)'}
        total: {source: prometheus, queryType: promql, query: 'sum(all_gauge)'}
"#);
    // Gauges without a window cannot be read as anything but counters: refused, not guessed.
    assert!(
        out.slos.is_empty() && out.refused_any(),
        "{:?}",
        out.findings
    );
    assert!(
        out.findings
            .iter()
            .any(|f| f.message.contains("not read as counters")),
        "{:?}",
        out.findings
    );
    let out = run(r#"
apiVersion: openslo/v1
kind: SLI
metadata: {name: raw}
spec:
  ratioMetric:
    raw: {metricSource: {type: Prometheus, spec: {query: 'sum(rate(e[{{.window}}]))/sum(rate(t[{{.window}}]))'}}}
"#);
    assert!(at(&out, "spec.ratioMetric.rawType")[0].contains("read as failure"));
}
