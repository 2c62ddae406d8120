//! Sloth's alert labels and queries, checked against what Sloth renders (alert_rules_v1,
//! sli_rules_v1, storage/io/sloth.go).

use super::*;

/// A Sloth file with one SLO whose `alerting` block is `alerting`.
fn sloth_alerting(sli: &str, alerting: &str) -> Import {
    run(&format!(
        "version: prometheus/v1\nservice: shop\nslos:\n  - name: a\n    objective: 99\n    \
         sli: {sli}\n    alerting: {alerting}\n"
    ))
}

#[test]
fn sloth_reports_an_increase_over_a_rate_where_the_query_is() {
    let out = sloth_alerting(
        "{events: {error_query: 'sum(increase(e[{{.window}}]))', total_query: 'sum(rate(t[{{.window}}]))'}}",
        "{page_alert: {disable: true}, ticket_alert: {disable: true}}",
    );
    let query = &out.slos[0].object.spec.indicator.query;
    assert_eq!(
        query.as_ref().map(|q| q.error_ratio.as_str()),
        Some("(sum(increase(e[$window]))) / (sum(rate(t[$window])))")
    );
    let reports = at(&out, "slos[0].sli.events.error_query");
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert!(
        reports[0].starts_with("changed: the error query uses increase and the total rate ("),
        "{reports:?}"
    );
    assert!(!out.refused_any());
}
