//! Flagger's rollback webhook call, byte for byte, and the answers Plimsoll owes it.
//!
//! What Flagger sends for a `type: rollback` webhook (fluxcd/flagger at 15bd6ad5, with
//! hashicorp/go-retryablehttp v0.7.8 as pinned in its go.mod; notes in /tmp/notes/flagger.md):
//!
//! - Declared in the Canary as `spec.analysis.webhooks[]` (`pkg/apis/flagger/v1beta1/canary.go`
//!   308, 434-461): `type: rollback`, `name`, `url`, optional `timeout` (string), `retries`,
//!   `disableTLS` and `metadata`, a map of string to string (CRD `artifacts/flagger/crd.yaml`
//!   1197-1201: `additionalProperties: {type: string}`).
//! - Called on every analysis tick while the canary is `Progressing`, `Waiting` or
//!   `WaitingPromotion` (`pkg/controller/scheduler.go` 368-378), one hook after the other until one
//!   succeeds (`pkg/controller/scheduler_hooks.go` 126-139).
//! - Method POST, to the configured URL as parsed and printed back by Go's `net/url`, so a query
//!   string such as `?slo=shop/checkout` is kept (`pkg/controller/webhook.go` 58, 73).
//! - One header of its own, `Content-Type: application/json` (`webhook.go` 77); the rest is Go's
//!   `net/http`: `Host`, `User-Agent: Go-http-client/1.1`, `Content-Length`, `Accept-Encoding:
//!   gzip`. No authentication.
//! - The body is compact JSON from `CanaryWebhookPayload` (`canary.go` 463-481, filled in
//!   `webhook.go` 99-116): `name` and `namespace` of the Canary (not its targetRef), `phase` (the
//!   canary's phase), `checksum` (a hash of the tracked configs and last applied spec, such as
//!   `85d557f47b`) and `metadata`, the webhook's map copied as is, left out when the webhook has
//!   none (`omitempty`). Flagger's own test shows it: `pkg/controller/webhook_test.go` 79-92.
//! - Timeout: the webhook's `timeout`, 10s when unset (`webhook.go` 63-64, 111-113), for the whole
//!   request. Retries: `retries` (default 0) on connection errors, 429 and 5xx but 501
//!   (go-retryablehttp `client.go` 495-542).
//! - The answer: status above 202 is an error carrying the body (`webhook.go` 85-92). For a
//!   rollback hook 200-202 means "roll back now" and anything else, timeouts included, "no"; the
//!   body is not shown in the Canary's events (`scheduler_hooks.go` 130-134).
//!
//! So a test speaks raw HTTP/1.1 over a socket: no client library adds headers Flagger does not
//! send (reqwest adds `Accept: */*`).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// `CanaryWebhookPayload` as Go's `json.Marshal` writes it: fields in declaration order, compact,
/// `metadata` left out when empty.
pub fn payload(namespace: &str, name: &str, metadata: &[(&str, &str)]) -> String {
    let text = |v: &str| serde_json::to_string(v).unwrap();
    let mut body = format!(
        "{{\"name\":{},\"namespace\":{},\"phase\":\"Progressing\",\"checksum\":\"85d557f47b\"",
        text(name),
        text(namespace)
    );
    if !metadata.is_empty() {
        // A Go map: keys sorted.
        let map: std::collections::BTreeMap<&str, &str> = metadata.iter().copied().collect();
        body.push_str(&format!(
            ",\"metadata\":{}",
            serde_json::to_string(&map).unwrap()
        ));
    }
    body.push('}');
    body
}

/// What Flagger does for a rollback webhook with this `url` and `metadata` on the canary
/// `namespace/name`: the status and the body of the answer.
pub fn call(url: &str, namespace: &str, name: &str, metadata: &[(&str, &str)]) -> (u16, String) {
    let body = payload(namespace, name, metadata);
    post(url, Some("application/json"), body.as_bytes())
}

