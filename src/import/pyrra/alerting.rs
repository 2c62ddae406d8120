//! Pyrra's `alerting` block, and the labels Pyrra puts on every alert of an SLO, as its
//! slo/rules.go writes them (pyrra-dev/pyrra).

use crate::api::{AbsentAlert, AlertTier, Alerting, Indicator};
use crate::model::names::camel_case;
use crate::model::promql::{MatchKind, parse_selector};

use super::super::alerting::sanitised_alert_name;
use super::super::fields::Fields;

/// The total selector's `=` matchers other than grouped labels: Pyrra labels every burn-rate
/// and absent alert with them (`alertLabels[m.Name] = m.Value`), so Alertmanager routes on, say,
/// `job` match its alerts.
pub(super) fn selector_labels(spec: &Fields, indicator: &Indicator) -> Vec<(String, String)> {
    let (selector, grouped) = match indicator {
        Indicator { ratio: Some(r), .. } => (&r.total, &r.group_by),
        Indicator {
            latency: Some(l), ..
        } => (&l.histogram, &l.group_by),
        Indicator { gauge: Some(g), .. } => (&g.metric, &g.group_by),
        _ => return Vec::new(),
    };
    let Ok(parsed) = parse_selector(selector) else {
        return Vec::new();
    };
    let labels: Vec<(String, String)> = parsed
        .matchers
        .into_iter()
        .filter(|m| m.op == MatchKind::Equal && !grouped.contains(&m.name))
        .map(|m| (m.name, m.value))
        .collect();
    if !labels.is_empty() {
        let shown: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        spec.findings().changed(
            spec.path("indicator"),
            format!(
                "Pyrra labels its alerts with the total selector's = matchers ({}); carried as \
                 alerting.labels so routes on them keep matching. Plimsoll's burn alerts carry \
                 short and long too (its own windows); Pyrra's exhaustion label has no \
                 counterpart (the alert's description says when the budget runs out)",
                shown.join(", ")
            ),
        );
    }
    labels
}

/// Alert names, the tiers that are on, severities.
pub(super) fn alerting(
    spec: &Fields,
    name: &str,
    labels: Vec<(String, String)>,
    annotations: Vec<(String, String)>,
) -> Alerting {
    let f = spec.findings();
    let mut alerting = Alerting {
        labels: labels.into_iter().collect(),
        annotations: annotations.into_iter().collect(),
        ..Alerting::default()
    };
    let block = spec.object("alerting");
    let given = block.as_ref().and_then(|b| b.text("name"));
    let absent_name = block.as_ref().and_then(|b| b.text("absentName"));
    let prefix = given
        .as_ref()
        .map(|n| sanitised_alert_name(n, &spec.path("alerting.name"), f));
    let burn = prefix.clone().unwrap_or_else(|| camel_case(name));
    f.changed(
        spec.path("alerting.name"),
        format!(
            "Pyrra names the burn alerts {:?} and the absent alert {:?}; Plimsoll names them \
             {burn}ErrorBudgetBurn and {burn}SLIAbsent",
            given.as_deref().unwrap_or("ErrorBudgetBurn"),
            absent_name.as_deref().unwrap_or("SLOMetricAbsent"),
        ),
    );
    alerting.name = prefix;
    let block = block.as_ref();
    let off = |key: &'static str, when: bool| block.and_then(|b| b.flag(key)) == Some(when);
    // `disabled` (deprecated) turns off the burn-rate alerts only: Pyrra still writes the
    // absent alerts, which `absent: false` turns off.
    if off("disabled", true) || off("burnrates", false) {
        let off = Some(AlertTier {
            disabled: true,
            ..AlertTier::default()
        });
        alerting.page = off.clone();
        alerting.ticket = off;
    }
    if off("absent", false) {
        alerting.absent = Some(AbsentAlert {
            disabled: true,
            for_: None,
        });
    }
    let absent_severity = block
        .and_then(|b| b.object("severities"))
        .and_then(|s| severities(&s, &mut alerting));
    if !alerting.absent.as_ref().is_some_and(|a| a.disabled) {
        f.changed(
            spec.path("alerting"),
            format!(
                "Pyrra's absent alert has severity {:?}; Plimsoll's SLIAbsent alert has \
                 severity \"warning\" (or alerting.labels' severity): route on its alertname to \
                 page on it",
                absent_severity.as_deref().unwrap_or("critical")
            ),
        );
    }
    alerting
}

/// Pyrra's per-window severities on Plimsoll's two tiers: fast and medium burn page (Plimsoll's
/// page tier covers both windows), slow and long-term burn open tickets. Returns the absent
/// alert's, which has no field to go to.
fn severities(severities: &Fields, alerting: &mut Alerting) -> Option<String> {
    let f = severities.findings();
    for (tier, tier_name, first, second) in [
        (&mut alerting.page, "page", "fastBurn", "mediumBurn"),
        (&mut alerting.ticket, "ticket", "slowBurn", "longTermBurn"),
    ] {
        let (a, b) = (severities.text(first), severities.text(second));
        let Some(severity) = a.clone().or_else(|| b.clone()) else {
            continue;
        };
        if let (Some(a), Some(b)) = (&a, &b)
            && a != b
        {
            f.changed(
                severities.path(second),
                format!(
                    "{second} {b:?} differs from {first} {a:?}; Plimsoll's {tier_name} tier \
                     has one severity, {a:?}"
                ),
            );
        }
        let tier = tier.get_or_insert_with(AlertTier::default);
        tier.labels.insert("severity".to_string(), severity);
    }
    severities.text("absent")
}
