//! The importer over the real Sloth, Pyrra and OpenSLO files in ../shared/peers (byte for byte
//! from the tools' repositories and their users'; not part of this repository, so the test is
//! ignored in `make test`): `cargo test --test import_peers -- --ignored`, or with
//! PLIMSOLL_PEERS=<dir>. Every file is handled without a crash, everything emitted passes
//! `plimsoll validate`, and the outcomes EXPECT.md names for each file hold: exit code, SLOs,
//! reports, and for some the converted fields themselves.

mod support;

use std::path::PathBuf;
use std::process::Command;

fn peers() -> PathBuf {
    std::env::var_os("PLIMSOLL_PEERS")
        .map(PathBuf::from)
        .unwrap_or_else(|| support::repo().join("../shared/peers"))
}

/// (file, exit code, SLOs emitted, text every report must contain)
const EXPECTED: &[(&str, i32, usize, &[&str])] = &[
    (
        "sloth/prometheus-v1-getting-started-events.yml",
        0,
        1,
        &["alerting.name: changed"],
    ),
    (
        "sloth/prometheus-v1-home-wifi-events-subquery.yml",
        0,
        2,
        &["query fallback", "subquery"],
    ),
    (
        "sloth/prometheus-v1-raw-home-wifi-error-ratio.yml",
        0,
        1,
        &["query fallback"],
    ),
    (
        "sloth/prometheus-v1-kubernetes-apiserver-availability-and-latency.yml",
        0,
        2,
        &[],
    ),
    (
        "sloth/prometheus-v1-no-alerts.yml",
        0,
        1,
        &["went only to Sloth's recorded series"],
    ),
    (
        "sloth/prometheus-v1-multifile-two-services.yml",
        0,
        2,
        &["is shared by the SLOs"],
    ),
    (
        "sloth/prometheus-v1-sli-plugin.yml",
        1,
        0,
        &["getting_started_availability"],
    ),
    (
        "sloth/prometheus-v1-victoria-metrics-slo-plugins.yml",
        1,
        0,
        &["histogram_share", "slo_plugins"],
    ),
    (
        "sloth/k8s-crd-getting-started.yml",
        0,
        1,
        &["names Sloth's group"],
    ),
    (
        "sloth/k8s-crd-home-wifi.yml",
        0,
        2,
        &["metadata.labels.prometheus"],
    ),
    (
        "sloth/openslo-v1alpha-getting-started.yml",
        0,
        1,
        &["displayName"],
    ),
    (
        "sloth/openslo-v1alpha-kubernetes-apiserver-multi-objective.yml",
        0,
        3,
        &["-1"],
    ),
    (
        "sloth/realworld-kuadrant-k8s-crd-availability-by-host.yaml",
        0,
        1,
        &["per request_host"],
    ),
    (
        "sloth/realworld-kuadrant-k8s-crd-latency-ms-by-host.yaml",
        0,
        1,
        &["milliseconds"],
    ),
    (
        "pyrra/ratio-grouping-prometheus-http.yaml",
        0,
        1,
        &["PrometheusApiQueryErrorBudgetBurn"],
    ),
    (
        "pyrra/latency-native-connect-grouping.yaml",
        0,
        1,
        &["200ms is the threshold 0.2", "bucket boundary"],
    ),
    (
        "pyrra/multi-doc-nginx-ratio-and-latency.yaml",
        0,
        2,
        &["do not have the same matchers"],
    ),
    (
        "pyrra/k8s-jsonnet-apiserver-read-cluster-latency.yaml",
        0,
        1,
        &["le=\"5.0\""],
    ),
    (
        "pyrra/unmerged-pr1602-latency-grouping-alerting-burnratetype.yaml",
        0,
        2,
        &["burnRateType"],
    ),
    (
        "pyrra/realworld-rhobs-api-metrics-write-availability.yaml",
        0,
        1,
        &["without a group", "instance"],
    ),
    (
        "openslo/v1-slo-threshold-any-occurrences-rolling-2w.yaml",
        1,
        0,
        &["\"Any\""],
    ),
    (
        "openslo/v1-slo-ratio-any-ratiotimeslices-rolling-2w.yaml",
        1,
        0,
        &["RatioTimeslices"],
    ),
    (
        "openslo/v1-slo-ratio-any-timeslices-calendar-two-objectives.yaml",
        1,
        0,
        &["`m` is minutes"],
    ),
    (
        "openslo/v1-slo-list-prometheus-ratio-good-timeslices-calendar-1w.yaml",
        0,
        1,
        &["not joined", "startTime"],
    ),
    (
        "openslo/v1-sli-list-ratio-bad-raw-threshold.yaml",
        0,
        0,
        &[
            "SLI without an SLO",
            "rawType: success",
            "openslo.com/service-folder",
        ],
    ),
    (
        "openslo/v1-datasource-list-prometheus-datadog.yaml",
        0,
        0,
        &["prometheus.example.com"],
    ),
    (
        "openslo/v1-list-slo-indicatorref-alertpolicy-refs-go-sdk.yaml",
        0,
        2,
        &[
            "a thresholdMetric becomes indicator.query",
            "op lte",
            "is compared with the op and value of the objective that uses it",
        ],
    ),
    (
        "openslo/v1alpha-slo-list-threshold-prometheus-and-ratio-datadog.yaml",
        1,
        1,
        &[
            "datadog",
            "where (api_server_requestMsec{host=\"*\",job=\"nginx\"}) > 200 does not hold",
        ],
    ),
    (
        "openslo/v1-alertpolicy-list-inline-condition-and-refs.yaml",
        0,
        0,
        &[
            "spec.alertWhenBreaching: not carried: if an SLO used it",
            "\"on-call-pd-notification\": where alerts go",
            "burn rate gt 2 over 1h for 5m",
        ],
    ),
    (
        "openslo/v1-service-list.yaml",
        0,
        0,
        &["description has no counterpart; the name is given more than once"],
    ),
    (
        "openslo/v1-sli-prometheus-good-and-bad-invalid.yaml",
        1,
        0,
        &["spec.ratioMetric: refused: sets both good and bad"],
    ),
    (
        "openslo/v1-slo-ratio-any-timeslices-calendar-1w.yaml",
        1,
        0,
        &[
            "type \"Any\"",
            "calendar.startTime: not carried: \"2022-01-01 12:00:00\"",
            "op gt goes with the indicator",
        ],
    ),
    (
        "pyrra/bool-gauge-probe-success-grouping.yaml",
        0,
        1,
        &["metadata.labels.prometheus", "metadata.labels.role"],
    ),
    (
        "pyrra/k8s-jsonnet-prometheus-operator-reconcile-errors-grouping.yaml",
        0,
        1,
        &["metadata.labels.prometheus", "metadata.labels.role"],
    ),
    (
        "pyrra/latency-caddy-response.yaml",
        0,
        1,
        &["from metadata.name", "CaddyResponseLatencyErrorBudgetBurn"],
    ),
    (
        "pyrra/openshift-jsonnet-prometheus-sd-kubernetes-errors.yaml",
        0,
        1,
        &["metadata.labels.prometheus", "metadata.labels.role"],
    ),
    (
        "pyrra/ratio-propagated-label-parca-grpc.yaml",
        0,
        1,
        &[
            "pyrra.dev/team: changed: goes to alerting.labels as team=parca; Pyrra also puts it \
             on the recording rules",
            "metadata.labels.role",
        ],
    ),
    (
        "pyrra/ratio-two-counters-filesystem-errors.yaml",
        0,
        1,
        &["metadata.labels.prometheus", "metadata.labels.role"],
    ),
    (
        "pyrra/realworld-rhobs-api-metrics-read-1M-latency.yaml",
        0,
        1,
        &[
            "metadata.labels.instance: not carried",
            "from the pyrra.dev/service label",
            "APIMetricsReadLatency1MErrorBudgetBurningErrorBudgetBurn",
        ],
    ),
];

