//! Imported SLOs measure what their sources measured: a month of synthetic traffic (counters, a
//! classic histogram, a 0/1 probe) in a real Prometheus, each source's own definition of the
//! 30-day error ratio queried directly, and the imported SLO's generated rules evaluated by the
//! same Prometheus and read back by Plimsoll's client. They agree within 0.1%.

mod support;

use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use plimsoll::budget::Reading;
use plimsoll::import;
use plimsoll::manifests::{self, Decoded, Source};
use plimsoll::model::Slo;
use plimsoll::prometheus as reads;
use plimsoll::prometheus::{Client, Identity, ReadingScope, Settings};
use support::month::{backfill_counts, config_evaluating, every_10s, wait_for};
use support::prometheus::{Prometheus, data_dir, import_openmetrics, instant_values, unix_now};
use support::repo;

const DAY: u64 = 86_400;
const STEP: u64 = 60;

/// Each imported SLO with its source's definition of the error ratio over 30 days, written as the
/// source tool evaluates it (Sloth: error_query / total_query with {{.window}} = 30d; Pyrra:
/// errors (or total - success) over total, each `sum(increase(...[30d]))`; Pyrra's bool gauge:
/// the share of 0 samples; OpenSLO: 1 - good / total over the window). A Sloth raw ratio of
/// counters and the PrometheusServiceLevel spelling give the same indicators as the events here
/// (tests/import.rs), so they are not measured twice.
const SOURCES: [(&str, &str, &str); 6] = [
    (
        "imported",
        "shop-requests-availability",
        r#"sum(rate(shop_requests_total{job="shop",code=~"5.."}[30d])) / sum(rate(shop_requests_total{job="shop"}[30d]))"#,
    ),
    (
        "imported",
        "shop-requests-latency",
        r#"(sum(rate(shop_request_duration_seconds_count{job="shop"}[30d])) - sum(rate(shop_request_duration_seconds_bucket{le="0.5", job="shop"}[30d]))) / sum(rate(shop_request_duration_seconds_count{job="shop"}[30d]))"#,
    ),
    (
        "shop",
        "shop-latency",
        r#"1 - sum(increase(shop_request_duration_seconds_bucket{job="shop",le="0.5"}[30d])) / sum(increase(shop_request_duration_seconds_count{job="shop"}[30d]))"#,
    ),
    (
        "shop",
        "shop-probe",
        r#"(sum(count_over_time(shop_probe_success{job="blackbox"}[30d])) - sum(sum_over_time(shop_probe_success{job="blackbox"}[30d]))) / sum(count_over_time(shop_probe_success{job="blackbox"}[30d]))"#,
    ),
    (
        "imported",
        "shop-availability",
        r#"1 - sum(increase(shop_requests_total{job="shop",code!~"5.."}[30d])) / sum(increase(shop_requests_total{job="shop"}[30d]))"#,
    ),
    (
        "imported",
        "shop-latency",
        r#"1 - sum(rate(shop_request_duration_seconds_bucket{job="shop",le="0.5"}[30d])) / sum(rate(shop_request_duration_seconds_count{job="shop"}[30d]))"#,
    ),
];

/// Requests per second and the shares that fail and that are slower than 0.1 s and 0.5 s, at
/// second `t`: daily swings, and a bad afternoon on day 12.
fn traffic(t: u64) -> (f64, f64, f64, f64) {
    let hours = t as f64 / 3600.0;
    let rate = 20.0 * (1.05 + (2.0 * std::f64::consts::PI * hours / 24.0).cos());
    let bad_day = (12 * DAY + 13 * 3600..12 * DAY + 17 * 3600).contains(&t);
    let errors = if bad_day {
        0.08
    } else {
        0.002 + 0.002 * (hours / 7.0).sin().abs()
    };
    let slow = if bad_day { 0.2 } else { 0.01 };
    (rate, errors, 0.6, slow)
}

/// The month as OpenMetrics: one family after the other, every series every minute.
fn write_month(file: &Path, start: u64, end: u64) {
    let mut out = BufWriter::new(std::fs::File::create(file).unwrap());
    let steps: Vec<u64> = (start..=end).step_by(STEP as usize).collect();
    // Cumulative values at each step, integrated per second.
    let mut rows = Vec::with_capacity(steps.len());
    let (mut ok, mut failed, mut fast, mut under, mut all) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for &ts in &steps {
        rows.push((ts, ok, failed, fast, under, all));
        for s in ts - start..ts - start + STEP {
            let (rate, errors, fast_share, slow_share) = traffic(s);
            failed += rate * errors;
            ok += rate * (1.0 - errors);
            fast += rate * fast_share;
            under += rate * (1.0 - slow_share);
            all += rate;
        }
    }
    writeln!(out, "# TYPE shop_requests counter").unwrap();
    for &(ts, ok, failed, ..) in &rows {
        writeln!(
            out,
            "shop_requests_total{{job=\"shop\",code=\"200\"}} {ok} {ts}"
        )
        .unwrap();
        writeln!(
            out,
            "shop_requests_total{{job=\"shop\",code=\"503\"}} {failed} {ts}"
        )
        .unwrap();
    }
    writeln!(out, "# TYPE shop_request_duration_seconds histogram").unwrap();
    for &(ts, _, _, fast, under, all) in &rows {
        let name = "shop_request_duration_seconds";
        writeln!(out, "{name}_bucket{{job=\"shop\",le=\"0.1\"}} {fast} {ts}").unwrap();
        writeln!(out, "{name}_bucket{{job=\"shop\",le=\"0.5\"}} {under} {ts}").unwrap();
        writeln!(out, "{name}_bucket{{job=\"shop\",le=\"+Inf\"}} {all} {ts}").unwrap();
        writeln!(out, "{name}_count{{job=\"shop\"}} {all} {ts}").unwrap();
        writeln!(out, "{name}_sum{{job=\"shop\"}} {} {ts}", all * 0.2).unwrap();
    }
    writeln!(out, "# TYPE shop_probe_success gauge").unwrap();
    for &(ts, ..) in &rows {
        // Down for 1 minute in 64, and for the bad afternoon; but up all the time around where
        // the 30-day windows begin (a day and 2-3 hours into the data, as `end` is 2-3 hours
        // before the evaluation): there the source's raw range and the 5m counts on their grid
        // start up to 5 minutes apart, and one down minute more or less is 0.15% of the month's.
        let t = ts - start;
        let edge = (DAY + 3600..DAY + 5 * 3600).contains(&t);
        let down = ((t / STEP).is_multiple_of(64) && !edge)
            || (12 * DAY + 13 * 3600..12 * DAY + 17 * 3600).contains(&t);
        writeln!(
            out,
            "shop_probe_success{{job=\"blackbox\"}} {} {ts}",
            u8::from(!down)
        )
        .unwrap();
    }
    writeln!(out, "# EOF").unwrap();
    out.flush().unwrap();
}

