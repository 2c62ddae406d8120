//! `plimsoll validate --prometheus-url`: the binary against a real Prometheus holding series that
//! are present, missing and mislabelled, with the exit codes a pre-commit hook sees. On
//! Prometheus 2.42 and 3.x (which stores an imported `le="1"` as `le="1.0"`).

mod support;

use std::io::Write;
use std::process::{Command, Output};

use support::prometheus::{Prometheus, Version, data_dir, import_openmetrics_on, unix_now};

on_both_versions!(the_metrics_slos_name_are_checked_in_prometheus);

/// The series Prometheus holds: requests of `api` (one without a route) and failures of `web`, a
/// histogram with bounds 0.1 to 1, and error and request counters of another shape, with one
/// error series of a job the total does not count.
const SERIES: &[(&str, &str)] = &[
    (
        "http_requests",
        r#"http_requests_total{job="api",code="200",route="/a"}"#,
    ),
    (
        "http_requests",
        r#"http_requests_total{job="api",code="500",route="/a"}"#,
    ),
    (
        "http_requests",
        r#"http_requests_total{job="api",code="200"}"#,
    ),
    (
        "http_requests",
        r#"http_requests_total{job="web",code="500",route="/b"}"#,
    ),
    ("lat_seconds", r#"lat_seconds_bucket{job="api",le="0.1"}"#),
    ("lat_seconds", r#"lat_seconds_bucket{job="api",le="0.25"}"#),
    ("lat_seconds", r#"lat_seconds_bucket{job="api",le="0.5"}"#),
    ("lat_seconds", r#"lat_seconds_bucket{job="api",le="1"}"#),
    ("lat_seconds", r#"lat_seconds_bucket{job="api",le="+Inf"}"#),
    ("lat_seconds", r#"lat_seconds_count{job="api"}"#),
    (
        "errors",
        r#"errors_total{job="api",instance="x",reason="db"}"#,
    ),
    (
        "errors",
        r#"errors_total{job="other",instance="y",reason="db"}"#,
    ),
    ("requests", r#"requests_total{job="api",instance="x"}"#),
];

/// nativeLatency on Debian's 2.42: refused with the version found and the version needed, before
/// any series is looked at (2.42 has native histograms only behind a feature flag).
#[test]
fn native_latency_is_refused_on_prometheus_2() {
    let dir = tempfile::tempdir().unwrap();
    let prometheus = prometheus(Version::Two, dir.path());
    let url = &prometheus.url.clone();
    let native = slo(
        dir.path(),
        "native",
        "    nativeLatency:\n      histogram: 'lat_seconds{job=\"api\"}'\n      threshold: 0.25\n",
    );
    let (code, stdout, stderr) = validate(url, &[&native]);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    let expected = format!(
        "{native}: spec.indicator.nativeLatency: error: Prometheus at {url} is version 2.42."
    );
    assert!(stdout.starts_with(&expected), "{stdout}");
    assert!(
        stdout.contains("indicator.nativeLatency needs Prometheus 3.0.0 or later"),
        "{stdout}"
    );
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    // The classic SLOs next to it are still checked, and pass.
    let classic = slo(
        dir.path(),
        "classic",
        "    latency:\n      histogram: 'lat_seconds{job=\"api\"}'\n      threshold: 0.25\n",
    );
    let (code, stdout, _) = validate(url, &[&classic]);
    assert_eq!(code, Some(0), "{stdout}");
    // `gate -f` of the native SLO has no series to read, and says why: exit 3, not deciding.
    let out = Command::new(env!("CARGO_BIN_EXE_plimsoll"))
        .args([
            "gate",
            "--slo",
            "shop/native",
            "--min-budget",
            "10",
            "-f",
            &native,
            "--prometheus-url",
            url,
        ])
        .env_remove("PLIMSOLL_PROMETHEUS_URL")
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(3), "{said}");
    assert!(
        said.contains("not deciding (Prometheus at")
            && said.contains("is version 2.42")
            && said.contains("needs Prometheus 3.0.0 or later"),
        "{said}"
    );
}

fn prometheus(version: Version, dir: &std::path::Path) -> Prometheus {
    let data = data_dir(dir);
    let now = unix_now();
    let file = dir.join("series.om");
    let mut out = std::fs::File::create(&file).unwrap();
    let mut families: Vec<&str> = SERIES.iter().map(|(f, _)| *f).collect();
    families.dedup();
    for family in families {
        let kind = if family == "lat_seconds" {
            "histogram"
        } else {
            "counter"
        };
        writeln!(out, "# TYPE {family} {kind}").unwrap();
        for (_, series) in SERIES.iter().filter(|(f, _)| *f == family) {
            for (i, t) in (now - 600..now - 5).step_by(15).enumerate() {
                writeln!(out, "{series} {} {t}", i * 10).unwrap();
            }
        }
    }
    writeln!(out, "# EOF").unwrap();
    drop(out);
    import_openmetrics_on(version, &file, &data);
    let config = dir.join("prometheus.yml");
    std::fs::write(&config, "global: {scrape_interval: 15s}\n").unwrap();
    // `validate` asks about the series *now*: with the default 5 minute look-back, samples
    // written up to 15 s before the test began would vanish if the import, the start-up and
    // the runs below took longer than that on a loaded machine. An hour outlasts every bound
    // in this test (Prometheus' start-up is allowed 2 minutes).
    Prometheus::start_on(version, &data, &config, &["--query.lookback-delta=1h"])
}

fn slo(dir: &std::path::Path, name: &str, indicator: &str) -> String {
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(
        &path,
        format!(
            "apiVersion: plimsoll.dev/v1alpha1\nkind: ServiceLevelObjective\n\
             metadata: {{name: {name}, namespace: shop}}\n\
             spec:\n  service: api\n  objective: 99.9\n  window: 30d\n  indicator:\n{indicator}"
        ),
    )
    .unwrap();
    path.display().to_string()
}

fn validate(url: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let out: Output = Command::new(env!("CARGO_BIN_EXE_plimsoll"))
        .arg("validate")
        .arg("--prometheus-url")
        .arg(url)
        .args(args)
        .env_remove("PLIMSOLL_PROMETHEUS_URL")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn the_metrics_slos_name_are_checked_in_prometheus(version: Version) {
    let dir = tempfile::tempdir().unwrap();
    let prometheus = prometheus(version, dir.path());
    let url = &prometheus.url.clone();
    let d = dir.path();
    let ok = slo(
        d,
        "ok",
        "    ratio:\n      errors: 'http_requests_total{job=\"api\",code=\"500\"}'\n      total: 'http_requests_total{job=\"api\"}'\n",
    );
    let (code, stdout, stderr) = validate(url, &[&ok]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert_eq!(stdout, "");
    assert!(
        stderr.contains(&format!("against {url}: 0 error(s), 0 warning(s)")),
        "{stderr}"
    );

    // A total that matches nothing: the SLI cannot be computed.
    let typo = slo(
        d,
        "typo",
        "    ratio:\n      errors: 'http_requests_total{job=\"apii\",code=\"500\"}'\n      total: 'http_requests_total{job=\"apii\"}'\n",
    );
    let (code, stdout, _) = validate(url, &[&typo]);
    assert_eq!(code, Some(1), "{stdout}");
    assert_eq!(
        stdout.trim(),
        format!(
            "{typo}: spec.indicator.ratio.total: error: `http_requests_total{{job=\"apii\"}}` \
             matches no series in Prometheus now: check the metric name and labels"
        )
    );

    // No error series yet: a warning, which --strict makes fail.
    let quiet = slo(
        d,
        "quiet",
        "    ratio:\n      errors: 'http_requests_total{job=\"api\",code=\"503\"}'\n      total: 'http_requests_total{job=\"api\"}'\n",
    );
    let (code, stdout, _) = validate(url, &[&quiet]);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(
        stdout.starts_with(&format!("{quiet}: spec.indicator.ratio.errors: warning: ")),
        "{stdout}"
    );
    let (code, _, _) = validate(url, &["--strict", &quiet]);
    assert_eq!(code, Some(1));

    // A threshold that is not a bucket bound: named with the bounds there are.
    let latency = slo(
        d,
        "latency",
        "    latency:\n      histogram: 'lat_seconds{job=\"api\"}'\n      threshold: 0.3\n",
    );
    let (code, stdout, _) = validate(url, &[&latency]);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.contains(
            "spec.indicator.latency.threshold: error: the histogram has no bucket at le=\"0.3\""
        ) && stdout.contains("its bounds are 0.1, 0.25, 0.5, 1, +Inf"),
        "{stdout}"
    );
    let on_a_bound = slo(
        d,
        "bound",
        "    latency:\n      histogram: 'lat_seconds{job=\"api\"}'\n      threshold: 0.25\n",
    );
    let (code, stdout, _) = validate(url, &[&on_a_bound]);
    assert_eq!(code, Some(0), "{stdout}");

    // Errors of a job the total does not count: of the same metric, an error.
    let outside = slo(
        d,
        "outside",
        "    ratio:\n      errors: 'http_requests_total{code=\"500\"}'\n      total: 'http_requests_total{job=\"api\"}'\n",
    );
    let (code, stdout, stderr) = validate(url, &[&outside]);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("spec.indicator.ratio.errors: error: 1 series of `http_requests_total{code=\"500\"}` are not among the series of the total `http_requests_total{job=\"api\"}`:"),
        "{stdout}"
    );
    // Of another metric, matched on the labels one series of each has: a warning.
    let other_metric = slo(
        d,
        "other-metric",
        "    ratio:\n      errors: 'errors_total'\n      total: 'requests_total{job=\"api\"}'\n",
    );
    let (code, stdout, _) = validate(url, &[&other_metric]);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(
        stdout.contains("spec.indicator.ratio.errors: warning: 1 series of `errors_total` are not among the series of the total `requests_total{job=\"api\"}` on(instance, job)"),
        "{stdout}"
    );
    let inside = slo(
        d,
        "inside",
        "    ratio:\n      errors: 'errors_total{job=\"api\"}'\n      total: 'requests_total{job=\"api\"}'\n",
    );
    assert_eq!(validate(url, &[&inside]).0, Some(0));

    // groupBy labels: on some series (a warning), on none (an error).
    let grouped = slo(
        d,
        "grouped",
        "    ratio:\n      errors: 'http_requests_total{job=\"api\",code=\"500\"}'\n      total: 'http_requests_total{job=\"api\"}'\n      groupBy: [route, zone]\n",
    );
    let (code, stdout, stderr) = validate(url, &[&grouped]);
    assert_eq!(code, Some(1), "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(lines[0].contains("spec.indicator.ratio.groupBy[0]: warning: label \"route\" is missing on 1 of the 3 series"), "{stdout}");
    assert!(
        lines[1].contains(
            "spec.indicator.ratio.groupBy[1]: error: label \"zone\" is on none of the 3 series"
        ),
        "{stdout}"
    );
    assert!(stderr.contains("1 error(s), 1 warning(s)"), "{stderr}");

    // Every file in one run; and an unreachable Prometheus cannot be checked: exit 2.
    let (code, stdout, _) = validate(url, &[&ok, &typo, &quiet]);
    assert_eq!((code, stdout.lines().count()), (Some(1), 2), "{stdout}");
    drop(prometheus);
    let (code, _, stderr) = validate(url, &[&ok]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("did not answer"), "{stderr}");
}
