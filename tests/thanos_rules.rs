//! Rules for Thanos Ruler: `partial_response_strategy` on the generated groups, from
//! `--partial-response-strategy` and each SLO's `spec.partialResponseStrategy` (which wins).
//! Thanos reads the group field case-insensitively, `warn` or `abort`, empty meaning abort
//! (thanos-io/thanos pkg/rules/manager.go `configRuleAdapter`, pkg/store/storepb/custom.go
//! `PartialResponseStrategy.UnmarshalJSON`). prometheus-operator's PrometheusRule has the same
//! group field (pattern `^(?i)(abort|warn)?$`) and drops it for Prometheus (pkg/operator/rules.go);
//! a plain Prometheus refuses a rule file with it, as promtool shows here.

mod support;

use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// Two SLOs: `checkout` sets `abort` itself, `search` sets nothing.
const MANIFESTS: &str = r#"
apiVersion: plimsoll.dev/v1alpha1
kind: ServiceLevelObjective
metadata: {name: checkout, namespace: shop}
spec:
  service: checkout
  objective: 99.9
  window: 30d
  partialResponseStrategy: abort
  indicator:
    ratio: {errors: 'http_requests_total{code=~"5.."}', total: http_requests_total}
---
apiVersion: plimsoll.dev/v1alpha1
kind: ServiceLevelObjective
metadata: {name: search, namespace: shop}
spec:
  service: search
  objective: 99.5
  window: 28d
  indicator:
    ratio: {errors: 'search_requests_total{code=~"5.."}', total: search_requests_total}
"#;

fn generate(dir: &Path, extra: &[&str]) -> String {
    let file = dir.join("slos.yaml");
    std::fs::write(&file, MANIFESTS).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_plimsoll"))
        .arg("generate")
        .arg(format!("--filename={}", file.display()))
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Each group's strategy by group name.
fn strategies(groups: &Value) -> Vec<(String, Option<String>)> {
    groups
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            let strategy = g.get("partial_response_strategy");
            (
                g["name"].as_str().unwrap().to_string(),
                strategy.map(|s| s.as_str().unwrap().to_string()),
            )
        })
        .collect()
}

