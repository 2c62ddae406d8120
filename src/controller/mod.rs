//! The controller: the one writer of every SLO's rules, status and rollback actions. Each
//! reconcile runs the pipeline in `reconcile` (dereference -> validate -> build -> apply ->
//! status); the reader (`reader`) only reads Prometheus and wakes the SLOs whose readings moved.

mod announce;
mod backoff;
pub mod budget;
pub mod cleanup;
pub mod error;
pub mod events;
mod known;
pub mod reader;
pub mod reconcile;
pub mod rollback;
pub mod rule;
pub mod rule_versions;
pub mod status;
pub mod template;
pub mod unreadable;

use std::collections::BTreeMap;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::jiff::Timestamp;
use kube::core::PartialObjectMeta;
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::{Api, Client};

pub use backoff::Backoff;
pub use error::Error;
pub use known::{ForeignReported, Verified};

use crate::metrics::Metrics;
use crate::rules::PrometheusRule;
use crate::rules::output::{MANAGED_BY, MANAGED_BY_LABEL};
use crate::slo_cache::SloCache;
use rule_versions::RuleVersions;

/// Field manager of the PrometheusRules we apply.
pub const FIELD_MANAGER: &str = "plimsoll";
/// Field manager of the reconciler's status fields (the budget part has its own).
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
    /// The tenant AnalysisTemplates' queries carry as `X-Scope-OrgID` (`--prometheus-tenant`).
    pub analysis_tenant: Option<String>,
    /// Whether the operator writes to rollback targets (`--rollback-actions`). Without, it never
    /// annotates them, so it neither adds the cleanup finalizer nor touches targets on deletion
    /// (it has no rights on them).
    pub rollback_actions: bool,
    /// Act only on targets labelled `plimsoll.dev/rollback-allowed: "true"`.
    pub require_target_opt_in: bool,
    /// Reconciles running at once.
    pub concurrency: u16,
    /// The labels that scope readings (`--reading-selector`); AnalysisTemplates query with them.
    pub reading_scope: crate::prometheus::ReadingScope,
    /// The web UI's external URL: every alert links to its SLO's page there (`plimsoll_url`).
    pub ui_url: Option<String>,
    /// `partial_response_strategy` for the groups of SLOs that set none (Thanos Ruler).
    pub partial_response_strategy: Option<crate::api::PartialResponseStrategy>,
    /// Whether SLOs over native histograms wait for the Prometheus read to say it is not a 2.x
    /// (with `--prometheus-url`, whose reader asks). Without one nothing can tell, and their
    /// rules are written as any other.
    pub checks_prometheus_version: bool,
}

impl Settings {
    /// The defaults of `plimsoll run`.
    pub fn new(rule_labels: BTreeMap<String, String>) -> Settings {
        Settings {
            rule_labels,
            resync: Duration::from_secs(3600),
            analysis_prometheus_url: None,
            analysis_tenant: None,
            rollback_actions: true,
            require_target_opt_in: false,
            concurrency: 8,
            reading_scope: crate::prometheus::ReadingScope::default(),
            ui_url: None,
            partial_response_strategy: None,
            checks_prometheus_version: false,
        }
    }
}

/// Shared by every reconcile.
pub struct Context {
    pub client: Client,
    pub recorder: events::Publisher,
    pub metrics: Arc<Metrics>,
    pub config: Settings,
    pub backoff: Backoff,
    /// The time source of condition timestamps; tests fix it.
    pub clock: fn() -> Timestamp,
    /// Reconciles running now, so shutdown can wait for exactly those.
    pub in_flight: AtomicUsize,
    /// The reader's latest round; empty without Prometheus (no budget part then).
    pub readings: Arc<reader::Latest>,
    /// Our PrometheusRules' versions, one index per watched scope of the running term.
    pub rules: RwLock<Vec<Arc<RuleVersions>>>,
    /// Rules known to match their SLO, so an unchanged SLO is not read again every round.
    pub verified: Verified,
    pub foreign_reported: ForeignReported,
}

impl Context {
    pub fn new(
        client: Client,
        config: Settings,
        metrics: Arc<Metrics>,
        instance: Option<String>,
    ) -> Self {
        Context {
            recorder: events::Publisher::new(client.clone(), "plimsoll", instance),
            client,
            metrics,
            config,
            backoff: Backoff::new(Duration::from_secs(5), Duration::from_secs(300)),
            clock: Timestamp::now,
            in_flight: AtomicUsize::new(0),
            readings: Arc::default(),
            rules: RwLock::default(),
            verified: Verified::default(),
            foreign_reported: ForeignReported::default(),
        }
    }

    /// Our rule's resourceVersion as the owned-object watch last saw it.
    pub fn rule_version(&self, namespace: &str, name: &str) -> Option<String> {
        let scopes = self.rules.read().unwrap_or_else(|p| p.into_inner());
        scopes.iter().find_map(|s| s.get(namespace, name))
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

/// The running controllers of one term.
pub struct Running {
    pub done: futures::future::BoxFuture<'static, ()>,
}

/// Starts a controller per watched scope over the shared SLO cache, each owning the
/// PrometheusRules of its scope (watched as metadata only). They stop when `shutdown` resolves,
/// finishing the reconciles in flight.
pub fn start(
    client: &Client,
    scope: &Scope,
    cache: &SloCache,
    ctx: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> Running {
    let shutdown = futures::FutureExt::shared(Box::pin(shutdown));
    let namespaces: Vec<Option<&String>> = if scope.namespaces.is_empty() {
        vec![None]
    } else {
        scope.namespaces.iter().map(Some).collect()
    };
    let mut runs = Vec::new();
    let mut rule_stores = Vec::new();
    for ((store, trigger), namespace) in cache.subscribe().into_iter().zip(namespaces) {
        let rules: Api<PartialObjectMeta<PrometheusRule>> = match namespace {
            None => Api::all(client.clone()),
            Some(ns) => Api::namespaced(client.clone(), ns),
        };
        let owned = watcher::Config::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGED_BY}"));
        let versions = Arc::new(RuleVersions::default());
        let follower = versions.clone();
        let rule_events = watcher(rules, owned)
            .default_backoff()
            .inspect(move |event| {
                if let Ok(event) = event {
                    follower.follow(event);
                }
            })
            .touched_objects();
        rule_stores.push(versions);
        let config =
            kube::runtime::controller::Config::default().concurrency(ctx.config.concurrency);
        let controller = Controller::for_shared_stream(trigger, store)
            .with_config(config)
            .owns_stream(rule_events)
            .reconcile_all_on(resyncs(ctx.clone()))
            .graceful_shutdown_on(shutdown.clone());
        runs.push(
            controller
                .run(reconcile::reconcile, reconcile::error_policy, ctx.clone())
                .for_each(|_| futures::future::ready(())),
        );
    }
    *ctx.rules.write().unwrap_or_else(|p| p.into_inner()) = rule_stores;
    Running {
        done: Box::pin(async move {
            futures::future::join_all(runs).await;
        }),
    }
}

/// Every `resync`, every SLO is reconciled once with its rule read again (what is known to
/// match is forgotten): the safety net for a watch event that never came.
fn resyncs(ctx: Arc<Context>) -> impl futures::Stream<Item = ()> + Send + 'static {
    futures::stream::unfold(ctx, |ctx| async move {
        tokio::time::sleep(ctx.config.resync).await;
        ctx.verified.forget_all();
        Some(((), ctx))
    })
}
