//! What is left of the loopback ruler now that tests/ruler.rs runs the real Mimir: the two
//! answers of Cortex' rules configuration API that Mimir does not give, and so cannot be run
//! here (Cortex is not built). Read, not copied, from `cortexproject/cortex` `pkg/api/api.go`
//! (routes `/api/v1/rules[/{namespace}[/{groupName}]]`, a path Mimir does not serve) and
//! `pkg/ruler/api.go` (a tenant without groups is `404 no rule groups found`, where Mimir answers
//! `200 {}`); the tenant as `grafana/dskit` `middleware/http_auth.go` reads it (`401 no org id`
//! without `X-Scope-OrgID`).
//!
//! It keeps each tenant's groups as posted (YAML, read for its `name`) and checks nothing else:
//! what a real ruler accepts, refuses and answers is what the tests against Mimir show.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

const CORTEX: &str = "/api/v1/rules";

/// A request as the ruler saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
}

#[derive(Debug, Default)]
pub struct Store {
    /// tenant -> namespace -> groups (as posted), in the order they were first set.
    pub tenants: BTreeMap<String, BTreeMap<String, Vec<serde_json::Value>>>,
    pub seen: Vec<Seen>,
}

type Shared = Arc<Mutex<Store>>;

pub struct Cortex {
    pub port: u16,
    pub store: Shared,
    _server: crate::support::loopback::Loopback,
}

impl Cortex {
    pub fn start() -> Cortex {
        let store: Shared = Arc::default();
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(store.clone());
        let server = crate::support::loopback::Loopback::serve(0, app);
        Cortex {
            port: server.port,
            store,
            _server: server,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}{CORTEX}", self.port)
    }

    /// Group names per namespace of a tenant.
    pub fn names(&self, tenant: &str) -> BTreeMap<String, Vec<String>> {
        let store = self.store.lock().unwrap();
        store
            .tenants
            .get(tenant)
            .map(|namespaces| {
                namespaces
                    .iter()
                    .map(|(ns, groups)| (ns.clone(), groups.iter().map(name).collect()))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.store.lock().unwrap().seen.clone()
    }
}

fn name(group: &serde_json::Value) -> String {
    group["name"].as_str().unwrap_or_default().to_string()
}

/// `http.Error`: text, a newline, `text/plain`.
fn text(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{message}\n"),
    )
        .into_response()
}

async fn handle(
    State(store): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let tenant = headers
        .get("x-scope-orgid")
        .and_then(|v| v.to_str().ok())
        .filter(|t| !t.is_empty())
        .map(String::from);
    let mut store = store.lock().unwrap();
    store.seen.push(Seen {
        method: method.to_string(),
        path: uri.path().to_string(),
    });
    let Some(rest) = uri.path().strip_prefix(CORTEX) else {
        return text(StatusCode::NOT_FOUND, "404 page not found");
    };
    let Some(tenant) = tenant else {
        return text(StatusCode::UNAUTHORIZED, "no org id");
    };
    let names: Vec<String> = rest
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| unescape(s).unwrap())
        .collect();
    let groups = store.tenants.entry(tenant).or_default();
    let response = match (method, names.as_slice()) {
        (Method::GET, []) if groups.values().all(Vec::is_empty) => {
            text(StatusCode::NOT_FOUND, "no rule groups found")
        }
        (Method::GET, []) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/yaml")],
            serde_saphyr::to_string(&*groups).unwrap(),
        )
            .into_response(),
        (Method::POST, [ns]) => {
            let group: serde_json::Value =
                serde_saphyr::from_str(std::str::from_utf8(&body).unwrap()).unwrap();
            let held = groups.entry(ns.clone()).or_default();
            match held.iter_mut().find(|g| name(g) == name(&group)) {
                Some(old) => *old = group,
                None => held.push(group),
            }
            (StatusCode::ACCEPTED, "").into_response()
        }
        (Method::DELETE, [ns, group]) => {
            let held = groups.entry(ns.clone()).or_default();
            let before = held.len();
            held.retain(|g| &name(g) != group);
            if held.len() < before {
                (StatusCode::ACCEPTED, "").into_response()
            } else {
                text(StatusCode::NOT_FOUND, "group does not exist")
            }
        }
        _ => text(StatusCode::METHOD_NOT_ALLOWED, ""),
    };
    groups.retain(|_, held| !held.is_empty());
    response
}

/// Go's `url.PathUnescape`.
fn unescape(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = segment.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}
