//! A loopback ruler: the rules configuration API of Mimir and Cortex, with per-tenant storage,
//! answering as their handlers do. What it follows (read, not copied):
//!
//! - Routes: `grafana/mimir` `pkg/api/api.go` `RegisterRulerAPI` (`<prometheus-prefix>/config/
//!   v1/rules[/{namespace}[/{groupName}]]`, prefix `/prometheus`); `cortexproject/cortex`
//!   `pkg/api/api.go` (`/api/v1/rules[...]`). Anything else is gorilla/mux's `404 page not found`.
//! - Tenant: `grafana/dskit` `middleware/http_auth.go` + `user/http.go`: without `X-Scope-OrgID`
//!   the answer is `401` `no org id` (multi-tenancy on, Mimir's default).
//! - Handlers: `grafana/mimir` `pkg/ruler/api.go`. List: YAML `{namespace: [group]}`
//!   (`rulespb.RuleGroupList.Formatted`); an empty tenant or namespace is `200 {}` in Mimir and
//!   `404 no rule groups found` in Cortex (`cortexproject/cortex` `pkg/ruler/api.go`). Get one
//!   group: its YAML, or `404 group does not exist` (`pkg/ruler/rulestore/store.go`). Set: YAML
//!   body, `202` and `{"status":"success","data":null,"errorType":"","error":""}`; a body that does
//!   not decode is `400 unable to decode rule group`; validation errors (`pkg/ruler/manager.go`
//!   `ValidateRuleGroup`, Prometheus `model/rulefmt` `RuleNode.Validate`) are `400` with the
//!   errors joined by `, `; more rules than the tenant's limit is `400 per-user rules per rule
//!   group limit (limit: N actual: M) exceeded` (`api_test.go` `TestRuler_LimitsPerGroup`), and
//!   a set when the tenant's groups plus one exceed its group limit, even one that replaces a
//!   group, is `400 per-user rule groups limit (limit: N actual: M) exceeded` (`CreateRuleGroup`:
//!   `AssertMaxRuleGroups(userID, namespace, len(rgs)+1)`).
//!   Delete group / namespace: `202`, or `404 group does not exist` / `group namespace does not
//!   exist`. Names in paths are decoded with `url.PathUnescape`.
//! - Durations are stored as Prometheus' `model.Duration` and written back in its form
//!   (`300s` comes back as `5m`); absent `for` and empty maps are omitted.
//!
//! Not emulated: the line:column prefix of rulefmt's errors, alert template parsing, the
//! `source_tenants`/`query_offset` fields, protected namespaces.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

#[path = "ruler_group.rs"]
mod ruler_group;
use ruler_group::{Posted, validate};

const MIMIR: &str = "/prometheus/config/v1/rules";
const CORTEX: &str = "/api/v1/rules";

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rule {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert: Option<String>,
    pub expr: String,
    #[serde(rename = "for", skip_serializing_if = "Option::is_none")]
    pub for_: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// A request as the ruler saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub tenant: Option<String>,
    pub content_type: Option<String>,
    pub authorization: Option<String>,
}

#[derive(Debug, Default)]
pub struct Store {
    /// tenant -> namespace -> groups, in the order they were first set.
    pub tenants: BTreeMap<String, BTreeMap<String, Vec<Group>>>,
    /// Successful sets and deletes.
    pub writes: usize,
    pub seen: Vec<Seen>,
    pub max_rules_per_group: Option<usize>,
    /// Mimir's `-ruler.max-rule-groups-per-tenant` (70 by default; Cortex: no limit).
    pub max_groups_per_tenant: Option<usize>,
}

type Shared = Arc<Mutex<Store>>;

pub struct Ruler {
    pub port: u16,
    pub store: Shared,
    _server: crate::support::loopback::Loopback,
}

impl Ruler {
    pub fn start() -> Ruler {
        Ruler::start_on(0)
    }

    /// On 127.0.0.1:`port` (0: any free port).
    pub fn start_on(port: u16) -> Ruler {
        let store: Shared = Arc::default();
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(store.clone());
        let server = crate::support::loopback::Loopback::serve(port, app);
        Ruler {
            port: server.port,
            store,
            _server: server,
        }
    }

    pub fn mimir_url(&self) -> String {
        format!("http://127.0.0.1:{}{MIMIR}", self.port)
    }

