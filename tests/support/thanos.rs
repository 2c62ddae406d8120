//! The real Thanos for tests (tests/thanos/build.sh builds it into the tools cache): a sidecar in
//! front of a Prometheus, Thanos Query over sidecars' (and rulers') gRPC Store API, and Thanos
//! Rule evaluating rule files through a Query. Everything listens on 127.0.0.1 on free ports,
//! logs to a file in a temporary folder (shown when a wait fails), and is killed on drop.
//!
//! Flags and defaults as thanos-io/thanos v0.42.5 reads them: `cmd/thanos/sidecar.go`,
//! `query.go`, `rule.go`, `config.go` and `endpointset.go` (`--endpoint.sd-config` with
//! `strict: true`: a strict endpoint stays in the query set when its health check fails, so a
//! store that is down makes queries fail or warn; a plain one is dropped at the next check, every
//! 5 s, and answers then simply lack its data).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::demo::free_port;
use super::go_tools;
use super::prometheus::{Prometheus, Version, http, labelled_config};

/// Where tests/thanos/build.sh puts Thanos: `<tools cache>/thanos-vX.Y.Z/bin/thanos`, after
/// building it there if missing (minutes, cold).
pub fn thanos_bin() -> PathBuf {
    let version = go_tools::pinned("thanos", "github.com/thanos-io/thanos");
    let bin = go_tools::tools_cache().join(format!("thanos-{version}/bin/thanos"));
    go_tools::build_unless("thanos", &[], &format!("Thanos {version}"), || {
        bin.is_file()
    });
    bin
}

