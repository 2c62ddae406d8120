//! Create (POST), update (PUT) and the non-apply patches, each building the object it wants
//! stored and handing it to the write pipeline.

use std::sync::Arc;

use serde_json::Value;

use super::managed::{Managed, ManagerId, Operation};
use super::merge::{json_patch, merge_patch, strategic};
use super::part::Part;
use super::resources::Resource;
use super::status::ApiError;
use super::store::{Key, Store, Stored};
use super::write::{Ownership, Writer, Written, finish};

/// One write request, with what its URL and query say.
#[derive(Clone, Debug, Default)]
pub struct Call {
    pub ti: usize,
    /// The namespace in the URL (empty for cluster-scoped resources).
    pub namespace: String,
    /// The name in the URL (empty for create).
    pub name: String,
    /// The request is on the /status subresource.
    pub status: bool,
    /// `?fieldManager=`, if given.
    pub field_manager: Option<String>,
    /// The manager for non-apply writes without fieldManager: the User-Agent up to its first `/`.
    pub user_agent: String,
    pub force: bool,
    pub dry_run: bool,
    pub keep_status: bool,
    /// Why RBAC would refuse `create`: an apply that would create the object is also
    /// authorized as create.
    pub create_refused: Option<String>,
}

impl Call {
    pub fn def(&self, store: &Store) -> Resource {
        store.table(self.ti).expect("a served resource").def.clone()
    }

    pub fn part(&self, def: &Resource) -> Part {
        if self.status {
            Part::Status
        } else {
            Part::Main {
                status_subresource: def.status,
            }
        }
    }

    pub fn writer(&self, def: &Resource, key: Key, operation: Operation) -> Writer {
        // managerOrUserAgent in the API server: the User-Agent up to its first `/`, which is
        // empty for kube-rs, which sends none.
        let manager = match &self.field_manager {
            Some(m) => m.clone(),
            None => self
                .user_agent
                .split('/')
                .next()
                .unwrap_or_default()
                .to_string(),
        };
        let sub = if self.status { "status" } else { "" };
        Writer {
            ti: self.ti,
            key,
            part: self.part(def),
            id: ManagerId::new(&manager, operation, sub, &def.api_version()),
            dry_run: self.dry_run,
            keep_status: self.keep_status,
        }
    }

    pub fn key(&self) -> Key {
        (self.namespace.clone(), self.name.clone())
    }
}

pub fn create(store: &mut Store, call: &Call, mut body: Value) -> Result<Written, ApiError> {
    let def = call.def(store);
    if call.status {
        return Err(ApiError::method_not_allowed());
    }
    if !body.is_object() {
        return Err(ApiError::bad_request(
            "the body of a create must be an object",
        ));
    }
    check_kind(&def, &body)?;
    let name = name_of(&def, &body)?;
    let meta = &body["metadata"];
    if def.namespaced
        && let Some(ns) = meta["namespace"].as_str()
        && ns != call.namespace
    {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    let key = (call.namespace.clone(), name.clone());
    if store.get(call.ti, &key).is_some() {
        return Err(ApiError::already_exists(&def, &name));
    }
    if let Some(meta) = body["metadata"].as_object_mut() {
        meta.remove("managedFields");
    }
    let writer = call.writer(&def, key, Operation::Update);
    finish(
        store,
        &writer,
        None,
        body,
        Managed::default(),
        Ownership::Update,
    )
}

/// The name to create: metadata.name, or metadata.generateName and five random characters
/// (from the alphabet of k8s.io/apimachinery/pkg/util/rand.String).
fn name_of(def: &Resource, body: &Value) -> Result<String, ApiError> {
    let meta = &body["metadata"];
    if let Some(name) = meta["name"].as_str().filter(|n| !n.is_empty()) {
        return Ok(name.to_string());
    }
    let Some(prefix) = meta["generateName"].as_str().filter(|p| !p.is_empty()) else {
        let detail = "name or generateName is required";
        return Err(ApiError::invalid(
            def,
            "",
            "metadata.name",
            "Required value",
            detail,
        ));
    };
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let suffix: String = (0..5)
        .map(|_| ALPHABET[fastrand::usize(..ALPHABET.len())] as char)
        .collect();
    Ok(format!("{prefix}{suffix}"))
}

/// PUT: the whole object. A resourceVersion is a precondition (409 when stale); custom
/// resources require one (customResourceStrategy.AllowUnconditionalUpdate is false).
pub fn replace(store: &mut Store, call: &Call, body: Value) -> Result<Written, ApiError> {
    let def = call.def(store);
    let old = existing(store, call, &def)?;
    check_kind(&def, &body)?;
    let named = body["metadata"]["name"].as_str().unwrap_or_default();
    if named != call.name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({named}) does not match the name on the URL ({})",
            call.name
        )));
    }
    match body["metadata"]["resourceVersion"].as_str() {
        Some(rv) if rv != old.rv().to_string() => return Err(ApiError::conflict(&def, &call.name)),
        None if !def.builtin() => {
            let detail = "0x0: must be specified for an update";
            return Err(ApiError::invalid(
                &def,
                &call.name,
                "metadata.resourceVersion",
                "Invalid value",
                detail,
            ));
        }
        _ => {}
    }
    let base = managed_from_request(&body, &old);
    let writer = call.writer(&def, call.key(), Operation::Update);
    finish(store, &writer, Some(old), body, base, Ownership::Update)
}

