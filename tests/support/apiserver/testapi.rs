//! What tests do to the cluster directly, bypassing HTTP, RBAC, faults and the counters: seed
//! objects, act as other field managers (a person running `kubectl apply --server-side`), read
//! end states and ownership, wait, and steer load and faults.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::apply::{apply, describe};
use super::delete::{DeleteOptions, Deleted, delete};
use super::load::{Fault, Stats, Throttle};
use super::read::Scope;
use super::resources::Resource;
use super::status::ApiError;
use super::store::Store;
use super::verbs::{Call, create, patch, replace};
use super::{ApiServer, Features};

/// One entry of metadata.managedFields, with its fields as paths
/// (`.metadata.annotations.x`, `.status.conditions[type="Ready"].status`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manager {
    pub manager: String,
    /// `Apply` or `Update`.
    pub operation: String,
    /// `status` for writes to /status.
    pub subresource: String,
    pub fields: Vec<String>,
}

impl ApiServer {
    fn locate(store: &Store, api_version: &str, kind: &str) -> usize {
        store.find_kind(api_version, kind).unwrap_or_else(|| {
            panic!("{api_version} {kind} is not served by the emulated API server")
        })
    }

    /// A call as `manager` on the object `object` names.
    fn call_for(store: &Store, manager: &str, object: &Value, status: bool) -> Call {
        let ti = Self::locate(
            store,
            object["apiVersion"].as_str().unwrap_or_default(),
            object["kind"].as_str().unwrap_or_default(),
        );
        let def = &store.table(ti).expect("served").def;
        let namespace = match object["metadata"]["namespace"].as_str() {
            _ if !def.namespaced => String::new(),
            Some(ns) => ns.to_string(),
            None => "default".to_string(),
        };
        Call {
            ti,
            namespace,
            name: object["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            status,
            field_manager: Some(manager.to_string()),
            ..Call::default()
        }
    }

    fn call_at(
        store: &Store,
        manager: &str,
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Call {
        let ti = Self::locate(store, api_version, kind);
        Call {
            ti,
            namespace: namespace.to_string(),
            name: name.to_string(),
            field_manager: Some(manager.to_string()),
            ..Call::default()
        }
    }

    /// Creates or overwrites an object as the manager `seed` would with create/PUT, status
    /// included; returns it as stored.
    pub fn put(&self, object: Value) -> Value {
        self.put_as("seed", object)
    }

    pub fn put_as(&self, manager: &str, mut object: Value) -> Value {
        let mut store = self.shared.store.lock().unwrap();
        let mut call = Self::call_for(&store, manager, &object, false);
        call.keep_status = true;
        object["metadata"]["namespace"] = Value::String(call.namespace.clone());
        let written = if store.get(call.ti, &call.key()).is_some() {
            if let Some(meta) = object["metadata"].as_object_mut() {
                meta.remove("resourceVersion");
                meta.remove("managedFields");
            }
            let rv = store.get(call.ti, &call.key()).expect("exists").rv();
            object["metadata"]["resourceVersion"] = Value::String(rv.to_string());
            replace(&mut store, &call, object)
        } else {
            create(&mut store, &call, object)
        };
        written
            .unwrap_or_else(|e| panic!("put: {e}"))
            .object
            .value
            .clone()
    }

    pub fn get(&self, api_version: &str, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        let store = self.shared.store.lock().unwrap();
        let ti = Self::locate(&store, api_version, kind);
        store
            .get(ti, &(namespace.to_string(), name.to_string()))
            .map(|o| o.value.clone())
    }

    /// The objects of a kind, in a namespace or all (`None`), by namespace and name.
    pub fn list(&self, api_version: &str, kind: &str, namespace: Option<&str>) -> Vec<Value> {
        let store = self.shared.store.lock().unwrap();
        let ti = Self::locate(&store, api_version, kind);
        let scope = Scope {
            namespace: namespace.map(str::to_string),
            ..Scope::default()
        };
        let table = store.table(ti).expect("served");
        scope
            .candidates(table)
            .iter()
            .map(|o| o.value.clone())
            .collect()
    }

    /// DELETE with the API server's rules (finalizers, garbage collection). False when absent.
    pub fn delete(&self, api_version: &str, kind: &str, namespace: &str, name: &str) -> bool {
        let mut store = self.shared.store.lock().unwrap();
        let ti = Self::locate(&store, api_version, kind);
        let key = (namespace.to_string(), name.to_string());
        matches!(
            delete(&mut store, ti, &key, &DeleteOptions::default()),
            Ok(Deleted::Pending(_) | Deleted::Gone(_))
        )
    }

    /// Server-side apply as `manager`, without force: a conflict is an error, as
    /// `kubectl apply --server-side` without `--force-conflicts` reports it.
    pub fn apply_as(&self, manager: &str, object: Value) -> Result<Value, ApiError> {
        self.apply_with(manager, object, false, false)
    }

    pub fn force_apply_as(&self, manager: &str, object: Value) -> Result<Value, ApiError> {
        self.apply_with(manager, object, true, false)
    }

    /// Server-side apply to the status subresource.
    pub fn apply_status_as(
        &self,
        manager: &str,
        object: Value,
        force: bool,
    ) -> Result<Value, ApiError> {
        self.apply_with(manager, object, force, true)
    }

    fn apply_with(
        &self,
        manager: &str,
        object: Value,
        force: bool,
        status: bool,
    ) -> Result<Value, ApiError> {
        let mut store = self.shared.store.lock().unwrap();
        let mut call = Self::call_for(&store, manager, &object, status);
        call.force = force;
        apply(&mut store, &call, object).map(|w| w.object.value.clone())
    }

    /// A JSON merge patch as `manager` (an Update in managedFields).
    pub fn patch_merge_as(
        &self,
        manager: &str,
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
        merge: Value,
    ) -> Result<Value, ApiError> {
        self.patch_with(
            manager,
            (api_version, kind),
            (namespace, name),
            merge,
            false,
        )
    }

    /// A JSON merge patch of the status subresource as `manager`.
    pub fn patch_status_merge_as(
        &self,
        manager: &str,
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
        merge: Value,
    ) -> Result<Value, ApiError> {
        self.patch_with(manager, (api_version, kind), (namespace, name), merge, true)
    }

    fn patch_with(
        &self,
        manager: &str,
        gk: (&str, &str),
        at: (&str, &str),
        merge: Value,
        status: bool,
    ) -> Result<Value, ApiError> {
        let mut store = self.shared.store.lock().unwrap();
        let mut call = Self::call_at(&store, manager, gk.0, gk.1, at.0, at.1);
        call.status = status;
        let body = serde_json::to_vec(&merge).expect("JSON");
        patch(&mut store, &call, "application/merge-patch+json", &body)
            .map(|w| w.object.value.clone())
    }

    /// Who owns what in an object.
    pub fn managers(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Vec<Manager> {
        let store = self.shared.store.lock().unwrap();
        let ti = Self::locate(&store, api_version, kind);
        let Some(object) = store.get(ti, &(namespace.to_string(), name.to_string())) else {
            return Vec::new();
        };
        describe(&object.managed)
            .into_iter()
            .map(|(manager, operation, subresource, fields)| Manager {
                manager,
                operation,
                subresource,
                fields,
            })
            .collect()
    }

    /// The managers owning one field path (`.metadata.annotations.x`).
    pub fn owners(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
        field: &str,
    ) -> Vec<String> {
        self.managers(api_version, kind, namespace, name)
            .into_iter()
            .filter(|m| m.fields.iter().any(|f| f == field))
            .map(|m| m.manager)
            .collect()
    }

    /// Polls `done` until it holds or `timeout` passes (blocking: for tests without a runtime
    /// on this thread). Returns whether it held.
    pub fn wait_for(&self, timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if done() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// `wait_for` for async tests: sleeps on the runtime instead of blocking it.
    pub async fn wait_for_async(&self, timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if done() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The current global resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.store.lock().unwrap().rv
    }

    pub fn register(&self, resource: Resource) {
        self.shared.store.lock().unwrap().register(resource);
    }

    /// Stops serving `plural.group` (as deleting its CRD): 404 from then on, its objects gone.
    pub fn unregister(&self, group: &str, plural: &str) -> bool {
        self.shared.store.lock().unwrap().unregister(group, plural)
    }

    pub fn stats(&self) -> Stats {
        self.shared.load.stats()
    }

    pub fn reset_stats(&self) {
        self.shared.load.reset();
    }

    /// Fails (or delays) the next matching requests.
    pub fn inject(&self, fault: Fault) {
        self.shared.load.inject(fault);
    }

    pub fn clear_faults(&self) {
        self.shared.load.clear_faults();
    }

    /// Answers 429 beyond these limits; `None` lifts them.
    pub fn throttle(&self, throttle: Option<Throttle>) {
        self.shared.load.set_throttle(throttle);
    }

    /// Adds latency to every request.
    pub fn set_latency(&self, latency: Duration) {
        self.shared.load.set_latency(latency);
    }

    /// From now on, every admitted request is held in flight until `more` requests (counting
    /// throttled ones) have arrived, at most 30 s: requests a test sends together then
    /// overlap on any machine, however late each one arrives.
    pub fn hold_until_arrived(&self, more: u64) {
        self.shared.load.hold_until_arrived(more);
    }

    /// RBAC refusals so far, with the reason; tests assert there are none.
    pub fn refused(&self) -> Vec<String> {
        self.shared.refused.lock().unwrap().clone()
    }

    /// Turns RBAC on (with these features) or off.
    pub fn set_rbac(&self, features: Option<Features>) {
        self.shared.settings.lock().unwrap().rbac = features;
    }

    pub fn set_bookmark_interval(&self, interval: Duration) {
        self.shared.settings.lock().unwrap().bookmark_interval = interval;
    }

    /// The resources served now.
    pub fn resources(&self) -> Vec<Resource> {
        let store = self.shared.store.lock().unwrap();
        store
            .tables
            .iter()
            .flatten()
            .map(|t| t.def.clone())
            .collect()
    }
}
