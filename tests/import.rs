//! `plimsoll import` as a user runs it, on fixtures written from each format's published spec
//! (tests/import/): every converted SLO checked field by field, refusals named by file and
//! field with exit 1, and the output accepted by `plimsoll validate`.

mod support;

use std::process::{Command, Output};

use serde_json::{Value, json};
use support::repo;

fn plimsoll(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_plimsoll"))
        .args(args)
        .current_dir(repo())
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Imports one fixture: the exit code, the SLOs by name (spec and metadata), and stderr.
fn import(file: &str) -> (i32, Vec<Value>, String) {
    let out = plimsoll(&["import", "-f", &format!("tests/import/{file}")]);
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text(&out.stdout)).unwrap();
    (out.status.code().unwrap(), docs, text(&out.stderr))
}

fn named<'a>(docs: &'a [Value], name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no SLO {name} in {docs:#?}"))
}

#[test]
fn sloth_spec_files_convert_field_by_field() {
    let (code, docs, err) = import("sloth-spec.yaml");
    assert_eq!(code, 0, "{err}");
    assert_eq!(docs.len(), 5);
    let a = named(&docs, "shop-requests-availability");
    assert_eq!(a["metadata"].get("namespace"), None);
    assert_eq!(
        a["spec"],
        json!({
            "service": "shop", "description": "Checkout answers without a server error.",
            "objective": 99.5, "window": "30d",
            "indicator": {"ratio": {"errors": "shop_requests_total{job=\"shop\",code=~\"5..\"}",
                                    "total": "shop_requests_total{job=\"shop\"}"}},
            "alerting": {"name": "ShopAvailability",
                         "labels": {"category": "availability", "team": "payments", "tier": "1"},
                         "annotations": {"runbook": "https://runbooks.example/shop"},
                         "page": {"labels": {"routing_key": "payments", "severity": "critical",
                                             "sloth_severity": "page"}},
                         "ticket": {"disabled": true}},
        })
    );
    let latency = &named(&docs, "shop-requests-latency")["spec"];
    assert_eq!(
        latency["indicator"],
        json!({"latency": {"histogram": "shop_request_duration_seconds{job=\"shop\"}", "threshold": 0.5}})
    );
    assert_eq!(latency["objective"], 99.0);
    let routes = &named(&docs, "shop-routes-availability")["spec"];
    assert_eq!(routes["indicator"]["ratio"]["groupBy"], json!(["route"]));
    assert_eq!(
        routes["alerting"],
        json!({"disabled": true, "labels": {"team": "payments"}})
    );
    let raw = &named(&docs, "shop-raw-availability")["spec"]["indicator"];
    assert_eq!(
        raw["ratio"]["errors"], "shop_requests_total{job=\"shop\",code=~\"5..\"}",
        "a raw ratio of two counters is a ratio: {raw}"
    );
    let queue = &named(&docs, "shop-queue-freshness")["spec"]["indicator"]["query"]["errorRatio"];
    assert_eq!(
        queue,
        "avg_over_time((shop_queue_age_seconds > bool 60)[$window:])"
    );
    for line in [
        "tests/import/sloth-spec.yaml: labels: changed: team=payments go to alerting.labels",
        "slos[0].alerting.name: changed: Sloth names both burn alerts \"ShopAvailability\"",
        "slos[4].sli.raw.error_ratio_query: changed: not a plain rate of counters",
        "slos[2].sli: changed: `by (route)` in both queries becomes groupBy",
        "slos[3].alerting.page: changed: the page alert has no severity label",
        "slos[1].alerting: changed: Sloth labels its page alert sloth_severity: page and its \
         ticket alert sloth_severity: ticket; carried so Alertmanager routes on it keep \
         matching: alerting.page.labels gets sloth_severity: page, alerting.ticket.labels gets \
         sloth_severity: ticket",
        "slos[1].alerting: not carried: sloth_id, sloth_service and sloth_slo",
    ] {
        assert!(err.contains(line), "{line} not in\n{err}");
    }
}

#[test]
fn a_sloth_object_keeps_its_namespace_and_refuses_a_plugin() {
    let (code, docs, err) = import("sloth-object.yaml");
    assert_eq!(code, 1, "a plugin SLI is not convertible: {err}");
    assert_eq!(docs.len(), 1);
    let slo = named(&docs, "shop-requests-availability");
    assert_eq!(slo["metadata"]["namespace"], "shop");
    assert_eq!(
        slo["spec"]["alerting"]["page"],
        json!({"labels": {"severity": "critical", "sloth_severity": "page"},
               "annotations": {"summary": "Checkout is failing"}})
    );
    assert_eq!(
        slo["spec"]["alerting"]["ticket"],
        json!({"labels": {"severity": "warning", "sloth_severity": "ticket"}})
    );
    assert!(err.contains(
        "tests/import/sloth-object.yaml: spec.slos[1].sli.plugin.id: refused: the SLI is Sloth plugin \"sloth-common/kubernetes/apiserver/availability\""
    ), "{err}");
    assert!(
        err.contains("metadata.labels.prometheus: not carried: prometheus=main"),
        "{err}"
    );
}

