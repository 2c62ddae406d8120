//! The AnalysisTemplate against what Argo Rollouts accepts: the API server's schema (the real
//! CRD, read from ../shared/schemas), and the checks Argo itself makes before and while it runs
//! an analysis (argument substitution, metric validation, step-analysis validation, combining
//! templates), as read from its source.

mod support;

use plimsoll::manifests::{self, Decoded};
use plimsoll::model::{LabelMatcher, MatchKind, Slo};
use plimsoll::rules::{AnalysisTemplate, QueryTarget, analysis_template};
use serde_json::{Value, json};

/// When the templates are rendered: 2026-12-07T00:00Z.
fn at() -> k8s_openapi::jiff::Timestamp {
    k8s_openapi::jiff::Timestamp::from_second(1_796_601_600).unwrap()
}

/// The real CRD, read from ../shared/schemas.
fn crd_schema() -> Option<Value> {
    support::crd_schema::crd_schema("analysis-template-crd.yaml", "v1alpha1")
}

fn slo(spec: Value) -> Slo {
    let manifest = json!({
        "apiVersion": "plimsoll.dev/v1alpha1", "kind": "ServiceLevelObjective",
        "metadata": {"name": "checkout", "namespace": "shop"}, "spec": spec,
    });
    match manifests::decode(&manifest) {
        Decoded::Valid(v) => v.1,
        other => panic!("{other:?}"),
    }
}

fn spec(window: &str, extra: Value) -> Value {
    let mut s = json!({"service": "checkout", "objective": 99.9, "window": window,
        "indicator": {"ratio": {"errors": "e_total", "total": "t_total", "groupBy": ["route"]}},
        "rollback": {"analysisTemplate": true, "trigger": {
            "budgetRemainingBelow": 10, "burnRateAbove": {"window": "1h", "factor": 14.4}}}});
    for (k, v) in extra.as_object().unwrap() {
        s[k] = v.clone();
    }
    s
}

/// The operator's reading selector, with a regex whose braces Argo would take for an argument.
fn scope() -> Vec<LabelMatcher> {
    let m = |name: &str, op, value: &str| LabelMatcher {
        name: name.into(),
        op,
        value: value.into(),
    };
    vec![
        m("cluster", MatchKind::Equal, "a"),
        m("tenant", MatchKind::Regex, "t{{1,2}}"),
    ]
}

fn every_kind() -> Vec<AnalysisTemplate> {
    let timeslices = json!({"budgetingMethod": "Timeslices",
        "timeslice": {"duration": "1m", "objective": 95}});
    [
        spec("30d", json!({})),
        spec("month", json!({"timeZone": "Europe/Berlin"})),
        spec("week", json!({"timeZone": "America/New_York"})),
        spec("month", timeslices),
        spec("28d", json!({"rollback": {"analysisTemplate": true}})),
    ]
    .into_iter()
    .map(|s| {
        let slo = slo(s);
        let policy = slo.rollback.as_ref().unwrap();
        // With a Mimir tenant: the headers Argo Rollouts' provider sends, as its CRD has them.
        let target = QueryTarget {
            address: "http://prometheus:9090",
            tenant: Some("team-a"),
        };
        analysis_template(&slo, policy, "shop", target, Some("u-1"), &scope(), at())
    })
    .collect()
}

#[test]
fn the_template_satisfies_the_analysis_template_crd() {
    let Some(schema) = crd_schema() else {
        return;
    };
    for t in every_kind() {
        let value = serde_json::to_value(&t).unwrap();
        assert_eq!(
            (&value["apiVersion"], &value["kind"]),
            (&json!("argoproj.io/v1alpha1"), &json!("AnalysisTemplate"))
        );
        for metric in value["spec"]["metrics"].as_array().unwrap() {
            assert_eq!(
                metric["provider"]["prometheus"]["headers"],
                json!([{"key": "X-Scope-OrgID", "value": "team-a"}])
            );
        }
        let mut out = Vec::new();
        support::crd_schema::violations(&schema, &value, "", &mut out);
        assert!(out.is_empty(), "{out:#?}\n{value:#}");
    }
}

/// Argo's `ResolveMetricArgs`: `{{args.NAME}}` replaced in the metric's JSON; any other `{{...}}`
/// fails the run (an Error, which aborts the Rollout).
fn resolved(t: &AnalysisTemplate, args: &[(&str, &str)]) -> Vec<Value> {
    let value = |name: &str| {
        let given = args
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.to_string());
        let default = t
            .spec
            .args
            .iter()
            .find(|a| a.name == name)
            .and_then(|a| a.value.clone());
        given
            .or(default)
            .unwrap_or_else(|| panic!("argument {name} has no value"))
    };
    let mut text = serde_json::to_string(&t.spec.metrics).unwrap();
    for a in &t.spec.args {
        text = text.replace(&format!("{{{{args.{}}}}}", a.name), &value(&a.name));
    }
    assert!(!text.contains("{{"), "an unresolved placeholder: {text}");
    serde_json::from_str(&text).unwrap()
}

