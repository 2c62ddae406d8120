//! `plimsoll run` at scale, measured as a process: the release binary against a real control
//! plane (tests/support/kube.rs: etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
//! built from tests/kube) holding N SLOs (a ratio SLO with groupBy, alert labels and a runbook
//! each, over 100 namespaces, created as admin and not counted) and a real Prometheus holding
//! their recorded series. The operator runs as the chart deploys it: the chart's environment,
//! its RBAC (ClusterRole) and a token of its ServiceAccount, leader election on. It reports the
//! time to ready and until every SLO has its PrometheusRule (an admin watch of the rules' metadata),
//! RSS at ready, after settling, after 10 evaluation rounds and after 10 rounds of churn, the API
//! load from the API server's audit log (the operator's ServiceAccount alone, level Metadata:
//! requests, writes, peak in flight and per second, 429s, requests per SLO per round once
//! settled), kube-apiserver's and etcd's RSS, and the budget read's time, then the targets of
//! issue 12, pass or fail. A measurement: a missed target is printed, not a failure.
//!
//! `cargo bench --bench operator_scale [-- N...]` (default 1000 10000), one control plane per
//! size. Environment: SCALE_SLOS (such as `1000,10000`), SCALE_INTERVAL (evaluation interval in
//! s, 10), SCALE_API_QPS / SCALE_API_BURST (default 400 / 400: at the operator's default 50 qps
//! a cold start with 10,000 SLOs, about six requests each, takes some 20 minutes),
//! SCALE_QUIET_ROUNDS (3), SCALE_CHURN_ROUNDS (10), SCALE_OPERATOR_ARGS (more flags),
//! SCALE_OPERATOR_ENV (its environment, such as `MALLOC_ARENA_MAX=1`), SCALE_LOG_DIR
//! (keep the operator's log there), SCALE_WRAP (a profiler to run the operator
//! under, such as `heaptrack -o /tmp/ht`), SCALE_STOP_SIGNAL (TERM; KILL: the profiler's "leaked"
//! is then the live heap at the end), PLIMSOLL_BIN (another binary), SCALE_KEEP (keep the
//! control plane's folder: logs, audit log, etcd data).

#[path = "operator_scale/audit.rs"]
mod audit;
#[path = "operator_scale/plane.rs"]
mod plane;
#[path = "operator_scale/processes.rs"]
mod processes;
#[path = "../tests/support/release.rs"]
mod release;
#[path = "operator_scale/report.rs"]
mod report;
#[path = "../tests/support/mod.rs"]
mod support;
#[path = "operator_scale/ui_pages.rs"]
mod ui_pages;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use audit::Stats;
use plane::Plane;
use processes::{Operator, Seeded, query_value, read_rounds};
use support::prometheus::Prometheus;

pub const MAX_IN_FLIGHT: usize = 16;

fn setting(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

fn epoch() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// What one size measured.
#[derive(Default)]
pub struct Row {
    pub slos: usize,
    /// kube-apiserver's version.
    pub server: String,
    /// Seconds: the control plane's start, seeding the SLOs as admin.
    pub plane_started: f64,
    pub seeded_in: f64,
    pub ready: f64,
    pub all_rules: f64,
    pub settled_at: f64,
    pub rss_ready: f64,
    pub rss_settled: f64,
    pub rss_rounds: f64,
    pub rss_churn: f64,
    pub hwm: f64,
    /// kube-apiserver's and etcd's VmRSS and VmHWM at the end (MiB).
    pub apiserver_rss: (f64, f64),
    pub etcd_rss: (f64, f64),
    pub startup: Stats,
    pub quiet: Stats,
    pub quiet_rounds: f64,
    pub quiet_reconciles: f64,
    pub churn: Stats,
    pub churn_ops: usize,
    /// Budget reads: (span, Prometheus' part) in seconds.
    pub reads_settled: Vec<(f64, f64)>,
    pub reads_startup: Vec<(f64, f64)>,
    pub errors: f64,
    pub stopped: Option<Duration>,
    /// Refusals (401, 403: the operator must never be refused).
    pub refused: Vec<String>,
    /// The web UI's pages, once settled.
    pub ui: Vec<ui_pages::PageTiming>,
}

struct Phase<'a> {
    plane: &'a Plane,
    operator: &'a mut Operator,
    interval: Duration,
    started_epoch: f64,
}

