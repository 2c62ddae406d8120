//! The reconciler against a mocked API server: every request it makes is asserted (verb, path,
//! query, body), and the answers are what a real API server sends, errors included.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, Response};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::client::Body;
use kube::runtime::controller::Action;
use plimsoll::api::ServiceLevelObjective;
use plimsoll::controller::reconcile::{error_policy, reconcile};
use plimsoll::controller::{Context, Settings};
use plimsoll::metrics::Metrics;
use serde_json::{Value, json};
use tower_test::mock::{Handle, SendResponse};

#[path = "support/access.rs"]
mod access;

const NOW: i64 = 1_800_000_000;
const RULE_PATH: &str = "/apis/monitoring.coreos.com/v1/namespaces/shop/prometheusrules/checkout";
const STATUS_PATH: &str =
    "/apis/plimsoll.dev/v1alpha1/namespaces/shop/servicelevelobjectives/checkout/status";
const EVENTS_PATH: &str = "/apis/events.k8s.io/v1/namespaces/shop/events";

type ApiHandle = Handle<Request<Body>, Response<Body>>;

fn slo(generation: i64, objective: f64, status: Option<Value>) -> ServiceLevelObjective {
    let mut object = json!({
        "apiVersion": "plimsoll.dev/v1alpha1",
        "kind": "ServiceLevelObjective",
        "metadata": {"name": "checkout", "namespace": "shop", "uid": "uid-1",
                     "generation": generation, "resourceVersion": "100",
                     "labels": {"team": "shop"}},
        "spec": {"service": "checkout", "objective": objective, "window": "30d",
                 "indicator": {"ratio": {"errors": "http_requests_total{code=~\"5..\"}",
                                         "total": "http_requests_total"}}},
    });
    if let Some(status) = status {
        object["status"] = status;
    }
    serde_json::from_value(object).unwrap()
}

fn context(client: Client) -> Arc<Context> {
    context_with(client, true)
}

fn context_with(client: Client, rollback_actions: bool) -> Arc<Context> {
    let settings = Settings {
        analysis_prometheus_url: Some("http://prometheus-operated.monitoring:9090".to_string()),
        rollback_actions,
        ..Settings::new(BTreeMap::from([(
            "release".to_string(),
            "kube-prometheus-stack".to_string(),
        )]))
    };
    let mut ctx = Context::new(client, settings, Arc::new(Metrics::default()), None);
    ctx.clock = || Timestamp::from_second(NOW).unwrap();
    Arc::new(ctx)
}

fn mock() -> (Arc<Context>, ApiHandle) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    (context(Client::new(service, "default")), handle)
}

/// One request the reconciler made.
struct Seen {
    method: Method,
    path: String,
    query: BTreeMap<String, String>,
    body: Value,
    respond: SendResponse<Response<Body>>,
}

async fn next(handle: &mut ApiHandle) -> Seen {
    let (request, respond) = tokio::time::timeout(Duration::from_secs(5), handle.next_request())
        .await
        .expect("the reconciler made no further request within 5 s")
        .expect("the client is gone");
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    access::check(method.as_str(), &path, request.uri().query().unwrap_or(""));
    let query = request
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|q| !q.is_empty())
        .map(|q| {
            let (k, v) = q.split_once('=').unwrap_or((q, ""));
            (k.to_string(), v.to_string())
        })
        .collect();
    let bytes = request.into_body().collect_bytes().await.unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    Seen {
        method,
        path,
        query,
        body,
        respond,
    }
}

fn answer(respond: SendResponse<Response<Body>>, code: u16, body: &Value) {
    respond.send_response(
        Response::builder()
            .status(code)
            .body(Body::from(serde_json::to_vec(body).unwrap()))
            .unwrap(),
    );
}

/// The API server's error answer.
fn status_error(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
}

fn not_found() -> Value {
    status_error(
        404,
        "NotFound",
        "prometheusrules.monitoring.coreos.com \"checkout\" not found",
    )
}

/// What the API server stores for an applied object: the body plus server-set metadata.
fn stored(mut body: Value) -> Value {
    body["metadata"]["uid"] = json!("rule-uid");
    body["metadata"]["resourceVersion"] = json!("200");
    body["metadata"]["generation"] = json!(1);
    body
}

async fn expect_get_rule(handle: &mut ApiHandle) -> SendResponse<Response<Body>> {
    let seen = next(handle).await;
    assert_eq!((seen.method, seen.path.as_str()), (Method::GET, RULE_PATH));
    seen.respond
}

