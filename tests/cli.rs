//! The built `plimsoll` binary: exit codes and messages, as a pre-commit hook or CI job sees them.

mod support;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use support::{bad_inputs, repo, yaml_files};

fn plimsoll(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_plimsoll"))
        .args(args)
        .current_dir(repo())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn examples_are_valid() {
    let out = plimsoll(&["validate", "-f", "examples/"], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert_eq!(text(&out.stdout), "");
    let examples = yaml_files("examples").len();
    assert!(examples >= 8, "only {examples} examples");
    assert!(
        text(&out.stderr).starts_with(&format!("{examples} valid, 0 invalid")),
        "{}",
        text(&out.stderr)
    );
}

/// A threshold of 200 in a histogram of seconds is valid, and almost surely 200 ms: validate says
/// so at the field and passes, unless --strict; a histogram in milliseconds is not questioned.
#[test]
fn a_latency_threshold_in_milliseconds_by_habit_is_a_warning_that_strict_fails() {
    let example = std::fs::read_to_string(repo().join("examples/api-latency.yaml")).unwrap();
    let threshold = example
        .lines()
        .find(|l| l.trim_start().starts_with("threshold:"))
        .unwrap()
        .to_string();
    let indent = &threshold[..threshold.len() - threshold.trim_start().len()];
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("slow.yaml");
    let slow = example.replace(&threshold, &format!("{indent}threshold: 200"));
    std::fs::write(&file, &slow).unwrap();
    let path = file.to_str().unwrap();

    let out = plimsoll(&["validate", "-f", path], None);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(
        stdout.contains("slow.yaml: spec.indicator.latency.threshold: warning: 200 is over 60")
            && stdout.contains("200 ms is 0.2"),
        "{stdout}"
    );
    assert!(
        text(&out.stderr)
            .starts_with("1 valid, 0 invalid ServiceLevelObjective(s) in 1 file(s); 1 warning(s)"),
        "{}",
        text(&out.stderr)
    );
    let out = plimsoll(&["validate", "--strict", "-f", path], None);
    assert_eq!(out.status.code(), Some(1), "--strict fails on the warning");

    let histogram = slow
        .lines()
        .find(|l| l.trim_start().starts_with("histogram:"))
        .unwrap();
    let in_ms = histogram.replace("_seconds", "_milliseconds");
    assert_ne!(histogram, in_ms, "the example's histogram is in seconds");
    std::fs::write(&file, slow.replace(histogram, &in_ms)).unwrap();
    let out = plimsoll(&["validate", "--strict", "-f", path], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert_eq!(text(&out.stdout), "");
}

#[test]
fn every_bad_input_is_rejected_at_its_field_with_its_message() {
    let cases = bad_inputs();
    assert!(cases.len() >= 30, "only {} bad inputs", cases.len());
    for case in cases {
        let file = case
            .file
            .strip_prefix(repo())
            .unwrap()
            .display()
            .to_string();
        let out = plimsoll(&["validate", "-f", &file], None);
        let stdout = text(&out.stdout);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{file}: {stdout}{stderr}");
        assert!(!stderr.contains("panicked"), "{file}: {stderr}");
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("{file}: {}: ", case.path)))
            .unwrap_or_else(|| panic!("{file}: no problem at {}:\n{stdout}", case.path));
        assert!(
            line.contains(&case.message),
            "{file}: {line:?} lacks {:?}",
            case.message
        );
    }
}

#[test]
fn multi_document_files_name_the_document() {
    let valid = std::fs::read_to_string(repo().join("examples/api-latency.yaml")).unwrap();
    let invalid = valid.replace("objective: 99\n", "objective: 100\n");
    let deployment = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: api}\n";
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("all.yaml");
    std::fs::write(&file, format!("{valid}---\n{deployment}---\n{invalid}")).unwrap();
    let out = plimsoll(&["validate", "-f", file.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(1));
    let expected = format!("{}#3: spec.objective: must be", file.display());
    assert!(
        text(&out.stdout).starts_with(&expected),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(text(&out.stdout).lines().count(), 1);
    assert!(
        text(&out.stderr).contains("1 valid, 1 invalid") && text(&out.stderr).contains("1 other"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn reads_standard_input() {
    let valid = std::fs::read_to_string(repo().join("examples/cart-rollback.yaml")).unwrap();
    let out = plimsoll(&["validate", "-f", "-"], Some(&valid));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let out = plimsoll(
        &["validate", "-"],
        Some(&valid.replace("window: 30d", "window: 30days")),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).starts_with("<stdin>: spec.window: unknown unit \"days\""),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn positional_paths_work_like_pre_commit_passes_them() {
    let out = plimsoll(
        &[
            "validate",
            "--quiet",
            "examples/api-latency.yaml",
            "tests/bad-input/13-objective-100.yaml",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout).lines().count(), 1);
    assert_eq!(text(&out.stderr), "", "--quiet prints no summary");
}

#[test]
fn io_and_usage_errors_exit_2() {
    let out = plimsoll(&["validate", "-f", "no/such/file.yaml"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no/such/file.yaml"));

    let out = plimsoll(&["validate"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no input"));

    let out = plimsoll(&["validate", "--no-such-flag"], None);
    assert_eq!(out.status.code(), Some(2));

    let dir = tempfile::tempdir().unwrap();
    let binary = dir.path().join("binary.yaml");
    std::fs::write(&binary, [0xff, 0xfe, 0x00]).unwrap();
    let out = plimsoll(&["validate", "-f", binary.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("not valid UTF-8"));
}

#[test]
fn crd_command_prints_the_checked_in_crd() {
    let out = plimsoll(&["crd"], None);
    assert_eq!(out.status.code(), Some(0));
    let checked_in =
        std::fs::read_to_string(repo().join("crds/plimsoll.dev_servicelevelobjectives.yaml"))
            .unwrap();
    assert!(
        text(&out.stdout) == checked_in,
        "crds/ is stale: run `make crds` and commit the result"
    );
}

#[test]
fn generate_writes_a_rule_file_promtool_accepts() {
    let out = plimsoll(&["generate", "-f", "examples/"], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.yaml");
    std::fs::write(&file, &out.stdout).unwrap();
    let check = Command::new("promtool")
        .args(["check", "rules"])
        .arg(&file)
        .output()
        .expect("promtool is installed (make test installs it)");
    assert!(check.status.success(), "{}", text(&check.stdout));
    let groups = text(&out.stdout).matches("- name: plimsoll/").count();
    assert_eq!(groups, 2 * yaml_files("examples").len());
}

#[test]
fn generate_writes_prometheus_rules_for_the_operator() {
    let out = plimsoll(
        &[
            "generate",
            "--format",
            "prometheusrule",
            "--rule-label",
            "release=kube-prometheus-stack",
            "-f",
            "examples/checkout-availability.yaml",
            "-f",
            "examples/search-freshness-query.yaml",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text(&out.stdout)).unwrap();
    assert_eq!(docs.len(), 2);
    let rule = &docs[0];
    assert_eq!(rule["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(rule["kind"], "PrometheusRule");
    assert_eq!(rule["metadata"]["name"], "checkout-availability");
    assert_eq!(rule["metadata"]["namespace"], "shop");
    let labels = &rule["metadata"]["labels"];
    assert_eq!(labels["app.kubernetes.io/managed-by"], "plimsoll");
    assert_eq!(labels["plimsoll.dev/slo"], "checkout-availability");
    assert_eq!(labels["release"], "kube-prometheus-stack");
    assert_eq!(rule["spec"]["groups"].as_array().unwrap().len(), 2);
    assert_eq!(docs[1]["metadata"]["namespace"], "search");
}

#[test]
fn generate_refuses_invalid_input_and_writes_nothing() {
    let out = plimsoll(
        &[
            "generate",
            "-f",
            "examples/",
            "-f",
            "tests/bad-input/13-objective-100.yaml",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "");
    assert!(text(&out.stderr).contains("13-objective-100.yaml: spec.objective: must be"));
    let out = plimsoll(
        &["generate", "-f", "examples/", "--rule-label", "novalue"],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
}

/// One SLO (namespace/name) defined twice, in two files or twice in one: refused naming both
/// places, since two rule groups of one name make Prometheus refuse the whole file.
#[test]
fn the_same_slo_twice_is_refused_with_both_locations() {
    let valid = std::fs::read_to_string(repo().join("examples/api-latency.yaml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("a.yaml");
    let second = dir.path().join("b.yaml");
    std::fs::write(&first, &valid).unwrap();
    std::fs::write(&second, format!("{valid}---\n{valid}")).unwrap();
    let (a, b) = (first.to_str().unwrap(), second.to_str().unwrap());
    let out = plimsoll(&["validate", "-f", a, b], None);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let lines: Vec<String> = text(&out.stdout).lines().map(String::from).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    for (at, line) in ["#1", "#2"].iter().zip(&lines) {
        assert!(
            line.starts_with(&format!("{b}{at}: metadata.name: SLO "))
                && line.ends_with(&format!(
                    "is also defined in {a}; define each SLO (namespace/name) once"
                )),
            "{line}"
        );
    }
    assert!(
        text(&out.stderr).contains("1 valid, 2 invalid"),
        "{}",
        text(&out.stderr)
    );
    let out = plimsoll(&["generate", "-f", a, b], None);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "");
    assert!(text(&out.stderr).contains(&format!("{b}#1: metadata.name: SLO ")));
    // The same name in another namespace is another SLO.
    std::fs::write(&second, valid.replace("namespace: api", "namespace: web")).unwrap();
    let out = plimsoll(&["generate", "-f", a, b], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}
