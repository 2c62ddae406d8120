//! `plimsoll generate --format vmrule`: every VMRule fits the VictoriaMetrics operator's schema,
//! and vmalert 1.79 accepts its groups as a rule file (`-dryRun` parses every expression with the
//! MetricsQL parser and every annotation template).
//!
//! The schema, written from the operator's Go types and not copied (VictoriaMetrics/operator,
//! api/operator/v1beta1/vmrule_types.go at 04bc75c41608c124f9bf4dae00db5fd73577b465, and the
//! CRD generated from an earlier release of them, config/crd/bases/
//! operator.victoriametrics.com_vmrules.yaml at 1238275e59063fc8a4588b5005d212bcc615e312):
//! `spec` and `spec.groups` are required; a group requires `name` and `rules`; a rule requires
//! nothing. The operator decodes `spec` rejecting unknown members (`VMRule.UnmarshalJSON`), so
//! a field outside the types breaks the object.

mod support;

use std::process::Command;

use serde_json::Value;

/// Group fields and their JSON types, in both releases read.
const GROUP_FIELDS: &[(&str, &str)] = &[
    ("name", "string"),
    ("interval", "string"),
    ("rules", "array"),
    ("limit", "integer"),
    ("concurrency", "integer"),
    ("labels", "string map"),
    ("tenant", "string"),
    ("type", "string"),
    ("headers", "string array"),
    ("notifier_headers", "string array"),
];

/// Rule fields and their JSON types, in both releases read.
const RULE_FIELDS: &[(&str, &str)] = &[
    ("record", "string"),
    ("alert", "string"),
    ("expr", "string"),
    ("for", "string"),
    ("debug", "boolean"),
    ("labels", "string map"),
    ("annotations", "string map"),
];

fn has_type(value: &Value, kind: &str) -> bool {
    match kind {
        "string" => value.is_string(),
        "array" => value.is_array(),
        "integer" => value.is_i64() || value.is_u64(),
        "boolean" => value.is_boolean(),
        "string map" => value
            .as_object()
            .is_some_and(|m| m.values().all(Value::is_string)),
        "string array" => value
            .as_array()
            .is_some_and(|a| a.iter().all(Value::is_string)),
        other => panic!("unknown type {other}"),
    }
}

/// Every problem of `object` against the fields in `fields` and the `required` ones.
fn check_fields(
    object: &Value,
    fields: &[(&str, &str)],
    required: &[&str],
    at: &str,
) -> Vec<String> {
    let Some(map) = object.as_object() else {
        return vec![format!("{at}: not an object")];
    };
    let mut problems: Vec<String> = required
        .iter()
        .filter(|r| !map.contains_key(**r))
        .map(|r| format!("{at}.{r}: required"))
        .collect();
    for (key, value) in map {
        match fields.iter().find(|(name, _)| name == key) {
            None => problems.push(format!("{at}.{key}: not a field of the operator's type")),
            Some((_, kind)) if !has_type(value, kind) => {
                problems.push(format!("{at}.{key}: not a {kind}: {value}"))
            }
            Some(_) => {}
        }
    }
    problems
}

fn check_vmrule(rule: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    if rule["apiVersion"] != "operator.victoriametrics.com/v1beta1" || rule["kind"] != "VMRule" {
        problems.push(format!(
            "apiVersion/kind: {} {}",
            rule["apiVersion"], rule["kind"]
        ));
    }
    problems.extend(check_fields(
        &rule["spec"],
        &[("groups", "array")],
        &["groups"],
        "spec",
    ));
    let groups = rule["spec"]["groups"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for (g, group) in groups.iter().enumerate() {
        let at = format!("spec.groups[{g}]");
        problems.extend(check_fields(group, GROUP_FIELDS, &["name", "rules"], &at));
        let rules = group["rules"].as_array().cloned().unwrap_or_default();
        for (r, rule) in rules.iter().enumerate() {
            problems.extend(check_fields(
                rule,
                RULE_FIELDS,
                &[],
                &format!("{at}.rules[{r}]"),
            ));
            if rule["record"].is_string() == rule["alert"].is_string() {
                problems.push(format!("{at}.rules[{r}]: exactly one of record and alert"));
            }
        }
    }
    problems
}

fn generate(format: &str) -> Vec<Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_plimsoll"))
        .args([
            "generate",
            "--format",
            format,
            "--rule-label",
            "release=vm",
            "-f",
            "examples",
        ])
        .current_dir(support::repo())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_saphyr::from_multiple(&String::from_utf8(out.stdout).unwrap()).unwrap()
}

#[test]
fn every_generated_vmrule_fits_the_operators_types_and_vmalert_accepts_its_groups() {
    let vmrules = generate("vmrule");
    let prometheus_rules = generate("prometheusrule");
    assert_eq!(vmrules.len(), support::yaml_files("examples").len());
    let dir = tempfile::tempdir().unwrap();
    for (vm, prom) in vmrules.iter().zip(&prometheus_rules) {
        let name = &vm["metadata"]["name"];
        let problems = check_vmrule(vm);
        assert!(problems.is_empty(), "{name}: {problems:#?}");
        // One per SLO, named and labelled as its PrometheusRule, with the same groups.
        assert_eq!(vm["metadata"], prom["metadata"], "{name}");
        assert_eq!(vm["metadata"]["labels"]["release"], "vm", "{name}");
        assert_eq!(vm["spec"]["groups"], prom["spec"]["groups"], "{name}");

        let file = dir.path().join(format!("{}.yaml", name.as_str().unwrap()));
        let groups = serde_json::json!({"groups": vm["spec"]["groups"]});
        std::fs::write(&file, serde_saphyr::to_string(&groups).unwrap()).unwrap();
        let out = Command::new("vmalert")
            .arg("-dryRun")
            .arg(format!("-rule={}", file.display()))
            .output()
            .expect("vmalert is installed (make tools installs Debian's victoria-metrics)");
        assert!(
            out.status.success(),
            "{name}: vmalert -dryRun: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn the_schema_check_catches_what_the_operator_refuses() {
    let vm = &generate("vmrule")[0];
    let mut thanos = vm.clone();
    thanos["spec"]["groups"][0]["partial_response_strategy"] = "warn".into();
    let mut nameless = vm.clone();
    nameless["spec"]["groups"][0]
        .as_object_mut()
        .unwrap()
        .remove("name");
    let mut both = vm.clone();
    both["spec"]["groups"][0]["rules"][0]["alert"] = "A".into();
    let mut numeric = vm.clone();
    numeric["spec"]["groups"][0]["rules"][0]["labels"]["n"] = 1.into();
    for (broken, expect) in [
        (thanos, "partial_response_strategy: not a field"),
        (nameless, "spec.groups[0].name: required"),
        (both, "exactly one of record and alert"),
        (numeric, "labels: not a string map"),
    ] {
        let problems = check_vmrule(&broken);
        assert!(
            problems.iter().any(|p| p.contains(expect)),
            "{expect}: {problems:?}"
        );
    }
    // And vmalert refuses a group it cannot run.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.yaml");
    std::fs::write(
        &file,
        "groups:\n- name: g\n  rules:\n  - record: r\n    expr: sum(rate(x[5m])\n",
    )
    .unwrap();
    let out = Command::new("vmalert")
        .arg("-dryRun")
        .arg(format!("-rule={}", file.display()))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid expression"));
}
