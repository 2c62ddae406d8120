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
        Operator::start_with_env(kubeconfig, &[], extra)
    }

    /// As `start`, with these environment variables too (flags take precedence over them).
    pub fn start_with_env(kubeconfig: &Path, env: &[(String, String)], extra: &[&str]) -> Operator {
        let port = free_port();
        let mut child = Command::new(env!("CARGO_BIN_EXE_plimsoll"))
            .arg("run")
            .arg(format!("--listen=127.0.0.1:{port}"))
            .args(extra)
            .envs(env.iter().map(|(k, v)| (k, v)))
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
        // A bound for a loaded machine; an idle one answers within a second.
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if operator.get("/healthz").is_some() {
                return operator;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("/healthz did not answer within 60 s");
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

    /// How many rounds of budget reads the operator has finished, whatever their result
    /// (`plimsoll_prometheus_reads_total`); `None` while /metrics does not answer.
    pub fn read_rounds(&self) -> Option<u64> {
        let (_, metrics) = self.get("/metrics")?;
        Some(
            metrics
                .lines()
                .filter(|l| l.starts_with("plimsoll_prometheus_reads_total{"))
                .filter_map(|l| l.rsplit_once(' ')?.1.parse::<u64>().ok())
                .sum(),
        )
    }

    /// Waits until the operator has finished `rounds` more read rounds than when called (at
    /// most `limit`), calling `each` after every poll: for checks that something does *not*
    /// happen, which must see the operator look again rather than trust a fixed sleep, since
    /// a loaded machine may run no round at all in a few seconds.
    pub fn while_rounds_pass(&self, rounds: u64, limit: Duration, mut each: impl FnMut()) {
        let from = self.read_rounds().expect("/metrics answers");
        let deadline = Instant::now() + limit;
        loop {
            each();
            let now = self.read_rounds().unwrap_or(from);
            if now >= from + rounds {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {rounds} read rounds within {limit:?}:\n{}",
                now - from,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Everything logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn ready(&self) -> bool {
        self.get("/readyz").is_some_and(|(code, _)| code == 200)
    }

    /// Sends `signal` (such as SIGSTOP, SIGCONT) to the process, which must not have exited.
    pub fn signal(&mut self, signal: libc::c_int) {
        assert!(
            self.child.try_wait().unwrap().is_none(),
            "the operator has exited:\n{}",
            self.log()
        );
        // SAFETY: signals our own child, which has not been waited for (still running).
        let sent = unsafe { libc::kill(self.child.id() as libc::pid_t, signal) };
        assert_eq!(sent, 0, "kill({signal}) failed");
    }

    /// SIGKILL, no chance to release anything; returns everything logged.
    pub fn kill(mut self) -> String {
        self.signal(libc::SIGKILL);
        self.child.wait().unwrap();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        self.log()
    }

    /// Sends SIGTERM and returns the exit code and everything logged.
    /// Stops the operator and checks that it ended well: exit 0, nothing refused by the real
    /// RBAC authorizer (`forbidden`: what a proxy in front of the server saw refused, and its
    /// log), and every Event it meant to publish taken by the server (which validates them).
    pub fn finish_clean(self, forbidden: Vec<String>) -> String {
        let (code, log) = self.terminate();
        assert_eq!(code, Some(0), "{log}");
        assert!(forbidden.is_empty(), "{forbidden:?}");
        assert!(!log.to_lowercase().contains("forbidden"), "{log}");
        let unpublished: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("could not publish event"))
            .collect();
        assert!(unpublished.is_empty(), "{unpublished:#?}");
        log
    }

    pub fn terminate(self) -> (Option<i32>, String) {
        self.terminate_within(Duration::from_secs(20))
    }

    /// [`Operator::terminate`], allowing the process `limit` to exit.
    pub fn terminate_within(mut self, limit: Duration) -> (Option<i32>, String) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + limit;
        loop {
            if let Some(exit) = self.child.try_wait().unwrap() {
                if let Some(reader) = self.reader.take() {
                    let _ = reader.join();
                }
                return (exit.code(), self.log.lock().unwrap().clone());
            }
            assert!(
                Instant::now() < deadline,
                "still running {limit:?} after SIGTERM:\n{}",
                self.log()
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
