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

const EVENTS: &str = "{events: {error_query: 'sum(rate(e[{{.window}}]))', total_query: 'sum(rate(t[{{.window}}]))'}}";

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

#[test]
fn sloth_severity_is_written_into_each_enabled_tier_unless_the_source_sets_it() {
    let out = sloth_alerting(
        EVENTS,
        "{labels: {team: x}, page_alert: {labels: {severity: critical}}, ticket_alert: {labels: {sloth_severity: low}}}",
    );
    let alerting = out.slos[0].object.spec.alerting.clone().unwrap_or_default();
    let label = |tier: Option<crate::api::AlertTier>| {
        tier.and_then(|t| t.labels.get("sloth_severity").cloned())
    };
    assert_eq!(label(alerting.page), Some("page".to_string()));
    // The source's own label wins in Sloth too (its labels merge over sloth_severity).
    assert_eq!(label(alerting.ticket), Some("low".to_string()));
    let reports = at(&out, "slos[0].alerting");
    assert!(
        reports
            .iter()
            .any(|r| r.starts_with("changed: Sloth labels its page alert")
                && r.ends_with("alerting.page.labels gets sloth_severity: page")),
        "{reports:?}"
    );
    assert!(
        reports.iter().any(
            |r| r.starts_with("not carried: sloth_id, sloth_service and sloth_slo")
                && r.contains("slo, slo_namespace and slo_service")
        ),
        "{reports:?}"
    );
    assert!(!reports.iter().any(|r| r.contains("sloth_severity label")));
}

#[test]
fn a_severity_in_alerting_labels_is_the_alerts_severity() {
    let out = sloth_alerting(EVENTS, "{labels: {severity: sev2}}");
    let alerting = out.slos[0].object.spec.alerting.clone().unwrap_or_default();
    assert_eq!(
        alerting.labels.get("severity").map(String::as_str),
        Some("sev2")
    );
    let reports = at(&out, "slos[0].alerting");
    assert!(
        reports.contains(
            &"changed: both alerts carry severity: sev2 from the source; the page and ticket \
              alerts are told apart by sloth_severity (page and ticket), as in Sloth"
                .to_string()
        ),
        "{reports:?}"
    );
    // Plimsoll adds no severity the source already gives.
    assert!(at(&out, "slos[0].alerting.page").is_empty());
    assert!(at(&out, "slos[0].alerting.ticket").is_empty());
    // A tier's own severity still tells it apart.
    let out = sloth_alerting(
        EVENTS,
        "{labels: {severity: sev2}, page_alert: {labels: {severity: sev1}}}",
    );
    let reports = at(&out, "slos[0].alerting");
    assert!(
        !reports.iter().any(|r| r.contains("both alerts carry")),
        "{reports:?}"
    );
}
