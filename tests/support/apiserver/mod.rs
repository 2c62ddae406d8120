//! A Kubernetes API server emulation on loopback, for tests and benchmarks of the operator.
//!
//! It keeps objects with the semantics the operator's correctness depends on: a global
//! resourceVersion, uid, generation, server-side apply with per-manager field ownership in
//! metadata.managedFields (shared ownership, conflicts, force, removal of fields a manager stops
//! applying, list-maps merged by key), merge/JSON/strategic patches, resourceVersion
//! preconditions, the status subresource, finalizers and deletionTimestamp, ownerReference
//! garbage collection, watches replayed from an event log (bookmarks, 410 when too old, label
//! selectors with ADDED/DELETED on selector transitions), metadata-only lists and watches,
//! paginated lists, RBAC from src/access.rs, injected faults, throttling, and load counters.
//!
//! Knowingly not emulated: OpenAPI schemas (no validation, defaulting or pruning; merge keys come
//! from a fixed table of paths, see tree.rs), admission, namespaces as objects (any namespace
//! exists), authentication (the token is ignored), protobuf and Table responses, lists at an
//! older resourceVersion (resourceVersionMatch=Exact: lists always serve the latest state),
//! watches of a future resourceVersion (they wait instead of failing), foreground deletion
//! (treated as background) and orphaning of objects still waiting for finalizers, collection of
//! dependents created after their owner was gone, deletion grace periods, and version
//! conversion (one version per resource).
//!
//! Use it from a test crate with
//! `#[path = "support/apiserver/mod.rs"] mod apiserver;` (no bench uses it: bench-scale runs
//! against a real control plane). `ApiServer::start` runs it on its own
//! tokio runtime thread on 127.0.0.1 and stops it on drop.
// Not every test crate uses every part.
#![allow(dead_code, unused_imports)]

#[path = "../access.rs"]
mod access;
mod apply;
mod delete;
mod discovery;
mod dispatch;
mod fieldset;
mod http;
mod load;
mod managed;
mod merge;
mod part;
mod read;
pub mod resources;
mod select;
mod status;
mod store;
mod testapi;
mod tree;
mod verbs;
mod watch;
mod write;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

pub use load::{Fault, Stats, Throttle};
pub use plimsoll::access::Features;
pub use resources::{Resource, presets};
pub use status::ApiError;
pub use testapi::Manager;

use store::Store;

/// How to start the server.
#[derive(Clone, Debug)]
pub struct Config {
    pub resources: Vec<Resource>,
    /// Refuse (403) requests src/access.rs does not permit with these features; `None` serves
    /// everything.
    pub rbac: Option<Features>,
    /// At most this many events are kept per resource for watches to resume from (fewer when
    /// older than 75 s, as the watch cache does; default its upper bound, 100 * 1024).
    pub log_capacity: usize,
    pub bookmark_interval: Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            resources: presets::all(),
            rbac: Some(access::FEATURES),
            log_capacity: 100 * 1024,
            bookmark_interval: Duration::from_secs(5),
        }
    }
}

pub(crate) struct Settings {
    pub rbac: Option<Features>,
    pub bookmark_interval: Duration,
}

/// What the HTTP handlers and the test-side API share.
pub(crate) struct Shared {
    pub store: Mutex<Store>,
    pub load: Arc<load::Load>,
    pub settings: Mutex<Settings>,
    /// RBAC refusals, with the reason.
    pub refused: Mutex<Vec<String>>,
    pub port: u16,
}

pub struct ApiServer {
    shared: Arc<Shared>,
    port: u16,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl ApiServer {
    /// Serves `resources` with RBAC on (every feature), on a free loopback port.
    pub fn start(resources: Vec<Resource>) -> ApiServer {
        ApiServer::start_with(Config {
            resources,
            ..Config::default()
        })
    }

    pub fn start_with(config: Config) -> ApiServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        listener.set_nonblocking(true).expect("non-blocking");
        let port = listener.local_addr().expect("an address").port();
        let shared = Arc::new(Shared {
            store: Mutex::new(Store::new(config.resources, config.log_capacity)),
            load: Arc::default(),
            settings: Mutex::new(Settings {
                rbac: config.rbac,
                bookmark_interval: config.bookmark_interval,
            }),
            refused: Mutex::default(),
            port,
        });
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let app = axum::Router::new()
            .fallback(http::handle)
            .with_state(shared.clone());
        let thread = std::thread::Builder::new()
            .name(format!("apiserver-{port}"))
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("a runtime");
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).expect("a listener");
                    tokio::select! {
                        _ = axum::serve(listener, app) => {}
                        _ = rx => {}
                    }
                });
                // Dropping the runtime closes every connection, open watches included.
                runtime.shutdown_timeout(Duration::from_secs(1));
            })
            .expect("a thread");
        ApiServer {
            shared,
            port,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Writes `dir/kubeconfig` for this server: a token user, default namespace `default`.
    pub fn kubeconfig(&self, dir: &Path) -> PathBuf {
        self.kubeconfig_in(dir, "default")
    }

    /// Writes `dir/kubeconfig` with `namespace` as the context's namespace.
    pub fn kubeconfig_in(&self, dir: &Path, namespace: &str) -> PathBuf {
        let file = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: emulated\n  cluster: {{server: \"{}\"}}\n\
             contexts:\n- name: emulated\n  context: {{cluster: emulated, user: operator, namespace: {namespace}}}\n\
             current-context: emulated\nusers:\n- name: operator\n  user: {{token: emulated-token}}\n",
            self.url()
        );
        std::fs::write(&file, text).expect("a kubeconfig");
        file
    }

    /// A kube client for this server (default namespace `default`), with kube's default retry
    /// of 429/503/504. Call it inside a tokio runtime.
    pub fn client(&self) -> kube::Client {
        self.client_with(true)
    }

    /// A kube client that does not retry, to see errors as they are sent.
    pub fn client_without_retry(&self) -> kube::Client {
        self.client_with(false)
    }

    fn client_with(&self, retry: bool) -> kube::Client {
        let mut config = kube::Config::new(self.url().parse().expect("a URL"));
        config.default_namespace = "default".to_string();
        config.default_retry = retry;
        kube::Client::try_from(config).expect("a client")
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
