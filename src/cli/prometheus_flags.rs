//! How `run`, `validate`, `local` and `gate` reach Prometheus: one set of flags (names,
//! environment variables, help), so a connection that works in one command works in all. The
//! spellings `local` and `gate` had before (`--prometheus`, `--timeout`, `--bearer-token-file`)
//! stay as hidden aliases for a release.

use std::time::Duration;

use super::parse_duration;
use crate::prometheus::{Client, Error, Extras, Header, Settings, Tenant};

#[derive(Debug, Clone, clap::Args)]
pub struct PrometheusFlags {
    /// Prometheus to query, such as `http://prometheus-operated.monitoring:9090`. `run` reads
    /// the budgets from it (without it, only rules and the Ready condition are managed);
    /// `validate` checks there that the metrics the SLOs name exist.
    #[arg(
        long,
        env = "PLIMSOLL_PROMETHEUS_URL",
        value_name = "URL",
        alias = "prometheus"
    )]
    pub prometheus_url: Option<String>,
    /// Timeout of each Prometheus query.
    #[arg(
        long,
        env = "PLIMSOLL_PROMETHEUS_TIMEOUT",
        default_value = "10s",
        value_parser = parse_duration,
        alias = "timeout"
    )]
    pub prometheus_timeout: Duration,
    /// File with a bearer token for Prometheus (read on every query, so rotation works).
    #[arg(
        long,
        env = "PLIMSOLL_PROMETHEUS_BEARER_TOKEN_FILE",
        value_name = "FILE",
        alias = "bearer-token-file"
    )]
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
    #[arg(long, env = "PLIMSOLL_PROMETHEUS_CA_FILE", value_name = "FILE")]
    pub prometheus_ca_file: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub store: StoreFlags,
}

/// What the status queries carry for a distributed store (Thanos, Mimir, Cortex): shared by
/// `run`, `validate`, `local` and `gate`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct StoreFlags {
    /// Tenant of a Mimir or Cortex query frontend, sent as `X-Scope-OrgID`. One tenant: a
    /// federated read (`a|b`) labels every series with `__tenant_id__` and is refused.
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
        value_parser = |text: &str| Ok::<_, String>(HeaderArg(text.to_string()))
    )]
    pub prometheus_headers: Vec<HeaderArg>,
    /// Sends Thanos Query's `partial_response` parameter with this value on every query; `false`
    /// makes Thanos fail a query when a store does not answer, instead of answering without its
    /// data. Unset: nothing is sent. Any answer with warnings counts as no data either way.
    #[arg(long, env = "PLIMSOLL_PROMETHEUS_PARTIAL_RESPONSE", value_name = "BOOL", action = clap::ArgAction::Set)]
    pub prometheus_partial_response: Option<bool>,
}

/// A `--prometheus-header` as given. Checked after parsing, not by clap, whose errors quote the
/// value: it may be a secret.
#[derive(Clone)]
pub struct HeaderArg(String);

impl std::fmt::Debug for HeaderArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl StoreFlags {
    pub fn extras(&self) -> Result<Extras, Error> {
        let headers = self
            .prometheus_headers
            .iter()
            .map(|h| Header::parse(&h.0))
            .collect::<Result<_, _>>()?;
        Ok(Extras {
            tenant: self.prometheus_tenant.clone(),
            headers,
            partial_response: self.prometheus_partial_response,
        })
    }
}

fn parse_tenant(text: &str) -> Result<Tenant, String> {
    Tenant::parse(text).map_err(|e| e.to_string())
}

impl PrometheusFlags {
    /// The connection, when a URL is given.
    pub fn settings(&self) -> Option<Result<Settings, Error>> {
        let url = self.prometheus_url.as_ref()?;
        let extras = match self.store.extras() {
            Ok(extras) => extras,
            Err(e) => return Some(Err(e)),
        };
        Some(Ok(Settings {
            url: url.clone(),
            timeout: self.prometheus_timeout,
            bearer_token_file: self.prometheus_bearer_token_file.clone(),
            basic_auth: self
                .prometheus_user
                .clone()
                .zip(self.prometheus_password.clone()),
            ca_file: self.prometheus_ca_file.clone(),
            extras,
        }))
    }

    /// The client, when a URL is given.
    pub fn client(&self) -> Option<Result<Client, Error>> {
        self.settings().map(|s| s.and_then(Client::new))
    }

    /// The connection for a command that cannot work without one.
    pub fn required(&self) -> Result<Settings, String> {
        match self.settings() {
            Some(Ok(settings)) => Ok(settings),
            Some(Err(e)) => Err(e.to_string()),
            None => Err(
                "give Prometheus with --prometheus-url URL (or PLIMSOLL_PROMETHEUS_URL)"
                    .to_string(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        store: StoreFlags,
    }

    #[test]
    fn store_flags_parse_into_what_each_query_carries() {
        let cli = Cli::try_parse_from([
            "plimsoll",
            "--prometheus-tenant=a",
            "--prometheus-header=X-One=1",
            "--prometheus-header",
            "X-Two=@/run/two",
            "--prometheus-partial-response=false",
        ])
        .unwrap();
        let extras = cli.store.extras().unwrap();
        assert_eq!(extras.tenant.unwrap().as_str(), "a");
        let names: Vec<&str> = extras.headers.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["x-one", "x-two"]);
        assert_eq!(extras.partial_response, Some(false));
        let none = Cli::try_parse_from(["plimsoll"])
            .unwrap()
            .store
            .extras()
            .unwrap();
        assert_eq!(none, Extras::default());
    }

    #[test]
    fn bad_store_flags_are_refused_with_the_flag_named_and_no_secret_shown() {
        let err = |args: &[&str]| {
            let mut all = vec!["plimsoll"];
            all.extend_from_slice(args);
            match Cli::try_parse_from(all) {
                Err(e) => e.to_string(),
                Ok(cli) => cli.store.extras().err().unwrap().to_string(),
            }
        };
        assert!(err(&["--prometheus-tenant=a b"]).contains("a tenant ID is letters"));
        assert!(err(&["--prometheus-tenant=a|b"]).contains("names several tenants"));
        let shapeless = err(&["--prometheus-header=hunter2"]);
        assert!(
            shapeless.contains("NAME=VALUE") && !shapeless.contains("hunter2"),
            "{shapeless}"
        );
        assert!(err(&["--prometheus-partial-response=maybe"]).contains("maybe"));
    }
}
