//! A client for the rules configuration API of a Mimir or Cortex ruler: list a tenant's rule
//! groups, set one group, delete one group. Requests carry the tenant as `X-Scope-OrgID` and the
//! same credentials as the Prometheus client (bearer token file, basic auth, CA file).
//!
//! The answers it relies on, from `grafana/mimir` `pkg/ruler/api.go` and `cortexproject/cortex`
//! `pkg/ruler/api.go`: the list is YAML `{namespace: [group, ...]}`; an empty tenant is `200 {}`
//! (Mimir) or `404 no rule groups found` (Cortex, older Mimir); set and delete answer `202`;
//! deleting a missing group is `404 group does not exist`; a bad group is `400` with a text body.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::groups::RulerGroup;

/// How to reach the ruler.
#[derive(Debug, Clone)]
pub struct Settings {
    /// URL of the rules configuration API, such as
    /// `http://mimir:8080/prometheus/config/v1/rules`; namespaces and groups are appended.
    pub url: String,
    /// Sent as `X-Scope-OrgID`; `None` sends no header (multi-tenancy off, or a gateway sets it).
    pub tenant: Option<String>,
    pub timeout: Duration,
    /// Read on every request, so rotated tokens work.
    pub bearer_token_file: Option<PathBuf>,
    pub basic_auth: Option<(String, String)>,
    /// PEM file with the CA of the ruler's certificate.
    pub ca_file: Option<PathBuf>,
}

impl Settings {
    /// No tenant, no authentication, system roots.
    pub fn new(url: impl Into<String>, timeout: Duration) -> Self {
        Settings {
            url: url.into(),
            tenant: None,
            timeout,
            bearer_token_file: None,
            basic_auth: None,
            ca_file: None,
        }
    }
}

/// What went wrong talking to the ruler.
#[derive(Debug, thiserror::Error)]
pub enum RulerError {
    #[error(
        "invalid --ruler-url {url:?}: give the rules API's URL, such as \
         http://mimir:8080/prometheus/config/v1/rules (Mimir) or http://cortex:9009/api/v1/rules \
         (Cortex)"
    )]
    Url { url: String },
    #[error("cannot read the ruler {what} {path}: {source}")]
    File {
        what: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the ruler CA file {path} holds no usable PEM certificate (--ruler-ca-file)")]
    Ca { path: String },
    #[error("cannot build the ruler's HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    #[error("the ruler at {url} did not answer ({cause}); check --ruler-url and the ruler")]
    Unreachable { url: String, cause: String },
    #[error(
        "nothing serves the ruler API at {url} (404: {message}); check --ruler-url: Mimir's is \
         <address>/prometheus/config/v1/rules, Cortex's <address>/api/v1/rules"
    )]
    NoApi { url: String, message: String },
    #[error(
        "the ruler refused the request ({status}: {message}); with multi-tenancy on it needs \
         --tenant, and --ruler-bearer-token-file or --ruler-user if it checks credentials"
    )]
    Denied { status: u16, message: String },
    #[error("the ruler could not list the tenant's rule groups ({status}): {message}")]
    List { status: u16, message: String },
    #[error("the ruler's list of rule groups does not decode as YAML rule groups: {0}")]
    Decode(String),
    #[error(
        "the ruler refused rule group {group} in namespace {namespace} ({status}): {message}{}",
        limit_hint(.message)
    )]
    Group {
        namespace: String,
        group: String,
        status: u16,
        message: String,
    },
}

impl RulerError {
    pub fn reason(&self) -> &'static str {
        match self {
            RulerError::Url { .. } => "InvalidURL",
            RulerError::File { .. } => "FileUnreadable",
            RulerError::Ca { .. } => "InvalidCA",
            RulerError::Client(_) => "ClientSetup",
            RulerError::Unreachable { .. } => "RulerUnreachable",
            RulerError::NoApi { .. } => "NoRulerAPI",
            RulerError::Denied { .. } => "RulerDenied",
            RulerError::List { .. } => "ListFailed",
            RulerError::Decode(_) => "BadAnswer",
            RulerError::Group { .. } => "GroupRefused",
        }
    }
}

