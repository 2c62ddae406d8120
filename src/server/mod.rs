//! The operator's HTTP endpoints: /healthz, /readyz and /metrics.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use kube::runtime::reflector::Store;
use std::sync::Mutex;

use crate::api::ServiceLevelObjective;
use crate::metrics::Metrics;
use crate::slo_cache::SloCache;

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
        .route("/flagger/rollback", get(flagger_rollback))
        .with_state(state)
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    if state.health.ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    count_slos(&state);
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

/// The query of Flagger's rollback webhook: `?slo=<namespace>/<name>`.
#[derive(serde::Deserialize)]
pub struct FlaggerQuery {
    pub slo: Option<String>,
}

/// Flagger's rollback webhook: Flagger rolls the canary back when this answers 2xx. 200 while the
/// SLO's rollback trigger holds (state Exhausted or Recovering); 412 Precondition Failed
/// otherwise, including when there is no data (missing data never rolls back); 404 for an SLO this
/// operator does not know; 503 while the SLOs are still being listed; 400 without
/// `?slo=<namespace>/<name>`.
async fn flagger_rollback(
    State(state): State<AppState>,
    axum::extract::Query(query): axum::extract::Query<FlaggerQuery>,
) -> impl IntoResponse {
    flagger_answer(query.slo.as_deref(), |namespace, name| {
        match state.slos.find(namespace, name) {
            None => Lookup::Listing,
            Some(None) => Lookup::Unknown,
            Some(Some(slo)) => Lookup::Found(slo.status.clone().map(Box::new)),
        }
    })
}

/// What looking up the webhook's SLO found.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    /// The SLOs are still being listed: nobody can tell yet.
    Listing,
    /// No such SLO here.
    Unknown,
    /// The SLO, with its status (`None` before the first status is written).
    Found(Option<Box<crate::api::ServiceLevelObjectiveStatus>>),
}

/// The webhook's answer for `?slo=` (`None` without it), given how to look an SLO up. The
/// operator and local mode answer alike.
pub fn flagger_answer(
    slo: Option<&str>,
    find: impl FnOnce(&str, &str) -> Lookup,
) -> (StatusCode, String) {
    let Some((namespace, name)) = slo.and_then(|s| s.split_once('/')) else {
        return (
            StatusCode::BAD_REQUEST,
            "give ?slo=<namespace>/<name>\n".to_string(),
        );
    };
    match find(namespace, name) {
        Lookup::Listing => (
            StatusCode::SERVICE_UNAVAILABLE,
            "no rollback: the SLOs are still being listed\n".to_string(),
        ),
        Lookup::Unknown => (
            StatusCode::NOT_FOUND,
            format!("no SLO {namespace}/{name} is watched here\n"),
        ),
        Lookup::Found(status) => rollback_answer(status.as_deref()),
    }
}

/// The answer for one SLO's status, pure for the tests.
pub fn rollback_answer(
    status: Option<&crate::api::ServiceLevelObjectiveStatus>,
) -> (StatusCode, String) {
    use crate::api::RollbackState;
    let data = status.and_then(|s| s.conditions.iter().find(|c| c.type_ == "DataAvailable"));
    if data.is_none_or(|c| c.status != "True") {
        return (
            StatusCode::PRECONDITION_FAILED,
            "no rollback: no current budget data\n".to_string(),
        );
    }
    let state = status.and_then(|s| s.rollback.as_ref()).map(|r| r.state);
    let remaining = status
        .and_then(|s| s.error_budget.as_ref())
        .map(|b| b.remaining.clone())
        .unwrap_or_default();
    match state {
        Some(RollbackState::Exhausted | RollbackState::Recovering) => (
            StatusCode::OK,
            format!("roll back: error budget trigger holds ({remaining}% left)\n"),
        ),
        _ => (
            StatusCode::PRECONDITION_FAILED,
            format!("no rollback: within budget ({remaining}% left)\n"),
        ),
    }
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

    fn status(
        data: &str,
        state: crate::api::RollbackState,
    ) -> crate::api::ServiceLevelObjectiveStatus {
        serde_json::from_value(serde_json::json!({
            "errorBudget": {"remaining": "-3.0", "consumedMinutes": "44.5", "totalMinutes": "43.2"},
            "rollback": {"state": state},
            "conditions": [{"type": "DataAvailable", "status": data, "reason": "x", "message": "",
                            "lastTransitionTime": "2026-01-01T00:00:00Z"}],
        }))
        .unwrap()
    }

    #[test]
    fn flagger_rolls_back_only_while_the_trigger_holds_on_fresh_data() {
        use crate::api::RollbackState::*;
        assert_eq!(
            rollback_answer(Some(&status("True", Exhausted))).0,
            StatusCode::OK
        );
        assert_eq!(
            rollback_answer(Some(&status("True", Recovering))).0,
            StatusCode::OK
        );
        assert_eq!(
            rollback_answer(Some(&status("True", Healthy))).0,
            StatusCode::PRECONDITION_FAILED
        );
        assert_eq!(
            rollback_answer(Some(&status("True", Burning))).0,
            StatusCode::PRECONDITION_FAILED
        );
        assert_eq!(
            rollback_answer(Some(&status("False", Exhausted))).0,
            StatusCode::PRECONDITION_FAILED
        );
        assert_eq!(rollback_answer(None).0, StatusCode::PRECONDITION_FAILED);
        assert!(
            rollback_answer(Some(&status("True", Exhausted)))
                .1
                .contains("-3.0% left")
        );
    }

    #[test]
    fn the_webhook_needs_a_known_slo_and_then_answers_from_its_status() {
        let known = |namespace: &str, name: &str| {
            if namespace == "shop" && name == "pay" {
                Lookup::Found(Some(Box::new(status(
                    "True",
                    crate::api::RollbackState::Exhausted,
                ))))
            } else {
                Lookup::Unknown
            }
        };
        assert_eq!(flagger_answer(None, known).0, StatusCode::BAD_REQUEST);
        assert_eq!(
            flagger_answer(Some("pay"), known).0,
            StatusCode::BAD_REQUEST
        );
        let (code, body) = flagger_answer(Some("shop/cart"), known);
        assert_eq!(
            (code, body.as_str()),
            (StatusCode::NOT_FOUND, "no SLO shop/cart is watched here\n")
        );
        assert_eq!(flagger_answer(Some("shop/pay"), known).0, StatusCode::OK);
        let fresh = |_: &str, _: &str| Lookup::Found(None);
        assert_eq!(
            flagger_answer(Some("shop/new"), fresh).0,
            StatusCode::PRECONDITION_FAILED,
            "no status yet: no data, no rollback"
        );
        let listing = |_: &str, _: &str| Lookup::Listing;
        assert_eq!(
            flagger_answer(Some("shop/pay"), listing).0,
            StatusCode::SERVICE_UNAVAILABLE
        );
    }

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
