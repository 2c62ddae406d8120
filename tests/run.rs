//! `plimsoll run` as a process: clear failure without a cluster configuration; with a cluster it
//! cannot reach, it serves health and metrics on loopback, backs off instead of spinning, and
//! stops cleanly on SIGTERM.

#[path = "support/operator.rs"]
mod operator;

use std::process::Command;
use std::time::Duration;

use operator::{Operator, unreachable_kubeconfig};

#[test]
fn without_a_cluster_configuration_it_says_so_and_exits_2() {
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_plimsoll"))
        .args(["run", "--listen=127.0.0.1:0"])
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env("HOME", home.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no Kubernetes configuration"), "{stderr}");
    assert!(stderr.contains("KUBECONFIG"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn serves_health_and_metrics_then_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let operator = Operator::start(&unreachable_kubeconfig(dir.path()), &[]);
    assert_eq!(operator.get("/healthz").unwrap(), (200, "ok\n".to_string()));
    // Standing by: the Lease cannot be reached, so this replica is neither leader nor ready.
    assert_eq!(operator.get("/readyz").unwrap().0, 503);
    let (code, metrics) = operator.get("/metrics").unwrap();
    assert_eq!(code, 200);
    assert!(
        metrics.contains("plimsoll_build_info{version=\""),
        "{metrics}"
    );
    assert!(metrics.contains("plimsoll_leader 0"), "{metrics}");
    assert!(metrics.contains("# EOF"));
    let (exit, log) = operator.terminate();
    assert_eq!(exit, Some(0), "{log}");
    assert!(log.contains("shutdown signal received"), "{log}");
    assert!(log.contains("cannot reach the leader Lease"), "{log}");
}

#[test]
fn an_unreachable_api_server_is_retried_with_backoff_not_in_a_loop() {
    let dir = tempfile::tempdir().unwrap();
    let operator = Operator::start(
        &unreachable_kubeconfig(dir.path()),
        &["--leader-election=false", "--log-format=json"],
    );
    // The first attempt's error, then 4 s more of retries (under load the first may come late).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !operator.log().contains("Connect") && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(operator.get("/readyz").unwrap().0, 503, "never synced");
    let (_, metrics) = operator.get("/metrics").unwrap();
    assert!(metrics.contains("plimsoll_leader 1"), "{metrics}");
    let (exit, log) = operator.terminate();
    assert_eq!(exit, Some(0), "{log}");
    let attempts = log.lines().filter(|l| l.contains("Connect")).count();
    assert!(attempts > 0, "the watches did try: {log}");
    // Two watches with exponential backoff make a handful of attempts in a few seconds; a hot
    // loop makes thousands.
    assert!(
        attempts < 40,
        "{attempts} connection attempts in 4 s:\n{log}"
    );
    assert!(
        log.lines().all(|l| l.starts_with('{')),
        "JSON logs only:\n{log}"
    );
}
