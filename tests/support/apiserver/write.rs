//! What every write goes through once the verb has built the object it wants stored: the status
//! subresource split, the server-owned metadata, the finalizer rule for objects being deleted,
//! field ownership, generation, no-op detection, and the store (or removal, when the last
//! finalizer of an object being deleted is gone).

use std::sync::Arc;

use serde_json::{Value, json};

use super::delete::remove_and_collect;
use super::fieldset::FieldSet;
use super::managed::{Managed, ManagerId, conflict_message};
use super::part::{Part, tracked};
use super::resources::Resource;
use super::status::ApiError;
use super::store::{Key, Store, Stored, new_uid, now};
use super::tree::compare;

/// Who writes which part of which object.
pub struct Writer {
    pub ti: usize,
    pub key: Key,
    pub part: Part,
    pub id: ManagerId,
    pub dry_run: bool,
    /// Tests seeding objects may set status through the main resource.
    pub keep_status: bool,
}

/// How the write changes ownership.
pub enum Ownership {
    /// Create, PUT, merge/JSON/strategic patch: always succeeds, takes what it changed.
    Update,
    /// Server-side apply: the applier owns exactly `set`; conflicts fail unless forced.
    Apply { set: FieldSet, force: bool },
}

pub struct Written {
    pub object: Arc<Stored>,
    pub created: bool,
}

pub fn finish(
    store: &mut Store,
    w: &Writer,
    old: Option<Arc<Stored>>,
    mut new: Value,
    base: Managed,
    ownership: Ownership,
) -> Result<Written, ApiError> {
    let def = store.table(w.ti).expect("a served resource").def.clone();
    let now = now();
    confine(&mut new, old.as_deref(), w.part, w.keep_status);
    server_fields(&mut new, old.as_deref(), &def, &w.key, &now);
    check_finalizers(old.as_deref(), &new, &def, &w.key.1)?;
    let managed = own(&def, w, old.as_deref(), &new, base, ownership)?;
    set_generation(&mut new, old.as_deref(), &def);
    commit(store, w, old, new, managed, &now)
}

/// The new ownership, or the 409 of an unforced apply that changes others' fields.
fn own(
    def: &Resource,
    w: &Writer,
    old: Option<&Stored>,
    new: &Value,
    mut managed: Managed,
    ownership: Ownership,
) -> Result<Managed, ApiError> {
    let empty = json!({});
    let before = old.map_or(&empty, |o| &o.value);
    let cmp = compare(&tracked(before, w.part), &tracked(new, w.part));
    let api_version = def.api_version();
    match ownership {
        Ownership::Update => managed.record_update(&w.id, &api_version, &cmp),
        Ownership::Apply { set, force } => {
            let conflicts = managed.conflicts(&w.id, &cmp);
            if !conflicts.is_empty() && !force {
                let (message, causes) = conflict_message(&conflicts);
                return Err(ApiError::apply_conflict(def, &w.key.1, message, causes));
            }
            managed.record_apply(&w.id, &api_version, set, &cmp);
        }
    }
    Ok(managed)
}

/// Stores the write, unless it changes nothing (no write, no new resourceVersion, no event),
/// is a dry run, or empties the finalizers of an object being deleted: then the registry
/// deletes instead of writing (genericregistry Store.Update, errEmptiedFinalizers), watchers see
/// DELETED and the caller gets the new state.
fn commit(
    store: &mut Store,
    w: &Writer,
    old: Option<Arc<Stored>>,
    new: Value,
    mut managed: Managed,
    now: &str,
) -> Result<Written, ApiError> {
    let old_managed = old.as_ref().map(|o| o.managed.clone()).unwrap_or_default();
    let changed = old.as_ref().is_none_or(|o| !same_object(&o.value, &new));
    managed.stamp(&w.id, &old_managed, changed, now);
    let created = old.is_none();
    if let Some(o) = &old
        && !changed
        && managed == o.managed
    {
        return Ok(Written {
            object: o.clone(),
            created,
        });
    }
    if w.dry_run {
        return Ok(Written {
            object: Arc::new(Stored::with_managed(new, managed)),
            created,
        });
    }
    if !created && deleting(&new) && finalizers(&new).is_empty() {
        remove_and_collect(store, w.ti, &w.key, false);
        return Ok(Written {
            object: Arc::new(Stored::with_managed(new, managed)),
            created,
        });
    }
    let object = store.write(w.ti, w.key.clone(), new, managed);
    Ok(Written { object, created })
}

/// The status subresource: main-resource writes keep the stored status, /status writes keep
/// everything but status (the CRD status strategy's PrepareForUpdate copies the old object and
/// sets only status).
fn confine(new: &mut Value, old: Option<&Stored>, part: Part, keep_status: bool) {
    match part {
        Part::Main {
            status_subresource: true,
        } if !keep_status => match old.and_then(|o| o.value.get("status")) {
            Some(status) => new["status"] = status.clone(),
            None => {
                if let Some(map) = new.as_object_mut() {
                    map.remove("status");
                }
            }
        },
        Part::Status => {
            let Some(old) = old else { return };
            let status = new.get("status").cloned();
            let mut base = old.value.clone();
            match (status, base.as_object_mut()) {
                (Some(s), Some(map)) => {
                    map.insert("status".into(), s);
                }
                (None, Some(map)) => {
                    map.remove("status");
                }
                _ => {}
            }
            *new = base;
        }
        Part::Main { .. } => {}
    }
}