#[test]
fn pyrra_objects_convert_field_by_field() {
    let (code, docs, err) = import("pyrra.yaml");
    assert_eq!(code, 0, "{err}");
    let errors = named(&docs, "shop-errors");
    assert_eq!(errors["metadata"]["namespace"], "shop");
    assert_eq!(
        errors["spec"],
        json!({
            "service": "shop", "description": "Checkout answers without a server error.",
            "objective": 99.5, "window": "30d",
            "indicator": {"ratio": {"errors": "shop_requests_total{job=\"shop\",code=~\"5..\"}",
                                    "total": "shop_requests_total{job=\"shop\"}",
                                    "groupBy": ["route"]}},
            // Pyrra's alerts carry the total's = matchers (job) besides its pyrra.dev/ labels.
            "alerting": {"labels": {"job": "shop", "service": "shop", "team": "payments"},
                         "annotations": {"runbook": "https://runbooks.example/shop"}},
        })
    );
    let latency = &named(&docs, "shop-latency")["spec"];
    assert_eq!(latency["service"], "shop-latency");
    assert_eq!(
        latency["indicator"],
        json!({"latency": {"histogram": "shop_request_duration_seconds{job=\"shop\"}", "threshold": 0.5}})
    );
    assert_eq!(
        latency["alerting"],
        json!({"name": "ShopLatency", "labels": {"job": "shop"}, "absent": {"disabled": true}})
    );
    let probe = &named(&docs, "shop-probe")["spec"];
    assert_eq!(
        probe["indicator"],
        json!({"gauge": {"metric": "shop_probe_success{job=\"blackbox\"}"}})
    );
    assert_eq!(
        probe["alerting"],
        json!({"labels": {"job": "blackbox"}, "page": {"disabled": true}, "ticket": {"disabled": true}})
    );
    assert!(
        err.contains("#1: metadata.labels.prometheus: not carried"),
        "{err}"
    );
    assert!(
        err.contains(
            "#1: metadata.name: changed: spec.service is \"shop\", from the pyrra.dev/service label"
        ),
        "{err}"
    );

    let (code, docs, err) = import("pyrra-native.yaml");
    assert_eq!((code, docs.len()), (0, 1), "{err}");
    assert_eq!(
        docs[0]["spec"]["indicator"],
        serde_json::json!({"nativeLatency": {
            "histogram": "shop_request_duration_seconds{job=\"shop\"}",
            "threshold": 0.5,
            "groupBy": ["route"],
        }})
    );
    assert!(
        err.contains("spec.indicator.latencyNative.latency: changed: 500ms is the threshold 0.5"),
        "{err}"
    );

    let (code, docs, err) = import("pyrra-native-bad-latency.yaml");
    assert_eq!((code, docs.len()), (1, 0), "{err}");
    assert!(
        err.contains("spec.indicator.latencyNative.latency: refused: \"fast\" is not a positive"),
        "{err}"
    );
}

#[test]
fn openslo_v1_resolves_references_and_splits_objectives() {
    let (code, docs, err) = import("openslo-v1.yaml");
    assert_eq!(code, 0, "{err}");
    assert_eq!(docs.len(), 3);
    assert_eq!(
        named(&docs, "shop-availability")["spec"],
        json!({
            "service": "shop", "description": "Checkout answers without a server error.",
            "objective": 99.5, "window": "30d",
            "indicator": {"ratio": {"good": "shop_requests_total{job=\"shop\",code!~\"5..\"}",
                                    "total": "shop_requests_total{job=\"shop\"}"}},
            "alerting": {"page": {"labels": {"severity": "page"}}},
        })
    );
    let first = &named(&docs, "shop-slices-0")["spec"];
    assert_eq!(first["window"], "month");
    assert_eq!(first["timeZone"], "Europe/Berlin");
    assert_eq!(first["budgetingMethod"], "Timeslices");
    assert_eq!(
        first["timeslice"],
        json!({"duration": "5m", "objective": 95.0})
    );
    assert_eq!(first["objective"], 99.0);
    assert_eq!(
        first["indicator"]["ratio"]["errors"],
        "shop_requests_total{job=\"shop\",code=~\"5..\"}"
    );
    assert_eq!(first["alerting"], json!({"disabled": true}));
    let second = &named(&docs, "shop-slices-1")["spec"];
    assert_eq!(
        (
            second["objective"].as_f64(),
            &second["timeslice"]["duration"]
        ),
        (Some(99.9), &json!("1m"))
    );
    for line in [
        "[0]: spec.alertPolicies[0].spec.conditions[0].conditionRef(shop-fast-burn): changed: burn rate gt 14 over 1h",
        "[1]: spec.timeWindow[0].calendar.startTime: not carried",
        "[2]: (document): not carried: SLI \"shop-good-requests\"",
        "[0]: metadata.displayName: not carried",
    ] {
        assert!(err.contains(line), "{line} not in\n{err}");
    }
}