/// PATCH with merge, JSON or strategic merge patch. A resourceVersion the patch puts into
/// metadata is a precondition, since the patched object then carries it.
pub fn patch(
    store: &mut Store,
    call: &Call,
    content_type: &str,
    body: &[u8],
) -> Result<Written, ApiError> {
    let def = call.def(store);
    let old = existing(store, call, &def)?;
    let mut object = old.value.clone();
    let parse =
        || serde_json::from_slice::<Value>(body).map_err(|e| ApiError::bad_request(e.to_string()));
    if content_type.starts_with("application/merge-patch+json") {
        merge_patch(&mut object, &parse()?);
    } else if content_type.starts_with("application/json-patch+json") {
        json_patch(&mut object, body).map_err(|(bad, m)| {
            if bad {
                ApiError::bad_request(m)
            } else {
                ApiError::new(422, "Invalid", m)
            }
        })?;
    } else if content_type.starts_with("application/strategic-merge-patch+json") {
        if !def.builtin() {
            return Err(ApiError::unsupported_media_type(def.builtin()));
        }
        object = strategic(&object, &parse()?).map_err(|m| ApiError::new(422, "Invalid", m))?;
    } else {
        return Err(ApiError::unsupported_media_type(def.builtin()));
    }
    if object["metadata"]["resourceVersion"].as_str() != Some(old.rv().to_string().as_str()) {
        return Err(ApiError::conflict(&def, &call.name));
    }
    check_kind(&def, &object)?;
    let base = managed_from_request(&object, &old);
    let writer = call.writer(&def, call.key(), Operation::Update);
    finish(store, &writer, Some(old), object, base, Ownership::Update)
}

pub fn existing(store: &Store, call: &Call, def: &Resource) -> Result<Arc<Stored>, ApiError> {
    store
        .get(call.ti, &call.key())
        .ok_or_else(|| ApiError::not_found(def, &call.name))
}

/// A kind or apiVersion other than the resource's is a 400, as decoding into the endpoint's
/// type fails; absent ones are filled in.
pub fn check_kind(def: &Resource, body: &Value) -> Result<(), ApiError> {
    let kind = body["kind"].as_str().unwrap_or(&def.kind);
    let api_version = body["apiVersion"]
        .as_str()
        .map_or_else(|| def.api_version(), str::to_string);
    if kind != def.kind || api_version != def.api_version() {
        return Err(ApiError::bad_request(format!(
            "the object is a {api_version} {kind}, the URL is for {} {}",
            def.api_version(),
            def.kind
        )));
    }
    Ok(())
}

/// The managers to start from: the stored ones, unless the request sets other managedFields
/// (which replace them; `[{}]` clears them, as on a real API server).
fn managed_from_request(object: &Value, old: &Stored) -> Managed {
    match object["metadata"].get("managedFields") {
        None | Some(Value::Null) => old.managed.clone(),
        Some(sent) if Some(sent) == old.value["metadata"].get("managedFields") => {
            old.managed.clone()
        }
        Some(sent) => Managed::from_json(sent),
    }
}
