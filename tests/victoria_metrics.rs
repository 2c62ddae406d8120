//! The generated rules on VictoriaMetrics for real: a month of synthetic counters imported into
//! victoria-metrics, vmalert's replay backfilling the 5m counts, vmalert evaluating every
//! generated rule live (recorded series written back to VictoriaMetrics), and the budget read
//! through Plimsoll's own client from VictoriaMetrics' Prometheus-compatible API: the window SLI
//! matches the exact count ratio, and a full outage fires the page-tier burn alert in vmalert.
//!
//! MetricsQL differences that matter here, measured against VictoriaMetrics 1.79 (README,
//! "VictoriaMetrics"): `[W:5m]` subqueries take W/5m steps (ranges are left-open, as in
//! Prometheus 3), and vmalert writes recorded series asynchronously, so a rule reading another
//! rule of its group sees that rule's previous evaluation.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use plimsoll::budget::Reading;
use plimsoll::model::Slo;
use plimsoll::prometheus as reads;
use plimsoll::prometheus::{Client, Identity, ReadingScope, Settings};
use plimsoll::rules;
use plimsoll::synthetic::{Counts, write_openmetrics};
use support::month::{
    DAY, STEP, checkout_service, checkout_slo, every_10s, wait_for, window_counts,
};
use support::prometheus::unix_now;
use support::victoria_metrics::{
    VictoriaMetrics, Vmalert, log_tail, openmetrics_to_prometheus, replay,
};

/// The SLO's own reading, read as `plimsoll local` and `gate` read it.
fn read(runtime: &tokio::runtime::Runtime, client: &Client, slo: &Slo) -> Result<Reading, String> {
    let now = k8s_openapi::jiff::Timestamp::now();
    let readings = runtime
        .block_on(reads::read(client, &ReadingScope::default(), &[], now))
        .map_err(|e| format!("{e:?}"))?;
    let id = Identity {
        namespace: "shop",
        name: &slo.name,
        service: &slo.service,
        uid: None,
        group_by: slo.indicator.group_by(),
    };
    let (mine, foreign) = reads::own(&readings, &id);
    assert!(foreign.is_empty(), "{foreign:?}");
    mine.first()
        .map(|(_, r)| (*r).clone())
        .ok_or_else(|| "no reading of shop/checkout".to_string())
}

fn write_rules(path: &std::path::Path, groups: &[rules::RuleGroup]) {
    std::fs::write(path, rules::rule_file(groups).unwrap()).unwrap();
}

/// Pushes fresh samples every 2 s until stopped: the counters go on from `from`, and every
/// request fails.
fn outage(
    vm: &VictoriaMetrics,
    from: Counts,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    let url = format!("{}/api/v1/import/prometheus", vm.url);
    let per_second = checkout_service().peak_per_second;
    std::thread::spawn(move || {
        let client = support::prometheus::http();
        let began = unix_now();
        while !stop.load(Ordering::Relaxed) {
            let now = unix_now();
            let failed = from.errors + per_second * (now - began + 1) as f64;
            let ok = from.requests - from.errors;
            let ms = now * 1000;
            let text = format!(
                "http_requests_total{{job=\"checkout\",code=\"200\"}} {ok} {ms}\n\
                 http_requests_total{{job=\"checkout\",code=\"500\"}} {failed} {ms}\n"
            );
            let _ = client
                .post(&url)
                .body(text)
                .timeout(Duration::from_secs(5))
                .send();
            std::thread::sleep(Duration::from_secs(2));
        }
    })
}

