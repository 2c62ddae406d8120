//! What the generated rules cost a real Prometheus, against two known designs, on the same month of
//! synthetic traffic. Run with `make bench` (or `cargo bench --bench prometheus_cost`).
//!
//! 1. Writes a month (plus a day of lead-in) of `http_requests_total` for N services, whose traffic
//!    swings 100x over the day with errors clustered in the quiet hours, and imports it with
//!    `promtool tsdb create-blocks-from openmetrics`.
//! 2. Starts Prometheus on 127.0.0.1 (free port, temporary directory, killed on exit) and backfills
//!    the recorded series the long windows read (`promtool tsdb create-blocks-from rules`).
//! 3. For each design, runs every rule's expression once as an instant query at the end of the
//!    month with `stats=all`, and reports samples touched and execution time per evaluation and
//!    per hour (at each group's interval), and the 30d SLI against the exact count ratio.
//!
//! Designs: `plimsoll` (ours: 5m counts summed over long windows), `raw-increase` (every window,
//! the 30d one included, as `increase` over the raw counters), `ratio-average` (burn windows over
//! raw counters, the 30d SLI as the average of the recorded 5m error ratios).
//!
//! 4. At scale (prometheus_cost/at_scale.rs): K = 50, 200 and 1,000 SLOs evaluated live.
//!
//! Environment: `PLIMSOLL_BENCH_SLOS` (default 4), `PLIMSOLL_BENCH_SCRAPE` seconds (default 30),
//! `PLIMSOLL_BENCH_MONTH` (0 skips the month), `PLIMSOLL_BENCH_SCALE` (the Ks, default
//! `50,200,1000`; empty skips).

#[path = "../tests/support/prometheus.rs"]
mod prometheus_support;

use std::fmt::Write as _;
use std::io::{BufWriter, Write};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use prometheus_support::{Prometheus, Version, backfill_rules, import_openmetrics};

use plimsoll::rules::{self, RuleGroup};
use plimsoll::synthetic::{Service, write_openmetrics};

#[path = "prometheus_cost/at_scale.rs"]
mod at_scale;
#[path = "prometheus_cost/designs.rs"]
mod designs;

use designs::{
    Design, plimsoll_design, plimsoll_month_design, ratio_average_design, raw_increase_design,
};

const DAY: u64 = 86_400;
const WINDOW: u64 = 30 * DAY;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn services(n: u64) -> Vec<Service> {
    (0..n)
        .map(|i| Service {
            job: format!("svc{i}"),
            peak_per_second: 50.0 + 50.0 * i as f64,
            quiet_error_share: 0.02 + 0.01 * i as f64,
            busy_error_share: 0.0002,
            phase_hours: 3.0 * i as f64,
        })
        .collect()
}

/// Runs an instant query with `stats=all`; returns the first sample's value, samples touched and
/// seconds spent.
fn query(prometheus: &Prometheus, expr: &str, time: u64) -> (Option<f64>, u64, f64) {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(300))
        .build()
        .unwrap();
    let body: serde_json::Value = client
        .post(format!("{}/api/v1/query", prometheus.url))
        .form(&[
            ("query", expr),
            ("time", &time.to_string()),
            ("stats", "all"),
        ])
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(body["status"], "success", "{expr}: {body}");
    let value = body["data"]["result"][0]["value"][1]
        .as_str()
        .and_then(|v| v.parse().ok());
    let stats = &body["data"]["stats"];
    let samples = stats["samples"]["totalQueryableSamples"]
        .as_u64()
        .unwrap_or(0);
    let seconds = stats["timings"]["execTotalTime"].as_f64().unwrap_or(0.0);
    (value, samples, seconds)
}

fn interval_seconds(interval: &str) -> f64 {
    plimsoll::model::Duration::parse(interval, "hms")
        .map(|d| d.as_secs() as f64)
        .unwrap_or(60.0)
}

struct Cost {
    samples_per_eval: u64,
    samples_per_hour: f64,
    seconds_per_hour: f64,
}

