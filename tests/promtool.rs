//! The meaning of the generated rules, pinned with Prometheus' own tooling: `promtool check rules`
//! on everything we generate, and `promtool test rules` suites with synthetic series.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use plimsoll::manifests::{self, Decoded};
use plimsoll::model::Slo;
use plimsoll::rules::{self, RuleGroup};
use support::{document, repo, yaml_files};

fn promtool() -> Command {
    let found = Command::new("promtool").arg("--version").output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "promtool is missing: `make test` installs it (apt-get install prometheus)"
    );
    Command::new("promtool")
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

fn check_rules(groups: &[RuleGroup]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.yaml");
    std::fs::write(&file, rules::rule_file(groups).unwrap()).unwrap();
    let mut command = promtool();
    command.arg("check").arg("rules").arg(&file);
    run(command)
}

#[test]
fn rules_of_every_example_pass_promtool_check() {
    let mut groups = Vec::new();
    for file in yaml_files("examples") {
        groups.extend(rules::render(&model(&file), "default"));
    }
    let out = check_rules(&groups);
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
fn run_suite(slo: &Slo, test_yaml: &str) {
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
    let mut command = promtool();
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

#[test]
fn promtool_suites_pin_the_meaning_of_the_rules() {
    let suites = suite_files();
    assert!(!suites.is_empty());
    for test in suites {
        let slo_file = PathBuf::from(test.to_string_lossy().replace(".test.yaml", ".slo.yaml"));
        let slo = model(&slo_file);
        run_suite(&slo, &std::fs::read_to_string(&test).unwrap());
    }
}
