//! One YAML/JSON document -> a typed ServiceLevelObjective -> the validated model, with every
//! problem reported at its field path. Used by `plimsoll validate`, local mode and the webhook.

use std::sync::LazyLock;

use kube::CustomResourceExt;
use serde_json::Value;

use crate::api::{API_VERSION, GROUP, KIND, ServiceLevelObjective};
use crate::model::{self, Problem, Slo, ValidationErrors};

/// What a document turned out to be.
#[derive(Debug)]
pub enum Decoded {
    /// Some other Kubernetes object, such as a Deployment next to the SLOs; not ours to judge.
    Other { api_version: String, kind: String },
    /// A valid SLO.
    Valid(Box<(ServiceLevelObjective, Slo)>),
    /// Meant as an SLO (or not a Kubernetes object at all), with problems.
    Invalid(ValidationErrors),
}

/// Fields Kubernetes accepts in `metadata`; anything else is dropped by the API server.
const OBJECT_META_FIELDS: [&str; 15] = [
    "name",
    "generateName",
    "namespace",
    "labels",
    "annotations",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "ownerReferences",
    "finalizers",
    "managedFields",
    "selfLink",
];

/// The CRD's schema, the same one the API server prunes unknown fields with.
static SCHEMA: LazyLock<Value> = LazyLock::new(|| {
    let crd = ServiceLevelObjective::crd();
    crd.spec
        .versions
        .first()
        .and_then(|v| v.schema.as_ref())
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .and_then(|s| serde_json::to_value(s).ok())
        .unwrap_or(Value::Null)
});

/// Decodes and validates one document.
pub fn decode(value: &Value) -> Decoded {
    let mut errors = ValidationErrors::default();
    let Some(object) = value.as_object() else {
        errors.push(
            "(document)",
            Problem::invalid(format!(
                "is {}, not a mapping; a manifest has apiVersion, kind, metadata and spec",
                json_type(value)
            )),
        );
        return Decoded::Invalid(errors);
    };
    let api_version = object.get("apiVersion").and_then(Value::as_str);
    let kind = object.get("kind").and_then(Value::as_str);
    if let (Some(v), Some(k)) = (api_version, kind)
        && !is_ours(v, k)
    {
        return Decoded::Other {
            api_version: v.to_string(),
            kind: k.to_string(),
        };
    }
    check_type_meta(api_version, kind, &mut errors);
    if !errors.is_empty() {
        return Decoded::Invalid(errors);
    }
    unknown_fields(value, &SCHEMA, "", &mut errors);
    let slo: ServiceLevelObjective = match serde_path_to_error::deserialize(value) {
        Ok(slo) => slo,
        Err(e) => {
            let (path, problem) = describe_decode_error(&e, value);
            errors.push(path, problem);
            return Decoded::Invalid(errors);
        }
    };
    match model::validate(&slo) {
        Ok(model) if errors.is_empty() => match cel_check(value) {
            Ok(()) => Decoded::Valid(Box::new((slo, model))),
            Err(errors) => Decoded::Invalid(errors),
        },
        Ok(_) => Decoded::Invalid(errors),
        Err(problems) => {
            errors.0.extend(problems.0);
            Decoded::Invalid(errors)
        }
    }
}

/// A document is meant as ours when either its group or its kind says so.
fn is_ours(api_version: &str, kind: &str) -> bool {
    kind == KIND || api_version.split('/').next() == Some(GROUP)
}

fn check_type_meta(api_version: Option<&str>, kind: Option<&str>, errors: &mut ValidationErrors) {
    match api_version {
        None => errors.push(
            "apiVersion",
            Problem::Required {
                hint: "set apiVersion: plimsoll.dev/v1alpha1",
            },
        ),
        Some(API_VERSION) => {}
        Some(other) => errors.push(
            "apiVersion",
            Problem::invalid(format!(
                "{other:?} is not served; use apiVersion: {API_VERSION}"
            )),
        ),
    }
    match kind {
        None => errors.push(
            "kind",
            Problem::Required {
                hint: "set kind: ServiceLevelObjective",
            },
        ),
        Some(KIND) => {}
        Some(other) => errors.push(
            "kind",
            Problem::invalid(format!(
                "{other:?} is not a kind of {GROUP}; use kind: {KIND}"
            )),
        ),
    }
}

