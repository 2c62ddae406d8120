//! The generated CRD: a Kubernetes structural schema whose CEL rules compile and reject what we
//! say they reject.

mod support;

use kube::core::cel::compile_schema;
use plimsoll::manifests::cel_check;
use serde_json::Value;
use support::{bad_inputs, document, yaml_files};

fn crd() -> Value {
    serde_json::to_value(plimsoll::api::definition()).unwrap()
}

fn schema() -> Value {
    crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

/// Walks every schema node and collects violations of the structural-schema rules the API server
/// enforces for CRDs (apiextensions.k8s.io/v1).
fn structural_violations(node: &Value, path: &str, out: &mut Vec<String>) {
    let Some(obj) = node.as_object() else {
        out.push(format!("{path}: schema node is not an object"));
        return;
    };
    let typed = obj.contains_key("type")
        || obj.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true))
        || obj.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    if !typed {
        out.push(format!("{path}: no type"));
    }
    for forbidden in [
        "$ref",
        "definitions",
        "$defs",
        "oneOf",
        "anyOf",
        "allOf",
        "not",
    ] {
        if obj.contains_key(forbidden) {
            out.push(format!("{path}: uses {forbidden}"));
        }
    }
    if let Some(t) = obj.get("type")
        && !t.is_string()
    {
        out.push(format!("{path}: type must be one string, not {t}"));
    }
    if obj.contains_key("properties") && obj.contains_key("additionalProperties") {
        out.push(format!("{path}: additionalProperties beside properties"));
    }
    if let Some(nullable) = obj.get("nullable")
        && !nullable.is_boolean()
    {
        out.push(format!("{path}: nullable must be a boolean"));
    }
    if let Some(props) = obj.get("properties").and_then(Value::as_object) {
        for (key, child) in props {
            structural_violations(child, &format!("{path}.{key}"), out);
        }
    }
    if let Some(items) = obj.get("items") {
        structural_violations(items, &format!("{path}[]"), out);
    }
    if let Some(additional) = obj.get("additionalProperties").filter(|a| a.is_object()) {
        structural_violations(additional, &format!("{path}{{}}"), out);
    }
}

#[test]
fn the_crd_is_a_structural_schema() {
    let mut violations = Vec::new();
    structural_violations(&schema(), "", &mut violations);
    assert!(violations.is_empty(), "{violations:#?}");
}

#[test]
fn metadata_is_left_to_the_api_server() {
    // Structural schemas may only restrict metadata.name and generateName; the API server
    // supplies the rest of ObjectMeta itself.
    let metadata = &schema()["properties"]["metadata"];
    if !metadata.is_null() {
        assert_eq!(metadata["type"], "object");
        let restricted: Vec<&String> = metadata
            .get("properties")
            .and_then(Value::as_object)
            .map(|p| p.keys().collect())
            .unwrap_or_default();
        assert!(
            restricted
                .iter()
                .all(|k| *k == "name" || *k == "generateName"),
            "{restricted:?}"
        );
    }
}

