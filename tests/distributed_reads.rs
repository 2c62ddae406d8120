//! Reading budgets through a distributed store's query layer: the real `plimsoll run` and
//! `plimsoll gate` against a Thanos Query stand-in (tests/support/thanos_query.rs, answering as
//! thanos-io/thanos pkg/api does) in front of a real Prometheus. What the store receives is the
//! protocol: the tenant header of Mimir and Cortex (`X-Scope-OrgID`, grafana/mimir
//! docs/sources/mimir/references/http-api/index.md "Authentication"), the extra headers, and
//! Thanos' `partial_response`; and a partial answer never decides anything.

#[path = "support/operator.rs"]
mod operator;
mod support;
#[path = "support/thanos_query.rs"]
mod thanos_query;
#[path = "trust/world.rs"]
#[allow(dead_code)]
mod world;

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use thanos_query::{Received, STORE_WARNING, ThanosQuery};
use world::{Series, World, condition, deployment, our_keys, slo};

const EXHAUSTED: f64 = 0.002;
const HEALTHY: f64 = 0.0001;

/// With an AnalysisTemplate, which Argo Rollouts queries through the same store.
fn availability() -> Value {
    let mut slo = slo(
        "availability",
        json!([{"kind": "Deployment", "name": "web"}]),
        false,
    );
    slo["spec"]["rollback"]["analysisTemplate"] = json!(true);
    slo
}

