//! The Grafana dashboard for every window: SLOs over 30 days, 4 weeks, 7 days and the calendar
//! month, and a 30-day SLO with `groupBy`, on the demo's traffic, with their rules' history
//! recorded as `make demo` records it. Every panel's query is run as Grafana runs it (variables
//! from their own queries, "All" and each SLO alone) and must return data for every SLO it
//! selects; with "All", every value at the data's end must be the one computed here from the
//! synthetic counts: SLI, budget left (for the month, the month so far as the status computes it:
//! `budget::assess`), the four burn rates over each window's own alert windows, the 5-minute error
//! ratio and request rate, the window's bad events and allowance, and each group's budget. On
//! Prometheus 2.42 and 3.x. (The alerts panel needs live rules: tests/dashboard_live.rs.)

mod support;

use std::collections::{BTreeMap, BTreeSet};

use plimsoll::demo::{self, LEAD_IN, WINDOW};
use plimsoll::model::{Duration, Window};
use plimsoll::rules::windows::burn_windows;
use plimsoll::synthetic::{Counts, Traffic};
use serde_json::Value;
use support::demo::demo_history_on;
use support::grafana::{self, get, label_values, regex_value};
use support::prometheus::{Prometheus, Version};

on_both_versions!(every_panel_shows_each_windows_numbers);

const STEP: u64 = 300;
const BUDGET: f64 = 0.001;

/// (name, window, jobs): the SLOs, each 99.9% of `http_requests_total` of its jobs not 5xx.
const SLOS: [(&str, &str, &[&str]); 5] = [
    ("checkout-30d", "30d", &["checkout"]),
    ("checkout-4w", "4w", &["checkout"]),
    ("checkout-7d", "7d", &["checkout"]),
    ("checkout-month", "month", &["checkout"]),
    ("shop-by-job", "30d", &["catalog", "checkout"]),
];

fn manifest(name: &str, window: &str, jobs: &[&str]) -> String {
    let total = format!("http_requests_total{{job=~\"{}\"}}", jobs.join("|"));
    let errors = total.replace("\"}", "\",code=~\"5..\"}");
    let group_by = if jobs.len() > 1 {
        "\n      groupBy: [job]"
    } else {
        ""
    };
    format!(
        "apiVersion: plimsoll.dev/v1alpha1\nkind: ServiceLevelObjective\nmetadata:\n  \
         name: {name}\n  namespace: shop\nspec:\n  service: checkout\n  objective: 99.9\n  \
         window: {window}\n  indicator:\n    ratio:\n      errors: '{errors}'\n      \
         total: '{total}'{group_by}\n"
    )
}

/// Each demo service's counters at every minute of the data (its samples), from its start.
struct History {
    start: u64,
    end: u64,
    counts: BTreeMap<String, Vec<Counts>>,
}

impl History {
    fn new(end: u64) -> History {
        let duration = WINDOW + LEAD_IN;
        let mut counts = BTreeMap::new();
        for service in demo::services(duration) {
            let mut at = Counts::default();
            let mut points = vec![at];
            for s in 0..duration {
                let r = service.rate(s);
                at.requests += r;
                at.errors += r * service.error_share(s);
                if (s + 1) % demo::SCRAPE == 0 {
                    points.push(at);
                }
            }
            counts.insert(service.job().to_string(), points);
        }
        History {
            start: end - duration,
            end,
            counts,
        }
    }

    /// The counters of `job` at `t` (a sample's time); nothing before the data.
    fn at(&self, job: &str, t: u64) -> Counts {
        let points = &self.counts[job];
        if t <= self.start {
            return points[0];
        }
        assert_eq!(
            (t - self.start) % demo::SCRAPE,
            0,
            "{t} is not a sample's time"
        );
        points[((t - self.start) / demo::SCRAPE) as usize]
    }

    /// Errors and requests of `job` in the last `seconds` before the end.
    fn last(&self, job: &str, seconds: u64) -> (f64, f64) {
        self.since(job, self.end - seconds)
    }

    fn since(&self, job: &str, from: u64) -> (f64, f64) {
        let (a, b) = (self.at(job, from), self.at(job, self.end));
        (b.errors - a.errors, b.requests - a.requests)
    }
}

fn ratio((errors, total): (f64, f64)) -> f64 {
    errors / total
}

