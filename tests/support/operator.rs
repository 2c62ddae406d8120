//! `plimsoll run` as a child process for tests: started on a free loopback port, asked over
//! HTTP, stopped with SIGTERM (and killed on drop).
#![allow(dead_code)]

use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Operator {
    child: Child,
    pub port: u16,
    /// Everything logged so far. Read all along by a thread: an unread pipe fills after 64 KiB
    /// and then blocks every write to stderr, which stalls the whole operator (600 SLOs' worth
    /// of "PrometheusRule created" lines did).
    log: Arc<Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

/// A kubeconfig whose API server refuses connections.
pub fn unreachable_kubeconfig(dir: &Path) -> std::path::PathBuf {
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

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Operator {
    /// Starts `plimsoll run` with the kubeconfig and extra flags, and waits for /healthz.
    pub fn start(kubeconfig: &Path, extra: &[&str]) -> Operator {
        let port = free_port();
        let mut child = Command::new(env!("CARGO_BIN_EXE_plimsoll"))
            .arg("run")
            .arg(format!("--listen=127.0.0.1:{port}"))
            .args(extra)
            .env("KUBECONFIG", kubeconfig)
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let mut stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        let reader = std::thread::spawn(move || {
            let mut chunk = [0u8; 8192];
            while let Ok(n) = stderr.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&chunk[..n]));
            }
        });
        let operator = Operator {
            child,
            port,
            log,
            reader: Some(reader),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if operator.get("/healthz").is_some() {
                return operator;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("/healthz did not answer within 10 s");
    }

    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let response = reqwest::blocking::Client::new()
            .get(format!("http://127.0.0.1:{}{path}", self.port))
            .timeout(Duration::from_secs(2))
            .send()
            .ok()?;
        let code = response.status().as_u16();
        Some((code, response.text().unwrap_or_default()))
    }

    pub fn leading(&self) -> bool {
        self.get("/metrics")
            .is_some_and(|(_, m)| m.lines().any(|l| l == "plimsoll_leader 1"))
    }

    /// Everything logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn ready(&self) -> bool {
        self.get("/readyz").is_some_and(|(code, _)| code == 200)
    }

    /// Sends SIGTERM and returns the exit code and everything logged.
    pub fn terminate(mut self) -> (Option<i32>, String) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(exit) = self.child.try_wait().unwrap() {
                if let Some(reader) = self.reader.take() {
                    let _ = reader.join();
                }
                return (exit.code(), self.log.lock().unwrap().clone());
            }
            assert!(
                Instant::now() < deadline,
                "still running 20 s after SIGTERM"
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