/// Argo's `IntOrString.IntValue()`: a string that is no number counts 0.
fn int(v: &Value) -> i64 {
    v.as_i64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or(0)
}

#[test]
fn argo_accepts_it_for_step_and_background_analysis() {
    for t in every_kind() {
        for m in resolved(&t, &[]) {
            // `ValidateMetric`; a step analysis is validated with the template's own arguments,
            // and refused when a metric has an interval but no count (runs indefinitely).
            let (count, limit) = (int(&m["count"]), int(&m["failureLimit"]));
            assert!(count > 0 && count >= limit, "{m}");
            assert!(int(&m["consecutiveErrorLimit"]) >= 0, "{m}");
            assert_eq!(m["interval"], "1m");
            assert!(
                m["successCondition"].is_null(),
                "a success condition makes no data Inconclusive"
            );
            let q = m["provider"]["prometheus"]["query"].as_str().unwrap();
            promql_parser::parser::parse(q).unwrap_or_else(|e| panic!("{e}: {q}"));
        }
        // A step sets a few measurements; a background analysis may run unbounded ("0").
        for (given, expected) in [("3", 3), ("0", 0)] {
            for m in resolved(&t, &[("plimsoll-count", given)]) {
                assert_eq!(int(&m["count"]), expected);
            }
        }
    }
}

#[test]
fn templates_of_several_slos_combine_in_one_rollout() {
    // `FlattenTemplates`: metric names must be unique across templates, and arguments of the same
    // name must have the same value.
    let make = |name: &str| {
        let mut s = slo(spec("30d", json!({})));
        s.name = name.into();
        analysis_template(
            &s,
            s.rollback.as_ref().unwrap(),
            "shop",
            QueryTarget {
                address: "http://p",
                tenant: None,
            },
            None,
            &[],
            at(),
        )
    };
    let (a, b) = (make("checkout"), make("payments"));
    let names: std::collections::BTreeSet<&str> = a
        .spec
        .metrics
        .iter()
        .chain(&b.spec.metrics)
        .map(|m| m.name.as_str())
        .collect();
    assert_eq!(names.len(), a.spec.metrics.len() + b.spec.metrics.len());
    assert_eq!(a.spec.args, b.spec.args);
}

#[test]
fn every_selector_picks_the_slos_own_series() {
    // A record name and its braces, whose quoted values may hold braces.
    let selector =
        regex::Regex::new(r#"(slo:[a-z0-9_:]+)\{((?:[^}"]|"(?:[^"\\]|\\.)*")*)\}"#).unwrap();
    for t in every_kind() {
        for m in &t.spec.metrics {
            let q = &m.provider.prometheus.query;
            let found: Vec<_> = selector.captures_iter(q).collect();
            assert!(!found.is_empty(), "{q}");
            for c in found {
                assert_eq!(
                    &c[2],
                    r#"slo="checkout",slo_namespace="shop",slo_service="checkout",slo_uid="u-1",cluster="a",tenant=~"t\x7b\x7b1,2}}""#,
                    "{q}"
                );
            }
        }
    }
}

#[test]
fn a_template_written_by_an_earlier_version_still_reads() {
    let stored = json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate",
        "metadata": {"name": "checkout", "namespace": "shop"},
        "spec": {"metrics": [{"name": "burn-rate-1h", "interval": "1m", "failureLimit": 0,
            "failureCondition": "len(result) > 0 && result[0] > 14.4",
            "provider": {"prometheus": {"address": "http://p", "query": "vector(1)"}}}]}});
    let old: AnalysisTemplate = serde_json::from_value(stored).unwrap();
    let new = &every_kind()[0];
    assert_ne!(
        old.spec, new.spec,
        "differs, so the operator applies the new one"
    );
}

#[test]
fn the_readme_rollout_sets_the_templates_count() {
    let readme = std::fs::read_to_string(support::repo().join("README.md")).unwrap();
    let block = readme
        .split("```yaml\n")
        .filter_map(|rest| rest.split("\n```").next())
        .find(|b| b.contains("templateName: checkout"))
        .expect("the README shows a Rollout using the template");
    let rollout: Value = serde_saphyr::from_str(block).unwrap();
    let canary = &rollout["strategy"]["canary"];
    let step = canary["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["analysis"].is_object());
    let t = &every_kind()[0];
    for (analysis, count) in [(&canary["analysis"], 0), (&step.unwrap()["analysis"], 5)] {
        assert_eq!(analysis["templates"][0]["templateName"], "checkout");
        let args: Vec<(&str, &str)> = analysis["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| (a["name"].as_str().unwrap(), a["value"].as_str().unwrap()))
            .collect();
        assert!(
            args.iter()
                .all(|(n, _)| t.spec.args.iter().any(|a| a.name == *n)),
            "{args:?}"
        );
        assert!(resolved(t, &args).iter().all(|m| int(&m["count"]) == count));
    }
}