/// Mimir's per-tenant ruler limits, by the start of the message its API answers when a group
/// exceeds one (`grafana/mimir` `pkg/ruler/ruler.go`): the setting in the limits and runtime
/// configuration's `overrides`, and its flag.
const LIMITS: [(&str, &str, &str); 3] = [
    (
        "per-user rule groups limit",
        "ruler_max_rule_groups_per_tenant",
        "-ruler.max-rule-groups-per-tenant",
    ),
    (
        "per-user rules per rule group limit",
        "ruler_max_rules_per_rule_group",
        "-ruler.max-rules-per-rule-group",
    ),
    (
        "per-user minimum rule evaluation interval limit",
        "ruler_min_rule_evaluation_interval",
        "-ruler.min-rule-evaluation-interval",
    ),
];

/// For a refusal by one of Mimir's limits, which setting to raise: the ruler's message names the
/// limit in words only.
fn limit_hint(message: &str) -> String {
    LIMITS
        .iter()
        .find(|(said, _, _)| message.starts_with(said))
        .map(|(_, setting, flag)| {
            format!(
                "; the tenant's limit is Mimir's {setting} (flag {flag}, or per tenant in the \
                 runtime configuration's overrides)"
            )
        })
        .unwrap_or_default()
}

/// What a delete found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deleted {
    Done,
    /// The group was not there (any more): the end state we wanted.
    Absent,
}

/// The ruler's body for "the tenant has no groups" (Cortex; Mimir before it answered `200 {}`).
const NO_GROUPS: &str = "no rule groups found";
/// The ruler's body for "no such group".
const NO_GROUP: &str = "group does not exist";

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    settings: Settings,
}

