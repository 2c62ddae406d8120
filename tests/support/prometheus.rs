//! A real Prometheus for tests: loopback, free port, temporary data, killed on drop; and the
//! promtool backfill steps that give it a month of history in seconds. Two are at hand:
//! Debian's 2.42 (`prometheus` and `promtool` on the PATH) and the 3.x that
//! tests/prometheus3/build.sh builds into the tools cache ([`Version`]).
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Which Prometheus a test runs: its major version. Prometheus 3 changed what our rules depend
/// on (left-open ranges and subqueries, `le` spellings), so the tests that pin the rules'
/// meaning run on both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// Debian's package (2.42), on the PATH.
    Two,
    /// The version tests/prometheus3/go.mod pins (3.16), from the tools cache.
    Three,
}

impl Version {
    /// The version a test uses when it does not choose: `PLIMSOLL_PROMETHEUS=3` picks 3.x,
    /// anything else (or nothing) Debian's 2.42.
    pub fn chosen() -> Version {
        match std::env::var("PLIMSOLL_PROMETHEUS").as_deref() {
            Ok("3") => Version::Three,
            _ => Version::Two,
        }
    }

    pub fn major(self) -> u32 {
        match self {
            Version::Two => 2,
            Version::Three => 3,
        }
    }

    /// `prometheus` or `promtool` of this version: a name on the PATH for 2.x; for 3.x a path
    /// in the tools cache, built first (tests/prometheus3/build.sh) when missing.
    pub fn binary(self, name: &str) -> PathBuf {
        match self {
            Version::Two => PathBuf::from(name),
            Version::Three => prometheus3_bin().join(name),
        }
    }

    /// `promtool` of this version, ready for arguments.
    pub fn promtool(self) -> Command {
        Command::new(self.binary("promtool"))
    }
}

/// `#[test]`s `NAME::prometheus_2` and `NAME::prometheus_3` for each `fn NAME(Version)` of the
/// test file (which has `mod support;` at its root): each case runs on both versions.
#[macro_export]
macro_rules! on_both_versions {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[test]
            fn prometheus_2() {
                super::$name($crate::support::prometheus::Version::Two)
            }
            #[test]
            fn prometheus_3() {
                super::$name($crate::support::prometheus::Version::Three)
            }
        }
    )+};
}

/// Where tests/prometheus3/build.sh puts Prometheus 3: `<tools cache>/prometheus-v3.N.P/bin`,
/// after building it there if either binary is missing (minutes, cold).
pub fn prometheus3_bin() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/prometheus3");
    let go_mod = std::fs::read_to_string(dir.join("go.mod")).unwrap();
    let module = go_mod
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("require github.com/prometheus/prometheus v")
        })
        .expect("tests/prometheus3/go.mod requires github.com/prometheus/prometheus");
    // v0.316.0 is Prometheus 3.16.0.
    let parts: Vec<u32> = module.split('.').map(|p| p.parse().unwrap()).collect();
    let version = format!("{}.{}.{}", parts[1] / 100, parts[1] % 100, parts[2]);
    let cache = match std::env::var_os("PLIMSOLL_TOOLS_CACHE") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()))
            .join(".cache/plimsoll-tools"),
    };
    let bin = cache.join(format!("prometheus-v{version}/bin"));
    let ready = || bin.join("prometheus").is_file() && bin.join("promtool").is_file();
    static BUILDING: Mutex<()> = Mutex::new(());
    let _one_at_a_time = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
    if !ready() {
        eprintln!(
            "Prometheus {version} missing in {}: running tests/prometheus3/build.sh",
            bin.display()
        );
        let status = Command::new(dir.join("build.sh"))
            .arg(&cache)
            .stdin(Stdio::null())
            .status()
            .expect("tests/prometheus3/build.sh runs (it needs Go)");
        assert!(
            status.success() && ready(),
            "tests/prometheus3/build.sh failed ({status})"
        );
    }
    bin
}

/// A blocking HTTP client for tests. The crate's reqwest uses rustls without a built-in crypto
/// provider; the operator installs ring, and so must anything else that builds a client.
pub fn http() -> reqwest::blocking::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::blocking::Client::new()
}

pub struct Prometheus {
    child: Child,
    pub url: String,
    pub version: Version,
}