/// Reports fields the schema does not know, which the API server would silently drop.
fn unknown_fields(value: &Value, schema: &Value, path: &str, errors: &mut ValidationErrors) {
    match value {
        Value::Object(map) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties");
            for (key, child) in map {
                let child_path = join(path, key);
                if path.is_empty() && key == "metadata" {
                    metadata_fields(child, errors);
                } else if path.is_empty()
                    && ["apiVersion", "kind", "status"].contains(&key.as_str())
                {
                    // Type fields were checked already; status is written by the operator, and
                    // the API server ignores it in manifests.
                } else if let Some(child_schema) = properties.and_then(|p| p.get(key)) {
                    unknown_fields(child, child_schema, &child_path, errors);
                } else if let Some(child_schema) = additional.filter(|a| a.is_object()) {
                    unknown_fields(child, child_schema, &child_path, errors);
                } else if let Some(properties) = properties {
                    let mut known: Vec<&str> = properties.keys().map(String::as_str).collect();
                    if path.is_empty() {
                        known = vec!["apiVersion", "kind", "metadata", "spec"];
                    }
                    errors.push(child_path, unknown_field_problem(key, &known));
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    unknown_fields(item, item_schema, &format!("{path}[{i}]"), errors);
                }
            }
        }
        _ => {}
    }
}

fn metadata_fields(metadata: &Value, errors: &mut ValidationErrors) {
    let Some(map) = metadata.as_object() else {
        return;
    };
    for key in map.keys() {
        if !OBJECT_META_FIELDS.contains(&key.as_str()) {
            let common = ["name", "namespace", "labels", "annotations"];
            errors.push(join("metadata", key), unknown_field_problem(key, &common));
        }
    }
}

fn unknown_field_problem(key: &str, known: &[&str]) -> Problem {
    let hint = match known.iter().find(|k| similar(k, key)) {
        Some(close) => format!("did you mean {close:?}?"),
        None => format!("expected one of {}", known.join(", ")),
    };
    Problem::UnknownField { hint }
}

/// Close enough to be a typo: same letters ignoring case, one edit apart, or two neighbours
/// swapped.
fn similar(known: &str, typed: &str) -> bool {
    let plain = |s: &str| -> String {
        s.chars()
            .filter(|c| !matches!(c, '_' | '-'))
            .map(|c| c.to_ascii_lowercase())
            .collect()
    };
    plain(known) == plain(typed) || edit_distance(known, typed) <= 1 || swapped(known, typed)
}

