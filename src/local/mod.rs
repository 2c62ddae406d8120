//! Local mode (`plimsoll local`): Plimsoll without Kubernetes. SLO manifests from a directory,
//! plain rule files for a Prometheus that reads them, the same budget evaluation and rollback
//! policy as the operator, a status table on every round, `/status` as JSON and Flagger's
//! rollback webhook.
//!
//! The deciding parts are pure ([`catalog`], [`rule_files`]' plan, [`board`], [`table`]); this
//! module is the loop around them that reads files, writes files and talks HTTP.

pub mod board;
pub mod catalog;
pub mod rule_files;
mod ruler_sync;
pub mod table;
mod ui_source;

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::routing::get;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

use crate::prometheus::{self, Reload};
use crate::server::flagger::{self, FlaggerQuery};
use crate::ui;
use board::Board;
use catalog::{Catalog, Snapshot};

/// How local mode runs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Manifest files or directories (walked recursively).
    pub slos: Vec<PathBuf>,
    /// Where the rules go: rule files, or a ruler.
    pub rules: RulesTo,
    /// Namespace of SLOs whose manifest names none.
    pub namespace: String,
    pub interval: Duration,
    /// Where to serve `/status` and the webhook; `None` serves nothing.
    pub listen: Option<SocketAddr>,
    /// One round, then exit.
    pub once: bool,
    /// The UI's address as people reach it: alerts link to their SLO's page there.
    pub ui_url: Option<String>,
    /// `partial_response_strategy` for the groups of SLOs that set none (Thanos Ruler).
    pub partial_response_strategy: Option<crate::api::PartialResponseStrategy>,
    pub prometheus: prometheus::Settings,
    /// `--reading-selector`: the labels that scope every reading (and the UI's) to this
    /// cluster's series.
    pub reading_scope: prometheus::ReadingScope,
}

/// Where local mode delivers the rules.
#[derive(Debug, Clone)]
pub enum RulesTo {
    /// A directory of rule files; Prometheus' `rule_files` should include `<dir>/*.yaml`.
    Files(PathBuf),
    /// A Mimir or Cortex ruler, SLO namespace `NS` in ruler namespace `<prefix>NS`.
    Ruler {
        settings: crate::ruler::Settings,
        prefix: String,
    },
}

/// What stops local mode from starting.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("{0}")]
    Prometheus(#[from] prometheus::Error),
    #[error("{0}")]
    Ruler(#[from] crate::ruler::RulerError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// What the HTTP endpoints show: the latest round.
#[derive(Debug, Default)]
pub struct View {
    pub board: Board,
    pub problems: Vec<String>,
    pub prometheus: String,
}

type Shared = Arc<RwLock<View>>;

/// Everything local mode remembers between rounds.
struct Local {
    settings: Settings,
    client: prometheus::Client,
    snapshot: Option<Snapshot>,
    catalog: Catalog,
    board: Board,
    /// Rule files changed and Prometheus has not yet confirmed a reload.
    reload_pending: bool,
    /// The lifecycle API is off, and we said so.
    lifecycle_off: bool,
    /// With [`RulesTo::Ruler`].
    ruler: Option<ruler_sync::RulerSync>,
    /// Whether the server evaluates native histograms, once learned; kept through failed reads.
    native_histograms: Option<Result<(), crate::prometheus::version::TooOld>>,
    /// What was last said about SLOs held back for it, so it is said once per change.
    held_back_said: Vec<String>,
}

/// How a round went, for `--once`'s exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// Prometheus could not be read, files could not be read or written, or the ruler did not
    /// take every group.
    Incomplete,
}

/// Runs local mode until `shutdown` completes, or for one round with `once` (whose outcome it
/// returns).
pub async fn run(
    settings: Settings,
    out: &mut impl Write,
    err: &mut impl Write,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<Outcome, LocalError> {
    let client = prometheus::Client::new(settings.prometheus.clone())?;
    let ruler = match &settings.rules {
        RulesTo::Files(_) => None,
        RulesTo::Ruler { settings, prefix } => Some(ruler_sync::RulerSync::new(
            crate::ruler::Client::new(settings.clone())?,
            prefix.clone(),
        )),
    };
    let shared: Shared = Arc::new(RwLock::new(View {
        prometheus: settings.prometheus.url.clone(),
        ..View::default()
    }));
    let server = match (settings.listen, settings.once) {
        (Some(addr), false) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| LocalError::Listen { addr, source })?;
            let bound = listener.local_addr().unwrap_or(addr);
            let _ = writeln!(
                err,
                "serving the UI at http://{bound}/ui, http://{bound}/status and \
                 http://{bound}/flagger/rollback (Flagger's POST, or GET ?slo=<namespace>/<name>)"
            );
            let ui = ui::Ui {
                source: ui_source::LocalSource(shared.clone()),
                prometheus: Some(client.clone()),
                scope: settings.reading_scope.clone(),
                external_url: settings.ui_url.clone(),
                partial_response_strategy: settings.partial_response_strategy,
            };
            let app = router(shared.clone()).merge(ui::router(ui));
            Some(tokio::spawn(
                async move { axum::serve(listener, app).await },
            ))
        }
        _ => None,
    };
    let mut local = Local {
        client,
        snapshot: None,
        catalog: Catalog::default(),
        board: Board::default(),
        reload_pending: false,
        lifecycle_off: false,
        ruler,
        native_histograms: None,
        held_back_said: Vec::new(),
        settings,
    };
    tokio::pin!(shutdown);
    let outcome = loop {
        let outcome = local.round(out, err).await;
        if let Ok(mut view) = shared.write() {
            view.board = local.board.clone();
            view.problems = local.catalog.problems.clone();
            view.problems.extend(local.held_back_said.iter().cloned());
        }
        if local.settings.once {
            break outcome;
        }
        tokio::select! {
            () = tokio::time::sleep(local.settings.interval) => {}
            () = &mut shutdown => break Outcome::Done,
        }
    };
    if let Some(server) = server {
        server.abort();
    }
    Ok(outcome)
}

