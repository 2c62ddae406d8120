//! The meaning of the generated rules, pinned with Prometheus' own tooling: `promtool check rules`
//! on everything we generate, and `promtool test rules` suites with synthetic series. Every case
//! runs on Debian's Prometheus 2.42 and on the 3.x of tests/prometheus3 (`CASE::prometheus_2`,
//! `CASE::prometheus_3`).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use plimsoll::manifests::{self, Decoded, Source};
use plimsoll::model::Slo;
use plimsoll::rules::{self, RuleGroup};
use support::prometheus::Version;
use support::{document, repo, yaml_files};

on_both_versions!(
    rules_of_every_example_pass_promtool_check,
    promtool_suites_pin_the_meaning_of_the_rules,
    an_imported_threshold_metric_counts_the_points_that_miss_it,
    a_steady_2x_burn_never_pages_but_tickets,
    below_1x_nothing_fires,
    the_30d_sli_is_the_exact_count_ratio_under_uneven_traffic,
    alert_templates_are_judged_as_promtool_judges_them,
    native_latency_rules_pass_promtool_check,
);

fn promtool(version: Version) -> Command {
    let found = version.promtool().arg("--version").output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "promtool {} is missing: `make test` installs it (apt-get install prometheus; \
         tests/prometheus3/build.sh)",
        version.major()
    );
    version.promtool()
}

fn model(file: &Path) -> Slo {
    match manifests::decode(&document(file)) {
        Decoded::Valid(valid) => valid.1,
        other => panic!("{}: {other:?}", file.display()),
    }
}

fn run(mut command: Command) -> String {
    let out = command.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{command:?} failed:\n{text}");
    text
}

fn check_rules(version: Version, groups: &[RuleGroup]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.yaml");
    std::fs::write(&file, rules::rule_file(groups).unwrap()).unwrap();
    let mut command = promtool(version);
    command.arg("check").arg("rules").arg(&file);
    run(command)
}

fn rules_of_every_example_pass_promtool_check(version: Version) {
    let mut groups = Vec::new();
    for file in yaml_files("examples") {
        groups.extend(rules::render(&model(&file), "default"));
    }
    let out = check_rules(version, &groups);
    assert!(out.contains("SUCCESS"), "{out}");
}

/// Alert annotations are checked by `promtool check rules` above; the suites compare labels only,
/// since promtool compares annotations verbatim.
fn without_annotations(mut groups: Vec<RuleGroup>) -> Vec<RuleGroup> {
    for group in &mut groups {
        for rule in &mut group.rules {
            rule.annotations.clear();
        }
    }
    groups
}

/// Renders `<case>.slo.yaml` next to `<case>.test.yaml` in a temporary folder and runs the suite.
fn run_suite(version: Version, slo: &Slo, test_yaml: &str) {
    let dir = tempfile::tempdir().unwrap();
    let groups = without_annotations(rules::render(
        slo,
        slo.namespace.as_deref().unwrap_or("default"),
    ));
    std::fs::write(
        dir.path().join("rules.yaml"),
        rules::rule_file(&groups).unwrap(),
    )
    .unwrap();
    let test = dir.path().join("test.yaml");
    std::fs::write(&test, test_yaml).unwrap();
    let mut command = promtool(version);
    command.arg("test").arg("rules").arg(&test);
    run(command);
}

fn suite_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("tests/promtool"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".test.yaml"))
        .collect();
    files.sort();
    files
}

fn promtool_suites_pin_the_meaning_of_the_rules(version: Version) {
    let suites = suite_files();
    assert!(!suites.is_empty());
    for test in suites {
        let slo_file = PathBuf::from(test.to_string_lossy().replace(".test.yaml", ".slo.yaml"));
        let slo = model(&slo_file);
        run_suite(version, &slo, &std::fs::read_to_string(&test).unwrap());
    }
}

/// Native-histogram latency (tests/promtool/native): Prometheus 3 only, as Plimsoll refuses
/// nativeLatency on 2.x. promtool writes the histograms from its series notation
/// (`{{schema:0 count:.. buckets:[..]}}`); each suite checks the recorded ratios and counts
/// against the exact share of slow requests.
#[test]
fn native_latency_suites_count_exactly_on_prometheus_3() {
    let dir = repo().join("tests/promtool/native");
    let mut suites: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".test.yaml"))
        .collect();
    suites.sort();
    assert_eq!(suites.len(), 2, "{suites:?}");
    for test in suites {
        let slo_file = PathBuf::from(test.to_string_lossy().replace(".test.yaml", ".slo.yaml"));
        let slo = model(&slo_file);
        run_suite(
            Version::Three,
            &slo,
            &std::fs::read_to_string(&test).unwrap(),
        );
    }
}

/// `promtool check rules` of 3.x accepts the native-histogram rules; 2.42's parses them too
/// (histogram_fraction and histogram_count exist there), but Plimsoll refuses 2.x at run time.
fn native_latency_rules_pass_promtool_check(version: Version) {
    let slo = model(&repo().join("tests/promtool/native/custom-buckets.slo.yaml"));
    let out = check_rules(version, &rules::render(&slo, "shop"));
    assert!(out.contains("SUCCESS"), "{out}");
}

