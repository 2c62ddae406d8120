//! Objects by resource, one global resourceVersion counter, and a bounded event log per resource
//! (the watch cache). Objects are kept behind `Arc`s with their JSON serialized once per version,
//! so lists, gets and every watcher share the same bytes instead of copying the world per event.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use serde_json::{Value, json};
use tokio::sync::watch;

use super::managed::Managed;
use super::resources::Resource;

/// The watch cache's eventFreshDuration and lower bound (k8s.io/apiserver storage/cacher).
const EVENT_FRESH_DURATION: Duration = Duration::from_secs(75);
const LOG_LOWER_BOUND: usize = 100;

/// (namespace, name); the namespace is empty for cluster-scoped objects.
pub type Key = (String, String);

/// One version of an object.
pub struct Stored {
    pub value: Value,
    pub managed: Managed,
    json: OnceLock<Bytes>,
    meta: OnceLock<Bytes>,
}

impl Stored {
    pub fn new(value: Value, managed: Managed) -> Stored {
        Stored {
            value,
            managed,
            json: OnceLock::new(),
            meta: OnceLock::new(),
        }
    }

    /// A version whose metadata.managedFields shows `managed` (omitted when nobody owns anything).
    pub fn with_managed(mut value: Value, managed: Managed) -> Stored {
        let fields = managed.to_json();
        match value["metadata"].as_object_mut() {
            Some(meta) if fields.as_array().is_some_and(|a| !a.is_empty()) => {
                meta.insert("managedFields".into(), fields);
            }
            Some(meta) => {
                meta.remove("managedFields");
            }
            None => {}
        }
        Stored::new(value, managed)
    }

    pub fn json(&self) -> &Bytes {
        self.json
            .get_or_init(|| Bytes::from(serde_json::to_vec(&self.value).unwrap()))
    }

