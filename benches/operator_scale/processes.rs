//! What the scale benchmark starts and reads: the SLOs and their recorded series, `plimsoll run`
//! as a process (killed on drop), its RSS and metrics, and Prometheus' query log.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::prometheus::http;

pub const NAMESPACES: usize = 100;
const WINDOWS: [&str; 5] = ["5m", "1h", "6h", "1d", "3d"];

/// SLO `i`: a ratio SLO with groupBy, alert labels and a runbook, like the README's.
pub fn slo(i: usize, objective: f64) -> Value {
    let (service, namespace) = (format!("svc-{i}"), format!("team-{}", i % NAMESPACES));
    json!({
        "apiVersion": "plimsoll.dev/v1alpha1", "kind": "ServiceLevelObjective",
        "metadata": {"name": format!("{service}-availability"), "namespace": namespace,
                     "labels": {"team": namespace}},
        "spec": {
            "service": service, "description": format!("{service} requests succeed."),
            "objective": objective, "window": "30d",
            "indicator": {"ratio": {
                "errors": format!("http_requests_total{{job=\"{service}\",code=~\"5..\"}}"),
                "total": format!("http_requests_total{{job=\"{service}\"}}"),
                "groupBy": ["route"]}},
            "alerting": {
                "name": format!("Svc{i}Availability"),
                "labels": {"team": namespace},
                "annotations": {"runbook_url": format!("https://runbooks.example.com/{service}")},
                "page": {"labels": {"severity": "critical"}},
                "ticket": {"labels": {"severity": "warning"}},
                "absent": {"for": "10m"}},
        },
    })
}

/// An SLO as seeded: where it lives, and the uid the API server gave it.
pub struct Seeded {
    pub index: usize,
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

/// Every SLO's own recorded series (one route each) as an exposition Prometheus scrapes, with
/// burn rates below 1 so no status value moves between rounds. Scraped rather than recorded from
/// constant rules: 60,000 rules would keep Prometheus busy and fill its query log.
pub fn exposition(slos: &[Seeded]) -> String {
    let mut out = String::new();
    for s in slos {
        let labels = format!(
            "{{slo=\"{}\",slo_namespace=\"{}\",slo_service=\"svc-{}\",slo_uid=\"{}\",route=\"/pay\"}}",
            s.name, s.namespace, s.index, s.uid
        );
        let ratio = 0.0001 * (s.index % 5) as f64;
        let records =
            std::iter::once("window".to_string()).chain(WINDOWS.iter().map(|w| format!("rate{w}")));
        for record in records {
            let _ = writeln!(out, "slo:sli_error:ratio_{record}{labels} {ratio}");
        }
    }
    out
}

/// Prometheus' configuration: scrape `port` every 10 s as if the rules wrote the series (the
/// target's job and instance labels dropped), log every query.
pub fn prometheus_config(port: u16, query_log: &Path) -> String {
    format!(
        "global: {{scrape_interval: 10s, evaluation_interval: 10s, query_log_file: {}}}\n\
         scrape_configs:\n- job_name: slos\n  honor_labels: true\n  \
         static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n  \
         metric_relabel_configs: [{{action: labeldrop, regex: 'job|instance'}}]\n",
        query_log.display()
    )
}

/// Serves `body` to every request on a free loopback port, from a thread that lives as long as
/// the benchmark.
pub fn serve(body: String) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut request = Vec::new();
            let mut buffer = [0u8; 4096];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buffer) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buffer[..n]),
                }
            }
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream
                .write_all(head.as_bytes())
                .and_then(|()| stream.write_all(body.as_bytes()));
        }
    });
    port
}

/// An instant query's first value.
pub fn query_value(url: &str, query: &str) -> Option<f64> {
    let answer: Value = http()
        .post(format!("{url}/api/v1/query"))
        .form(&[("query", query)])
        .timeout(Duration::from_secs(10))
        .send()
        .ok()?
        .json()
        .ok()?;
    answer["data"]["result"][0]["value"][1]
        .as_str()?
        .parse()
        .ok()
}

/// `plimsoll run`, killed on drop.
pub struct Operator {
    child: Child,
    pub pid: u32,
    pub port: u16,
    pub log: PathBuf,
}

