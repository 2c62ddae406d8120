//! Rollback actions through the evaluator, against a mocked API server that records every
//! request: annotate, abort, clear, dryRun and a missing target.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Request, Response};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::client::Body;
use kube::runtime::events::{Recorder, Reporter};
use plimsoll::access::Features;
use plimsoll::api::ServiceLevelObjective;
use plimsoll::budget::Reading;
use plimsoll::evaluator::{Actions, Readings, evaluate_with};
use plimsoll::model::Duration as Window;
use plimsoll::prometheus::SeriesKey;
use serde_json::{Value, json};
use tower_test::mock::Handle;

#[path = "support/access.rs"]
mod access;

#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    query: String,
    content_type: String,
    body: Value,
}

const DEPLOYMENT: &str = "/apis/apps/v1/namespaces/shop/deployments/checkout";
const ROLLOUT: &str = "/apis/argoproj.io/v1alpha1/namespaces/shop/rollouts/checkout-canary";
const SLO_STATUS: &str =
    "/apis/plimsoll.dev/v1alpha1/namespaces/shop/servicelevelobjectives/checkout/status";

fn slo(rollback: Value, status: Option<Value>) -> ServiceLevelObjective {
    let mut object = json!({
        "apiVersion": "plimsoll.dev/v1alpha1", "kind": "ServiceLevelObjective",
        "metadata": {"name": "checkout", "namespace": "shop", "uid": "u", "generation": 1},
        "spec": {"service": "checkout", "objective": 99.9, "window": "30d",
                 "indicator": {"ratio": {"errors": "e_total", "total": "t_total"}},
                 "rollback": rollback},
    });
    if let Some(s) = status {
        object["status"] = s;
    }
    serde_json::from_value(object).unwrap()
}

fn policy(dry_run: bool) -> Value {
    json!({"targets": [{"kind": "Deployment", "name": "checkout"},
                       {"kind": "Rollout", "name": "checkout-canary"}],
           "abortRollouts": true, "dryRun": dry_run})
}

fn readings(window_ratio: f64) -> Readings {
    let reading = Reading {
        window_error_ratio: Some(window_ratio),
        error_ratios: BTreeMap::from([(Window::from_hours(6), window_ratio)]),
        newest_sample: Some(Timestamp::from_second(1_800_000_000 - 30).unwrap()),
        period_error_ratio: None,
    };
    let key = SeriesKey {
        namespace: "shop".into(),
        name: "checkout".into(),
        group: BTreeMap::new(),
    };
    Ok(BTreeMap::from([(key, reading)]))
}

/// An API server that has the Deployment (revision 7) and, if `rollout`, the Rollout (revision
/// 3); it accepts every write and records every request.
async fn run(object: ServiceLevelObjective, readings: Readings, rollout: bool) -> Vec<Seen> {
    run_with(object, readings, rollout, Actions::Enabled).await
}

/// As [`run`], with rollback actions enabled or not; a request the operator's RBAC would not
/// grant in that configuration (src/access.rs) fails the test.
async fn run_with(
    object: ServiceLevelObjective,
    readings: Readings,
    rollout: bool,
    actions: Actions,
) -> Vec<Seen> {
    let features = Features {
        rollback_actions: actions == Actions::Enabled,
        ..access::FEATURES
    };
    let (service, mut handle): (_, Handle<Request<Body>, Response<Body>>) =
        tower_test::mock::pair();
    let client = Client::new(service, "default");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let stored = serde_json::to_value(&object).unwrap();
    let server = tokio::spawn(async move {
        while let Ok(Some((request, respond))) =
            tokio::time::timeout(Duration::from_millis(300), handle.next_request()).await
        {
            let method = request.method().to_string();
            let path = request.uri().path().to_string();
            let query = request.uri().query().unwrap_or("").to_string();
            access::check_with(&method, &path, &query, features);
            let content_type = request
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default();
            let bytes = request.into_body().collect_bytes().await.unwrap();
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let (code, answer) = match (method.as_str(), path.as_str()) {
                ("GET", DEPLOYMENT) => (
                    200,
                    json!({"apiVersion": "apps/v1", "kind": "Deployment",
                    "metadata": {"name": "checkout", "namespace": "shop",
                                 "annotations": {"deployment.kubernetes.io/revision": "7"}}}),
                ),
                ("GET", ROLLOUT) if rollout => (
                    200,
                    json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
                    "metadata": {"name": "checkout-canary", "namespace": "shop",
                                 "annotations": {"rollout.argoproj.io/revision": "3"}}}),
                ),
                ("GET", _) => (
                    404,
                    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                           "reason": "NotFound", "code": 404, "message": "not found"}),
                ),
                // The status subresource answers with the whole object.
                ("PATCH", SLO_STATUS) => {
                    let mut whole = stored.clone();
                    whole["status"] = body["status"].clone();
                    (200, whole)
                }
                _ => (200, body.clone()),
            };
            record.lock().unwrap().push(Seen {
                method,
                path,
                query,
                content_type,
                body,
            });
            respond.send_response(
                Response::builder()
                    .status(code)
                    .body(Body::from(serde_json::to_vec(&answer).unwrap()))
                    .unwrap(),
            );
        }
    });
    let now = Timestamp::from_second(1_800_000_000).unwrap();
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "plimsoll".into(),
            instance: None,
        },
    );
    evaluate_with(&client, &recorder, &object, &readings, now, actions)
        .await
        .unwrap();
    server.await.unwrap();
    Arc::try_unwrap(seen).unwrap().into_inner().unwrap()
}