impl Phase<'_> {
    fn reads(&self) -> f64 {
        self.operator.metric("plimsoll_prometheus_reads_total")
    }

    /// Waits until `done` holds, checking every `every`; panics with the operator's log on exit or
    /// after `limit`.
    fn until(
        &mut self,
        what: &str,
        limit: Duration,
        every: Duration,
        mut done: impl FnMut(&Self) -> bool,
    ) {
        let deadline = Instant::now() + limit;
        while !done(self) {
            let trouble = if self.operator.exited() {
                "the operator exited"
            } else if Instant::now() > deadline {
                "out of time"
            } else {
                std::thread::sleep(every);
                continue;
            };
            let stats = self.plane.audit.stats(self.started_epoch, epoch() + 1.0);
            panic!(
                "{what}: {trouble} ({limit:?}); refused: {:?}; 429s: {}; requests: {:?}\n{}",
                stats.refused,
                stats.throttled,
                stats.requests,
                self.operator.log_tail(40)
            );
        }
    }

    /// Waits for `rounds` more budget reads, and a little for the reconciles they wake.
    fn rounds(&mut self, rounds: f64) {
        let target = self.reads() + rounds;
        let limit = self.interval * (rounds as u32 + 3);
        self.until(
            "waiting for reads",
            limit,
            Duration::from_millis(200),
            |p| p.reads() >= target,
        );
        std::thread::sleep(Duration::from_secs(1));
    }

    /// Waits until the audit log shows no write of the operator's (Leases aside) for an
    /// evaluation interval and a bit.
    fn quiet(&mut self, limit: Duration) {
        let mut writes = self.plane.audit.writes();
        let mut since = Instant::now();
        let deadline = Instant::now() + limit;
        while since.elapsed() < self.interval + Duration::from_secs(2) && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(500));
            let now = self.plane.audit.writes();
            if now != writes {
                (writes, since) = (now, Instant::now());
            }
        }
    }
}

/// The operator's requests received from `from` to now, once those still in flight have been
/// answered and logged.
fn requests_since(plane: &Plane, from: f64) -> (Stats, f64) {
    let to = epoch();
    std::thread::sleep(Duration::from_secs(2));
    (plane.audit.stats(from, to), to)
}

