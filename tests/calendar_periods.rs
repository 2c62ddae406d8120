//! Calendar periods in a real Prometheus, at instants the test chooses (never the wall clock):
//! five weeks of synthetic traffic in early 2024 (29 February, Berlin's and New York's changes
//! to summer time, a full outage in the last hour before a week starts), the generated 5m
//! counts evaluated by Prometheus' own rule engine over that history, and then, at each
//! instant, the status read and the AnalysisTemplate's query against the exact count ratio.
//!
//! Each instant is a millisecond before a 5-minute grid point: whatever the rule group's
//! evaluation offset, the newest count written by then is the one for the interval ending on the
//! grid point before, so the expected sums do not depend on where evaluations fell. The data is
//! scraped on the grid, so the counts are exact and the bound is float rounding. On Prometheus
//! 2.42 and 3.x.

mod support;

use std::collections::HashMap;
use std::io::{BufWriter, Write as _};
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use plimsoll::budget::{self, NoData, Reading};
use plimsoll::manifests::{self, Decoded};
use plimsoll::model::Slo;
use plimsoll::prometheus::{self as reads, Client, Identity, ReadingScope, Settings};
use plimsoll::rules::{QueryTarget, analysis_template};
use plimsoll::synthetic::{Counts, Disturbed, Incident, Traffic, write_openmetrics};
use support::month::{backfill_counts_at, checkout_service};
use support::prometheus::{Prometheus, Version, data_dir, http, import_openmetrics_on};

on_both_versions!(calendar_periods_count_exactly_their_own_events_from_the_first_count);

/// 2024-02-25T00:00:00Z and 2024-04-01T00:00:00Z: the data's span.
const FROM: u64 = 1_708_819_200;
const UNTIL: u64 = 1_711_929_600;
/// Monday 2024-03-04T00:00:00Z: a UTC week starts, after an hour of full outage.
const OUTAGE_ENDS: u64 = 1_709_510_400;
const STEP: u64 = 300;
const MINUTE: u64 = 60;
const HOUR: u64 = 3_600;
const DAY: u64 = 86_400;

/// (name, window, time zone) of the calendar SLOs.
const SLOS: [(&str, &str, &str); 5] = [
    ("week-utc", "week", "UTC"),
    ("month-utc", "month", "UTC"),
    ("month-kathmandu", "month", "Asia/Kathmandu"),
    ("week-berlin", "week", "Europe/Berlin"),
    ("month-new-york", "month", "America/New_York"),
];

fn manifest(name: &str, window: &str, zone: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "plimsoll.dev/v1alpha1", "kind": "ServiceLevelObjective",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {"service": "checkout", "objective": 99.9, "window": window, "timeZone": zone,
                 "indicator": {"ratio": {
                     "errors": "http_requests_total{job=\"checkout\",code=\"500\"}",
                     "total": "http_requests_total{job=\"checkout\"}"}},
                 "rollback": {"analysisTemplate": true}},
    })
}

fn decoded(manifest: &serde_json::Value) -> Slo {
    match manifests::decode(manifest) {
        Decoded::Valid(v) => v.1,
        other => panic!("{other:?}"),
    }
}

fn slo(name: &str, window: &str, zone: &str) -> Slo {
    decoded(&manifest(name, window, zone))
}

/// A week in UTC in slices of `minutes`, each good when at most 0.5% of its requests fail: the
/// quiet hours' 0.4% are good, the outage's and the slow start's minutes bad.
fn sliced(name: &str, minutes: u64) -> Slo {
    let mut manifest = manifest(name, "week", "UTC");
    manifest["spec"]["budgetingMethod"] = "Timeslices".into();
    manifest["spec"]["timeslice"] =
        serde_json::json!({"duration": format!("{minutes}m"), "objective": 99.5});
    decoded(&manifest)
}

/// 1-minute slices, and 10-minute ones: longer than Prometheus' 5m lookback.
fn sliced_slos() -> Vec<(Slo, u64)> {
    vec![
        (sliced("week-utc-slices", 1), MINUTE),
        (sliced("week-utc-slices-10m", 10), 10 * MINUTE),
    ]
}