async fn expect_apply_rule(handle: &mut ApiHandle) -> (Value, SendResponse<Response<Body>>) {
    let seen = next(handle).await;
    assert_eq!(
        (seen.method, seen.path.as_str()),
        (Method::PATCH, RULE_PATH)
    );
    assert_eq!(
        seen.query.get("fieldManager").map(String::as_str),
        Some("plimsoll")
    );
    assert_eq!(seen.query.get("force").map(String::as_str), Some("true"));
    assert_eq!(seen.body["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(seen.body["kind"], "PrometheusRule");
    (seen.body, seen.respond)
}

/// Status subresource semantics: only status (and identity) is sent; the answer is the whole
/// object with the new status and the spec and generation untouched.
async fn expect_status(handle: &mut ApiHandle, slo: &ServiceLevelObjective) -> Value {
    let seen = next(handle).await;
    assert_eq!(
        (seen.method, seen.path.as_str()),
        (Method::PATCH, STATUS_PATH)
    );
    assert_eq!(
        seen.query.get("fieldManager").map(String::as_str),
        Some("plimsoll-reconciler")
    );
    assert_eq!(seen.query.get("force").map(String::as_str), Some("true"));
    assert!(
        seen.body.get("spec").is_none(),
        "status writes carry no spec"
    );
    assert_eq!(seen.body["kind"], "ServiceLevelObjective");
    let mut object = serde_json::to_value(slo).unwrap();
    object["status"] = seen.body["status"].clone();
    answer(seen.respond, 200, &object);
    seen.body["status"].clone()
}

async fn expect_event(handle: &mut ApiHandle, type_: &str, reason: &str) -> Value {
    let seen = next(handle).await;
    assert_eq!(
        (seen.method, seen.path.as_str()),
        (Method::POST, EVENTS_PATH)
    );
    assert_eq!(seen.body["type"], type_);
    assert_eq!(seen.body["reason"], reason);
    assert_eq!(seen.body["regarding"]["name"], "checkout");
    assert_eq!(seen.body["regarding"]["kind"], "ServiceLevelObjective");
    let mut stored = seen.body.clone();
    stored["metadata"]["resourceVersion"] = json!("300");
    answer(seen.respond, 201, &stored);
    seen.body
}

/// Fails if the reconciler makes another request.
async fn expect_silence(handle: &mut ApiHandle) {
    let more = tokio::time::timeout(Duration::from_millis(200), handle.next_request()).await;
    if let Ok(Some((request, _))) = more {
        panic!("unexpected request: {} {}", request.method(), request.uri());
    }
}

fn ready_condition(status: &Value) -> &Value {
    status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .unwrap()
}

/// Runs one reconcile alongside the API server script.
async fn run<F>(
    slo: ServiceLevelObjective,
    script: impl FnOnce(ApiHandle) -> F + Send + 'static,
) -> (
    Result<Action, plimsoll::controller::Error>,
    Arc<Context>,
    Arc<ServiceLevelObjective>,
)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let (ctx, handle) = mock();
    let slo = Arc::new(slo);
    let server = tokio::spawn(script(handle));
    let result = tokio::time::timeout(Duration::from_secs(10), reconcile(slo.clone(), ctx.clone()))
        .await
        .expect("reconcile finished");
    server.await.expect("the API server script passed");
    (result, ctx, slo)
}

/// A status as the create path leaves it, for the later scenarios.
async fn created_status() -> (Value, Value) {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let object = slo(1, 99.9, None);
    let expected = object.clone();
    let (result, _, _) = run(object, move |mut h| async move {
        answer(expect_get_rule(&mut h).await, 404, &not_found());
        let (rule, respond) = expect_apply_rule(&mut h).await;
        answer(respond, 201, &stored(rule.clone()));
        expect_event(&mut h, "Normal", "RulesCreated").await;
        let status = expect_status(&mut h, &expected).await;
        expect_silence(&mut h).await;
        let _ = tx.send((rule, status));
    })
    .await;
    assert!(result.is_ok());
    rx.await.unwrap()
}

#[tokio::test]
async fn create_path_applies_the_rule_then_writes_status() {
    let (rule, status) = created_status().await;
    // The rule: ours and the configured labels, none of the SLO's, owned by the SLO.
    assert_eq!(
        rule["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "plimsoll"
    );
    assert_eq!(rule["metadata"]["labels"]["plimsoll.dev/slo"], "checkout");
    assert_eq!(
        rule["metadata"]["labels"]["release"],
        "kube-prometheus-stack"
    );
    assert!(rule["metadata"]["labels"].get("team").is_none());
    let owner = &rule["metadata"]["ownerReferences"][0];
    assert_eq!(owner["uid"], "uid-1");
    assert_eq!(owner["controller"], true);
    assert_eq!(rule["spec"]["groups"].as_array().unwrap().len(), 2);
    assert!(rule["metadata"].get("finalizers").is_none());
    // The status.
    assert_eq!(status["observedGeneration"], 1);
    assert_eq!(status["prometheusRule"], "checkout");
    let ready = ready_condition(&status);
    assert_eq!(ready["status"], "True");
    assert_eq!(ready["reason"], "RulesApplied");
    assert_eq!(ready["observedGeneration"], 1);
    assert_eq!(ready["lastTransitionTime"], "2027-01-15T08:00:00Z");
    assert!(ready["message"].as_str().unwrap().contains("2 rule groups"));
}

#[tokio::test]
async fn an_unchanged_healthy_slo_makes_no_writes() {
    let (rule, status) = created_status().await;
    let object = slo(1, 99.9, Some(status));
    let (result, _, _) = run(object, move |mut h| async move {
        answer(expect_get_rule(&mut h).await, 200, &stored(rule));
        expect_silence(&mut h).await;
    })
    .await;
    // No timer per SLO: the resync is one tick of the controller for every SLO.
    assert_eq!(result.unwrap(), Action::await_change());
}

#[tokio::test]
async fn a_rule_edited_or_deleted_by_hand_is_repaired() {
    let (rule, status) = created_status().await;
    let mut edited = stored(rule);
    edited["spec"]["groups"][0]["rules"][0]["expr"] = json!("vector(0)");
    let object = slo(1, 99.9, Some(status.clone()));
    let expected = object.clone();
    let (result, _, _) = run(object, move |mut h| async move {
        answer(expect_get_rule(&mut h).await, 200, &edited);
        let (body, respond) = expect_apply_rule(&mut h).await;
        assert_ne!(body["spec"]["groups"][0]["rules"][0]["expr"], "vector(0)");
        answer(respond, 200, &stored(body));
        expect_event(&mut h, "Normal", "RulesUpdated").await;
        expect_silence(&mut h).await; // status is already right: no write
        drop(expected);
    })
    .await;
    assert!(result.is_ok());
    // Deleted: the GET finds nothing and the rule is created again.
    let object = slo(1, 99.9, Some(status));
    let (result, _, _) = run(object, move |mut h| async move {
        answer(expect_get_rule(&mut h).await, 404, &not_found());
        let (body, respond) = expect_apply_rule(&mut h).await;
        answer(respond, 201, &stored(body));
        expect_event(&mut h, "Normal", "RulesCreated").await;
        expect_silence(&mut h).await;
    })
    .await;
    assert!(result.is_ok());
}

#[tokio::test]
async fn a_changed_spec_is_applied_and_observed() {
    let (rule, status) = created_status().await;
    let object = slo(2, 99.5, Some(status));
    let expected = object.clone();
    let (result, _, _) = run(object, move |mut h| async move {
        answer(expect_get_rule(&mut h).await, 200, &stored(rule));
        let (body, respond) = expect_apply_rule(&mut h).await;
        let text = body.to_string();
        assert!(text.contains("vector(0.005)"), "new budget rendered");
        answer(respond, 200, &stored(body));
        expect_event(&mut h, "Normal", "RulesUpdated").await;
        let status = expect_status(&mut h, &expected).await;
        assert_eq!(status["observedGeneration"], 2);
        let ready = ready_condition(&status);
        assert_eq!(ready["observedGeneration"], 2);
        // Still True: the transition time stays.
        assert_eq!(ready["lastTransitionTime"], "2027-01-15T08:00:00Z");
        expect_silence(&mut h).await;
    })
    .await;
    assert!(result.is_ok());
}

#[tokio::test]
async fn an_invalid_spec_sets_the_condition_and_makes_no_rule() {
    let object = slo(3, 100.0, None);
    let expected = object.clone();
    let (result, _, _) = run(object, move |mut h| async move {
        let status = expect_status(&mut h, &expected).await;
        let ready = ready_condition(&status);
        assert_eq!(ready["status"], "False");
        assert_eq!(ready["reason"], "InvalidSpec");
        assert!(
            ready["message"]
                .as_str()
                .unwrap()
                .starts_with("spec.objective: must be a percentage strictly between 0 and 100")
        );
        assert!(status.get("prometheusRule").is_none());
        let event = expect_event(&mut h, "Warning", "InvalidSpec").await;
        assert!(event["note"].as_str().unwrap().contains("spec.objective"));
        expect_silence(&mut h).await;
    })
    .await;
    assert_eq!(result.unwrap(), Action::await_change());
}

#[tokio::test]
async fn the_same_invalid_spec_again_writes_nothing() {
    let status = json!({"observedGeneration": 3, "conditions": [{
        "type": "Ready", "status": "False", "reason": "InvalidSpec",
        "message": "spec.objective: must be a percentage strictly between 0 and 100, such as 99.9, got 100",
        "observedGeneration": 3, "lastTransitionTime": "2027-01-01T00:00:00Z"}]});
    let (result, _, _) = run(slo(3, 100.0, Some(status)), |mut h| async move {
        expect_silence(&mut h).await;
    })
    .await;
    assert_eq!(result.unwrap(), Action::await_change());
}

#[tokio::test]
async fn a_missing_prometheus_rule_crd_is_reported_and_retried_slowly() {
    let object = slo(1, 99.9, None);
    let expected = object.clone();
    let (result, _, _) = run(object, move |mut h| async move {
        let missing = status_error(
            404,
            "NotFound",
            "the server could not find the requested resource",
        );
        answer(expect_get_rule(&mut h).await, 404, &missing);
        let (_, respond) = expect_apply_rule(&mut h).await;
        answer(respond, 404, &missing);
        let status = expect_status(&mut h, &expected).await;
        let ready = ready_condition(&status);
        assert_eq!(ready["status"], "False");
        assert_eq!(ready["reason"], "PrometheusOperatorMissing");
        assert!(
            ready["message"]
                .as_str()
                .unwrap()
                .contains("install prometheus-operator")
        );
        expect_event(&mut h, "Warning", "PrometheusOperatorMissing").await;
        expect_silence(&mut h).await;
    })
    .await;
    assert_eq!(result.unwrap(), Action::requeue(Duration::from_secs(300)));
}

#[tokio::test]
async fn an_invalid_object_answer_is_reported_with_the_servers_message() {
    let object = slo(1, 99.9, None);
    let expected = object.clone();
    let (result, _, _) = run(object, move |mut h| async move {
        answer(expect_get_rule(&mut h).await, 404, &not_found());
        let (_, respond) = expect_apply_rule(&mut h).await;
        let refused = status_error(
            422,
            "Invalid",
            "admission webhook \"prometheusrulevalidate.monitoring.coreos.com\" denied the request",
        );
        answer(respond, 422, &refused);
        let status = expect_status(&mut h, &expected).await;
        let ready = ready_condition(&status);
        assert_eq!(ready["reason"], "ApplyFailed");
        assert!(
            ready["message"]
                .as_str()
                .unwrap()
                .contains("denied the request")
        );
        expect_event(&mut h, "Warning", "ApplyFailed").await;
        expect_silence(&mut h).await;
    })
    .await;
    assert_eq!(result.unwrap(), Action::requeue(Duration::from_secs(900)));
}

#[tokio::test]
async fn a_conflict_is_retried_with_backoff() {
    let (result, ctx, slo) = run(slo(1, 99.9, None), |mut h| async move {
        answer(expect_get_rule(&mut h).await, 404, &not_found());
        let (_, respond) = expect_apply_rule(&mut h).await;
        answer(
            respond,
            409,
            &status_error(409, "Conflict", "Operation cannot be fulfilled"),
        );
        expect_silence(&mut h).await;
    })
    .await;
    let error = result.unwrap_err();
    assert_eq!(error.reason(), "ApplyRule");
    let action = error_policy(slo, &error, ctx.clone());
    let first = requeue_after(&action);
    assert!(
        first >= Duration::from_millis(2500) && first <= Duration::from_millis(7500),
        "{first:?}"
    );
    let text = ctx.metrics.encode().unwrap();
    assert!(
        text.contains("plimsoll_reconcile_errors_total{reason=\"ApplyRule\"} 1"),
        "{text}"
    );
}

#[tokio::test]
async fn server_errors_back_off_exponentially() {
    let (result, ctx, slo) = run(slo(1, 99.9, None), |mut h| async move {
        let seen = next(&mut h).await;
        assert_eq!(seen.path, RULE_PATH);
        answer(
            seen.respond,
            500,
            &status_error(500, "InternalError", "etcdserver: request timed out"),
        );
        expect_silence(&mut h).await;
    })
    .await;
    let error = result.unwrap_err();
    assert_eq!(error.reason(), "ReadRule");
    let delays: Vec<Duration> = (0..6)
        .map(|_| requeue_after(&error_policy(slo.clone(), &error, ctx.clone())))
        .collect();
    // 5s, 10s, 20s, 40s, 80s, 160s, each within +-50%.
    for (i, d) in delays.iter().enumerate() {
        let base = 5.0 * 2f64.powi(i as i32);
        assert!(
            d.as_secs_f64() >= base * 0.5 && d.as_secs_f64() <= base * 1.5,
            "attempt {i}: {d:?}"
        );
    }
}

/// Action keeps its delay private; its Debug output (`Action { requeue_after: Some(4.2s) }`)
/// names it.
fn requeue_after(action: &Action) -> Duration {
    let text = format!("{action:?}");
    let inner = text
        .split("Some(")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .unwrap_or_else(|| panic!("no requeue in {text}"));
    let (number, unit) = inner
        .find(|c: char| c.is_alphabetic() || c == 'µ')
        .map(|i| inner.split_at(i))
        .unwrap();
    let value: f64 = number.parse().unwrap();
    let seconds = match unit {
        "s" => value,
        "ms" => value / 1e3,
        "µs" => value / 1e6,
        "ns" => value / 1e9,
        other => panic!("unit {other} in {text}"),
    };
    Duration::from_secs_f64(seconds)
}

const SLO_PATH: &str =
    "/apis/plimsoll.dev/v1alpha1/namespaces/shop/servicelevelobjectives/checkout";

/// An SLO that acts on a Deployment; `deleting` sets the deletionTimestamp as `kubectl delete`
/// does while a finalizer holds the object.
fn acting_slo(finalizers: &[&str], deleting: bool) -> ServiceLevelObjective {
    let mut object = serde_json::to_value(slo(1, 99.9, None)).unwrap();
    object["spec"]["rollback"] = json!({"targets": [{"kind": "Deployment", "name": "checkout"}]});
    object["metadata"]["finalizers"] = json!(finalizers);
    if deleting {
        object["metadata"]["deletionTimestamp"] = json!("2027-01-15T08:00:00Z");
        // Acted on in this episode, then dropped from the spec: still cleaned.
        object["status"] = json!({"rollback": {"state": "Exhausted", "targets": [
            {"kind": "Deployment", "name": "old-checkout", "action": "Annotated"}]}});
    }
    serde_json::from_value(object).unwrap()
}

/// A merge patch of the finalizers, guarded by the resourceVersion the reconciler saw.
async fn expect_finalizers(handle: &mut ApiHandle, expected: Value) {
    let seen = next(handle).await;
    assert_eq!((seen.method, seen.path.as_str()), (Method::PATCH, SLO_PATH));
    assert_eq!(seen.body["metadata"]["finalizers"], expected);
    assert_eq!(seen.body["metadata"]["resourceVersion"], "100");
    assert!(seen.body.get("spec").is_none() && seen.body.get("status").is_none());
    let mut object = serde_json::to_value(acting_slo(&[], false)).unwrap();
    object["metadata"]["finalizers"] = expected;
    answer(seen.respond, 200, &object);
}

#[tokio::test]
async fn an_slo_that_acts_on_targets_gets_the_finalizer_first() {
    let object = acting_slo(&["other.io/keep"], false);
    let expected = object.clone();
    let (result, _, _) = run(object, move |mut h| async move {
        expect_finalizers(&mut h, json!(["other.io/keep", "plimsoll.dev/cleanup"])).await;
        answer(expect_get_rule(&mut h).await, 404, &not_found());
        let (rule, respond) = expect_apply_rule(&mut h).await;
        answer(respond, 201, &stored(rule));
        expect_event(&mut h, "Normal", "RulesCreated").await;
        expect_status(&mut h, &expected).await;
        expect_silence(&mut h).await;
    })
    .await;
    assert!(result.is_ok());
}

#[tokio::test]
async fn with_rollback_actions_off_no_finalizer_and_no_target_calls() {
    for (object, finalizer_patch) in [
        (acting_slo(&["other.io/keep"], false), None),
        (
            acting_slo(&["plimsoll.dev/cleanup", "other.io/keep"], false),
            Some(json!(["other.io/keep"])),
        ),
        (acting_slo(&["plimsoll.dev/cleanup"], true), Some(json!([]))),
    ] {
        let (service, mut h) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let ctx = context_with(Client::new(service, "default"), false);
        let deleting = object.metadata.deletion_timestamp.is_some();
        let expected = object.clone();
        let script = tokio::spawn(async move {
            if let Some(list) = finalizer_patch {
                expect_finalizers(&mut h, list).await;
            }
            if !deleting {
                answer(expect_get_rule(&mut h).await, 404, &not_found());
                let (rule, respond) = expect_apply_rule(&mut h).await;
                answer(respond, 201, &stored(rule));
                expect_event(&mut h, "Normal", "RulesCreated").await;
                expect_status(&mut h, &expected).await;
            }
            expect_silence(&mut h).await;
        });
        let result = reconcile(Arc::new(object), ctx).await;
        script.await.expect("no target was read or written");
        assert!(result.is_ok());
    }
}

const TEMPLATE_PATH: &str = "/apis/argoproj.io/v1alpha1/namespaces/shop/analysistemplates/checkout";

fn with_template(status: Option<Value>, on: bool) -> ServiceLevelObjective {
    let mut object = serde_json::to_value(slo(1, 99.9, status)).unwrap();
    if on {
        object["spec"]["rollback"] = json!({"analysisTemplate": true});
    }
    serde_json::from_value(object).unwrap()
}

fn condition<'a>(status: &'a Value, type_: &str) -> Option<&'a Value> {
    status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == type_)
}

