use std::process::ExitCode;

use clap::Parser;

/// jemalloc hands freed memory back to the system after a short decay. glibc's malloc kept
/// what the startup and every read round had freed, in per-thread arenas: at 10,000 SLOs as
/// much again as the live heap (benches/operator_scale.rs measures both).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = plimsoll::cli::Cli::parse();
    ExitCode::from(plimsoll::cli::run(cli))
}
