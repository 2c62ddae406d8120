//! The one SLO watch of a replica: a reflector per watched namespace (or one over all), slimmed
//! before caching, that every consumer reads: the controllers (on the leader), the Prometheus
//! reader, the Flagger endpoint and the deploy freeze (on every replica, so a standby behind the
//! Service answers like the leader). It also carries the controllers' triggers: every change the
//! watch sees, and every SLO the reader wakes, goes to the running controller of its scope.

mod decode;
mod health;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use futures::channel::mpsc::{UnboundedReceiver, UnboundedSender, unbounded};
use kube::api::{ApiResource, DynamicObject, ObjectMeta};
use kube::runtime::reflector::{self, ObjectRef, Store, reflector};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use tokio::task::JoinHandle;

use crate::api::ServiceLevelObjective;
use crate::controller::Scope;
pub use decode::Unreadable;
use decode::{Decoder, Unreadables};
use health::WatchHealth;

/// A watch failing for longer than this makes the cache stale: /readyz says so, and the deploy
/// freeze admits (with a warning) rather than judge from an old copy (`--cache-stale-after`).
pub const STALE_AFTER: Duration = Duration::from_secs(120);

type Trigger = Arc<Mutex<Option<UnboundedSender<Arc<ServiceLevelObjective>>>>>;

/// One watched scope: its store, and the trigger of the controller running over it, if any.
#[derive(Debug)]
struct Watched {
    store: Store<ServiceLevelObjective>,
    trigger: Trigger,
    health: Arc<WatchHealth>,
}

#[derive(Debug)]
pub struct SloCache {
    scopes: Vec<Watched>,
    /// Scopes that have listed every SLO once.
    synced: Arc<AtomicUsize>,
    /// SLOs left out because they cannot be read.
    unreadable: Arc<Unreadables>,
    /// In milliseconds: see [`STALE_AFTER`].
    stale_after: std::sync::atomic::AtomicU64,
}

/// What the cache keeps of an SLO's metadata: what names it, versions it and governs its
/// deletion. Labels, annotations (client-side apply keeps a whole copy of the object in one),
/// owner references and managedFields (the largest part of a stored object) are dropped:
/// nothing in the operator reads them, and at 10,000 SLOs they would be a fifth of the cache.
fn slim(slo: &mut ServiceLevelObjective) {
    let meta = std::mem::take(&mut slo.metadata);
    slo.metadata = ObjectMeta {
        name: meta.name,
        namespace: meta.namespace,
        uid: meta.uid,
        resource_version: meta.resource_version,
        generation: meta.generation,
        creation_timestamp: meta.creation_timestamp,
        deletion_timestamp: meta.deletion_timestamp,
        finalizers: meta.finalizers,
        ..ObjectMeta::default()
    };
}

fn send(trigger: &Trigger, slo: Arc<ServiceLevelObjective>) {
    let guard = trigger.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(tx) = guard.as_ref() {
        let _ = tx.unbounded_send(slo);
    }
}