#[test]
fn identity_columns_and_subresources() {
    let crd = crd();
    let spec = &crd["spec"];
    assert_eq!(
        crd["metadata"]["name"],
        "servicelevelobjectives.plimsoll.dev"
    );
    assert_eq!(spec["scope"], "Namespaced");
    // Not `slo`: that is Pyrra's short name for its ServiceLevelObjective (tests/kube_real.rs
    // installs both).
    assert_eq!(spec["names"]["shortNames"], serde_json::json!(["plslo"]));
    assert_eq!(spec["names"]["categories"], serde_json::json!(["plimsoll"]));
    let version = &spec["versions"][0];
    assert_eq!(version["name"], "v1alpha1");
    assert_eq!(version["subresources"]["status"], serde_json::json!({}));
    // (name, type, priority): numbers as numbers, so kubectl sorts them as numbers; -o wide
    // (priority 1) adds the fast burn rate and the exhaustion time.
    let columns: Vec<(&str, &str, i64)> = version["additionalPrinterColumns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap(),
                c["type"].as_str().unwrap(),
                c["priority"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        columns,
        [
            ("Service", "string", 0),
            ("Objective %", "number", 0),
            ("Window", "string", 0),
            ("SLI %", "string", 0),
            ("Budget %", "string", 0),
            ("State", "string", 0),
            ("Fresh", "string", 0),
            ("Ready", "string", 0),
            ("Fast burn ×", "string", 1),
            ("Exhausts at", "string", 1),
            ("Age", "date", 0),
        ]
    );
    // The status' numbers are decimal strings (kubectl sorts them as quantities, by value),
    // so every column reads a field of the type it declares.
    let status = &version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"];
    assert_eq!(
        status["errorBudget"]["properties"]["remaining"]["type"],
        "string"
    );
    assert_eq!(status["fastBurnRate"]["type"], "string");
}

#[test]
fn every_spec_field_is_described() {
    fn undescribed(node: &Value, path: &str, out: &mut Vec<String>) {
        if let Some(props) = node.get("properties").and_then(Value::as_object) {
            for (key, child) in props {
                let child_path = format!("{path}.{key}");
                if child.get("description").is_none_or(|d| d == "") {
                    out.push(child_path.clone());
                }
                undescribed(child, &child_path, out);
            }
        }
        if let Some(items) = node.get("items") {
            undescribed(items, path, out);
        }
    }
    let mut missing = Vec::new();
    undescribed(&schema()["properties"]["spec"], "spec", &mut missing);
    undescribed(&schema()["properties"]["status"], "status", &mut missing);
    assert!(
        missing.is_empty(),
        "fields without description: {missing:#?}"
    );
}

#[test]
fn conditions_merge_by_type_under_server_side_apply() {
    let conditions = &schema()["properties"]["status"]["properties"]["conditions"];
    assert_eq!(conditions["x-kubernetes-list-type"], "map");
    assert_eq!(
        conditions["x-kubernetes-list-map-keys"],
        serde_json::json!(["type"])
    );
}

#[test]
fn cel_rules_compile() {
    fn count(node: &Value) -> usize {
        let here = node
            .get("x-kubernetes-validations")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        let children: usize = node
            .get("properties")
            .and_then(Value::as_object)
            .map_or(0, |p| p.values().map(count).sum());
        here + children + node.get("items").map_or(0, count)
    }
    fn errors(node: &kube::core::cel::CompiledSchema, out: &mut Vec<String>) {
        out.extend(node.compilation_errors().iter().map(|e| e.to_string()));
        for child in node.properties.values() {
            errors(child, out);
        }
        if let Some(items) = &node.items {
            errors(items, out);
        }
    }
    let schema = schema();
    assert!(count(&schema) >= 9, "expected our CEL rules in the schema");
    let mut problems = Vec::new();
    errors(&compile_schema(&schema), &mut problems);
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn examples_pass_the_cel_rules() {
    for file in yaml_files("examples") {
        let result = cel_check(&document(&file));
        assert!(result.is_ok(), "{}: {result:?}", file.display());
    }
}

/// The bad inputs marked `cel` are refused by the API server itself, before the operator sees
/// them: check that the CRD's rules (run by kube's CEL evaluator) reject each one.
#[test]
fn cel_rules_reject_what_they_claim() {
    let cases: Vec<_> = bad_inputs()
        .into_iter()
        .filter(|c| c.layers.iter().any(|l| l == "cel"))
        .collect();
    assert!(cases.len() >= 10, "only {} CEL cases", cases.len());
    for case in cases {
        let result = cel_check(&document(&case.file));
        assert!(result.is_err(), "{}: CEL accepted it", case.file.display());
    }
}

/// The OpenAPI keywords our CRD uses, checked the way the API server checks them, so the tests can
/// show which bad inputs `kubectl apply` refuses before any CEL rule runs.
fn openapi_violations(value: &Value, schema: &Value, path: &str, out: &mut Vec<String>) {
    if value.is_null() {
        if schema.get("nullable") != Some(&Value::Bool(true)) {
            out.push(format!("{path}: null"));
        }
        return;
    }
    let type_ok = match schema.get("type").and_then(Value::as_str) {
        Some("object") => value.is_object(),
        Some("array") => value.is_array(),
        Some("string") => value.is_string(),
        Some("number") => value.is_number(),
        Some("integer") => value.is_i64() || value.is_u64(),
        Some("boolean") => value.is_boolean(),
        _ => true,
    };
    if !type_ok {
        out.push(format!("{path}: wrong type"));
        return;
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        out.push(format!("{path}: not in enum"));
    }
    if let Some(text) = value.as_str() {
        if let Some(pattern) = schema.get("pattern").and_then(Value::as_str)
            && !regex::Regex::new(pattern).unwrap().is_match(text)
        {
            out.push(format!("{path}: pattern"));
        }
        let len = text.chars().count() as u64;
        if schema
            .get("minLength")
            .and_then(Value::as_u64)
            .is_some_and(|m| len < m)
            || schema
                .get("maxLength")
                .and_then(Value::as_u64)
                .is_some_and(|m| len > m)
        {
            out.push(format!("{path}: length"));
        }
    }
    if let Some(n) = value.as_f64()
        && (schema
            .get("minimum")
            .and_then(Value::as_f64)
            .is_some_and(|m| n < m)
            || schema
                .get("maximum")
                .and_then(Value::as_f64)
                .is_some_and(|m| n > m))
    {
        out.push(format!("{path}: range"));
    }
    if let Some(map) = value.as_object() {
        for required in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if !map.contains_key(required.as_str().unwrap()) {
                out.push(format!("{path}.{required}: required"));
            }
        }
        let properties = schema.get("properties").and_then(Value::as_object);
        for (key, child) in map {
            let child_schema = properties
                .and_then(|p| p.get(key))
                .or_else(|| schema.get("additionalProperties").filter(|a| a.is_object()));
            if let Some(child_schema) = child_schema {
                openapi_violations(child, child_schema, &format!("{path}.{key}"), out);
            }
        }
    }
    if let (Some(items), Some(item_schema)) = (value.as_array(), schema.get("items")) {
        for (i, item) in items.iter().enumerate() {
            openapi_violations(item, item_schema, &format!("{path}[{i}]"), out);
        }
    }
}

#[test]
fn examples_pass_the_openapi_schema() {
    for file in yaml_files("examples") {
        let mut violations = Vec::new();
        openapi_violations(&document(&file), &schema(), "", &mut violations);
        assert!(violations.is_empty(), "{}: {violations:?}", file.display());
    }
}

#[test]
fn openapi_schema_rejects_what_it_claims() {
    let cases: Vec<_> = bad_inputs()
        .into_iter()
        .filter(|c| c.layers.iter().any(|l| l == "schema"))
        .collect();
    assert!(cases.len() >= 8, "only {} schema cases", cases.len());
    for case in cases {
        let mut violations = Vec::new();
        openapi_violations(&document(&case.file), &schema(), "", &mut violations);
        assert!(
            !violations.is_empty(),
            "{}: the schema accepted it",
            case.file.display()
        );
    }
}
