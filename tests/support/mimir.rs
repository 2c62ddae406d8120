//! A real Grafana Mimir for tests: the binary tests/mimir/build.sh builds into the tools cache,
//! run monolithic (`-target=all`: distributor, ingester, querier, query-frontend and scheduler,
//! store-gateway, compactor, ruler) as one process, multi-tenancy on (Mimir's default), every
//! listener on 127.0.0.1 and a free port, rings in memory (`inmemory` KV, so no gossip), blocks
//! and rule groups on the filesystem in a temporary directory, usage reporting off. Killed on
//! drop.
//!
//! What the tests read back goes through Mimir's own APIs: the rule groups a tenant holds through
//! the rules configuration API, the writes it took through its request counter
//! (`cortex_request_duration_seconds` of the configuration API's routes on `/metrics`).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::demo::free_port;
use crate::support::go_tools;
use crate::support::prometheus::http;

/// The prefix Mimir serves its Prometheus-compatible APIs under (`-http.prometheus-http-prefix`).
pub const PROMETHEUS_PREFIX: &str = "/prometheus";

/// The module version tests/mimir/go.mod pins, such as `v1.3.1-0.20260423142704-aced80d74930`.
pub fn module_version() -> String {
    go_tools::pinned("mimir", "github.com/grafana/mimir")
}

/// Where tests/mimir/build.sh puts Mimir: `<tools cache>/mimir-<module version>/bin/mimir`,
/// after building it there if it is missing (minutes, cold).
pub fn mimir_bin() -> PathBuf {
    let version = module_version();
    let bin = go_tools::tools_cache().join(format!("mimir-{version}/bin/mimir"));
    go_tools::build_unless("mimir", &[], &format!("Mimir {version}"), || bin.is_file());
    bin
}

/// How a test wants Mimir: flags added to (or overriding) the defaults below, and a runtime
/// configuration file (per-tenant `overrides`), reloaded every second; the HTTP port.
#[derive(Default)]
pub struct Options {
    pub flags: Vec<String>,
    pub runtime_config: Option<String>,
    /// The HTTP port (default: a free one), for a test that points Plimsoll at it first.
    pub http_port: Option<u16>,
}

pub struct Mimir {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    dir: tempfile::TempDir,
}

impl Mimir {
    pub fn start() -> Mimir {
        Mimir::start_with(Options::default())
    }