fn swapped(a: &str, b: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    if a.len() != b.len() {
        return false;
    }
    let diff: Vec<usize> = (0..a.len()).filter(|&i| a[i] != b[i]).collect();
    matches!(diff[..], [i, j] if j == i + 1 && a[i] == b[j] && a[j] == b[i])
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// Turns serde's message into our path and wording: a missing field is reported at the field,
/// Rust type names become words, and the habits of other tools (a `%` sign, a unit on a number,
/// a value in the wrong case) get the fix spelled out.
fn describe_decode_error(
    e: &serde_path_to_error::Error<serde_json::Error>,
    document: &Value,
) -> (String, Problem) {
    let path = e.path().to_string();
    let path = if path == "." { String::new() } else { path };
    let message = e.inner().to_string();
    if let Some(field) = message
        .strip_prefix("missing field `")
        .and_then(|m| m.split('`').next())
    {
        return (
            join(&path, field),
            Problem::Required {
                hint: "add it; `kubectl explain servicelevelobjectives.plimsoll.dev.spec` describes every field",
            },
        );
    }
    let mut message = message
        .replace("expected f64", "expected a number")
        .replace("expected i64", "expected a whole number")
        .replace("a sequence", "a list")
        .replace("a map", "a mapping")
        .replace("struct ", "an object ");
    let written = value_at(document, &path).and_then(Value::as_str);
    let fix = match (written, value_at(document, &path)) {
        (Some(text), _) if message.contains("expected a number") => number_fix(&path, text),
        // YAML 1.1 reads y, n, yes, no, on and off as booleans: `namespace: no` is false.
        (_, Some(Value::Bool(_))) if message.contains("expected a string") => Some(
            "YAML reads unquoted y, n, yes, no, on, off, true and false as booleans; quote the \
             value"
                .to_string(),
        ),
        _ => variant_fix(&message),
    };
    if let Some(fix) = fix {
        message = format!("{message}; {fix}");
    }
    (path, Problem::Decode { message })
}

/// The fix for a number written as text: `"99.9%"`, `"200ms"`, `"99.9"`.
fn number_fix(path: &str, text: &str) -> Option<String> {
    let field = path.rsplit('.').next().unwrap_or(path);
    let text = text.trim();
    if let Some(number) = text.strip_suffix('%').map(str::trim)
        && number.parse::<f64>().is_ok()
    {
        return Some(format!(
            "percentages are plain numbers without the % sign: write {field}: {number}"
        ));
    }
    if field == "threshold"
        && let Some(seconds) = seconds_of(text)
    {
        return Some(format!(
            "the threshold is a plain number in the histogram's unit, seconds by convention: \
             {text} is {field}: {seconds}"
        ));
    }
    if text.parse::<f64>().is_ok() {
        return Some(format!("write the number without quotes: {field}: {text}"));
    }
    None
}

/// `200ms`, `0.2s`, `1m` as seconds; `None` for anything else.
fn seconds_of(text: &str) -> Option<String> {
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let scale = match unit.trim() {
        "ms" => 0.001,
        "s" => 1.0,
        "m" => 60.0,
        _ => return None,
    };
    // Through a decimal string so 200 ms prints as 0.2, not 0.20000000000000001.
    let seconds: f64 = format!("{:.9}", number * scale).parse().ok()?;
    Some(seconds.to_string())
}

/// serde's `unknown variant `timeslices`, expected `Occurrences` or `Timeslices``: values are
/// case-sensitive, so name the one that differs only in case.
fn variant_fix(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown variant `")?;
    let (typed, expected) = rest.split_once('`')?;
    expected
        .split('`')
        .skip(1)
        .step_by(2)
        .find(|v| v.eq_ignore_ascii_case(typed) && *v != typed)
        .map(|v| format!("values are case-sensitive: did you mean {v}?"))
}

/// The value at a path as serde_path_to_error prints it (`spec.rollback.targets[0].kind`).
fn value_at<'a>(document: &'a Value, path: &str) -> Option<&'a Value> {
    let mut at = document;
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (key, indexes) = match part.find('[') {
            Some(i) => part.split_at(i),
            None => (part, ""),
        };
        if !key.is_empty() {
            at = at.get(key)?;
        }
        for index in indexes.split('[').filter(|i| !i.is_empty()) {
            at = at.get(index.trim_end_matches(']').parse::<usize>().ok()?)?;
        }
    }
    Some(at)
}

/// Runs the CRD's own CEL rules on the document, as the API server will. The model checks the
/// same things and more, so a failure here means the two disagree; it is reported all the same.
pub fn cel_check(document: &Value) -> Result<(), ValidationErrors> {
    kube::core::cel::Validator::new()
        .validate(&SCHEMA, document, None)
        .map_err(|failures| {
            ValidationErrors(
                failures
                    .iter()
                    .map(|f| {
                        model::FieldError::new(
                            f.field_path.clone(),
                            Problem::invalid(format!("{} (CRD validation rule)", f.message)),
                        )
                    })
                    .collect(),
            )
        })
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "empty",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}