const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/shop/events";

/// The writes and reads of objects, without the Events.
fn calls(seen: &[Seen]) -> Vec<(String, String)> {
    seen.iter()
        .filter(|s| s.path != EVENTS)
        .map(|s| (s.method.clone(), s.path.clone()))
        .collect()
}

/// The Events published: reason, and the kind and name they are about.
fn events(seen: &[Seen]) -> Vec<(String, String, String)> {
    seen.iter()
        .filter(|s| s.path == EVENTS)
        .map(|s| {
            let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
            (
                text(&s.body["reason"]),
                text(&s.body["regarding"]["kind"]),
                text(&s.body["regarding"]["name"]),
            )
        })
        .collect()
}

fn exhausted_status() -> Value {
    exhausted_with("7")
}

/// Exhausted since 07:00, the Deployment signalled at `revision`, the Rollout (revision 3) aborted.
fn exhausted_with(revision: &str) -> Value {
    json!({"rollback": {"state": "Exhausted", "since": "2027-01-15T07:00:00Z",
                        "targets": [{"kind": "Deployment", "name": "checkout", "action": "Annotated", "revision": revision},
                                    {"kind": "Rollout", "name": "checkout-canary", "action": "Aborted", "revision": "3"}]},
           "conditions": [{"type": "DataAvailable", "status": "True", "reason": "SeriesPresent", "message": "",
                           "lastTransitionTime": "2027-01-15T07:00:00Z"}]})
}

#[tokio::test]
async fn exhaustion_annotates_the_targets_and_aborts_the_rollout() {
    let seen = run(slo(policy(false), None), readings(0.0015), true).await;
    assert_eq!(
        calls(&seen),
        [
            ("GET".into(), DEPLOYMENT.into()),
            ("PATCH".into(), DEPLOYMENT.into()),
            ("GET".into(), ROLLOUT.into()),
            ("PATCH".into(), ROLLOUT.into()),
            ("PATCH".into(), format!("{ROLLOUT}/status")),
            ("PATCH".into(), SLO_STATUS.into()),
        ]
    );
    let writes: Vec<&Seen> = seen.iter().filter(|s| s.path != EVENTS).collect();
    let annotate = writes[1];
    assert!(
        annotate.query.contains("fieldManager=plimsoll-rollback")
            && annotate.query.contains("force=true")
    );
    assert!(annotate.content_type.contains("apply-patch"));
    let annotations = &annotate.body["metadata"]["annotations"];
    assert_eq!(annotations["plimsoll.dev/rollback"], "true");
    assert_eq!(annotations["plimsoll.dev/budget-state"], "Exhausted");
    assert_eq!(annotations["plimsoll.dev/slo"], "shop/checkout");
    assert_eq!(annotations["plimsoll.dev/rollback-revision"], "7");
    assert!(
        annotations["plimsoll.dev/rollback-reason"]
            .as_str()
            .unwrap()
            .contains("-50.0% of the error budget")
    );
    assert!(
        annotate.body.get("spec").is_none(),
        "never the pod template"
    );
    assert_eq!(
        writes[3].body["metadata"]["annotations"]["plimsoll.dev/rollback-revision"],
        "3"
    );
    let abort = writes[4];
    assert!(abort.content_type.contains("merge-patch"));
    assert_eq!(abort.body, json!({"status": {"abort": true}}));
    let status = &writes[5].body["status"];
    assert_eq!(status["rollback"]["state"], "Exhausted");
    assert_eq!(status["rollback"]["targets"][0]["action"], "Annotated");
    assert_eq!(status["rollback"]["targets"][1]["action"], "Aborted");
    assert_eq!(status["rollback"]["targets"][1]["revision"], "3");
    let r = "RollbackSignalled".to_string();
    assert_eq!(
        events(&seen),
        [
            (r.clone(), "ServiceLevelObjective".into(), "checkout".into()),
            (r.clone(), "Deployment".into(), "checkout".into()),
            (r, "Rollout".into(), "checkout-canary".into()),
        ]
    );
}