    pub fn start_with(options: Options) -> Mimir {
        let bin = mimir_bin();
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name).display().to_string();
        let http_port = options.http_port.unwrap_or_else(free_port);
        let (grpc_port, gossip_port) = (free_port(), free_port());
        let loopback = "127.0.0.1";
        let mut flags: Vec<String> = vec![
            "-target=all".into(),
            "-auth.multitenancy-enabled=true".into(),
            "-usage-stats.enabled=false".into(),
            "-log.level=warn".into(),
            format!("-activity-tracker.filepath={}", path("activity.log")),
            format!("-server.http-listen-address={loopback}"),
            format!("-server.http-listen-port={http_port}"),
            format!("-server.grpc-listen-address={loopback}"),
            format!("-server.grpc-listen-port={grpc_port}"),
            // No ring gossips (every store is inmemory); should memberlist start all the same,
            // it stays on loopback.
            format!("-memberlist.bind-addr={loopback}"),
            format!("-memberlist.bind-port={gossip_port}"),
            format!("-memberlist.advertise-addr={loopback}"),
            "-blocks-storage.backend=filesystem".into(),
            format!("-blocks-storage.filesystem.dir={}", path("blocks")),
            format!("-blocks-storage.tsdb.dir={}", path("tsdb")),
            format!(
                "-blocks-storage.bucket-store.sync-dir={}",
                path("tsdb-sync")
            ),
            format!("-compactor.data-dir={}", path("compactor")),
            "-ruler-storage.backend=filesystem".into(),
            format!("-ruler-storage.filesystem.dir={}", path("rules")),
            format!("-ruler.rule-path={}", path("ruler")),
            // The configuration API's writes ask the ruler to sync at once; the poll is a floor.
            "-ruler.poll-interval=2s".into(),
            "-ingester.ring.replication-factor=1".into(),
            "-ingester.ring.min-ready-duration=0s".into(),
            "-ingester.ring.final-sleep=0s".into(),
            "-store-gateway.sharding-ring.replication-factor=1".into(),
            format!("-query-frontend.instance-addr={loopback}"),
        ];
        for ring in [
            "ingester.ring",
            "distributor.ring",
            "compactor.ring",
            "store-gateway.sharding-ring",
            "ruler.ring",
            "querier.ring",
        ] {
            flags.push(format!("-{ring}.store=inmemory"));
            flags.push(format!("-{ring}.instance-addr={loopback}"));
        }
        if let Some(runtime) = &options.runtime_config {
            let file = dir.path().join("runtime.yaml");
            std::fs::write(&file, runtime).unwrap();
            flags.push(format!("-runtime-config.file={}", file.display()));
            flags.push("-runtime-config.reload-period=1s".into());
        }
        flags.extend(options.flags);
        let log = std::fs::File::create(dir.path().join("mimir.log")).unwrap();
        let child = Command::new(&bin)
            .args(&flags)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
        let mut mimir = Mimir {
            child,
            url: format!("http://{loopback}:{http_port}"),
            dir,
        };
        mimir.wait_ready();
        mimir
    }

    /// `/ready` answers 200 once every module runs and the ingester is ACTIVE in its ring.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "mimir exited ({status}) before it was ready:\n{}",
                    self.log()
                );
            }
            let ready = http()
                .get(format!("{}/ready", self.url))
                .timeout(Duration::from_secs(2))
                .send()
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "mimir not ready within 180 s:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// What Mimir logged (warnings and errors).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mimir.log")).unwrap_or_default()
    }

    /// The rules configuration API, as `--ruler-url` takes it.
    pub fn ruler_url(&self) -> String {
        format!("{}{PROMETHEUS_PREFIX}/config/v1/rules", self.url)
    }

    /// The Prometheus HTTP API's root, as `--prometheus-url` takes it.
    pub fn prometheus_url(&self) -> String {
        format!("{}{PROMETHEUS_PREFIX}", self.url)
    }

    /// The remote-write endpoint.
    pub fn push_url(&self) -> String {
        format!("{}/api/v1/push", self.url)
    }

    /// `GET` of the configuration API below its root (`""`, `/ns`, `/ns/group`) for `tenant`.
    fn get(&self, tenant: &str, rest: &str) -> (u16, String) {
        let response = http()
            .get(format!("{}{rest}", self.ruler_url()))
            .header("X-Scope-OrgID", tenant)
            .send()
            .unwrap();
        (response.status().as_u16(), response.text().unwrap())
    }

    /// Every group the tenant holds, by namespace, as the ruler lists them.
    pub fn groups(&self, tenant: &str) -> BTreeMap<String, Vec<serde_json::Value>> {
        let (status, body) = self.get(tenant, "");
        assert_eq!(status, 200, "{body}");
        let listed: Option<BTreeMap<String, Vec<serde_json::Value>>> =
            serde_saphyr::from_str(&body).unwrap();
        listed.unwrap_or_default()
    }

    /// Group names per namespace of a tenant, in the ruler's order.
    pub fn names(&self, tenant: &str) -> BTreeMap<String, Vec<String>> {
        self.groups(tenant)
            .into_iter()
            .map(|(ns, groups)| {
                let names = groups
                    .iter()
                    .map(|g| g["name"].as_str().unwrap().to_string())
                    .collect();
                (ns, names)
            })
            .collect()
    }

    /// One group as the ruler answers `GET <api>/<namespace>/<group>`, or `None` on its 404.
    pub fn group(&self, tenant: &str, namespace: &str, name: &str) -> Option<serde_json::Value> {
        let rest = format!(
            "/{}/{}",
            plimsoll::ruler::client::path_segment(namespace),
            plimsoll::ruler::client::path_segment(name)
        );
        match self.get(tenant, &rest) {
            (200, body) => Some(serde_saphyr::from_str(&body).unwrap()),
            (404, _) => None,
            (status, body) => panic!("GET {rest}: {status} {body}"),
        }
    }

    /// Sets a group as another tool would: `POST <api>/<namespace>`; the status and body.
    pub fn post(&self, tenant: &str, namespace: &str, body: &str) -> (u16, String) {
        let response = http()
            .post(format!("{}/{namespace}", self.ruler_url()))
            .header("X-Scope-OrgID", tenant)
            .header("Content-Type", "application/yaml")
            .body(body.to_string())
            .send()
            .unwrap();
        (response.status().as_u16(), response.text().unwrap())
    }

    /// Sets and deletes of rule groups Mimir took (answered 202), from its request counter.
    pub fn writes(&self) -> u64 {
        self.requests()
            .iter()
            .filter(|r| matches!(r.method.as_str(), "POST" | "DELETE") && r.status == "202")
            .map(|r| r.count)
            .sum()
    }

    /// Requests to the configuration API by method and status, from `/metrics`.
    pub fn requests(&self) -> Vec<Requests> {
        let text = http()
            .get(format!("{}/metrics", self.url))
            .send()
            .unwrap()
            .text()
            .unwrap();
        text.lines()
            .filter_map(|line| {
                let rest = line.strip_prefix("cortex_request_duration_seconds_count{")?;
                let (labels, count) = rest.rsplit_once("} ")?;
                let label = |name: &str| {
                    labels
                        .split(',')
                        .find_map(|l| l.strip_prefix(&format!("{name}=\"")))
                        .map(|v| v.trim_end_matches('"').to_string())
                        .unwrap_or_default()
                };
                let route = label("route");
                route
                    .starts_with("prometheus_config_v1_rules")
                    .then(|| Requests {
                        route,
                        method: label("method"),
                        status: label("status_code"),
                        count: count.trim().parse().unwrap(),
                    })
            })
            .collect()
    }
}

