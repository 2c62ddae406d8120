//! The `plimsoll` command line: one function per subcommand, each returning the exit code.

pub mod crd;
pub mod demo_data;
pub mod gate;
pub mod generate;
pub mod import;
pub mod local;
pub mod prometheus_flags;
pub mod ruler_flags;
pub mod ruler_sync;
pub mod run;
pub mod validate;

use clap::{Parser, Subcommand};

/// Exit code: everything checked out.
pub const EXIT_OK: u8 = 0;
/// Exit code: the input has problems (invalid SLOs).
pub const EXIT_INVALID: u8 = 1;
/// Exit code: the command could not do its work (usage, I/O).
pub const EXIT_ERROR: u8 = 2;

/// Plimsoll: ServiceLevelObjectives in, Prometheus rules, live error budgets and rollback signals
/// out.
#[derive(Debug, Parser)]
#[command(name = "plimsoll", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the ServiceLevelObjective CustomResourceDefinition as YAML.
    Crd,
    /// Check SLO manifests: exit 0 when all are valid, 1 when any is invalid, 2 on usage or I/O
    /// errors. Prints `<file>[#doc]: <field>: <problem>` per problem.
    Validate(Box<validate::Args>),
    /// Render the Prometheus rules of SLO manifests: a plain rule file, PrometheusRule or VMRule
    /// objects, or (with --ruler-url) the groups written to a Mimir or Cortex ruler.
    Generate(generate::Args),
    /// Convert Sloth, Pyrra and OpenSLO SLOs into Plimsoll SLO manifests: exit 0 when all
    /// converted, 1 when some SLO could not be (each reported by file, document and field).
    Import(import::Args),
    /// Release gate: exit 0 with enough error budget left, 1 without, 3 when unknown (2: a usage
    /// error).
    Gate(Box<gate::Args>),
    /// Run the operator: reconcile SLOs into PrometheusRules and status, with leader election.
    Run(Box<run::Args>),
    /// Without Kubernetes: SLO manifests from a directory, rule files for Prometheus, live
    /// budgets and rollback decisions as a table, on /status and on Flagger's webhook.
    Local(Box<local::Args>),
    /// Write the demo's synthetic month and backfill rule files (`make demo` runs this).
    #[command(hide = true)]
    #[command(subcommand)]
    DemoData(demo_data::Args),
}

/// The command line as `plimsoll` parses it. `validate` is an offline check unless told
/// otherwise: PLIMSOLL_PROMETHEUS_URL, which `run`, `gate` and `local` read, does not turn it
/// into an online one (a pre-commit hook would then fail whenever Prometheus is away).
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    Cli::command().mut_subcommand("validate", |validate| {
        validate.mut_arg("prometheus_url", |url| url.env(None::<&'static str>))
    })
}

/// Parses the process' arguments (exits with clap's message and code 2 on a usage error).
pub fn parse() -> Cli {
    use clap::FromArgMatches;
    let matches = command().get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// Parses `args` as `plimsoll` would.
pub fn try_parse_from<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    use clap::FromArgMatches;
    Cli::from_arg_matches(&command().try_get_matches_from(args)?)
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> u8 {
    // The operator logs from many threads: it must not hold the stderr lock for its lifetime.
    if let Command::Run(args) = cli.command {
        return run::run(*args, &mut std::io::stderr());
    }
    let stdout = &mut std::io::stdout().lock();
    let stderr = &mut std::io::stderr().lock();
    match cli.command {
        Command::Crd => crd::run(stdout, stderr),
        Command::Validate(args) => validate::run(&args, stdout, stderr),
        Command::Generate(args) => generate::run(&args, stdout, stderr),
        Command::Gate(args) => gate::run(&args, stdout, stderr),
        Command::Import(args) => import::run(&args, stdout, stderr),
        Command::Local(args) => local::run(&args, stdout, stderr),
        Command::DemoData(args) => demo_data::run(&args, stdout, stderr),
        Command::Run(_) => EXIT_ERROR,
    }
}

/// `KEY=VALUE`, for labels given on the command line.
pub fn parse_label(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("{text:?} is not KEY=VALUE")),
    }
}

/// A duration such as `30s`, `5m` or `1h`.
/// `--reading-selector`: label matchers such as `cluster="a"`.
pub fn parse_scope(text: &str) -> Result<crate::prometheus::ReadingScope, String> {
    crate::prometheus::ReadingScope::parse(text).map_err(|e| e.to_string())
}

pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    crate::model::Duration::parse(text, "hms")
        .map(|d| std::time::Duration::from_secs(d.as_secs()))
        .map_err(|e| format!("{text:?}: {e}; use a duration such as 30s, 5m or 1h"))
}
