//! `plimsoll validate`: the same checks as the operator, before anything reaches a cluster. Fit
//! for pre-commit hooks (files as arguments) and CI (directories).

use std::io::Write;
use std::path::PathBuf;

use crate::manifests::{self, Decoded, Outcome};
use crate::model::{self, Slo};
use crate::prometheus::series_check::{self, Severity};

use super::prometheus_flags::PrometheusFlags;
use super::{EXIT_ERROR, EXIT_INVALID, EXIT_OK};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Files or directories to check (directories recursively: .yaml, .yml, .json); `-` reads
    /// standard input. Repeatable.
    #[arg(short = 'f', long = "filename", value_name = "PATH", num_args = 1..)]
    pub filenames: Vec<PathBuf>,
    /// More paths, as pre-commit passes them.
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Namespace of SLOs whose manifest names none, as `generate` and `local` place them; two
    /// definitions of one namespace/name are refused.
    #[arg(short, long, default_value = "default")]
    pub namespace: String,
    /// Print only problems, no summary.
    #[arg(short, long)]
    pub quiet: bool,
    /// Warnings fail the check too: a valid SLO that is most likely not meant (a latency
    /// threshold over 60 seconds) and, with --prometheus-url, what Prometheus shows (no error
    /// series yet, a groupBy label on only some series, a query that returns nothing now).
    #[arg(long)]
    pub strict: bool,
    #[command(flatten)]
    pub prometheus: PrometheusFlags,
}

#[derive(Default)]
struct Tally {
    valid: usize,
    invalid: usize,
    other: usize,
    io_errors: usize,
    warnings: usize,
    live_errors: usize,
    live_warnings: usize,
}

pub fn run(args: &Args, out: &mut impl Write, err: &mut impl Write) -> u8 {
    let inputs: Vec<PathBuf> = args.filenames.iter().chain(&args.paths).cloned().collect();
    if inputs.is_empty() {
        let _ = writeln!(
            err,
            "plimsoll validate: no input; give files or directories with -f, or - for stdin"
        );
        return EXIT_ERROR;
    }
    let mut tally = Tally::default();
    let files = match manifests::expand(&inputs) {
        Ok(files) => files,
        Err(e) => {
            let _ = writeln!(err, "plimsoll validate: {e}");
            return EXIT_ERROR;
        }
    };
    let (checked, io_errors) = manifests::check_files(&files);
    for e in &io_errors {
        let _ = writeln!(err, "plimsoll validate: {e}");
    }
    tally.io_errors = io_errors.len();
    let valid = report(checked, &args.namespace, &mut tally, out);
    let checked_live = match args.prometheus.client() {
        None => None,
        Some(Err(e)) => {
            let _ = writeln!(err, "plimsoll validate: --prometheus-url: {e}");
            return EXIT_ERROR;
        }
        Some(Ok(client)) => match live(&client, &valid, &mut tally, out) {
            Ok(()) => Some(client.url().to_string()),
            Err(e) => {
                let _ = writeln!(err, "plimsoll validate: {e}");
                return EXIT_ERROR;
            }
        },
    };
    if !args.quiet {
        summary(&tally, files.len(), checked_live.as_deref(), err);
    }
    let warned = tally.warnings + tally.live_warnings > 0;
    let failed_live = tally.live_errors > 0 || (args.strict && warned);
    if tally.io_errors > 0 {
        EXIT_ERROR
    } else if tally.invalid > 0 || failed_live {
        EXIT_INVALID
    } else {
        EXIT_OK
    }
}

/// Prints each document's problems and counts the verdicts; returns the valid SLOs with where
/// they are. A second definition of one SLO is a problem of the second.
fn report(
    checked: Vec<manifests::Checked>,
    default_namespace: &str,
    tally: &mut Tally,
    out: &mut impl Write,
) -> Vec<(String, Slo)> {
    let mut definitions = manifests::Definitions::default();
    let mut valid = Vec::new();
    for doc in checked {
        match doc.outcome {
            Outcome::Decoded(Decoded::Valid(decoded)) => {
                let slo = decoded.1;
                let namespace = slo.namespace.as_deref().unwrap_or(default_namespace);
                match definitions.claim(namespace, &slo.name, &doc.location) {
                    Ok(()) => {
                        tally.valid += 1;
                        for advice in model::advise(&slo) {
                            tally.warnings += 1;
                            let _ = writeln!(
                                out,
                                "{}: {}: warning: {}",
                                doc.location, advice.path, advice.message
                            );
                        }
                        valid.push((doc.location, slo));
                    }
                    Err(twice) => {
                        tally.invalid += 1;
                        let _ = writeln!(out, "{}: {twice}", doc.location);
                    }
                }
            }
            Outcome::Decoded(Decoded::Other { .. }) => tally.other += 1,
            Outcome::Decoded(Decoded::Invalid(errors)) => {
                tally.invalid += 1;
                for e in errors.iter() {
                    let _ = writeln!(out, "{}: {e}", doc.location);
                }
            }
            Outcome::Malformed(message) => {
                tally.invalid += 1;
                let _ = writeln!(out, "{}: (yaml): {message}", doc.location);
            }
        }
    }
    valid
}

/// The summary line on stderr.
fn summary(tally: &Tally, files: usize, checked_live: Option<&str>, err: &mut impl Write) {
    let other = match tally.other {
        0 => String::new(),
        n => format!("; {n} other document(s) skipped"),
    };
    let warnings = match tally.warnings {
        0 => String::new(),
        n => format!("; {n} warning(s)"),
    };
    let live = match checked_live {
        Some(url) => format!(
            "; against {url}: {} error(s), {} warning(s)",
            tally.live_errors, tally.live_warnings
        ),
        None => String::new(),
    };
    let _ = writeln!(
        err,
        "{} valid, {} invalid ServiceLevelObjective(s) in {files} file(s){warnings}{other}{live}",
        tally.valid, tally.invalid
    );
}

/// Why the check against Prometheus could not be made.
#[derive(Debug, thiserror::Error)]
enum LiveError {
    #[error("cannot start the runtime for Prometheus queries: {0}")]
    Runtime(#[source] std::io::Error),
    #[error(transparent)]
    Prometheus(#[from] crate::prometheus::Error),
}

/// Checks each valid SLO's series in Prometheus and prints the findings, marked `error:` or
/// `warning:`.
fn live(
    client: &crate::prometheus::Client,
    valid: &[(String, Slo)],
    tally: &mut Tally,
    out: &mut impl Write,
) -> Result<(), LiveError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(LiveError::Runtime)?;
    for (location, slo) in valid {
        for finding in runtime.block_on(series_check::check(client, slo))? {
            match finding.severity {
                Severity::Error => tally.live_errors += 1,
                Severity::Warning => tally.live_warnings += 1,
            }
            let _ = writeln!(
                out,
                "{location}: {}: {}: {}",
                finding.path,
                finding.severity.as_str(),
                finding.message
            );
        }
    }
    Ok(())
}