/// What each series of each panel's query must show at the data's end, by the SLO and group
/// (the `job` label, empty without one) and, for burn rates, the window measured.
struct Expected {
    history: History,
}

impl Expected {
    fn slo(&self, name: &str) -> (Window, &'static [&'static str]) {
        let (_, window, jobs) = SLOS.iter().find(|(n, _, _)| *n == name).unwrap();
        let object = serde_saphyr::from_str::<plimsoll::api::ServiceLevelObjective>(&manifest(
            name, window, jobs,
        ))
        .unwrap();
        (plimsoll::model::validate(&object).unwrap().window, jobs)
    }

    /// Budget left as a ratio, as the status computes it: over the rolling window, or the
    /// calendar period so far spent over the whole period.
    fn remaining(&self, window: &Window, job: &str) -> f64 {
        let h = &self.history;
        let Some((start, end)) = window.period(jiff_at(h.end)) else {
            let w = window.rolling_equivalent().as_secs();
            return 1.0 - ratio(h.last(job, w)) / BUDGET;
        };
        let (start, end) = (start.as_second() as u64, end.as_second() as u64);
        let gone = (h.end - start) as f64 / (end - start) as f64;
        1.0 - ratio(h.since(job, start)) * gone / BUDGET
    }

    /// The value of one series of a panel's query at the end; `None` for a query not known here.
    fn value(&self, panel: &str, reference: &str, labels: &Value) -> Option<f64> {
        let h = &self.history;
        let name = labels["slo"].as_str().unwrap();
        let (window, jobs) = self.slo(name);
        let job = labels["job"].as_str();
        let jobs: Vec<&str> = job.map_or(jobs.to_vec(), |j| vec![j]);
        let full = window.rolling_equivalent().as_secs();
        let burn = |index: usize| {
            let long = burn_windows(&window)[index].long;
            if let Some(measured) = labels["burn_window"].as_str() {
                assert_eq!(measured, long.to_string(), "{name}'s burn window");
            }
            jobs.iter()
                .map(|j| ratio(h.last(j, long.as_secs())) / BUDGET)
                .fold(f64::MIN, f64::max)
        };
        let min_remaining = || {
            jobs.iter()
                .map(|j| self.remaining(&window, j))
                .fold(f64::MAX, f64::min)
        };
        let one = || {
            assert_eq!(jobs.len(), 1, "{panel} {reference}: {labels}");
            jobs[0]
        };
        let burns = ["page_fast", "page_slow", "ticket_fast", "ticket_slow"];
        Some(match (panel, reference) {
            (_, "info") => 1.0,
            (_, "sli") => {
                let worst = jobs
                    .iter()
                    .map(|j| ratio(h.last(j, full)))
                    .fold(f64::MIN, f64::max);
                100.0 * (1.0 - worst)
            }
            ("Service level objectives" | "Error budget left now", "budget" | "A") => {
                100.0 * min_remaining()
            }
            ("Error budget left: $slo" | "Per group (groupBy)", "A" | "budget") => {
                100.0 * self.remaining(&window, one())
            }
            ("Per group (groupBy)", "burn") => burn(0),
            (_, r) if burns.contains(&r) => burn(burns.iter().position(|b| *b == r).unwrap()),
            (_, "errors") => ratio(h.last(one(), STEP)),
            (_, "rate") => h.last(one(), STEP).1 / STEP as f64,
            (_, "spent") => h.last(one(), full).0,
            (_, "allowed") => h.last(one(), full).1 * BUDGET,
            _ => return None,
        })
    }
}

fn jiff_at(t: u64) -> jiff::Timestamp {
    jiff::Timestamp::from_second(t as i64).unwrap()
}

/// The data's end, 2026-11-18T09:00:00Z: an instant, not the clock, so that the month so far is
/// the same 17 days and 9 hours on every run (the data reaches back to 19 October, so the
/// month's figure and the rolling windows' differ).
const END: u64 = 1_794_992_400;

