//! Flagger's rollback webhook, `/flagger/rollback`, shared by the operator and local mode.
//!
//! Flagger calls a `type: rollback` webhook with a POST of `application/json`: the canary's
//! `name`, `namespace`, `phase`, `checksum` and the webhook's `metadata` (strings only), at the
//! configured URL, query string included; it rolls the canary back when the answer is 200-202.
//! People call it with GET `?slo=<namespace>/<name>`.
//!
//! Which SLOs answer: `?slo=<namespace>/<name>`; else `metadata.slo` (`<namespace>/<name>`, or
//! `<name>` in the body's namespace); else every SLO in the body's namespace with a rollback
//! target named like the canary. 200 while any of them holds a rollback on fresh data, 412
//! otherwise, with one line naming each SLO and why.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::{HeaderMap, Method, StatusCode, header};
use serde::Deserialize;

use crate::api::{RollbackState, ServiceLevelObjective, ServiceLevelObjectiveStatus};
use crate::evaluator::status::{DATA_AVAILABLE, fresh};

#[cfg(test)]
mod tests;

/// The largest body read; Flagger's are a few hundred bytes.
pub const BODY_LIMIT: usize = 64 * 1024;

/// The query string: `?slo=<namespace>/<name>`.
#[derive(Debug, Default, Deserialize)]
pub struct FlaggerQuery {
    pub slo: Option<String>,
}

/// Flagger's webhook payload (`CanaryWebhookPayload`). Every field may be missing, but those
/// present must have Flagger's types.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
pub struct Payload {
    /// The Canary's name.
    pub name: Option<String>,
    /// The Canary's namespace.
    pub namespace: Option<String>,
    /// The canary's phase, such as `Progressing`.
    pub phase: Option<String>,
    pub checksum: Option<String>,
    /// The webhook's `metadata`; `slo` names the SLO.
    pub metadata: Option<BTreeMap<String, String>>,
}

/// One request: the query's SLO and the body.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Ask {
    pub slo: Option<String>,
    pub payload: Option<Payload>,
}

/// Which SLOs a request is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wanted {
    /// One SLO.
    Slo { namespace: String, name: String },
    /// Every SLO of `namespace` with a rollback target named `target`: the canary's workload.
    Canary { namespace: String, target: String },
}

impl Wanted {
    pub fn namespace(&self) -> &str {
        match self {
            Wanted::Slo { namespace, .. } | Wanted::Canary { namespace, .. } => namespace,
        }
    }
}

/// A request refused before any SLO is looked at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("{0}")]
    BadRequest(String),
    #[error("no rollback: send Content-Type: application/json, not {0}")]
    NotJson(String),
    #[error("no rollback: the body is larger than {BODY_LIMIT} bytes")]
    TooLarge,
}

impl Refused {
    pub fn status(&self) -> StatusCode {
        match self {
            Refused::BadRequest(_) => StatusCode::BAD_REQUEST,
            Refused::NotJson(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Refused::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        }
    }
}

/// One SLO as the webhook sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Known {
    pub name: String,
    /// The names of its rollback targets (any kind).
    pub targets: Vec<String>,
    /// `None` before the first status is written.
    pub status: Option<ServiceLevelObjectiveStatus>,
}

impl Known {
    /// From the operator's cache.
    pub fn of(slo: &ServiceLevelObjective) -> Known {
        let namespace = slo.metadata.namespace.as_deref();
        let targets = slo.spec.rollback.iter().flat_map(|r| &r.targets);
        Known {
            name: slo.metadata.name.clone().unwrap_or_default(),
            targets: targets
                .filter(|t| t.namespace.is_none() || t.namespace.as_deref() == namespace)
                .map(|t| t.name.clone())
                .collect(),
            status: slo.status.clone(),
        }
    }
}