/// The create path up to the template: the rule is created as usual.
async fn rule_created(h: &mut ApiHandle) {
    answer(expect_get_rule(h).await, 404, &not_found());
    let (rule, respond) = expect_apply_rule(h).await;
    answer(respond, 201, &stored(rule));
    expect_event(h, "Normal", "RulesCreated").await;
}

#[tokio::test]
async fn an_analysis_template_is_applied_owned_by_the_slo() {
    let object = with_template(None, true);
    let expected = object.clone();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let (result, _, _) = run(object, move |mut h| async move {
        rule_created(&mut h).await;
        let get = next(&mut h).await;
        assert_eq!(
            (get.method, get.path.as_str()),
            (Method::GET, TEMPLATE_PATH)
        );
        answer(
            get.respond,
            404,
            &status_error(404, "NotFound", "not found"),
        );
        let apply = next(&mut h).await;
        assert_eq!(
            (apply.method, apply.path.as_str()),
            (Method::PATCH, TEMPLATE_PATH)
        );
        assert_eq!(apply.query["fieldManager"], "plimsoll");
        assert_eq!(apply.query["force"], "true");
        answer(apply.respond, 201, &stored(apply.body.clone()));
        let status = expect_status(&mut h, &expected).await;
        expect_silence(&mut h).await;
        let _ = tx.send((apply.body, status));
    })
    .await;
    assert!(result.is_ok());
    let (template, status) = rx.await.unwrap();
    assert_eq!(template["kind"], "AnalysisTemplate");
    assert_eq!(template["metadata"]["ownerReferences"][0]["uid"], "uid-1");
    assert!(template["metadata"]["labels"].get("team").is_none());
    let metrics = template["spec"]["metrics"].as_array().unwrap();
    assert_eq!(metrics.len(), 1, "no burnRateAbove: the budget metric only");
    assert_eq!(
        metrics[0]["provider"]["prometheus"]["address"],
        "http://prometheus-operated.monitoring:9090"
    );
    assert_eq!(ready_condition(&status)["status"], "True");
    let t = condition(&status, "AnalysisTemplateReady").unwrap();
    assert_eq!(
        (&t["status"], &t["reason"]),
        (&json!("True"), &json!("TemplateApplied"))
    );
}