fn measure(slos: usize, binary: &Path, wrap: &[String]) -> Row {
    let interval = Duration::from_secs(setting("SCALE_INTERVAL", "10").parse().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let begun = Instant::now();
    let mut plane = Plane::start();
    let mut row = Row {
        slos,
        server: plane.version.clone(),
        plane_started: begun.elapsed().as_secs_f64(),
        ..Row::default()
    };
    let seeding = Instant::now();
    let seeded: Vec<Seeded> = plane.seed(slos);
    row.seeded_in = seeding.elapsed().as_secs_f64();
    eprintln!(
        "{slos} SLOs created (as admin, {} at once) in {:.1} s",
        plane::SEEDING_IN_FLIGHT,
        row.seeded_in
    );

    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let port = processes::serve(processes::exposition(&seeded));
    let query_log = dir.path().join("queries.log");
    let config = dir.path().join("prometheus.yml");
    std::fs::write(&config, processes::prometheus_config(port, &query_log)).unwrap();
    let prometheus = Prometheus::start(&data, &config);
    let recorded = Instant::now();
    while query_value(&prometheus.url, "count(slo:sli_error:ratio_rate3d)") != Some(slos as f64) {
        assert!(
            recorded.elapsed() < Duration::from_secs(180),
            "Prometheus did not record {slos} SLOs"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    eprintln!(
        "Prometheus records {slos} SLOs' series after {:.1} s",
        recorded.elapsed().as_secs_f64()
    );

    let mut args = vec![
        format!("--prometheus-url={}", prometheus.url),
        format!("--evaluation-interval={}s", interval.as_secs()),
        format!("--api-max-in-flight={MAX_IN_FLIGHT}"),
        format!("--api-qps={}", setting("SCALE_API_QPS", "400")),
        format!("--api-burst={}", setting("SCALE_API_BURST", "400")),
    ];
    args.extend(
        setting("SCALE_OPERATOR_ARGS", "")
            .split_whitespace()
            .map(String::from),
    );
    let env = plane.release.operator_env("plimsoll-scale-0");
    let started_epoch = epoch();
    let started = Instant::now();
    let mut operator = Operator::start(binary, wrap, &plane.release.kubeconfig, &env, &args);
    let mut phase = Phase {
        plane: &plane,
        operator: &mut operator,
        interval,
        started_epoch,
    };
    phase.until(
        "starting",
        Duration::from_secs(120),
        Duration::from_millis(20),
        |p| p.operator.ready(),
    );
    row.ready = started.elapsed().as_secs_f64();
    row.rss_ready = phase.operator.rss().0;
    let reads_at_ready = phase.reads();

    let mut missing: Vec<(String, String)> = seeded
        .iter()
        .map(|s| (s.namespace.clone(), s.name.clone()))
        .collect();
    phase.until(
        "applying rules",
        Duration::from_millis(120_000 + 200 * slos as u64),
        Duration::from_millis(250),
        |p| {
            p.plane.retain_missing_rules(&mut missing);
            missing.is_empty()
        },
    );
    row.all_rules = started.elapsed().as_secs_f64();
    eprintln!("every rule after {:.1} s; settling", row.all_rules);
    phase.rounds(1.0);
    phase.quiet(Duration::from_secs(600));
    row.settled_at = started.elapsed().as_secs_f64();
    row.rss_settled = phase.operator.rss().0;
    let settled_epoch;
    (row.startup, settled_epoch) = requests_since(phase.plane, started_epoch);

    let (reads, reconciles) = (
        phase.reads(),
        phase.operator.metric("plimsoll_reconciles_total"),
    );
    let quiet_rounds: f64 = setting("SCALE_QUIET_ROUNDS", "3").parse().unwrap();
    phase.rounds(quiet_rounds.max(10.0 - (reads - reads_at_ready)));
    let churn_epoch;
    (row.quiet, churn_epoch) = requests_since(phase.plane, settled_epoch);
    row.quiet_rounds = phase.reads() - reads;
    row.quiet_reconciles = phase.operator.metric("plimsoll_reconciles_total") - reconciles;
    row.rss_rounds = phase.operator.rss().0;
    row.ui = ui_pages::measure(phase.operator, &seeded);
    row.reads_settled = read_rounds(&query_log, settled_epoch);
    row.reads_startup = read_rounds(&query_log, started_epoch);
    row.reads_startup
        .truncate(row.reads_startup.len() - row.reads_settled.len());

    eprintln!("settled after {:.1} s; churning", row.settled_at);
    let per_round = (slos / 100).max(1);
    // Each round: new SLOs, the oldest deleted, some of the newest half edited back and forth.
    let (mut next, mut oldest) = (slos, 0);
    for round in 0..setting("SCALE_CHURN_ROUNDS", "10")
        .parse::<usize>()
        .unwrap()
    {
        phase.rounds(1.0);
        for k in 0..per_round {
            phase.plane.add(next);
            next += 1;
            let gone = &seeded[oldest];
            phase.plane.delete(&gone.namespace, &gone.name);
            oldest += 1;
            let s = &seeded[slos - 1 - (round * per_round + k) % (slos / 2).max(1)];
            let objective = if round % 2 == 0 { 99.5 } else { 99.9 };
            phase.plane.set_objective(&s.namespace, &s.name, objective);
            row.churn_ops += 3;
        }
    }
    phase.rounds(1.0);
    phase.quiet(Duration::from_secs(300));
    let end_epoch;
    (row.churn, end_epoch) = requests_since(phase.plane, churn_epoch);
    (row.rss_churn, row.hwm) = phase.operator.rss();
    row.apiserver_rss = plane.rss("kube-apiserver");
    row.etcd_rss = plane.rss("etcd");
    row.errors = operator.metric("plimsoll_reconcile_errors_total");
    row.stopped = operator.stop(&setting("SCALE_STOP_SIGNAL", "TERM"));
    row.refused = plane.audit.stats(started_epoch, end_epoch + 60.0).refused;
    if std::env::var_os("SCALE_KEEP").is_some()
        && let Some(kept) = plane.plane.keep_dir()
    {
        eprintln!("control plane's folder kept: {}", kept.display());
    }
    drop(prometheus);
    drop(plane);
    row
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        return;
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut sizes: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    if sizes.is_empty() {
        let listed = setting("SCALE_SLOS", "1000,10000");
        sizes = listed
            .split(',')
            .map(|s| s.trim().parse().unwrap())
            .collect();
    }
    let binary = std::env::var("PLIMSOLL_BIN").map_or_else(
        |_| PathBuf::from(env!("CARGO_BIN_EXE_plimsoll")),
        PathBuf::from,
    );
    let wrap: Vec<String> = setting("SCALE_WRAP", "")
        .split_whitespace()
        .map(String::from)
        .collect();
    let rows: Vec<Row> = sizes.iter().map(|n| measure(*n, &binary, &wrap)).collect();
    report::print(
        &rows,
        &setting("SCALE_API_QPS", "400"),
        &setting("SCALE_INTERVAL", "10"),
    );
    for row in &rows {
        assert!(
            row.refused.is_empty(),
            "{} SLOs: the operator was refused: {:?}",
            row.slos,
            row.refused
        );
    }
}
