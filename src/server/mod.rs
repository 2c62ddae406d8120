//! The operator's HTTP endpoints: /healthz, /readyz, /metrics and Flagger's /flagger/rollback.

pub mod flagger;
pub mod ui_source;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use kube::runtime::reflector::Store;
use std::sync::Mutex;

use crate::api::ServiceLevelObjective;
use crate::metrics::Metrics;
use crate::slo_cache::SloCache;
use flagger::FlaggerQuery;

/// What /readyz and /metrics look at, updated by the run loop.
#[derive(Default)]
pub struct Health {
    /// Leader election is on: a standby replica is ready without watching.
    pub leader_election: bool,
    /// This replica holds the lease (always true without leader election once started).
    pub leading: AtomicBool,
    /// The controllers' watches have listed every object once.
    pub synced: AtomicBool,
    /// A standby replica has reached the API server.
    pub standing_by: AtomicBool,
    /// The SLO caches of the running controllers.
    pub stores: Mutex<Vec<Store<ServiceLevelObjective>>>,
}

impl Health {
    pub fn ready(&self) -> bool {
        if self.leading.load(Ordering::Relaxed) {
            self.synced.load(Ordering::Relaxed)
        } else {
            self.leader_election && self.standing_by.load(Ordering::Relaxed)
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    /// This replica's own SLO cache: the Flagger endpoint answers from it on every replica.
    pub slos: Arc<SloCache>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route(
            "/flagger/rollback",
            get(flagger_rollback).post(flagger_rollback),
        )
        .with_state(state)
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    if let Some((long, error)) = state.slos.stale() {
        let message = format!(
            "not ready: the SLO watch has failed for {} s (its copy of the SLOs is stale): {error}\n",
            long.as_secs()
        );
        return (StatusCode::SERVICE_UNAVAILABLE, message);
    }
    if state.health.ready() {
        (StatusCode::OK, "ready\n".to_string())
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n".to_string())
    }
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    count_slos(&state);
    state.metrics.set_unreadable(state.slos.unreadable_count());
    match state.metrics.encode() {
        Ok(body) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// Flagger's rollback webhook (see [`flagger`]): POST with Flagger's payload, or GET
/// `?slo=<namespace>/<name>`, answered from this replica's own SLO cache.
async fn flagger_rollback(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    Query(query): Query<FlaggerQuery>,
    body: Body,
) -> (StatusCode, String) {
    flagger::respond(&method, &headers, query.slo, body, |namespace| {
        let slos = state.slos.snapshot(namespace)?;
        Some(slos.iter().map(|slo| flagger::Known::of(slo)).collect())
    })
    .await
}

/// SLOs by their Ready condition, counted from the caches at scrape time, so deleted SLOs drop
/// out without bookkeeping.
fn count_slos(state: &AppState) {
    let stores = state
        .health
        .stores
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let (mut ready, mut not_ready, mut unknown) = (0, 0, 0);
    for slo in stores.iter().flat_map(|s| s.state()) {
        let condition = slo
            .status
            .as_ref()
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"));
        match condition.map(|c| c.status.as_str()) {
            Some("True") => ready += 1,
            Some("False") => not_ready += 1,
            _ => unknown += 1,
        }
    }
    state.metrics.set_slos(ready, not_ready, unknown);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_follows_the_role() {
        let standby = Health {
            leader_election: true,
            ..Health::default()
        };
        assert!(!standby.ready(), "not yet talked to the API server");
        standby.standing_by.store(true, Ordering::Relaxed);
        assert!(standby.ready());
        standby.leading.store(true, Ordering::Relaxed);
        assert!(
            !standby.ready(),
            "a new leader is ready once its watches synced"
        );
        standby.synced.store(true, Ordering::Relaxed);
        assert!(standby.ready());
        let single = Health::default();
        single.standing_by.store(true, Ordering::Relaxed);
        assert!(
            !single.ready(),
            "without leader election only a synced controller is ready"
        );
    }
}
