//! One evaluator round for 10,000 SLOs against a real Prometheus (goal: at most 2 queries, under
//! 5 s): Prometheus records the series of 10,000 SLOs from constant rules; the round reads them,
//! assesses and decides every SLO, and writes every status to an in-process API server.

#[path = "../tests/support/prometheus.rs"]
mod prometheus_support;

use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use http::{Request, Response};
use kube::Client;
use kube::client::Body;
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
                "{{slo: slo-{i}, slo_namespace: ns-{}, slo_service: svc-{i}}}",
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
            "metadata": {"name": format!("slo-{i}"), "namespace": format!("ns-{}", i % 100), "generation": 1},
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
    // An API server that takes every status write at once.
    let writes = Arc::new(AtomicUsize::new(0));
    let counted = writes.clone();
    let service = tower::service_fn(move |req: Request<Body>| {
        let counted = counted.clone();
        async move {
            counted.fetch_add(1, Ordering::Relaxed);
            let _ = req.into_body().collect_bytes().await;
            let body = serde_json::to_vec(&json!({
                "apiVersion": "plimsoll.dev/v1alpha1", "kind": "ServiceLevelObjective",
                "metadata": {"name": "x", "namespace": "y"},
                "spec": {"service": "s", "objective": 99.9, "window": "30d",
                         "indicator": {"ratio": {"errors": "e", "total": "t"}}}}))
            .unwrap();
            Ok::<_, Infallible>(Response::new(Body::from(body)))
        }
    });
    let kube = Client::new(service, "default");
    let slos: Vec<Arc<ServiceLevelObjective>> = (0..SLOS).map(slo).collect();
    let started = Instant::now();
    let recorder = kube::runtime::events::Recorder::new(
        kube.clone(),
        kube::runtime::events::Reporter {
            controller: "plimsoll".into(),
            instance: None,
        },
    );
    let written = runtime.block_on(plimsoll::evaluator::round(
        &kube,
        &recorder,
        &client,
        slos.clone(),
        plimsoll::evaluator::Actions::Enabled,
    ));
    let round = started.elapsed();
    let started = Instant::now();
    let readings = runtime
        .block_on(plimsoll::evaluator::read(&client))
        .unwrap();
    let read = started.elapsed();
    println!(
        "evaluator round, {SLOS} SLOs: {:.2} s in total ({written} status writes to an in-process API \
         server); the 2 Prometheus queries alone: {:.2} s for {} series keys; goal < 5 s",
        round.as_secs_f64(),
        read.as_secs_f64(),
        readings.len()
    );
    assert_eq!(written, SLOS);
    assert!(round < Duration::from_secs(5), "round took {round:?}");
}