const CHECKOUT: &str = r#"
apiVersion: plimsoll.dev/v1alpha1
kind: ServiceLevelObjective
metadata: {name: checkout, namespace: shop}
spec:
  service: checkout
  objective: 99.9
  window: 30d
  indicator:
    ratio:
      errors: 'http_requests_total{job="checkout",code=~"5.."}'
      total: 'http_requests_total{job="checkout"}'
"#;

/// The importer's reading of an OpenSLO thresholdMetric (tests/import/openslo-threshold.yaml:
/// good while the gauge is at most 200), evaluated by promtool: three series, one of them above
/// the threshold for the second hour, so a third of the points are bad.
fn an_imported_threshold_metric_counts_the_points_that_miss_it(version: Version) {
    let file = repo().join("tests/import/openslo-threshold.yaml");
    let Source::Documents(docs) = manifests::read(&file).unwrap() else {
        panic!("{}", file.display())
    };
    let imported = plimsoll::import::import(&docs, Some("shop"));
    let value = serde_json::to_value(&imported.slos[0].object).unwrap();
    let Decoded::Valid(valid) = manifests::decode(&value) else {
        panic!("{value}")
    };
    let labels = r#"'{slo="shop-latency-gauge",slo_namespace="shop",slo_service="shop"}'"#;
    let at = |expr: &str, time: &str, value: &str| {
        format!(
            "  - expr: {expr}\n    eval_time: {time}\n    exp_samples:\n    - labels: {labels}\n      \
             value: {value}\n"
        )
    };
    let suite = format!(
        "rule_files: [rules.yaml]\nevaluation_interval: 30s\ntests:\n- interval: 1m\n  \
         input_series:\n  \
         - series: 'shop_latency_p99_milliseconds{{job=\"shop\",pod=\"a\"}}'\n    values: '100x59 300x60'\n  \
         - series: 'shop_latency_p99_milliseconds{{job=\"shop\",pod=\"b\"}}'\n    values: '200x120'\n  \
         - series: 'shop_latency_p99_milliseconds{{job=\"shop\",pod=\"c\"}}'\n    values: '150x120'\n  \
         promql_expr_test:\n{}{}{}",
        at("slo:sli_error:ratio_rate5m == bool 0", "50m", "1"),
        at(
            "abs(slo:sli_error:ratio_rate5m - 1/3) < bool 1e-9",
            "2h",
            "1"
        ),
        // The 7d window scales the burn windows: 2h becomes 28m.
        at(
            "abs(slo:sli_error:ratio_rate28m - 1/3) < bool 1e-9",
            "2h",
            "1"
        ),
    );
    run_suite(version, &valid.1, &suite);
}

fn checkout() -> Slo {
    match manifests::decode(&serde_saphyr::from_str(CHECKOUT).unwrap()) {
        Decoded::Valid(valid) => valid.1,
        other => panic!("{other:?}"),
    }
}

/// A steady error ratio for `hours`, with burn alerts expected at every half hour.
fn steady_burn_suite(
    error_share: f64,
    hours: u64,
    expected: &[(&str, &str, &str, &str)],
) -> String {
    let minutes = hours * 60;
    let per_minute = 6000.0;
    let errors = per_minute * error_share;
    let alerts: String = expected
        .iter()
        .map(|(severity, long, short, rate)| {
            format!(
                "    - exp_labels: {{slo: checkout, slo_namespace: shop, slo_service: checkout, \
                 severity: {severity}, long: {long}, short: {short}, burn_rate: \"{rate}\"}}\n"
            )
        })
        .collect();
    let mut checks = String::new();
    for half_hours in 1..=(hours * 2) {
        let at = half_hours * 30;
        let exp = if alerts.is_empty() {
            " []\n".to_string()
        } else {
            format!("\n{alerts}")
        };
        checks.push_str(&format!(
            "  - eval_time: {at}m\n    alertname: CheckoutErrorBudgetBurn\n    exp_alerts:{exp}"
        ));
    }
    format!(
        "rule_files: [rules.yaml]\nevaluation_interval: 1m\ntests:\n- interval: 1m\n  input_series:\n  \
         - series: 'http_requests_total{{job=\"checkout\",code=\"200\"}}'\n    values: '0+{}x{minutes}'\n  \
         - series: 'http_requests_total{{job=\"checkout\",code=\"500\"}}'\n    values: '0+{errors}x{minutes}'\n  \
         alert_rule_test:\n{checks}",
        per_minute - errors
    )
}

fn a_steady_2x_burn_never_pages_but_tickets(version: Version) {
    // 0.2% errors against a 0.1% budget, for 26 hours: the 3d/6h ticket (1x) holds from the start,
    // the 1d/2h ticket (3x) and both pages (14.4x, 6x) never fire.
    run_suite(
        version,
        &checkout(),
        &steady_burn_suite(0.002, 26, &[("warning", "3d", "6h", "1")]),
    );
}

