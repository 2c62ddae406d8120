//! The HTTP side: one handler for every path. It parses the request as the API server's
//! RequestInfo resolver does, counts it, throttles it, checks RBAC, injects faults and latency,
//! then serves the verb.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::response::Response;

use super::Shared;
use super::access;
use super::discovery;
use super::dispatch::{Served, serve};
use super::load::Guard;
use super::status::ApiError;
use super::watch::respond;

pub struct Req {
    pub method: String,
    pub path: String,
    pub raw_query: String,
    pub query: HashMap<String, String>,
    pub accept: String,
    pub content_type: String,
    pub user_agent: String,
    pub body: Bytes,
}

/// A resource request's URL: /api/v1/... or /apis/group/version/..., namespaced or not.
#[derive(Clone, Debug, Default)]
pub struct Target {
    pub group: String,
    pub version: String,
    pub namespace: Option<String>,
    pub plural: String,
    pub name: Option<String>,
    pub sub: Option<String>,
}

/// Percent-decoding; `+` is a space in query strings only.
fn decode(text: &str, plus_is_space: bool) -> String {
    let bytes = text.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' if plus_is_space => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Req {
    /// The request line and headers; the body is read once the request is counted.
    fn head(parts: &axum::http::request::Parts) -> Req {
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        let raw_query = parts.uri.query().unwrap_or_default().to_string();
        let query = raw_query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (decode(k, true), decode(v, true))
            })
            .collect();
        Req {
            method: parts.method.as_str().to_string(),
            path: parts.uri.path().to_string(),
            accept: header("accept"),
            content_type: header("content-type"),
            user_agent: header("user-agent"),
            body: Bytes::new(),
            raw_query,
            query,
        }
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub fn flag(&self, name: &str) -> bool {
        matches!(self.param(name), Some("true" | "1"))
    }
}

impl Target {
    pub fn parse(path: &str) -> Option<Target> {
        let segments: Vec<String> = path
            .trim_matches('/')
            .split('/')
            .map(|p| decode(p, false))
            .collect();
        let s: Vec<&str> = segments.iter().map(String::as_str).collect();
        let (group, version, rest) = match s.as_slice() {
            ["api", version, rest @ ..] if !rest.is_empty() => ("", *version, rest),
            ["apis", group, version, rest @ ..] if !rest.is_empty() => (*group, *version, rest),
            _ => return None,
        };
        let (namespace, rest) = match rest {
            ["namespaces", ns, rest @ ..] if !rest.is_empty() => (Some(ns.to_string()), rest),
            other => (None, other),
        };
        let (plural, name, sub) = match rest {
            [plural] => (*plural, None, None),
            [plural, name] => (*plural, Some(name.to_string()), None),
            [plural, name, sub] => (*plural, Some(name.to_string()), Some(sub.to_string())),
            _ => return None,
        };
        Some(Target {
            group: group.to_string(),
            version: version.to_string(),
            namespace,
            plural: plural.to_string(),
            name,
            sub,
        })
    }

    fn verb(&self, method: &str, watch: bool) -> &'static str {
        match (method, self.name.is_some()) {
            ("GET", true) => "get",
            ("GET", false) if watch => "watch",
            ("GET", false) => "list",
            ("POST", _) => "create",
            ("PUT", _) => "update",
            ("PATCH", _) => "patch",
            ("DELETE", true) => "delete",
            ("DELETE", false) => "deletecollection",
            _ => "unknown",
        }
    }
}

pub fn json_response(code: u16, body: Bytes) -> Response {
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .expect("a response")
}

pub fn error_response(error: &ApiError) -> Response {
    let mut response = json_response(error.code, Bytes::from(error.to_json().to_string()));
    if let Some(secs) = error.retry_after {
        response.headers_mut().insert(
            "retry-after",
            secs.to_string().parse().expect("a header value"),
        );
    }
    response
}

/// Keeps the request in flight until its body has been sent.
fn hold(response: Response, guard: Guard) -> Response {
    let (parts, body) = response.into_parts();
    let stream = futures::StreamExt::map(body.into_data_stream(), move |chunk| {
        let _held = &guard;
        chunk
    });
    Response::from_parts(parts, Body::from_stream(stream))
}

/// Every request: count it (or throttle it), check RBAC, inject faults and latency, serve it.
pub async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let mut req = Req::head(&parts);
    let Some(target) = Target::parse(&req.path) else {
        return discovery::answer(&shared, &req.method, &req.path);
    };
    let verb = target.verb(&req.method, req.flag("watch"));
    let sub = target.sub.clone().unwrap_or_default();
    let key = (verb.to_string(), target.plural.clone(), sub);
    let write = matches!(
        verb,
        "create" | "update" | "patch" | "delete" | "deletecollection"
    );
    let guard = match shared.load.arrive(key, verb == "watch", write) {
        Ok(g) => g,
        Err(e) => return error_response(&e),
    };
    req.body = axum::body::to_bytes(body, 1 << 30)
        .await
        .unwrap_or_default();
    if let Err(e) = gate(&shared, &req, &target, verb).await {
        return hold(error_response(&e), guard);
    }
    let response = match serve(&shared, &req, &target, verb) {
        Ok(Served::Now(code, body)) => json_response(code, body),
        Ok(Served::Watch(w)) => {
            // A watch is in flight only until its headers are sent; then it counts as open.
            let response = respond(shared.clone(), w);
            drop(guard);
            return response;
        }
        Err(e) => {
            if e.code == 403 {
                shared.refused.lock().unwrap().push(e.message.clone());
            }
            error_response(&e)
        }
    };
    hold(response, guard)
}

/// RBAC, then the injected fault and latency, as the API server authorizes before it serves.
async fn gate(shared: &Shared, req: &Req, target: &Target, verb: &str) -> Result<(), ApiError> {
    let features = shared.settings.lock().unwrap().rbac;
    if let Some(features) = features
        && let Some(why) = access::refusal(&req.method, &req.path, &req.raw_query, features)
    {
        shared.refused.lock().unwrap().push(why.clone());
        return Err(ApiError::forbidden(why));
    }
    let resource = match &target.sub {
        Some(sub) => format!("{}/{sub}", target.plural),
        None => target.plural.clone(),
    };
    let name = target.name.as_deref().unwrap_or_default();
    let (fault, delay) = shared.load.fault(verb, &resource, name);
    if delay > Duration::ZERO {
        tokio::time::sleep(delay).await;
    }
    // A hold keeps the request in flight until the others a test sends have arrived, so their
    // overlap is a condition rather than a race against the latency (at most HOLD_LIMIT).
    let held = Instant::now();
    while shared.load.holding() && held.elapsed() < HOLD_LIMIT {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    fault.map_or(Ok(()), Err)
}

/// The longest a request waits for a hold: a bound for a loaded machine.
const HOLD_LIMIT: Duration = Duration::from_secs(30);
