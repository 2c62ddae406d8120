//! Two `plimsoll run` replicas against a small API server on loopback: one leads, the other stands
//! by and is ready; on SIGTERM the leader releases the Lease and the standby takes over.
//!
//! The API server serves what the replicas ask for: the Lease (GET, POST, server-side apply with
//! field ownership and 409 on a conflicting holder, strategic merge to release), empty lists and
//! open watches of SLOs and PrometheusRules, and Events.

use std::convert::Infallible;
use std::io::Read;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

#[derive(Default)]
struct Lease {
    object: Option<Value>,
    /// The field manager owning spec.holderIdentity, as server-side apply tracks it.
    holder_manager: Option<String>,
    version: u64,
    /// Every holder the lease has had, in order.
    holders: Vec<String>,
}

type Shared = Arc<Mutex<Lease>>;

fn status(code: StatusCode, reason: &str, message: &str) -> Response {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                      "reason": reason, "message": message, "code": code.as_u16()});
    (code, axum::Json(body)).into_response()
}

async fn get_lease(State(lease): State<Shared>) -> Response {
    match lease.lock().unwrap().object.clone() {
        Some(object) => axum::Json(object).into_response(),
        None => status(
            StatusCode::NOT_FOUND,
            "NotFound",
            "leases.coordination.k8s.io not found",
        ),
    }
}

async fn create_lease(
    State(lease): State<Shared>,
    Path(ns): Path<String>,
    body: Bytes,
) -> Response {
    let mut lease = lease.lock().unwrap();
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
    State(lease): State<Shared>,
    Query(query): Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut lease = lease.lock().unwrap();
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

/// Lists are empty; watches stay open without events, as an idle API server's do.
async fn list_or_watch(Query(query): Query<std::collections::HashMap<String, String>>) -> Response {
    if query.get("watch").is_some_and(|w| w == "true" || w == "1") {
        let idle = futures::stream::pending::<Result<Bytes, Infallible>>();
        return Response::new(Body::from_stream(idle));
    }
    axum::Json(json!({"kind": "List", "apiVersion": "v1",
                      "metadata": {"resourceVersion": "1"}, "items": []}))
    .into_response()
}

async fn create_event(body: Bytes) -> Response {
    let object: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    (StatusCode::CREATED, axum::Json(object)).into_response()
}

fn api_server(lease: Shared) -> u16 {
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
            get(list_or_watch),
        )
        .route(
            "/apis/monitoring.coreos.com/v1/prometheusrules",
            get(list_or_watch),
        )
        .route(
            "/apis/events.k8s.io/v1/namespaces/{ns}/events",
            axum::routing::post(create_event),
        )
        .with_state(lease);
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    port
}

struct Replica {
    child: Child,
    port: u16,
}

impl Replica {
    fn start(kubeconfig: &std::path::Path, identity: &str) -> Replica {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_plimsoll"))
            .args([
                "run",
                &format!("--listen=127.0.0.1:{port}"),
                "--lease-namespace=plimsoll",
            ])
            .arg(format!("--identity={identity}"))
            .env("KUBECONFIG", kubeconfig)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Replica { child, port }
    }

    fn get(&self, path: &str) -> Option<(u16, String)> {
        let response = reqwest::blocking::Client::new()
            .get(format!("http://127.0.0.1:{}{path}", self.port))
            .timeout(Duration::from_secs(2))
            .send()
            .ok()?;
        let code = response.status().as_u16();
        Some((code, response.text().unwrap_or_default()))
    }

    fn leading(&self) -> bool {
        self.get("/metrics")
            .is_some_and(|(_, m)| m.lines().any(|l| l == "plimsoll_leader 1"))
    }

    fn ready(&self) -> bool {
        self.get("/readyz").is_some_and(|(code, _)| code == 200)
    }

    fn terminate(mut self) -> (Option<i32>, String) {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(exit) = self.child.try_wait().unwrap() {
                let mut log = String::new();
                let _ = self.child.stderr.take().unwrap().read_to_string(&mut log);
                return (exit.code(), log);
            }
            assert!(
                Instant::now() < deadline,
                "still running 20 s after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_until(what: &str, seconds: u64, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while !condition() {
        assert!(Instant::now() < deadline, "{what}: not within {seconds} s");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_standby_takes_over_when_the_leader_stops() {
    let lease: Shared = Arc::default();
    let port = api_server(lease.clone());
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {{server: \"http://127.0.0.1:{port}\"}}\n\
             contexts:\n- name: c\n  context: {{cluster: c, user: u}}\ncurrent-context: c\n\
             users:\n- name: u\n  user: {{token: t}}\n"
        ),
    )
    .unwrap();

    let a = Replica::start(&kubeconfig, "replica-a");
    wait_until("replica-a leads", 30, || a.leading());
    wait_until("replica-a is ready (watches synced)", 30, || a.ready());

    let b = Replica::start(&kubeconfig, "replica-b");
    wait_until("replica-b stands by, ready", 30, || b.ready());
    std::thread::sleep(Duration::from_secs(3));
    assert!(!b.leading(), "two leaders at once");
    assert!(a.leading());

    let (exit, log) = a.terminate();
    assert_eq!(exit, Some(0), "{log}");
    assert!(log.contains("released the leader lease"), "{log}");
    let released = lease.lock().unwrap().object.clone().unwrap();
    // Released, or already taken by the standby in the meantime.
    let holder = released["spec"].get("holderIdentity").cloned();
    assert!(
        holder.is_none() || holder == Some(json!("replica-b")),
        "{released}"
    );

    wait_until("replica-b takes over", 40, || b.leading());
    assert_eq!(lease.lock().unwrap().holders, ["replica-a", "replica-b"]);
    let (exit, log) = b.terminate();
    assert_eq!(exit, Some(0), "{log}");
}