fn below_1x_nothing_fires(version: Version) {
    // 0.09% errors against a 0.1% budget: within budget, no alert at any half hour for a day.
    run_suite(version, &checkout(), &steady_burn_suite(0.0009, 24, &[]));
}

/// Requests per minute in each hour of a day: 100x between the 02:00 trough and the 14:00 peak.
fn requests_per_minute(hour_of_day: u64) -> f64 {
    let phase = 2.0 * std::f64::consts::PI * (hour_of_day as f64 - 14.0) / 24.0;
    10.0 * (1.0 + 99.0 * (1.0 + phase.cos()) / 2.0)
}

/// Errors cluster in the quiet hours, as they do when a nightly batch job breaks things.
fn error_share(hour_of_day: u64) -> f64 {
    if requests_per_minute(hour_of_day) < 100.0 {
        0.05
    } else {
        0.0002
    }
}

/// promtool's test engine refuses queries that hold more than about 10,000 samples, which a 30d
/// subquery over 5m counts reaches after about 17 days of data. The SLO's window is 30d; the data
/// covers the first 16 days of it, so every 5m count of the run is inside the window. (The full
/// month is measured against a real Prometheus by the benchmark harness.)
fn the_30d_sli_is_the_exact_count_ratio_under_uneven_traffic(version: Version) {
    let days = 16;
    let (mut good, mut bad) = (String::new(), String::new());
    let (mut good_total, mut bad_total) = (0.0f64, 0.0f64);
    for hour in 0..days * 24 {
        let per_minute = requests_per_minute(hour % 24);
        let errors = per_minute * error_share(hour % 24);
        // 60 increments per hour; the last hour also writes the final value.
        let steps = if hour == days * 24 - 1 { 60 } else { 59 };
        good.push_str(&format!("{good_total}+{}x{steps} ", per_minute - errors));
        bad.push_str(&format!("{bad_total}+{errors}x{steps} "));
        good_total += 60.0 * (per_minute - errors);
        bad_total += 60.0 * errors;
    }
    let exact = bad_total / (bad_total + good_total);
    let suite = format!(
        "rule_files: [rules.yaml]\nevaluation_interval: 5m\ntests:\n- interval: 1m\n  input_series:\n  \
         - series: 'http_requests_total{{job=\"checkout\",code=\"200\"}}'\n    values: '{good}'\n  \
         - series: 'http_requests_total{{job=\"checkout\",code=\"500\"}}'\n    values: '{bad}'\n  \
         promql_expr_test:\n  \
         - expr: abs(slo:sli_error:ratio_window - {exact}) / {exact} < bool 0.001\n    eval_time: {days}d\n    \
           exp_samples:\n    - labels: '{{slo=\"checkout\",slo_namespace=\"shop\",slo_service=\"checkout\"}}'\n      value: 1\n  \
         - expr: abs(avg_over_time(slo:sli_error:ratio_rate5m[{days}d:5m]) - {exact}) / {exact} > bool 0.1\n    eval_time: {days}d\n    \
           exp_samples:\n    - labels: '{{slo=\"checkout\",slo_namespace=\"shop\",slo_service=\"checkout\"}}'\n      value: 1\n"
    );
    run_suite(version, &checkout(), &suite);
}

/// tests/alert-templates.json against the real parser: every text we accept, promtool accepts;
/// every text we refuse, promtool refuses too unless the case says we are stricter (`prometheus`,
/// or `prometheus3` for what only Prometheus 3 accepts). One alert per case, in one file, so
/// promtool names the alert of each failure.
fn alert_templates_are_judged_as_promtool_judges_them(version: Version) {
    let cases: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("tests/alert-templates.json")).unwrap(),
    )
    .unwrap();
    let mut texts = Vec::new();
    for text in cases["accepted"].as_array().unwrap() {
        texts.push((text.as_str().unwrap().to_string(), true));
    }
    for case in cases["refused"].as_array().unwrap() {
        let says = |key: &str| case.get(key).and_then(|p| p.as_str()) == Some("accepts");
        let prometheus_accepts =
            says("prometheus") || (version == Version::Three && says("prometheus3"));
        texts.push((
            case["text"].as_str().unwrap().to_string(),
            prometheus_accepts,
        ));
    }
    let rules: Vec<serde_json::Value> = texts
        .iter()
        .enumerate()
        .map(|(i, (text, _))| {
            serde_json::json!({"alert": format!("Case{i}"), "expr": "vector(1)", "annotations": {"d": text}})
        })
        .collect();
    let file = serde_json::json!({"groups": [{"name": "cases", "rules": rules}]});
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rules.yaml");
    std::fs::write(&path, serde_json::to_string(&file).unwrap()).unwrap();
    let out = promtool(version)
        .arg("check")
        .arg("rules")
        .arg(&path)
        .output()
        .unwrap();
    let report =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    let differ: Vec<&String> = texts
        .iter()
        .enumerate()
        .filter(|(i, (_, accepts))| report.contains(&format!("\"Case{i}\"")) == *accepts)
        .map(|(_, (text, _))| text)
        .collect();
    assert!(
        differ.is_empty(),
        "promtool judges {differ:?} otherwise:\n{report}"
    );
}
