//! SLOs are listed and watched untyped and read one by one: an object this version cannot read
//! (a newer version's status, a hand edit past the schema) is left out and reported, and every
//! other SLO goes on. Read typed, one such object failed every list, so no SLO got its rules.

use std::collections::HashMap;
use std::sync::Mutex;

use kube::api::{DynamicObject, ObjectMeta};
use kube::runtime::watcher::Event;
use tracing::warn;

use crate::api::{ServiceLevelObjective, ServiceLevelObjectiveSpec};

/// An SLO that cannot be read: where it is, at which version, and why (with the field).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub resource_version: String,
    pub problem: String,
}

/// The SLOs that cannot be read now, by namespace and name, and whether an Event said so.
#[derive(Debug, Default)]
pub struct Unreadables(Mutex<HashMap<(String, String), (Unreadable, bool)>>);

impl Unreadables {
    /// Records an unreadable SLO; logs it once per resourceVersion.
    fn record(&self, found: Unreadable) {
        let key = (found.namespace.clone(), found.name.clone());
        let mut known = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if known.get(&key).is_some_and(|(u, _)| u == &found) {
            return;
        }
        warn!(
            namespace = %found.namespace,
            name = %found.name,
            resource_version = %found.resource_version,
            problem = %found.problem,
            "this ServiceLevelObjective cannot be read and is left out (every other SLO goes on); \
             fix the field, or run a plimsoll version that knows it"
        );
        known.insert(key, (found, false));
    }

    /// Those no Event has named yet, marked as named now.
    pub fn take_unreported(&self) -> Vec<Unreadable> {
        let mut known = self.0.lock().unwrap_or_else(|p| p.into_inner());
        known
            .values_mut()
            .filter(|(_, reported)| !*reported)
            .map(|(u, reported)| {
                *reported = true;
                u.clone()
            })
            .collect()
    }

    fn forget(&self, meta: &ObjectMeta) {
        let key = key(meta);
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&key);
    }

    /// Forgets those a relist no longer holds.
    fn retain(&self, listed: &std::collections::HashSet<(String, String)>) {
        let mut known = self.0.lock().unwrap_or_else(|p| p.into_inner());
        known.retain(|k, _| listed.contains(k));
    }

    pub fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn all(&self) -> Vec<Unreadable> {
        let known = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let mut all: Vec<Unreadable> = known.values().map(|(u, _)| u.clone()).collect();
        all.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        all
    }
}

fn key(meta: &ObjectMeta) -> (String, String) {
    (
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

/// Reads one object as an SLO; the error names the field.
pub fn read(object: DynamicObject) -> Result<ServiceLevelObjective, String> {
    let value = serde_json::to_value(&object).map_err(|e| e.to_string())?;
    serde_path_to_error::deserialize(value).map_err(|e| format!("{}: {}", e.path(), e.inner()))
}

/// Stands for an SLO that was deleted or became unreadable, so the store drops it.
fn gone(metadata: ObjectMeta) -> ServiceLevelObjective {
    ServiceLevelObjective {
        metadata,
        spec: ServiceLevelObjectiveSpec::default(),
        status: None,
    }
}

/// Turns one event of the untyped watch into the typed one: unreadable objects are recorded and
/// left out (an SLO that was readable and no longer is leaves the store).
pub struct Decoder {
    unreadable: std::sync::Arc<Unreadables>,
    /// Namespace and name of every object the running (re)list returned.
    listing: std::collections::HashSet<(String, String)>,
}

impl Decoder {
    pub fn new(unreadable: std::sync::Arc<Unreadables>) -> Decoder {
        Decoder {
            unreadable,
            listing: Default::default(),
        }
    }

    pub fn event(&mut self, event: Event<DynamicObject>) -> Option<Event<ServiceLevelObjective>> {
        match event {
            Event::Init => {
                self.listing.clear();
                Some(Event::Init)
            }
            Event::InitDone => {
                self.unreadable.retain(&self.listing);
                Some(Event::InitDone)
            }
            Event::InitApply(object) => {
                self.listing.insert(key(&object.metadata));
                self.typed(object).map(Event::InitApply)
            }
            Event::Apply(object) => {
                let meta = object.metadata.clone();
                Some(match self.typed(object) {
                    Some(slo) => Event::Apply(slo),
                    None => Event::Delete(gone(meta)),
                })
            }
            Event::Delete(object) => {
                self.unreadable.forget(&object.metadata);
                Some(Event::Delete(gone(object.metadata)))
            }
        }
    }

    fn typed(&self, object: DynamicObject) -> Option<ServiceLevelObjective> {
        let meta = object.metadata.clone();
        match read(object) {
            Ok(slo) => {
                self.unreadable.forget(&slo.metadata);
                Some(slo)
            }
            Err(problem) => {
                let (namespace, name) = key(&meta);
                self.unreadable.record(Unreadable {
                    namespace,
                    name,
                    uid: meta.uid.clone().unwrap_or_default(),
                    resource_version: meta.resource_version.clone().unwrap_or_default(),
                    problem,
                });
                None
            }
        }
    }
}
