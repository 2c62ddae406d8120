//! How `local` and `generate` reach a Mimir or Cortex ruler: one set of flags, credentials as
//! the Prometheus flags take them.

use std::time::Duration;

use super::parse_duration;
use crate::prometheus::Tenant;
use crate::prometheus::request::RequestError;
use crate::ruler::{Client, RulerError, Settings};

/// The tenant checked as Mimir checks IDs (as `--prometheus-tenant` is), so a typo fails at
/// startup rather than as the ruler's refusal of every request; one tenant only, since the rules
/// configuration API writes one tenant's groups.
fn parse_ruler_tenant(text: &str) -> Result<String, String> {
    match Tenant::parse(text) {
        Ok(tenant) => Ok(tenant.as_str().to_string()),
        Err(RequestError::Federated { .. }) => Err(format!(
            "{text:?} names several tenants; the ruler's configuration API writes the groups of \
             one tenant: give one"
        )),
        Err(RequestError::Tenant { problem, .. }) => Err(format!(
            "{text:?}: {problem}; a tenant ID is letters, digits and !-_.*'() (at most 150), such \
             as `team-a`"
        )),
        Err(other) => Err(other.to_string()),
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct RulerFlags {
    /// Write the rule groups to this ruler API instead of rule files: the rules configuration
    /// API's URL, such as `http://mimir:8080/prometheus/config/v1/rules` (Mimir) or
    /// `http://cortex:9009/api/v1/rules` (Cortex).
    #[arg(long, value_name = "URL", env = "PLIMSOLL_RULER_URL")]
    pub ruler_url: Option<String>,
    /// Tenant of the ruler's rule groups, sent as `X-Scope-OrgID` (needed when the ruler runs
    /// with multi-tenancy, as Mimir does by default).
    #[arg(
        long,
        value_name = "TENANT",
        env = "PLIMSOLL_TENANT",
        requires = "ruler_url",
        value_parser = parse_ruler_tenant
    )]
    pub tenant: Option<String>,
    /// Put SLO namespace `NS`'s groups in ruler namespace `<PREFIX>NS`. Plimsoll deletes its
    /// stale groups only in namespaces with this prefix: give each Plimsoll that writes to one
    /// tenant its own prefix.
    #[arg(
        long,
        value_name = "PREFIX",
        default_value = "",
        env = "PLIMSOLL_RULER_NAMESPACE_PREFIX"
    )]
    pub ruler_namespace_prefix: String,
    /// Timeout of each ruler request.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub ruler_timeout: Duration,
    /// File with a bearer token for the ruler (read on every request, so rotation works).
    #[arg(long, env = "PLIMSOLL_RULER_BEARER_TOKEN_FILE")]
    pub ruler_bearer_token_file: Option<std::path::PathBuf>,
    /// User for basic auth to the ruler; the password comes from PLIMSOLL_RULER_PASSWORD.
    #[arg(long, env = "PLIMSOLL_RULER_USER", requires = "ruler_password")]
    pub ruler_user: Option<String>,
    /// Password for basic auth to the ruler.
    #[arg(long, env = "PLIMSOLL_RULER_PASSWORD", hide_env_values = true)]
    pub ruler_password: Option<String>,
    /// PEM file with the CA of the ruler's TLS certificate.
    #[arg(long, env = "PLIMSOLL_RULER_CA_FILE")]
    pub ruler_ca_file: Option<std::path::PathBuf>,
}

impl RulerFlags {
    /// The ruler's settings, when a URL is given.
    pub fn settings(&self) -> Option<Settings> {
        let url = self.ruler_url.as_ref()?;
        Some(Settings {
            url: url.clone(),
            tenant: self.tenant.clone(),
            timeout: self.ruler_timeout,
            bearer_token_file: self.ruler_bearer_token_file.clone(),
            basic_auth: self.ruler_user.clone().zip(self.ruler_password.clone()),
            ca_file: self.ruler_ca_file.clone(),
        })
    }

    /// The client, when a URL is given.
    pub fn client(&self) -> Option<Result<Client, RulerError>> {
        self.settings().map(Client::new)
    }
}

#[cfg(test)]
mod tests {
    use super::parse_ruler_tenant;

    #[test]
    fn the_tenant_is_checked_as_mimir_checks_it() {
        assert_eq!(parse_ruler_tenant("team-a"), Ok("team-a".to_string()));
        let federated = parse_ruler_tenant("a|b").unwrap_err();
        assert!(federated.contains("names several tenants"), "{federated}");
        let bad = parse_ruler_tenant("team a").unwrap_err();
        assert!(
            bad.contains("a character Mimir refuses") && !bad.contains("--prometheus-tenant"),
            "{bad}"
        );
    }
}
