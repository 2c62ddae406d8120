//! The non-apply patch types: JSON merge patch (RFC 7386), JSON patch (RFC 6902, by the
//! json-patch crate, `test` included) and strategic merge patch (merge patch, except that lists
//! with a known merge key merge item by item, sets merge by union, and the `$patch`,
//! `$retainKeys`, `$deleteFromPrimitiveList/` and `$setElementOrder/` directives are honoured).

use serde_json::{Map, Value};

use super::tree::{Shape, item_pe, shape};

/// RFC 7386: objects merge key by key, null removes, anything else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let t = target.as_object_mut().expect("an object");
    for (key, value) in p {
        if value.is_null() {
            t.remove(key);
        } else {
            merge_patch(t.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

/// RFC 6902. A body that is not a patch is a 400 (`Err(true, ..)`), a patch that does not
/// apply (a failed `test`, a missing path) a 422 (`Err(false, ..)`), as the API server's
/// patcher answers them.
pub fn json_patch(target: &mut Value, body: &[u8]) -> Result<(), (bool, String)> {
    let patch: json_patch::Patch =
        serde_json::from_slice(body).map_err(|e| (true, format!("invalid JSON patch: {e}")))?;
    json_patch::patch(target, &patch).map_err(|e| (false, e.to_string()))
}

/// Strategic merge patch, for built-in kinds (custom resources refuse it with 415).
pub fn strategic(target: &Value, patch: &Value) -> Result<Value, String> {
    smp(Some(target), patch, &mut Vec::new())
}

fn directive(value: &Value) -> Option<&str> {
    value.get("$patch").and_then(Value::as_str)
}

fn smp(target: Option<&Value>, patch: &Value, names: &mut Vec<String>) -> Result<Value, String> {
    match patch {
        Value::Object(p) => smp_object(target, p, names),
        Value::Array(items) => smp_list(target, patch, items, names),
        _ => Ok(patch.clone()),
    }
}

fn smp_object(
    target: Option<&Value>,
    p: &Map<String, Value>,
    names: &mut Vec<String>,
) -> Result<Value, String> {
    let clean = |m: &Map<String, Value>| -> Map<String, Value> {
        m.iter()
            .filter(|(k, _)| !k.starts_with('$'))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    if p.get("$patch").and_then(Value::as_str) == Some("replace") {
        return Ok(Value::Object(clean(p)));
    }
    let mut base = target
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for (key, value) in p {
        if let Some(field) = key.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(list)), Some(gone)) = (base.get_mut(field), value.as_array())
            {
                list.retain(|x| !gone.contains(x));
            }
            continue;
        }
        if key.starts_with('$') {
            continue;
        }
        if value.is_null() || directive(value) == Some("delete") {
            base.remove(key);
            continue;
        }
        names.push(key.clone());
        let merged = smp(base.get(key), value, names);
        names.pop();
        base.insert(key.clone(), merged?);
    }
    if let Some(keep) = p.get("$retainKeys").and_then(Value::as_array) {
        base.retain(|k, _| keep.iter().any(|x| x.as_str() == Some(k)));
    }
    Ok(Value::Object(base))
}

fn smp_list(
    target: Option<&Value>,
    patch: &Value,
    items: &[Value],
    names: &mut Vec<String>,
) -> Result<Value, String> {
    let list_shape = shape(names, patch);
    let mut base = target
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    match list_shape {
        Shape::ListMap(_) => {
            if items.iter().any(|i| directive(i) == Some("replace")) {
                let kept = items
                    .iter()
                    .filter(|i| directive(i).is_none())
                    .cloned()
                    .collect();
                return Ok(Value::Array(kept));
            }
            for item in items {
                let pe = item_pe(list_shape, item)?;
                let at = base
                    .iter()
                    .position(|b| item_pe(list_shape, b).ok().as_ref() == Some(&pe));
                match (directive(item), at) {
                    (Some("delete"), Some(i)) => {
                        base.remove(i);
                    }
                    (Some("delete"), None) => {}
                    (_, Some(i)) => base[i] = smp(Some(&base[i].clone()), item, names)?,
                    (_, None) => base.push(smp(None, item, names)?),
                }
            }
            Ok(Value::Array(base))
        }
        Shape::Set => {
            for item in items {
                if !base.contains(item) {
                    base.push(item.clone());
                }
            }
            Ok(Value::Array(base))
        }
        _ => Ok(patch.clone()),
    }
}
