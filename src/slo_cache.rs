//! The SLOs every replica sees: a reflector cache on each replica (the controllers' caches exist
//! on the leader only), over the same namespaces and selector as the controllers. The Flagger
//! endpoint and the deploy freeze answer from it, so a standby behind the Service answers like
//! the leader.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::StreamExt;
use kube::runtime::reflector::{self, Store, reflector};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use tokio::task::JoinHandle;

use crate::api::ServiceLevelObjective;
use crate::controller::Scope;

#[derive(Debug)]
pub struct SloCache {
    stores: Vec<Store<ServiceLevelObjective>>,
    /// Scopes that have listed every SLO once.
    synced: Arc<AtomicUsize>,
}

impl SloCache {
    /// Starts one watch per watched namespace (or one over all), and returns the cache and the
    /// tasks that feed it.
    pub fn start(client: &Client, scope: &Scope) -> (Arc<SloCache>, Vec<JoinHandle<()>>) {
        let apis: Vec<Api<ServiceLevelObjective>> = if scope.namespaces.is_empty() {
            vec![Api::all(client.clone())]
        } else {
            scope
                .namespaces
                .iter()
                .map(|ns| Api::namespaced(client.clone(), ns))
                .collect()
        };
        let synced = Arc::new(AtomicUsize::new(0));
        let mut stores = Vec::new();
        let mut tasks = Vec::new();
        for api in apis {
            let mut config = watcher::Config::default().any_semantic();
            if let Some(selector) = &scope.selector {
                config = config.labels(selector);
            }
            let (reader, writer) = reflector::store();
            let seen = synced.clone();
            let mut listed = false;
            let events = reflector(
                writer,
                watcher(api, config)
                    .default_backoff()
                    .modify(|slo| slo.managed_fields_mut().clear()),
            );
            tasks.push(tokio::spawn(events.for_each(move |event| {
                if !listed && matches!(event, Ok(watcher::Event::InitDone)) {
                    listed = true;
                    seen.fetch_add(1, Ordering::SeqCst);
                }
                futures::future::ready(())
            })));
            stores.push(reader);
        }
        (Arc::new(SloCache { stores, synced }), tasks)
    }

    /// A cache that holds exactly these SLOs, listed (for tests and tools).
    pub fn of(slos: Vec<ServiceLevelObjective>) -> SloCache {
        let (reader, mut writer) = reflector::store();
        for slo in slos {
            writer.apply_watcher_event(&watcher::Event::Apply(slo));
        }
        SloCache {
            stores: vec![reader],
            synced: Arc::new(AtomicUsize::new(1)),
        }
    }

    /// One SLO: `None` until every watch has listed once, then whether it exists.
    pub fn find(&self, namespace: &str, name: &str) -> Option<Option<Arc<ServiceLevelObjective>>> {
        let slos = self.snapshot(namespace)?;
        Some(
            slos.into_iter()
                .find(|s| s.metadata.name.as_deref() == Some(name)),
        )
    }

    /// The SLOs of a namespace, or `None` until every watch has listed once.
    pub fn snapshot(&self, namespace: &str) -> Option<Vec<Arc<ServiceLevelObjective>>> {
        if self.synced.load(Ordering::SeqCst) < self.stores.len() {
            return None;
        }
        Some(
            self.stores
                .iter()
                .flat_map(|s| s.state())
                .filter(|slo| slo.metadata.namespace.as_deref() == Some(namespace))
                .collect(),
        )
    }
}