/// The bad slices of `slice` seconds in the data in (from, to], both on the slice's grid.
fn exact_bad_slices(traffic: &Disturbed, slice: u64, from: u64, to: u64) -> f64 {
    (from..to).step_by(slice as usize).fold(0.0, |bad, start| {
        let (mut errors, mut total) = (0.0, 0.0);
        for s in start - FROM..start - FROM + slice {
            total += traffic.rate(s);
            errors += traffic.rate(s) * traffic.error_share(s);
        }
        let good = total == 0.0 || errors / total <= 0.005;
        bad + if good { 0.0 } else { 1.0 }
    })
}

fn traffic() -> Disturbed {
    Disturbed {
        service: checkout_service(),
        incidents: vec![
            Incident {
                from: OUTAGE_ENDS - HOUR - FROM,
                to: OUTAGE_ENDS - FROM,
                error_share: 1.0,
            },
            // A slow start of the week: 2% of requests fail for 20 minutes and a half.
            Incident {
                from: OUTAGE_ENDS + 19 * MINUTE + 30 - FROM,
                to: OUTAGE_ENDS + 40 * MINUTE - FROM,
                error_share: 0.02,
            },
        ],
    }
}

/// A millisecond before `seconds`.
fn just_before(seconds: u64) -> Timestamp {
    Timestamp::from_millisecond(seconds as i64 * 1000 - 1).unwrap()
}

/// The data's cumulative counts at every grid point from [`FROM`], integrated per second as
/// the counters are (one pass, not one per instant).
struct Cumulative(Vec<Counts>);

impl Cumulative {
    fn of(traffic: &Disturbed) -> Cumulative {
        let mut out = vec![Counts::default()];
        let mut c = Counts::default();
        for s in 0..UNTIL - FROM {
            let r = traffic.rate(s);
            c.requests += r;
            c.errors += r * traffic.error_share(s);
            if (s + 1) % STEP == 0 {
                out.push(c);
            }
        }
        Cumulative(out)
    }

    /// The error ratio of the data in (from, to], both on the grid.
    fn ratio(&self, from: u64, to: u64) -> f64 {
        let (a, b) = (
            self.0[((from - FROM) / STEP) as usize],
            self.0[((to - FROM) / STEP) as usize],
        );
        (b.errors - a.errors) / (b.requests - a.requests)
    }
}

/// One SLO's reading from a status read of all of them at `at`.
fn reading(client: &Client, slos: &[(String, Slo)], slo: &Slo, at: Timestamp) -> Reading {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let readings = runtime
        .block_on(reads::read_for(client, &ReadingScope::default(), slos, at))
        .unwrap();
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
        .unwrap_or_else(|| panic!("{}: no reading at {at}", slo.name))
}

