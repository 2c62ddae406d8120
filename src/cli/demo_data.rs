//! `plimsoll demo-data` (hidden; `make demo` runs it).
//!
//! `write` writes the demo's synthetic month as OpenMetrics and the backfill plan of the SLOs'
//! recording rules as rule files, and prints the time range as `KEY=value` lines for the script.
//!
//! `record` evaluates the recording rules of a rule file over a time range with one range query
//! per rule against a running Prometheus, and writes the results as OpenMetrics for
//! `promtool tsdb create-blocks-from openmetrics`. It is what `promtool tsdb create-blocks-from
//! rules` does, at the speed a demo needs: promtool writes one block per rule and 2 hours, which
//! for a month of the demo's 5m counts is 2,166 blocks and 100 s on a 2-core machine.

use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::{EXIT_ERROR, EXIT_INVALID, EXIT_OK};
use crate::demo::{self, AHEAD, LEAD_IN, SCRAPE, WINDOW};
use crate::manifests::{self, Decoded, Outcome};
use crate::prometheus;
use crate::rules::{self, Rule, RuleGroup};
use crate::synthetic::write_openmetrics;

#[derive(Debug, clap::Subcommand)]
pub enum Args {
    /// Write the synthetic month and the backfill plan's rule files.
    Write(WriteArgs),
    /// Evaluate a rule file's recording rules over a range and write the results as OpenMetrics.
    Record(RecordArgs),
    /// Exit 0 when Prometheus is ready to serve queries, 1 otherwise.
    Ready(ReadyArgs),
}

#[derive(Debug, clap::Args)]
pub struct ReadyArgs {
    #[arg(long, value_name = "URL")]
    pub prometheus: String,
}

#[derive(Debug, clap::Args)]
pub struct RecordArgs {
    /// Prometheus holding what the rules read.
    #[arg(long, value_name = "URL")]
    pub prometheus: String,
    /// Rule file whose recording rules to evaluate.
    #[arg(long, value_name = "FILE")]
    pub rules: PathBuf,
    /// First instant, Unix seconds; rounded up to each group's interval.
    #[arg(long, value_name = "UNIX_SECONDS")]
    pub start: u64,
    /// Last instant, Unix seconds.
    #[arg(long, value_name = "UNIX_SECONDS")]
    pub end: u64,
    /// Evaluate this many milliseconds past each interval's grid point, as a rule group whose
    /// evaluation offset it is (Prometheus derives one from a hash of the group; vmalert aligns
    /// evaluations to the grid, offset 0).
    #[arg(long, value_name = "MILLISECONDS", default_value_t = 0)]
    pub offset_ms: u64,
    /// OpenMetrics file to write.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct WriteArgs {
    /// Directory with the demo's SLO manifests.
    #[arg(long, value_name = "DIR", default_value = "demo/slos")]
    pub slos: PathBuf,
    /// Directory to write `traffic.om`, `counts-<n>.yaml` and `stage-<n>.yaml` into.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// End of the data, Unix seconds; default: 10 minutes from now.
    #[arg(long, value_name = "UNIX_SECONDS")]
    pub end: Option<u64>,
    /// Namespace for SLOs whose manifest names none.
    #[arg(short, long, default_value = "default")]
    pub namespace: String,
}

