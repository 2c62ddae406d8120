//! The real control plane of one measurement (tests/support/kube.rs: etcd, kube-apiserver,
//! kube-controller-manager, kube-scheduler, kwok), with the CRDs, the chart released as far as
//! RBAC goes (tests/support/release.rs: ServiceAccount, ClusterRole and binding, a token), an
//! audit log of the operator's ServiceAccount alone, and an admin client that seeds and edits
//! SLOs and watches the PrometheusRules (metadata only) as they appear.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, PartialObjectMeta, Patch,
    PatchParams, PostParams,
};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Value, json};

use crate::audit::{self, AuditLog};
use crate::processes::{NAMESPACES, Seeded, rss_of};
use crate::release::Release;
use crate::support::cluster::{RULE_CRD, SLO_CRD, apply_crds, shared_schema};
use crate::support::kube::ControlPlane;
use crate::support::repo;

/// Admin requests in flight at once while seeding.
pub const SEEDING_IN_FLIGHT: usize = 32;

fn resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

fn slo_resource() -> ApiResource {
    resource(
        "plimsoll.dev",
        "v1alpha1",
        "ServiceLevelObjective",
        "servicelevelobjectives",
    )
}

fn rule_resource() -> ApiResource {
    resource(
        "monitoring.coreos.com",
        "v1",
        "PrometheusRule",
        "prometheusrules",
    )
}

/// Everything but the operator and Prometheus. Dropped in field order: the watch first, the
/// control plane last.
pub struct Plane {
    runtime: tokio::runtime::Runtime,
    client: kube::Client,
    /// The PrometheusRules that exist, as (namespace, name), from the watch.
    rules: Arc<Mutex<HashSet<(String, String)>>>,
    pub audit: AuditLog,
    pub release: Release,
    /// kube-apiserver's gitVersion.
    pub version: String,
    pub plane: ControlPlane,
}

impl Plane {
    pub fn start() -> Plane {
        let plane = ControlPlane::try_start_with(&audit::policy())
            .unwrap_or_else(|e| panic!("control plane: {e}"));
        apply_crds(
            plane.access(),
            &[
                repo().join("crds"),
                shared_schema("prometheusrules-crd.yaml"),
            ],
            &[],
            &[SLO_CRD, RULE_CRD],
        );
        let release = Release::install_on(
            plane.access(),
            "plimsoll",
            audit::RELEASE_NAMESPACE,
            &json!({}),
        );
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let client = runtime.block_on(plane.access().client());
        let version = runtime
            .block_on(client.apiserver_version())
            .map_or_else(|e| format!("unknown ({e})"), |v| v.git_version);
        let rules = Arc::new(Mutex::new(HashSet::new()));
        let seen = rules.clone();
        // Metadata only: the bench needs the names, not 10,000 rule groups.
        let api: Api<PartialObjectMeta<DynamicObject>> =
            Api::all_with(client.clone(), &rule_resource());
        runtime.spawn(async move {
            let stream = watcher(api, watcher::Config::default()).default_backoff();
            let mut stream = std::pin::pin!(stream);
            while let Some(event) = stream.next().await {
                let Ok(event) = event else { continue };
                let mut rules = seen.lock().unwrap();
                match event {
                    watcher::Event::Apply(o) | watcher::Event::InitApply(o) => {
                        rules.insert((
                            o.metadata.namespace.unwrap_or_default(),
                            o.metadata.name.unwrap_or_default(),
                        ));
                    }
                    watcher::Event::Delete(o) => {
                        rules.remove(&(
                            o.metadata.namespace.unwrap_or_default(),
                            o.metadata.name.unwrap_or_default(),
                        ));
                    }
                    watcher::Event::Init | watcher::Event::InitDone => {}
                }
            }
        });
        Plane {
            runtime,
            client,
            rules,
            audit: AuditLog::new(&plane.access().audit_log),
            release,
            version,
            plane,
        }
    }