/// A POST with Go's headers, this Content-Type (none: left out) and body.
pub fn post(url: &str, content_type: Option<&str>, body: &[u8]) -> (u16, String) {
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    let (host, target) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut head = format!(
        "POST {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: Go-http-client/1.1\r\n\
         Content-Length: {}\r\n",
        body.len()
    );
    if let Some(content_type) = content_type {
        head.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    head.push_str("Accept-Encoding: gzip\r\n\r\n");
    let mut stream = TcpStream::connect(host).unwrap();
    // Flagger's default timeout.
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    // A server may answer (413) before reading a large body, and close.
    let _ = stream.write_all(body);
    read_response(&mut stream)
}

/// Status and body of one HTTP/1.1 response with a Content-Length.
fn read_response(stream: &mut TcpStream) -> (u16, String) {
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    let (head_end, length) = loop {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "closed before the head: {bytes:?}");
        bytes.extend_from_slice(&buf[..n]);
        if let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&bytes[..end]).to_string();
            let length = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().unwrap())
                })
                .unwrap_or_else(|| panic!("no Content-Length in {head}"));
            break (end + 4, length);
        }
    };
    while bytes.len() < head_end + length {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "closed inside the body");
        bytes.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&bytes[..head_end]).to_string();
    let code = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head}"));
    let body = String::from_utf8_lossy(&bytes[head_end..head_end + length]).to_string();
    (code, body)
}

/// Flagger rolls back on 200-202.
pub fn rolls_back(code: u16) -> bool {
    (200..=202).contains(&code)
}

/// Flagger's calls against `hook` (`http://host:port/flagger/rollback`) for SLOs in `namespace`:
/// `exhausted` and `healthy` are each (SLO name, the name of one of its rollback targets).
pub fn assert_the_protocol(
    hook: &str,
    namespace: &str,
    exhausted: (&str, &str),
    healthy: (&str, &str),
) {
    let starts = |(code, body): (u16, String), want: u16, start: &str| {
        assert_eq!(code, want, "{body}");
        assert!(body.starts_with(start), "{body}");
        assert_eq!(body.lines().count(), 1, "{body}");
    };
    let (slo, canary) = exhausted;
    let (code, body) = call(hook, namespace, canary, &[]);
    assert!(rolls_back(code), "{code} {body}");
    starts((code, body), 200, &format!("{namespace}/{slo}: rollback: "));
    let (ok, canary_ok) = healthy;
    let answer = call(hook, namespace, canary_ok, &[("cmd", "hey -z 1m")]);
    starts(answer, 412, &format!("{namespace}/{ok}: no rollback: "));
    // The SLO in metadata, whole or in the canary's namespace; the canary's name does not matter.
    let named = format!("{namespace}/{slo}");
    starts(
        call(hook, namespace, "podinfo", &[("slo", &named)]),
        200,
        &named,
    );
    let answer = call(hook, namespace, "podinfo", &[("slo", ok)]);
    starts(answer, 412, &format!("{namespace}/{ok}: no rollback"));
    // The configured URL's query wins.
    let url = format!("{hook}?slo={namespace}/{slo}");
    starts(
        call(&url, namespace, canary_ok, &[("slo", ok)]),
        200,
        &named,
    );
    // Unknown canaries and SLOs, broken bodies, other media types.
    starts(
        call(hook, namespace, "podinfo", &[]),
        404,
        "no SLO in namespace",
    );
    starts(
        call(hook, namespace, "x", &[("slo", "nothing")]),
        404,
        "no SLO",
    );
    let json = Some("application/json");
    starts(
        post(hook, json, b"{\"name\": \"podinfo\""),
        400,
        "no rollback: the body",
    );
    let wrong = br#"{"name":"podinfo","namespace":"shop","metadata":{"retries":3}}"#;
    starts(post(hook, json, wrong), 400, "no rollback: the body");
    starts(
        post(hook, json, b"{\"phase\":\"Progressing\"}"),
        400,
        "no rollback",
    );
    let form = Some("application/x-www-form-urlencoded");
    starts(
        post(hook, form, payload(namespace, canary, &[]).as_bytes()),
        415,
        "no rollback",
    );
    // Without a Content-Type the body is read as JSON.
    let answer = post(hook, None, payload(namespace, canary, &[]).as_bytes());
    assert_eq!(answer.0, 200, "{}", answer.1);
    let big = format!("{{\"name\":\"{}\"}}", "x".repeat(70 * 1024));
    starts(
        post(hook, json, big.as_bytes()),
        413,
        "no rollback: the body is larger",
    );
}