#[test]
fn vmalert_records_the_window_sli_and_pages_on_a_full_outage() {
    let slo = checkout_slo();
    let dir = tempfile::tempdir().unwrap();
    let vm = VictoriaMetrics::start(dir.path());
    // The data ends two hours ago: the live 5m counts then have nothing to count, and the window
    // holds exactly the replayed history.
    let end = unix_now() / 3600 * 3600 - 2 * 3600;
    let start = end - 31 * DAY;
    let mut om = Vec::new();
    write_openmetrics(&[checkout_service()], start, end - start, 30, &mut om).unwrap();
    vm.import_prometheus(openmetrics_to_prometheus(&String::from_utf8(om).unwrap()));

    // The 5m counts' history: the slow group's two count rules, the total first (the errors'
    // `or 0 * total` reads it), replayed over the month as vmalert would have recorded them.
    let mut counts = rules::render(&slo, "shop").remove(1);
    counts.rules.retain(|r| {
        r.record
            .as_deref()
            .is_some_and(|n| n.ends_with(":increase5m"))
    });
    assert_eq!(counts.rules.len(), 2, "{counts:?}");
    let counts_file = dir.path().join("counts.yaml");
    write_rules(&counts_file, &[counts]);
    let started = Instant::now();
    replay(
        &vm,
        &counts_file,
        start,
        end,
        &dir.path().join("replay.log"),
    );
    eprintln!(
        "vmalert replay of 31 days of 5m counts: {:?}",
        started.elapsed()
    );

    // vmalert now evaluates every generated rule, every 10 s instead of 30 s and 5 m so the test
    // need not wait: the subqueries over 5m counts give the same sums at any cadence.
    let groups = every_10s(&[("shop", &slo)]);
    let rules_file = dir.path().join("rules.yaml");
    write_rules(&rules_file, &groups);
    let vmalert = Vmalert::start(&vm, &rules_file, dir.path());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = Client::new(Settings::new(&vm.url, Duration::from_secs(10))).unwrap();
    let logs = || format!("{}\n{}", log_tail(&vmalert.log), log_tail(&vm.log));
    let reading = wait_for(Duration::from_secs(120), "window SLI", &logs, || {
        read(&runtime, &client, &slo).and_then(|r| match r {
            Reading {
                window_error_ratio: Some(_),
                newest_sample: Some(_),
                ..
            } => Ok(r),
            _ => Err(format!("{r:?}")),
        })
    });

    // The window: the 5m counts on the grid after `evaluated - 30d`, up to the end of the data.
    // Two documented causes move it, each by one whole count: VictoriaMetrics evaluates a query
    // within 30 s of now 30 s earlier (-search.latencyOffset), and the rules' subquery reaches
    // just short of a step past the instant (`offset -4m59.999s`), so the first count is the one
    // `window_counts` names or the next; and where the step after the data's last count has no
    // count of its own, MetricsQL looks back to the last one again (no staleness marker ends a
    // series vmalert stopped writing), counting the data's last 5m twice. So the answer is one
    // of these four sums of whole counts, up to float rounding: ~8,640 additions and values
    // stored with 12+ significant digits, far below 1e-8, while any two of the sums differ by
    // ~1e-5 of the ratio or more (one count of the month). Measured: 5e-14 from "the next, last
    // twice", in two runs.
    let evaluated = reading.newest_sample.unwrap().as_second() as u64;
    let s = checkout_service();
    let (upto, from) = window_counts(&s, start, end, evaluated);
    let exact = (upto.errors - from.errors) / (upto.requests - from.requests);
    let got = reading.window_error_ratio.unwrap();
    let before_last = s.counts_until(end - STEP - start);
    // The counts from the one after `window_counts`' first (which covers up to `first`).
    let first = (evaluated - 30 * DAY).div_ceil(STEP) * STEP;
    assert_eq!(s.counts_until(first - STEP - start), from);
    let next = s.counts_until(first - start);
    let candidates: Vec<(&str, f64)> = [("first", from), ("next", next)]
        .into_iter()
        .flat_map(|(name, from)| {
            let (errors, requests) = (upto.errors - from.errors, upto.requests - from.requests);
            let (last_errors, last_requests) = (
                upto.errors - before_last.errors,
                upto.requests - before_last.requests,
            );
            [
                (name, errors / requests),
                (name, (errors + last_errors) / (requests + last_requests)),
            ]
        })
        .collect();
    let relative = |c: f64| (got - c).abs() / c;
    eprintln!(
        "VictoriaMetrics window error ratio {got} vs exact {exact}: relative {:e}; vs the \
         candidates (first count as named or the next; last 5m once, twice): {:?}",
        relative(exact),
        candidates
            .iter()
            .map(|(n, c)| format!("{n} {:e}", relative(*c)))
            .collect::<Vec<_>>()
    );
    assert!(
        candidates.iter().any(|(_, c)| relative(*c) < 1e-8),
        "window error ratio {got} is none of the sums of whole counts {candidates:?}"
    );

    // Before the outage no burn alert is pending or firing: the data ended two hours ago.
    let before = vmalert.alerts();
    assert!(
        before
            .iter()
            .all(|a| a["name"] != "CheckoutErrorBudgetBurn"),
        "{before:?}"
    );

    // A full outage, live: fresh samples in which every request fails.
    let stop = Arc::new(AtomicBool::new(false));
    let pusher = outage(&vm, upto, stop.clone());
    let began = Instant::now();
    let page = wait_for(Duration::from_secs(180), "page alert firing", &logs, || {
        let alerts = vmalert.alerts();
        alerts
            .iter()
            .find(|a| {
                a["name"] == "CheckoutErrorBudgetBurn"
                    && a["state"] == "firing"
                    && a["labels"]["long"] == "1h"
                    && a["labels"]["short"] == "5m"
            })
            .cloned()
            .ok_or_else(|| format!("{alerts:?}"))
    });
    eprintln!(
        "page alert firing {:?} after the outage began",
        began.elapsed()
    );
    assert_eq!(page["labels"]["severity"], "critical", "{page}");
    assert_eq!(page["labels"]["slo"], "checkout", "{page}");
    let value: f64 = page["value"].as_str().unwrap().parse().unwrap();
    assert!(value > 14.4 * 0.001, "{page}");
    // Plimsoll's read sees the same burn.
    let hour = plimsoll::model::Duration::from_hours(1);
    let burning = wait_for(Duration::from_secs(60), "1h burn read", &logs, || {
        read(&runtime, &client, &slo).and_then(|r| match r.error_ratios.get(&hour) {
            Some(ratio) if *ratio > 14.4 * 0.001 => Ok(*ratio),
            _ => Err(format!("{r:?}")),
        })
    });
    eprintln!("1h error ratio read during the outage: {burning}");
    stop.store(true, Ordering::Relaxed);
    pusher.join().unwrap();
}
