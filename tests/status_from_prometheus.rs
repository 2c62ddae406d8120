//! The status read path against a real Prometheus: a month of synthetic traffic is backfilled,
//! Prometheus evaluates the generated rules itself, and the budget read back through our client
//! and batched query equals the budget computed here from the synthetic counts. On Prometheus
//! 2.42 and 3.x.

mod support;

use std::io::{BufWriter, Write};
use std::time::Duration;

use plimsoll::budget::{self, Reading};
use plimsoll::model::Slo;
use plimsoll::prometheus as reads;
use plimsoll::prometheus::{Client, Failure, Identity, ReadingScope, Readings, Settings};

/// The SLO's own reading (no groups), as the operator would pick it.
fn own_reading(readings: &Readings, slo: &Slo) -> Option<Reading> {
    let id = Identity {
        namespace: "shop",
        name: &slo.name,
        service: &slo.service,
        uid: slo.uid.as_deref(),
        group_by: slo.indicator.group_by(),
    };
    let (mine, foreign) = reads::own(readings, &id);
    assert!(foreign.is_empty(), "{foreign:?}");
    mine.first().map(|(_, r)| (*r).clone())
}
use plimsoll::synthetic::write_openmetrics;
use support::month::{
    DAY, backfill_counts_on, checkout_manifest, checkout_service, checkout_slo, config_evaluating,
    every_10s, wait_for, window_counts,
};
use support::prometheus::{Prometheus, Version, data_dir, import_openmetrics_on, unix_now};

on_both_versions!(the_budget_read_back_equals_the_synthetic_counts);

fn client(url: &str) -> Client {
    Client::new(Settings::new(url, Duration::from_secs(10))).unwrap()
}

fn read(runtime: &tokio::runtime::Runtime, client: &Client) -> Result<Option<Reading>, Failure> {
    let now = k8s_openapi::jiff::Timestamp::now();
    let readings = runtime.block_on(reads::read(client, &ReadingScope::default(), &[], now))?;
    Ok(own_reading(&readings, &checkout_slo()))
}

fn the_budget_read_back_equals_the_synthetic_counts(version: Version) {
    let slo = checkout_slo();
    let dir = tempfile::tempdir().unwrap();
    let data = data_dir(dir.path());
    let end = unix_now() / 3600 * 3600 - 2 * 3600;
    let start = end - 31 * DAY;

    // A month and a day of traffic, then the 5m counts of that history.
    let traffic = dir.path().join("traffic.om");
    let mut out = BufWriter::new(std::fs::File::create(&traffic).unwrap());
    write_openmetrics(&[checkout_service()], start, end - start, 30, &mut out).unwrap();
    out.flush().unwrap();
    drop(out);
    import_openmetrics_on(version, &traffic, &data);
    backfill_counts_on(version, &data, dir.path(), &[("shop", &slo)], start, end);

    // Prometheus now evaluates the generated rules itself.
    let config = config_evaluating(dir.path(), &every_10s(&[("shop", &slo)]));
    let live = Prometheus::start_on(version, &data, &config, &[]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = client(&live.url);
    let reading = wait_for(
        Duration::from_secs(90),
        "reading",
        &String::new,
        || match read(&runtime, &client) {
            Ok(Some(r)) if r.window_error_ratio.is_some() && r.newest_sample.is_some() => Ok(r),
            other => Err(format!("{other:?}")),
        },
    );

    // What the window covers: the 5m counts on the grid after `evaluated - 30d`, up to the end
    // of the data.
    let evaluated = reading.newest_sample.unwrap().as_second() as u64;
    let s = checkout_service();
    let (upto, from) = window_counts(&s, start, end, evaluated);
    let exact = (upto.errors - from.errors) / (upto.requests - from.requests);
    let got = reading.window_error_ratio.unwrap();
    let relative = (got - exact).abs() / exact;
    eprintln!("window error ratio {got} vs exact {exact}: relative error {relative:e}");
    assert!(
        relative < 0.001,
        "window error ratio {got} vs exact {exact} ({relative:e})"
    );

    let now = k8s_openapi::jiff::Timestamp::now();
    let a = budget::assess(
        &slo,
        &reading,
        plimsoll::model::Duration::from_hours(6),
        now,
    )
    .unwrap();
    let expected_remaining = (1.0 - exact / 0.001) * 100.0;
    assert!(
        (a.remaining - expected_remaining).abs() < 0.1,
        "{} vs {expected_remaining}",
        a.remaining
    );
    assert!((a.total_minutes - 43.2).abs() < 1e-9);
    assert!((a.consumed_minutes - exact * 30.0 * 1440.0).abs() < 0.05);
    assert!(
        a.burn_rates
            .contains_key(&plimsoll::model::Duration::from_days(1))
    );

    // Calendar windows are read at chosen instants in tests/calendar_periods.rs.

    // The release gate reads the same numbers.
    let manifest = dir.path().join("slo.yaml");
    std::fs::write(
        &manifest,
        serde_json::to_string(&checkout_manifest()).unwrap(),
    )
    .unwrap();
    let gate = |min: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_plimsoll"))
            .args(["gate", "--slo", "shop/checkout", "--min-budget", min])
            .arg(format!("--prometheus-url={}", live.url))
            .arg("-f")
            .arg(&manifest)
            .output()
            .unwrap()
    };
    let pass = gate(&format!("{:.0}", (a.remaining - 5.0).floor()));
    assert_eq!(pass.status.code(), Some(0), "{pass:?}");
    let line = String::from_utf8_lossy(&pass.stdout);
    assert!(line.starts_with("PASS shop/checkout: "), "{line}");
    assert!(line.contains("% of the error budget left"), "{line}");
    let fail = gate(&format!("{:.0}", (a.remaining + 5.0).ceil()));
    assert_eq!(fail.status.code(), Some(1), "{fail:?}");
    assert!(String::from_utf8_lossy(&fail.stdout).starts_with("FAIL shop/checkout: "));
    let unknown_slo = std::process::Command::new(env!("CARGO_BIN_EXE_plimsoll"))
        .args(["gate", "--slo", "shop/nothing", "--min-budget", "10"])
        .arg(format!("--prometheus-url={}", live.url))
        .arg("-f")
        .arg(&manifest)
        .output()
        .unwrap();
    assert_eq!(unknown_slo.status.code(), Some(3), "{unknown_slo:?}");

    // Prometheus gone: the client says so, with a reason for the condition, and the gate will
    // not decide.
    let url = live.url.clone();
    drop(live);
    let down = std::process::Command::new(env!("CARGO_BIN_EXE_plimsoll"))
        .args(["gate", "--slo", "shop/checkout", "--min-budget", "10"])
        .arg(format!("--prometheus-url={url}"))
        .arg("-f")
        .arg(&manifest)
        .output()
        .unwrap();
    assert_eq!(down.status.code(), Some(3), "{down:?}");
    assert!(String::from_utf8_lossy(&down.stdout).starts_with("UNKNOWN shop/checkout: no answer"));
    let error = read(&runtime, &client).unwrap_err();
    assert_eq!(error.reason, "PrometheusUnreachable", "{error:?}");
}