/// One series of Mimir's request counter.
#[derive(Debug, Clone)]
pub struct Requests {
    pub route: String,
    pub method: String,
    pub status: String,
    pub count: u64,
}

impl Drop for Mimir {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A request as the [`Recorder`] passed it on.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub tenant: Option<String>,
    pub content_type: Option<String>,
    pub authorization: Option<String>,
    pub status: u16,
}

/// A pass-through on 127.0.0.1 in front of Mimir that notes each request's method, path and
/// headers (what Mimir, which checks no credentials here, cannot show) and forwards it unchanged;
/// Mimir's answer goes back as it came.
pub struct Recorder {
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    _server: crate::support::loopback::Loopback,
}

impl Recorder {
    pub fn start(upstream: &str) -> Recorder {
        use axum::body::Bytes;
        use axum::extract::State;
        use axum::http::{HeaderMap, Method, Uri};
        use axum::response::{IntoResponse, Response};

        #[derive(Clone)]
        struct Shared {
            upstream: String,
            seen: Arc<Mutex<Vec<Seen>>>,
            client: reqwest::Client,
        }
        async fn forward(
            State(shared): State<Shared>,
            method: Method,
            uri: Uri,
            headers: HeaderMap,
            body: Bytes,
        ) -> Response {
            let header = |name: &str| {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(String::from)
            };
            let target = format!(
                "{}{}",
                shared.upstream,
                uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
            );
            let mut request = shared.client.request(method.clone(), target).body(body);
            for (name, value) in &headers {
                if name != "host" {
                    request = request.header(name, value);
                }
            }
            let answer = request.send().await.unwrap();
            let status = answer.status();
            let content_type = answer.headers().get("content-type").cloned();
            let text = answer.bytes().await.unwrap();
            shared.seen.lock().unwrap().push(Seen {
                method: method.to_string(),
                path: uri.path().to_string(),
                tenant: header("x-scope-orgid"),
                content_type: header("content-type"),
                authorization: header("authorization"),
                status: status.as_u16(),
            });
            let mut response = (status, text).into_response();
            if let Some(value) = content_type {
                response.headers_mut().insert("content-type", value);
            }
            response
        }

        let _ = rustls::crypto::ring::default_provider().install_default();
        let seen = Arc::default();
        let shared = Shared {
            upstream: upstream.trim_end_matches('/').to_string(),
            seen: Arc::clone(&seen),
            client: reqwest::Client::new(),
        };
        let app = axum::Router::new().fallback(forward).with_state(shared);
        let server = crate::support::loopback::Loopback::serve(0, app);
        Recorder {
            url: format!("http://127.0.0.1:{}", server.port),
            seen,
            _server: server,
        }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}
