//! Two `plimsoll run` replicas against a small API server on loopback: one leads, the other stands
//! by and is ready; on SIGTERM the leader releases the Lease and the standby takes over.
//!
//! The API server serves what the replicas ask for: the Lease (GET, POST, server-side apply with
//! field ownership and 409 on a conflicting holder, strategic merge to release), empty lists and
//! open watches of SLOs and PrometheusRules, and Events.

#[path = "support/fake_api.rs"]
mod fake_api;
mod flagger;
#[path = "support/operator.rs"]
mod operator;
#[path = "support/prometheus.rs"]
mod prometheus_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use fake_api::{Shared, api_server, kubeconfig};
use operator::Operator;
use prometheus_support::Prometheus;
use serde_json::json;

/// The Lease timings `plimsoll run` uses (src/cli/run.rs, `Operator::lead`): a standby may take
/// the Lease once it has gone this long without renewal ...
const LEASE_DURATION: Duration = Duration::from_secs(15);
/// ... and the holder renews it this long before then.
const LEASE_GRACE: Duration = Duration::from_secs(5);

/// One replica of the operator, with leader election in the namespace `plimsoll`.
fn replica(kubeconfig: &std::path::Path, identity: &str, extra: &[&str]) -> Operator {
    let identity = format!("--identity={identity}");
    let mut args = vec!["--lease-namespace=plimsoll", identity.as_str()];
    args.extend_from_slice(extra);
    Operator::start(kubeconfig, &args)
}

fn wait_until(what: &str, seconds: u64, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while !condition() {
        assert!(Instant::now() < deadline, "{what}: not within {seconds} s");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// An empty cluster, and the checkout example as the API server would store it.
fn cluster_with_example() -> (Shared, serde_json::Value) {
    let manifest = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/checkout-availability.yaml"
    ))
    .unwrap();
    let mut slo: serde_json::Value = serde_saphyr::from_str(&manifest).unwrap();
    slo["metadata"]["uid"] = json!("slo-uid");
    slo["metadata"]["generation"] = json!(1);
    slo["metadata"]["resourceVersion"] = json!("5");
    (Arc::default(), slo)
}

