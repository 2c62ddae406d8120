//! `plimsoll run` as a process: clear failure without a cluster configuration; with a cluster it
//! cannot reach, it serves health and metrics on loopback, backs off instead of spinning, and
//! stops cleanly on SIGTERM.

use std::io::Read;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A kubeconfig whose API server refuses connections.
fn unreachable_kubeconfig(dir: &std::path::Path) -> std::path::PathBuf {
    let port = free_port();
    let file = dir.join("kubeconfig");
    std::fs::write(
        &file,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {{server: \"http://127.0.0.1:{port}\"}}\n\
             contexts:\n- name: c\n  context: {{cluster: c, user: u, namespace: plimsoll-system}}\n\
             current-context: c\nusers:\n- name: u\n  user: {{token: t}}\n"
        ),
    )
    .unwrap();
    file
}

struct Operator {
    child: Child,
    port: u16,
}

impl Operator {
    fn start(kubeconfig: &std::path::Path, extra: &[&str]) -> Operator {
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_plimsoll"))
            .arg("run")
            .arg(format!("--listen=127.0.0.1:{port}"))
            .args(extra)
            .env("KUBECONFIG", kubeconfig)
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let operator = Operator { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if operator.get("/healthz").is_some() {
                return operator;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("/healthz did not answer within 10 s");
    }

    fn get(&self, path: &str) -> Option<(u16, String)> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let response = reqwest::blocking::Client::new()
            .get(format!("http://127.0.0.1:{}{path}", self.port))
            .timeout(Duration::from_secs(2))
            .send()
            .ok()?;
        let code = response.status().as_u16();
        Some((code, response.text().unwrap_or_default()))
    }

    /// Sends SIGTERM and returns the exit code and everything logged.
    fn terminate(mut self) -> (Option<i32>, String) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(exit) = self.child.try_wait().unwrap() {
                let mut log = String::new();
                self.child
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut log)
                    .unwrap();
                return (exit.code(), log);
            }
            assert!(
                Instant::now() < deadline,
                "still running 15 s after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(operator.get("/readyz").unwrap().0, 503, "never synced");
    let (_, metrics) = operator.get("/metrics").unwrap();
    assert!(metrics.contains("plimsoll_leader 1"), "{metrics}");
    let (exit, log) = operator.terminate();
    assert_eq!(exit, Some(0), "{log}");
    let attempts = log.lines().filter(|l| l.contains("Connect")).count();
    assert!(attempts > 0, "the watches did try: {log}");
    // Two watches with exponential backoff make a handful of attempts in 4 s; a hot loop makes
    // thousands.
    assert!(
        attempts < 40,
        "{attempts} connection attempts in 4 s:\n{log}"
    );
    assert!(
        log.lines().all(|l| l.starts_with('{')),
        "JSON logs only:\n{log}"
    );
}
