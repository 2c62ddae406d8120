//! Consumers' CRD schemas, read from the workplace's shared folder (never copied into the
//! repository), and what an API server checks of an object against such a structural schema.
#![allow(dead_code)]

use serde_json::{Value, json};

/// The `openAPIV3Schema` of `version` in `../shared/schemas/<file>`. A clone elsewhere has no
/// such folder, and then the check cannot run (None, with a SKIPPED line).
pub fn crd_schema(file: &str, version: &str) -> Option<Value> {
    let places = [
        super::repo().join("../shared/schemas").join(file),
        std::path::PathBuf::from("/work/shared/schemas").join(file),
    ];
    let Some(found) = places.iter().find(|p| p.exists()) else {
        eprintln!("SKIPPED: {file} not found at {places:?}");
        return None;
    };
    let text = std::fs::read_to_string(found).unwrap_or_else(|e| panic!("{found:?}: {e}"));
    let crd: Value = serde_saphyr::from_str(&text).unwrap();
    let version = crd["spec"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == version)
        .unwrap();
    Some(version["schema"]["openAPIV3Schema"].clone())
}

/// What the API server checks of an object against a structural schema, and the fields it would
/// prune (unknown ones): those would make the stored template differ from ours forever.
pub fn violations(schema: &Value, value: &Value, path: &str, out: &mut Vec<String>) {
    if schema.get("x-kubernetes-int-or-string") == Some(&json!(true)) {
        if !(value.is_string() || value.is_i64() || value.is_u64()) {
            out.push(format!(
                "{path}: {value} is neither an integer nor a string"
            ));
        }
        return;
    }
    if let Some(options) = schema["enum"].as_array()
        && !options.contains(value)
    {
        out.push(format!("{path}: {value} is not one of {options:?}"));
    }
    if let (Some(pattern), Some(text)) = (schema["pattern"].as_str(), value.as_str())
        && !regex::Regex::new(pattern).unwrap().is_match(text)
    {
        out.push(format!("{path}: {text:?} does not match {pattern}"));
    }
    if let (Some(min), Some(text)) = (schema["minLength"].as_u64(), value.as_str())
        && (text.chars().count() as u64) < min
    {
        out.push(format!("{path}: {text:?} is shorter than {min}"));
    }
    let typed = match schema["type"].as_str() {
        Some("object") => value.is_object(),
        Some("array") => value.is_array(),
        Some("string") => value.is_string(),
        Some("integer") => value.is_i64() || value.is_u64(),
        Some("number") => value.is_number(),
        Some("boolean") => value.is_boolean(),
        _ => true,
    };
    if !typed {
        out.push(format!("{path}: {value} is not of type {}", schema["type"]));
        return;
    }
    if schema["format"] == "int32" && value.as_i64().is_some_and(|i| i32::try_from(i).is_err()) {
        out.push(format!("{path}: {value} is not an int32"));
    }
    if let Some(items) = value.as_array() {
        for (i, item) in items.iter().enumerate() {
            violations(&schema["items"], item, &format!("{path}[{i}]"), out);
        }
    }
    let Some(fields) = value.as_object() else {
        return;
    };
    for required in schema["required"].as_array().into_iter().flatten() {
        if !fields.contains_key(required.as_str().unwrap()) {
            out.push(format!("{path}: {required} is required"));
        }
    }
    let preserve = schema.get("x-kubernetes-preserve-unknown-fields") == Some(&json!(true));
    let (properties, additional) = (&schema["properties"], &schema["additionalProperties"]);
    for (key, child) in fields {
        let child_path = format!("{path}.{key}");
        if let Some(s) = properties.get(key) {
            violations(s, child, &child_path, out);
        } else if additional.is_object() {
            violations(additional, child, &child_path, out);
        } else if !preserve && properties.is_object() && path != ".metadata" {
            out.push(format!(
                "{child_path}: unknown field, pruned by the API server"
            ));
        }
    }
}
