//! A loopback stand-in for Thanos Query in front of a real Prometheus: it keeps every query
//! request it receives (headers and form), passes queries on to the Prometheus, and, once a
//! store is "down", answers as Thanos Query does then. Stopped on drop.
//!
//! What Thanos does, from thanos-io/thanos:
//! - pkg/api/query/v1.go, `parsePartialResponseParam`: `partial_response` is read with
//!   `r.FormValue` (URL or form body) and parsed with `strconv.ParseBool`; when absent, the
//!   `--query.partial-response` flag decides (cmd/thanos/query.go: default true).
//! - With partial responses on, a failing store's error becomes a warning (pkg/store/
//!   proxy_merge.go wraps it as "receive series from <store>: <err>") and the answer is
//!   `{"status":"success","data":{...},"warnings":["..."]}` (pkg/api/api.go, `Respond`: the
//!   `warnings` list sits beside `data` in the envelope).
//! - With partial responses off, the query fails: pkg/api/query/v1.go maps the engine's storage
//!   error to `api.ErrorInternal`, and pkg/api/api.go `RespondError` answers HTTP 500 with
//!   `{"status":"error","errorType":"internal","error":"..."}`.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// One query as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: BTreeMap<String, String>,
    /// Fields of the URL and the form body together, as `FormValue` sees them.
    pub form: BTreeMap<String, String>,
}

#[derive(Default)]
struct Inner {
    received: Vec<Received>,
    store_down: bool,
}

pub struct ThanosQuery {
    pub url: String,
    inner: Arc<Mutex<Inner>>,
    _server: crate::support::loopback::Loopback,
}

/// The warning Thanos writes for a store that did not answer.
pub const STORE_WARNING: &str =
    "receive series from store-b:10901: rpc error: code = Unavailable desc = connection refused";

type Shared = (Arc<Mutex<Inner>>, String);

impl ThanosQuery {
    /// Starts in front of the Prometheus at `upstream`, with every store answering.
    pub fn start(upstream: &str) -> ThanosQuery {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let state: Shared = (inner.clone(), upstream.trim_end_matches('/').to_string());
        let app = Router::new().fallback(answer).with_state(state);
        let server = crate::support::loopback::Loopback::serve(0, app);
        ThanosQuery {
            url: format!("http://127.0.0.1:{}", server.port),
            inner,
            _server: server,
        }
    }

    /// From now on one store fails every query.
    pub fn store_down(&self) {
        self.inner.lock().unwrap().store_down = true;
    }

    /// Every query request so far (`/api/v1/query` and `/api/v1/query_range`).
    pub fn received(&self) -> Vec<Received> {
        self.inner.lock().unwrap().received.clone()
    }
}

async fn answer(
    State((inner, upstream)): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut form: BTreeMap<String, String> = BTreeMap::new();
    let url_fields = uri.query().unwrap_or_default().as_bytes();
    for (k, v) in form_urlencoded(url_fields).chain(form_urlencoded(&body)) {
        form.entry(k).or_insert(v);
    }
    let path = uri.path().to_string();
    let store_down = {
        let mut inner = inner.lock().unwrap();
        if path.starts_with("/api/v1/query") {
            inner.received.push(Received {
                path: path.clone(),
                headers: headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                    .collect(),
                form: form.clone(),
            });
        }
        inner.store_down
    };
    // `strconv.ParseBool` accepts 1, t, T, TRUE, true, True, 0, f, F, FALSE, false, False.
    let partial = match form.get("partial_response").map(String::as_str) {
        None | Some("") => Ok(true),
        Some("1" | "t" | "T" | "TRUE" | "true" | "True") => Ok(true),
        Some("0" | "f" | "F" | "FALSE" | "false" | "False") => Ok(false),
        Some(other) => Err(other.to_string()),
    };
    let partial = match partial {
        Ok(p) => p,
        Err(bad) => {
            let message = format!(
                "'partial_response' parameter: strconv.ParseBool: parsing {bad:?}: invalid syntax"
            );
            return error(StatusCode::BAD_REQUEST, "bad_data", &message);
        }
    };
    if store_down && path.starts_with("/api/v1/query") && !partial {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            &format!("expanding series: {STORE_WARNING}"),
        );
    }
    let fields: Vec<(String, String)> = form
        .into_iter()
        .filter(|(k, _)| k != "partial_response")
        .collect();
    let forwarded = reqwest::Client::new()
        .post(format!("{upstream}{path}"))
        .form(&fields)
        .send()
        .await;
    let Ok(response) = forwarded else {
        return error(StatusCode::BAD_GATEWAY, "internal", "upstream unreachable");
    };
    let status = StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::OK);
    let text = response.text().await.unwrap_or_default();
    if !(store_down && path.starts_with("/api/v1/query")) {
        return (status, text).into_response();
    }
    let mut answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    if answer["status"] == "success" {
        answer["warnings"] = json!([STORE_WARNING]);
    }
    (status, answer.to_string()).into_response()
}

fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    let body = json!({"status": "error", "errorType": kind, "error": message});
    (status, body.to_string()).into_response()
}

/// `application/x-www-form-urlencoded` pairs.
fn form_urlencoded(bytes: &[u8]) -> impl Iterator<Item = (String, String)> + '_ {
    bytes
        .split(|b| *b == b'&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let text = String::from_utf8_lossy(pair).replace('+', " ");
            let (k, v) = text.split_once('=').unwrap_or((&text, ""));
            (percent_decode(k), percent_decode(v))
        })
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
