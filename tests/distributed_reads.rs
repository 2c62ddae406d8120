//! Reading budgets through the real Thanos (v0.42.5, tests/thanos): two clusters, each a real
//! Prometheus with its own external labels (`cluster="a"`, `cluster="b"`) and a `thanos sidecar`,
//! behind one `thanos query` whose store endpoints are the sidecars' gRPC. Cluster b runs the
//! Prometheus the test run chooses (Debian's 2.42, or 3.16 with `PLIMSOLL_PROMETHEUS=3`), cluster
//! a Debian's 2.42 where the test starts it itself. The real `plimsoll run` (on the real control plane, tests/trust/world.rs),
//! `plimsoll gate` and `plimsoll local` read through it:
//! - `--reading-selector` keeps each cluster's reader on its own series when both clusters have
//!   series of the same SLO, one exhausted and one healthy;
//! - a store that is down never decides anything: with the endpoint strict (always queried),
//!   Thanos answers with `warnings` (partial responses on, its default) or fails the query
//!   (`partial_response=false`, which Plimsoll sends with `--prometheus-partial-response=false`:
//!   the error is the proof that it arrived); with the endpoint not strict Thanos drops it at its
//!   next health check and answers without its data, which is no data for that cluster's reader;
//! - the tenant arrives: Thanos Query enforces it (`--query.tenant-header=X-Scope-OrgID
//!   --query.enforce-tenancy` adds `tenant_id="<tenant>"` to every query), so without it nothing
//!   would be read.
//!
//! What remains in front of the real Query is a pass-through that keeps request headers
//! (tests/support/request_tap.rs), for `--prometheus-header`'s headers only: Thanos Query acts on
//! no header but the tenant's, so only an observer can tell that a header read from a file was
//! sent, rotated, and that nothing is sent without the flags.

#[path = "support/operator.rs"]
mod operator;
#[path = "support/request_tap.rs"]
mod request_tap;
mod support;
#[path = "trust/world.rs"]
#[allow(dead_code)]
mod world;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use request_tap::{Received, RequestTap};
use serde_json::{Value, json};
use support::prometheus::Version;
use support::thanos::{self, Cluster, Component};
use world::{Series, World, condition, deployment, our_keys, slo};

const EXHAUSTED: f64 = 0.002;
const HEALTHY: f64 = 0.0001;

/// The cluster records exactly these series from now on.
fn record(cluster: &Cluster, series: &[Series]) {
    cluster.rules(&world::recording_rules(series));
}

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

fn remaining(w: &World) -> Option<String> {
    w.slo("availability").and_then(|s| {
        s["status"]["errorBudget"]["remaining"]
            .as_str()
            .map(String::from)
    })
}

/// The query requests the tap saw; at least one.
fn queries(tap: &RequestTap) -> Vec<Received> {
    let received = tap.queries();
    assert!(!received.is_empty(), "no query reached Thanos Query");
    received
}

/// The world's Prometheus as cluster `a` (with these external labels) and its sidecar.
fn world_in_a(objects: Vec<Value>, labels: &[(&str, &str)]) -> (World, Component) {
    let w = World::in_cluster(objects, labels);
    let sidecar = thanos::sidecar(&w.prometheus.url);
    (w, sidecar)
}

