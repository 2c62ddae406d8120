//! Cost at scale: K SLOs, each over its own 20 raw series (10 instances x 2 status codes), in
//! one live Prometheus that scrapes a loopback exporter every 30 s and evaluates each design's
//! rules at their own intervals, one design after another. The figures come from Prometheus'
//! own metrics: `prometheus_rule_group_duration_seconds_sum` (evaluation seconds),
//! `prometheus_rule_group_rules` and the count of recorded series. (Prometheus 2.42 counts no
//! samples for rule evaluations; the month comparison measures samples per query.)
//!
//! An hour of history is imported first, so the raw windows up to 1h read what they would in
//! production; longer raw windows (the peers' 30d) read only that hour, which understates their
//! cost: the month comparison above gives the absolute figures, this one how cost grows with K.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::designs::{Design, plimsoll_design, ratio_average_design, raw_increase_design};
use super::prometheus_support::{Prometheus, http, import_openmetrics, instant_values};
use plimsoll::rules;
use plimsoll::synthetic::Service;

const INSTANCES: u64 = 10;
const SCRAPE: u64 = 30;
const HISTORY: u64 = 3_900;

/// The counter of one series at `t`: steady rates, so history and live scrapes join up.
fn value(slo: u64, instance: u64, error: bool, t: u64) -> f64 {
    let per_second = if error {
        0.01 * (1 + slo % 5) as f64
    } else {
        5.0 + instance as f64
    };
    per_second * t as f64
}

fn exposition(k: u64, t: u64, timestamps: bool, out: &mut impl Write) -> std::io::Result<()> {
    for slo in 0..k {
        for instance in 0..INSTANCES {
            for (code, error) in [("200", false), ("500", true)] {
                write!(
                    out,
                    "http_requests_total{{job=\"svc{slo}\",instance=\"i{instance}\",code=\"{code}\"}} {}",
                    value(slo, instance, error, t)
                )?;
                match timestamps {
                    true => writeln!(out, " {t}")?,
                    false => writeln!(out)?,
                }
            }
        }
    }
    Ok(())
}

/// Serves the K x 20 counters at the current second until dropped.
struct Exporter {
    address: String,
    stop: Arc<AtomicBool>,
}

impl Exporter {
    fn start(k: u64) -> Exporter {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                let Ok((stream, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                };
                let _ = stream.set_nonblocking(false);
                let mut reader = BufReader::new(&stream);
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let mut body = Vec::new();
                let _ = exposition(k, now(), false, &mut body);
                let mut out = BufWriter::new(&stream);
                let _ = write!(
                    out,
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = out.write_all(&body);
            }
        });
        Exporter { address, stop }
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The sum of an instant query's values now (0 when it has none).
fn scalar(prometheus: &Prometheus, expr: &str) -> f64 {
    instant_values(prometheus, expr, now()).iter().sum()
}

/// Prometheus' own counters about itself, read from its /metrics.
fn own_metric(prometheus: &Prometheus, name: &str) -> f64 {
    let text = http()
        .get(format!("{}/metrics", prometheus.url))
        .send()
        .unwrap()
        .text()
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// One design at one K, measured.
pub struct Measured {
    pub design: &'static str,
    pub k: u64,
    pub eval_seconds_per_minute: f64,
    pub recorded_series: f64,
    pub rules: f64,
}

fn measure(prometheus: &Prometheus, rules_file: &Path, design: &Design, k: u64) -> Measured {
    std::fs::write(rules_file, rules::rule_file(&design.groups).unwrap()).unwrap();
    let reloaded = http()
        .post(format!("{}/-/reload", prometheus.url))
        .send()
        .unwrap();
    assert!(reloaded.status().is_success(), "reload: {reloaded:?}");
    // Every group evaluates at least once in the window: it is as long as the longest interval.
    let longest = design
        .groups
        .iter()
        .filter_map(|g| plimsoll::model::Duration::parse(&g.interval, "hms").ok())
        .map(|d| d.as_secs())
        .max()
        .unwrap_or(30);
    std::thread::sleep(Duration::from_secs(40));
    let seconds_before = own_metric(prometheus, "prometheus_rule_group_duration_seconds_sum");
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(longest.max(60)));
    let minutes = started.elapsed().as_secs_f64() / 60.0;
    let seconds =
        own_metric(prometheus, "prometheus_rule_group_duration_seconds_sum") - seconds_before;
    let per = k as f64;
    Measured {
        design: design.name,
        k,
        eval_seconds_per_minute: seconds / minutes / per,
        recorded_series: scalar(
            prometheus,
            &format!("count({{__name__=~\"{}.+\"}})", design.record_prefix),
        ) / per,
        rules: own_metric(prometheus, "prometheus_rule_group_rules") / per,
    }
}

/// Runs every design at every K; returns the measurements.
pub fn run(ks: &[u64]) -> Vec<Measured> {
    let mut all = Vec::new();
    for &k in ks {
        let started = Instant::now();
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let end = now() - SCRAPE;
        let history = dir.path().join("history.om");
        {
            let mut out = BufWriter::new(std::fs::File::create(&history).unwrap());
            writeln!(out, "# TYPE http_requests counter").unwrap();
            for t in (end - HISTORY..=end).step_by(SCRAPE as usize) {
                exposition(k, t, true, &mut out).unwrap();
            }
            writeln!(out, "# EOF").unwrap();
        }
        import_openmetrics(&history, &data);
        std::fs::remove_file(&history).unwrap();
        let exporter = Exporter::start(k);
        let rules_file = dir.path().join("rules.yaml");
        std::fs::write(&rules_file, "groups: []\n").unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global: {{scrape_interval: {SCRAPE}s, evaluation_interval: 30s}}\n\
                 rule_files: [{}]\n\
                 scrape_configs:\n- job_name: load\n  honor_labels: true\n  \
                 static_configs: [{{targets: ['{}']}}]\n",
                rules_file.display(),
                exporter.address
            ),
        )
        .unwrap();
        let prometheus = Prometheus::start_with(&data, &config, &["--web.enable-lifecycle"]);
        let services: Vec<Service> = (0..k)
            .map(|i| Service {
                job: format!("svc{i}"),
                peak_per_second: 1.0,
                quiet_error_share: 0.0,
                busy_error_share: 0.0,
                phase_hours: 0.0,
            })
            .collect();
        for design in [
            plimsoll_design(&services),
            raw_increase_design(&services),
            ratio_average_design(&services),
        ] {
            let m = measure(&prometheus, &rules_file, &design, k);
            eprintln!(
                "K={k} {}: {:.5} s/min, {:.1} series, {:.1} rules per SLO",
                m.design, m.eval_seconds_per_minute, m.recorded_series, m.rules
            );
            all.push(m);
        }
        eprintln!("K={k} took {:.0} s", started.elapsed().as_secs_f64());
    }
    all
}

/// The measurements as a Markdown table, with each design's growth from the smallest K.
pub fn report(measured: &[Measured]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| design | K | eval ms / min / SLO | x at smallest K | recorded series / SLO | rules / SLO |"
    );
    let _ = writeln!(out, "| --- | ---: | ---: | ---: | ---: | ---: |");
    for m in measured {
        let first = measured
            .iter()
            .find(|f| f.design == m.design)
            .map_or(1.0, |f| f.eval_seconds_per_minute);
        let _ = writeln!(
            out,
            "| {} | {} | {:.3} | {:.2} | {:.1} | {:.1} |",
            m.design,
            m.k,
            m.eval_seconds_per_minute * 1000.0,
            m.eval_seconds_per_minute / first,
            m.recorded_series,
            m.rules
        );
    }
    out
}
