//! How `run` and `validate` reach Prometheus: one set of flags, so credentials work the same in
//! the operator and in a pre-commit check.

use std::time::Duration;

use super::parse_duration;
use crate::prometheus::{Client, Error, Settings};

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
        }))
    }
}