impl Local {
    async fn round(&mut self, out: &mut impl Write, err: &mut impl Write) -> Outcome {
        let mut outcome = Outcome::Done;
        match catalog::snapshot(&self.settings.slos) {
            Ok(snapshot) if self.snapshot.as_ref() != Some(&snapshot) => {
                self.catalog = catalog::load(&snapshot, &self.settings.namespace);
                for problem in &self.catalog.problems {
                    let _ = writeln!(err, "{problem}");
                }
                let _ = writeln!(
                    err,
                    "read {} valid SLO(s) from {} file(s){}",
                    self.catalog.slos.len(),
                    snapshot.len(),
                    match self.catalog.skipped_files.len() {
                        0 => String::new(),
                        n => format!("; {n} file(s) with problems skipped"),
                    }
                );
                self.snapshot = Some(snapshot);
            }
            Ok(_) => {}
            Err(e) => {
                let _ = writeln!(err, "plimsoll local: {e}; keeping the SLOs read before");
                outcome = Outcome::Incomplete;
            }
        }
        let slos = self.evaluable(err).await;
        if slos.len() < self.catalog.slos.len() {
            outcome = Outcome::Incomplete;
        }
        if let Some(ruler) = &mut self.ruler {
            let ui_url = self.settings.ui_url.as_deref();
            if !ruler.round(&slos, ui_url, err).await {
                outcome = Outcome::Incomplete;
            }
        } else if let Err(e) = self.write_rules(&slos, err).await {
            let _ = writeln!(err, "plimsoll local: {e}");
            outcome = Outcome::Incomplete;
        }
        let now = Timestamp::now();
        // Calendar windows need their period's sums: one more query per period start.
        let calendars: Vec<(String, crate::model::Slo)> = slos
            .iter()
            .filter(|l| l.slo.window.period(now).is_some())
            .map(|l| (l.namespace.clone(), l.slo.clone()))
            .collect();
        let scope = &self.settings.reading_scope;
        let readings = crate::prometheus::read_for(&self.client, scope, &calendars, now).await;
        if readings.is_err() {
            outcome = Outcome::Incomplete;
        }
        self.board = board::advance(&self.board, &slos, &readings, now);
        // Nothing measured is no answer: --once exits 2 rather than 0 beside a table of Unknowns.
        let measured = self
            .board
            .entries
            .iter()
            .any(|e| crate::evaluator::status::fresh(&e.status));
        if !self.board.entries.is_empty() && !measured {
            outcome = Outcome::Incomplete;
        }
        let text = table::render(
            &self.board,
            &table::Context {
                prometheus: &self.settings.prometheus.url,
                skipped_files: &self.catalog.skipped_files,
            },
        );
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
        outcome
    }

    /// The SLOs whose rules the server evaluates as written. Prometheus 2.42 loads the rules of
    /// an SLO over a native histogram (it parses `histogram_fraction`), but has native histograms
    /// only behind a feature flag, as an experiment whose PromQL changed on the way to 3: its
    /// numbers would be missing or not 3's. So those SLOs wait until the server is known not to
    /// be a Prometheus 2, and are left out, with the reason said, where it is one.
    async fn evaluable(&mut self, err: &mut impl Write) -> Vec<catalog::Loaded> {
        let native = |l: &catalog::Loaded| l.slo.indicator.needs_prometheus_3();
        if !self.catalog.slos.iter().any(native) {
            self.held_back_said.clear();
            return self.catalog.slos.clone();
        }
        let learned = crate::prometheus::version::check_native_histograms(&self.client).await;
        if let Ok(verdict) = learned {
            self.native_histograms = Some(verdict);
        }
        let why = match &self.native_histograms {
            Some(Ok(())) => None,
            Some(Err(too_old)) => Some(too_old.to_string()),
            None => Some(format!(
                "waiting to learn the version of Prometheus at {} (indicator.nativeLatency needs \
                 3.0.0 or later; 2.x reads native histograms only as an experiment)",
                self.settings.prometheus.url
            )),
        };
        let Some(why) = why else {
            self.held_back_said.clear();
            return self.catalog.slos.clone();
        };
        let held: Vec<String> = self
            .catalog
            .slos
            .iter()
            .filter(|l| native(l))
            .map(|l| format!("{} ({}): no rules written: {why}", l.key, l.location))
            .collect();
        if held != self.held_back_said {
            for line in &held {
                let _ = writeln!(err, "{line}");
            }
            self.held_back_said = held;
        }
        self.catalog
            .slos
            .iter()
            .filter(|l| !native(l))
            .cloned()
            .collect()
    }

