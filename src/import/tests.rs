use super::*;
use crate::manifests::{Source, parse};

fn run(text: &str) -> Import {
    let Source::Documents(docs) = parse("in.yaml", text) else {
        panic!("not YAML")
    };
    import(&docs, Some("team"))
}

#[test]
fn every_unknown_field_is_reported_by_its_path() {
    let out = run(r#"
version: prometheus/v1
service: shop
flavour: mint
slos:
  - name: a
    objective: 99
    colour: blue
    sli: {events: {error_query: 'sum(rate(e[{{.window}}]))', total_query: 'sum(rate(t[{{.window}}]))'}}
"#);
    assert_eq!(out.slos.len(), 1);
    let unknown: Vec<&str> = out
        .findings
        .iter()
        .filter(|f| f.message.contains("not a field the importer knows"))
        .map(|f| f.field.as_str())
        .collect();
    assert_eq!(unknown, ["slos[0].colour", "flavour"]);
    assert!(!out.refused_any());
}

#[test]
fn the_namespace_applies_only_where_the_source_names_none() {
    let out = run(r#"
apiVersion: pyrra.dev/v1alpha1
kind: ServiceLevelObjective
metadata: {name: a}
spec: {target: "99", window: 2w, indicator: {ratio: {errors: {metric: e}, total: {metric: t}}}}
---
apiVersion: pyrra.dev/v1alpha1
kind: ServiceLevelObjective
metadata: {name: b, namespace: own}
spec: {target: "99", window: 2w, indicator: {ratio: {errors: {metric: e}, total: {metric: t}}}}
"#);
    let places: Vec<_> = out
        .slos
        .iter()
        .map(|s| s.object.metadata.namespace.clone())
        .collect();
    assert_eq!(places, [Some("team".into()), Some("own".into())]);
}

#[test]
fn an_slo_that_would_be_invalid_is_refused_and_the_others_kept() {
    let out = run(r#"
version: prometheus/v1
service: shop
slos:
  - name: too-strict
    objective: 100
    sli: {events: {error_query: 'sum(rate(e[{{.window}}]))', total_query: 'sum(rate(t[{{.window}}]))'}}
  - name: fine
    objective: 99
    sli: {events: {error_query: 'sum(rate(e[{{.window}}]))', total_query: 'sum(rate(t[{{.window}}]))'}}
"#);
    assert_eq!(out.slos.len(), 1);
    assert_eq!(
        out.slos[0].object.metadata.name.as_deref(),
        Some("shop-fine")
    );
    let refused: Vec<_> = out
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Refused)
        .collect();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].field, "slos[0]");
    assert!(
        refused[0].message.contains("objective"),
        "{}",
        refused[0].message
    );
}

#[test]
fn a_second_slo_of_the_same_name_is_refused() {
    let one = r#"
apiVersion: pyrra.dev/v1alpha1
kind: ServiceLevelObjective
metadata: {name: a}
spec: {target: "99", window: 2w, indicator: {ratio: {errors: {metric: e}, total: {metric: t}}}}
"#;
    let out = run(&format!("{one}---{one}"));
    assert_eq!(out.slos.len(), 1);
    assert!(out.refused_any());
}

#[test]
fn hostile_text_stays_text() {
    let out = run(
        "version: prometheus/v1\nservice: shop\nslos:\n  - name: \"a\\n# b {{x}}\"\n    objective: 99\n    \
         description: \"line\\n---\\nkind: Secret\"\n    sli: {events: {error_query: 'sum(rate(e[{{.window}}]))', \
         total_query: 'sum(rate(t[{{.window}}]))'}}\n",
    );
    assert_eq!(out.slos.len(), 1, "{:?}", out.findings);
    let slo = &out.slos[0].object;
    assert_eq!(slo.metadata.name.as_deref(), Some("shop-a-b-x"));
    assert_eq!(
        slo.spec.description.as_deref(),
        Some("line\n---\nkind: Secret")
    );
}

#[test]
fn documents_of_other_tools_are_refused_by_name() {
    let out = run("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n");
    assert!(out.slos.is_empty());
    assert!(out.refused_any());
    assert!(out.findings[0].message.contains("apps/v1"));
}

#[test]
fn unquoted_scalars_read_as_text_are_reported() {
    let out = run(
        "version: prometheus/v1\nservice: shop\nslos:\n  - name: 010\n    objective: 99\n    \
         sli: {events: {error_query: 'sum(rate(e[{{.window}}]))', total_query: 'sum(rate(t[{{.window}}]))'}}\n",
    );
    let finding = out
        .findings
        .iter()
        .find(|f| f.field == "slos[0].name")
        .unwrap_or_else(|| panic!("{:?}", out.findings));
    assert!(
        finding.message.contains("not quoted text"),
        "{}",
        finding.message
    );
}

