//! The `plimsoll` command line: one function per subcommand, each returning the exit code.

pub mod crd;
pub mod generate;
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
    Validate(validate::Args),
    /// Render the Prometheus rules of SLO manifests: a plain rule file or PrometheusRule objects.
    Generate(generate::Args),
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> u8 {
    let stdout = &mut std::io::stdout().lock();
    let stderr = &mut std::io::stderr().lock();
    match cli.command {
        Command::Crd => crd::run(stdout, stderr),
        Command::Validate(args) => validate::run(&args, stdout, stderr),
        Command::Generate(args) => generate::run(&args, stdout, stderr),
    }
}