/// One running Thanos component: `thanos <command> ...`, its log in a temporary folder.
pub struct Component {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`: the HTTP API, `/-/ready`, `/metrics`.
    pub url: String,
    /// `127.0.0.1:PORT`: the gRPC server (Store API and the others).
    pub grpc: String,
    log: PathBuf,
    dir: tempfile::TempDir,
    /// A folder the process works in (the ruler's data, the sidecar's TSDB path).
    data: Option<tempfile::TempDir>,
}

impl Component {
    /// Starts `thanos <command>` with HTTP on `http_port` and gRPC on `grpc_port` (0: a free
    /// one) and waits until it says it is ready.
    fn start(command: &str, flags: &[String], http_port: u16, grpc_port: u16) -> Component {
        let dir = tempfile::tempdir().unwrap();
        let or_free = |port: u16| if port == 0 { free_port() } else { port };
        let http_port = or_free(http_port);
        let grpc_port = or_free(grpc_port);
        let log = dir.path().join(format!("{command}.log"));
        let child = Command::new(thanos_bin())
            .arg(command)
            .arg(format!("--http-address=127.0.0.1:{http_port}"))
            .arg(format!("--grpc-address=127.0.0.1:{grpc_port}"))
            .arg("--log.level=info")
            .args(flags)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.path().join("stdout")).unwrap())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("thanos runs");
        let component = Component {
            child: Some(child),
            url: format!("http://127.0.0.1:{http_port}"),
            grpc: format!("127.0.0.1:{grpc_port}"),
            log,
            dir,
            data: None,
        };
        component.wait(120, &format!("thanos {command} is ready"), |c| {
            c.get("/-/ready").is_some_and(|(code, _)| code == 200)
        });
        component
    }

    /// What the component logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// GET of a path: status and body, `None` when nothing answers.
    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        let response = http()
            .get(format!("{}{path}", self.url))
            .timeout(Duration::from_secs(5))
            .send()
            .ok()?;
        let code = response.status().as_u16();
        Some((code, response.text().unwrap_or_default()))
    }

    /// GET of a JSON API path, `Value::Null` when it does not answer JSON.
    pub fn json(&self, path: &str) -> Value {
        self.get(path)
            .and_then(|(_, body)| serde_json::from_str(&body).ok())
            .unwrap_or(Value::Null)
    }

    /// Waits (polling every 100 ms) until `done`, failing with the component's log after
    /// `seconds`.
    pub fn wait(&self, seconds: u64, what: &str, mut done: impl FnMut(&Component) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        while !done(self) {
            assert!(
                Instant::now() < deadline,
                "{what}: not within {seconds} s\nlog:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The value of a counter or gauge (summed over the series that have all these labels) on
    /// `/metrics`, 0 when absent.
    pub fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let text = self.get("/metrics").map(|(_, t)| t).unwrap_or_default();
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter(|l| {
                l.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
            })
            .filter(|l| {
                labels
                    .iter()
                    .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// Stops the process (SIGKILL) and waits for it; the log stays readable.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Component {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `thanos sidecar` for the Prometheus at `prometheus_url` (which must have external labels:
/// the sidecar refuses to start without them). Ready once it has read them.
pub fn sidecar(prometheus_url: &str) -> Component {
    let tsdb = tempfile::tempdir().unwrap();
    let mut component = Component::start(
        "sidecar",
        &[
            format!("--prometheus.url={prometheus_url}"),
            // Without an object store nothing is uploaded; the folder is only read for that.
            format!("--tsdb.path={}", tsdb.path().display()),
            // The heartbeat that notices a Prometheus gone (30 s by default).
            "--prometheus.get_config_interval=1s".into(),
        ],
        0,
        0,
    );
    component.data = Some(tsdb);
    component
}

/// Store endpoints for [`query`]: each gRPC address, strict or not.
pub fn endpoints(addresses: &[&str], strict: bool) -> String {
    let mut out = String::from("endpoints:\n");
    for address in addresses {
        out.push_str(&format!("- address: {address}\n  strict: {strict}\n"));
    }
    out
}

/// `thanos query` over these store endpoints (the YAML of [`endpoints`]) with more flags; ready
/// once every endpoint is in its store set with a healthy last check.
pub fn query(endpoint_config: &str, extra: &[&str]) -> Component {
    query_at(0, endpoint_config, extra)
}

/// [`query`] with its HTTP API on `http_port` (0: a free one): for a client started before it,
/// such as a ruler, whose `--query` must name it.
pub fn query_at(http_port: u16, endpoint_config: &str, extra: &[&str]) -> Component {
    let mut flags = vec![format!("--endpoint.sd-config={endpoint_config}")];
    flags.extend(extra.iter().map(|f| f.to_string()));
    let component = Component::start("query", &flags, http_port, 0);
    let wanted = endpoint_config.matches("- address:").count();
    component.wait(60, "every store endpoint is healthy", |c| {
        healthy_stores(c) == wanted
    });
    component
}

/// How many endpoints Thanos Query lists (`/api/v1/stores`) with no last error.
pub fn healthy_stores(query: &Component) -> usize {
    let stores = query.json("/api/v1/stores");
    stores["data"]
        .as_object()
        .map(|kinds| {
            kinds
                .values()
                .filter_map(Value::as_array)
                .flatten()
                .filter(|s| s["lastError"].is_null())
                .count()
        })
        .unwrap_or(0)
}

/// `thanos rule` evaluating `rule_files` through the Query at `query_url` (which need not be up
/// yet: until it is, every evaluation fails), its own series labelled `ruler="<name>"` (Thanos
/// Rule wants at least one such label). `--eval-interval=1s` is the interval of the groups that
/// set none: a group's own `interval` wins (Prometheus' rule manager, which Thanos Rule runs).
pub fn rule(rule_files: &[&Path], query_url: &str, name: &str) -> Component {
    let data = tempfile::tempdir().unwrap();
    let mut flags = vec![
        format!("--data-dir={}", data.path().display()),
        format!("--query={query_url}"),
        "--eval-interval=1s".into(),
        format!("--label=ruler=\"{name}\""),
    ];
    flags.extend(
        rule_files
            .iter()
            .map(|f| format!("--rule-file={}", f.display())),
    );
    let mut component = Component::start("rule", &flags, 0, 0);
    component.data = Some(data);
    component
}

/// One cluster: a Prometheus with external labels evaluating a rule file every second (replaced
/// with [`Cluster::rules`]), and its sidecar.
pub struct Cluster {
    pub sidecar: Component,
    pub prometheus: Prometheus,
    rules: PathBuf,
    _dir: tempfile::TempDir,
}

impl Cluster {
    pub fn start(version: Version, external_labels: &[(&str, &str)]) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let config = labelled_config(dir.path(), "groups: []\n", "1s", external_labels);
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let prometheus = Prometheus::start_on(version, &data, &config, &["--web.enable-lifecycle"]);
        let sidecar = sidecar(&prometheus.url);
        Cluster {
            sidecar,
            prometheus,
            rules: dir.path().join("rules.yaml"),
            _dir: dir,
        }
    }

    /// The Prometheus evaluates this rule file from now on.
    pub fn rules(&self, text: &str) {
        std::fs::write(&self.rules, text).unwrap();
        let reloaded = http()
            .post(format!("{}/-/reload", self.prometheus.url))
            .send()
            .unwrap();
        assert!(reloaded.status().is_success(), "{reloaded:?}");
    }
}