    fn slos(&self, namespace: &str) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), namespace, &slo_resource())
    }

    /// Creates `team-0` to `team-99` and SLOs 0 to `count` - 1 as admin, many at once.
    pub fn seed(&self, count: usize) -> Vec<Seeded> {
        let client = self.client.clone();
        self.runtime.block_on(async {
            let namespaces: Api<Namespace> = Api::all(client);
            futures::stream::iter(0..NAMESPACES)
                .map(|i| {
                    let namespaces = namespaces.clone();
                    async move {
                        let object: Namespace = serde_json::from_value(
                            json!({"metadata": {"name": format!("team-{i}")}}),
                        )
                        .unwrap();
                        namespaces.create(&PostParams::default(), &object).await
                    }
                })
                .buffer_unordered(SEEDING_IN_FLIGHT)
                .try_collect::<Vec<_>>()
                .await
                .unwrap_or_else(|e| panic!("creating the namespaces: {e}"));
        });
        let mut seeded: Vec<Seeded> = self.runtime.block_on(
            futures::stream::iter(0..count)
                .map(|i| self.create(i))
                .buffer_unordered(SEEDING_IN_FLIGHT)
                .collect(),
        );
        seeded.sort_by_key(|s| s.index);
        seeded
    }

    /// Creates SLO `index` (tried again after a 429, a 5xx or a failed connection, at most 10
    /// times).
    async fn create(&self, index: usize) -> Seeded {
        let object = crate::processes::slo(index, 99.9);
        let namespace = object["metadata"]["namespace"]
            .as_str()
            .unwrap()
            .to_string();
        let dynamic: DynamicObject = serde_json::from_value(object).unwrap();
        let api = self.slos(&namespace);
        let mut tries: u64 = 0;
        let stored = loop {
            match api.create(&PostParams::default(), &dynamic).await {
                Ok(stored) => break stored,
                Err(kube::Error::Api(status)) if ![429, 500, 503, 504].contains(&status.code) => {
                    panic!("creating SLO {index}: {status:?}")
                }
                Err(e) if tries < 10 => {
                    tries += 1;
                    eprintln!("creating SLO {index}: {e}; again");
                    tokio::time::sleep(Duration::from_millis(200 * tries)).await;
                }
                Err(e) => panic!("creating SLO {index}: {e}"),
            }
        };
        Seeded {
            index,
            namespace,
            name: stored.metadata.name.unwrap_or_default(),
            uid: stored.metadata.uid.unwrap_or_default(),
        }
    }

    /// Creates SLO `index` (churn).
    pub fn add(&self, index: usize) -> Seeded {
        self.runtime.block_on(self.create(index))
    }

    pub fn delete(&self, namespace: &str, name: &str) {
        self.runtime
            .block_on(self.slos(namespace).delete(name, &DeleteParams::default()))
            .unwrap_or_else(|e| panic!("deleting SLO {namespace}/{name}: {e}"));
    }

    /// Sets an SLO's objective (a merge patch, as a person's `kubectl patch`).
    pub fn set_objective(&self, namespace: &str, name: &str, objective: f64) {
        let patch: Value = json!({"spec": {"objective": objective}});
        self.runtime
            .block_on(self.slos(namespace).patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(&patch),
            ))
            .unwrap_or_else(|e| panic!("editing SLO {namespace}/{name}: {e}"));
    }

    /// Drops from `wanted` the (namespace, name) pairs whose PrometheusRule exists.
    pub fn retain_missing_rules(&self, wanted: &mut Vec<(String, String)>) {
        let rules = self.rules.lock().unwrap();
        wanted.retain(|key| !rules.contains(key));
    }

    /// VmRSS and VmHWM (MiB) of a component: `kube-apiserver`, `etcd`...
    pub fn rss(&self, component: &str) -> (f64, f64) {
        self.plane
            .pid(component)
            .map_or((f64::NAN, f64::NAN), rss_of)
    }
}