#[test]
fn openslo_namespace_is_carried_and_disagreeing_targets_are_refused() {
    let slo = |target: &str| {
        format!(
            "apiVersion: openslo/v1\nkind: SLO\nmetadata: {{name: a, namespace: team-a}}\nspec:\n  service: s\n  \
             indicator: {{spec: {{ratioMetric: {{good: {{metricSource: {{type: Prometheus, spec: {{query: g_total}}}}}}, \
             total: {{metricSource: {{type: Prometheus, spec: {{query: t_total}}}}}}}}}}}}\n  \
             timeWindow: [{{duration: 28d, isRolling: true}}]\n  objectives: [{{{target}}}]\n"
        )
    };
    let out = run(&slo("target: 0.99, targetPercent: 99"));
    assert_eq!(out.slos.len(), 1, "{:?}", out.findings);
    assert_eq!(
        out.slos[0].object.metadata.namespace.as_deref(),
        Some("team-a")
    );
    assert_eq!(out.slos[0].object.spec.objective, 99.0);
    let out = run(&slo("target: 0.99, targetPercent: 95"));
    assert!(out.slos.is_empty());
    assert!(
        out.findings
            .iter()
            .any(|f| f.severity == Severity::Refused
                && f.field == "spec.objectives[0].targetPercent")
    );
}

