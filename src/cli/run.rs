//! `plimsoll run`: the operator. Serves health and metrics, takes the leader lease, and runs the
//! controllers while it holds it; hands over cleanly on SIGTERM.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::{Api, Client};
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder};
use tokio::sync::watch;
use tracing::{error, info, warn};

use super::{EXIT_ERROR, EXIT_OK, parse_duration, parse_label, parse_scope};
use crate::controller::reader::Reader;
use crate::controller::{self, Context, Scope, Settings};
use crate::metrics::Metrics;
use crate::server::{self, AppState, Health};
use crate::slo_cache::SloCache;
use crate::telemetry::{self, LogFormat};
use crate::webhook;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Namespace to watch; repeat or separate with commas. Default: all namespaces.
    /// (`--namespace` is the old spelling: elsewhere `-n/--namespace` is the namespace of
    /// manifests that name none.)
    #[arg(
        long = "watch-namespace",
        env = "PLIMSOLL_NAMESPACES",
        value_delimiter = ',',
        value_name = "NAMESPACE",
        alias = "namespace"
    )]
    pub namespaces: Vec<String>,
    /// Only reconcile SLOs matching this label selector, such as `team=shop`.
    #[arg(long, env = "PLIMSOLL_SELECTOR")]
    pub selector: Option<String>,
    /// Label for every generated PrometheusRule, such as `release=kube-prometheus-stack`, so
    /// Prometheus' rule selector picks them up; repeat or separate with commas.
    #[arg(
        long = "rule-label",
        env = "PLIMSOLL_RULE_LABELS",
        value_name = "KEY=VALUE",
        value_delimiter = ',',
        value_parser = parse_label
    )]
    pub rule_labels: Vec<(String, String)>,
    /// Serve the read-only web UI (`/ui`) on --listen, from this replica's SLO cache and
    /// Prometheus.
    #[arg(long, env = "PLIMSOLL_UI", default_value_t = true, action = clap::ArgAction::Set)]
    pub ui: bool,
    /// The UI's address as people reach it, such as `https://slo.example.com`: every alert gets a
    /// `plimsoll_url` annotation linking to its SLO's page.
    #[arg(long, env = "PLIMSOLL_UI_URL")]
    pub ui_url: Option<String>,
    /// Address of /healthz, /readyz, /metrics, Flagger's webhook and the UI.
    #[arg(long, env = "PLIMSOLL_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    /// How often healthy SLOs are reconciled again, besides every change.
    #[arg(long, env = "PLIMSOLL_RESYNC", default_value = "1h", value_parser = parse_duration)]
    pub resync: Duration,
    /// Elect a leader with a Lease, so several replicas can run and only one writes.
    #[arg(long, env = "PLIMSOLL_LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_election: bool,
    /// Name of the Lease used for leader election.
    #[arg(long, env = "PLIMSOLL_LEASE_NAME", default_value = crate::access::DEFAULT_LEASE_NAME)]
    pub lease_name: String,
    /// Namespace of the Lease. Default: the namespace of the kubeconfig context or the pod.
    #[arg(long, env = "POD_NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// This replica's name in the Lease and in Events. Default: the host name.
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// How long in-flight reconciles may take to finish after SIGTERM.
    #[arg(long, env = "PLIMSOLL_SHUTDOWN_TIMEOUT", default_value = "20s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,
    #[command(flatten)]
    pub prometheus: super::prometheus_flags::PrometheusFlags,
    /// Prometheus address written into AnalysisTemplates, for Argo Rollouts to query. Default:
    /// --prometheus-url.
    #[arg(long, env = "PLIMSOLL_ANALYSIS_PROMETHEUS_URL")]
    pub analysis_prometheus_url: Option<String>,
    /// How long the SLO watch may fail before this replica's copy of the SLOs counts as stale:
    /// /readyz then fails with the reason, and the deploy freeze admits with a warning.
    #[arg(long, env = "PLIMSOLL_CACHE_STALE_AFTER", default_value = "2m", value_parser = parse_duration)]
    pub cache_stale_after: Duration,
    /// How often the budgets are read from Prometheus and written to status.
    #[arg(long, env = "PLIMSOLL_EVALUATION_INTERVAL", default_value = "1m", value_parser = parse_duration)]
    pub evaluation_interval: Duration,
    /// Address of the HTTPS admission webhook (POST /validate-slo, /freeze), such as
    /// `0.0.0.0:9443`; served on every replica. Unset: no webhook server.
    #[arg(long, env = "PLIMSOLL_WEBHOOK_LISTEN")]
    pub webhook_listen: Option<SocketAddr>,
    /// Directory with the webhook's `tls.crt` and `tls.key` (and `ca.crt`), such as a mounted
    /// cert-manager Secret; re-read every minute, so rotations are picked up.
    #[arg(
        long,
        env = "PLIMSOLL_WEBHOOK_CERT_DIR",
        conflicts_with = "webhook_secret"
    )]
    pub webhook_cert_dir: Option<std::path::PathBuf>,
    /// Instead of --webhook-cert-dir: Secret in the pod's namespace where the operator keeps a CA
    /// and serving certificate it generates (CA 10 years, certificate 1 year, renewed 30 days
    /// before expiry); all replicas serve the same one.
    #[arg(long, env = "PLIMSOLL_WEBHOOK_SECRET", requires = "webhook_service")]
    pub webhook_secret: Option<String>,
    /// Service in front of the webhook: the generated certificate is valid for `<svc>`,
    /// `<svc>.<ns>`, `<svc>.<ns>.svc` and `<svc>.<ns>.svc.cluster.local`.
    #[arg(long, env = "PLIMSOLL_WEBHOOK_SERVICE")]
    pub webhook_service: Option<String>,
    /// ValidatingWebhookConfiguration whose webhooks' clientConfig.caBundle is set to the
    /// webhook's CA (checked every minute; every 5 s until it is set), with the self-managed
    /// certificate or a --webhook-cert-dir that has ca.crt.
    #[arg(long, env = "PLIMSOLL_WEBHOOK_CONFIGURATION")]
    pub webhook_configuration: Option<String>,
    /// Deny pod template changes to an SLO's rollback targets while its budget is exhausted
    /// (POST /freeze), unless they carry the plimsoll.dev/freeze-override annotation. Off:
    /// /freeze admits everything.
    #[arg(
        long,
        env = "PLIMSOLL_DEPLOY_FREEZE",
        default_value_t = false,
        num_args = 0..=1,
        default_missing_value = "true",
        action = clap::ArgAction::Set
    )]
    pub deploy_freeze: bool,
    /// Label matchers that scope every budget reading to this cluster or tenant, such as
    /// `cluster="a"`: behind Thanos, Mimir or federation, list the external labels that tell
    /// this cluster's series apart. Series with other labels than an SLO's own are ignored.
    #[arg(long, env = "PLIMSOLL_READING_SELECTOR", value_parser = parse_scope, default_value = "")]
    pub reading_selector: crate::prometheus::ReadingScope,
    /// `partial_response_strategy` (`warn` or `abort`) on the rule groups of every SLO that sets
    /// no `spec.partialResponseStrategy`, for a Thanos Ruler that evaluates the PrometheusRules
    /// (prometheus-operator drops it for Prometheus). Unset: none written (Thanos: `abort`).
    #[arg(long, env = "PLIMSOLL_PARTIAL_RESPONSE_STRATEGY", value_enum)]
    pub partial_response_strategy: Option<crate::api::PartialResponseStrategy>,
    /// API requests in flight at once (watches not counted); 0: no limit.
    #[arg(long, env = "PLIMSOLL_API_MAX_IN_FLIGHT", default_value_t = 16)]
    pub api_max_in_flight: usize,
    /// API requests started per second, on average; 0: no limit. A 429 is retried after the
    /// server's Retry-After.
    #[arg(long, env = "PLIMSOLL_API_QPS", default_value_t = 50.0)]
    pub api_qps: f64,
    /// API requests that may start at once after a quiet spell.
    #[arg(long, env = "PLIMSOLL_API_BURST", default_value_t = 100)]
    pub api_burst: u32,
    /// Reconciles running at once (each SLO is reconciled by one at a time).
    #[arg(long, env = "PLIMSOLL_CONCURRENCY", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
    /// Act only on rollback targets labelled `plimsoll.dev/rollback-allowed: "true"`; others are
    /// reported as Refused in the SLO's status.
    #[arg(
        long,
        env = "PLIMSOLL_REQUIRE_TARGET_OPT_IN",
        default_value_t = false,
        num_args = 0..=1,
        default_missing_value = "true",
        action = clap::ArgAction::Set
    )]
    pub require_target_opt_in: bool,
    /// Write rollback signals to the SLOs' targets (annotations, Rollout abort). With `false`,
    /// every rollback policy decides as in dryRun, so the operator needs no rights on workloads.
    #[arg(long, env = "PLIMSOLL_ROLLBACK_ACTIONS", default_value_t = true, action = clap::ArgAction::Set)]
    pub rollback_actions: bool,
    /// Log format.
    #[arg(long, env = "PLIMSOLL_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Log level (RUST_LOG, when set, takes precedence).
    #[arg(long, env = "PLIMSOLL_LOG_LEVEL", default_value = "info")]
    pub log_level: String,
}

