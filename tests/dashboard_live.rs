//! The Grafana dashboard, run: the demo's month in a real Prometheus with the SLOs' rules loaded,
//! and every query of charts/plimsoll/dashboards/slos.json run as Grafana would run it: the
//! template variables' own queries first (`label_values(...)` through the label values API),
//! their values substituted as Grafana formats a multi-value regex variable (`(a|b)`), table
//! panels as instant queries and time series over the dashboard's time range. Each query must
//! return data for every demo SLO it selects. (tests/dashboard.rs checks the queries statically.)
//!
//! The demo's three SLOs fire no alert, so a fourth is added to the demo's for the alerts panel:
//! checkout at 99.98%, whose 1h and 5m error ratio (0.3% since the bad release) is above 14.4
//! times its budget (0.288%), so its page alert fires as soon as Prometheus evaluates its rules.
//! The data ends a minute before the test starts Prometheus: with the demo's usual ten minutes
//! ahead, the TSDB refuses every live rule result ("out of bounds") until that time has passed.
//! From there Prometheus scrapes the counters' continuation from the test (the same series, the
//! same traffic), so the live short windows hold data however long the setup took.

mod support;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use plimsoll::demo::{self, LEAD_IN, WINDOW};
use plimsoll::synthetic::{Counts, Traffic};
use support::demo::{PLIMSOLL, copy_demo_slos, demo_history_of};
use support::grafana::{self, get, label_values, regex_value};
use support::prometheus::{Prometheus, unix_now};

const DEMO_SLOS: [&str; 4] = [
    "catalog-availability",
    "checkout-availability",
    "payments-availability",
    "checkout-strict",
];

/// Seconds in a Grafana relative time such as `now-7d`.
fn relative_seconds(text: &str) -> u64 {
    let span = text.strip_prefix("now-").unwrap();
    let (number, unit) = span.split_at(span.len() - 1);
    let n: u64 = number.parse().unwrap();
    n * match unit {
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        other => panic!("unit {other}"),
    }
}

/// Serves `http_requests_total` of the demo's services from `end` (the data's end, Unix seconds)
/// on, as `plimsoll demo-data` writes them: the same labels, and at each whole second `t` the
/// value [`Traffic::counts_until`] gives, so the scraped samples continue the imported series.
/// Returns the port; the server lives as long as the test process.
fn serve_continuation(end: u64) -> u16 {
    let duration = WINDOW + LEAD_IN;
    let start = end - duration;
    let services = demo::services(duration);
    let counts: Vec<Counts> = services.iter().map(|s| s.counts_until(duration)).collect();
    let state = Arc::new(Mutex::new((duration, counts)));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = Vec::new();
            let mut chunk = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&chunk[..n]),
                }
            }
            let mut state = state.lock().unwrap();
            let (t, counts) = &mut *state;
            let now = unix_now() - start;
            while *t < now {
                for (service, c) in services.iter().zip(counts.iter_mut()) {
                    let r = service.rate(*t);
                    c.requests += r;
                    c.errors += r * service.error_share(*t);
                }
                *t += 1;
            }
            let ms = (start + *t) * 1000;
            let mut body = String::from("# TYPE http_requests_total counter\n");
            for (service, c) in services.iter().zip(counts.iter()) {
                let job = service.job();
                body += &format!(
                    "http_requests_total{{job=\"{job}\",code=\"200\"}} {} {ms}\n\
                     http_requests_total{{job=\"{job}\",code=\"500\"}} {} {ms}\n",
                    c.requests - c.errors,
                    c.errors
                );
            }
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

/// Prometheus on `<dir>/data` reading the rule files of `<dir>/rules` (returned), with the
/// lifecycle API, scraping the counters' continuation on `port` every 5 s. The scraped series
/// keep the exposed `job` and lose the target's `instance`, so they are the imported ones.
fn prometheus_with_continuation(dir: &Path, port: u16) -> (Prometheus, std::path::PathBuf) {
    let rules = dir.join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global: {{evaluation_interval: 30s, scrape_interval: 5s}}\n\
             rule_files: [\"{}/*.yaml\"]\n\
             scrape_configs:\n\
             - job_name: continuation\n  \
               honor_labels: true\n  \
               static_configs: [{{targets: [\"127.0.0.1:{port}\"]}}]\n  \
               metric_relabel_configs: [{{action: labeldrop, regex: instance}}]\n",
            rules.display()
        ),
    )
    .unwrap();
    let prometheus =
        Prometheus::start_with(&dir.join("data"), &config, &["--web.enable-lifecycle"]);
    (prometheus, rules)
}