/// The fixtures imported as a user would, then decoded as the operator decodes them.
fn imported_slos() -> Vec<(String, Slo)> {
    let mut docs = Vec::new();
    for file in manifests::expand(&[repo().join("tests/import")]).unwrap() {
        if let Source::Documents(d) = manifests::read(&file).unwrap() {
            docs.extend(d);
        }
    }
    let result = import::import(&docs, Some("imported"));
    result
        .slos
        .iter()
        .map(|s| {
            let value = serde_json::to_value(&s.object).unwrap();
            let Decoded::Valid(valid) = manifests::decode(&value) else {
                panic!("{value}")
            };
            (s.object.metadata.namespace.clone().unwrap(), valid.1)
        })
        .filter(|(ns, slo)| {
            SOURCES
                .iter()
                .any(|(n, name, _)| n == ns && *name == slo.name)
        })
        .collect()
}

fn read_all(client: &Client, slos: &[(String, Slo)]) -> Option<Vec<Reading>> {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let now = k8s_openapi::jiff::Timestamp::now();
    let readings = runtime
        .block_on(reads::read(client, &ReadingScope::default(), &[], now))
        .ok()?;
    slos.iter()
        .map(|(ns, slo)| {
            let id = Identity {
                namespace: ns,
                name: &slo.name,
                service: &slo.service,
                uid: None,
                group_by: slo.indicator.group_by(),
            };
            let (mine, _) = reads::own(&readings, &id);
            let r = mine.first().map(|(_, r)| (*r).clone())?;
            (r.window_error_ratio.is_some() && r.newest_sample.is_some()).then_some(r)
        })
        .collect()
}

#[test]
fn imported_slos_compute_the_sources_30_day_error_ratio() {
    let started = Instant::now();
    let slos = imported_slos();
    assert_eq!(
        slos.len(),
        SOURCES.len(),
        "{:?}",
        slos.iter().map(|s| &s.1.name).collect::<Vec<_>>()
    );
    let dir = tempfile::tempdir().unwrap();
    let data = data_dir(dir.path());
    let end = unix_now() / 3600 * 3600 - 2 * 3600;
    let start = end - 31 * DAY;
    let month = dir.path().join("month.om");
    write_month(&month, start, end);
    import_openmetrics(&month, &data);
    eprintln!("{:?}: the month imported", started.elapsed());

    // The history of the 5m counts, then Prometheus evaluates every generated rule itself.
    let pairs: Vec<(&str, &Slo)> = slos.iter().map(|(ns, slo)| (ns.as_str(), slo)).collect();
    backfill_counts(&data, dir.path(), &pairs, start, end);
    eprintln!("{:?}: the 5m counts backfilled", started.elapsed());
    let live = Prometheus::start(&data, &config_evaluating(dir.path(), &every_10s(&pairs)));
    let client = Client::new(Settings::new(&live.url, Duration::from_secs(10))).unwrap();
    let readings = wait_for(
        Duration::from_secs(120),
        "readings for every SLO",
        &String::new,
        || read_all(&client, &slos).ok_or_else(String::new),
    );

    eprintln!("{:?}: every SLO read", started.elapsed());
    for ((ns, slo), reading) in slos.iter().zip(&readings) {
        let (_, _, source) = SOURCES
            .iter()
            .find(|(n, name, _)| n == ns && *name == slo.name)
            .unwrap();
        let evaluated = reading.newest_sample.unwrap().as_second() as u64;
        let expected = instant_values(&live, source, evaluated);
        assert_eq!(expected.len(), 1, "{source}: {expected:?}");
        let got = reading.window_error_ratio.unwrap();
        let relative = (got - expected[0]).abs() / expected[0];
        eprintln!(
            "{ns}/{}: imported {got:.6} vs source {:.6}: relative difference {:.4}%",
            slo.name,
            expected[0],
            relative * 100.0
        );
        assert!(
            expected[0] > 0.001,
            "the data must spend budget: {}",
            expected[0]
        );
        assert!(
            relative < 0.001,
            "{ns}/{}: {got} vs {} ({relative:e})",
            slo.name,
            expected[0]
        );
    }
}