/// Answers one request: checks and reads the body, then asks `slos` for the SLOs of the
/// namespace in question (`None` while they are still being listed).
pub async fn respond(
    method: &Method,
    headers: &HeaderMap,
    slo: Option<String>,
    body: Body,
    slos: impl FnOnce(&str) -> Option<Vec<Known>>,
) -> (StatusCode, String) {
    let payload = if method == Method::POST {
        match read_body(headers, body).await {
            Ok(payload) => payload,
            Err(refused) => return (refused.status(), format!("{refused}\n")),
        }
    } else {
        None
    };
    answer_for(&Ask { slo, payload }, slos)
}

async fn read_body(headers: &HeaderMap, body: Body) -> Result<Option<Payload>, Refused> {
    json_content_type(headers)?;
    // Over the limit, or broken off (then nobody reads the answer).
    let bytes = axum::body::to_bytes(body, BODY_LIMIT)
        .await
        .map_err(|_| Refused::TooLarge)?;
    parse_payload(&bytes)
}

/// A POST may leave the Content-Type out; when it gives one, it is JSON.
pub fn json_content_type(headers: &HeaderMap) -> Result<(), Refused> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let text = value.to_str().unwrap_or("a non-ASCII Content-Type");
    let media = text.split(';').next().unwrap_or("").trim();
    let media = media.to_ascii_lowercase();
    if media == "application/json"
        || (media.starts_with("application/") && media.ends_with("+json"))
    {
        Ok(())
    } else {
        Err(Refused::NotJson(text.to_string()))
    }
}

/// Flagger's payload from a body; an empty body is none.
pub fn parse_payload(bytes: &[u8]) -> Result<Option<Payload>, Refused> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(bytes).map(Some).map_err(|e| {
        Refused::BadRequest(format!(
            "no rollback: the body is not Flagger's webhook payload: {e}"
        ))
    })
}

/// The answer to a checked request, given the SLOs of a namespace.
pub fn answer_for(
    ask: &Ask,
    slos: impl FnOnce(&str) -> Option<Vec<Known>>,
) -> (StatusCode, String) {
    match wanted(ask) {
        Ok(wanted) => answer(&wanted, slos(wanted.namespace())),
        Err(refused) => (refused.status(), format!("{refused}\n")),
    }
}

/// Which SLOs the request is about: `?slo=`, else `metadata.slo`, else the canary.
pub fn wanted(ask: &Ask) -> Result<Wanted, Refused> {
    let payload = ask.payload.as_ref();
    let body_namespace = payload
        .and_then(|p| p.namespace.as_deref())
        .filter(|n| !n.is_empty());
    if let Some(slo) = &ask.slo {
        return slo_reference("?slo=", slo, None);
    }
    if let Some(slo) = payload.and_then(|p| p.metadata.as_ref()?.get("slo")) {
        return slo_reference("metadata.slo", slo, body_namespace);
    }
    let Some(payload) = payload else {
        return Err(Refused::BadRequest(
            "no rollback: give ?slo=<namespace>/<name>, or POST Flagger's webhook payload"
                .to_string(),
        ));
    };
    match (body_namespace, payload.name.as_deref()) {
        (Some(namespace), Some(name)) if is_name(namespace) && is_name(name) => {
            Ok(Wanted::Canary {
                namespace: namespace.to_string(),
                target: name.to_string(),
            })
        }
        _ => Err(Refused::BadRequest(
            "no rollback: the payload needs the canary's name and namespace (Kubernetes names), \
             or metadata.slo"
                .to_string(),
        )),
    }
}

/// A Kubernetes object name (DNS subdomain), which keeps answers to one line.
fn is_name(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 253
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
}