#[test]
fn openslo_v1alpha_reads_ratio_metrics_in_objectives_and_refuses_other_sources() {
    let (code, docs, err) = import("openslo-v1alpha.yaml");
    assert_eq!(code, 1, "{err}");
    assert_eq!(docs.len(), 1);
    assert_eq!(
        named(&docs, "shop-latency")["spec"],
        json!({
            "service": "shop", "objective": 99.0, "window": "30d",
            "indicator": {"latency": {"histogram": "shop_request_duration_seconds{job=\"shop\"}", "threshold": 0.5}},
            "alerting": {"disabled": true},
        })
    );
    assert!(err.contains("#2: spec.objectives[0].ratioMetrics.good.source: refused: unsupported source \"datadog\""), "{err}");
}

#[test]
fn an_openslo_threshold_metric_becomes_the_share_of_points_that_miss_it() {
    let (code, docs, err) = import("openslo-threshold.yaml");
    assert_eq!(code, 0, "{err}");
    let slo = named(&docs, "shop-latency-gauge");
    // `op: lte, value: 200`: a point is good at 200 or less, so the bad ones are above 200.
    let q = "shop_latency_p99_milliseconds{job=\"shop\"}";
    assert_eq!(
        slo["spec"],
        json!({
            "service": "shop", "description": "The shop's p99 gauge stays at or under 200 ms.",
            "objective": 99.0, "window": "7d",
            "indicator": {"query": {"errorRatio": format!(
                "sum(sum_over_time((({q}) > bool 200)[$window:1m])) \
                 / sum(count_over_time(({q})[$window:1m]))")}},
            "alerting": {"disabled": true},
        })
    );
    assert!(
        err.contains("spec.objectives[0]: changed: a thresholdMetric becomes indicator.query"),
        "{err}"
    );
}

#[test]
fn every_converted_slo_passes_validate_and_names_its_source() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("slos");
    let out = plimsoll(&[
        "import",
        "-f",
        "tests/import/",
        "--namespace",
        "imported",
        "--out",
        out_dir.to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(out.status.code(), Some(1), "the fixtures hold refusals");
    let err = text(&out.stderr);
    assert!(
        err.lines()
            .all(|l| l.contains(": refused: ") || l.starts_with("plimsoll import: ")),
        "{err}"
    );
    assert!(err.contains("plimsoll import: 15 SLO(s)"), "{err}");
    let check = plimsoll(&["validate", "-f", out_dir.to_str().unwrap()]);
    assert_eq!(
        check.status.code(),
        Some(0),
        "{}{}",
        text(&check.stdout),
        text(&check.stderr)
    );
    assert!(
        text(&check.stderr).starts_with("15 valid, 0 invalid"),
        "{}",
        text(&check.stderr)
    );
    let file = std::fs::read_to_string(out_dir.join("shop/shop-errors.yaml")).unwrap();
    assert!(
        file.starts_with("# metadata.labels.prometheus: not carried:"),
        "{file}"
    );
    assert!(
        file.contains(
            "plimsoll.dev/imported-from: Pyrra pyrra.dev/v1alpha1 tests/import/pyrra.yaml#1"
        ),
        "{file}"
    );
    assert!(
        out_dir
            .join("imported/shop-requests-availability.yaml")
            .exists()
    );
}

#[test]
fn a_file_that_is_not_text_is_refused_and_the_others_convert() {
    let dir = tempfile::tempdir().unwrap();
    let binary = dir.path().join("binary.yaml");
    std::fs::write(&binary, b"version: prometheus/v1\nservice: \xff\xfe\n").unwrap();
    let out = plimsoll(&[
        "import",
        "-f",
        binary.to_str().unwrap(),
        "-f",
        "tests/import/pyrra.yaml",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("binary.yaml: not valid UTF-8 text: (document): refused"),
        "{err}"
    );
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text(&out.stdout)).unwrap();
    assert_eq!(docs.len(), 3);
}

#[test]
fn unreadable_input_is_an_error_not_an_empty_import() {
    let out = plimsoll(&["import", "-f", "tests/import/no-such-file.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no-such-file.yaml"));
}

/// A note about the same field in many SLOs (a default every Pyrra SLO gets, an OpenSLO field
/// Plimsoll has no place for) is one line on stderr naming where, not one line per SLO.
#[test]
fn each_note_is_reported_once_with_the_documents_it_concerns() {
    let out_dir = tempfile::tempdir().unwrap();
    let out = plimsoll(&[
        "import",
        "-f",
        "tests/import/",
        "--out",
        out_dir.path().to_str().unwrap(),
    ]);
    let err = text(&out.stderr);
    let notes: Vec<&str> = err
        .lines()
        .filter(|l| !l.starts_with("plimsoll import: "))
        .collect();
    let grouped: Vec<&&str> = notes
        .iter()
        .filter(|l| l.contains(" documents: "))
        .collect();
    assert!(!grouped.is_empty(), "the fixtures share notes:\n{err}");
    let mut seen = std::collections::BTreeSet::new();
    for note in &notes {
        let said = match note.split_once(" (in ") {
            Some((said, _)) if note.contains(" documents: ") => said,
            _ => note.split_once(": ").map_or(*note, |(_, said)| said),
        };
        assert!(seen.insert(said.to_string()), "twice: {said}\n{err}");
    }
}
