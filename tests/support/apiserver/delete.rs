//! DELETE and garbage collection. An object with finalizers is only marked (deletionTimestamp,
//! deletionGracePeriodSeconds 0, generation + 1: markAsDeleting in the generic registry) and
//! stays until a write empties its finalizers; one without is removed at once. When an object is
//! removed, its dependents (ownerReferences naming its uid) are deleted too, by the same rules,
//! as the garbage collector does in the background; a dependent with another owner that still
//! exists only loses the dangling reference.

use std::sync::Arc;

use serde_json::{Value, json};

use super::managed::{ManagerId, Operation};
use super::part::Part;
use super::status::ApiError;
use super::store::{Key, Store, Stored, now, owner_uids};
use super::write::{Ownership, Writer, deleting, finalizers, finish, has_generation};

#[derive(Clone, Debug, Default)]
pub struct DeleteOptions {
    pub uid: Option<String>,
    pub resource_version: Option<String>,
    /// propagationPolicy=Orphan: dependents lose the owner reference instead of being deleted.
    pub orphan: bool,
    pub dry_run: bool,
}

impl DeleteOptions {
    /// From the DeleteOptions body (and the propagationPolicy query parameter).
    pub fn parse(
        body: &[u8],
        policy: Option<&str>,
        dry_run: bool,
    ) -> Result<DeleteOptions, ApiError> {
        let value: Value = if body.iter().all(u8::is_ascii_whitespace) {
            json!({})
        } else {
            serde_json::from_slice(body).map_err(|e| ApiError::bad_request(e.to_string()))?
        };
        let policy = value["propagationPolicy"].as_str().or(policy);
        let dry = value["dryRun"]
            .as_array()
            .is_some_and(|d| d.iter().any(|x| x == "All"));
        Ok(DeleteOptions {
            uid: value["preconditions"]["uid"].as_str().map(str::to_string),
            resource_version: value["preconditions"]["resourceVersion"]
                .as_str()
                .map(str::to_string),
            orphan: policy == Some("Orphan"),
            dry_run: dry_run || dry,
        })
    }
}

pub enum Deleted {
    /// Still there, waiting for its finalizers.
    Pending(Arc<Stored>),
    /// Removed.
    Gone(Arc<Stored>),
}

pub fn delete(
    store: &mut Store,
    ti: usize,
    key: &Key,
    opts: &DeleteOptions,
) -> Result<Deleted, ApiError> {
    let def = store.table(ti).expect("a served resource").def.clone();
    let Some(old) = store.get(ti, key) else {
        return Err(ApiError::not_found(&def, &key.1));
    };
    if let Some(uid) = &opts.uid
        && uid != old.uid()
    {
        let message = format!(
            "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
            old.uid()
        );
        return Err(ApiError::new(409, "Conflict", message));
    }
    if let Some(rv) = &opts.resource_version
        && *rv != old.rv().to_string()
    {
        let message = format!(
            "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
            old.rv()
        );
        return Err(ApiError::new(409, "Conflict", message));
    }
    if !finalizers(&old.value).is_empty() {
        if deleting(&old.value) || opts.dry_run {
            return Ok(Deleted::Pending(old));
        }
        return Ok(Deleted::Pending(mark_deleting(store, ti, key, &old)));
    }
    if opts.dry_run {
        return Ok(Deleted::Gone(old));
    }
    let gone = remove_and_collect(store, ti, key, opts.orphan).expect("it exists");
    Ok(Deleted::Gone(gone))
}

/// Sets the deletion fields: a MODIFIED event, ownership unchanged.
fn mark_deleting(store: &mut Store, ti: usize, key: &Key, old: &Stored) -> Arc<Stored> {
    let def = store.table(ti).expect("a served resource").def.clone();
    let mut value = old.value.clone();
    value["metadata"]["deletionTimestamp"] = json!(now());
    value["metadata"]["deletionGracePeriodSeconds"] = json!(0);
    if has_generation(&def) {
        let generation = value["metadata"]["generation"].as_i64().unwrap_or(1);
        value["metadata"]["generation"] = json!(generation + 1);
    }
    store.write(ti, key.clone(), value, old.managed.clone())
}

/// Removes an object and collects its garbage; returns the removed object.
pub fn remove_and_collect(
    store: &mut Store,
    ti: usize,
    key: &Key,
    orphan: bool,
) -> Option<Arc<Stored>> {
    let gone = store.remove(ti, key)?;
    let mut owners = vec![(gone.uid().to_string(), orphan)];
    while let Some((owner, orphan)) = owners.pop() {
        for (dti, dkey) in store.dependents_of(&owner) {
            let Some(dependent) = store.get(dti, &dkey) else {
                continue;
            };
            let others_alive = owner_uids(&dependent.value)
                .iter()
                .any(|u| *u != owner && store.uid_exists(u));
            if orphan || others_alive {
                drop_owner(store, dti, &dkey, &dependent, &owner);
            } else if !finalizers(&dependent.value).is_empty() {
                if !deleting(&dependent.value) {
                    mark_deleting(store, dti, &dkey, &dependent);
                }
            } else if let Some(d) = store.remove(dti, &dkey) {
                owners.push((d.uid().to_string(), false));
            }
        }
    }
    Some(gone)
}

/// The garbage collector's patch that removes a dangling ownerReference.
fn drop_owner(store: &mut Store, ti: usize, key: &Key, dependent: &Arc<Stored>, owner: &str) {
    let mut value = dependent.value.clone();
    if let Some(refs) = value["metadata"]["ownerReferences"].as_array_mut() {
        refs.retain(|r| r["uid"] != owner);
        if refs.is_empty() {
            value["metadata"]
                .as_object_mut()
                .expect("an object")
                .remove("ownerReferences");
        }
    }
    let def = &store.table(ti).expect("a served resource").def;
    let writer = Writer {
        ti,
        key: key.clone(),
        part: Part::Main {
            status_subresource: def.status,
        },
        id: ManagerId::new(
            "generic-garbage-collector",
            Operation::Update,
            "",
            &def.api_version(),
        ),
        dry_run: false,
        keep_status: false,
    };
    let base = dependent.managed.clone();
    let _ = finish(
        store,
        &writer,
        Some(dependent.clone()),
        value,
        base,
        Ownership::Update,
    );
}