impl Client {
    pub fn new(settings: Settings) -> Result<Client, RulerError> {
        // kube already uses rustls with ring; make it the process default once.
        let _ = rustls::crypto::ring::default_provider().install_default();
        check_url(&settings.url)?;
        let mut builder = reqwest::Client::builder().timeout(settings.timeout);
        if let Some(path) = &settings.ca_file {
            let shown = path.display().to_string();
            let pem = std::fs::read(path).map_err(|source| RulerError::File {
                what: "CA file",
                path: shown.clone(),
                source,
            })?;
            let certs =
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|_| RulerError::Ca {
                    path: shown.clone(),
                })?;
            if certs.is_empty() {
                return Err(RulerError::Ca { path: shown });
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().map_err(RulerError::Client)?;
        Ok(Client { http, settings })
    }

    pub fn url(&self) -> &str {
        &self.settings.url
    }

    /// Every rule group of the tenant, by ruler namespace.
    pub async fn list(&self) -> Result<BTreeMap<String, Vec<RulerGroup>>, RulerError> {
        let (status, text) = self.send(self.http.get(self.base())).await?;
        match status {
            200 => decode_list(&text),
            404 if text.trim() == NO_GROUPS => Ok(BTreeMap::new()),
            404 => Err(RulerError::NoApi {
                url: self.settings.url.clone(),
                message: short(&text),
            }),
            401 | 403 => Err(RulerError::Denied {
                status,
                message: short(&text),
            }),
            _ => Err(RulerError::List {
                status,
                message: short(&text),
            }),
        }
    }

    /// Creates or replaces group `group` (whose YAML is `body`) in `namespace`.
    pub async fn set(&self, namespace: &str, group: &str, body: String) -> Result<(), RulerError> {
        let url = format!("{}/{}", self.base(), path_segment(namespace));
        let request = self
            .http
            .post(url)
            .header(http::header::CONTENT_TYPE, "application/yaml")
            .body(body);
        let (status, text) = self.send(request).await?;
        match status {
            200..=299 => Ok(()),
            _ => Err(self.refused(namespace, group, status, &text)),
        }
    }

    /// Deletes group `group` of `namespace`.
    pub async fn delete(&self, namespace: &str, group: &str) -> Result<Deleted, RulerError> {
        let url = format!(
            "{}/{}/{}",
            self.base(),
            path_segment(namespace),
            path_segment(group)
        );
        let (status, text) = self.send(self.http.delete(url)).await?;
        match status {
            200..=299 => Ok(Deleted::Done),
            404 if text.trim() == NO_GROUP => Ok(Deleted::Absent),
            _ => Err(self.refused(namespace, group, status, &text)),
        }
    }

    fn refused(&self, namespace: &str, group: &str, status: u16, text: &str) -> RulerError {
        // A 403 on a write names the group: Mimir refuses writes to its protected namespaces
        // with one, which no credential changes; its message says why.
        match status {
            401 => RulerError::Denied {
                status,
                message: short(text),
            },
            404 => RulerError::NoApi {
                url: self.settings.url.clone(),
                message: short(text),
            },
            _ => RulerError::Group {
                namespace: namespace.to_string(),
                group: group.to_string(),
                status,
                message: short(text),
            },
        }
    }

    fn base(&self) -> &str {
        self.settings.url.trim_end_matches('/')
    }

    /// Sends the request with the tenant and credentials, and returns the status and body.
    async fn send(&self, request: reqwest::RequestBuilder) -> Result<(u16, String), RulerError> {
        let unreachable = |source: reqwest::Error| RulerError::Unreachable {
            url: self.settings.url.clone(),
            cause: causes(&source),
        };
        let response = self
            .authorized(request)?
            .send()
            .await
            .map_err(unreachable)?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(unreachable)?;
        Ok((status, text))
    }

    fn authorized(
        &self,
        mut request: reqwest::RequestBuilder,
    ) -> Result<reqwest::RequestBuilder, RulerError> {
        if let Some(tenant) = &self.settings.tenant {
            request = request.header("X-Scope-OrgID", tenant);
        }
        crate::prometheus::request::with_credentials(
            request,
            self.settings.bearer_token_file.as_deref(),
            self.settings.basic_auth.as_ref(),
        )
        .map_err(|(path, source)| RulerError::File {
            what: "bearer token file",
            path,
            source,
        })
    }
}

/// The URL must be http(s) and name the API's path: a bare address would send our groups to
/// whatever answers at `/`.
fn check_url(url: &str) -> Result<(), RulerError> {
    let bad = || RulerError::Url {
        url: url.to_string(),
    };
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(bad)?;
    let path = rest.split_once('/').map(|(_, p)| p).unwrap_or_default();
    if path.trim_matches('/').is_empty() || url.contains(['?', '#']) {
        return Err(bad());
    }
    Ok(())
}

fn decode_list(text: &str) -> Result<BTreeMap<String, Vec<RulerGroup>>, RulerError> {
    if text.trim().is_empty() {
        return Ok(BTreeMap::new());
    }
    // The default budget (250,000 nodes) guards against YAML bombs in files; a tenant with a
    // thousand SLOs already lists more nodes. The answer is in memory, and it has no more nodes
    // than bytes, so its size bounds the work (anchors and aliases keep their default limits).
    let mut budget = serde_saphyr::Budget::default();
    budget.max_nodes = budget.max_nodes.max(text.len());
    budget.max_events = budget.max_events.max(2 * text.len());
    budget.max_total_scalar_bytes = budget.max_total_scalar_bytes.max(text.len());
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    let list: Option<BTreeMap<String, Vec<RulerGroup>>> =
        serde_saphyr::from_str_with_options(text, options)
            .map_err(|e| RulerError::Decode(e.to_string()))?;
    Ok(list.unwrap_or_default())
}

/// A namespace or group name as one path segment: everything but RFC 3986's unreserved
/// characters percent-encoded, so a `/` or `%` in a name never splits or changes the path (the
/// ruler decodes segments with Go's `url.PathUnescape`).
pub fn path_segment(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// An error and its causes, `a: b: c`: reqwest's own message names only the request.
fn causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(cause) = next {
        text.push_str(&format!(": {cause}"));
        next = cause.source();
    }
    text
}

/// The start of an error body, on one line.
fn short(text: &str) -> String {
    let line = text.trim().replace('\n', " ");
    if line.chars().count() > 300 {
        format!("{}...", line.chars().take(300).collect::<String>())
    } else {
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_http_and_name_the_api_path() {
        for good in [
            "http://mimir:8080/prometheus/config/v1/rules",
            "https://cortex.example.com/api/v1/rules/",
            "http://127.0.0.1:1/gateway/prometheus/config/v1/rules",
        ] {
            assert!(check_url(good).is_ok(), "{good}");
        }
        for bad in [
            "mimir:8080/prometheus/config/v1/rules",
            "http://mimir:8080",
            "http://mimir:8080/",
            "ftp://mimir/prometheus/config/v1/rules",
            "http://mimir:8080/prometheus/config/v1/rules?x=1",
        ] {
            assert!(
                matches!(check_url(bad), Err(RulerError::Url { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn names_are_one_path_segment() {
        assert_eq!(path_segment("shop"), "shop");
        assert_eq!(
            path_segment("plimsoll:shop:check.out:fast"),
            "plimsoll%3Ashop%3Acheck.out%3Afast"
        );
        assert_eq!(path_segment("a/b %c"), "a%2Fb%20%25c");
        assert_eq!(path_segment("é"), "%C3%A9");
    }

    /// A list as Go's yaml.v3 writes it (Mimir marshals the list with it): four-space indents,
    /// sequences indented under their key, strings double-quoted where the plain form would not
    /// read back as the same text. Our own groups read from it compare as unchanged.
    #[test]
    fn a_list_in_yaml_v3_style_reads_back_as_our_groups() {
        let object: crate::api::ServiceLevelObjective = serde_json::from_value(serde_json::json!({
            "apiVersion": "plimsoll.dev/v1alpha1", "kind": "ServiceLevelObjective",
            "metadata": {"name": "checkout", "namespace": "shop"},
            "spec": {"service": "checkout", "objective": 99.9, "window": "30d",
                     "description": "Checkout: \"fast\" # and 'right'",
                     "indicator": {"ratio": {"errors": "t_total{code=~\"5..\"}",
                                             "total": "t_total"}}},
        }))
        .unwrap();
        let slo = crate::model::validate(&object).unwrap();
        let wanted: Vec<_> = crate::rules::render(&slo, "shop")
            .iter()
            .map(crate::ruler::groups::for_ruler)
            .collect();
        let q = |text: &str| serde_json::to_string(text).unwrap();
        let mut yaml = String::from("shop:\n");
        for group in &wanted {
            yaml += &format!(
                "    - name: {}\n      interval: {}\n      rules:\n",
                q(&group.name),
                group.interval
            );
            for rule in &group.rules {
                match (&rule.record, &rule.alert) {
                    (Some(r), _) => yaml += &format!("        - record: {r}\n"),
                    (_, Some(a)) => yaml += &format!("        - alert: {a}\n"),
                    _ => unreachable!(),
                }
                yaml += &format!("          expr: {}\n", q(&rule.expr));
                if let Some(f) = &rule.for_ {
                    yaml += &format!("          for: {f}\n");
                }
                for (key, map) in [("labels", &rule.labels), ("annotations", &rule.annotations)] {
                    if !map.is_empty() {
                        yaml += &format!("          {key}:\n");
                        for (k, v) in map {
                            yaml += &format!("            {k}: {}\n", q(v));
                        }
                    }
                }
            }
        }
        let listed = decode_list(&yaml).unwrap();
        assert_eq!(listed["shop"].len(), wanted.len());
        for (want, found) in wanted.iter().zip(&listed["shop"]) {
            assert!(crate::ruler::groups::same(want, found), "{}", want.name);
        }
    }

    #[test]
    fn a_refusal_by_one_of_mimirs_limits_names_the_setting_to_raise() {
        let refused = |message: &str| {
            RulerError::Group {
                namespace: "shop".into(),
                group: "g".into(),
                status: 400,
                message: message.into(),
            }
            .to_string()
        };
        let groups = refused("per-user rule groups limit (limit: 8 actual: 9) exceeded");
        assert!(
            groups.ends_with(
                "(400): per-user rule groups limit (limit: 8 actual: 9) exceeded; the tenant's \
                 limit is Mimir's ruler_max_rule_groups_per_tenant (flag \
                 -ruler.max-rule-groups-per-tenant, or per tenant in the runtime \
                 configuration's overrides)"
            ),
            "{groups}"
        );
        let rules = refused("per-user rules per rule group limit (limit: 5 actual: 9) exceeded");
        assert!(
            rules.contains("ruler_max_rules_per_rule_group (flag -ruler.max-rules-per-rule-group"),
            "{rules}"
        );
        let other = refused("unable to decode rule group");
        assert!(
            other.ends_with("(400): unable to decode rule group"),
            "{other}"
        );
    }

    #[test]
    fn an_empty_or_null_list_is_no_groups() {
        assert!(decode_list("{}\n").unwrap().is_empty());
        assert!(decode_list("").unwrap().is_empty());
        assert!(decode_list("null\n").unwrap().is_empty());
        assert!(matches!(decode_list("[1, 2]"), Err(RulerError::Decode(_))));
    }
}