/// (file, JSON pointer into the one SLO it gives, the value there as YAML writes it): the
/// converted fields EXPECT.md names, where a wrong mapping would still give a valid SLO.
const FIELDS: &[(&str, &str, &str)] = &[
    (
        "pyrra/latency-native-connect-grouping.yaml",
        "/spec/indicator/nativeLatency/histogram",
        "connect_server_requests_duration_seconds{job=\"pyrra\",code=\"ok\"}",
    ),
    (
        "pyrra/latency-native-connect-grouping.yaml",
        "/spec/indicator/nativeLatency/threshold",
        "0.2",
    ),
    (
        "pyrra/latency-native-connect-grouping.yaml",
        "/spec/indicator/nativeLatency/groupBy/1",
        "method",
    ),
    (
        "pyrra/bool-gauge-probe-success-grouping.yaml",
        "/spec/indicator/gauge/metric",
        "probe_success",
    ),
    (
        "pyrra/bool-gauge-probe-success-grouping.yaml",
        "/spec/indicator/gauge/groupBy/0",
        "target",
    ),
    (
        "pyrra/k8s-jsonnet-prometheus-operator-reconcile-errors-grouping.yaml",
        "/spec/indicator/ratio/total",
        "prometheus_operator_reconcile_operations_total{job=\"prometheus-operator\"}",
    ),
    (
        "pyrra/k8s-jsonnet-prometheus-operator-reconcile-errors-grouping.yaml",
        "/spec/indicator/ratio/groupBy/0",
        "controller",
    ),
    (
        "pyrra/latency-caddy-response.yaml",
        "/spec/indicator/latency/histogram",
        "caddy_http_response_duration_seconds{job=\"caddy\",handler=\"subroute\",code!~\"5..\"}",
    ),
    (
        "pyrra/latency-caddy-response.yaml",
        "/spec/indicator/latency/threshold",
        "0.05",
    ),
    (
        "pyrra/openshift-jsonnet-prometheus-sd-kubernetes-errors.yaml",
        "/spec/indicator/ratio/errors",
        "prometheus_sd_kubernetes_http_request_total{job=\"prometheus-k8s\",status_code=~\"5..|<error>\"}",
    ),
    (
        "pyrra/ratio-propagated-label-parca-grpc.yaml",
        "/spec/alerting/labels/team",
        "parca",
    ),
    (
        "pyrra/ratio-two-counters-filesystem-errors.yaml",
        "/spec/indicator/ratio/errors",
        "pyrra_filesystem_reconciles_errors_total",
    ),
    (
        "pyrra/ratio-two-counters-filesystem-errors.yaml",
        "/spec/window",
        "1w",
    ),
    (
        "pyrra/realworld-rhobs-api-metrics-read-1M-latency.yaml",
        "/spec/service",
        "observatorium-api",
    ),
    (
        "pyrra/realworld-rhobs-api-metrics-read-1M-latency.yaml",
        "/spec/indicator/latency/threshold",
        "10.0",
    ),
    (
        "pyrra/k8s-jsonnet-apiserver-read-cluster-latency.yaml",
        "/spec/indicator/latency/threshold",
        "5.0",
    ),
    (
        "sloth/realworld-kuadrant-k8s-crd-latency-ms-by-host.yaml",
        "/spec/indicator/latency/threshold",
        "250.0",
    ),
];