#[test]
fn the_standby_takes_over_when_the_leader_stops() {
    let (cluster, mut slo) = cluster_with_example();
    // An exhausted budget, as the leader's evaluator would have written it.
    slo["status"] = json!({"rollback": {"state": "Exhausted"}, "conditions": [
        {"type": "DataAvailable", "status": "True", "reason": "SeriesPresent", "message": "",
         "lastTransitionTime": "2027-01-15T08:00:00Z"}]});
    // Its rollback targets the checkout canary's Deployment (dry run: nothing is written).
    slo["spec"]["rollback"] =
        json!({"dryRun": true, "targets": [{"kind": "Deployment", "name": "checkout"}]});
    // A healthy one beside it, for the payments canary.
    let mut healthy = slo.clone();
    healthy["metadata"]["name"] = json!("payments-availability");
    healthy["metadata"]["uid"] = json!("slo-uid-2");
    healthy["spec"]["rollback"]["targets"][0]["name"] = json!("payments");
    healthy["status"]["rollback"]["state"] = json!("Healthy");
    cluster.lock().unwrap().slos.extend([slo, healthy]);
    let port = api_server(cluster.clone());
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = kubeconfig(dir.path(), port);

    let a = replica(&kubeconfig, "replica-a", &[]);
    wait_until("replica-a leads", 30, || a.leading());
    wait_until("replica-a is ready (watches synced)", 30, || a.ready());

    let b = replica(&kubeconfig, "replica-b", &[]);
    wait_until("replica-b stands by, ready", 30, || b.ready());
    // Not two leaders: replica-b has read the Lease by the time it is ready, and may take it
    // only once that Lease has gone LEASE_DURATION without renewal, while replica-a renews it
    // LEASE_GRACE before then. So watch until replica-b's first chance has passed and replica-a
    // has renewed after it: then replica-b has met a live Lease at its chance and stood back.
    let ready = Instant::now();
    let version = || cluster.lock().unwrap().lease.version;
    let mut renewed_from = None;
    // An idle machine is done once replica-a renews next after the chance: by
    // LEASE_DURATION + (LEASE_DURATION - LEASE_GRACE) = 25 s. Three times that for a loaded one.
    let deadline = ready + (LEASE_DURATION * 2 - LEASE_GRACE) * 3;
    loop {
        assert!(!b.leading(), "two leaders at once");
        assert!(
            a.leading(),
            "replica-a stopped leading with replica-b standing by"
        );
        assert_eq!(cluster.lock().unwrap().lease.holders, ["replica-a"]);
        if ready.elapsed() >= LEASE_DURATION {
            let from = *renewed_from.get_or_insert_with(version);
            if version() > from {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "replica-a did not renew the Lease after replica-b's first chance within {:?}",
            deadline - ready
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Flagger may reach either replica through the Service: both give the same answer.
    for replica in [&a, &b] {
        let by_hand = |slo: &str| {
            replica
                .get(&format!("/flagger/rollback?slo={slo}"))
                .unwrap()
                .0
        };
        assert_eq!(by_hand("shop/checkout-availability"), 200);
        assert_eq!(by_hand("shop/unknown"), 404);
        // As Flagger calls it: POST, Flagger's headers and body (tests/flagger).
        flagger::assert_the_protocol(
            &format!("http://127.0.0.1:{}/flagger/rollback", replica.port),
            "shop",
            ("checkout-availability", "checkout"),
            ("payments-availability", "payments"),
        );
    }

    let (exit, log) = a.terminate();
    assert_eq!(exit, Some(0), "{log}");
    assert!(log.contains("released the leader lease"), "{log}");
    let released = cluster.lock().unwrap().lease.object.clone().unwrap();
    // Released, or already taken by the standby in the meantime.
    let holder = released["spec"].get("holderIdentity").cloned();
    assert!(
        holder.is_none() || holder == Some(json!("replica-b")),
        "{released}"
    );

    wait_until("replica-b takes over", 40, || b.leading());
    assert_eq!(
        cluster.lock().unwrap().lease.holders,
        ["replica-a", "replica-b"]
    );
    let (exit, log) = b.terminate();
    assert_eq!(exit, Some(0), "{log}");
    assert_eq!(cluster.lock().unwrap().refused, Vec::<String>::new());
}

#[test]
fn the_running_operator_reconciles_an_slo_end_to_end() {
    let (cluster, mut slo) = cluster_with_example();
    slo["metadata"]["labels"] = json!({"team": "shop"});
    cluster.lock().unwrap().slos.push(slo);
    let port = api_server(cluster.clone());
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = kubeconfig(dir.path(), port);

    // A real Prometheus that has no series for the SLO yet.
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(&config, "global: {evaluation_interval: 10s}\n").unwrap();
    let prometheus = Prometheus::start(&data, &config);
    let url = format!("--prometheus-url={}", prometheus.url);
    let replica = replica(&kubeconfig, "solo", &[&url, "--evaluation-interval=1s"]);
    wait_until(
        "the rule is applied and both status writers wrote",
        30,
        || {
            let c = cluster.lock().unwrap();
            c.rules.contains_key("shop/checkout-availability")
                && c.statuses
                    .get("shop/checkout-availability")
                    .is_some_and(|s| s["conditions"].as_array().is_some_and(|c| c.len() == 3))
        },
    );
    wait_until("ready", 10, || replica.ready());
    let (rule, status, events) = {
        let c = cluster.lock().unwrap();
        (
            c.rules["shop/checkout-availability"].clone(),
            c.statuses["shop/checkout-availability"].clone(),
            c.events.clone(),
        )
    };
    assert_eq!(rule["metadata"]["ownerReferences"][0]["uid"], "slo-uid");
    assert!(rule["metadata"]["labels"].get("team").is_none());
    let condition = |type_: &str| {
        status["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == type_)
            .cloned()
            .unwrap()
    };
    assert_eq!(condition("Ready")["status"], "True");
    // The evaluator found no series: it says so and decides nothing.
    assert_eq!(condition("DataAvailable")["status"], "False");
    assert_eq!(condition("DataAvailable")["reason"], "SeriesMissing");
    assert_eq!(condition("BudgetExhausted")["status"], "False");
    assert_eq!(status["observedGeneration"], 1);
    assert!(events.iter().any(|e| e["reason"] == "RulesCreated"));
    // Flagger's webhook: no rollback without current data; unknown SLOs and bad queries refused.
    let flagger = |query: &str| replica.get(&format!("/flagger/rollback{query}")).unwrap().0;
    assert_eq!(flagger("?slo=shop/checkout-availability"), 412);
    assert_eq!(flagger("?slo=shop/unknown"), 404);
    assert_eq!(flagger(""), 400);
    let (_, metrics) = replica.get("/metrics").unwrap();
    assert!(
        metrics.contains("plimsoll_reconciles_total{result=\"ok\"}"),
        "{metrics}"
    );
    let (exit, log) = replica.terminate();
    assert_eq!(exit, Some(0), "{log}");
    // Every call the running operator made is one its RBAC grants (src/access.rs); the rule was
    // created by apply, which the API server also authorizes as `create`.
    assert_eq!(cluster.lock().unwrap().refused, Vec::<String>::new());
}

/// The SLO's recorded series as Prometheus would hold them, written by Prometheus itself every
/// second: 0.02% errors over the window on a 99.9% SLO (80% of the budget left), calm burn rates.
const RECORDED: &str = r#"
groups:
- name: recorded
  interval: 1s
  rules:
  - {record: "slo:sli_error:ratio_window", expr: "vector(0.0002)", labels: &l {slo: checkout-availability, slo_namespace: shop, slo_service: checkout, slo_uid: slo-uid}}
  - {record: "slo:sli_error:ratio_rate5m", expr: "vector(0.0002)", labels: *l}
  - {record: "slo:sli_error:ratio_rate1h", expr: "vector(0.0002)", labels: *l}
  - {record: "slo:sli_error:ratio_rate6h", expr: "vector(0.0002)", labels: *l}
"#;

#[test]
fn prometheus_stopping_mid_run_turns_data_unavailable_and_nothing_else() {
    let (cluster, slo) = cluster_with_example();
    cluster.lock().unwrap().slos.push(slo);
    let port = api_server(cluster.clone());
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = kubeconfig(dir.path(), port);
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let config = prometheus_support::rules_config(dir.path(), RECORDED, "1s");
    let prometheus = Prometheus::start(&data, &config);
    let url = format!("--prometheus-url={}", prometheus.url);
    let replica = replica(&kubeconfig, "solo", &[&url, "--evaluation-interval=1s"]);
    let data_available = || {
        let c = cluster.lock().unwrap();
        let status = c.statuses.get("shop/checkout-availability").cloned();
        status.and_then(|s| {
            let conditions = s["conditions"].as_array()?.clone();
            let c = conditions.iter().find(|c| c["type"] == "DataAvailable")?;
            Some((
                c["status"].as_str()?.to_string(),
                c["reason"].as_str()?.to_string(),
                s,
            ))
        })
    };
    wait_until("the budget is read from Prometheus", 60, || {
        data_available().is_some_and(|(status, _, _)| status == "True")
    });
    let (_, _, before) = data_available().unwrap();
    assert_eq!(before["sli"], "99.9800");
    assert_eq!(before["errorBudget"]["remaining"], "80.0");

    drop(prometheus);
    wait_until("DataAvailable turns False", 30, || {
        data_available().is_some_and(|(status, _, _)| status == "False")
    });
    let (_, reason, after) = data_available().unwrap();
    assert_eq!(reason, "PrometheusUnreachable");
    // Nothing is decided without data: no rollback state change, no Warning Events.
    assert_eq!(after["rollback"]["state"], before["rollback"]["state"]);
    let events = cluster.lock().unwrap().events.clone();
    assert!(events.iter().all(|e| e["type"] != "Warning"), "{events:?}");
    // The operator keeps running and healthy, and keeps trying: three more read rounds, and no
    // state change in any of them.
    replica.while_rounds_pass(3, Duration::from_secs(60), || {
        let (_, _, now) = data_available().unwrap();
        assert_eq!(now["rollback"]["state"], before["rollback"]["state"]);
    });
    assert_eq!(replica.get("/healthz").map(|r| r.0), Some(200));
    assert!(replica.ready());
    let flagger = replica
        .get("/flagger/rollback?slo=shop/checkout-availability")
        .unwrap()
        .0;
    assert_eq!(flagger, 412, "no rollback signal without data");
    let (exit, log) = replica.terminate();
    assert_eq!(exit, Some(0), "{log}");
}
