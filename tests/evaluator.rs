//! The evaluator's status writes against a mocked API server: what it writes, that an unchanged
//! budget writes nothing, that missing Prometheus data is reported and decides nothing, and an
//! injected incident taking the SLO to Exhausted (in dryRun, so only status is written here;
//! tests/actions.rs covers the targets).

use std::collections::BTreeMap;
use std::time::Duration;

use http::{Method, Request, Response};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::client::Body;
use kube::runtime::events::{Recorder, Reporter};
use plimsoll::api::ServiceLevelObjective;
use plimsoll::budget::Reading;
use plimsoll::evaluator::{Readings, evaluate};
use plimsoll::model::Duration as Window;
use plimsoll::prometheus::SeriesKey;
use serde_json::{Value, json};
use tower_test::mock::Handle;

#[path = "support/access.rs"]
mod access;

type ApiHandle = Handle<Request<Body>, Response<Body>>;

const STATUS_PATH: &str =
    "/apis/plimsoll.dev/v1alpha1/namespaces/shop/servicelevelobjectives/checkout/status";

fn slo(status: Option<Value>) -> ServiceLevelObjective {
    let mut object = json!({
        "apiVersion": "plimsoll.dev/v1alpha1", "kind": "ServiceLevelObjective",
        "metadata": {"name": "checkout", "namespace": "shop", "uid": "u", "generation": 4},
        "spec": {"service": "checkout", "objective": 99.9, "window": "30d",
                 "indicator": {"ratio": {"errors": "e_total", "total": "t_total"}},
                 "rollback": {"targets": [{"kind": "Deployment", "name": "checkout"}], "dryRun": true}},
    });
    if let Some(s) = status {
        object["status"] = s;
    }
    serde_json::from_value(object).unwrap()
}

fn now() -> Timestamp {
    Timestamp::from_second(1_800_000_000).unwrap()
}

/// Recorded ratios as Prometheus would return them, written a minute ago.
fn readings(window_ratio: f64, hour_ratio: f64, six_hour_ratio: f64) -> Readings {
    let key = SeriesKey {
        namespace: "shop".into(),
        name: "checkout".into(),
        group: BTreeMap::new(),
    };
    let reading = Reading {
        window_error_ratio: Some(window_ratio),
        error_ratios: BTreeMap::from([
            (Window::from_minutes(5), hour_ratio),
            (Window::from_hours(1), hour_ratio),
            (Window::from_hours(6), six_hour_ratio),
        ]),
        newest_sample: Some(Timestamp::from_second(1_800_000_000 - 60).unwrap()),
        period_error_ratio: None,
    };
    Ok(BTreeMap::from([(key, reading)]))
}

/// Runs one evaluation; the script answers the status write (if any) and returns its body.
async fn evaluate_once(
    object: &ServiceLevelObjective,
    readings: &Readings,
) -> (bool, Option<Value>) {
    let (service, mut handle): (_, ApiHandle) = tower_test::mock::pair();
    let client = Client::new(service, "default");
    let answered = {
        let object = object.clone();
        tokio::spawn(async move {
            let mut status = None;
            while let Ok(Some((request, respond))) =
                tokio::time::timeout(Duration::from_millis(500), handle.next_request()).await
            {
                let path = request.uri().path().to_string();
                let method = request.method().clone();
                let query = request.uri().query().unwrap_or("").to_string();
                access::check(method.as_str(), &path, &query);
                let bytes = request.into_body().collect_bytes().await.unwrap();
                let body: Value = serde_json::from_slice(&bytes).unwrap();
                if path.ends_with("/events") {
                    // Events (dryRun decisions) are answered and set aside.
                    respond.send_response(
                        Response::builder()
                            .status(201)
                            .body(Body::from(bytes.to_vec()))
                            .unwrap(),
                    );
                    continue;
                }
                assert_eq!(method, Method::PATCH);
                assert_eq!(path, STATUS_PATH);
                assert!(query.contains("fieldManager=plimsoll-evaluator"), "{query}");
                assert!(query.contains("force=true"), "{query}");
                assert!(body.get("spec").is_none());
                let mut stored = serde_json::to_value(&object).unwrap();
                stored["status"] = body["status"].clone();
                respond.send_response(
                    Response::builder()
                        .body(Body::from(serde_json::to_vec(&stored).unwrap()))
                        .unwrap(),
                );
                status = Some(body["status"].clone());
            }
            status
        })
    };
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "plimsoll".into(),
            instance: None,
        },
    );
    let written = evaluate(&client, &recorder, object, readings, now())
        .await
        .unwrap();
    (written, answered.await.unwrap())
}

