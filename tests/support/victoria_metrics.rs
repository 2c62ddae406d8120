//! A real VictoriaMetrics and vmalert for tests (Debian's victoria-metrics package, 1.79): loopback,
//! free ports, temporary data, killed on drop; the Prometheus text import that loads a month of
//! counters in one request, and vmalert's replay that backfills recorded series.
//!
//! References (VictoriaMetrics/VictoriaMetrics): the import endpoint `/api/v1/import/prometheus`
//! takes the Prometheus exposition format with millisecond timestamps
//! (app/vminsert/prometheusimport/request_handler.go, lib/protoparser/prometheus);
//! `/internal/force_flush` makes buffered samples searchable (app/victoria-metrics/main.go);
//! `/health` answers `OK` in every VictoriaMetrics binary (lib/httpserver/httpserver.go); vmalert's flags are those `vmalert -help` prints for 1.79, and
//! its `/api/v1/alerts` answers `{"data":{"alerts":[APIAlert]}}` (app/vmalert/web_types.go).
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::prometheus::http;

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until `url` answers 200, or panics naming `what` and the tail of its log.
fn wait_healthy(url: &str, what: &str, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let ok = http()
            .get(url)
            .timeout(Duration::from_secs(2))
            .send()
            .is_ok_and(|r| r.status().is_success());
        if ok {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!(
        "{what} did not become healthy within 60 s: {}",
        log_tail(log)
    );
}

/// The last lines of a log file, for failure messages.
pub fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

fn spawn(command: &mut Command, log: &Path) -> Child {
    let file = std::fs::File::create(log).unwrap();
    command
        .stdout(Stdio::null())
        .stderr(file)
        .spawn()
        .expect("victoria-metrics is installed (make tools installs Debian's victoria-metrics)")
}

pub struct VictoriaMetrics {
    child: Child,
    pub url: String,
    pub log: PathBuf,
}

impl VictoriaMetrics {
    /// Starts single-node VictoriaMetrics on 127.0.0.1 with its data under `dir`. The retention is
    /// a year: by default (one month) samples older than 31 days would be refused.
    pub fn start(dir: &Path) -> VictoriaMetrics {
        let port = free_port();
        let log = dir.join("victoria-metrics.log");
        let child = spawn(
            Command::new("victoria-metrics")
                .arg(format!(
                    "-storageDataPath={}",
                    dir.join("vm-data").display()
                ))
                .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
                .arg("-retentionPeriod=1y")
                .arg("-loggerLevel=ERROR"),
            &log,
        );
        let vm = VictoriaMetrics {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
        };
        wait_healthy(&format!("{}/health", vm.url), "victoria-metrics", &vm.log);
        vm
    }

    /// Imports Prometheus exposition text (timestamps in milliseconds), then flushes it to
    /// storage: imported samples are otherwise searchable only a second or so later, and a replay
    /// started at once would find no input (measured: a first rule got no samples, the next one,
    /// two seconds later, all of them).
    pub fn import_prometheus(&self, text: String) {
        let response = http()
            .post(format!("{}/api/v1/import/prometheus", self.url))
            .body(text)
            .timeout(Duration::from_secs(120))
            .send()
            .unwrap();
        assert_eq!(response.status().as_u16(), 204, "{:?}", response.text());
        let flushed = http()
            .get(format!("{}/internal/force_flush", self.url))
            .timeout(Duration::from_secs(30))
            .send()
            .unwrap();
        assert!(flushed.status().is_success(), "{:?}", flushed.text());
    }
}

impl Drop for VictoriaMetrics {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The OpenMetrics text of [`plimsoll::synthetic::write_openmetrics`] as Prometheus exposition
/// text for [`VictoriaMetrics::import_prometheus`]: comments dropped, seconds made milliseconds.
pub fn openmetrics_to_prometheus(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len() + openmetrics.len() / 10);
    for line in openmetrics.lines().filter(|l| !l.starts_with('#')) {
        let (sample, seconds) = line.rsplit_once(' ').unwrap();
        out.push_str(sample);
        out.push(' ');
        out.push_str(seconds);
        out.push_str("000\n");
    }
    out
}

/// Common vmalert flags: read from and write recorded series to `vm`; the remote write flushes
/// every second so a chained rule of the next evaluation finds its input.
fn vmalert(vm: &VictoriaMetrics, rules: &Path) -> Command {
    let mut command = Command::new("vmalert");
    command
        .arg(format!("-rule={}", rules.display()))
        .arg(format!("-datasource.url={}", vm.url))
        .arg(format!("-remoteWrite.url={}", vm.url))
        .arg("-remoteWrite.flushInterval=1s")
        .arg("-loggerLevel=WARN");
    command
}

/// Evaluates the recording rules of `rules` over `[from, to]` (Unix seconds) with vmalert's replay
/// mode and writes the results into `vm`. Rules of a group run one after another with a pause of
/// two flush intervals, so a rule reading an earlier one's results finds them written.
pub fn replay(vm: &VictoriaMetrics, rules: &Path, from: u64, to: u64, log: &Path) {
    let rfc3339 = |t: u64| {
        k8s_openapi::jiff::Timestamp::from_second(t as i64)
            .unwrap()
            .to_string()
    };
    let out = vmalert(vm, rules)
        .arg(format!("-replay.timeFrom={}", rfc3339(from)))
        .arg(format!("-replay.timeTo={}", rfc3339(to)))
        .arg("-replay.rulesDelay=2s")
        .arg("-replay.disableProgressBar")
        .arg(format!("-httpListenAddr=127.0.0.1:{}", free_port()))
        .output()
        .expect("vmalert is installed (make tools installs Debian's victoria-metrics)");
    std::fs::write(log, &out.stderr).unwrap();
    assert!(out.status.success(), "vmalert replay: {}", log_tail(log));
}

/// vmalert evaluating rules live, until dropped.
pub struct Vmalert {
    child: Child,
    pub url: String,
    pub log: PathBuf,
}

impl Vmalert {
    /// Starts vmalert on 127.0.0.1. vmalert 1.79 needs a notifier for alerting rules; alerts are
    /// read from its own API here, so they go to a loopback port nobody listens on.
    pub fn start(vm: &VictoriaMetrics, rules: &Path, dir: &Path) -> Vmalert {
        let port = free_port();
        let log = dir.join("vmalert.log");
        let child = spawn(
            vmalert(vm, rules)
                .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
                .arg(format!("-notifier.url=http://127.0.0.1:{}", free_port())),
            &log,
        );
        let vmalert = Vmalert {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
        };
        wait_healthy(&format!("{}/health", vmalert.url), "vmalert", &vmalert.log);
        vmalert
    }

    /// The alerts vmalert holds now (pending or firing), as its API lists them.
    pub fn alerts(&self) -> Vec<serde_json::Value> {
        let body: serde_json::Value = http()
            .get(format!("{}/api/v1/alerts", self.url))
            .timeout(Duration::from_secs(5))
            .send()
            .unwrap()
            .json()
            .unwrap();
        assert_eq!(body["status"], "success", "{body}");
        body["data"]["alerts"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

impl Drop for Vmalert {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