    /// The object as a meta.k8s.io/v1 PartialObjectMetadata: what kube's metadata_watcher and
    /// Api::get_metadata ask for with `Accept: application/json;as=PartialObjectMetadata;...`.
    pub fn meta_json(&self) -> &Bytes {
        self.meta.get_or_init(|| {
            let partial = json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
                                 "metadata": self.value["metadata"]});
            Bytes::from(serde_json::to_vec(&partial).unwrap())
        })
    }

    pub fn rv(&self) -> u64 {
        self.value["metadata"]["resourceVersion"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }

    pub fn uid(&self) -> &str {
        self.value["metadata"]["uid"].as_str().unwrap_or_default()
    }

    pub fn labels(&self) -> Option<&Value> {
        self.value["metadata"].get("labels")
    }

    /// A copy at another resourceVersion: a deleted object as watchers see it.
    pub fn at_rv(&self, rv: u64) -> Stored {
        let mut value = self.value.clone();
        value["metadata"]["resourceVersion"] = json!(rv.to_string());
        Stored::new(value, self.managed.clone())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, as the watch cache keeps it: the object after (for DELETED, the last state at
/// the deletion's resourceVersion) and before.
pub struct Event {
    pub rv: u64,
    pub kind: EventType,
    pub key: Key,
    pub object: Arc<Stored>,
    pub prev: Option<Arc<Stored>>,
    prev_at_rv: OnceLock<Arc<Stored>>,
    at: Instant,
}

impl Event {
    /// The previous state at this event's resourceVersion: what a watcher whose selector the
    /// object stopped matching receives as DELETED (cacheWatcher.convertToWatchEvent).
    pub fn prev_as_deleted(&self) -> Arc<Stored> {
        self.prev_at_rv
            .get_or_init(|| match &self.prev {
                Some(p) => Arc::new(p.at_rv(self.rv)),
                None => self.object.clone(),
            })
            .clone()
    }
}

pub struct Table {
    pub def: Resource,
    pub objects: BTreeMap<Key, Arc<Stored>>,
    pub log: VecDeque<Arc<Event>>,
    /// Every event after this resourceVersion is still in the log; watching from older
    /// resourceVersions answers 410 "too old resource version".
    pub floor: u64,
    /// The resourceVersion of the last event, for watchers to wait on.
    pub notify: watch::Sender<u64>,
}

/// A list snapshot that continue tokens page through, like etcd serving a paginated list at the
/// first page's resourceVersion.
pub struct Snapshot {
    pub ti: usize,
    pub rv: u64,
    pub items: Arc<Vec<Arc<Stored>>>,
    pub taken: Instant,
}

pub struct Store {
    pub rv: u64,
    pub tables: Vec<Option<Table>>,
    by_path: HashMap<(String, String, String), usize>,
    uids: HashMap<String, (usize, Key)>,
    /// Owner uid -> dependents naming it in ownerReferences, for garbage collection.
    dependents: HashMap<String, BTreeSet<(usize, Key)>>,
    pub log_capacity: usize,
    pub snapshots: HashMap<u64, Snapshot>,
    pub next_snapshot: u64,
}

impl Store {
    pub fn new(resources: Vec<Resource>, log_capacity: usize) -> Store {
        let mut store = Store {
            rv: 1,
            tables: Vec::new(),
            by_path: HashMap::new(),
            uids: HashMap::new(),
            dependents: HashMap::new(),
            log_capacity,
            snapshots: HashMap::new(),
            next_snapshot: 1,
        };
        for r in resources {
            store.register(r);
        }
        store
    }

    pub fn register(&mut self, def: Resource) -> usize {
        let path = (def.group.clone(), def.version.clone(), def.plural.clone());
        if let Some(&ti) = self.by_path.get(&path)
            && self.tables[ti].is_some()
        {
            return ti;
        }
        let table = Table {
            def,
            objects: BTreeMap::new(),
            log: VecDeque::new(),
            floor: self.rv,
            notify: watch::channel(self.rv).0,
        };
        self.tables.push(Some(table));
        let ti = self.tables.len() - 1;
        self.by_path.insert(path, ti);
        ti
    }

    /// Stops serving a resource, as deleting its CRD does: its objects go, its watches end.
    pub fn unregister(&mut self, group: &str, plural: &str) -> bool {
        let found: Vec<usize> = self
            .by_path
            .iter()
            .filter(|((g, _, p), _)| g == group && p == plural)
            .map(|(_, &ti)| ti)
            .collect();
        for &ti in &found {
            if let Some(table) = self.tables[ti].take() {
                for (key, object) in table.objects {
                    self.unindex(ti, &key, &object);
                }
            }
        }
        self.by_path
            .retain(|(g, _, p), _| !(g == group && p == plural));
        !found.is_empty()
    }

    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<usize> {
        let ti =
            *self
                .by_path
                .get(&(group.to_string(), version.to_string(), plural.to_string()))?;
        self.tables[ti].as_ref().map(|_| ti)
    }

    /// A resource by apiVersion and kind (or plural).
    pub fn find_kind(&self, api_version: &str, kind: &str) -> Option<usize> {
        self.tables.iter().position(|t| {
            t.as_ref().is_some_and(|t| {
                t.def.api_version() == api_version && (t.def.kind == kind || t.def.plural == kind)
            })
        })
    }

    pub fn table(&self, ti: usize) -> Option<&Table> {
        self.tables.get(ti).and_then(Option::as_ref)
    }

    fn table_mut(&mut self, ti: usize) -> &mut Table {
        self.tables[ti].as_mut().expect("a served resource")
    }

    pub fn get(&self, ti: usize, key: &Key) -> Option<Arc<Stored>> {
        self.table(ti)?.objects.get(key).cloned()
    }

    pub fn uid_exists(&self, uid: &str) -> bool {
        self.uids.contains_key(uid)
    }

    /// Stores a new version with the next resourceVersion and logs ADDED or MODIFIED.
    pub fn write(
        &mut self,
        ti: usize,
        key: Key,
        mut value: Value,
        managed: Managed,
    ) -> Arc<Stored> {
        self.rv += 1;
        let rv = self.rv;
        value["metadata"]["resourceVersion"] = json!(rv.to_string());
        let stored = Arc::new(Stored::with_managed(value, managed));
        let prev = self
            .table_mut(ti)
            .objects
            .insert(key.clone(), stored.clone());
        if let Some(p) = &prev {
            self.unindex(ti, &key, p);
        }
        self.index(ti, &key, &stored);
        let kind = if prev.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.log(ti, kind, key, stored.clone(), prev);
        stored
    }

    /// Removes an object with the next resourceVersion and logs DELETED; returns it as deleted.
    pub fn remove(&mut self, ti: usize, key: &Key) -> Option<Arc<Stored>> {
        let prev = self.table_mut(ti).objects.remove(key)?;
        self.unindex(ti, key, &prev);
        self.rv += 1;
        let deleted = Arc::new(prev.at_rv(self.rv));
        self.log(
            ti,
            EventType::Deleted,
            key.clone(),
            deleted.clone(),
            Some(prev),
        );
        Some(deleted)
    }

    fn log(
        &mut self,
        ti: usize,
        kind: EventType,
        key: Key,
        object: Arc<Stored>,
        prev: Option<Arc<Stored>>,
    ) {
        let rv = self.rv;
        let capacity = self.log_capacity.max(1);
        let now = Instant::now();
        let table = self.table_mut(ti);
        // As the watch cache sizes itself (watch_cache.go): at most the upper bound, and events
        // older than eventFreshDuration (75 s) go once more than the lower bound (100) are kept.
        let stale = |e: &Event| now.duration_since(e.at) > EVENT_FRESH_DURATION;
        while table.log.len() >= capacity
            || (table.log.len() > LOG_LOWER_BOUND && table.log.front().is_some_and(|e| stale(e)))
        {
            if let Some(old) = table.log.pop_front() {
                table.floor = old.rv;
            }
        }
        let event = Event {
            rv,
            kind,
            key,
            object,
            prev,
            prev_at_rv: OnceLock::new(),
            at: now,
        };
        table.log.push_back(Arc::new(event));
        table.notify.send_replace(rv);
    }

    fn index(&mut self, ti: usize, key: &Key, object: &Stored) {
        self.uids
            .insert(object.uid().to_string(), (ti, key.clone()));
        for owner in owner_uids(&object.value) {
            self.dependents
                .entry(owner)
                .or_default()
                .insert((ti, key.clone()));
        }
    }

    fn unindex(&mut self, ti: usize, key: &Key, object: &Stored) {
        self.uids.remove(object.uid());
        for owner in owner_uids(&object.value) {
            if let Some(set) = self.dependents.get_mut(&owner) {
                set.remove(&(ti, key.clone()));
                if set.is_empty() {
                    self.dependents.remove(&owner);
                }
            }
        }
    }

    /// The objects naming `uid` as an owner.
    pub fn dependents_of(&self, uid: &str) -> Vec<(usize, Key)> {
        self.dependents
            .get(uid)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }
}

pub fn owner_uids(object: &Value) -> Vec<String> {
    object["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["uid"].as_str().map(str::to_string))
        .collect()
}

/// A random RFC 4122 version 4 uid.
pub fn new_uid() -> String {
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        fastrand::u32(..),
        fastrand::u16(..),
        fastrand::u16(..0x1000),
        (fastrand::u16(..) & 0x3fff) | 0x8000,
        fastrand::u64(..) & 0xffff_ffff_ffff
    )
}

/// Now, as metav1.Time serializes it (RFC 3339, seconds).
pub fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}
