//! What a query carries besides the query itself, for the distributed stores in front of
//! Prometheus' data: the tenant of a Mimir or Cortex query frontend (`X-Scope-OrgID`), headers a
//! gateway wants, and Thanos Query's `partial_response` parameter.

use std::path::PathBuf;

use reqwest::header::{HeaderName, HeaderValue};

/// The header Mimir and Cortex read the tenant from (grafana/mimir
/// docs/sources/mimir/references/http-api/index.md, "Authentication").
pub const TENANT_HEADER: &str = "X-Scope-OrgID";

/// Headers the client sets itself, or that another flag owns.
const RESERVED: [&str; 3] = ["content-type", "content-length", "host"];

/// Why a `--prometheus-tenant` or `--prometheus-header` was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RequestError {
    #[error(
        "--prometheus-tenant {given:?}: {problem}; a tenant ID is letters, digits and !-_.*'() \
         (at most 150), such as `team-a`"
    )]
    Tenant {
        given: String,
        problem: &'static str,
    },
    #[error(
        "--prometheus-tenant {given:?} names several tenants: Mimir's tenant federation labels every \
         series it returns with `__tenant_id__`, a label Plimsoll's own series never carry, so every \
         budget would read as foreign; give the one tenant whose series this operator reads"
    )]
    Federated { given: String },
    #[error(
        "--prometheus-header {given:?} is not NAME=VALUE or NAME=@FILE; write it as \
         `X-Api-Key=@/etc/plimsoll/key` (the value read from the file on every query)"
    )]
    Shape { given: String },
    #[error(
        "--prometheus-header {name:?}: not an HTTP header name (letters, digits and !#$%&'*+-.^_`|~)"
    )]
    Name { name: String },
    #[error(
        "--prometheus-header {name}: the value is not a valid HTTP header value (no control characters)"
    )]
    Value { name: String },
    #[error("--prometheus-header {name}: the client sets this header itself; leave it out")]
    Reserved { name: String },
}

/// A tenant ID, as sent in [`TENANT_HEADER`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant(String);

impl Tenant {
    /// Checks the ID as Mimir does (grafana/dskit tenant/tenant.go, `ValidTenantID`), so a typo
    /// fails at startup rather than as a 401 on every query. Several IDs joined with `|` (the
    /// `tenantIDsSeparator` of the same file) ask for tenant federation, whose answers carry
    /// `__tenant_id__` on every series (grafana/mimir pkg/querier/tenantfederation/
    /// merge_queryable.go; a single ID bypasses the merge): refused.
    pub fn parse(text: &str) -> Result<Tenant, RequestError> {
        let refuse = |problem| RequestError::Tenant {
            given: text.to_string(),
            problem,
        };
        if text.contains('|') && text.split('|').all(|id| !id.is_empty()) {
            return Err(RequestError::Federated {
                given: text.to_string(),
            });
        }
        for id in text.split('|') {
            if id.is_empty() {
                return Err(refuse("an empty tenant ID"));
            }
            if id.len() > 150 {
                return Err(refuse("a tenant ID longer than 150 characters"));
            }
            if id == "." || id == ".." {
                return Err(refuse("`.` and `..` are not tenant IDs"));
            }
            if !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "!-_.*'()".contains(c))
            {
                return Err(refuse("a character Mimir refuses in tenant IDs"));
            }
        }
        Ok(Tenant(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where a header's value comes from.
#[derive(Clone, PartialEq)]
pub enum HeaderValueSource {
    /// Given on the command line or in the environment.
    Inline(HeaderValue),
    /// Read from this file on every query, so a mounted Secret's rotation is picked up.
    File(PathBuf),
}

/// An extra header on every query. Its value never appears in logs or errors.
#[derive(Clone, PartialEq)]
pub struct Header {
    pub name: HeaderName,
    pub value: HeaderValueSource,
}

impl std::fmt::Debug for Header {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.value {
            HeaderValueSource::Inline(_) => write!(f, "{}=<redacted>", self.name),
            HeaderValueSource::File(path) => write!(f, "{}=@{}", self.name, path.display()),
        }
    }
}

impl Header {
    /// `NAME=VALUE`, or `NAME=@FILE` for a value kept in a file.
    pub fn parse(text: &str) -> Result<Header, RequestError> {
        let Some((name, value)) = text.split_once('=') else {
            // The text may be a secret without its name: never echo it.
            return Err(RequestError::Shape {
                given: "<redacted>".into(),
            });
        };
        let name_text = name.trim();
        let name =
            HeaderName::from_bytes(name_text.as_bytes()).map_err(|_| RequestError::Name {
                name: name_text.to_string(),
            })?;
        if RESERVED.contains(&name.as_str()) {
            return Err(RequestError::Reserved {
                name: name.to_string(),
            });
        }
        let value = match value.strip_prefix('@') {
            Some(path) if !path.is_empty() => HeaderValueSource::File(PathBuf::from(path)),
            _ => HeaderValueSource::Inline(header_value(&name, value)?),
        };
        Ok(Header { name, value })
    }
}

/// A header's value as read, trimmed like a token file.
pub fn header_value(name: &HeaderName, text: &str) -> Result<HeaderValue, RequestError> {
    let mut value = HeaderValue::from_str(text.trim()).map_err(|_| RequestError::Value {
        name: name.to_string(),
    })?;
    value.set_sensitive(true);
    Ok(value)
}

/// What every status query carries besides authentication.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Extras {
    pub tenant: Option<Tenant>,
    pub headers: Vec<Header>,
    /// Sent as Thanos Query's `partial_response` form parameter when set; unset sends nothing,
    /// so the store's own default (`--query.partial-response`, true) applies.
    pub partial_response: Option<bool>,
}

/// Why the extras could not be put on a request.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("cannot read the file of --prometheus-header {name} ({path}): {source}")]
    File {
        name: String,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the file of --prometheus-header {name} ({path}) holds no valid header value")]
    Value { name: String, path: String },
}

impl Extras {
    /// The tenant and the extra headers on `request`; header files are read now.
    pub fn apply(
        &self,
        mut request: reqwest::RequestBuilder,
    ) -> Result<reqwest::RequestBuilder, ApplyError> {
        if let Some(tenant) = &self.tenant {
            request = request.header(TENANT_HEADER, tenant.as_str());
        }
        for header in &self.headers {
            let value = match &header.value {
                HeaderValueSource::Inline(value) => value.clone(),
                HeaderValueSource::File(path) => {
                    let (name, shown) = (header.name.to_string(), path.display().to_string());
                    let text =
                        std::fs::read_to_string(path).map_err(|source| ApplyError::File {
                            name: name.clone(),
                            path: shown.clone(),
                            source,
                        })?;
                    header_value(&header.name, &text)
                        .map_err(|_| ApplyError::Value { name, path: shown })?
                }
            };
            request = request.header(header.name.clone(), value);
        }
        Ok(request)
    }