#[test]
fn every_panel_of_the_dashboard_returns_data_for_the_demo() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let slos = copy_demo_slos(dir);
    let strict = std::fs::read_to_string(slos.join("checkout.yaml"))
        .unwrap()
        .replace("name: checkout-availability", "name: checkout-strict")
        .replace("objective: 99.9", "objective: 99.98");
    std::fs::write(slos.join("checkout-strict.yaml"), strict).unwrap();
    // The data ends a minute ago, so the rules' live evaluations (and ALERTS) are written; the
    // raw counters go on as Prometheus scrapes their continuation.
    let end = demo_history_of(dir, &slos, Some(unix_now() / 60 * 60 - 60));
    let port = serve_continuation(end);
    let (prometheus, rules) = prometheus_with_continuation(dir, port);
    let written = std::process::Command::new(PLIMSOLL)
        .args(["local", "--once", "--slos"])
        .arg(&slos)
        .arg("--rules-out")
        .arg(&rules)
        .arg(format!("--prometheus={}", prometheus.url))
        .output()
        .unwrap();
    assert!(written.status.success(), "{written:?}");
    let deadline = Instant::now() + Duration::from_secs(90);
    // When it was seen firing: the alerts panel is read at that instant.
    let fired_at = loop {
        let firing = get(
            &prometheus,
            "/api/v1/query",
            &[(
                "query",
                r#"ALERTS{alertstate="firing",slo="checkout-strict"}"#.into(),
            )],
        );
        if let Some(alert) = firing["result"].as_array().unwrap().first() {
            // As the answer gives it (a sample written within the last second stays inside).
            break alert["value"][0].as_f64().unwrap();
        }
        if Instant::now() > deadline {
            let show = |q: &str| get(&prometheus, "/api/v1/query", &[("query", q.to_string())]);
            panic!(
                "checkout-strict's page alert did not fire: ALERTS {}; 1h {}; 5m {}; rules {}",
                show("ALERTS"),
                show(r#"slo:sli_error:ratio_rate1h{slo="checkout-strict"}"#),
                show(r#"slo:sli_error:ratio_rate5m{slo="checkout-strict"}"#),
                get(&prometheus, "/api/v1/rules", &[])
                    .to_string()
                    .chars()
                    .take(3000)
                    .collect::<String>()
            );
        }
        std::thread::sleep(Duration::from_secs(1));
    };

    let dashboard = grafana::dashboard();
    let query_of = |name: &str| grafana::variable_query(&dashboard, name);
    let namespaces = label_values(&prometheus, &query_of("namespace"));
    assert_eq!(namespaces, ["shop"]);
    let namespace = regex_value(&namespaces);
    let names = label_values(
        &prometheus,
        &query_of("slo").replace("$namespace", &namespace),
    );
    let expected: BTreeSet<String> = DEMO_SLOS.iter().map(|s| s.to_string()).collect();
    assert_eq!(names.iter().cloned().collect::<BTreeSet<_>>(), expected);

    let range = relative_seconds(dashboard["time"]["from"].as_str().unwrap());
    let now = unix_now();
    assert!(now > end);
    let mut ran = 0;
    for target in grafana::targets(&dashboard) {
        let (panel, expr, instant) = (target.panel, target.expr, target.instant);
        // "All", and each SLO alone, as a person picks them.
        let mut picks = vec![names.clone()];
        picks.extend(names.iter().map(|n| vec![n.clone()]));
        for pick in picks {
            let query = expr
                .replace("$namespace", &namespace)
                .replace("$slo", &regex_value(&pick));
            // The recorded series as the demo's data ends (live evaluations of the 5m group may
            // not have run yet); the alerts when they were seen firing.
            let at = if panel == "Alerts firing" {
                format!("{fired_at:.3}")
            } else {
                end.to_string()
            };
            let result = if instant {
                get(
                    &prometheus,
                    "/api/v1/query",
                    &[("query", query.clone()), ("time", at)],
                )["result"]
                    .clone()
            } else {
                get(
                    &prometheus,
                    "/api/v1/query_range",
                    &[
                        ("query", query.clone()),
                        ("start", (end - range).to_string()),
                        ("end", end.to_string()),
                        ("step", "600".to_string()),
                    ],
                )["result"]
                    .clone()
            };
            let seen: BTreeSet<String> = result
                .as_array()
                .unwrap()
                .iter()
                .filter(|s| s["value"].is_array() || !s["values"].as_array().unwrap().is_empty())
                .map(|s| s["metric"]["slo"].as_str().unwrap_or_default().to_string())
                .collect();
            let wanted: BTreeSet<String> = if panel == "Alerts firing" {
                // The picked SLOs' firing alerts at that instant: checkout-strict's page, and
                // any other SLO's ticket whose slow group has evaluated by then (under load the
                // page is seen later, and the tickets of the SLOs burning above 1x may fire too).
                let all = get(
                    &prometheus,
                    "/api/v1/query",
                    &[
                        ("query", r#"ALERTS{alertstate="firing"}"#.to_string()),
                        ("time", format!("{fired_at:.3}")),
                    ],
                );
                let firing: BTreeSet<String> = all["result"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s["metric"]["slo"].as_str().unwrap_or_default().to_string())
                    .collect();
                // Only checkout-strict burns fast enough to page.
                let paging: BTreeSet<&str> = all["result"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|s| s["metric"]["severity"] == "critical")
                    .filter_map(|s| s["metric"]["slo"].as_str())
                    .collect();
                assert_eq!(paging, BTreeSet::from(["checkout-strict"]), "{all}");
                pick.iter()
                    .filter(|n| firing.contains(*n))
                    .cloned()
                    .collect()
            } else {
                pick.iter().cloned().collect()
            };
            assert_eq!(seen, wanted, "panel {panel:?}: {query}");
            ran += 1;
        }
    }
    assert!(ran >= 20 * 5, "{ran} queries");
}