pub fn run(args: Args, err: &mut impl std::io::Write) -> u8 {
    telemetry::init(args.log_format, &args.log_level);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = writeln!(err, "plimsoll run: cannot start the async runtime: {e}");
            return EXIT_ERROR;
        }
    };
    match runtime.block_on(operate(args)) {
        Ok(()) => EXIT_OK,
        Err(message) => {
            let _ = writeln!(err, "plimsoll run: {message}");
            EXIT_ERROR
        }
    }
}

async fn operate(args: Args) -> Result<(), String> {
    let config = kube::Config::infer().await.map_err(|e| {
        format!(
            "no Kubernetes configuration: run inside a cluster (service account) or point \
             KUBECONFIG at a kubeconfig file ({e})"
        )
    })?;
    // The pod's namespace: where the Lease and the webhook's Secret live.
    let namespace = args
        .lease_namespace
        .clone()
        .unwrap_or_else(|| config.default_namespace.clone());
    let scope = Scope {
        namespaces: args.namespaces.clone(),
        selector: args.selector.clone(),
    };
    let mut webhook_settings = webhook_settings(&args, &namespace, &scope)?;
    // The lease has deadlines of seconds: it must never queue behind a storm of reconciles.
    let lease_client = Client::try_from(config.clone())
        .map_err(|e| format!("cannot create a Kubernetes client: {e}"))?;
    let limits = crate::kube_client::Limits {
        max_in_flight: args.api_max_in_flight,
        qps: args.api_qps,
        burst: args.api_burst,
        ..crate::kube_client::Limits::default()
    };
    let client = crate::kube_client::client(config, limits)
        .map_err(|e| format!("cannot create a Kubernetes client: {e}"))?;
    // Every replica keeps its own view of the SLOs, so the Flagger endpoint and the deploy freeze
    // answer alike behind the Service, leader or standby.
    let (slos, _feeding) = SloCache::start(&client, &scope);
    slos.set_stale_after(args.cache_stale_after);
    if let Some(w) = webhook_settings.as_mut() {
        w.cache = Some(slos.clone());
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let metrics = Arc::new(Metrics::default());
    let health = Arc::new(Health {
        leader_election: args.leader_election,
        ..Health::default()
    });
    let (shutdown_tx, shutdown) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        info!("shutdown signal received");
        let _ = shutdown_tx.send(true);
    });
    let slos_for_operator = slos.clone();
    let prometheus = match args.prometheus.client() {
        Some(client) => Some(client.map_err(|e| format!("--prometheus-url: {e}"))?),
        None => None,
    };
    let mut app = server::router(AppState {
        metrics: metrics.clone(),
        health: health.clone(),
        slos: slos.clone(),
    });
    if args.ui {
        app = app.merge(crate::ui::router(crate::ui::Ui {
            source: server::ui_source::ClusterSource {
                slos,
                client: client.clone(),
            },
            prometheus: prometheus.clone(),
            scope: args.reading_selector.clone(),
            external_url: args.ui_url.clone(),
            partial_response_strategy: args.partial_response_strategy,
        }));
    }
    let mut server_shutdown = shutdown.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = server_shutdown.wait_for(|s| *s).await;
            })
            .await
    });
    info!(listen = %args.listen, "serving /healthz, /readyz and /metrics");
    // The webhook serves on every replica, leader or not, and is no part of readiness.
    let webhook = match webhook_settings {
        Some(settings) => Some(
            webhook::start(client.clone(), settings, shutdown.clone())
                .await
                .map_err(|e| format!("webhook: {e}"))?,
        ),
        None => None,
    };

    let identity = args.identity.clone().unwrap_or_else(host_name);
    let settings = Settings {
        rule_labels: args.rule_labels.iter().cloned().collect(),
        resync: args.resync,
        analysis_prometheus_url: args
            .analysis_prometheus_url
            .clone()
            .or_else(|| args.prometheus.prometheus_url.clone()),
        analysis_tenant: args
            .prometheus
            .store
            .prometheus_tenant
            .as_ref()
            .map(|t| t.as_str().to_string()),
        rollback_actions: args.rollback_actions,
        require_target_opt_in: args.require_target_opt_in,
        concurrency: args.concurrency,
        reading_scope: args.reading_selector.clone(),
        ui_url: args.ui_url.clone(),
        partial_response_strategy: args.partial_response_strategy,
        checks_prometheus_version: args.prometheus.prometheus_url.is_some(),
    };
    let ctx = Arc::new(Context::new(
        client.clone(),
        settings,
        metrics.clone(),
        Some(identity.clone()),
    ));
    let operator = Operator {
        client,
        lease_client,
        scope,
        cache: slos_for_operator,
        ctx,
        health,
        metrics,
        shutdown_timeout: args.shutdown_timeout,
        prometheus,
        reading_scope: args.reading_selector.clone(),
        evaluation_interval: args.evaluation_interval,
    };
    if args.leader_election {
        operator
            .lead(&args.lease_name, &namespace, &identity, shutdown)
            .await;
    } else {
        operator.health.leading.store(true, Ordering::Relaxed);
        operator.term(shutdown).await;
    }
    if let Some(webhook) = webhook
        && let Err(e) = webhook.done.await
    {
        return Err(format!("webhook server task failed: {e}"));
    }
    match server.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("HTTP server failed: {e}")),
        Err(e) => Err(format!("HTTP server task failed: {e}")),
    }
}

