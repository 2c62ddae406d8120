use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = plimsoll::cli::Cli::parse();
    ExitCode::from(plimsoll::cli::run(cli))
}