fn cost(prometheus: &Prometheus, design: &Design, at: u64) -> Cost {
    let mut cost = Cost {
        samples_per_eval: 0,
        samples_per_hour: 0.0,
        seconds_per_hour: 0.0,
    };
    for group in &design.groups {
        let per_hour = 3600.0 / interval_seconds(&group.interval);
        for rule in &group.rules {
            let (_, samples, seconds) = query(prometheus, &rule.expr, at);
            cost.samples_per_eval += samples;
            cost.samples_per_hour += samples as f64 * per_hour;
            cost.seconds_per_hour += seconds * per_hour;
        }
    }
    cost
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` and `cargo test --benches` expect a quick exit.
    }
    if env_or("PLIMSOLL_BENCH_MONTH", 1) == 1 {
        month();
    }
    let ks: Vec<u64> = std::env::var("PLIMSOLL_BENCH_SCALE")
        .unwrap_or_else(|_| "50,200,1000".to_string())
        .split(',')
        .filter_map(|k| k.trim().parse().ok())
        .collect();
    if !ks.is_empty() {
        let measured = at_scale::run(&ks);
        println!(
            "Rule cost at scale: K SLOs, each over its own 20 raw series (30s scrape), evaluated \
             live by one Prometheus, one design at a time; from Prometheus' own metrics\n\n{}",
            at_scale::report(&measured)
        );
    }
}

/// One month of uneven traffic for a few SLOs: every rule's expression once, with query stats.
fn month() {
    let n = env_or("PLIMSOLL_BENCH_SLOS", 4);
    let scrape = env_or("PLIMSOLL_BENCH_SCRAPE", 30);
    let services = services(n);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();

    // The month ends two hours ago, on the hour, so backfilled blocks are in the past.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let end = now / 3600 * 3600 - 2 * 3600;
    let lead_in = DAY;
    let start = end - WINDOW - lead_in;

    let started = Instant::now();
    let openmetrics = dir.path().join("traffic.om");
    {
        let mut out = BufWriter::new(std::fs::File::create(&openmetrics).unwrap());
        write_openmetrics(&services, start, WINDOW + lead_in, scrape, &mut out).unwrap();
        out.flush().unwrap();
    }
    import_openmetrics(&openmetrics, &data);
    std::fs::remove_file(&openmetrics).unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(&config, "global: {evaluation_interval: 30s}\n").unwrap();

    let designs = [
        plimsoll_design(&services),
        raw_increase_design(&services),
        ratio_average_design(&services),
        plimsoll_month_design(&services),
    ];
    for pass in 0..2 {
        let backfill: Vec<RuleGroup> = designs
            .iter()
            .filter_map(|d| d.backfill.get(pass))
            .flatten()
            .cloned()
            .collect();
        if backfill.is_empty() {
            continue;
        }
        let backfill_file = dir.path().join(format!("backfill-{pass}.yaml"));
        std::fs::write(&backfill_file, rules::rule_file(&backfill).unwrap()).unwrap();
        backfill_rules(Version::chosen(), &data, &backfill_file, start, end);
    }
    let prepared = started.elapsed().as_secs_f64();
    let prometheus = Prometheus::start(&data, &config);

    let mut report = String::new();
    let _ = writeln!(
        report,
        "Prometheus rule cost, {n} SLOs (99.9% over 30d), {scrape}s scrape interval, one month of \
         traffic swinging 100x a day, errors in the quiet hours (setup {prepared:.0} s)\n"
    );
    let _ = writeln!(
        report,
        "| design | samples / evaluation | samples / hour | x plimsoll | query s / hour | 30d SLI error (mean abs) | worst |"
    );
    let _ = writeln!(report, "| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut ours = None;
    for design in &designs {
        let c = cost(&prometheus, design, end);
        let base = *ours.get_or_insert(c.samples_per_hour);
        let Some(window_ratio) = design.window_ratio else {
            let _ = writeln!(
                report,
                "| {} | {} | {:.0} | {:.1} | {:.2} | (a calendar period) | |",
                design.name,
                c.samples_per_eval,
                c.samples_per_hour,
                c.samples_per_hour / base,
                c.seconds_per_hour,
            );
            continue;
        };
        let mut errors = Vec::new();
        for s in &services {
            // The window as the evaluation at `at` sees it, against the exact counts of the 30
            // days before `at`.
            let at = match design.evaluated_at {
                Some(record) => {
                    let latest = format!("timestamp({record}{{slo=\"{}\"}})", s.job);
                    query(&prometheus, &latest, end).0.map_or(end, |t| t as u64)
                }
                None => end,
            };
            let (value, _, _) = query(&prometheus, &window_ratio(s), at);
            let now = s.counts_until(at - start);
            let then = s.counts_until(at - start - WINDOW);
            let exact = (now.errors - then.errors) / (now.requests - then.requests);
            let got = value.unwrap_or(f64::NAN);
            errors.push(((got - exact) / exact).abs());
        }
        let mean = errors.iter().sum::<f64>() / errors.len() as f64;
        let worst = errors.iter().cloned().fold(0.0, f64::max);
        let _ = writeln!(
            report,
            "| {} | {} | {:.0} | {:.1} | {:.2} | {:.4}% | {:.4}% |",
            design.name,
            c.samples_per_eval,
            c.samples_per_hour,
            c.samples_per_hour / base,
            c.seconds_per_hour,
            mean * 100.0,
            worst * 100.0
        );
    }
    println!("{report}");
}