    pub fn cortex_url(&self) -> String {
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
                    .map(|(ns, groups)| {
                        (ns.clone(), groups.iter().map(|g| g.name.clone()).collect())
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn group(&self, tenant: &str, namespace: &str, name: &str) -> Option<Group> {
        let store = self.store.lock().unwrap();
        store
            .tenants
            .get(tenant)?
            .get(namespace)?
            .iter()
            .find(|g| g.name == name)
            .cloned()
    }

    pub fn writes(&self) -> usize {
        self.store.lock().unwrap().writes
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.store.lock().unwrap().seen.clone()
    }

    pub fn limit_rules_per_group(&self, limit: usize) {
        self.store.lock().unwrap().max_rules_per_group = Some(limit);
    }

    pub fn limit_groups_per_tenant(&self, limit: usize) {
        self.store.lock().unwrap().max_groups_per_tenant = Some(limit);
    }
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

fn accepted() -> Response {
    (
        StatusCode::ACCEPTED,
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"status":"success","data":null,"errorType":"","error":""}"#,
    )
        .into_response()
}

fn yaml(value: &impl Serialize) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/yaml")],
        serde_saphyr::to_string(value).unwrap(),
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
    let header_text = |name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(String::from)
    };
    let tenant = header_text("x-scope-orgid").filter(|t| !t.is_empty());
    let mut store = store.lock().unwrap();
    store.seen.push(Seen {
        method: method.to_string(),
        path: uri.path().to_string(),
        tenant: tenant.clone(),
        content_type: header_text("content-type"),
        authorization: header_text("authorization"),
    });
    let (cortex, rest) = match (
        uri.path().strip_prefix(MIMIR),
        uri.path().strip_prefix(CORTEX),
    ) {
        (Some(rest), _) => (false, rest),
        (None, Some(rest)) => (true, rest),
        _ => return text(StatusCode::NOT_FOUND, "404 page not found"),
    };
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let Some(tenant) = tenant else {
        return text(StatusCode::UNAUTHORIZED, "no org id");
    };
    let decoded: Option<Vec<String>> = segments.iter().map(|s| unescape(s)).collect();
    let Some(names) = decoded else {
        return text(StatusCode::INTERNAL_SERVER_ERROR, "invalid URL escape");
    };
    let store = &mut *store;
    let limits = (store.max_rules_per_group, store.max_groups_per_tenant);
    let tenant_groups = store.tenants.entry(tenant).or_default();
    let response = match (method, names.as_slice()) {
        (Method::GET, []) => list(tenant_groups, None, cortex),
        (Method::GET, [ns]) => list(tenant_groups, Some(ns), cortex),
        (Method::GET, [ns, name]) => match tenant_groups
            .get(ns)
            .and_then(|groups| groups.iter().find(|g| &g.name == name))
        {
            Some(group) => yaml(group),
            None => text(StatusCode::NOT_FOUND, "group does not exist"),
        },
        (Method::POST, [ns]) => match set(tenant_groups, ns, &body, limits) {
            Ok(()) => {
                store.writes += 1;
                accepted()
            }
            Err(message) => text(StatusCode::BAD_REQUEST, &message),
        },
        (Method::DELETE, [ns, name]) => {
            let groups = tenant_groups.entry(ns.clone()).or_default();
            let before = groups.len();
            groups.retain(|g| &g.name != name);
            let found = groups.len() < before;
            if groups.is_empty() {
                tenant_groups.remove(ns);
            }
            if found {
                store.writes += 1;
                accepted()
            } else {
                text(StatusCode::NOT_FOUND, "group does not exist")
            }
        }
        (Method::DELETE, [ns]) => match tenant_groups.remove(ns) {
            Some(_) => {
                store.writes += 1;
                accepted()
            }
            None => text(StatusCode::NOT_FOUND, "group namespace does not exist"),
        },
        _ => text(StatusCode::METHOD_NOT_ALLOWED, ""),
    };
    store.tenants.retain(|_, namespaces| !namespaces.is_empty());
    response
}

fn list(
    groups: &BTreeMap<String, Vec<Group>>,
    namespace: Option<&String>,
    cortex: bool,
) -> Response {
    let shown: BTreeMap<&String, &Vec<Group>> = groups
        .iter()
        .filter(|(ns, g)| namespace.is_none_or(|n| n == *ns) && !g.is_empty())
        .collect();
    match (shown.is_empty(), cortex) {
        (true, true) => text(StatusCode::NOT_FOUND, "no rule groups found"),
        _ => yaml(&shown),
    }
}

/// Sets a group as Mimir's CreateRuleGroup does: decode and validate, the rules-per-group limit,
/// then the tenant's group limit, checked against all its groups plus one even when the set
/// replaces a group (pkg/ruler/api.go).
fn set(
    tenant: &mut BTreeMap<String, Vec<Group>>,
    namespace: &str,
    body: &[u8],
    limits: (Option<usize>, Option<usize>),
) -> Result<(), String> {
    let (limit, max_groups) = limits;
    const BAD: &str = "unable to decode rule group";
    let text = std::str::from_utf8(body).map_err(|_| BAD.to_string())?;
    let posted: Posted = if text.trim().is_empty() {
        Posted {
            name: String::new(),
            interval: None,
            rules: vec![],
        }
    } else {
        serde_saphyr::from_str(text).map_err(|_| BAD.to_string())?
    };
    let group = validate(posted)?;
    if let Some(limit) = limit.filter(|l| group.rules.len() > *l) {
        return Err(format!(
            "per-user rules per rule group limit (limit: {limit} actual: {}) exceeded",
            group.rules.len()
        ));
    }
    let held: usize = tenant.values().map(Vec::len).sum();
    if let Some(max) = max_groups.filter(|m| held + 1 > *m) {
        return Err(format!(
            "per-user rule groups limit (limit: {max} actual: {}) exceeded",
            held + 1
        ));
    }
    let groups = tenant.entry(namespace.to_string()).or_default();
    match groups.iter_mut().find(|g| g.name == group.name) {
        Some(held) => *held = group,
        None => groups.push(group),
    }
    Ok(())
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
