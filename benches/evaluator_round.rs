//! One budget round for 10,000 SLOs against a real Prometheus (goal: under 5 s, a number of
//! queries that does not grow with the SLOs): Prometheus records the series of 10,000 SLOs from
//! constant rules; the round reads them once, then judges every SLO from its own series as its
//! reconcile does (validate, pick its own series, assess, decide). The API writes are measured by
//! the process benchmark.

#[path = "../tests/support/prometheus.rs"]
mod prometheus_support;

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use plimsoll::api::ServiceLevelObjective;
use prometheus_support::Prometheus;
use serde_json::json;

const SLOS: usize = 10_000;
const WINDOWS: [&str; 5] = ["5m", "1h", "6h", "1d", "3d"];

fn rules() -> String {
    let mut out = String::from("groups:\n");
    for chunk in 0..SLOS / 1000 {
        let _ = writeln!(out, "- name: slos-{chunk}\n  interval: 5s\n  rules:");
        for i in chunk * 1000..(chunk + 1) * 1000 {
            let labels = format!(
                "{{slo: slo-{i}, slo_namespace: ns-{}, slo_service: svc-{i}, slo_uid: uid-{i}}}",
                i % 100
            );
            let ratio = 0.0001 * (i % 20) as f64;
            let _ = writeln!(
                out,
                "  - record: slo:sli_error:ratio_window\n    expr: vector({ratio})\n    labels: {labels}"
            );
            for w in WINDOWS {
                let _ = writeln!(
                    out,
                    "  - record: slo:sli_error:ratio_rate{w}\n    expr: vector({ratio})\n    labels: {labels}"
                );
            }
        }
    }
    out
}

fn slo(i: usize) -> Arc<ServiceLevelObjective> {
    Arc::new(
        serde_json::from_value(json!({
            "apiVersion": "plimsoll.dev/v1alpha1", "kind": "ServiceLevelObjective",
            "metadata": {"name": format!("slo-{i}"), "namespace": format!("ns-{}", i % 100),
                         "uid": format!("uid-{i}"), "generation": 1},
            "spec": {"service": format!("svc-{i}"), "objective": 99.9, "window": "30d",
                     "indicator": {"ratio": {"errors": "e_total", "total": "t_total"}}},
        }))
        .unwrap(),
    )
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let rules_file = dir.path().join("rules.yaml");
    std::fs::write(&rules_file, rules()).unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global: {{evaluation_interval: 5s}}\nrule_files: [{}]\n",
            rules_file.display()
        ),
    )
    .unwrap();
    let prometheus = Prometheus::start(&data, &config);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _inside = runtime.enter();
    let client = plimsoll::prometheus::Client::new(plimsoll::prometheus::Settings::new(
        prometheus.url.clone(),
        Duration::from_secs(60),
    ))
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let n = runtime
            .block_on(client.query("count(slo:sli_error:ratio_window)"))
            .ok()
            .and_then(|v| v.first().map(|s| s.value as usize))
            .unwrap_or(0);
        if n == SLOS {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {n} SLOs recorded after 120 s"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let slos: Vec<Arc<ServiceLevelObjective>> = (0..SLOS).map(slo).collect();
    let scope = plimsoll::prometheus::ReadingScope::default();
    let started = Instant::now();
    let now = k8s_openapi::jiff::Timestamp::now();
    let readings = runtime
        .block_on(plimsoll::prometheus::read(&client, &scope, &[], now))
        .unwrap();
    let read = started.elapsed();
    let readings = Ok(readings);
    let judged = Instant::now();
    let mut decided = 0;
    for object in &slos {
        let model = plimsoll::model::validate(object).unwrap();
        let memory = plimsoll::evaluator::remembered(None, now);
        let ns = object.metadata.namespace.as_deref().unwrap();
        let c = plimsoll::evaluator::conclude(&model, ns, &readings, &memory, now);
        assert!(c.verdict.is_ok(), "{:?}", c.verdict);
        decided += 1;
    }
    let judge = judged.elapsed();
    let round = read + judge;
    println!(
        "budget round, {SLOS} SLOs: {:.2} s in total: the Prometheus read {:.2} s ({} SLOs \
         read), judging every SLO from its own series {:.2} s; goal < 5 s",
        round.as_secs_f64(),
        read.as_secs_f64(),
        readings.as_ref().map(|r| r.len()).unwrap_or(0),
        judge.as_secs_f64(),
    );
    assert_eq!(decided, SLOS);
    assert!(round < Duration::from_secs(5), "round took {round:?}");
}