/// The webhook's settings, or `None` without --webhook-listen.
fn webhook_settings(
    args: &Args,
    namespace: &str,
    scope: &Scope,
) -> Result<Option<webhook::Settings>, String> {
    let Some(listen) = args.webhook_listen else {
        return Ok(None);
    };
    let certificates = match (
        &args.webhook_cert_dir,
        &args.webhook_secret,
        &args.webhook_service,
    ) {
        (Some(dir), _, _) => webhook::CertSource::Dir(dir.clone()),
        (None, Some(name), Some(service)) => webhook::CertSource::Secret {
            name: name.clone(),
            namespace: namespace.to_string(),
            service: service.clone(),
        },
        _ => {
            return Err(
                "--webhook-listen needs a certificate: --webhook-cert-dir (such as a \
                        mounted cert-manager Secret), or --webhook-secret with --webhook-service \
                        for a certificate the operator generates"
                    .to_string(),
            );
        }
    };
    Ok(Some(webhook::Settings {
        listen,
        certificates,
        configuration: args.webhook_configuration.clone(),
        deploy_freeze: args.deploy_freeze,
        cache: None,
        scope: scope.clone(),
        recheck: webhook::RECHECK,
    }))
}

struct Operator {
    client: Client,
    /// Unthrottled, for the Lease alone.
    lease_client: Client,
    scope: Scope,
    /// The replica's one SLO watch, which the controllers and the reader share.
    cache: Arc<SloCache>,
    ctx: Arc<Context>,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
    shutdown_timeout: Duration,
    /// Where budgets are read from; `None` runs the reconciler only.
    prometheus: Option<crate::prometheus::Client>,
    reading_scope: crate::prometheus::ReadingScope,
    evaluation_interval: Duration,
}

