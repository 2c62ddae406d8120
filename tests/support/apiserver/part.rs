//! Which part of an object a request writes, and the view of an object field management works
//! on.

use serde_json::{Map, Value};

/// Which part of an object a request may write: the main resource (without `.status` when the
/// kind has a status subresource) or the status subresource (only `.status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Main { status_subresource: bool },
    Status,
}

/// The object as field management sees it: without the fields the server owns (stripmeta.go:
/// apiVersion, kind, name, namespace, uid, resourceVersion, generation, creationTimestamp,
/// managedFields, selfLink; and the deletion fields) and without the part the request may
/// not write (the "reset fields" of the status strategies).
pub fn tracked(object: &Value, part: Part) -> Value {
    let mut out = match part {
        Part::Status => {
            let mut out = Map::new();
            if let Some(status) = object.get("status") {
                out.insert("status".to_string(), status.clone());
            }
            return Value::Object(out);
        }
        Part::Main { .. } => object.as_object().cloned().unwrap_or_default(),
    };
    out.remove("apiVersion");
    out.remove("kind");
    if part
        == (Part::Main {
            status_subresource: true,
        })
    {
        out.remove("status");
    }
    if let Some(Value::Object(meta)) = out.get_mut("metadata") {
        for key in [
            "name",
            "namespace",
            "uid",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "managedFields",
            "selfLink",
        ] {
            meta.remove(key);
        }
        if meta.is_empty() {
            out.remove("metadata");
        }
    }
    Value::Object(out)
}