    /// Brings the rule files in line with the SLOs and asks Prometheus to reload when they
    /// changed (again every round until it answers).
    async fn write_rules(
        &mut self,
        slos: &[catalog::Loaded],
        err: &mut impl Write,
    ) -> Result<(), rule_files::RuleFileError> {
        let RulesTo::Files(dir) = &self.settings.rules else {
            return Ok(());
        };
        let desired = rule_files::desired(
            slos,
            self.settings.ui_url.as_deref(),
            self.settings.partial_response_strategy,
        )?;
        let changes = rule_files::plan(&desired, &rule_files::existing(dir)?);
        if !changes.is_empty() {
            rule_files::apply(dir, &desired, &changes)?;
            let mut said = Vec::new();
            if !changes.write.is_empty() {
                said.push(format!("wrote {}", changes.write.join(", ")));
            }
            if !changes.remove.is_empty() {
                said.push(format!("removed {}", changes.remove.join(", ")));
            }
            let _ = writeln!(err, "rules in {}: {}", dir.display(), said.join("; "));
            self.reload_pending = true;
        }
        if self.reload_pending {
            match self.client.reload().await {
                Ok(Reload::Done) => {
                    let _ = writeln!(err, "Prometheus reloaded its rule files");
                    self.reload_pending = false;
                }
                Ok(Reload::Disabled) => {
                    if !self.lifecycle_off {
                        let _ = writeln!(
                            err,
                            "Prometheus at {} does not serve /-/reload (it needs \
                             --web.enable-lifecycle): it reads the rule files on its next \
                             restart or SIGHUP",
                            self.settings.prometheus.url
                        );
                        self.lifecycle_off = true;
                    }
                    self.reload_pending = false;
                }
                Err(e) => {
                    let _ = writeln!(
                        err,
                        "could not ask Prometheus to reload ({e}); trying again next round"
                    );
                }
            }
        }
        Ok(())
    }
}

fn router(shared: Shared) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/status", get(status))
        .route("/flagger/rollback", get(flagger).post(flagger))
        .with_state(shared)
}

async fn status(State(shared): State<Shared>) -> axum::Json<Value> {
    let view = shared.read().unwrap_or_else(|p| p.into_inner());
    axum::Json(status_json(&view))
}

/// Flagger's rollback webhook, with the operator's answers, from the latest round.
async fn flagger(
    State(shared): State<Shared>,
    method: Method,
    headers: HeaderMap,
    Query(query): Query<FlaggerQuery>,
    body: Body,
) -> (StatusCode, String) {
    flagger::respond(&method, &headers, query.slo, body, |namespace| {
        let view = shared.read().unwrap_or_else(|p| p.into_inner());
        view.board.evaluated_at?; // before the first round
        Some(
            view.board
                .entries
                .iter()
                .filter(|e| e.key.split_once('/').is_some_and(|(ns, _)| ns == namespace))
                .map(known)
                .collect(),
        )
    })
    .await
}

/// A board entry as the webhook sees it.
fn known(entry: &board::Entry) -> flagger::Known {
    flagger::Known {
        name: entry.slo.name.clone(),
        targets: entry
            .slo
            .rollback
            .iter()
            .flat_map(|r| &r.targets)
            .map(|t| t.name.clone())
            .collect(),
        status: Some(entry.status.clone()),
    }
}

/// `/status`: every SLO with the status the operator would write, the decision and its note,
/// and the problems of skipped manifests.
pub fn status_json(view: &View) -> Value {
    let slos: Vec<Value> = view
        .board
        .entries
        .iter()
        .map(|e| {
            json!({
                "slo": e.key,
                "service": e.slo.service,
                "objective": e.slo.objective.to_string(),
                "window": table::window_text(&e.slo.window),
                "source": e.location,
                "decision": e.decision(),
                "note": e.note,
                "status": e.status,
            })
        })
        .collect();
    json!({
        "prometheus": ui::shown_url(&view.prometheus),
        "evaluatedAt": view.board.evaluated_at.map(|t| t.to_string()),
        "prometheusError": view
            .board
            .prometheus_error
            .as_ref()
            .map(|e| ui::redact_url(e, &view.prometheus)),
        "slos": slos,
        "problems": view.problems,
    })
}
