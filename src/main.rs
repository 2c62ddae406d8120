use std::process::ExitCode;

/// jemalloc hands freed memory back to the system after a short decay. glibc's malloc kept
/// what the startup and every read round had freed, in per-thread arenas: at 10,000 SLOs as
/// much again as the live heap (benches/operator_scale.rs measures both).
#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options: a background thread purges freed pages after a second even when the
/// operator is quiet (without it, pages wait for the next allocations): 10,000 SLOs settle at
/// 98 MiB and stay at 81-85 MiB after rounds and churn, against 101-108 MiB without.
#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
#[allow(non_upper_case_globals)]
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static malloc_conf: &[u8] = b"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0\0";

fn main() -> ExitCode {
    let cli = plimsoll::cli::parse();
    ExitCode::from(plimsoll::cli::run(cli))
}