impl Operator {
    /// Stands by until this replica holds the lease, runs the controllers while it does, and
    /// releases the lease on shutdown so the next leader takes over at once: a standby reads the
    /// Lease every [`STANDBY_POLL`] and, once its holder has released it, starts over with a Lease
    /// manager that takes it (the manager itself looks again only when the term would expire).
    async fn lead(
        &self,
        lease: &str,
        namespace: &str,
        identity: &str,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let leases: Api<Lease> = Api::namespaced(self.lease_client.clone(), namespace);
        let mut announced = false;
        loop {
            let Some(manager) = self
                .lease_manager(lease, namespace, identity, &mut shutdown)
                .await
            else {
                return;
            };
            if !announced {
                announced = true;
                self.health.standing_by.store(true, Ordering::Relaxed);
                info!(
                    lease,
                    namespace, identity, "standing by for the leader lease"
                );
            }
            let (mut leading, task) = manager.watch().await;
            let done = loop {
                tokio::select! {
                    changed = leading.wait_for(|l| *l) => if changed.is_err() { break true },
                    _ = released(&leases, lease) => break false,
                    _ = shutdown.wait_for(|s| *s) => break true,
                }
                info!("acquired the leader lease");
                let (stop_tx, stop) = watch::channel(false);
                let mut lost = leading.clone();
                let mut signal = shutdown.clone();
                let stopper = tokio::spawn(async move {
                    tokio::select! {
                        _ = lost.wait_for(|l| !*l) => warn!("lost the leader lease; stopping writes"),
                        _ = signal.wait_for(|s| *s) => {}
                    }
                    let _ = stop_tx.send(true);
                });
                self.term(stop).await;
                stopper.abort();
                if *shutdown.borrow() {
                    break true;
                }
            };
            if !done {
                // Not the holder (it was standing by): nothing of ours to release.
                task.abort();
                let _ = task.await;
                info!("the leader lease was released; trying to take it");
                continue;
            }
            drop(leading);
            match task.await {
                Ok(Ok(_)) => info!("released the leader lease"),
                Ok(Err(e)) => warn!(error = %e, "could not release the leader lease"),
                Err(e) => warn!(error = %e, "leader lease task failed"),
            }
            return;
        }
    }

