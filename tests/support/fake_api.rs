//! A small Kubernetes API server on loopback for process tests of `plimsoll run`: the leader
//! Lease (GET, POST, server-side apply with field ownership and 409 on a conflicting holder,
//! strategic merge to release), SLO lists with open, idle watches, PrometheusRules and SLO status
//! (GET, apply), and Events. It keeps what it is sent, for the tests to inspect. Like an API
//! server with the chart's RBAC, it answers 403 to any request src/access.rs does not permit, and
//! keeps those in `Cluster::refused` (tests assert it stays empty).
#![allow(dead_code)]

#[path = "access.rs"]
mod access;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

#[derive(Default)]
pub struct Lease {
    pub object: Option<Value>,
    /// The field manager owning spec.holderIdentity, as server-side apply tracks it.
    pub holder_manager: Option<String>,
    pub version: u64,
    /// Every holder the lease has had, in order.
    pub holders: Vec<String>,
}

/// Everything the fake API server holds.
#[derive(Default)]
pub struct Cluster {
    pub lease: Lease,
    /// SLOs returned by list requests.
    pub slos: Vec<Value>,
    /// PrometheusRules by `namespace/name`.
    pub rules: HashMap<String, Value>,
    /// The last status applied per SLO, by `namespace/name`.
    pub statuses: HashMap<String, Value>,
    pub events: Vec<Value>,
    /// Requests refused because src/access.rs does not permit them, with the reason.
    pub refused: Vec<String>,
}

pub type Shared = Arc<Mutex<Cluster>>;

fn status(code: StatusCode, reason: &str, message: &str) -> Response {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                      "reason": reason, "message": message, "code": code.as_u16()});
    (code, axum::Json(body)).into_response()
}

async fn get_lease(State(cluster): State<Shared>) -> Response {
    match cluster.lock().unwrap().lease.object.clone() {
        Some(object) => axum::Json(object).into_response(),
        None => status(
            StatusCode::NOT_FOUND,
            "NotFound",
            "leases.coordination.k8s.io not found",
        ),
    }
}

async fn create_lease(
    State(cluster): State<Shared>,
    Path(ns): Path<String>,
    body: Bytes,
) -> Response {
    let mut cluster = cluster.lock().unwrap();
    let lease = &mut cluster.lease;
    if lease.object.is_some() {
        return status(
            StatusCode::CONFLICT,
            "AlreadyExists",
            "lease already exists",
        );
    }
    let mut object: Value = serde_json::from_slice(&body).unwrap();
    lease.version += 1;
    object["metadata"]["namespace"] = json!(ns);
    object["metadata"]["resourceVersion"] = json!(lease.version.to_string());
    object["metadata"]["uid"] = json!("lease-uid");
    if object.get("spec").is_none() {
        object["spec"] = json!({});
    }
    lease.object = Some(object.clone());
    (StatusCode::CREATED, axum::Json(object)).into_response()
}

async fn patch_lease(
    State(cluster): State<Shared>,
    Query(query): Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut cluster = cluster.lock().unwrap();
    let lease = &mut cluster.lease;
    let Some(mut object) = lease.object.clone() else {
        return status(StatusCode::NOT_FOUND, "NotFound", "lease not found");
    };
    let patch: Value = serde_json::from_slice(&body).unwrap();
    let manager = query.get("fieldManager").cloned().unwrap_or_default();
    let apply = headers
        .get("content-type")
        .is_some_and(|c| c.to_str().unwrap_or("").contains("apply-patch"));
    let new_holder = patch["spec"].get("holderIdentity").cloned();
    if apply {
        let force = query.get("force").is_some_and(|f| f == "true");
        let current = object["spec"]["holderIdentity"].clone();
        let conflict = !force
            && new_holder.as_ref().is_some_and(|h| *h != current)
            && lease.holder_manager.as_ref().is_some_and(|m| *m != manager);
        if conflict {
            return status(
                StatusCode::CONFLICT,
                "Conflict",
                "Apply failed with 1 conflict: conflict with another manager: .spec.holderIdentity",
            );
        }
    }
    for (key, value) in patch["spec"].as_object().into_iter().flatten() {
        if value.is_null() {
            if let Some(spec) = object["spec"].as_object_mut() {
                spec.remove(key);
            }
        } else {
            object["spec"][key] = value.clone();
        }
    }
    match new_holder {
        Some(Value::String(holder)) => {
            if lease.holders.last() != Some(&holder) {
                lease.holders.push(holder);
            }
            lease.holder_manager = Some(manager);
        }
        Some(Value::Null) => lease.holder_manager = None,
        _ => {}
    }
    lease.version += 1;
    object["metadata"]["resourceVersion"] = json!(lease.version.to_string());
    lease.object = Some(object.clone());
    axum::Json(object).into_response()
}

fn is_watch(query: &HashMap<String, String>) -> bool {
    query.get("watch").is_some_and(|w| w == "true" || w == "1")
}

/// Watches stay open without events, as an idle API server's do.
fn idle_watch() -> Response {
    let idle = futures::stream::pending::<Result<Bytes, Infallible>>();
    Response::new(Body::from_stream(idle))
}

fn list(items: Vec<Value>) -> Response {
    axum::Json(json!({"kind": "List", "apiVersion": "v1",
                      "metadata": {"resourceVersion": "1"}, "items": items}))
    .into_response()
}

async fn list_slos(
    State(cluster): State<Shared>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if is_watch(&query) {
        return idle_watch();
    }
    list(cluster.lock().unwrap().slos.clone())
}