/// SCALE_OPERATOR_ENV, such as `MALLOC_ARENA_MAX=1`: variables for the operator alone.
fn operator_env() -> Vec<(String, String)> {
    let text = std::env::var("SCALE_OPERATOR_ENV").unwrap_or_default();
    text.split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

impl Operator {
    /// Starts `binary run` (behind `wrap`, such as `heaptrack -o FILE`, when given) with the
    /// environment `env` (the chart's), then SCALE_OPERATOR_ENV's.
    pub fn start(
        binary: &Path,
        wrap: &[String],
        kubeconfig: &Path,
        env: &[(String, String)],
        args: &[String],
    ) -> Operator {
        let port = free_port();
        let log = std::env::var("SCALE_LOG_DIR").map_or_else(
            |_| kubeconfig.with_file_name("operator.log"),
            |dir| Path::new(&dir).join(format!("operator-{port}.log")),
        );
        let listen = format!("--listen=127.0.0.1:{port}");
        let mut command = match wrap.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(binary);
                c
            }
            None => Command::new(binary),
        };
        let child = command
            .arg("run")
            .arg(&listen)
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("KUBECONFIG", kubeconfig)
            .env_remove("RUST_LOG")
            .envs(operator_env())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let mut operator = Operator {
            pid: child.id(),
            child,
            port,
            log,
        };
        // Behind a wrapper the operator is a descendant: find it by its unique --listen.
        let deadline = Instant::now() + Duration::from_secs(30);
        while !wrap.is_empty() && Instant::now() < deadline {
            if let Some(pid) = find_process(binary, &listen) {
                operator.pid = pid;
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        operator
    }

    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        let response = http()
            .get(format!("http://127.0.0.1:{}{path}", self.port))
            .timeout(Duration::from_secs(5))
            .send()
            .ok()?;
        let code = response.status().as_u16();
        Some((code, response.text().unwrap_or_default()))
    }

    pub fn ready(&self) -> bool {
        self.get("/readyz").is_some_and(|(code, _)| code == 200)
    }

    /// The sum of a metric's series (`name{...} value` or `name value`) on /metrics.
    pub fn metric(&self, name: &str) -> f64 {
        let Some((_, text)) = self.get("/metrics") else {
            return f64::NAN;
        };
        sum_metric(&text, name)
    }

    /// VmRSS and VmHWM in MiB.
    pub fn rss(&self) -> (f64, f64) {
        rss_of(self.pid)
    }

    pub fn exited(&mut self) -> bool {
        self.child.try_wait().ok().flatten().is_some()
    }

    /// Sends `signal` (TERM; KILL leaves a profiler's view of the live heap), then waits (a
    /// profiler behind a wrapper may take a while to write its file).
    pub fn stop(mut self, signal: &str) -> Option<Duration> {
        let started = Instant::now();
        let _ = Command::new("kill")
            .args([&format!("-{signal}"), &self.pid.to_string()])
            .status();
        while started.elapsed() < Duration::from_secs(120) {
            if self.exited() {
                return Some(started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        if !self.exited() {
            let _ = Command::new("kill")
                .args(["-KILL", &self.pid.to_string()])
                .status();
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// A process' VmRSS and VmHWM in MiB (NaN when it is gone).
pub fn rss_of(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"));
    let field = |key: &str| {
        status
            .as_deref()
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(f64::NAN, |kib| kib / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn find_process(binary: &Path, listen: &str) -> Option<u32> {
    let binary = binary.to_string_lossy();
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let args: Vec<String> = cmdline
                .split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            (args.first()? == binary.as_ref() && args.iter().any(|a| a == listen)).then_some(pid)
        })
}

pub fn sum_metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The operator's budget reads from Prometheus' query log, for queries logged after `since`
/// (seconds since the epoch), in order: each round's span (its first query, which asks which
/// records exist, from its start to the end of the round's last query; the operator's decoding
/// between queries included) and the part Prometheus spent executing the queries, in seconds.
pub fn read_rounds(query_log: &Path, since: f64) -> Vec<(f64, f64)> {
    let text = std::fs::read_to_string(query_log).unwrap_or_default();
    let mut queries: Vec<(f64, f64, f64, bool)> = text
        .lines()
        .filter_map(|line| {
            let entry: Value = serde_json::from_str(line).ok()?;
            let query = entry["params"]["query"].as_str()?;
            if !query.contains("slo:sli_error:ratio_") || query.starts_with("count(") {
                return None;
            }
            let end: jiff::Timestamp = entry["ts"].as_str()?.parse().ok()?;
            let end = end.as_millisecond() as f64 / 1000.0;
            let took = entry["stats"]["timings"]["execTotalTime"]
                .as_f64()
                .unwrap_or(0.0);
            let first = query.starts_with("count by (__name__)");
            (end >= since).then_some((end - took, end, took, first))
        })
        .collect();
    queries.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut rounds: Vec<(f64, f64, f64)> = Vec::new();
    for (start, end, took, first) in queries {
        match rounds.last_mut() {
            Some(last) if !first => {
                last.1 = last.1.max(end);
                last.2 += took;
            }
            _ => rounds.push((start, end, took)),
        }
    }
    rounds.into_iter().map(|(s, e, t)| (e - s, t)).collect()
}