#[tokio::test]
async fn without_argo_rollouts_the_template_condition_says_so_and_ready_stays_true() {
    let object = with_template(None, true);
    let expected = object.clone();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let (result, _, _) = run(object, move |mut h| async move {
        rule_created(&mut h).await;
        // GET and apply on a kind the cluster does not serve: 404 without details.
        let absent = status_error(
            404,
            "NotFound",
            "the server could not find the requested resource",
        );
        answer(next(&mut h).await.respond, 404, &absent);
        let apply = next(&mut h).await;
        assert_eq!(apply.method, Method::PATCH);
        answer(apply.respond, 404, &absent);
        let status = expect_status(&mut h, &expected).await;
        expect_event(&mut h, "Warning", "ArgoRolloutsMissing").await;
        expect_silence(&mut h).await;
        let _ = tx.send(status);
    })
    .await;
    assert_eq!(requeue_after(&result.unwrap()), Duration::from_secs(300));
    let status = rx.await.unwrap();
    assert_eq!(ready_condition(&status)["status"], "True");
    let t = condition(&status, "AnalysisTemplateReady").unwrap();
    assert_eq!(t["status"], "False");
    assert!(
        t["message"]
            .as_str()
            .unwrap()
            .contains("install Argo Rollouts")
    );
}

#[tokio::test]
async fn turning_the_template_off_deletes_it_and_its_condition() {
    let (rule, mut status) = created_status().await;
    status["conditions"].as_array_mut().unwrap().push(json!({
        "type": "AnalysisTemplateReady", "status": "True", "reason": "TemplateApplied",
        "message": "", "lastTransitionTime": "2027-01-15T08:00:00Z"}));
    let object = with_template(Some(status), false);
    let expected = object.clone();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let (result, _, _) = run(object, move |mut h| async move {
        answer(expect_get_rule(&mut h).await, 200, &stored(rule));
        // Deleted only when it is ours: read, then deleted with its UID as a precondition.
        let get = next(&mut h).await;
        assert_eq!(
            (get.method, get.path.as_str()),
            (Method::GET, TEMPLATE_PATH)
        );
        let ours = json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate",
            "metadata": {"name": "checkout", "namespace": "shop", "uid": "template-uid",
                "ownerReferences": [{"apiVersion": "plimsoll.dev/v1alpha1",
                    "kind": "ServiceLevelObjective", "name": "checkout", "uid": "uid-1",
                    "controller": true}]},
            "spec": {"metrics": []}});
        answer(get.respond, 200, &ours);
        let delete = next(&mut h).await;
        assert_eq!(
            (delete.method, delete.path.as_str()),
            (Method::DELETE, TEMPLATE_PATH)
        );
        assert_eq!(delete.body["preconditions"]["uid"], "template-uid");
        answer(
            delete.respond,
            200,
            &json!({"kind": "Status", "status": "Success"}),
        );
        let status = expect_status(&mut h, &expected).await;
        expect_silence(&mut h).await;
        let _ = tx.send(status);
    })
    .await;
    assert!(result.is_ok());
    let status = rx.await.unwrap();
    assert!(condition(&status, "AnalysisTemplateReady").is_none());
    assert_eq!(ready_condition(&status)["status"], "True");
}