#[tokio::test]
async fn a_missing_target_is_reported_and_the_others_still_act() {
    let seen = run(slo(policy(false), None), readings(0.0015), false).await;
    assert_eq!(
        calls(&seen),
        [
            ("GET".into(), DEPLOYMENT.into()),
            ("PATCH".into(), DEPLOYMENT.into()),
            ("GET".into(), ROLLOUT.into()),
            ("PATCH".into(), SLO_STATUS.into()),
        ]
    );
    let target = &seen.last().unwrap().body["status"]["rollback"]["targets"][1];
    assert_eq!(
        events(&seen).len(),
        2,
        "the SLO and the Deployment, not the missing Rollout"
    );
    assert_eq!(target["action"], "Missing");
    assert!(
        target["message"]
            .as_str()
            .unwrap()
            .contains("does not exist")
    );
}

#[tokio::test]
async fn dry_run_writes_nothing_to_targets() {
    let seen = run(slo(policy(true), None), readings(0.0015), true).await;
    assert_eq!(calls(&seen), [("PATCH".into(), SLO_STATUS.into())]);
    let targets = &seen.last().unwrap().body["status"]["rollback"]["targets"];
    assert_eq!(targets[0]["action"], "WouldAnnotate");
    assert_eq!(
        seen.last().unwrap().body["status"]["rollback"]["state"],
        "Exhausted"
    );
    assert_eq!(
        events(&seen),
        [(
            "RollbackWouldSignal".into(),
            "ServiceLevelObjective".into(),
            "checkout".into()
        )],
        "dryRun records the decision in an Event on the SLO only"
    );
}

#[tokio::test]
async fn recovery_clears_exactly_our_signal() {
    // 20% of the budget left: above the default recovery line (trigger 0 + 10).
    let seen = run(
        slo(policy(false), Some(exhausted_status())),
        readings(0.0008),
        true,
    )
    .await;
    assert_eq!(
        calls(&seen),
        [
            ("GET".into(), DEPLOYMENT.into()),
            ("PATCH".into(), DEPLOYMENT.into()),
            ("GET".into(), ROLLOUT.into()),
            ("PATCH".into(), ROLLOUT.into()),
            ("PATCH".into(), SLO_STATUS.into()),
        ]
    );
    let cleared = &seen[1].body["metadata"]["annotations"];
    assert_eq!(
        cleared,
        &json!({"plimsoll.dev/budget-state": "Healthy", "plimsoll.dev/slo": "shop/checkout"})
    );
    assert!(seen[1].query.contains("fieldManager=plimsoll-rollback"));
    let status = &seen.last().unwrap().body["status"]["rollback"];
    assert_eq!(status["state"], "Healthy");
    assert!(events(&seen).iter().all(|e| e.0 == "RollbackCleared"));
    assert_eq!(events(&seen).len(), 3);
    assert_eq!(status["targets"][0]["action"], "Cleared");
}

#[tokio::test]
async fn still_exhausted_does_not_act_again() {
    let seen = run(
        slo(policy(false), Some(exhausted_status())),
        readings(0.0015),
        true,
    )
    .await;
    assert!(events(&seen).is_empty(), "no Events either");
    let targets: Vec<_> = calls(&seen)
        .into_iter()
        .filter(|(_, path)| path != SLO_STATUS)
        .collect();
    assert_eq!(
        targets,
        [
            ("GET".into(), DEPLOYMENT.into()),
            ("GET".into(), ROLLOUT.into())
        ],
        "the targets are read for their revisions; nothing is written in the same episode"
    );
}

