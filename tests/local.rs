//! `plimsoll local` against a real Prometheus on 127.0.0.1: the demo's month written by
//! `plimsoll demo-data`, the rules' history recorded stage by stage, then local mode writing the
//! rule files, reloading Prometheus, and answering on /status and Flagger's webhook while SLO
//! files come, go and break.

mod flagger;
mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use plimsoll::demo::{self, LEAD_IN, WINDOW};
use plimsoll::synthetic::Traffic;
use serde_json::Value;
use support::demo::{Local, PLIMSOLL, config, copy_demo_slos, demo_history, free_port};
use support::prometheus::{Prometheus, http};

fn entry<'a>(status: &'a Value, slo: &str) -> Option<&'a Value> {
    status["slos"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["slo"] == slo)
}

fn keys(status: &Value) -> Vec<String> {
    status["slos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["slo"].as_str().unwrap().to_string())
        .collect()
}

fn rule_files(rules: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(rules)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The SLO names of the rule groups Prometheus has loaded.
fn loaded_groups(prometheus: &Prometheus) -> Vec<String> {
    let body: Value = http()
        .get(format!("{}/api/v1/rules", prometheus.url))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let mut names: Vec<String> = body["data"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within 30 s");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The rules' count step: each 5m count covers one interval (g - 5m, g] of the epoch's 5-minute
/// grid, and the slow group records the remaining budget every 5 minutes.
const STEP: u64 = 300;

/// The budget left, in percent, over the 30 days of counts ending at the grid point `b` (Unix
/// seconds), from the synthetic counts themselves; the data ends at `end`.
fn exact_remaining(job: &str, end: u64, b: u64) -> f64 {
    let duration = WINDOW + LEAD_IN;
    let start = end - duration;
    let services = demo::services(duration);
    let service = services.iter().find(|s| s.job() == job).unwrap();
    let (from, to) = (
        service.counts_until(b - WINDOW - start),
        service.counts_until(b - start),
    );
    let ratio = (to.errors - from.errors) / (to.requests - from.requests);
    (1.0 - ratio / 0.001) * 100.0
}

/// The grid points `b` whose 30 days of counts the remaining budget read at `read` (Unix
/// seconds) can sum. Before `end` the records are the backfilled ones, written on the grid itself,
/// so the one read is at the grid point at or before `read` and sums the counts up to it. From
/// `end` on Prometheus records live, at its group's offset within the 5 minutes before `read`,
/// summing the counts up to the grid point at or before that: that grid point or the one before.
fn counted_up_to(read: f64, end: u64) -> Vec<u64> {
    let grid = read as u64 / STEP * STEP;
    if read < end as f64 {
        vec![grid]
    } else {
        vec![grid, grid - STEP]
    }
}

#[test]
fn local_mode_against_a_real_prometheus() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let end = demo_history(dir);
    let slos = copy_demo_slos(dir);
    let rules = dir.join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    // A broken manifest beside them, and a rule file that is not ours.
    let bad = slos.join("search.yaml");
    let search = std::fs::read_to_string(slos.join("catalog.yaml"))
        .unwrap()
        .replace("catalog", "search");
    std::fs::write(&bad, search.replace("objective: 99.9", "objective: 100")).unwrap();
    std::fs::write(rules.join("mine.yaml"), "groups: []\n").unwrap();

    let prometheus = Prometheus::start_with(
        &dir.join("data"),
        &config(dir, &rules),
        &["--web.enable-lifecycle"],
    );
    let local = Local::start(dir, &slos, &rules, &prometheus.url);

    // The three SLOs, each in its state, with the budget the synthetic counts give.
    let status = local.wait_for("three SLOs with data", |s| {
        keys(s).len() == 3
            && s["slos"]
                .as_array()
                .unwrap()
                .iter()
                .all(|e| e["decision"] != "NoData")
    });
    // The instant local mode read at: the remaining budget is read as of then.
    let read = status["evaluatedAt"]
        .as_str()
        .unwrap()
        .parse::<jiff::Timestamp>()
        .unwrap()
        .as_millisecond() as f64
        / 1000.0;
    let expect = [
        ("shop/catalog-availability", "catalog", "Healthy", "None"),
        ("shop/checkout-availability", "checkout", "Burning", "None"),
        (
            "shop/payments-availability",
            "payments",
            "Exhausted",
            "RollBack",
        ),
    ];
    for (slo, job, state, decision) in expect {
        let e = entry(&status, slo).unwrap();
        assert_eq!(e["status"]["rollback"]["state"], state, "{slo}: {e}");
        assert_eq!(e["decision"], decision, "{slo}");
        let data = e["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "DataAvailable")
            .unwrap();
        assert_eq!(data["status"], "True", "{slo}");
        let remaining: f64 = e["status"]["errorBudget"]["remaining"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        // The status gives one decimal, so it is within half of one of the exact value; the
        // counts themselves are exact (Prometheus 2's closed 5m ranges hold the samples at both
        // ends of each count, on the minute, so increase() needs no extrapolation).
        let exact: Vec<f64> = counted_up_to(read, end)
            .into_iter()
            .map(|b| exact_remaining(job, end, b))
            .collect();
        assert!(
            exact.iter().any(|x| (remaining - x).abs() <= 0.05 + 1e-9),
            "{slo}: {remaining}% left at {read}, the counts say {exact:.4?}%"
        );
    }
    let checkout = entry(&status, "shop/checkout-availability").unwrap();
    assert_eq!(checkout["status"]["burnRates"]["6h"], "3.0");
    assert!(checkout["status"]["exhaustion"].is_string());
    let payments = entry(&status, "shop/payments-availability").unwrap();
    assert!(
        payments["note"]
            .as_str()
            .unwrap()
            .starts_with("rollback signalled"),
        "{payments}"
    );

    // Flagger's webhook: the same answers as the operator's.
    let (code, body) = local.flagger("shop/payments-availability");
    assert_eq!(code, 200, "{body}");
    assert!(
        body.starts_with(
            "shop/payments-availability: rollback: the error budget policy's trigger holds"
        ),
        "{body}"
    );
    assert_eq!(local.flagger("shop/checkout-availability").0, 412);
    assert_eq!(local.flagger("shop/nothing").0, 404);
    assert_eq!(local.get("/flagger/rollback").unwrap().0, 400);
    // And as Flagger calls it: POST, Flagger's headers and body (tests/flagger).
    flagger::assert_the_protocol(
        &format!("http://127.0.0.1:{}/flagger/rollback", local.port),
        "shop",
        ("payments-availability", "payments"),
        ("checkout-availability", "checkout"),
    );

    // The broken file is reported with validate's own words and skipped.
    let validate = Command::new(PLIMSOLL)
        .args(["validate", "--quiet"])
        .arg(&bad)
        .output()
        .unwrap();
    let message = String::from_utf8(validate.stdout).unwrap();
    assert!(message.contains("spec.objective"), "{message}");
    assert!(
        local.stderr().contains(message.trim()),
        "{}",
        local.stderr()
    );
    assert_eq!(status["problems"][0], message.trim());
    assert!(entry(&status, "shop/search-availability").is_none());

    // One rule file per valid SLO next to the foreign one, and Prometheus has loaded them.
    assert_eq!(
        rule_files(&rules),
        [
            "mine.yaml",
            "shop_catalog-availability.rules.yaml",
            "shop_checkout-availability.rules.yaml",
            "shop_payments-availability.rules.yaml"
        ]
    );
    wait_until("Prometheus loads the rule files", || {
        loaded_groups(&prometheus).len() == 6
    });
    assert!(
        local
            .stderr()
            .contains("Prometheus reloaded its rule files")
    );

    // The table on stdout says the same.
    let table = local.stdout();
    let row = |slo: &str| {
        table
            .lines()
            .rev()
            .find(|l| l.starts_with(&format!("{slo}  ")))
            .unwrap_or_else(|| panic!("no row for {slo} in\n{table}"))
            .to_string()
    };
    for (slo, end) in [
        ("shop/payments-availability", "Exhausted  ROLL BACK"),
        ("shop/checkout-availability", "Burning    none"),
        ("shop/catalog-availability", "Healthy    none"),
    ] {
        let row = row(slo);
        assert!(row.ends_with(end), "{row}");
    }

    // An SLO file goes: its rule file goes, Prometheus drops its groups, the webhook forgets it.
    std::fs::remove_file(slos.join("checkout.yaml")).unwrap();
    local.wait_for("checkout gone", |s| keys(s).len() == 2);
    assert!(!rule_files(&rules).contains(&"shop_checkout-availability.rules.yaml".to_string()));
    assert!(rules.join("mine.yaml").exists(), "not ours: left alone");
    wait_until("Prometheus drops checkout's groups", || {
        let groups = loaded_groups(&prometheus);
        groups.len() == 4 && !groups.iter().any(|g| g.contains("checkout"))
    });
    assert_eq!(local.flagger("shop/checkout-availability").0, 404);

    // The broken file is fixed: it joins, without data yet, and decides nothing.
    std::fs::write(&bad, search).unwrap();
    let status = local.wait_for("search joins", |s| {
        entry(s, "shop/search-availability").is_some()
    });
    assert!(status["problems"].as_array().unwrap().is_empty());
    let search = entry(&status, "shop/search-availability").unwrap();
    assert_eq!(search["decision"], "NoData");
    assert_eq!(local.flagger("shop/search-availability").0, 412);
    assert_eq!(
        local.flagger("shop/payments-availability").0,
        200,
        "the others keep working"
    );

    assert_eq!(local.terminate(), Some(0));
}

#[test]
fn without_the_lifecycle_api_local_mode_says_so_once_and_keeps_going() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let (slos, rules, data) = (dir.join("slos"), dir.join("rules"), dir.join("data"));
    for d in [&slos, &rules, &data] {
        std::fs::create_dir_all(d).unwrap();
    }
    let manifest = std::fs::read_to_string(support::repo().join("demo/slos/catalog.yaml")).unwrap();
    std::fs::write(slos.join("catalog.yaml"), &manifest).unwrap();
    // No data and no lifecycle API.
    let prometheus = Prometheus::start(&data, &config(dir, &rules));
    let local = Local::start(dir, &slos, &rules, &prometheus.url);
    let status = local.wait_for("catalog listed", |s| keys(s).len() == 1);
    let e = entry(&status, "shop/catalog-availability").unwrap();
    assert_eq!(e["decision"], "NoData");
    assert_eq!(
        e["note"],
        "nothing decided: no recorded series for this SLO in Prometheus yet"
    );
    // Nobody measured it: no state but Unknown, no policy memory, no "within the policy".
    unmeasured(&e["status"]);
    let (code, page) = local.get("/ui").unwrap();
    assert_eq!(code, 200);
    assert!(page.contains("badge unknown"), "{page}");
    assert!(
        !page.contains("badge healthy") && page.contains("1 Unknown"),
        "{page}"
    );
    assert_eq!(
        local.flagger("shop/catalog-availability"),
        (
            412,
            "shop/catalog-availability: no rollback: no current budget data (SeriesMissing)\n"
                .to_string()
        )
    );
    // A second change of the rule files.
    std::fs::write(
        slos.join("more.yaml"),
        manifest.replace("catalog-availability", "catalog-latency"),
    )
    .unwrap();
    local.wait_for("two SLOs", |s| keys(s).len() == 2);
    wait_until("both rule files", || rule_files(&rules).len() == 2);
    let stderr = local.stderr();
    assert_eq!(
        stderr.matches("does not serve /-/reload").count(),
        1,
        "{stderr}"
    );
    assert!(stderr.contains("--web.enable-lifecycle"), "{stderr}");
    assert!(!stderr.contains("Prometheus reloaded"), "{stderr}");
    assert_eq!(local.terminate(), Some(0));
}

/// A status nobody measured: state Unknown, no rollback memory, BudgetExhausted Unknown.
fn unmeasured(status: &Value) {
    assert_eq!(status["state"], "Unknown", "{status:#}");
    assert!(status.get("rollback").is_none(), "{status:#}");
    let budget = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "BudgetExhausted")
        .unwrap();
    assert_eq!(
        (&budget["status"], &budget["reason"]),
        (&"Unknown".into(), &"NoData".into())
    );
    assert!(!status.to_string().contains("Healthy"), "{status:#}");
}

/// The demo's three SLOs in a `local --once` table, each Unknown and undecided, none Healthy.
fn all_unknown(table: &str) {
    assert!(!table.contains("Healthy"), "{table}");
    let unknown = table
        .lines()
        .filter(|l| l.starts_with("shop/") && l.ends_with("Unknown  none (no data)"))
        .count();
    assert_eq!(unknown, 3, "{table}");
}

#[test]
fn once_against_an_empty_prometheus_shows_unknown_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let (rules, data) = (dir.join("rules"), dir.join("data"));
    for d in [&rules, &data] {
        std::fs::create_dir_all(d).unwrap();
    }
    let prometheus = Prometheus::start(&data, &config(dir, &rules));
    let out = Command::new(PLIMSOLL)
        .args(["local", "--once", "-f"])
        .arg(support::repo().join("demo/slos"))
        .arg("--rules-out")
        .arg(&rules)
        .arg(format!("--prometheus-url={}", prometheus.url))
        .output()
        .unwrap();
    let table = String::from_utf8(out.stdout.clone()).unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "nothing measured is no answer: {out:?}"
    );
    all_unknown(&table);
    assert!(table.contains("3 SLO(s): 3 Unknown."), "{table}");
}

#[test]
fn once_without_prometheus_writes_the_rules_prints_the_table_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    let out = Command::new(PLIMSOLL)
        .args(["local", "--once", "-f"])
        .arg(support::repo().join("demo/slos"))
        .arg("--rules-out")
        .arg(&rules)
        .arg(format!("--prometheus-url=http://127.0.0.1:{}", free_port()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.contains("Prometheus cannot be queried: "), "{table}");
    all_unknown(&table);
    assert!(table.contains("3 without fresh data: nothing decided for them."));
    assert_eq!(
        rule_files(&rules).len(),
        3,
        "the rules are written all the same"
    );
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("could not ask Prometheus to reload"),
        "{stderr}"
    );
}