fn condition<'a>(status: &'a Value, type_: &str) -> &'a Value {
    status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == type_)
        .unwrap()
}

#[tokio::test]
async fn writes_the_budget_then_nothing_while_it_holds_still() {
    // 0.0588% errors over the window of a 99.9% SLO: 41.2% of the budget left.
    let healthy = readings(0.000588, 0.0009, 0.0011);
    let (written, status) = evaluate_once(&slo(None), &healthy).await;
    assert!(written);
    let status = status.unwrap();
    assert_eq!(status["sli"], "99.9412");
    assert_eq!(status["errorBudget"]["remaining"], "41.2");
    assert_eq!(status["errorBudget"]["consumedMinutes"], "25.4");
    assert_eq!(status["errorBudget"]["totalMinutes"], "43.2");
    assert_eq!(status["burnRates"]["6h"], "1.1");
    assert_eq!(status["rollback"]["state"], "Burning", "6h burn above 1");
    assert_eq!(condition(&status, "DataAvailable")["status"], "True");
    assert_eq!(condition(&status, "BudgetExhausted")["status"], "False");
    assert!(status.get("exhaustion").is_some());

    let settled = slo(Some(status));
    let (written, body) = evaluate_once(&settled, &healthy).await;
    assert!(
        !written && body.is_none(),
        "nothing visible changed: no write"
    );
}

#[tokio::test]
async fn missing_data_is_reported_and_decides_nothing() {
    let (_, status) = evaluate_once(&slo(None), &readings(0.000588, 0.0009, 0.0011)).await;
    let settled = slo(status.clone());
    let down: Readings = Err("Prometheus at http://prometheus:9090 did not answer".into());
    let (written, body) = evaluate_once(&settled, &down).await;
    assert!(written);
    let body = body.unwrap();
    let data = condition(&body, "DataAvailable");
    assert_eq!(data["status"], "False");
    assert_eq!(data["reason"], "PrometheusUnreachable");
    assert_eq!(
        body["errorBudget"],
        status.as_ref().unwrap()["errorBudget"],
        "numbers kept"
    );
    assert_eq!(
        body["rollback"]["state"], "Burning",
        "no decision without data"
    );
}

#[tokio::test]
async fn an_injected_incident_exhausts_the_budget() {
    let (_, before) = evaluate_once(&slo(None), &readings(0.000588, 0.0009, 0.0011)).await;
    let before = before.unwrap();
    // A full outage for the last hour: the window ratio jumps past the budget.
    let incident = readings(0.0019, 1.0, 0.17);
    let (written, after) = evaluate_once(&slo(Some(before.clone())), &incident).await;
    assert!(written);
    let after = after.unwrap();
    eprintln!(
        "before: {}\nafter:  {}",
        serde_json::to_string(&before).unwrap(),
        serde_json::to_string(&after).unwrap()
    );
    assert_eq!(after["errorBudget"]["remaining"], "-90.0");
    assert_eq!(after["rollback"]["state"], "Exhausted");
    let exhausted = condition(&after, "BudgetExhausted");
    assert_eq!(exhausted["status"], "True");
    assert_eq!(exhausted["lastTransitionTime"], "2027-01-15T08:00:00Z");
    assert!(
        after.get("exhaustion").is_none(),
        "already gone: no projection"
    );
}