#[tokio::test]
async fn an_unchanged_template_costs_one_get() {
    let object = with_template(None, true);
    let expected = object.clone();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let (first, _, _) = run(object, move |mut h| async move {
        answer(expect_get_rule(&mut h).await, 404, &not_found());
        let (rule, respond) = expect_apply_rule(&mut h).await;
        answer(respond, 201, &stored(rule.clone()));
        expect_event(&mut h, "Normal", "RulesCreated").await;
        answer(
            next(&mut h).await.respond,
            404,
            &status_error(404, "NotFound", "not found"),
        );
        let apply = next(&mut h).await;
        answer(apply.respond, 201, &stored(apply.body.clone()));
        let status = expect_status(&mut h, &expected).await;
        let _ = tx.send((rule, apply.body, status));
    })
    .await;
    assert!(first.is_ok());
    let (rule, template, status) = rx.await.unwrap();
    let (result, _, _) = run(with_template(Some(status), true), move |mut h| async move {
        answer(expect_get_rule(&mut h).await, 200, &stored(rule));
        let get = next(&mut h).await;
        assert_eq!(
            (get.method, get.path.as_str()),
            (Method::GET, TEMPLATE_PATH)
        );
        answer(get.respond, 200, &stored(template));
        expect_silence(&mut h).await;
    })
    .await;
    assert!(result.is_ok());
}