/// The operator watches its own rules only; the lists start empty (rules it creates are seen on
/// the next reconcile's GET).
async fn list_rules(Query(query): Query<HashMap<String, String>>) -> Response {
    if is_watch(&query) {
        return idle_watch();
    }
    list(Vec::new())
}

async fn get_rule(
    State(cluster): State<Shared>,
    Path((ns, name)): Path<(String, String)>,
) -> Response {
    match cluster.lock().unwrap().rules.get(&format!("{ns}/{name}")) {
        Some(rule) => axum::Json(rule.clone()).into_response(),
        None => status(
            StatusCode::NOT_FOUND,
            "NotFound",
            "prometheusrules.monitoring.coreos.com not found",
        ),
    }
}

/// Server-side apply: 201 when it creates the rule, 200 when it updates it.
async fn apply_rule(
    State(cluster): State<Shared>,
    Path((ns, name)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let mut object: Value = serde_json::from_slice(&body).unwrap();
    object["metadata"]["uid"] = json!(format!("rule-{name}"));
    object["metadata"]["resourceVersion"] = json!("10");
    let created = cluster
        .lock()
        .unwrap()
        .rules
        .insert(format!("{ns}/{name}"), object.clone())
        .is_none();
    let code = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    (code, axum::Json(object)).into_response()
}

/// RBAC: the request must be permitted by src/access.rs; an apply that creates the object is
/// also authorized as `create`, as the API server does.
async fn authorize(
    State(cluster): State<Shared>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let method = request.method().to_string();
    let path = request.uri().path().to_string();
    let query = request.uri().query().unwrap_or("").to_string();
    if let Some(why) = access::refusal(&method, &path, &query, access::FEATURES) {
        cluster.lock().unwrap().refused.push(why.clone());
        return status(StatusCode::FORBIDDEN, "Forbidden", &why);
    }
    let response = next.run(request).await;
    if method == "PATCH"
        && response.status() == StatusCode::CREATED
        && let Some(why) = access::refusal("POST", &path, &query, access::FEATURES)
    {
        cluster.lock().unwrap().refused.push(why);
    }
    response
}

/// Status subresource: only status changes; the answer is the whole object.
async fn apply_status(
    State(cluster): State<Shared>,
    Path((ns, name)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let patch: Value = serde_json::from_slice(&body).unwrap();
    let mut cluster = cluster.lock().unwrap();
    let Some(mut slo) = cluster
        .slos
        .iter()
        .find(|s| {
            s["metadata"]["name"] == name.as_str() && s["metadata"]["namespace"] == ns.as_str()
        })
        .cloned()
    else {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            "servicelevelobjectives.plimsoll.dev not found",
        );
    };
    // Server-side apply from several field managers: each writes its own fields; conditions are
    // a list keyed by type.
    let key = format!("{ns}/{name}");
    let mut merged = cluster
        .statuses
        .get(&key)
        .cloned()
        .unwrap_or_else(|| json!({}));
    for (field, value) in patch["status"].as_object().into_iter().flatten() {
        if field == "conditions" {
            let mut conditions: Vec<Value> =
                merged["conditions"].as_array().cloned().unwrap_or_default();
            for c in value.as_array().into_iter().flatten() {
                conditions.retain(|old| old["type"] != c["type"]);
                conditions.push(c.clone());
            }
            merged["conditions"] = json!(conditions);
        } else {
            merged[field] = value.clone();
        }
    }
    slo["status"] = merged.clone();
    cluster.statuses.insert(key, merged);
    axum::Json(slo).into_response()
}

async fn create_event(State(cluster): State<Shared>, body: Bytes) -> Response {
    let object: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    cluster.lock().unwrap().events.push(object.clone());
    (StatusCode::CREATED, axum::Json(object)).into_response()
}

/// Starts the server on a free loopback port and returns the port.
pub fn api_server(cluster: Shared) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = Router::new()
        .route(
            "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases",
            axum::routing::post(create_lease),
        )
        .route(
            "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/{name}",
            get(get_lease).patch(patch_lease),
        )
        .route(
            "/apis/plimsoll.dev/v1alpha1/servicelevelobjectives",
            get(list_slos),
        )
        .route(
            "/apis/plimsoll.dev/v1alpha1/namespaces/{ns}/servicelevelobjectives/{name}/status",
            axum::routing::patch(apply_status),
        )
        .route(
            "/apis/monitoring.coreos.com/v1/prometheusrules",
            get(list_rules),
        )
        .route(
            "/apis/monitoring.coreos.com/v1/namespaces/{ns}/prometheusrules/{name}",
            get(get_rule).patch(apply_rule),
        )
        .route(
            "/apis/events.k8s.io/v1/namespaces/{ns}/events",
            axum::routing::post(create_event),
        )
        .layer(axum::middleware::from_fn_with_state(
            cluster.clone(),
            authorize,
        ))
        .with_state(cluster);
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    port
}

/// A kubeconfig for the fake API server.
pub fn kubeconfig(dir: &std::path::Path, port: u16) -> std::path::PathBuf {
    let file = dir.join("kubeconfig");
    std::fs::write(
        &file,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {{server: \"http://127.0.0.1:{port}\"}}\n\
             contexts:\n- name: c\n  context: {{cluster: c, user: u}}\ncurrent-context: c\n\
             users:\n- name: u\n  user: {{token: t}}\n"
        ),
    )
    .unwrap();
    file
}