/// Each cluster's operator reads its own cluster's copy of the SLO's series: with cluster `b`
/// exhausted and `a` healthy, `a`'s operator reads 90 % left and never acts; with the two
/// swapped, it acts. (Both copies carry the SLO's UID, as if one manifest had made both.)
#[test]
fn each_cluster_s_operator_reads_its_own_series() {
    let (mut w, sidecar_a) = world_in_a(
        vec![deployment("web", "1"), availability()],
        &[("cluster", "a")],
    );
    let b = Cluster::start(Version::chosen(), &[("cluster", "b")]);
    let query = thanos::query(
        &thanos::endpoints(&[&sidecar_a.grpc, &b.sidecar.grpc], false),
        &[],
    );
    w.record(&[Series::own(&w, "availability", HEALTHY)]);
    record(&b, &[Series::own(&w, "availability", EXHAUSTED)]);
    w.start_reading(&query.url, &["--reading-selector=cluster=\"a\""]);
    w.wait(60, "cluster a's budget is read", |w| {
        remaining(w).as_deref() == Some("90.0")
    });
    w.while_rounds_pass(3, || {
        assert_eq!(remaining(&w).as_deref(), Some("90.0"));
        assert!(
            our_keys(&w.deployment("web")).is_empty(),
            "cluster b's exhausted budget acted in cluster a"
        );
    });
    // The AnalysisTemplate's queries are scoped the same way.
    let template =
        w.ns.get("argoproj.io/v1alpha1", "AnalysisTemplate", "availability")
            .expect("the AnalysisTemplate exists");
    let queries: Vec<&str> = template["spec"]["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["provider"]["prometheus"]["query"].as_str())
        .collect();
    assert!(
        !queries.is_empty() && queries.iter().all(|q| q.contains("cluster=\"a\"")),
        "{template}"
    );

    w.record(&[Series::own(&w, "availability", EXHAUSTED)]);
    record(&b, &[Series::own(&w, "availability", HEALTHY)]);
    w.wait(60, "cluster a's exhausted budget acts", |w| {
        !our_keys(&w.deployment("web")).is_empty()
    });
    // A round acts on the targets first and then writes the status (which records what it did:
    // src/controller/budget.rs `evaluate`), so the budget it read shows up just after the keys.
    w.wait(60, "cluster a's exhausted budget is reported", |w| {
        remaining(w).as_deref() == Some("-100.0")
    });
    assert!(!our_keys(&w.deployment("web")).is_empty());
    w.finish();
}

/// Tenant (enforced by Thanos Query), extra headers (one inline, one from a file, as the tap
/// saw them) and `partial_response=false` (once cluster a's store is down, Thanos fails the
/// query: `PrometheusRefused`, no data, nothing acts).
#[test]
fn queries_carry_the_tenant_the_headers_and_partial_response_false() {
    let (mut w, mut sidecar_a) = world_in_a(
        vec![deployment("web", "1"), availability()],
        &[("cluster", "a"), ("tenant_id", "team-a")],
    );
    let b = Cluster::start(
        Version::chosen(),
        &[("cluster", "b"), ("tenant_id", "team-b")],
    );
    let query = thanos::query(
        &thanos::endpoints(&[&sidecar_a.grpc, &b.sidecar.grpc], true),
        &[
            "--query.tenant-header=X-Scope-OrgID",
            "--query.enforce-tenancy",
        ],
    );
    let tap = RequestTap::start(&query.url);
    w.record(&[Series::own(&w, "availability", HEALTHY)]);
    record(&b, &[Series::own(&w, "availability", EXHAUSTED)]);
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("api-key");
    std::fs::write(&key, "k3y-from-a-secret\n").unwrap();
    let from_file = format!("--prometheus-header=X-Api-Key=@{}", key.display());
    w.start_reading(
        &tap.url,
        &[
            "--prometheus-tenant=team-a",
            &from_file,
            "--prometheus-header=X-Team=shop",
            "--prometheus-partial-response=false",
            "--partial-response-strategy=warn",
            "--reading-selector=cluster=\"a\",tenant_id=\"team-a\"",
        ],
    );
    w.wait(60, "the budget is read through Thanos Query", |w| {
        remaining(w).as_deref() == Some("90.0")
    });
    for q in queries(&tap) {
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
    let before = tap.queries().len();
    w.wait(30, "the rotated key is sent", |_| {
        tap.queries()[before..]
            .iter()
            .any(|q| q.headers.get("x-api-key").map(String::as_str) == Some("rotated"))
    });

    // Cluster a's store down (its endpoint strict, so still queried), its truth now exhausted:
    // Thanos refuses every query of cluster a.
    sidecar_a.stop();
    w.record(&[Series::own(&w, "availability", EXHAUSTED)]);
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
    drop(query);
}

/// Thanos' default (partial responses allowed) with cluster a's store down and its endpoint
/// strict: a success with warnings. That is DataAvailable=False naming the warning, and no
/// rollback signal however exhausted the budget; nothing extra is sent without the flags.
#[test]
fn a_partial_answer_is_no_data_and_never_acts() {
    let (mut w, mut sidecar_a) = world_in_a(
        vec![deployment("web", "1"), availability()],
        &[("cluster", "a")],
    );
    let b = Cluster::start(Version::chosen(), &[("cluster", "b")]);
    let query = thanos::query(
        &thanos::endpoints(&[&sidecar_a.grpc, &b.sidecar.grpc], true),
        &[],
    );
    let tap = RequestTap::start(&query.url);
    w.record(&[Series::own(&w, "availability", HEALTHY)]);
    record(&b, &[Series::own(&w, "availability", HEALTHY)]);
    w.start_reading(&tap.url, &["--reading-selector=cluster=\"a\""]);
    w.wait(60, "the budget is read", |w| {
        remaining(w).as_deref() == Some("90.0")
    });
    let store_a = sidecar_a.grpc.clone();
    sidecar_a.stop();
    w.record(&[Series::own(&w, "availability", EXHAUSTED)]);
    w.wait(60, "a partial answer is no data", |w| {
        data_available(w) == Some(("False".into(), "PartialResponse".into()))
    });
    let slo = w.slo("availability").unwrap();
    assert!(
        message(&slo, "DataAvailable").contains(&store_a),
        "the reason names the warning (the store that failed): {slo}"
    );
    w.while_rounds_pass(3, || {
        assert!(
            our_keys(&w.deployment("web")).is_empty(),
            "a partial read acted"
        );
    });
    let slo = w.slo("availability").unwrap();
    assert_ne!(slo["status"]["rollback"]["state"], "Exhausted", "{slo}");
    for q in queries(&tap) {
        for header in ["x-scope-orgid", "x-api-key", "x-team"] {
            assert!(!q.headers.contains_key(header), "{q:?}");
        }
    }
    w.finish();
}

/// The SLO as the gate and local mode read it from a file: no UID, so its series carry none.
fn file_slo(dir: &Path) -> PathBuf {
    let file = dir.join("slo.yaml");
    let mut object = slo("availability", json!([]), false);
    object["spec"].as_object_mut().unwrap().remove("rollback");
    object["metadata"]["namespace"] = json!("shop");
    let text = serde_json::to_string(&object).unwrap();
    std::fs::write(&file, text).unwrap();
    file
}

/// Series of `shop/availability` as local mode records them (no UID).
fn local_series(ratio: f64) -> Series {
    let labels = [
        ("slo", "availability"),
        ("slo_namespace", "shop"),
        ("slo_service", "availability"),
    ];
    Series {
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ratio,
    }
}

/// Two clusters behind their sidecars: `a` healthy (Debian's Prometheus 2.42), `b` exhausted
/// ([`Version::chosen`]).
fn two_clusters() -> (Cluster, Cluster) {
    let a = Cluster::start(Version::Two, &[("cluster", "a")]);
    let b = Cluster::start(Version::chosen(), &[("cluster", "b")]);
    record(&a, &[local_series(HEALTHY)]);
    record(&b, &[local_series(EXHAUSTED)]);
    (a, b)
}

fn gate(file: &Path, url: &str, extra: &[&str]) -> (Option<i32>, String, String) {
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
        .env_remove("PLIMSOLL_READING_SELECTOR")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// Runs the gate until it exits with something else than 3 (the recorded series appear within
/// a few evaluations; 60 s is a bound for a loaded machine), and returns that.
fn gate_settled(file: &Path, url: &str, extra: &[&str]) -> (Option<i32>, String) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (code, stdout, stderr) = gate(file, url, extra);
        if code != Some(3) {
            return (code, format!("{stdout}{stderr}"));
        }
        assert!(
            Instant::now() < deadline,
            "the gate ({extra:?}) did not decide within 60 s: {stdout}{stderr}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Each cluster's gate decides from its own cluster's series (a passes, b fails); without a
/// selector both copies carry external labels, so the gate cannot tell and says how to fix it.
/// With a's store down: a strict endpoint gives a partial answer (unknown, never a pass; with
/// `partial_response=false` a refused query), while b's gate, whose selector matches no store
/// but b's, still decides; a plain endpoint is dropped, and a's gate finds no data.
#[test]
fn the_gate_decides_per_cluster_and_never_passes_on_a_partial_answer() {
    let (mut a, b) = two_clusters();
    let query = thanos::query(
        &thanos::endpoints(&[&a.sidecar.grpc, &b.sidecar.grpc], true),
        &[],
    );
    let dir = tempfile::tempdir().unwrap();
    let file = file_slo(dir.path());
    let (code, out) = gate_settled(&file, &query.url, &["--reading-selector=cluster=\"a\""]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.starts_with("PASS shop/availability"), "{out}");
    let (code, out) = gate_settled(&file, &query.url, &["--reading-selector=cluster=\"b\""]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.starts_with("FAIL shop/availability"), "{out}");
    let (code, stdout, _) = gate(&file, &query.url, &[]);
    assert_eq!(code, Some(3), "{stdout}");
    assert!(
        stdout.starts_with("UNKNOWN shop/availability") && stdout.contains("--reading-selector"),
        "{stdout}"
    );

    // The plain endpoints' Query, before a's store goes.
    let plain = thanos::query(
        &thanos::endpoints(&[&a.sidecar.grpc, &b.sidecar.grpc], false),
        &[],
    );
    let store_a = a.sidecar.grpc.clone();
    a.sidecar.stop();
    let only_a = ["--reading-selector=cluster=\"a\""];
    let (code, stdout, stderr) = gate(&file, &query.url, &only_a);
    assert_eq!(code, Some(3), "{stdout}{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
    assert!(
        stdout.starts_with("UNKNOWN shop/availability") && stdout.contains(&store_a),
        "the answer names the store that failed: {stdout}"
    );
    // A pipeline that can only tell two codes maps unknown to fail, never to pass by accident.
    let (code, stdout, _) = gate(&file, &query.url, &[only_a[0], "--on-unknown=fail"]);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.starts_with("UNKNOWN shop/availability"), "{stdout}");
    let (code, stdout, stderr) = gate(
        &file,
        &query.url,
        &[only_a[0], "--prometheus-partial-response=false"],
    );
    assert_eq!(code, Some(3), "{stdout}{stderr}");
    assert!(stdout.contains("refused"), "{stdout}");
    // b's gate still reads b's series alone: a's store is not asked for cluster b.
    let (code, stdout, _) = gate(&file, &query.url, &["--reading-selector=cluster=\"b\""]);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.starts_with("FAIL shop/availability"), "{stdout}");

    // Behind plain endpoints, a's store leaves the set at Query's next health check (every
    // 5 s): from then on the answer for cluster a is a success without data, and the gate
    // never passes on it.
    plain.wait(60, "Query drops the store that is down", |q| {
        thanos::healthy_stores(q) == 1
    });
    let (code, stdout, stderr) = gate(&file, &plain.url, &only_a);
    assert_eq!(code, Some(3), "{stdout}{stderr}");
    assert!(stdout.starts_with("UNKNOWN shop/availability"), "{stdout}");
}

fn local_once(dir: &Path, url: &str, extra: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_plimsoll"))
        .args(["local", "--once", "--prometheus-timeout=5s"])
        .arg(format!("--filename={}", dir.join("slos").display()))
        .arg(format!("--rules-out={}", dir.join("rules").display()))
        .arg(format!("--prometheus-url={url}"))
        .args(extra)
        .env_remove("PLIMSOLL_PROMETHEUS_URL")
        .env_remove("PLIMSOLL_READING_SELECTOR")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

/// Runs one local round until it is complete (exit 0: the budget measured), at most 60 s;
/// before the recorded series appear nothing is measured (exit 2).
fn local_settled(dir: &Path, url: &str, extra: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (code, text) = local_once(dir, url, extra);
        if code == Some(0) {
            return text;
        }
        assert_eq!(code, Some(2), "{text}");
        assert!(
            Instant::now() < deadline,
            "no complete round within 60 s: {text}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Local mode reads each cluster's own series, writes the strategy into its rule files for a
/// Thanos Ruler, and a round with a partial answer is an incomplete round (exit 2 with `--once`)
/// that measures nothing.
#[test]
fn local_mode_reads_per_cluster_and_a_partial_round_is_incomplete() {
    let (mut a, b) = two_clusters();
    let query = thanos::query(
        &thanos::endpoints(&[&a.sidecar.grpc, &b.sidecar.grpc], true),
        &[],
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("slos")).unwrap();
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    file_slo(&dir.path().join("slos"));
    let flags = |cluster: &str| {
        vec![
            "--partial-response-strategy=abort".to_string(),
            format!("--reading-selector=cluster=\"{cluster}\""),
        ]
    };
    let flags_a = flags("a");
    let flags_a: Vec<&str> = flags_a.iter().map(String::as_str).collect();
    let flags_b = flags("b");
    let flags_b: Vec<&str> = flags_b.iter().map(String::as_str).collect();
    let text = local_settled(dir.path(), &query.url, &flags_a);
    assert!(text.contains(" 90.0%"), "cluster a's budget: {text}");
    let text = local_settled(dir.path(), &query.url, &flags_b);
    assert!(text.contains(" -100.0%"), "cluster b's budget: {text}");
    let rules =
        std::fs::read_to_string(dir.path().join("rules/shop_availability.rules.yaml")).unwrap();
    assert_eq!(
        rules.matches("partial_response_strategy: abort").count(),
        2,
        "{rules}"
    );
    a.sidecar.stop();
    let (code, text) = local_once(dir.path(), &query.url, &flags_a);
    assert_eq!(code, Some(2), "{text}");
    assert!(!text.contains(" 90.0%"), "a partial round measured: {text}");
    let text = local_settled(dir.path(), &query.url, &flags_b);
    assert!(text.contains(" -100.0%"), "cluster b's budget: {text}");
}