/// The query's answer at the end: instant, or the last point of a range over the last hour (the
/// recorded history the demo writes) as Grafana asks for a time series.
fn run(prometheus: &Prometheus, expr: &str, instant: bool, end: u64) -> Vec<(Value, f64)> {
    let result = if instant {
        get(
            prometheus,
            "/api/v1/query",
            &[("query", expr.to_string()), ("time", end.to_string())],
        )["result"]
            .clone()
    } else {
        get(
            prometheus,
            "/api/v1/query_range",
            &[
                ("query", expr.to_string()),
                ("start", (end - 3600).to_string()),
                ("end", end.to_string()),
                ("step", STEP.to_string()),
            ],
        )["result"]
            .clone()
    };
    let number = |v: &Value| v[1].as_str().unwrap().parse::<f64>().unwrap();
    result
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| {
            let value = if instant {
                number(&s["value"])
            } else {
                let last = s["values"].as_array().unwrap().last()?;
                assert_eq!(last[0].as_f64().unwrap() as u64, end, "{expr}: {s}");
                number(last)
            };
            Some((s["metric"].clone(), value))
        })
        .collect()
}

fn every_panel_shows_each_windows_numbers(version: Version) {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let slos = dir.join("slos");
    std::fs::create_dir_all(&slos).unwrap();
    for (name, window, jobs) in SLOS {
        std::fs::write(
            slos.join(format!("{name}.yaml")),
            manifest(name, window, jobs),
        )
        .unwrap();
    }
    let end = demo_history_on(version, dir, &slos, Some(END));
    let expected = Expected {
        history: History::new(end),
    };
    let config = dir.join("prometheus.yml");
    std::fs::write(&config, "global: {evaluation_interval: 30s}\n").unwrap();
    let prometheus = Prometheus::start_on(version, &dir.join("data"), &config, &[]);

    let dashboard = grafana::dashboard();
    let namespaces = label_values(
        &prometheus,
        &grafana::variable_query(&dashboard, "namespace"),
    );
    assert_eq!(namespaces, ["shop"]);
    let namespace = regex_value(&namespaces);
    let names = label_values(
        &prometheus,
        &grafana::variable_query(&dashboard, "slo").replace("$namespace", &namespace),
    );
    let all: BTreeSet<String> = SLOS.iter().map(|s| s.0.to_string()).collect();
    assert_eq!(names.iter().cloned().collect::<BTreeSet<_>>(), all);

    let (mut checked, mut queries) = (0, 0);
    for target in grafana::targets(&dashboard) {
        if target.panel == "Alerts firing" {
            continue;
        }
        let mut picks = vec![names.clone()];
        picks.extend(names.iter().map(|n| vec![n.clone()]));
        for pick in picks {
            let expr = target
                .expr
                .replace("$namespace", &namespace)
                .replace("$slo", &regex_value(&pick));
            let answer = run(&prometheus, &expr, target.instant, end);
            queries += 1;
            let seen: BTreeSet<String> = answer
                .iter()
                .map(|(m, _)| m["slo"].as_str().unwrap_or_default().to_string())
                .collect();
            let wanted: BTreeSet<String> = pick.iter().cloned().collect();
            assert_eq!(seen, wanted, "{} {}: {expr}", target.panel, target.ref_id);
            if pick.len() < names.len() {
                continue;
            }
            for (metric, got) in &answer {
                let want = expected
                    .value(&target.panel, &target.ref_id, metric)
                    .unwrap_or_else(|| {
                        panic!("no expectation for {} {}", target.panel, target.ref_id)
                    });
                let close =
                    (got - want).abs() <= 1e-3 * want.abs().max(1e-9) || (got - want).abs() < 1e-9;
                assert!(
                    close,
                    "{} {} {metric}: {got} from Prometheus, {want} from the data: {expr}",
                    target.panel, target.ref_id
                );
                checked += 1;
            }
        }
    }
    eprintln!(
        "Prometheus {}: {queries} queries, {checked} values checked",
        version.major()
    );
    // Every target of every panel but the alerts', each with "All" and each of the 5 SLOs.
    assert!(queries >= 19 * 6, "{queries} queries");
    assert!(checked >= 19 * 5, "{checked} values");
}

/// The month SLO's budget is the month so far, not its rolling 30 days: on the demo's traffic
/// (checkout's bad release two days before the end) the two differ by far more than the
/// tolerance, so the check above tells them apart.
#[test]
fn the_months_budget_differs_from_its_rolling_equivalent() {
    let end = END;
    let expected = Expected {
        history: History::new(end),
    };
    let (month, _) = expected.slo("checkout-month");
    let rolling = Window::Rolling(Duration::from_days(30));
    let (a, b) = (
        expected.remaining(&month, "checkout"),
        expected.remaining(&rolling, "checkout"),
    );
    assert!((a - b).abs() > 0.01, "month {a} vs 30 days {b}");
}
