//! `plimsoll gate`: a release gate for CI/CD pipelines and Argo CD PreSync hooks. Exit 0 when
//! enough budget is left, 1 when not, 2 when nobody can tell (no data, Prometheus down, no SLO).

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use kube::Api;
use tracing::debug;

use super::{EXIT_ERROR, EXIT_INVALID, EXIT_OK, parse_duration};
use crate::api::ServiceLevelObjective;
use crate::evaluator;
use crate::manifests::{self, Decoded, Outcome};
use crate::model::{self, Slo};
use crate::prometheus;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The SLO, as `<namespace>/<name>`.
    #[arg(long, value_name = "NAMESPACE/NAME")]
    pub slo: String,
    /// Pass only with at least this much error budget left, in percent of the whole budget.
    #[arg(long, value_name = "PERCENT")]
    pub min_budget: f64,
    /// Read the SLO from these manifests instead of the cluster.
    #[arg(short = 'f', long = "filename", value_name = "PATH")]
    pub filenames: Vec<PathBuf>,
    /// Prometheus that evaluates the SLO's rules.
    #[arg(long, env = "PLIMSOLL_PROMETHEUS_URL")]
    pub prometheus_url: String,
    /// Timeout of each Prometheus query.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// File with a bearer token for Prometheus.
    #[arg(long, env = "PLIMSOLL_PROMETHEUS_BEARER_TOKEN_FILE")]
    pub bearer_token_file: Option<PathBuf>,
    #[command(flatten)]
    pub store: super::prometheus_flags::StoreFlags,
}

/// The gate's answer.
enum Verdict {
    Pass(String),
    Fail(String),
    Unknown(String),
}

pub fn run(args: &Args, out: &mut impl Write, err: &mut impl Write) -> u8 {
    let verdict = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(judge(args)),
        Err(e) => Verdict::Unknown(format!("cannot start the async runtime: {e}")),
    };
    match verdict {
        Verdict::Pass(line) => {
            let _ = writeln!(out, "PASS {line}");
            EXIT_OK
        }
        Verdict::Fail(line) => {
            let _ = writeln!(out, "FAIL {line}");
            EXIT_INVALID
        }
        Verdict::Unknown(line) => {
            let _ = writeln!(err, "UNKNOWN {line}");
            EXIT_ERROR
        }
    }
}

async fn judge(args: &Args) -> Verdict {
    let Some((namespace, name)) = args.slo.split_once('/') else {
        return Verdict::Unknown(format!("--slo {:?}: use <namespace>/<name>", args.slo));
    };
    let slo = match load(args, namespace, name).await {
        Ok(slo) => slo,
        Err(e) => return Verdict::Unknown(format!("{}: {e}", args.slo)),
    };
    let client = args.store.extras().and_then(|extras| {
        prometheus::Client::new(prometheus::Settings {
            bearer_token_file: args.bearer_token_file.clone(),
            extras,
            ..prometheus::Settings::new(args.prometheus_url.clone(), args.timeout)
        })
    });
    let client = match client {
        Ok(c) => c,
        Err(e) => return Verdict::Unknown(e.to_string()),
    };
    let now = k8s_openapi::jiff::Timestamp::now();
    let own = [(namespace.to_string(), slo.clone())];
    let scope = prometheus::ReadingScope::default();
    let readings = match prometheus::read_for(&client, &scope, &own, now).await {
        Ok(r) => r,
        Err(e) => {
            let e = e.message;
            return Verdict::Unknown(format!("{}: no answer, not deciding: {e}", args.slo));
        }
    };
    let a = match evaluator::judge(&slo, namespace, &Ok(readings), now).verdict {
        Ok(a) => a,
        Err(e) => return Verdict::Unknown(format!("{}: {e}; not deciding", args.slo)),
    };
    debug!(?a, "gate assessment");
    let line = format!(
        "{}: {:.1}% of the error budget left (SLI {:.4}%, objective {}% over {}); the gate needs {}%",
        args.slo,
        a.remaining,
        a.sli,
        slo.objective,
        slo.window.rolling_equivalent(),
        args.min_budget
    );
    if a.remaining >= args.min_budget {
        Verdict::Pass(line)
    } else {
        Verdict::Fail(line)
    }
}

async fn load(args: &Args, namespace: &str, name: &str) -> Result<Slo, String> {
    if !args.filenames.is_empty() {
        let files = manifests::expand(&args.filenames).map_err(|e| e.to_string())?;
        let (checked, errors) = manifests::check_files(&files);
        if let Some(e) = errors.first() {
            return Err(e.to_string());
        }
        for doc in checked {
            if let Outcome::Decoded(Decoded::Valid(valid)) = doc.outcome {
                let slo = valid.1;
                let ns = slo.namespace.as_deref().unwrap_or("default");
                if ns == namespace && slo.name == name {
                    return Ok(slo);
                }
            }
        }
        return Err("no valid SLO of that name in the given files".into());
    }
    let client = kube::Client::try_default()
        .await
        .map_err(|e| format!("no cluster to read the SLO from (give -f, or a kubeconfig): {e}"))?;
    let api: Api<ServiceLevelObjective> = Api::namespaced(client, namespace);
    let object = api.get(name).await.map_err(|e| e.to_string())?;
    model::validate(&object).map_err(|e| format!("invalid spec: {e}"))
}
