//! Reconcile CPU per SLO against an in-process API server that answers at once: the steady state
//! (one GET, no writes) and the create path (GET, apply, event, status).

use std::convert::Infallible;
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use criterion::{Criterion, criterion_group, criterion_main};
use http::{Request, Response};
use kube::Client;
use kube::client::Body;
use plimsoll::api::ServiceLevelObjective;
use plimsoll::controller::reconcile::reconcile;
use plimsoll::controller::{Context, Settings};
use plimsoll::metrics::Metrics;
use serde_json::json;

fn slo(status: Option<serde_json::Value>) -> ServiceLevelObjective {
    let mut object = json!({
        "apiVersion": "plimsoll.dev/v1alpha1", "kind": "ServiceLevelObjective",
        "metadata": {"name": "checkout", "namespace": "shop", "uid": "u", "generation": 1},
        "spec": {"service": "checkout", "objective": 99.9, "window": "30d",
                 "indicator": {"ratio": {"errors": "e_total{code=~\"5..\"}", "total": "e_total"}},
                 "alerting": {"labels": {"team": "shop"}}},
    });
    if let Some(s) = status {
        object["status"] = s;
    }
    serde_json::from_value(object).unwrap()
}

/// Writes the API server saw, and the last status written.
#[derive(Default)]
struct Seen {
    writes: AtomicUsize,
    status: Mutex<Option<serde_json::Value>>,
}

/// An API server that has the rule (`existing`) or not, and accepts every write.
fn client(existing: Option<Vec<u8>>, seen: Arc<Seen>) -> Client {
    let existing = Arc::new(existing);
    let service = tower::service_fn(move |req: Request<Body>| {
        let existing = existing.clone();
        let seen = seen.clone();
        async move {
            let is_get = req.method() == http::Method::GET;
            let is_status = req.uri().path().ends_with("/status");
            let body = req.into_body().collect_bytes().await.unwrap_or_default();
            if !is_get {
                seen.writes.fetch_add(1, Ordering::SeqCst);
            }
            if is_status {
                let status: serde_json::Value = serde_json::from_slice(&body).unwrap();
                *seen.status.lock().unwrap() = Some(status["status"].clone());
            }
            let (code, out) = match (is_get, existing.as_ref()) {
                (true, Some(rule)) => (200, rule.clone()),
                (true, None) => (404, br#"{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404}"#.to_vec()),
                (false, _) => (200, body.to_vec()),
            };
            Ok::<_, Infallible>(
                Response::builder()
                    .status(code)
                    .body(Body::from(out))
                    .unwrap(),
            )
        }
    });
    Client::new(service, "default")
}

fn context(client: Client) -> Arc<Context> {
    let settings = Settings {
        analysis_prometheus_url: Some("http://prometheus-operated.monitoring:9090".to_string()),
        ..Settings::new(Default::default())
    };
    Arc::new(Context::new(
        client,
        settings,
        Arc::new(Metrics::default()),
        None,
    ))
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _inside = rt.enter();
    // Learn what the create path writes, to serve it back for the steady state.
    let created = {
        let model = plimsoll::model::validate(&slo(None)).unwrap();
        let rule = plimsoll::controller::rule::desired(
            &slo(None),
            &model,
            "shop",
            &plimsoll::controller::Settings::new(Default::default()),
        );
        serde_json::to_vec(&rule).unwrap()
    };
    let seen = Arc::new(Seen::default());
    let ctx = context(client(None, seen.clone()));
    let fresh = Arc::new(slo(None));
    c.bench_function("reconcile/create path", |b| {
        b.to_async(&rt)
            .iter(|| reconcile(black_box(fresh.clone()), ctx.clone()))
    });
    // The status the create path wrote is the settled state.
    let status = seen
        .status
        .lock()
        .unwrap()
        .clone()
        .expect("status was written");
    let settled = Arc::new(slo(Some(status)));
    let seen = Arc::new(Seen::default());
    let ctx = context(client(Some(created), seen.clone()));
    c.bench_function("reconcile/unchanged (one GET)", |b| {
        b.to_async(&rt)
            .iter(|| reconcile(black_box(settled.clone()), ctx.clone()))
    });
    assert_eq!(
        seen.writes.load(Ordering::SeqCst),
        0,
        "the steady state must not write"
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
