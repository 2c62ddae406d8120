//! A month of history for a real backend's rules: the checkout service's synthetic traffic and
//! SLO, the 5m counts' history backfilled into Prometheus, and the generated groups evaluated
//! every 10 s so a test need not wait minutes.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use plimsoll::manifests::{self, Decoded};
use plimsoll::model::Slo;
use plimsoll::rules::{self, RuleGroup};
use plimsoll::synthetic::{Counts, Service};

use super::prometheus::{Version, backfill_rules_at};

pub const DAY: u64 = 86_400;
/// The slow group's step: its 5m counts lie on this grid.
pub const STEP: u64 = 300;

/// The checkout service: 40 requests/s at the daily peak, errors ten times as likely in the quiet
/// hours as in the busy ones.
pub fn checkout_service() -> Service {
    Service {
        job: "checkout".into(),
        peak_per_second: 40.0,
        quiet_error_share: 0.004,
        busy_error_share: 0.0004,
        phase_hours: 0.0,
    }
}

/// shop/checkout: 99.9% of the service's requests over 30 days are not 500s.
pub fn checkout_manifest() -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "plimsoll.dev/v1alpha1", "kind": "ServiceLevelObjective",
        "metadata": {"name": "checkout", "namespace": "shop"},
        "spec": {"service": "checkout", "objective": 99.9, "window": "30d",
                 "indicator": {"ratio": {
                     "errors": "http_requests_total{job=\"checkout\",code=\"500\"}",
                     "total": "http_requests_total{job=\"checkout\"}"}}},
    })
}

pub fn checkout_slo() -> Slo {
    match manifests::decode(&checkout_manifest()) {
        Decoded::Valid(v) => v.1,
        other => panic!("{other:?}"),
    }
}

/// The service's counts (from `start`) where a 30-day window evaluated at `evaluated` ends (the
/// data's end, `end`) and where it begins (before the first 5m count on the grid after
/// `evaluated - 30d`): what the recorded window sums when every count is in place.
pub fn window_counts(service: &Service, start: u64, end: u64, evaluated: u64) -> (Counts, Counts) {
    let first_count = (evaluated - 30 * DAY).div_ceil(STEP) * STEP;
    (
        service.counts_until(end - start),
        service.counts_until(first_count - STEP - start),
    )
}

/// Every generated group of the SLOs (`(namespace, slo)`), evaluated every 10 s: the subqueries
/// over 5m counts give the same sums at any cadence.
pub fn every_10s(slos: &[(&str, &Slo)]) -> Vec<RuleGroup> {
    let mut groups = Vec::new();
    for (ns, slo) in slos {
        groups.extend(rules::render(slo, ns).into_iter().map(|mut g| {
            g.interval = "10s".into();
            g
        }));
    }
    groups
}

/// Writes the 5m counts' history of the SLOs into `data` (which holds the raw month), as the
/// slow group would have recorded it from `start` to `end`: the totals first, since the errors
/// read the recorded totals.
pub fn backfill_counts(data: &Path, dir: &Path, slos: &[(&str, &Slo)], start: u64, end: u64) {
    backfill_counts_on(Version::chosen(), data, dir, slos, start, end);
}

/// [`backfill_counts`] with the Prometheus and promtool of `version`.
pub fn backfill_counts_on(
    version: Version,
    data: &Path,
    dir: &Path,
    slos: &[(&str, &Slo)],
    start: u64,
    end: u64,
) {
    backfill_counts_at(version, data, dir, slos, (start, end), 0);
}

/// [`backfill_counts_on`] with the counts evaluated `offset_ms` past the 5-minute grid, as a
/// group whose evaluation offset that is.
pub fn backfill_counts_at(
    version: Version,
    data: &Path,
    dir: &Path,
    slos: &[(&str, &Slo)],
    (start, end): (u64, u64),
    offset_ms: u64,
) {
    for record in [rules::names::TOTAL_5M, rules::names::ERRORS_5M] {
        let groups: Vec<RuleGroup> = slos
            .iter()
            .map(|(ns, slo)| {
                let mut counts = rules::render(slo, ns).remove(1);
                counts.rules.retain(|r| r.record.as_deref() == Some(record));
                counts
            })
            .collect();
        let file = dir.join("counts.yaml");
        std::fs::write(&file, rules::rule_file(&groups).unwrap()).unwrap();
        backfill_rules_at(version, data, &file, (start, end), offset_ms);
    }
}

/// A Prometheus config under `dir` that evaluates `groups` every 10 s (the groups' own
/// intervals win).
pub fn config_evaluating(dir: &Path, groups: &[RuleGroup]) -> PathBuf {
    let rules = rules::rule_file(groups).unwrap();
    super::prometheus::rules_config(dir, &rules, "10s")
}

/// Polls `check` every second until it gives a value or `limit` passes; then panics with its
/// last complaint and `context()` (such as the logs' tails).
pub fn wait_for<T>(
    limit: Duration,
    what: &str,
    context: &dyn Fn() -> String,
    mut check: impl FnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        let last = match check() {
            Ok(v) => return v,
            Err(e) => e,
        };
        assert!(
            Instant::now() < deadline,
            "no {what} within {limit:?}: {last}\n{}",
            context()
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}
