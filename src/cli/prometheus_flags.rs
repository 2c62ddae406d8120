//! How `run` and `validate` (and, for the store flags, `local` and `gate`) reach Prometheus: one set of flags, so credentials work the same in
//! the operator and in a pre-commit check.

use std::time::Duration;

use super::parse_duration;
use crate::prometheus::{Client, Error, Extras, Header, Settings, Tenant};

#[derive(Debug, Clone, clap::Args)]
pub struct PrometheusFlags {
    /// Prometheus to query, such as `http://prometheus-operated.monitoring:9090`. `run` reads
    /// the budgets from it (without it, only rules and the Ready condition are managed);
    /// `validate` checks there that the metrics the SLOs name exist.
    #[arg(long, env = "PLIMSOLL_PROMETHEUS_URL")]
    pub prometheus_url: Option<String>,
    /// Timeout of each Prometheus query.
    #[arg(long, env = "PLIMSOLL_PROMETHEUS_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub prometheus_timeout: Duration,
    /// File with a bearer token for Prometheus (read on every query, so rotation works).
    #[arg(long, env = "PLIMSOLL_PROMETHEUS_BEARER_TOKEN_FILE")]
    pub prometheus_bearer_token_file: Option<std::path::PathBuf>,
    /// User for basic auth to Prometheus; the password comes from PLIMSOLL_PROMETHEUS_PASSWORD.
    #[arg(
        long,
        env = "PLIMSOLL_PROMETHEUS_USER",
        requires = "prometheus_password"
    )]
    pub prometheus_user: Option<String>,
    /// Password for basic auth to Prometheus.
    #[arg(long, env = "PLIMSOLL_PROMETHEUS_PASSWORD", hide_env_values = true)]
    pub prometheus_password: Option<String>,
    /// PEM file with the CA of Prometheus' TLS certificate.
    #[arg(long, env = "PLIMSOLL_PROMETHEUS_CA_FILE")]
    pub prometheus_ca_file: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub store: StoreFlags,
}

/// What the status queries carry for a distributed store (Thanos, Mimir, Cortex): shared by
/// `run`, `validate`, `local` and `gate`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct StoreFlags {
    /// Tenant of a Mimir or Cortex query frontend, sent as `X-Scope-OrgID`; several joined with
    /// `|` for Mimir's tenant federation, such as `team-a|team-b`.
    #[arg(long, env = "PLIMSOLL_PROMETHEUS_TENANT", value_name = "TENANT", value_parser = parse_tenant)]
    pub prometheus_tenant: Option<Tenant>,
    /// Extra header on every query, `NAME=VALUE`, or `NAME=@FILE` to read the value from a file
    /// on every query (for secrets; values are never logged). Repeatable; in the environment,
    /// one per line.
    #[arg(
        long = "prometheus-header",
        env = "PLIMSOLL_PROMETHEUS_HEADERS",
        value_name = "NAME=VALUE",
        value_delimiter = '\n',
        hide_env_values = true,
        value_parser = parse_header
    )]
    pub prometheus_headers: Vec<Header>,
    /// Sends Thanos Query's `partial_response` parameter with this value on every query; `false`
    /// makes Thanos fail a query when a store does not answer, instead of answering without its
    /// data. Unset: nothing is sent. Any answer with warnings counts as no data either way.
    #[arg(long, env = "PLIMSOLL_PROMETHEUS_PARTIAL_RESPONSE", value_name = "BOOL", action = clap::ArgAction::Set)]
    pub prometheus_partial_response: Option<bool>,
}

impl StoreFlags {
    pub fn extras(&self) -> Extras {
        Extras {
            tenant: self.prometheus_tenant.clone(),
            headers: self.prometheus_headers.clone(),
            partial_response: self.prometheus_partial_response,
        }
    }
}

fn parse_tenant(text: &str) -> Result<Tenant, String> {
    Tenant::parse(text).map_err(|e| e.to_string())
}

fn parse_header(text: &str) -> Result<Header, String> {
    Header::parse(text).map_err(|e| e.to_string())
}

impl PrometheusFlags {
    /// The client, when a URL is given.
    pub fn client(&self) -> Option<Result<Client, Error>> {
        let url = self.prometheus_url.as_ref()?;
        Some(Client::new(Settings {
            url: url.clone(),
            timeout: self.prometheus_timeout,
            bearer_token_file: self.prometheus_bearer_token_file.clone(),
            basic_auth: self
                .prometheus_user
                .clone()
                .zip(self.prometheus_password.clone()),
            ca_file: self.prometheus_ca_file.clone(),
            extras: self.store.extras(),
        }))
    }
}
