//! A loopback pass-through in front of a real HTTP API (here the real Thanos Query) that keeps
//! the headers of every request it forwards: what the program under test sent, for the headers
//! no server in the test acts on (`--prometheus-header`'s, read from a file and rotated). It
//! changes nothing: each request goes on with its method, path, query, headers and body, and
//! the answer comes back as the server gave it. Stopped on drop.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

/// One request as received: its path and headers (names in lower case).
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: BTreeMap<String, String>,
}

pub struct RequestTap {
    pub url: String,
    received: Arc<Mutex<Vec<Received>>>,
    _server: crate::support::loopback::Loopback,
}

type Shared = (Arc<Mutex<Vec<Received>>>, String);

impl RequestTap {
    /// Starts in front of the server at `upstream` (`http://host:port`).
    pub fn start(upstream: &str) -> RequestTap {
        let received = Arc::new(Mutex::new(Vec::new()));
        let state: Shared = (received.clone(), upstream.trim_end_matches('/').to_string());
        let app = Router::new().fallback(forward).with_state(state);
        let server = crate::support::loopback::Loopback::serve(0, app);
        RequestTap {
            url: format!("http://127.0.0.1:{}", server.port),
            received,
            _server: server,
        }
    }

    /// Every query request so far (paths under `/api/v1/query`).
    pub fn queries(&self) -> Vec<Received> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path.starts_with("/api/v1/query"))
            .cloned()
            .collect()
    }
}

async fn forward(
    State((received, upstream)): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    received.lock().unwrap().push(Received {
        path: uri.path().to_string(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect(),
    });
    let target = format!(
        "{upstream}{}",
        uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
    );
    let mut request = reqwest::Client::new().request(
        reqwest::Method::from_bytes(method.as_str().as_bytes()).unwrap(),
        target,
    );
    for (name, value) in &headers {
        if !matches!(
            name.as_str(),
            "host" | "content-length" | "connection" | "accept-encoding"
        ) {
            request = request.header(name.as_str(), value.as_bytes());
        }
    }
    let Ok(answer) = request.body(body).send().await else {
        return (StatusCode::BAD_GATEWAY, "upstream unreachable").into_response();
    };
    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::OK);
    let content_type = answer
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_string();
    let body = answer.bytes().await.unwrap_or_default();
    (status, [("content-type", content_type)], body).into_response()
}