/// Fields clients cannot set: identity and lifecycle come from the stored object (or are
/// generated on create); resourceVersion is assigned by the store.
fn server_fields(new: &mut Value, old: Option<&Stored>, def: &Resource, key: &Key, now: &str) {
    if !new.is_object() {
        *new = json!({});
    }
    new["apiVersion"] = json!(def.api_version());
    new["kind"] = json!(def.kind);
    if !new["metadata"].is_object() {
        new["metadata"] = json!({});
    }
    let meta = new["metadata"].as_object_mut().expect("an object");
    meta.insert("name".into(), json!(key.1));
    if def.namespaced {
        meta.insert("namespace".into(), json!(key.0));
    } else {
        meta.remove("namespace");
    }
    const SERVER: [&str; 6] = [
        "uid",
        "creationTimestamp",
        "generation",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "resourceVersion",
    ];
    for field in SERVER {
        meta.remove(field);
    }
    match old {
        Some(o) => {
            for field in SERVER {
                if let Some(v) = o.value["metadata"].get(field) {
                    meta.insert(field.into(), v.clone());
                }
            }
        }
        None => {
            meta.insert("uid".into(), json!(new_uid()));
            meta.insert("creationTimestamp".into(), json!(now));
        }
    }
}

/// "no new finalizers can be added if the object is being deleted" (ValidateObjectMetaUpdate).
fn check_finalizers(
    old: Option<&Stored>,
    new: &Value,
    def: &Resource,
    name: &str,
) -> Result<(), ApiError> {
    let Some(old) = old.filter(|o| deleting(&o.value)) else {
        return Ok(());
    };
    let before = finalizers(&old.value);
    let added: Vec<String> = finalizers(new)
        .into_iter()
        .filter(|f| !before.contains(f))
        .map(|f| format!("{f:?}"))
        .collect();
    if added.is_empty() {
        return Ok(());
    }
    let detail = format!(
        "no new finalizers can be added if the object is being deleted, found new finalizers []string{{{}}}",
        added.join(", ")
    );
    Err(ApiError::invalid(
        def,
        name,
        "metadata.finalizers",
        "Forbidden",
        &detail,
    ))
}

/// Generation starts at 1 and grows with every change outside metadata (and outside status for
/// kinds with a status subresource); kinds without a generation (Secret, Lease, Event) get none.
fn set_generation(new: &mut Value, old: Option<&Stored>, def: &Resource) {
    let meta = new["metadata"].as_object_mut().expect("an object");
    if !has_generation(def) {
        meta.remove("generation");
        return;
    }
    let Some(old) = old else {
        meta.insert("generation".into(), json!(1));
        return;
    };
    let generation = old.value["metadata"]["generation"].as_i64().unwrap_or(1);
    let spec_changed = spec_differs(&old.value, new, def.status);
    let generation = generation + i64::from(spec_changed);
    new["metadata"]["generation"] = json!(generation);
}

pub fn has_generation(def: &Resource) -> bool {
    !def.builtin()
        || matches!(
            def.group.as_str(),
            "apps" | "admissionregistration.k8s.io" | "batch" | "policy"
        )
}

fn spec_differs(old: &Value, new: &Value, status_subresource: bool) -> bool {
    let skip = |k: &str| k == "metadata" || (status_subresource && k == "status");
    let empty = serde_json::Map::new();
    let (a, b) = (
        old.as_object().unwrap_or(&empty),
        new.as_object().unwrap_or(&empty),
    );
    a.iter()
        .filter(|(k, _)| !skip(k))
        .any(|(k, v)| b.get(k) != Some(v))
        || b.keys().filter(|k| !skip(k)).any(|k| !a.contains_key(k))
}

/// Equal apart from managedFields and resourceVersion.
fn same_object(old: &Value, new: &Value) -> bool {
    if spec_differs(old, new, false) {
        return false;
    }
    let empty = serde_json::Map::new();
    let meta = |v: &Value| {
        v["metadata"]
            .as_object()
            .cloned()
            .unwrap_or_else(|| empty.clone())
    };
    let (mut a, mut b) = (meta(old), meta(new));
    for m in [&mut a, &mut b] {
        m.remove("managedFields");
        m.remove("resourceVersion");
    }
    a == b
}

pub fn deleting(object: &Value) -> bool {
    object["metadata"]
        .get("deletionTimestamp")
        .is_some_and(|t| !t.is_null())
}

pub fn finalizers(object: &Value) -> Vec<String> {
    object["metadata"]["finalizers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f.as_str().map(str::to_string))
        .collect()
}