/// `<namespace>/<name>`, or `<name>` when a namespace is implied.
fn slo_reference(from: &str, text: &str, namespace: Option<&str>) -> Result<Wanted, Refused> {
    let parts: Vec<&str> = text.split('/').collect();
    let (namespace, name) = match (parts.as_slice(), namespace) {
        ([namespace, name], _) => (*namespace, *name),
        ([name], Some(namespace)) => (namespace, *name),
        _ => ("", ""),
    };
    if !is_name(namespace) || !is_name(name) {
        let form = if from == "?slo=" {
            "<namespace>/<name>"
        } else {
            "<namespace>/<name> (or <name> with the payload's namespace)"
        };
        return Err(Refused::BadRequest(format!(
            "no rollback: {from} must be {form}, not {text:?}"
        )));
    }
    Ok(Wanted::Slo {
        namespace: namespace.to_string(),
        name: name.to_string(),
    })
}

/// The answer for the wanted SLOs among a namespace's (`None`: still listing).
pub fn answer(wanted: &Wanted, slos: Option<Vec<Known>>) -> (StatusCode, String) {
    let Some(slos) = slos else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "no rollback: the SLOs are still being listed\n".to_string(),
        );
    };
    let mut matched: Vec<Known> = slos
        .into_iter()
        .filter(|slo| match wanted {
            Wanted::Slo { name, .. } => &slo.name == name,
            Wanted::Canary { target, .. } => slo.targets.contains(target),
        })
        .collect();
    let namespace = wanted.namespace();
    if matched.is_empty() {
        let text = match wanted {
            Wanted::Slo { name, .. } => format!("no SLO {namespace}/{name} is watched here"),
            Wanted::Canary { target, .. } => format!(
                "no SLO in namespace {namespace} has a rollback target named {target}; \
                 name it in ?slo= or metadata.slo"
            ),
        };
        return (StatusCode::NOT_FOUND, format!("{text}\n"));
    }
    // The SLOs that hold first, then by name.
    matched.sort_by(|a, b| {
        (!holds(a.status.as_ref()), &a.name).cmp(&(!holds(b.status.as_ref()), &b.name))
    });
    let code = if holds(matched[0].status.as_ref()) {
        StatusCode::OK
    } else {
        StatusCode::PRECONDITION_FAILED
    };
    let lines: Vec<String> = matched
        .iter()
        .map(|slo| format!("{namespace}/{}: {}", slo.name, reason(slo.status.as_ref())))
        .collect();
    (code, format!("{}\n", lines.join("; ")))
}

fn state(status: &ServiceLevelObjectiveStatus) -> RollbackState {
    status
        .rollback
        .as_ref()
        .map(|r| r.state)
        .unwrap_or_default()
}

/// A rollback holds on fresh data: the trigger holds (Exhausted or Recovering) and DataAvailable
/// is True. Missing data never rolls back.
pub fn holds(status: Option<&ServiceLevelObjectiveStatus>) -> bool {
    status.is_some_and(|s| {
        fresh(s)
            && matches!(
                state(s),
                RollbackState::Exhausted | RollbackState::Recovering
            )
    })
}

/// Why one SLO does or does not hold a rollback, in a few words.
pub fn reason(status: Option<&ServiceLevelObjectiveStatus>) -> String {
    let Some(status) = status else {
        return "no rollback: no current budget data (no status yet)".to_string();
    };
    if !fresh(status) {
        let why = status
            .conditions
            .iter()
            .find(|c| c.type_ == DATA_AVAILABLE)
            .map_or("not evaluated yet", |c| c.reason.as_str());
        return format!("no rollback: no current budget data ({why})");
    }
    let left = status.error_budget.as_ref().map_or_else(
        || "budget left unknown".to_string(),
        |b| format!("{}% of the error budget left", b.remaining),
    );
    let state = state(status);
    if holds(Some(status)) {
        let since = status
            .rollback
            .as_ref()
            .and_then(|r| r.since.as_deref())
            .map(|s| format!(" since {s}"))
            .unwrap_or_default();
        format!("rollback: the error budget policy's trigger holds ({state:?}{since}), {left}")
    } else {
        format!("no rollback: within the policy ({state:?}), {left}")
    }
}