fn promtool_check(file: &Path) -> (bool, String) {
    let out = Command::new("promtool")
        .args(["check", "rules"])
        .arg(file)
        .output()
        .expect("promtool is installed (Debian's prometheus)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn the_slo_s_strategy_wins_over_the_flag_and_none_is_written_unless_asked() {
    let dir = tempfile::tempdir().unwrap();
    let plain: Value = serde_saphyr::from_str(&generate(dir.path(), &[])).unwrap();
    let expect = |ns_name: &str, strategy: Option<&str>| {
        ["fast", "slow"].map(|part| {
            (
                format!("plimsoll/shop/{ns_name}/{part}"),
                strategy.map(String::from),
            )
        })
    };
    let mut want = expect("checkout", Some("abort")).to_vec();
    want.extend(expect("search", None));
    assert_eq!(strategies(&plain["groups"]), want);

    let warned: Value =
        serde_saphyr::from_str(&generate(dir.path(), &["--partial-response-strategy=warn"]))
            .unwrap();
    let mut want = expect("checkout", Some("abort")).to_vec();
    want.extend(expect("search", Some("warn")));
    assert_eq!(strategies(&warned["groups"]), want);
}

/// Without any strategy the file is a plain Prometheus rule file; with one, promtool (Prometheus
/// 2.42's rule parser) refuses exactly that field, so such a file is for Thanos Ruler only.
#[test]
fn promtool_accepts_the_file_without_the_field_and_refuses_it_with() {
    let dir = tempfile::tempdir().unwrap();
    let manifests = dir.path().join("slos.yaml");
    std::fs::write(
        &manifests,
        MANIFESTS.replace("  partialResponseStrategy: abort\n", ""),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_plimsoll"))
        .args(["generate", "-f"])
        .arg(&manifests)
        .output()
        .unwrap();
    assert!(out.status.success());
    let plain = dir.path().join("plain.yaml");
    std::fs::write(&plain, &out.stdout).unwrap();
    let (ok, text) = promtool_check(&plain);
    assert!(ok, "{text}");

    let thanos = dir.path().join("thanos.yaml");
    let body = generate(dir.path(), &["--partial-response-strategy=warn"]);
    assert!(body.contains("partial_response_strategy: warn"), "{body}");
    std::fs::write(&thanos, &body).unwrap();
    let (ok, text) = promtool_check(&thanos);
    assert!(!ok, "{text}");
    assert!(
        text.contains("field partial_response_strategy not found in type rulefmt.RuleGroup"),
        "{text}"
    );
    // That field is all promtool refuses: without it, the same groups pass.
    let stripped: String = body
        .lines()
        .filter(|l| !l.trim_start().starts_with("partial_response_strategy:"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&thanos, stripped).unwrap();
    let (ok, text) = promtool_check(&thanos);
    assert!(ok, "{text}");
}

/// The PrometheusRules, with and without the field, are what prometheus-operator's CRD accepts.
#[test]
fn prometheus_rules_with_the_field_fit_the_prometheus_operator_schema() {
    let Some(schema) = support::crd_schema::crd_schema("prometheusrules-crd.yaml", "v1") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for extra in [&[][..], &["--partial-response-strategy=warn"][..]] {
        let mut args = vec!["--format=prometheusrule"];
        args.extend_from_slice(extra);
        let text = generate(dir.path(), &args);
        let objects: Vec<Value> = text
            .split("---\n")
            .filter(|d| !d.trim().is_empty())
            .map(|d| serde_saphyr::from_str(d).unwrap())
            .collect();
        assert_eq!(objects.len(), 2, "{text}");
        for object in &objects {
            let mut out = Vec::new();
            support::crd_schema::violations(&schema, object, "", &mut out);
            assert!(out.is_empty(), "{out:?}\n{object}");
        }
        let search = &objects[1];
        let want = extra.first().map(|_| "warn".to_string());
        assert!(
            strategies(&search["spec"]["groups"])
                .iter()
                .all(|(_, s)| *s == want),
            "{search}"
        );
        assert!(
            strategies(&objects[0]["spec"]["groups"])
                .iter()
                .all(|(_, s)| s.as_deref() == Some("abort"))
        );
    }
}

/// Counters rising by `total` and `errors` per second (`code="200"` and `code="500"`) for both
/// SLOs' metrics, recorded every second.
fn traffic(total: f64, errors: f64) -> String {
    let mut out = String::from("groups:\n- name: traffic\n  interval: 1s\n  rules:\n");
    for metric in ["http_requests_total", "search_requests_total"] {
        for (code, rate) in [("200", total - errors), ("500", errors)] {
            out.push_str(&format!(
                "  - {{record: {metric}, expr: \"vector(time() * {rate})\", labels: {{code: \"{code}\"}}}}\n"
            ));
        }
    }
    out
}

/// The ruler's rule groups (`/api/v1/rules`), by name.
fn ruler_groups(ruler: &support::thanos::Component) -> Vec<Value> {
    ruler.json("/api/v1/rules")["data"]["groups"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Whether a rule's expression is a constant, `vector(<number>)` (the objective, the budget, the
/// window, the info series): it selects no series, so no store is asked for it.
fn constant(query: &str) -> bool {
    query
        .strip_prefix("vector(")
        .and_then(|rest| rest.strip_suffix(')'))
        .is_some_and(|n| n.parse::<f64>().is_ok())
}

/// The health (`ok`, `err`, `unknown` before the first evaluation) of the rules of one SLO's
/// groups: those that read series, and the constant ones.
fn health(ruler: &support::thanos::Component, slo: &str) -> (Vec<String>, Vec<String>) {
    let rules: Vec<Value> = ruler_groups(ruler)
        .iter()
        .filter(|g| {
            g["name"]
                .as_str()
                .is_some_and(|n| n.contains(&format!("/{slo}/")))
        })
        .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
        .collect();
    let (constants, reading): (Vec<&Value>, Vec<&Value>) = rules
        .iter()
        .partition(|r| constant(r["query"].as_str().unwrap_or_default()));
    let of = |rules: Vec<&Value>| -> Vec<String> {
        rules
            .iter()
            .map(|r| r["health"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    (of(reading), of(constants))
}

fn all(health: &[String], want: &str) -> bool {
    !health.is_empty() && health.iter().all(|h| h == want)
}

/// The real Thanos Rule (v0.42.5) evaluates the groups `plimsoll generate` writes, querying the
/// real Thanos Query over two clusters' sidecars: their recording rules produce series that a
/// Query over the sidecars and the ruler returns. With one store down (its endpoint strict, so
/// still queried), each group's `partial_response_strategy` is honoured as Thanos documents it
/// (docs/components/rule.md, "Partial Response"): `abort` (checkout's own) makes every
/// evaluation that reads series fail, `warn` (search's, from the flag) evaluates on what
/// answered and counts a warning (`thanos_rule_evaluation_with_warnings_total{strategy="warn"}`).
/// A constant rule (`vector(0.999)`) asks no store, so it evaluates under either strategy.
#[test]
fn thanos_rule_evaluates_the_groups_and_honours_each_strategy() {
    use support::prometheus::Version;
    use support::thanos::{self, Cluster};

    let mut a = Cluster::start(Version::Two, &[("cluster", "a")]);
    let b = Cluster::start(Version::chosen(), &[("cluster", "b")]);
    a.rules(&traffic(10.0, 0.01));
    b.rules(&traffic(10.0, 0.05));
    let dir = tempfile::tempdir().unwrap();
    // The groups as generated, without their intervals (30s and 5m), so that the ruler's
    // `--eval-interval=1s` applies: a group's own interval wins, and Prometheus' rule manager
    // (which Thanos Rule runs) first evaluates a group at an offset of up to one interval, so a
    // 5m group could stay unevaluated for five minutes, before and after the store goes down.
    // Health and strategy do not depend on the cadence.
    let mut generated: Value =
        serde_saphyr::from_str(&generate(dir.path(), &["--partial-response-strategy=warn"]))
            .unwrap();
    for group in generated["groups"].as_array_mut().unwrap() {
        let interval = group.as_object_mut().unwrap().remove("interval");
        assert!(
            interval.is_some(),
            "every generated group sets its interval"
        );
    }
    let rules = dir.path().join("slos.rules.yaml");
    std::fs::write(&rules, serde_json::to_string(&generated).unwrap()).unwrap();
    // The ruler first, asking a Query that is not up yet (its evaluations fail until then), and
    // then that Query over the sidecars and the ruler's own Store API (as Thanos deploys it:
    // rules that read recorded series find them), every endpoint strict so that a store down
    // fails or warns. In the other order Query would hold the ruler's endpoint before it
    // listened: a strict endpoint stays queried when it does not answer (endpointset.go
    // `isQueryable`), and until gRPC reconnects a warn group's evaluations would answer
    // partially and count warnings with every store up.
    let query_port = support::demo::free_port();
    let ruler = thanos::rule(&[&rules], &format!("http://127.0.0.1:{query_port}"), "r");
    let query = thanos::query_at(
        query_port,
        &thanos::endpoints(&[&a.sidecar.grpc, &b.sidecar.grpc, &ruler.grpc], true),
        &[],
    );
    let reader = &query;

    let groups = ruler_groups(&ruler);
    let strategies: Vec<(String, String)> = groups
        .iter()
        .map(|g| {
            (
                g["name"].as_str().unwrap_or_default().to_string(),
                g["partialResponseStrategy"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    let mut want: Vec<(String, String)> = ["checkout", "search"]
        .iter()
        .flat_map(|slo| {
            let strategy = if *slo == "checkout" { "ABORT" } else { "WARN" };
            ["fast", "slow"]
                .map(|part| (format!("plimsoll/shop/{slo}/{part}"), strategy.to_string()))
        })
        .collect();
    want.sort();
    let mut got = strategies.clone();
    got.sort();
    assert_eq!(got, want, "{groups:?}");

    // The recorded ratios of both SLOs, as the reader sees them (labelled by the ruler).
    let recorded = |slo: &str| {
        let answer: Value = support::prometheus::http()
            .post(format!("{}/api/v1/query", reader.url))
            .form(&[(
                "query",
                format!("slo:sli_error:ratio_rate5m{{slo=\"{slo}\",ruler=\"r\"}}"),
            )])
            .send()
            .and_then(|r| r.json())
            .unwrap_or(Value::Null);
        answer["data"]["result"]
            .as_array()
            .map(|r| r.len())
            .unwrap_or(0)
    };
    reader.wait(120, "the ruler's series are readable through Query", |_| {
        recorded("checkout") > 0 && recorded("search") > 0
    });
    ruler.wait(60, "every rule evaluates", |r| {
        let (checkout, checkout_constant) = health(r, "checkout");
        let (search, search_constant) = health(r, "search");
        [checkout, checkout_constant, search, search_constant]
            .iter()
            .all(|h| all(h, "ok"))
    });
    assert_eq!(
        ruler.metric(
            "thanos_rule_evaluation_with_warnings_total",
            &[("strategy", "warn")]
        ),
        0.0,
        "no warning while every store answers"
    );

    a.sidecar.stop();
    ruler.wait(60, "abort fails, warn evaluates with warnings", |r| {
        let (checkout, checkout_constant) = health(r, "checkout");
        let (search, search_constant) = health(r, "search");
        all(&checkout, "err")
            && all(&checkout_constant, "ok")
            && all(&search, "ok")
            && all(&search_constant, "ok")
            && r.metric(
                "thanos_rule_evaluation_with_warnings_total",
                &[("strategy", "warn")],
            ) > 0.0
    });
    assert_eq!(
        ruler.metric(
            "thanos_rule_evaluation_with_warnings_total",
            &[("strategy", "abort")]
        ),
        0.0,
        "an abort group's query never answers partially"
    );
}
