//! Pyrra's alerts and windows as Pyrra's slo/rules.go writes them.

use super::{at, run};

#[test]
fn pyrra_alerting_is_carried_as_pyrra_writes_its_alerts() {
    let pyrra = |alerting: &str| {
        run(&format!(
            r#"
apiVersion: pyrra.dev/v1alpha1
kind: ServiceLevelObjective
metadata: {{name: api, namespace: web}}
spec:
  target: "99"
  window: 4w
  indicator:
    ratio:
      errors: {{metric: 'http_requests_total{{job="api",env="prod",code=~"5.."}}'}}
      total: {{metric: 'http_requests_total{{job="api",env="prod",code!="",route="/x"}}'}}
      grouping: [route]
  alerting: {alerting}
"#
        ))
    };
    // Deprecated `disabled` turns off the burn-rate alerts, not the absent alert.
    let out = pyrra("{disabled: true, absentName: ApiAbsent}");
    let spec = &out.slos[0].object.spec;
    let alerting = spec.alerting.as_ref().unwrap();
    assert!(!alerting.disabled);
    assert!(alerting.page.as_ref().unwrap().disabled && alerting.ticket.as_ref().unwrap().disabled);
    assert_eq!(alerting.absent, None);
    assert!(at(&out, "spec.alerting.name")[0].contains("the absent alert \"ApiAbsent\""));
    // The total's = matchers, not the grouped route, label the alerts as in Pyrra.
    let labels: Vec<(&str, &str)> = alerting
        .labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(labels, [("env", "prod"), ("job", "api")]);
    // Severities per window pair; a pair that disagrees keeps the first and says so.
    let out = pyrra(
        "{severities: {fastBurn: sev1, mediumBurn: sev2, slowBurn: sev3, longTermBurn: sev3, \
         absent: sev1}}",
    );
    let alerting = out.slos[0].object.spec.alerting.clone().unwrap();
    let severity =
        |tier: Option<crate::api::AlertTier>| tier.unwrap().labels.get("severity").cloned();
    assert_eq!(severity(alerting.page), Some("sev1".to_string()));
    assert_eq!(severity(alerting.ticket), Some("sev3".to_string()));
    assert!(at(&out, "spec.alerting.severities.mediumBurn")[0].contains("differs from fastBurn"));
    assert!(
        at(&out, "spec.alerting")
            .iter()
            .any(|m| m.contains("Pyrra's absent alert has severity \"sev1\""))
    );
}

#[test]
fn a_pyrra_window_in_years_is_read_in_days() {
    let out = run(r#"
apiVersion: pyrra.dev/v1alpha1
kind: ServiceLevelObjective
metadata: {name: api}
spec:
  target: "99"
  window: 1y
  indicator: {ratio: {errors: {metric: e_total}, total: {metric: t_total}}}
"#);
    assert!(at(&out, "spec.window")[0].contains("1y is 365d"));
    // Longer than any Plimsoll window, so refused with the window as Plimsoll reads it.
    assert!(out.slos.is_empty());
    assert!(
        at(&out, "spec")
            .iter()
            .any(|m| m.starts_with("refused: ") && m.contains("got 365d"))
    );
}
