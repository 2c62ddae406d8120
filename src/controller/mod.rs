//! The reconciler: watches ServiceLevelObjectives and keeps their PrometheusRules and the
//! spec-derived part of their status. See `reconcile` for the pipeline.

mod backoff;
pub mod cleanup;
pub mod error;
pub mod reconcile;
pub mod rule;
pub mod status;
pub mod template;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use std::sync::atomic::{AtomicUsize, Ordering};

use futures::StreamExt;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, Store, reflector};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::{Api, Client};

pub use backoff::Backoff;
pub use error::Error;

use crate::api::ServiceLevelObjective;
use crate::metrics::Metrics;
use crate::rules::PrometheusRule;
use crate::rules::output::{MANAGED_BY, MANAGED_BY_LABEL};

/// Field manager of the PrometheusRules we apply.
pub const FIELD_MANAGER: &str = "plimsoll";
/// Field manager of the reconciler's status fields (the evaluator has its own).
pub const STATUS_FIELD_MANAGER: &str = "plimsoll-reconciler";

/// What the reconciler needs to know besides the objects.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Extra labels on every PrometheusRule, such as `release: kube-prometheus-stack`.
    pub rule_labels: BTreeMap<String, String>,
    /// How often a healthy SLO is looked at again, as a safety net under the watches.
    pub resync: Duration,
    /// The Prometheus address written into AnalysisTemplates (Argo Rollouts queries it).
    pub analysis_prometheus_url: Option<String>,
    /// Whether the operator writes to rollback targets (`--rollback-actions`). Without, it never
    /// annotates them, so it neither adds the cleanup finalizer nor touches targets on deletion
    /// (it has no rights on them).
    pub rollback_actions: bool,
}

/// Shared by every reconcile.
pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    pub config: Settings,
    pub backoff: Backoff,
    /// The time source of condition timestamps; tests fix it.
    pub clock: fn() -> Timestamp,
    /// Reconciles running now, so shutdown can wait for exactly those.
    pub in_flight: std::sync::atomic::AtomicUsize,
}

impl Context {
    pub fn new(
        client: Client,
        config: Settings,
        metrics: Arc<Metrics>,
        instance: Option<String>,
    ) -> Self {
        let reporter = Reporter {
            controller: "plimsoll".into(),
            instance,
        };
        Context {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            metrics,
            config,
            backoff: Backoff::new(Duration::from_secs(5), Duration::from_secs(300)),
            clock: Timestamp::now,
            in_flight: std::sync::atomic::AtomicUsize::new(0),
        }
    }
}

/// Which SLOs to watch.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// Namespaces to watch; empty for all.
    pub namespaces: Vec<String>,
    /// A label selector on SLOs, such as `team=shop`.
    pub selector: Option<String>,
}

/// A running controller per watched scope, with the stores readiness and metrics look at.
pub struct Running {
    pub stores: Vec<Store<ServiceLevelObjective>>,
    /// How many scopes have listed every SLO once; ready when it equals `stores.len()`.
    pub synced: Arc<AtomicUsize>,
    pub done: futures::future::BoxFuture<'static, ()>,
}

/// Builds the controllers: one over all namespaces, or one per listed namespace (so namespaced
/// RBAC suffices). They stop when `shutdown` resolves, finishing the reconciles in flight.
pub fn start(
    client: &Client,
    scope: &Scope,
    ctx: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> Running {
    let shutdown = futures::FutureExt::shared(Box::pin(shutdown));
    let apis: Vec<(Api<ServiceLevelObjective>, Api<PrometheusRule>)> =
        if scope.namespaces.is_empty() {
            vec![(Api::all(client.clone()), Api::all(client.clone()))]
        } else {
            scope
                .namespaces
                .iter()
                .map(|ns| {
                    (
                        Api::namespaced(client.clone(), ns),
                        Api::namespaced(client.clone(), ns),
                    )
                })
                .collect()
        };
    let mut stores = Vec::new();
    let mut runs = Vec::new();
    let synced = Arc::new(AtomicUsize::new(0));
    for (slos, rules) in apis {
        let mut slo_watch = watcher::Config::default().any_semantic();
        if let Some(selector) = &scope.selector {
            slo_watch = slo_watch.labels(selector);
        }
        let owned = watcher::Config::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGED_BY}"));
        // Our own reflector, so the end of the initial list is seen here (readiness) rather than
        // through the store's single-waiter readiness future, which the controller uses itself.
        let (reader, writer) = reflector::store();
        let seen = synced.clone();
        let mut listed = false;
        let events = reflector(writer, watcher(slos, slo_watch))
            .default_backoff()
            .inspect(move |event| {
                if !listed && matches!(event, Ok(watcher::Event::InitDone)) {
                    listed = true;
                    seen.fetch_add(1, Ordering::SeqCst);
                }
            })
            .applied_objects();
        let controller = Controller::for_stream(events, reader.clone())
            .owns(rules, owned)
            .graceful_shutdown_on(shutdown.clone());
        stores.push(reader);
        runs.push(
            controller
                .run(reconcile::reconcile, reconcile::error_policy, ctx.clone())
                .for_each(|_| futures::future::ready(())),
        );
    }
    Running {
        stores,
        synced,
        done: Box::pin(async move {
            futures::future::join_all(runs).await;
        }),
    }
}
