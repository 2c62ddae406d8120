//! Resident memory of the controller's cache with 10,000 SLOs (goal: under 100 MiB), measured as
//! the growth of this process' RSS while the reflector store is filled with realistic objects.

use kube::runtime::reflector;
use kube::runtime::watcher::Event;
use plimsoll::api::ServiceLevelObjective;
use serde_json::json;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn slo(i: usize) -> ServiceLevelObjective {
    serde_json::from_value(json!({
        "apiVersion": "plimsoll.dev/v1alpha1", "kind": "ServiceLevelObjective",
        "metadata": {"name": format!("service-{i}-availability"), "namespace": format!("team-{}", i % 50),
                     "uid": format!("0b7c5f7e-8a4d-4f5e-9c1b-{i:012}"), "generation": 3,
                     "resourceVersion": format!("{}", 100_000 + i),
                     "labels": {"team": format!("team-{}", i % 50), "app.kubernetes.io/part-of": "shop"},
                     "annotations": {"argocd.argoproj.io/tracking-id": format!("shop:plimsoll.dev/ServiceLevelObjective:team-{}/service-{i}", i % 50)}},
        "spec": {"service": format!("service-{i}"), "description": "Requests succeed.",
                 "objective": 99.9, "window": "30d",
                 "indicator": {"ratio": {"errors": format!("http_requests_total{{job=\"service-{i}\",code=~\"5..\"}}"),
                                         "total": format!("http_requests_total{{job=\"service-{i}\"}}"),
                                         "groupBy": ["route"]}},
                 "alerting": {"labels": {"team": "shop"}, "annotations": {"runbook_url": "https://runbooks.example.com/x"}},
                 "rollback": {"targets": [{"kind": "Deployment", "name": format!("service-{i}")}]}},
        "status": {"observedGeneration": 3, "prometheusRule": format!("service-{i}-availability"),
                   "sli": "99.9412", "errorBudget": {"remaining": "41.2", "consumedMinutes": "25.4", "totalMinutes": "43.2"},
                   "burnRates": {"5m": "0.4", "1h": "0.9", "6h": "1.1", "1d": "0.8", "3d": "0.6"},
                   "evaluatedAt": "2026-11-22T10:15:00Z",
                   "conditions": [
                     {"type": "Ready", "status": "True", "reason": "RulesApplied", "message": "PrometheusRule holds 2 rule groups: 11 recording rules, 5 alerts", "observedGeneration": 3, "lastTransitionTime": "2026-11-01T00:00:00Z"},
                     {"type": "DataAvailable", "status": "True", "reason": "SeriesPresent", "message": "", "observedGeneration": 3, "lastTransitionTime": "2026-11-01T00:00:00Z"}]}
    }))
    .unwrap()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n = 10_000;
    let (reader, mut writer) = reflector::store::<ServiceLevelObjective>();
    let before = rss_kib();
    writer.apply_watcher_event(&Event::Init);
    for i in 0..n {
        writer.apply_watcher_event(&Event::InitApply(slo(i)));
    }
    writer.apply_watcher_event(&Event::InitDone);
    let after = rss_kib();
    assert_eq!(reader.state().len(), n);
    let mib = (after.saturating_sub(before)) as f64 / 1024.0;
    println!(
        "cache of {n} SLOs: RSS grew by {mib:.1} MiB ({:.1} KiB per SLO); goal < 100 MiB",
        (after - before) as f64 / n as f64
    );
    assert!(mib < 100.0, "cache uses {mib:.1} MiB");
}