    /// A Lease manager for this replica, retried with backoff; `None` on shutdown.
    async fn lease_manager(
        &self,
        lease: &str,
        namespace: &str,
        identity: &str,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Option<LeaseManager> {
        let mut retry = Duration::from_secs(1);
        loop {
            let built = LeaseManagerBuilder::new(self.lease_client.clone(), lease)
                .with_namespace(namespace)
                .with_identity(identity)
                .with_duration(15)
                .with_grace(5)
                .build();
            let built = tokio::select! {
                built = built => built,
                _ = shutdown.wait_for(|s| *s) => return None,
            };
            match built {
                Ok(manager) => return Some(manager),
                Err(e) => {
                    warn!(error = %e, retry_in = ?retry, "cannot reach the leader Lease");
                    tokio::select! {
                        _ = tokio::time::sleep(retry) => {}
                        _ = shutdown.wait_for(|s| *s) => return None,
                    }
                    retry = (retry * 2).min(Duration::from_secs(30));
                }
            }
        }
    }

    /// One term of office: the controllers run until `stop`, then get `shutdown_timeout` to finish.
    async fn term(&self, mut stop: watch::Receiver<bool>) {
        self.health.leading.store(true, Ordering::Relaxed);
        self.metrics.leader.set(1);
        let mut graceful = stop.clone();
        let running = controller::start(
            &self.client,
            &self.scope,
            &self.cache,
            self.ctx.clone(),
            async move {
                let _ = graceful.wait_for(|s| *s).await;
            },
        );
        *self.health.stores.lock().unwrap_or_else(|p| p.into_inner()) = self.cache.stores();
        let health = self.health.clone();
        let cache = self.cache.clone();
        let sync = tokio::spawn(async move {
            while !cache.synced() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            health.synced.store(true, Ordering::Relaxed);
            info!("watches synced");
        });
        let reader = self.prometheus.clone().map(|prometheus| {
            tokio::spawn(
                Reader {
                    prometheus,
                    scope: self.reading_scope.clone(),
                    interval: self.evaluation_interval,
                    cache: self.cache.clone(),
                    latest: self.ctx.readings.clone(),
                    metrics: self.metrics.clone(),
                    rule_labels: self
                        .ctx
                        .config
                        .rule_labels
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(","),
                }
                .run(),
            )
        });
        let pruner = tokio::spawn(prune(self.cache.clone(), self.ctx.clone()));
        let reporter = tokio::spawn(crate::controller::unreadable::report(
            self.cache.clone(),
            self.ctx.clone(),
        ));
        let mut done = running.done;
        tokio::select! {
            _ = &mut done => {}
            _ = stop.wait_for(|s| *s) => {
                // The controllers stop taking work; what is running may finish its writes.
                let drained = async {
                    while self.ctx.in_flight.load(Ordering::SeqCst) > 0 {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                };
                tokio::select! {
                    _ = &mut done => {}
                    _ = drained => {}
                    _ = tokio::time::sleep(self.shutdown_timeout) => {
                        error!(timeout = ?self.shutdown_timeout, "reconciles did not finish in time");
                    }
                }
            }
        }
        sync.abort();
        pruner.abort();
        reporter.abort();
        if let Some(reader) = reader {
            reader.abort();
        }
        self.cache.unsubscribe();
        self.ctx.readings.clear();
        self.health.synced.store(false, Ordering::Relaxed);
        self.health.leading.store(false, Ordering::Relaxed);
        self.health
            .stores
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        self.metrics.leader.set(0);
    }
}

/// How often a standby reads the Lease to notice that its holder released it.
const STANDBY_POLL: Duration = Duration::from_secs(1);

/// Resolves once the Lease `name` has no holder (or is gone), as after its holder released it.
/// Read every [`STANDBY_POLL`]; a failed read is tried again (the Lease manager reports API
/// errors).
async fn released(leases: &Api<Lease>, name: &str) {
    loop {
        tokio::time::sleep(STANDBY_POLL).await;
        match leases.get_opt(name).await {
            Ok(lease) => {
                let holder = lease.and_then(|l| l.spec).and_then(|s| s.holder_identity);
                if holder.is_none() {
                    return;
                }
            }
            Err(_) => continue,
        }
    }
}

/// Drops what the controller remembers of SLOs that are gone, every minute.
async fn prune(cache: Arc<SloCache>, ctx: Arc<Context>) {
    let mut ticker = tokio::time::interval(Duration::from_secs(60));
    loop {
        ticker.tick().await;
        let alive: std::collections::HashSet<String> = cache
            .all()
            .iter()
            .filter_map(|s| s.metadata.uid.clone())
            .collect();
        ctx.verified.retain(&alive);
        ctx.foreign_reported.retain(&alive);
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| format!("plimsoll-{}", std::process::id()))
}
