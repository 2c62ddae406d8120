//! A real Prometheus for tests: loopback, free port, temporary data, killed on drop; and the
//! promtool backfill steps that give it a month of history in seconds.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A blocking HTTP client for tests. The crate's reqwest uses rustls without a built-in crypto
/// provider; the operator installs ring, and so must anything else that builds a client.
pub fn http() -> reqwest::blocking::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::blocking::Client::new()
}

pub struct Prometheus {
    child: Child,
    pub url: String,
}

impl Prometheus {
    /// Starts `prometheus` on 127.0.0.1 with the data directory and config, and waits until ready.
    pub fn start(data: &Path, config: &Path) -> Prometheus {
        Prometheus::start_with(data, config, &[])
    }

    /// [`Prometheus::start`] with more flags, such as `--web.enable-lifecycle`.
    pub fn start_with(data: &Path, config: &Path, extra: &[&str]) -> Prometheus {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--storage.tsdb.retention.time=400d")
            .arg("--log.level=warn")
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus is installed (make test installs Debian's prometheus)");
        let prometheus = Prometheus {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            let ready = http()
                .get(format!("{}/-/ready", prometheus.url))
                .timeout(Duration::from_secs(2))
                .send()
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return prometheus;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("prometheus did not become ready within 120 s");
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn run(command: &mut Command) {
    let out = command.output().expect("promtool is installed");
    assert!(
        out.status.success(),
        "{command:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Imports an OpenMetrics file into a data directory.
pub fn import_openmetrics(file: &Path, data: &Path) {
    run(Command::new("promtool")
        .args([
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            "--max-block-duration=24h",
        ])
        .arg(file)
        .arg(data));
}

/// Evaluates recording rules over history (with a running Prometheus holding the inputs, which
/// is stopped afterwards) and adds the results as blocks to `data`. The blocks are written beside
/// `data` and moved in once that Prometheus has stopped: a running Prometheus picks up (and
/// compacts) blocks that appear in its directory, and one stopped midway can lose some of them.
pub fn backfill_rules(prometheus: Prometheus, rules: &Path, start: u64, end: u64, data: &Path) {
    let blocks = data.with_file_name(format!(
        "{}-backfill",
        data.file_name().unwrap().to_string_lossy()
    ));
    std::fs::create_dir_all(&blocks).unwrap();
    write_rule_blocks(&prometheus, rules, start, end, &blocks);
    drop(prometheus);
    for block in std::fs::read_dir(&blocks).unwrap() {
        let block = block.unwrap().path();
        std::fs::rename(&block, data.join(block.file_name().unwrap())).unwrap();
    }
    std::fs::remove_dir_all(&blocks).unwrap();
}

fn write_rule_blocks(prometheus: &Prometheus, rules: &Path, start: u64, end: u64, data: &Path) {
    run(Command::new("promtool")
        .args(["tsdb", "create-blocks-from", "rules", "--quiet"])
        .arg(format!("--url={}", prometheus.url))
        .arg(format!("--start={start}"))
        .arg(format!("--end={end}"))
        .arg(format!("--output-dir={}", data.display()))
        .arg(rules));
}

/// Writes `rules` (a rule file's text) to `dir/rules.yaml` and a Prometheus config reading it,
/// evaluated every `interval`, to `dir/prometheus.yml`; returns the config's path.
pub fn rules_config(dir: &Path, rules: &str, interval: &str) -> PathBuf {
    let file = dir.join("rules.yaml");
    std::fs::write(&file, rules).unwrap();
    let config = dir.join("prometheus.yml");
    let text = format!(
        "global: {{evaluation_interval: {interval}}}\nrule_files: [{}]\n",
        file.display()
    );
    std::fs::write(&config, text).unwrap();
    config
}

/// Seconds since the epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A new, empty TSDB directory `data` under `dir`, for imports.
pub fn data_dir(dir: &Path) -> PathBuf {
    let data = dir.join("data");
    std::fs::create_dir(&data).unwrap();
    data
}

/// The values of an instant query's vector at `time`, in Prometheus' order.
pub fn instant_values(prometheus: &Prometheus, expr: &str, time: u64) -> Vec<f64> {
    let body: serde_json::Value = http()
        .post(format!("{}/api/v1/query", prometheus.url))
        .form(&[("query", expr), ("time", &time.to_string())])
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(body["status"], "success", "{expr}: {body}");
    assert_eq!(body["data"]["resultType"], "vector", "{expr}: {body}");
    body["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["value"][1].as_str().unwrap().parse().unwrap())
        .collect()
}