/// An SLO over a native histogram beside the demo's three. Prometheus 2 reads native histograms
/// only as an experiment whose PromQL changed on the way to 3, so local mode writes no rules for
/// that SLO until the server is known not to be a Prometheus 2, says why, and the others' rules
/// load. On Prometheus 3 (PLIMSOLL_PROMETHEUS=3) all four load.
#[test]
fn native_histogram_slos_wait_for_prometheus_3_and_never_break_the_others() {
    use support::prometheus::Version;
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let slos = copy_demo_slos(dir);
    std::fs::write(
        slos.join("native.yaml"),
        "apiVersion: plimsoll.dev/v1alpha1\nkind: ServiceLevelObjective\n\
         metadata: {name: rpc, namespace: shop}\n\
         spec:\n  service: rpc\n  objective: 99\n  window: 30d\n  indicator:\n    \
         nativeLatency:\n      histogram: 'rpc_duration_seconds{job=\"rpc\"}'\n      \
         threshold: 0.25\n",
    )
    .unwrap();
    let local_once = |rules: &Path, url: &str| {
        Command::new(PLIMSOLL)
            .args(["local", "--once", "-f"])
            .arg(&slos)
            .arg("--rules-out")
            .arg(rules)
            .arg(format!("--prometheus-url={url}"))
            .output()
            .unwrap()
    };
    // Nobody answers: the version is unknown, so the native SLO waits; the rest are written.
    let unknown = dir.join("unknown");
    let out = local_once(&unknown, &format!("http://127.0.0.1:{}", free_port()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        stderr.contains("shop/rpc (") && stderr.contains("waiting to learn the version"),
        "{stderr}"
    );
    assert_eq!(rule_files(&unknown).len(), 3, "{stderr}");

    let (rules, data) = (dir.join("rules"), dir.join("data"));
    for d in [&rules, &data] {
        std::fs::create_dir_all(d).unwrap();
    }
    let prometheus =
        Prometheus::start_with(&data, &config(dir, &rules), &["--web.enable-lifecycle"]);
    let out = local_once(&rules, &prometheus.url);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let loaded = loaded_groups(&prometheus);
    let native_loaded = loaded.iter().filter(|g| g.contains("rpc")).count();
    match Version::chosen() {
        Version::Two => {
            assert_eq!(out.status.code(), Some(2), "{out:?}");
            assert!(
                stderr.contains("shop/rpc (")
                    && stderr.contains("no rules written: Prometheus at")
                    && stderr.contains("is version 2.42")
                    && stderr.contains("needs Prometheus 3.0.0 or later"),
                "{stderr}"
            );
            assert_eq!(rule_files(&rules).len(), 3, "{stderr}");
            assert!(
                stderr.contains("Prometheus reloaded its rule files"),
                "{stderr}"
            );
            assert_eq!(native_loaded, 0, "{loaded:?}");
            assert!(loaded.len() >= 3, "the others' groups load: {loaded:?}");
        }
        Version::Three => {
            assert!(!stderr.contains("no rules written"), "{stderr}");
            assert_eq!(rule_files(&rules).len(), 4, "{stderr}");
            assert!(
                stderr.contains("Prometheus reloaded its rule files"),
                "{stderr}"
            );
            assert!(native_loaded > 0, "{loaded:?}");
        }
    }
}