#[test]
#[ignore = "reads ../shared/peers, which is not part of this repository"]
fn every_peer_file_imports_without_a_crash_and_everything_emitted_is_valid() {
    let root = peers();
    let mut files = Vec::new();
    for folder in ["sloth", "pyrra", "openslo"] {
        for entry in std::fs::read_dir(root.join(folder)).unwrap() {
            files.push(entry.unwrap().path());
        }
    }
    files.sort();
    let pinned = |file: &PathBuf| {
        let relative = file
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .to_string();
        EXPECTED.iter().any(|e| e.0 == relative)
    };
    let unpinned: Vec<_> = files.iter().filter(|f| !pinned(f)).collect();
    assert!(unpinned.is_empty(), "not in EXPECTED: {unpinned:?}");
    assert!(
        files.len() >= 39,
        "{} files in {}",
        files.len(),
        root.display()
    );
    for file in &files {
        let out_dir = tempfile::tempdir().unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_plimsoll"))
            .args(["import", "--namespace", "peers", "--out"])
            .arg(out_dir.path())
            .arg("-f")
            .arg(file)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        let code = out.status.code().unwrap_or(-1);
        assert!(
            matches!(code, 0 | 1),
            "{}: exit {code}\n{err}",
            file.display()
        );
        assert!(!err.contains("panicked"), "{}: {err}", file.display());
        let emitted = walk(out_dir.path());
        if !emitted.is_empty() {
            let check = Command::new(env!("CARGO_BIN_EXE_plimsoll"))
                .args(["validate", "-q", "-f"])
                .arg(out_dir.path())
                .output()
                .unwrap();
            assert_eq!(
                check.status.code(),
                Some(0),
                "{}: {check:?}",
                file.display()
            );
        }
        let relative = file
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .to_string();
        if let Some((_, want_code, want_slos, texts)) = EXPECTED.iter().find(|e| e.0 == relative) {
            assert_eq!(
                (code, emitted.len()),
                (*want_code, *want_slos),
                "{relative}\n{err}"
            );
            for text in *texts {
                assert!(err.contains(text), "{relative}: {text:?} not in\n{err}");
            }
        }
        for (_, pointer, want) in FIELDS.iter().filter(|e| e.0 == relative) {
            assert_eq!(emitted.len(), 1, "{relative}");
            let text = std::fs::read_to_string(&emitted[0]).unwrap();
            let slo: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
            let got = match slo.pointer(pointer) {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => panic!("{relative}: no {pointer} in\n{text}"),
            };
            assert_eq!(&got, want, "{relative}: {pointer}");
        }
        eprintln!("{relative}: exit {code}, {} SLO(s)", emitted.len());
    }
}

fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