#[test]
fn a_plain_grouping_on_one_side_only_is_refused_not_summed_away() {
    let out = run(r#"
apiVersion: pyrra.dev/v1alpha1
kind: ServiceLevelObjective
metadata: {name: a}
spec: {target: "99", window: 2w, indicator: {ratio: {errors: {metric: 'sum by (code) (e_total)'}, total: {metric: t_total}}}}
"#);
    assert!(out.slos.is_empty());
    assert!(out.refused_any(), "{:?}", out.findings);
}

/// The findings at `field`, as `severity: message`.
fn at(out: &Import, field: &str) -> Vec<String> {
    out.findings
        .iter()
        .filter(|f| f.field == field)
        .map(|f| format!("{}: {}", f.severity.as_str(), f.message))
        .collect()
}

#[test]
fn an_sli_with_both_good_and_bad_is_refused_even_when_no_slo_uses_it() {
    let sli = |name: &str, sides: &str| {
        format!(
            "apiVersion: openslo/v1\nkind: SLI\nmetadata: {{name: {name}}}\nspec:\n  ratioMetric:\n{sides}    \
             total: {{metricSource: {{type: Prometheus, spec: {{query: t_total}}}}}}\n"
        )
    };
    let prometheus = |side: &str| {
        format!(
            "    {side}: {{metricSource: {{type: Prometheus, spec: {{query: {side}_total}}}}}}\n"
        )
    };
    let both = sli("both", &(prometheus("good") + &prometheus("bad")));
    let out = run(&both);
    assert!(out.slos.is_empty());
    assert!(out.refused_any(), "{:?}", out.findings);
    let found = at(&out, "spec.ratioMetric");
    assert!(
        found.len() == 1 && found[0].starts_with("refused: sets both good and bad"),
        "{found:?}"
    );
    // What Plimsoll cannot read, rather than what OpenSLO forbids, matters only to an SLO using it.
    let datadog = sli(
        "datadog",
        "    good: {metricSource: {type: Datadog, spec: {query: g}}}\n",
    );
    let out = run(&datadog);
    assert!(!out.refused_any(), "{:?}", out.findings);
    assert!(
        at(&out, "spec.ratioMetric.good.metricSource.type")[0]
            .starts_with("not carried: if an SLO used it: unsupported metricSource type"),
        "{:?}",
        out.findings
    );
}

#[test]
fn an_sli_no_slo_uses_reports_changes_too_and_its_annotations() {
    let out = run(r#"
apiVersion: openslo/v1
kind: SLI
metadata:
  name: satisfaction
  annotations: {openslo.com/service-folder: ./wifi}
spec:
  description: average satisfaction
  ratioMetric:
    rawType: success
    raw: {metricSource: {type: Prometheus, spec: {query: 'avg_over_time(s[{{.window}}])'}}}
"#);
    assert!(out.slos.is_empty());
    assert!(!out.refused_any(), "{:?}", out.findings);
    let spec = at(&out, "spec");
    assert!(
        spec.iter()
            .any(|m| m.starts_with("not carried: if an SLO used it: rawType: success")),
        "{spec:?}"
    );
    let description = at(&out, "spec.description");
    assert!(
        description.len() == 1 && description[0].contains("the SLI's description"),
        "{description:?}"
    );
    let annotations = at(&out, "metadata.annotations");
    assert!(
        annotations.len() == 1 && annotations[0].contains("openslo.com/service-folder"),
        "{annotations:?}"
    );
}

#[test]
fn an_alert_policy_no_slo_uses_reports_what_an_slo_using_it_would_meet() {
    let out = run(r#"
apiVersion: openslo/v1
kind: AlertPolicy
metadata: {name: pager}
spec:
  description: pages
  alertWhenBreaching: true
  conditions:
    - kind: AlertCondition
      metadata: {name: fast}
      spec:
        severity: page
        condition: {kind: burnrate, op: gt, threshold: 3, lookbackWindow: 2h, alertAfter: 10m}
    - conditionRef: elsewhere
  notificationTargets:
    - targetRef: on-call
"#);
    assert!(out.slos.is_empty());
    assert!(!out.refused_any(), "{:?}", out.findings);
    for (field, text) in [
        ("spec.alertWhenBreaching", "resolve on their own"),
        (
            "spec.notificationTargets[0]",
            "\"on-call\": where alerts go",
        ),
        ("spec.conditions[0]", "burn rate gt 3 over 2h for 10m"),
        (
            "spec.conditions[1].conditionRef",
            "\"elsewhere\" is not among",
        ),
    ] {
        let found = at(&out, field);
        assert!(
            found.len() == 1 && found[0].starts_with("not carried: if an SLO used it: "),
            "{field}: {found:?}"
        );
        assert!(found[0].contains(text), "{field}: {found:?}");
    }
}

#[test]
fn an_objectives_op_is_reported_when_its_indicator_is_refused() {
    let out = run(r#"
apiVersion: openslo/v1
kind: SLO
metadata: {name: a}
spec:
  service: s
  indicator:
    spec:
      ratioMetric:
        good: {metricSource: {type: Other, spec: {query: g}}}
        total: {metricSource: {type: Other, spec: {query: t}}}
  timeWindow: [{duration: 28d, isRolling: true}]
  objectives: [{target: 0.99, op: gt}]
"#);
    assert!(out.slos.is_empty());
    assert_eq!(
        at(&out, "spec.objectives[0].op"),
        ["not carried: op gt goes with the indicator, which is refused; not carried"]
    );
}

#[test]
fn a_threshold_metric_is_compared_as_its_objective_says_or_refused() {
    let slo = |objective: &str| {
        format!(
            r#"
apiVersion: openslo/v1
kind: SLO
metadata: {{name: lag}}
spec:
  service: queue
  indicator:
    spec:
      thresholdMetric: {{metricSource: {{type: Prometheus, spec: {{query: 'max(lag)'}}}}}}
  timeWindow: [{{duration: 1d, isRolling: true}}]
  budgetingMethod: Occurrences
  objectives: [{{target: 0.9, {objective}}}]
"#
        )
    };
    // Each op's points that miss it are the bad ones.
    for (op, bad) in [("lt", ">="), ("lte", ">"), ("gt", "<="), ("GTE", "<")] {
        let out = run(&slo(&format!("op: {op}, value: -2.5")));
        assert!(!out.refused_any(), "{op}: {:?}", out.findings);
        let query = out.slos[0].object.spec.indicator.query.clone().unwrap();
        assert_eq!(
            query.error_ratio,
            format!(
                "sum(sum_over_time(((max(lag)) {bad} bool -2.5)[$window:1m])) \
                 / sum(count_over_time((max(lag))[$window:1m]))"
            ),
            "{op}"
        );
    }
    for (objective, field, why) in [
        ("value: 3", "spec.objectives[0].op", "is missing"),
        (
            "op: eq, value: 3",
            "spec.objectives[0].op",
            "\"eq\" is not one of",
        ),
        ("op: lt", "spec.objectives[0].value", "is missing"),
        ("op: lt, value: many", "spec.objectives[0].value", ""),
    ] {
        let out = run(&slo(objective));
        assert!(out.slos.is_empty(), "{objective}");
        let found = at(&out, field);
        assert!(
            found.len() == 1 && found[0].starts_with("refused: ") && found[0].contains(why),
            "{objective}: {found:?}"
        );
    }
}

// OpenSLO's defaults as its specification states them; apart to keep this file short.
#[path = "tests_openslo.rs"]
mod openslo;

// Pyrra's alerting and windows as Pyrra writes them; apart to keep this file short.
#[path = "tests_pyrra.rs"]
mod pyrra;

// Sloth's alerts and queries as Sloth renders them; apart to keep this file short.
#[path = "tests_sloth.rs"]
mod sloth;