impl Prometheus {
    /// Starts `prometheus` ([`Version::chosen`]) on 127.0.0.1 with the data directory and
    /// config, and waits until ready.
    pub fn start(data: &Path, config: &Path) -> Prometheus {
        Prometheus::start_with(data, config, &[])
    }

    /// [`Prometheus::start`] with more flags, such as `--web.enable-lifecycle`.
    pub fn start_with(data: &Path, config: &Path, extra: &[&str]) -> Prometheus {
        Prometheus::start_on(Version::chosen(), data, config, extra)
    }

    /// [`Prometheus::start_with`] of a given version.
    pub fn start_on(version: Version, data: &Path, config: &Path, extra: &[&str]) -> Prometheus {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(version.binary("prometheus"))
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
            version,
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

/// Imports an OpenMetrics file into a data directory ([`Version::chosen`]'s promtool).
pub fn import_openmetrics(file: &Path, data: &Path) {
    import_openmetrics_on(Version::chosen(), file, data);
}

/// [`import_openmetrics`] with the promtool of `version`.
pub fn import_openmetrics_on(version: Version, file: &Path, data: &Path) {
    run(version
        .promtool()
        .args([
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            "--max-block-duration=24h",
        ])
        .arg(file)
        .arg(data));
}

/// Evaluates the recording rules in `rules` over history, from `start` to `end` (Unix seconds),
/// with a Prometheus of `version` on `data` answering their queries, and adds the results to
/// `data`. Each group is evaluated on its interval's grid (offset 0; [`backfill_rules_at`] takes
/// another) by `plimsoll demo-data record`, one range query per rule, and the answers imported
/// with promtool.
///
/// Not `promtool tsdb create-blocks-from rules`: it asks for each 2h block up to the block's end
/// floored to a whole second, so a group whose evaluation offset falls in the last second of an
/// interval loses every evaluation just before a block boundary, one in 24 of a 5m group. The
/// offset is a hash of the group's name and its file's path, here a temporary directory: one
/// calendar test run in five lost 12 counts a day of one SLO (an offset of 299.606 s).
pub fn backfill_rules(version: Version, data: &Path, rules: &Path, start: u64, end: u64) {
    backfill_rules_at(version, data, rules, (start, end), 0);
}

/// [`backfill_rules`] with every group evaluated `offset_ms` past its interval's grid points, as
/// a group whose evaluation offset that is.
pub fn backfill_rules_at(
    version: Version,
    data: &Path,
    rules: &Path,
    (start, end): (u64, u64),
    offset_ms: u64,
) {
    let name = data.file_name().unwrap().to_string_lossy().to_string();
    let config = data.with_file_name(format!("{name}-backfill.yml"));
    let recorded = data.with_file_name(format!("{name}-backfill.om"));
    std::fs::write(&config, "global: {evaluation_interval: 10s}\n").unwrap();
    {
        let answering = Prometheus::start_on(version, data, &config, &[]);
        run(Command::new(env!("CARGO_BIN_EXE_plimsoll")).args([
            "demo-data",
            "record",
            "--prometheus",
            &answering.url,
            "--rules",
            rules.to_str().unwrap(),
            "--start",
            &start.to_string(),
            "--end",
            &end.to_string(),
            "--offset-ms",
            &offset_ms.to_string(),
            "--out",
            recorded.to_str().unwrap(),
        ]));
    }
    import_openmetrics_on(version, &recorded, data);
    std::fs::remove_file(&recorded).unwrap();
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

/// [`rules_config`] with these external labels (such as `cluster: a`), as one cluster's
/// Prometheus behind Thanos or Mimir.
pub fn labelled_config(
    dir: &Path,
    rules: &str,
    interval: &str,
    external_labels: &[(&str, &str)],
) -> PathBuf {
    let config = rules_config(dir, rules, interval);
    if external_labels.is_empty() {
        return config;
    }
    let labels: Vec<String> = external_labels
        .iter()
        .map(|(k, v)| format!("{k}: {}", serde_json::json!(v)))
        .collect();
    let text = std::fs::read_to_string(&config).unwrap().replacen(
        "global: {",
        &format!("global: {{external_labels: {{{}}}, ", labels.join(", ")),
        1,
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
