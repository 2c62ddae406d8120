//! `plimsoll local`: Plimsoll without Kubernetes, for a Prometheus that reads rule files.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::prometheus_flags::PrometheusFlags;
use super::ruler_flags::RulerFlags;
use super::{EXIT_ERROR, EXIT_OK, parse_duration};
use crate::local::{self, Outcome, RulesTo, Settings};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directories (or files) with SLO manifests; read again whenever a file changes.
    /// Repeatable. (`--slos` is the old spelling.)
    #[arg(
        short = 'f',
        long = "filename",
        value_name = "PATH",
        required = true,
        num_args = 1..,
        alias = "slos"
    )]
    pub filenames: Vec<PathBuf>,
    /// Directory for the rule files, one per SLO; point Prometheus' `rule_files` at
    /// `<dir>/*.yaml`. Files without Plimsoll's header are left alone. Or `--ruler-url`.
    #[arg(
        long,
        value_name = "DIR",
        required_unless_present = "ruler_url",
        conflicts_with = "ruler_url"
    )]
    pub rules_out: Option<PathBuf>,
    /// Time between rounds (read SLOs, write rules, evaluate budgets, print the table).
    #[arg(long, default_value = "1m", value_parser = parse_duration)]
    pub interval: Duration,
    /// Address of /status (JSON), /flagger/rollback and /healthz.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// One round: print the table and exit (0; 2 when Prometheus cannot be read, no SLO's budget
    /// could be measured, files cannot be read or written, or the ruler did not take every
    /// group). Serves nothing.
    #[arg(long)]
    pub once: bool,
    /// The UI's address as people reach it, such as `https://slo.example.com`: alerts get a
    /// `plimsoll_url` annotation linking to their SLO's page.
    #[arg(long, value_name = "URL", env = "PLIMSOLL_UI_URL")]
    pub ui_url: Option<String>,
    /// Namespace for SLOs whose manifest names none.
    #[arg(short, long, default_value = "default")]
    pub namespace: String,
    /// Prometheus, which reads the rule files and answers the budget queries (required).
    #[command(flatten)]
    pub prometheus: PrometheusFlags,
    /// Label matchers that scope every budget reading to this cluster or tenant, such as
    /// `cluster="a"`: behind Thanos, Mimir or federation, the external labels that tell this
    /// cluster's series apart. As `plimsoll run`'s.
    #[arg(long, env = "PLIMSOLL_READING_SELECTOR", value_parser = super::parse_scope, default_value = "")]
    pub reading_selector: crate::prometheus::ReadingScope,
    /// `partial_response_strategy` (`warn` or `abort`) on the groups of every SLO that sets no
    /// `spec.partialResponseStrategy`, for a Thanos Ruler reading the rule files (a plain
    /// Prometheus refuses them then). Unset: written only for SLOs that set it.
    #[arg(long, value_enum)]
    pub partial_response_strategy: Option<crate::api::PartialResponseStrategy>,
    /// With `--ruler-url`: the rule groups go to a Mimir or Cortex ruler every round instead of
    /// rule files.
    #[command(flatten)]
    pub ruler: RulerFlags,
}

pub fn run(args: &Args, out: &mut impl Write, err: &mut impl Write) -> u8 {
    let prometheus = match args.prometheus.required() {
        Ok(settings) => settings,
        Err(e) => {
            let _ = writeln!(err, "plimsoll local: {e}");
            return EXIT_ERROR;
        }
    };
    let rules = match (args.ruler.settings(), &args.rules_out) {
        (Some(settings), _) => RulesTo::Ruler {
            settings,
            prefix: args.ruler.ruler_namespace_prefix.clone(),
        },
        (None, Some(dir)) => RulesTo::Files(dir.clone()),
        (None, None) => {
            let _ = writeln!(
                err,
                "plimsoll local: give --rules-out DIR or --ruler-url URL"
            );
            return EXIT_ERROR;
        }
    };
    let settings = Settings {
        slos: args.filenames.clone(),
        rules,
        namespace: args.namespace.clone(),
        interval: args.interval,
        listen: Some(args.listen),
        once: args.once,
        ui_url: args.ui_url.clone(),
        partial_response_strategy: args.partial_response_strategy,
        prometheus,
        reading_scope: args.reading_selector.clone(),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            let _ = writeln!(err, "plimsoll local: cannot start the async runtime: {e}");
            return EXIT_ERROR;
        }
    };
    let result = runtime.block_on(local::run(settings, out, err, shutdown()));
    match result {
        Ok(Outcome::Done) => EXIT_OK,
        Ok(Outcome::Incomplete) => EXIT_ERROR,
        Err(e) => {
            let _ = writeln!(err, "plimsoll local: {e}");
            EXIT_ERROR
        }
    }
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