#[derive(Debug, thiserror::Error)]
enum DemoDataError {
    #[error("{0}")]
    Load(#[from] manifests::LoadError),
    #[error("{path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Rules(#[from] rules::OutputError),
    #[error("the system clock is before 1970")]
    Clock,
    #[error("{path}: not a rule file: {message}")]
    RuleFile { path: String, message: String },
    #[error("group {group}: interval {interval:?}: {source}")]
    Interval {
        group: String,
        interval: String,
        source: crate::model::DurationError,
    },
    #[error("record {record}: {source}")]
    Query {
        record: String,
        source: prometheus::Error,
    },
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
}

pub fn run(args: &Args, out: &mut impl Write, err: &mut impl Write) -> u8 {
    let result = match args {
        Args::Write(args) => write_all(args, out, err),
        Args::Record(args) => record(args).map(|()| true),
        Args::Ready(args) => ready(args),
    };
    match result {
        Ok(true) => EXIT_OK,
        Ok(false) => EXIT_INVALID,
        Err(e) => {
            let _ = writeln!(err, "plimsoll demo-data: {e}");
            EXIT_ERROR
        }
    }
}

fn write_all(
    args: &WriteArgs,
    out: &mut impl Write,
    err: &mut impl Write,
) -> Result<bool, DemoDataError> {
    let files = manifests::expand(std::slice::from_ref(&args.slos))?;
    let (checked, io_errors) = manifests::check_files(&files);
    if let Some(e) = io_errors.into_iter().next() {
        return Err(e.into());
    }
    let mut groups: Vec<RuleGroup> = Vec::new();
    for doc in checked {
        match doc.outcome {
            Outcome::Decoded(Decoded::Valid(valid)) => {
                let slo = valid.1;
                let namespace = slo.namespace.clone().unwrap_or(args.namespace.clone());
                groups.extend(rules::render(&slo, &namespace));
            }
            Outcome::Decoded(Decoded::Other { .. }) => {}
            Outcome::Decoded(Decoded::Invalid(errors)) => {
                for e in errors.iter() {
                    let _ = writeln!(err, "{}: {e}", doc.location);
                }
                return Ok(false);
            }
            Outcome::Malformed(message) => {
                let _ = writeln!(err, "{}: (yaml): {message}", doc.location);
                return Ok(false);
            }
        }
    }
    let end = match args.end {
        Some(end) => end,
        None => {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_err(|_| DemoDataError::Clock)?
                .as_secs();
            now / SCRAPE * SCRAPE + AHEAD
        }
    };
    let duration = WINDOW + LEAD_IN;
    let start = end.saturating_sub(duration);

    let traffic = args.out.join("traffic.om");
    write_file(&traffic, |w| {
        write_openmetrics(&demo::services(duration), start, duration, SCRAPE, w)
    })?;
    let plan = demo::backfill_plan(&groups);
    for (i, counts) in plan.counts.iter().enumerate() {
        let text = rules::rule_file(counts)?;
        let path = args.out.join(format!("counts-{}.yaml", i + 1));
        write_file(&path, |w| w.write_all(text.as_bytes()))?;
    }
    for (i, stage) in plan.stages.iter().enumerate() {
        let text = rules::rule_file(stage)?;
        let path = args.out.join(format!("stage-{}.yaml", i + 1));
        write_file(&path, |w| w.write_all(text.as_bytes()))?;
    }
    let _ = writeln!(out, "START={start}");
    let _ = writeln!(out, "END={end}");
    let _ = writeln!(out, "COUNT_STAGES={}", plan.counts.len());
    let _ = writeln!(out, "STAGES={}", plan.stages.len());
    Ok(true)
}

fn write_file(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<std::fs::File>) -> std::io::Result<()>,
) -> Result<(), DemoDataError> {
    let wrap = |source| DemoDataError::Write {
        path: path.display().to_string(),
        source,
    };
    let mut w = BufWriter::new(std::fs::File::create(path).map_err(wrap)?);
    fill(&mut w).map_err(wrap)?;
    w.flush().map_err(wrap)
}

#[derive(serde::Deserialize)]
struct RuleFile {
    groups: Vec<RuleGroup>,
}

fn runtime() -> Result<tokio::runtime::Runtime, DemoDataError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(DemoDataError::Runtime)
}

fn client(url: &str) -> Result<prometheus::Client, DemoDataError> {
    prometheus::Client::new(prometheus::Settings::new(
        url,
        std::time::Duration::from_secs(60),
    ))
    .map_err(|source| DemoDataError::Query {
        record: "(client)".into(),
        source,
    })
}

fn ready(args: &ReadyArgs) -> Result<bool, DemoDataError> {
    let client = client(&args.prometheus)?;
    Ok(runtime()?.block_on(client.ready()).unwrap_or(false))
}

fn record(args: &RecordArgs) -> Result<(), DemoDataError> {
    let path = args.rules.display().to_string();
    let text = std::fs::read_to_string(&args.rules).map_err(|source| DemoDataError::Write {
        path: path.clone(),
        source,
    })?;
    let file: RuleFile = serde_saphyr::from_str(&text).map_err(|e| DemoDataError::RuleFile {
        path: path.clone(),
        message: e.to_string(),
    })?;
    let client = client(&args.prometheus)?;
    let runtime = runtime()?;
    // Every rule's answer, by record name, so each metric family is written in one piece.
    let mut answers: BTreeMap<&str, Vec<(&Rule, Vec<prometheus::Series>)>> = BTreeMap::new();
    for group in &file.groups {
        let interval = crate::model::Duration::parse(&group.interval, "hms").map_err(|source| {
            DemoDataError::Interval {
                group: group.name.clone(),
                interval: group.interval.clone(),
                source,
            }
        })?;
        let step = interval.as_secs().max(1);
        let offset = args.offset_ms % (step * 1000);
        // The first grid point plus offset at or after the start.
        let start_ms = (args.start * 1000)
            .saturating_sub(offset)
            .div_ceil(step * 1000)
            * step
            * 1000
            + offset;
        for rule in &group.rules {
            let Some(name) = rule.record.as_deref() else {
                continue;
            };
            let series = runtime
                .block_on(client.query_range_ms(
                    &rule.expr,
                    start_ms,
                    args.end * 1000,
                    std::time::Duration::from_secs(step),
                ))
                .map_err(|source| DemoDataError::Query {
                    record: name.to_string(),
                    source,
                })?;
            answers.entry(name).or_default().push((rule, series));
        }
    }
    write_file(&args.out, |w| {
        for (name, rules) in &answers {
            demo::write_recorded(name, rules, w)?;
        }
        writeln!(w, "# EOF")
    })
}