/// The template's budget query, as Argo Rollouts sends it, evaluated at `at`.
fn template_answer(prometheus: &Prometheus, slo: &Slo, at: Timestamp) -> Vec<f64> {
    let t = analysis_template(
        slo,
        slo.rollback.as_ref().unwrap(),
        "shop",
        QueryTarget {
            address: &prometheus.url,
            tenant: None,
        },
        None,
        &[],
        at,
    );
    let query = &t.spec.metrics[0].provider.prometheus.query;
    let ms = at.as_millisecond();
    let time = format!("{}.{:03}", ms / 1000, ms % 1000);
    let body: serde_json::Value = http()
        .post(format!("{}/api/v1/query", prometheus.url))
        .form(&[("query", query.as_str()), ("time", &time)])
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(body["status"], "success", "{body}");
    body["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["value"][1].as_str().unwrap().parse().unwrap())
        .collect()
}

/// Fresh `ratio_window` series all along, so every instant has a round to read; calendar SLOs
/// take their budget from the period sums, not from this value.
fn window_markers(slos: &[(String, Slo)]) -> String {
    let mut out = String::from("# TYPE slo:sli_error:ratio_window gauge\n");
    for (_, slo) in slos {
        for t in (FROM..=UNTIL).step_by(MINUTE as usize) {
            out.push_str(&format!(
                "slo:sli_error:ratio_window{{slo=\"{}\",slo_namespace=\"shop\",slo_service=\"checkout\"}} 0 {t}\n",
                slo.name
            ));
        }
    }
    out.push_str("# EOF\n");
    out
}

/// The UI's burn-down over the period so far, read at `to` (whole seconds, as the UI reads),
/// sums the counts written by then: its errors over its total are the exact ratio of the period
/// up to the newest of them. The count of the 5 minutes ending on grid point g is written at g
/// plus the group's offset. (Not the status read at `to`: its sums look ahead by up to 5 minutes
/// less 1 ms, which in a backfilled history holds a count written after `to`.)
fn chart_agrees(
    client: &Client,
    cumulative: &Cumulative,
    (slo, offset_ms): (&Slo, u64),
    to: u64,
    what: &str,
) {
    use plimsoll::ui::history::{Owner, spend};
    let at = Timestamp::from_second(to as i64).unwrap();
    let (start, _) = slo.window.period(at).unwrap();
    let newest = (to * 1000 - offset_ms) / (STEP * 1000) * STEP;
    let exact = cumulative.ratio(start.as_second() as u64, newest);
    let owner = Owner {
        namespace: "shop".into(),
        name: slo.name.clone(),
        uid: None,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let spends = runtime
        .block_on(spend(
            client,
            &ReadingScope::default(),
            std::slice::from_ref(&owner),
            plimsoll::ui::window_span(slo, at, 120),
        ))
        .unwrap();
    let buckets = &spends[&owner].buckets;
    let (errors, total) = buckets
        .iter()
        .fold((0.0, 0.0), |(e, n), b| (e + b.1, n + b.2));
    let chart = errors / total;
    assert!(
        (chart - exact).abs() <= 1e-9 * exact,
        "{what}: the chart's period ratio {chart} vs the exact {exact}"
    );
}

fn calendar_periods_count_exactly_their_own_events_from_the_first_count(version: Version) {
    let slos: Vec<(String, Slo)> = SLOS
        .iter()
        .map(|(name, window, zone)| ("shop".to_string(), slo(name, window, zone)))
        .collect();
    let began = std::time::Instant::now();
    let traffic = traffic();
    let cumulative = Cumulative::of(&traffic);
    let dir = tempfile::tempdir().unwrap();
    let data = data_dir(dir.path());
    let raw = dir.path().join("traffic.om");
    let mut out = BufWriter::new(std::fs::File::create(&raw).unwrap());
    write_openmetrics(
        std::slice::from_ref(&traffic),
        FROM,
        UNTIL - FROM,
        MINUTE,
        &mut out,
    )
    .unwrap();
    out.flush().unwrap();
    drop(out);
    import_openmetrics_on(version, &raw, &data);
    let markers = dir.path().join("markers.om");
    let marked: Vec<(String, Slo)> = slos
        .iter()
        .cloned()
        .chain(
            sliced_slos()
                .into_iter()
                .map(|(s, _)| ("shop".to_string(), s)),
        )
        .collect();
    std::fs::write(&markers, window_markers(&marked)).unwrap();
    import_openmetrics_on(version, &markers, &data);
    let pairs: Vec<(&str, &Slo)> = slos.iter().map(|(ns, s)| (ns.as_str(), s)).collect();
    // Prometheus' rule engine writes the counts over the history, at the group's own offset.
    eprintln!("data written in {:?}", began.elapsed());
    // Each SLO's counts at its own group offset: on the grid (vmalert aligns evaluations to
    // it), a millisecond past and before it, and between.
    let offsets: HashMap<&str, u64> = SLOS
        .iter()
        .map(|s| s.0)
        .zip([0, 1, 137_250, 299_999, 0])
        .collect();
    for (ns, slo) in &pairs {
        let offset_ms = offsets[slo.name.as_str()];
        backfill_counts_at(
            version,
            &data,
            dir.path(),
            &[(ns, slo)],
            (FROM + STEP, UNTIL),
            offset_ms,
        );
    }
    // The slices around the week's start (a minute's rule over five weeks would take long).
    let groups: Vec<_> = sliced_slos()
        .iter()
        .map(|(slo, _)| {
            let mut group = plimsoll::rules::render(slo, "shop").remove(0);
            group
                .rules
                .retain(|r| r.record.as_deref() == Some(plimsoll::rules::names::SLICE_GOOD));
            group
        })
        .collect();
    let file = dir.path().join("slices.yaml");
    std::fs::write(&file, plimsoll::rules::rule_file(&groups).unwrap()).unwrap();
    support::prometheus::backfill_rules(
        version,
        &data,
        &file,
        OUTAGE_ENDS - 2 * HOUR,
        OUTAGE_ENDS + 2 * HOUR,
    );
    eprintln!("counts and slices backfilled after {:?}", began.elapsed());

    let config = dir.path().join("prometheus.yml");
    std::fs::write(&config, "global: {evaluation_interval: 1m}\n").unwrap();
    let prometheus = Prometheus::start_on(version, &data, &config, &[]);
    let client = Client::new(Settings::new(&prometheus.url, Duration::from_secs(30))).unwrap();
    let by_name = |name: &str| slos.iter().find(|(_, s)| s.name == name).unwrap().1.clone();

    // (SLO, grid point the instant is a millisecond before, what it shows).
    let week = OUTAGE_ENDS;
    let march = 1_709_251_200; // 2024-03-01T00:00Z
    let kathmandu_march = 1_709_230_500; // 2024-02-29T18:15Z: 1 March 00:00 at UTC+5:45
    let cases: Vec<(&str, u64, &str)> = vec![
        // The first 5 minutes: no count of the period yet, whatever the previous one did.
        (
            "week-utc",
            week + 5 * MINUTE,
            "first 5 minutes after an outage",
        ),
        (
            "week-utc",
            week + 10 * MINUTE,
            "first count after an outage",
        ),
        ("week-utc", week + HOUR, "first hour after an outage"),
        ("week-utc", week + DAY, "first day after an outage"),
        (
            "month-utc",
            march + 5 * MINUTE,
            "first 5 minutes of a month",
        ),
        ("month-utc", march + 10 * MINUTE, "first count of a month"),
        ("month-utc", march + HOUR, "first hour of a month"),
        ("month-utc", march + DAY, "first day of a month"),
        ("week-utc", 1_709_208_000, "29 February, noon"),
        (
            "month-kathmandu",
            kathmandu_march + 5 * MINUTE,
            "+5:45, first 5 minutes",
        ),
        (
            "month-kathmandu",
            kathmandu_march + HOUR,
            "+5:45, first hour",
        ),
        ("month-kathmandu", kathmandu_march + DAY, "+5:45, first day"),
        (
            "week-berlin",
            1_711_886_400,
            "Berlin, the day summer time starts",
        ),
        (
            "month-new-york",
            1_710_072_000,
            "New York, the day summer time starts, after an outage",
        ),
    ];
    let mut worst: f64 = 0.0;
    for (name, grid, what) in cases {
        let slo = by_name(name);
        let at = just_before(grid);
        let (start, end) = slo.window.period(at).unwrap();
        let (start, end) = (start.as_second() as u64, end.as_second() as u64);
        let newest = grid - STEP;
        let r = reading(&client, &slos, &slo, at);
        let assessed = budget::assess(&slo, &r, plimsoll::model::Duration::from_hours(6), at);
        if newest <= start {
            // Nothing of the period is measured: no number, no action, in the status and in
            // the template (an empty answer is a Successful measurement for Argo Rollouts).
            assert_eq!(r.period_error_ratio, None, "{what}");
            assert_eq!(
                assessed,
                Err(NoData::PeriodStarting {
                    start: Timestamp::from_second(start as i64).unwrap()
                }),
                "{what}"
            );
            let template = template_answer(&prometheus, &slo, at);
            assert_eq!(template, [] as [f64; 0], "{what}");
            eprintln!("{what} ({name}): no count of the period yet: PeriodStarting");
            continue;
        }
        let exact = cumulative.ratio(start, newest);
        let got = r
            .period_error_ratio
            .unwrap_or_else(|| panic!("{what}: no period ratio"));
        let relative = (got - exact).abs() / exact;
        // What a sum reaching one count back would have read (the previous read's flaw).
        let straddled = (start >= FROM + STEP).then(|| {
            let s = cumulative.ratio(start - STEP, newest);
            (s - exact).abs() / exact
        });
        eprintln!(
            "{what} ({name}): period ratio {got:e}, exact {exact:e}, relative error {relative:e} \
             (with one count before the start: {straddled:?} off)"
        );
        if relative > 1e-9 {
            for record in ["slo:sli_errors:increase5m", "slo:sli_total:increase5m"] {
                for q in [
                    format!(
                        "sum_over_time({record}{{slo=\"{name}\"}}[{}s] @ {grid})",
                        grid - start
                    ),
                    format!(
                        "sum_over_time(({record}{{slo=\"{name}\"}} offset 1ms)[{}ms:5m] @ {}.999)",
                        (grid + STEP - 1 - start - 450) * 1000 + 999,
                        grid + STEP - 1
                    ),
                    format!(
                        "sum_over_time({record}{{slo=\"week-utc\"}}[{}s] @ {grid})",
                        grid - start
                    ),
                ] {
                    let v = support::prometheus::instant_values(&prometheus, &q, grid);
                    eprintln!("{q}: {v:?}");
                }
            }
            let c = &cumulative.0;
            let (a, b) = (
                c[((start - FROM) / STEP) as usize],
                c[((newest - FROM) / STEP) as usize],
            );
            eprintln!(
                "exact errors {} total {}",
                b.errors - a.errors,
                b.requests - a.requests
            );
        }
        assert!(relative <= 1e-9, "{what}: {got} vs exact {exact}");
        worst = worst.max(relative);
        let share = (newest - start) as f64 / (end - start) as f64;
        let remaining = (1.0 - exact * share / 0.001) * 100.0;
        let a = assessed.unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(
            (a.remaining - remaining).abs() <= 1e-6 * remaining.abs().max(1.0),
            "{what}: {} vs {remaining}",
            a.remaining
        );
        chart_agrees(&client, &cumulative, (&slo, offsets[name]), grid - 1, what);
        let template = template_answer(&prometheus, &slo, at);
        assert_eq!(template.len(), 1, "{what}: {template:?}");
        assert!(
            (template[0] * 100.0 - remaining).abs() <= 1e-6 * remaining.abs().max(1.0),
            "{what}: the template says {} where the status says {remaining}",
            template[0] * 100.0
        );
    }
    // Timeslices: the share of the week's bad slices, none of the outage's, and the budget
    // they spend of the week's 10,080 minutes.
    for (slices, slice) in sliced_slos() {
        let own = [("shop".to_string(), slices.clone())];
        let name = slices.name.clone();
        for grid in [week + 40 * MINUTE, week + HOUR] {
            let at = just_before(grid);
            // The newest slice ends a slice before the grid point: it is written after it.
            let newest = grid - slice;
            let bad = exact_bad_slices(&traffic, slice, week, newest);
            let share = bad / ((newest - week) / slice) as f64;
            let r = reading(&client, &own, &slices, at);
            let got = r.period_error_ratio.expect("a bad-slice share");
            eprintln!("{name} at {at}: bad share {got} (exact {share}, {bad} slices)");
            assert!(bad > 0.0, "{name} at {at}: the slow start has bad slices");
            assert!(
                (got - share).abs() <= 1e-12,
                "{name} at {at}: {got} vs {share}"
            );
            let a =
                budget::assess(&slices, &r, plimsoll::model::Duration::from_hours(6), at).unwrap();
            let spent = bad * slice as f64 / (7 * DAY) as f64 / 0.001;
            assert!(
                (a.remaining - 100.0 * (1.0 - spent)).abs() <= 1e-9,
                "{name} at {at}: remaining {} vs {}",
                a.remaining,
                100.0 * (1.0 - spent)
            );
            let template = template_answer(&prometheus, &slices, at);
            assert!(
                template.len() == 1 && (template[0] * 100.0 - a.remaining).abs() <= 1e-6,
                "{name} at {at}: the template says {template:?} where the status says {}",
                a.remaining
            );
        }
        // Before the period's first slice is written: nothing measured, and no template answer.
        let at = just_before(week + slice);
        let young = reading(&client, &own, &slices, at);
        assert_eq!(young.period_error_ratio, None, "{name} at {at}");
        assert!(matches!(
            budget::assess(
                &slices,
                &young,
                plimsoll::model::Duration::from_hours(6),
                at
            ),
            Err(NoData::PeriodStarting { .. })
        ));
        assert_eq!(template_answer(&prometheus, &slices, at), Vec::<f64>::new());
    }
    eprintln!(
        "worst relative error of a period ratio: {worst:e}; {:?} in all",
        began.elapsed()
    );
    // A week across the change to summer time is 167 hours, a March in New York 743.
    let berlin = by_name("week-berlin")
        .window
        .period(just_before(1_711_886_400))
        .unwrap();
    assert_eq!(berlin.1.duration_since(berlin.0).as_hours(), 167);
}