#[tokio::test]
async fn a_new_revision_within_the_episode_is_signalled_once() {
    // The Deployment was signalled at revision 6 and has rolled out revision 7 since.
    let seen = run(
        slo(policy(false), Some(exhausted_with("6"))),
        readings(0.0015),
        true,
    )
    .await;
    assert_eq!(
        calls(&seen),
        [
            ("GET".into(), DEPLOYMENT.into()),
            ("PATCH".into(), DEPLOYMENT.into()),
            ("GET".into(), ROLLOUT.into()),
            ("PATCH".into(), SLO_STATUS.into()),
        ],
        "only the target on a new revision is written to"
    );
    let writes: Vec<&Seen> = seen.iter().filter(|s| s.path != EVENTS).collect();
    let annotations = &writes[1].body["metadata"]["annotations"];
    assert_eq!(annotations["plimsoll.dev/rollback-revision"], "7");
    assert_eq!(annotations["plimsoll.dev/rollback"], "true");
    assert_eq!(
        annotations["plimsoll.dev/exhausted-at"], "2027-01-15T07:00:00Z",
        "the episode keeps its start"
    );
    let targets = &writes[3].body["status"]["rollback"]["targets"];
    assert_eq!(targets[0]["revision"], "7");
    assert_eq!(targets[1]["action"], "Aborted");
    let r = "RollbackSignalled".to_string();
    assert_eq!(
        events(&seen),
        [
            (r.clone(), "ServiceLevelObjective".into(), "checkout".into()),
            (r, "Deployment".into(), "checkout".into()),
        ]
    );
    // The next round sees revision 7 recorded: nothing more.
    let status = writes[3].body["status"].clone();
    let again = run(slo(policy(false), Some(status)), readings(0.0015), true).await;
    assert!(
        calls(&again).iter().all(|(method, _)| method == "GET"),
        "{:?}",
        calls(&again)
    );
}

#[tokio::test]
async fn a_target_that_failed_is_retried_while_the_signal_holds() {
    let mut status = exhausted_status();
    status["rollback"]["targets"][0] = json!({"kind": "Deployment", "name": "checkout", "action": "Failed", "message": "timed out"});
    let seen = run(slo(policy(false), Some(status)), readings(0.0015), true).await;
    assert!(calls(&seen).contains(&("PATCH".into(), DEPLOYMENT.into())));
    let targets = &seen.last().unwrap().body["status"]["rollback"]["targets"];
    assert_eq!(targets[0]["action"], "Annotated");
    assert_eq!(targets[0]["revision"], "7");
}

#[tokio::test]
async fn clearing_never_creates_a_target_that_is_gone() {
    // The Rollout was deleted during the episode: apply would create an empty one.
    let seen = run(
        slo(policy(false), Some(exhausted_status())),
        readings(0.0008),
        false,
    )
    .await;
    assert!(
        !calls(&seen).contains(&("PATCH".into(), ROLLOUT.into())),
        "{:?}",
        calls(&seen)
    );
    let targets = &seen.last().unwrap().body["status"]["rollback"]["targets"];
    assert_eq!(targets[1]["action"], "Missing");
}

#[tokio::test]
async fn with_actions_disabled_the_decision_is_recorded_and_targets_are_untouched() {
    let seen = run_with(
        slo(policy(false), None),
        readings(0.0015),
        true,
        Actions::Disabled,
    )
    .await;
    assert_eq!(calls(&seen), [("PATCH".into(), SLO_STATUS.into())]);
    let rollback = &seen.last().unwrap().body["status"]["rollback"];
    assert_eq!(rollback["state"], "Exhausted");
    assert_eq!(rollback["targets"][0]["action"], "WouldAnnotate");
    assert_eq!(
        rollback["targets"][1]["message"],
        "rollback actions are disabled in the operator: nothing written"
    );
    let recorded = seen.iter().find(|s| s.path == EVENTS).unwrap();
    assert_eq!(recorded.body["reason"], "RollbackWouldSignal");
    assert!(
        recorded.body["note"]
            .as_str()
            .unwrap()
            .contains("(rollback actions are disabled in the operator)"),
        "{}",
        recorded.body["note"]
    );
    assert_eq!(events(&seen).len(), 1, "on the SLO only");
}

#[test]
#[should_panic(expected = "its RBAC does not grant: get deployments (apps)")]
fn a_target_call_without_the_rights_fails_the_test() {
    // The check itself: the chart with rollback.actions.enabled=false grants nothing on
    // workloads, so an operator that still acted would be refused.
    access::check_with(
        "GET",
        DEPLOYMENT,
        "",
        Features {
            rollback_actions: false,
            ..access::FEATURES
        },
    );
}