impl SloCache {
    /// Starts one watch per watched namespace (or one over all), and returns the cache and the
    /// tasks that feed it.
    pub fn start(client: &Client, scope: &Scope) -> (Arc<SloCache>, Vec<JoinHandle<()>>) {
        // Untyped, so one object this version cannot read does not fail the whole list.
        let kind = ApiResource::erase::<ServiceLevelObjective>(&());
        let apis: Vec<Api<DynamicObject>> = if scope.namespaces.is_empty() {
            vec![Api::all_with(client.clone(), &kind)]
        } else {
            scope
                .namespaces
                .iter()
                .map(|ns| Api::namespaced_with(client.clone(), ns, &kind))
                .collect()
        };
        let unreadable = Arc::new(Unreadables::default());
        let synced = Arc::new(AtomicUsize::new(0));
        let mut scopes = Vec::new();
        let mut tasks = Vec::new();
        for api in apis {
            let mut config = watcher::Config::default().any_semantic();
            if let Some(selector) = &scope.selector {
                config = config.labels(selector);
            }
            let (reader, writer) = reflector::store();
            let trigger: Trigger = Arc::default();
            let (seen, store, feed) = (synced.clone(), reader.clone(), trigger.clone());
            let health = Arc::new(WatchHealth::default());
            let watch_health = health.clone();
            let mut listed = false;
            let mut decoder = Decoder::new(unreadable.clone());
            let typed = watcher(api, config)
                .default_backoff()
                .filter_map(move |event| {
                    futures::future::ready(match event {
                        Ok(event) => decoder.event(event).map(Ok),
                        Err(e) => Some(Err(e)),
                    })
                })
                .modify(slim);
            let events = reflector(writer, typed);
            tasks.push(tokio::spawn(events.for_each(move |event| {
                match &event {
                    // Init only says a (re)list is starting, not that it got an answer.
                    Ok(watcher::Event::Init) => {}
                    Ok(_) => watch_health.worked(),
                    Err(e) => watch_health.failed(e.to_string()),
                }
                match &event {
                    // A (re)list's objects reach the store only at its end: each of them is
                    // news to a running controller, which may have subscribed to an empty store.
                    Ok(watcher::Event::InitDone) => {
                        if !listed {
                            listed = true;
                            seen.fetch_add(1, Ordering::SeqCst);
                        }
                        for slo in store.state() {
                            send(&feed, slo);
                        }
                    }
                    Ok(watcher::Event::Apply(slo)) => {
                        if let Some(cached) = store.get(&ObjectRef::from_obj(slo)) {
                            send(&feed, cached);
                        }
                    }
                    _ => {}
                }
                futures::future::ready(())
            })));
            scopes.push(Watched {
                store: reader,
                trigger,
                health,
            });
        }
        let cache = SloCache {
            scopes,
            synced,
            unreadable,
            stale_after: (STALE_AFTER.as_millis() as u64).into(),
        };
        (Arc::new(cache), tasks)
    }

    /// A cache that holds exactly these SLOs, listed (for tests and tools).
    pub fn of(slos: Vec<ServiceLevelObjective>) -> SloCache {
        let (reader, mut writer) = reflector::store();
        for mut slo in slos {
            slim(&mut slo);
            writer.apply_watcher_event(&watcher::Event::Apply(slo));
        }
        SloCache {
            scopes: vec![Watched {
                store: reader,
                trigger: Arc::default(),
                health: Arc::default(),
            }],
            synced: Arc::new(AtomicUsize::new(1)),
            unreadable: Arc::default(),
            stale_after: (STALE_AFTER.as_millis() as u64).into(),
        }
    }

    /// The SLOs left out because this version cannot read them.
    pub fn unreadable(&self) -> Vec<Unreadable> {
        self.unreadable.all()
    }

    /// How many SLOs are left out because this version cannot read them.
    pub fn unreadable_count(&self) -> usize {
        self.unreadable.len()
    }

    /// The unreadable SLOs no Event has named yet; they count as named from now on.
    pub fn take_unreported(&self) -> Vec<Unreadable> {
        self.unreadable.take_unreported()
    }

    /// Sets how long a failing watch may fail before the copy counts as stale.
    pub fn set_stale_after(&self, bound: Duration) {
        let millis = bound.as_millis().min(u64::MAX as u128) as u64;
        self.stale_after.store(millis, Ordering::Relaxed);
    }

    /// Whether the copy is stale (a watch has failed for longer than the bound): for how long,
    /// and the last error.
    pub fn stale(&self) -> Option<(Duration, String)> {
        let bound = Duration::from_millis(self.stale_after.load(Ordering::Relaxed));
        self.scopes.iter().find_map(|s| s.health.failing_for(bound))
    }

    /// Whether every watch has listed once.
    pub fn synced(&self) -> bool {
        self.synced.load(Ordering::SeqCst) >= self.scopes.len()
    }

    /// The stores, one per watched scope.
    pub fn stores(&self) -> Vec<Store<ServiceLevelObjective>> {
        self.scopes.iter().map(|s| s.store.clone()).collect()
    }