fn message(slo: &Value, type_: &str) -> String {
    slo["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == type_))
        .and_then(|c| c["message"].as_str())
        .unwrap_or_default()
        .to_string()
}

fn data_available(w: &World) -> Option<(String, String)> {
    w.slo("availability")
        .and_then(|s| condition(&s, "DataAvailable"))
}

/// The queries received so far; at least one, all of them status queries.
fn queries(thanos: &ThanosQuery) -> Vec<Received> {
    let received = thanos.received();
    assert!(!received.is_empty(), "no query reached the store");
    received
}

/// Tenant, extra headers (one inline, one from a file) and `partial_response=false` on every
/// query; once a store fails, Thanos refuses the query, which is no data and no decision.
#[test]
fn queries_carry_the_tenant_the_headers_and_partial_response_false() {
    let mut w = World::new(vec![deployment("web", "1"), availability()]);
    w.record(&[Series::own(&w, "availability", HEALTHY)]);
    let thanos = ThanosQuery::start(&w.prometheus.url);
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("api-key");
    std::fs::write(&key, "k3y-from-a-secret\n").unwrap();
    let from_file = format!("--prometheus-header=X-Api-Key=@{}", key.display());
    w.start_reading(
        &thanos.url,
        &[
            "--prometheus-tenant=team-a",
            &from_file,
            "--prometheus-header=X-Team=shop",
            "--prometheus-partial-response=false",
            "--partial-response-strategy=warn",
        ],
    );
    w.wait(60, "the budget is read through the query layer", |w| {
        w.slo("availability")
            .is_some_and(|s| s["status"]["errorBudget"]["remaining"] == "90.0")
    });
    for q in queries(&thanos) {
        assert_eq!(
            q.form.get("partial_response").map(String::as_str),
            Some("false"),
            "{q:?}"
        );
        assert_eq!(
            q.headers.get("x-scope-orgid").map(String::as_str),
            Some("team-a")
        );
        assert_eq!(
            q.headers.get("x-api-key").map(String::as_str),
            Some("k3y-from-a-secret")
        );
        assert_eq!(q.headers.get("x-team").map(String::as_str), Some("shop"));
    }
    // Argo Rollouts' queries carry the tenant too, and none of the other headers (which may be
    // secrets: a template is readable by whoever reads the namespace's AnalysisTemplates).
    let template =
        w.ns.get("argoproj.io/v1alpha1", "AnalysisTemplate", "availability")
            .expect("the AnalysisTemplate exists");
    let metrics = template["spec"]["metrics"].as_array().unwrap();
    assert!(
        !metrics.is_empty()
            && metrics
                .iter()
                .all(|m| m["provider"]["prometheus"]["headers"]
                    == json!([{"key": "X-Scope-OrgID", "value": "team-a"}])),
        "{template}"
    );
    // The rules for a Thanos Ruler: the strategy on every group, as applied and as the UI shows.
    let rule =
        w.ns.get("monitoring.coreos.com/v1", "PrometheusRule", "availability")
            .expect("the PrometheusRule exists");
    let groups = rule["spec"]["groups"].as_array().unwrap();
    assert!(
        !groups.is_empty()
            && groups
                .iter()
                .all(|g| g["partial_response_strategy"] == "warn"),
        "{rule}"
    );
    let (code, page) = w
        .operator
        .as_ref()
        .unwrap()
        .get(&format!("/ui/slo/{}/availability", w.namespace()))
        .unwrap();
    assert_eq!(code, 200);
    assert_eq!(
        page.matches("partial_response_strategy: warn").count(),
        groups.len(),
        "the SLO page shows the rules as applied"
    );
    // The rotated secret is sent from the next query on.
    std::fs::write(&key, "rotated").unwrap();
    let before = thanos.received().len();
    w.wait(30, "the rotated key is sent", |_| {
        thanos.received()[before..]
            .iter()
            .any(|q| q.headers.get("x-api-key").map(String::as_str) == Some("rotated"))
    });

    // The budget now exhausted, but a store down: Thanos refuses every query.
    w.record(&[Series::own(&w, "availability", EXHAUSTED)]);
    thanos.store_down();
    w.wait(60, "a refused query is no data", |w| {
        data_available(w) == Some(("False".into(), "PrometheusRefused".into()))
    });
    w.while_rounds_pass(3, || {
        assert_eq!(
            data_available(&w),
            Some(("False".into(), "PrometheusRefused".into()))
        );
        assert!(
            our_keys(&w.deployment("web")).is_empty(),
            "a refused read acted"
        );
    });
    let log = w.finish();
    assert!(
        !log.contains("k3y-from-a-secret") && !log.contains("rotated"),
        "a header value was logged:\n{log}"
    );
}

/// Thanos' default (partial responses allowed): a store down gives a success with warnings.
/// That is DataAvailable=False naming the warning, and no rollback signal however exhausted the
/// budget the other stores show; nothing extra is sent without the flags.
#[test]
fn a_partial_answer_is_no_data_and_never_acts() {
    let mut w = World::new(vec![deployment("web", "1"), availability()]);
    w.record(&[Series::own(&w, "availability", EXHAUSTED)]);
    let thanos = ThanosQuery::start(&w.prometheus.url);
    thanos.store_down();
    w.start_reading(&thanos.url, &[]);
    w.wait(60, "a partial answer is no data", |w| {
        data_available(w) == Some(("False".into(), "PartialResponse".into()))
    });
    let slo = w.slo("availability").unwrap();
    assert!(
        message(&slo, "DataAvailable").contains("store-b:10901"),
        "the reason names the warning: {slo}"
    );
    w.while_rounds_pass(3, || {
        assert!(
            our_keys(&w.deployment("web")).is_empty(),
            "a partial read acted"
        );
    });
    let slo = w.slo("availability").unwrap();
    assert_ne!(slo["status"]["rollback"]["state"], "Exhausted", "{slo}");
    for q in queries(&thanos) {
        assert!(!q.form.contains_key("partial_response"), "{q:?}");
        assert!(!q.headers.contains_key("x-scope-orgid"), "{q:?}");
    }
    w.finish();
}

/// The SLO as the gate reads it from a file: no UID, so its series carry none.
fn gate_slo(dir: &std::path::Path) -> std::path::PathBuf {
    let file = dir.join("slo.yaml");
    let mut object = slo("availability", json!([]), false);
    object["spec"].as_object_mut().unwrap().remove("rollback");
    object["metadata"]["namespace"] = json!("shop");
    let text = serde_json::to_string(&object).unwrap();
    std::fs::write(&file, text).unwrap();
    file
}

fn gate(file: &std::path::Path, url: &str, extra: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_plimsoll"))
        .args([
            "gate",
            "--slo=shop/availability",
            "--min-budget=10",
            "--timeout=5s",
        ])
        .arg(format!("--prometheus-url={url}"))
        .arg(format!("--filename={}", file.display()))
        .args(extra)
        .env_remove("PLIMSOLL_PROMETHEUS_URL")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// The gate passes on a whole answer and sends the same flags; on a partial answer (with or
/// without `partial_response=false`) it cannot tell: exit 2, never a pass.
#[test]
fn the_gate_never_passes_on_a_partial_answer() {
    let w = World::new(vec![]);
    record_local_series(&w);
    let thanos = ThanosQuery::start(&w.prometheus.url);
    let dir = tempfile::tempdir().unwrap();
    let file = gate_slo(dir.path());
    let flags = [
        "--prometheus-tenant=team-a",
        "--prometheus-header=X-Team=shop",
    ];
    // The recorded series appear within a few evaluations (60 s: a bound for a loaded machine).
    let deadline = Instant::now() + Duration::from_secs(60);
    let passed = loop {
        let (code, stdout, stderr) = gate(&file, &thanos.url, &flags);
        if code == Some(0) {
            break stdout;
        }
        assert_eq!(code, Some(3), "{stdout}{stderr}");
        assert!(
            Instant::now() < deadline,
            "the gate did not pass on whole answers within 60 s: {stdout}{stderr}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(passed.starts_with("PASS shop/availability"), "{passed}");
    for q in queries(&thanos) {
        assert_eq!(
            q.headers.get("x-scope-orgid").map(String::as_str),
            Some("team-a")
        );
        assert_eq!(q.headers.get("x-team").map(String::as_str), Some("shop"));
        assert!(!q.form.contains_key("partial_response"), "{q:?}");
    }

    thanos.store_down();
    let (code, stdout, stderr) = gate(&file, &thanos.url, &flags);
    assert_eq!(code, Some(3), "{stdout}{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
    assert!(
        stdout.starts_with("UNKNOWN shop/availability") && stdout.contains(STORE_WARNING),
        "{stdout}"
    );
    // A pipeline that can only tell two codes maps unknown to fail, never to pass by accident.
    let mut failing = flags.to_vec();
    failing.push("--on-unknown=fail");
    let (code, stdout, _) = gate(&file, &thanos.url, &failing);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.starts_with("UNKNOWN shop/availability"), "{stdout}");
    let (code, stdout, stderr) = gate(&file, &thanos.url, &["--prometheus-partial-response=false"]);
    assert_eq!(code, Some(3), "{stdout}{stderr}");
    assert!(stdout.contains("refused"), "{stdout}");
    let last = thanos.received().pop().unwrap();
    assert_eq!(
        last.form.get("partial_response").map(String::as_str),
        Some("false")
    );
}

fn local_once(dir: &std::path::Path, url: &str, extra: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_plimsoll"))
        .args(["local", "--once", "--prometheus-timeout=5s"])
        .arg(format!("--filename={}", dir.join("slos").display()))
        .arg(format!("--rules-out={}", dir.join("rules").display()))
        .arg(format!("--prometheus-url={url}"))
        .args(extra)
        .env_remove("PLIMSOLL_PROMETHEUS_URL")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

/// Healthy series of `shop/availability` as local mode records them (no UID).
fn record_local_series(w: &World) {
    let labels = [
        ("slo", "availability"),
        ("slo_namespace", "shop"),
        ("slo_service", "availability"),
    ];
    w.record(&[Series {
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ratio: HEALTHY,
    }]);
}

/// Local mode sends the same flags, writes the strategy into its rule files for a Thanos Ruler,
/// and a round with a partial answer is an incomplete round (exit 2 with `--once`).
#[test]
fn local_mode_carries_the_flags_and_a_partial_round_is_incomplete() {
    let w = World::new(vec![]);
    record_local_series(&w);
    let thanos = ThanosQuery::start(&w.prometheus.url);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("slos")).unwrap();
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    gate_slo(&dir.path().join("slos"));
    let flags = [
        "--prometheus-tenant=team-a",
        "--prometheus-header=X-Team=shop",
        "--partial-response-strategy=abort",
    ];
    // A round that measured the budget is complete (exit 0) once the recorded series appear
    // (60 s: a bound for a loaded machine); before that nothing is measured (exit 2).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (code, text) = local_once(dir.path(), &thanos.url, &flags);
        if code == Some(0) {
            break;
        }
        assert_eq!(code, Some(2), "{text}");
        assert!(
            Instant::now() < deadline,
            "no complete round within 60 s: {text}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let rules =
        std::fs::read_to_string(dir.path().join("rules/shop_availability.rules.yaml")).unwrap();
    assert_eq!(
        rules.matches("partial_response_strategy: abort").count(),
        2,
        "{rules}"
    );
    for q in queries(&thanos) {
        assert_eq!(
            q.headers.get("x-scope-orgid").map(String::as_str),
            Some("team-a")
        );
        assert_eq!(q.headers.get("x-team").map(String::as_str), Some("shop"));
    }
    thanos.store_down();
    let (code, text) = local_once(dir.path(), &thanos.url, &flags);
    assert_eq!(code, Some(2), "{text}");
}
