//! Server-side apply (PATCH with application/apply-patch+yaml), as structured-merge-diff's
//! Updater.Apply does it: merge the configuration into the live object, prune what the applier
//! applied last time but not now (unless another manager owns it), then check conflicts: a
//! changed field owned by another manager is a 409 unless `force=true`, which moves ownership.
//! Applying the same value as another manager is no change, so both own the field.
//!
//! Rules followed from https://kubernetes.io/docs/reference/using-api/server-side-apply/:
//! "fieldManager is required for apply requests"; "If you remove a field from a manifest and
//! apply that manifest, Server-Side Apply checks if there are any other field managers that also
//! own the field. If the field is not owned by any other field managers, it is either deleted
//! from the live object or reset to its default value"; an apply of an object that does not
//! exist creates it.

use serde_json::Value;

use super::fieldset::path_string;
use super::managed::Operation;
use super::part::tracked;
use super::resources::Resource;
use super::status::ApiError;
use super::store::{Store, Stored};
use super::tree::{field_set, merge, remove};
use super::verbs::{Call, check_kind};
use super::write::{Ownership, Written, finish};

/// The body of an apply: JSON, or YAML (JSON is YAML, and kube sends JSON).
pub fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        return Ok(v);
    }
    let text = std::str::from_utf8(body).map_err(|e| ApiError::bad_request(e.to_string()))?;
    serde_saphyr::from_str::<Value>(text)
        .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))
}

pub fn apply(store: &mut Store, call: &Call, config: Value) -> Result<Written, ApiError> {
    let def = call.def(store);
    if call.field_manager.as_deref().is_none_or(str::is_empty) {
        return Err(ApiError::bad_request(
            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required \
             for apply patch",
        ));
    }
    validate(&def, call, &config)?;
    let old = store.get(call.ti, &call.key());
    preconditions(&def, call, old.as_deref(), &config)?;
    let writer = call.writer(&def, call.key(), Operation::Apply);
    let applied = tracked(&config, writer.part);
    let set = field_set(&applied).map_err(|e| {
        let kind = format!("{}.{}", def.kind, def.group);
        ApiError::new(
            422,
            "Invalid",
            format!("{kind} {:?} is invalid: {e}", call.name),
        )
    })?;
    let empty = serde_json::json!({});
    let live = old.as_ref().map_or(&empty, |o| &o.value);
    let mut merged = merge(live, &applied);
    let base = old.as_ref().map(|o| o.managed.clone()).unwrap_or_default();
    // Prune: what this manager applied before and omits now goes, unless someone else owns it
    // (the newer structured-merge-diff counts Update managers as owners too). Containers the
    // removal empties go with it; unowned siblings stay.
    if let Some(last) = base.get(&writer.id) {
        let others = base.others(&writer.id);
        for path in last.set.difference(&set).difference(&others).members() {
            remove(&mut merged, &path);
        }
    }
    let ownership = Ownership::Apply {
        set,
        force: call.force,
    };
    finish(store, &writer, old, merged, base, ownership)
}

/// A resourceVersion in the applied object is a precondition; an apply that would create the
/// object must be allowed to create, and cannot create through /status.
fn preconditions(
    def: &Resource,
    call: &Call,
    old: Option<&Stored>,
    config: &Value,
) -> Result<(), ApiError> {
    match old {
        Some(o) => match config["metadata"]["resourceVersion"].as_str() {
            Some(rv) if rv != o.rv().to_string() => Err(ApiError::conflict(def, &call.name)),
            _ => Ok(()),
        },
        None if call.status => Err(ApiError::not_found(def, &call.name)),
        None => match &call.create_refused {
            Some(why) => Err(ApiError::forbidden(why.clone())),
            None => Ok(()),
        },
    }
}

/// What the API server refuses in an applied object before merging anything.
fn validate(def: &Resource, call: &Call, config: &Value) -> Result<(), ApiError> {
    if !config.is_object() {
        return Err(ApiError::bad_request(
            "the applied configuration must be an object",
        ));
    }
    if config["apiVersion"].as_str().is_none_or(str::is_empty)
        || config["kind"].as_str().is_none_or(str::is_empty)
    {
        return Err(ApiError::bad_request(format!(
            "invalid object type: apiVersion and kind must be set in an applied configuration (got {:?}, {:?})",
            config["apiVersion"], config["kind"]
        )));
    }
    check_kind(def, config)?;
    if let Some(name) = config["metadata"]["name"].as_str()
        && name != call.name
    {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({name}) does not match the name on the URL ({})",
            call.name
        )));
    }
    if config["metadata"]["managedFields"]
        .as_array()
        .is_some_and(|a| !a.is_empty())
    {
        return Err(ApiError::bad_request("metadata.managedFields must be nil"));
    }
    Ok(())
}

/// Who owns what, for tests: each manager with its fields as paths.
pub fn describe(managed: &super::managed::Managed) -> Vec<(String, String, String, Vec<String>)> {
    managed
        .entries
        .iter()
        .map(|e| {
            let fields = e.set.members().iter().map(|p| path_string(p)).collect();
            (
                e.id.manager.clone(),
                e.id.operation.as_str().to_string(),
                e.id.subresource.clone(),
                fields,
            )
        })
        .collect()
}