    /// Every SLO now.
    pub fn all(&self) -> Vec<Arc<ServiceLevelObjective>> {
        self.scopes.iter().flat_map(|s| s.store.state()).collect()
    }

    /// One SLO: `None` until every watch has listed once, then whether it exists.
    pub fn find(&self, namespace: &str, name: &str) -> Option<Option<Arc<ServiceLevelObjective>>> {
        if !self.synced() {
            return None;
        }
        let key = ObjectRef::new(name).within(namespace);
        Some(self.scopes.iter().find_map(|s| s.store.get(&key)))
    }

    /// The SLOs of a namespace, or `None` until every watch has listed once.
    pub fn snapshot(&self, namespace: &str) -> Option<Vec<Arc<ServiceLevelObjective>>> {
        if !self.synced() {
            return None;
        }
        Some(
            self.scopes
                .iter()
                .flat_map(|s| s.store.state())
                .filter(|slo| slo.metadata.namespace.as_deref() == Some(namespace))
                .collect(),
        )
    }

    /// For a controller starting over every scope: each scope's store and a trigger stream, fed
    /// from now on with every change, and at once with every SLO already listed (so a new leader
    /// looks at each SLO once).
    pub fn subscribe(
        &self,
    ) -> Vec<(
        Store<ServiceLevelObjective>,
        UnboundedReceiver<Arc<ServiceLevelObjective>>,
    )> {
        self.scopes
            .iter()
            .map(|s| {
                let (tx, rx) = unbounded();
                for slo in s.store.state() {
                    let _ = tx.unbounded_send(slo);
                }
                *s.trigger.lock().unwrap_or_else(|p| p.into_inner()) = Some(tx);
                (s.store.clone(), rx)
            })
            .collect()
    }

    /// Stops feeding the controllers (the term ended).
    pub fn unsubscribe(&self) {
        for s in &self.scopes {
            *s.trigger.lock().unwrap_or_else(|p| p.into_inner()) = None;
        }
    }

    /// Asks the running controllers to reconcile these SLOs (the reader found new readings).
    pub fn wake(&self, slos: &[Arc<ServiceLevelObjective>]) {
        for slo in slos {
            let key = ObjectRef::from_obj(slo.as_ref());
            if let Some(scope) = self.scopes.iter().find(|s| s.store.get(&key).is_some()) {
                send(&scope.trigger, slo.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_keeps_identity_version_and_deletion_and_drops_the_rest() {
        let mut slo: ServiceLevelObjective = serde_json::from_value(serde_json::json!({
            "apiVersion": "plimsoll.dev/v1alpha1", "kind": "ServiceLevelObjective",
            "metadata": {"name": "a", "namespace": "n", "uid": "u", "resourceVersion": "7",
                         "generation": 3, "finalizers": ["plimsoll.dev/cleanup"],
                         "deletionTimestamp": "2026-12-01T00:00:00Z",
                         "labels": {"team": "x"},
                         "annotations": {LAST_APPLIED_FOR_TEST: "{}", "note": "y"},
                         "managedFields": [{"manager": "kubectl", "operation": "Apply"}]},
            "spec": {"service": "s", "objective": 99.9, "window": "30d",
                     "indicator": {"ratio": {"errors": "e", "total": "t"}}}
        }))
        .unwrap();
        slim(&mut slo);
        let m = &slo.metadata;
        assert_eq!(
            (m.name.as_deref(), m.namespace.as_deref()),
            (Some("a"), Some("n"))
        );
        assert_eq!(
            (m.uid.as_deref(), m.resource_version.as_deref()),
            (Some("u"), Some("7"))
        );
        assert_eq!(m.generation, Some(3));
        assert_eq!(
            m.finalizers.as_deref(),
            Some(&["plimsoll.dev/cleanup".to_string()][..])
        );
        assert!(m.deletion_timestamp.is_some());
        assert!(m.labels.is_none() && m.annotations.is_none() && m.managed_fields.is_none());
        assert_eq!(slo.spec.service, "s");
    }

    const LAST_APPLIED_FOR_TEST: &str = "kubectl.kubernetes.io/last-applied-configuration";
}