    /// A header given both with --prometheus-header and by another flag, with that flag.
    pub fn conflict(&self, authorization: bool) -> Option<(String, &'static str)> {
        self.headers.iter().find_map(|h| {
            if self.tenant.is_some() && h.name.as_str().eq_ignore_ascii_case(TENANT_HEADER) {
                Some((h.name.to_string(), "--prometheus-tenant"))
            } else if authorization && h.name == reqwest::header::AUTHORIZATION {
                Some((h.name.to_string(), "the bearer token or basic auth flags"))
            } else {
                None
            }
        })
    }
}

/// A bearer token read from its file on every request (so a rotated token is picked up) and basic
/// auth, as the Prometheus and the ruler flags give them; the file's path and error when it
/// cannot be read.
pub fn with_credentials(
    mut request: reqwest::RequestBuilder,
    bearer_token_file: Option<&std::path::Path>,
    basic_auth: Option<&(String, String)>,
) -> Result<reqwest::RequestBuilder, (String, std::io::Error)> {
    if let Some(path) = bearer_token_file {
        let token = std::fs::read_to_string(path).map_err(|e| (path.display().to_string(), e))?;
        request = request.bearer_auth(token.trim());
    }
    if let Some((user, password)) = basic_auth {
        request = request.basic_auth(user, Some(password));
    }
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenants_are_checked_as_mimir_checks_them() {
        assert_eq!(Tenant::parse("team-a").unwrap().as_str(), "team-a");
        assert_eq!(Tenant::parse("b.c_(1)*").unwrap().as_str(), "b.c_(1)*");
        for bad in ["", "a||b", "..", "a b", "a/b", &"x".repeat(151)] {
            let err = Tenant::parse(bad).unwrap_err();
            assert!(
                matches!(err, RequestError::Tenant { .. })
                    && err.to_string().contains("--prometheus-tenant"),
                "{bad}: {err}"
            );
        }
        let federated = Tenant::parse("a|b").unwrap_err();
        assert!(
            federated.to_string().contains("__tenant_id__"),
            "{federated}"
        );
    }

    #[test]
    fn headers_parse_inline_and_from_files_and_never_show_values() {
        let inline = Header::parse("X-Api-Key=s3cr3t").unwrap();
        assert_eq!(inline.name.as_str(), "x-api-key");
        assert!(matches!(&inline.value, HeaderValueSource::Inline(v) if v == "s3cr3t"));
        assert!(!format!("{inline:?}").contains("s3cr3t"));
        let file = Header::parse("Authorization=@/run/token").unwrap();
        assert!(file.value == HeaderValueSource::File(PathBuf::from("/run/token")));
        // `=@` alone is an empty file name: the value is the text `@`.
        assert!(matches!(
            Header::parse("X-At=@").unwrap().value,
            HeaderValueSource::Inline(_)
        ));
        let shapeless = Header::parse("s3cr3t").unwrap_err();
        assert!(!shapeless.to_string().contains("s3cr3t"), "{shapeless}");
        assert!(matches!(
            Header::parse("Bad Name=x"),
            Err(RequestError::Name { .. })
        ));
        assert!(matches!(
            Header::parse("X-A=a\u{7}b"),
            Err(RequestError::Value { .. })
        ));
        assert!(matches!(
            Header::parse("Host=evil"),
            Err(RequestError::Reserved { .. })
        ));
    }

    #[test]
    fn a_header_owned_by_another_flag_is_a_conflict() {
        let extras = Extras {
            tenant: Some(Tenant::parse("a").unwrap()),
            headers: vec![Header::parse("x-scope-orgid=b").unwrap()],
            partial_response: None,
        };
        assert_eq!(
            extras.conflict(false),
            Some(("x-scope-orgid".into(), "--prometheus-tenant"))
        );
        let auth = Extras {
            headers: vec![Header::parse("Authorization=Bearer x").unwrap()],
            ..Extras::default()
        };
        assert_eq!(auth.conflict(false), None);
        assert!(auth.conflict(true).is_some());
    }
}
