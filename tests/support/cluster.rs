//! The operator's surroundings on the real control plane of this test process
//! ([`super::kube::shared`]): the CRDs, one namespace per test, the chart's RBAC for an operator
//! watching that namespace with its ServiceAccount's token, and blocking reads and writes of
//! objects in that namespace as other field managers do them (a person's `kubectl`, Helm, Argo
//! Rollouts).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use serde_json::{Value, json};

use super::helm;
use super::kube::{Access, shared};
use super::repo;

pub const SLO_CRD: &str = "servicelevelobjectives.plimsoll.dev";
pub const RULE_CRD: &str = "prometheusrules.monitoring.coreos.com";
pub const ROLLOUT_CRD: &str = "rollouts.argoproj.io";
pub const ANALYSIS_TEMPLATE_CRD: &str = "analysistemplates.argoproj.io";

/// A schema file of ../shared/schemas (read there, never copied into the repository).
pub fn shared_schema(file: &str) -> PathBuf {
    [
        repo().join("../shared/schemas").join(file),
        PathBuf::from("/work/shared/schemas").join(file),
    ]
    .into_iter()
    .find(|p| p.exists())
    .unwrap_or_else(|| panic!("{file} in ../shared/schemas"))
}

/// A stand-in for Argo Rollouts' Rollout CRD, which ../shared/schemas does not hold: the same
/// group, version, names, scope and subresources (status, scale), with an open schema. The
/// operator reads and writes only metadata and `status.abort`.
pub const ROLLOUT_CRD_STAND_IN: &str = r#"{
  "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
  "metadata": {"name": "rollouts.argoproj.io"},
  "spec": {
    "group": "argoproj.io", "scope": "Namespaced",
    "names": {"kind": "Rollout", "listKind": "RolloutList", "plural": "rollouts",
              "singular": "rollout", "shortNames": ["ro"]},
    "versions": [{
      "name": "v1alpha1", "served": true, "storage": true,
      "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
      "subresources": {"status": {}, "scale": {
        "specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.HPAReplicas",
        "labelSelectorPath": ".status.selector"}}
    }]
  }
}"#;

/// Pyrra's CRD: the same kind (`ServiceLevelObjective`) and plural as ours, short name `slo`.
pub const PYRRA_CRD: &str = "servicelevelobjectives.pyrra.dev";

/// A stand-in for Pyrra's CRD (pyrra-dev/pyrra, config/crd/bases/pyrra.dev_servicelevelobjectives
/// .yaml), which ../shared does not hold: the same group, version, names (kind, plural, singular,
/// short name `slo`) and scope, with an open schema. Only the names matter to kubectl's choice.
pub const PYRRA_CRD_STAND_IN: &str = r#"{
  "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
  "metadata": {"name": "servicelevelobjectives.pyrra.dev"},
  "spec": {
    "group": "pyrra.dev", "scope": "Namespaced",
    "names": {"kind": "ServiceLevelObjective", "listKind": "ServiceLevelObjectiveList",
              "plural": "servicelevelobjectives", "singular": "servicelevelobjective",
              "shortNames": ["slo"]},
    "versions": [{
      "name": "v1alpha1", "served": true, "storage": true,
      "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}
    }]
  }
}"#;

/// Pyrra's CRD as its repository has it, when ../shared holds it (schemas/ or peers/pyrra/,
/// under the upstream file name); `None` otherwise.
pub fn pyrra_crd_file() -> Option<PathBuf> {
    let name = "pyrra.dev_servicelevelobjectives.yaml";
    [
        repo().join("../shared/schemas").join(name),
        repo().join("../shared/peers/pyrra").join(name),
        PathBuf::from("/work/shared/schemas").join(name),
        PathBuf::from("/work/shared/peers/pyrra").join(name),
    ]
    .into_iter()
    .find(|p| p.exists())
}

/// Applies CRDs server-side (files or JSON texts) and waits until they are Established.
pub fn apply_crds(kube: &Access, files: &[PathBuf], texts: &[&str], names: &[&str]) {
    for file in files {
        kube.kubectl(&["apply", "--server-side", "-f", file.to_str().unwrap()])
            .expect_ok("kubectl apply CRD");
    }
    for text in texts {
        kube.kubectl_stdin(&["apply", "--server-side", "-f", "-"], text)
            .expect_ok("kubectl apply CRD");
    }
    let mut args = vec![
        "wait".to_string(),
        "--for=condition=Established".to_string(),
        "--timeout=60s".to_string(),
    ];
    args.extend(names.iter().map(|n| format!("crd/{n}")));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    kube.kubectl(&args).expect_ok("CRDs Established");
}

/// The SLO CRD of crds/, the PrometheusRule and AnalysisTemplate CRDs of ../shared/schemas and
/// the Rollout stand-in, once per process.
pub fn crds() -> &'static Access {
    static APPLIED: OnceLock<()> = OnceLock::new();
    let kube = shared();
    APPLIED.get_or_init(|| {
        apply_crds(
            kube,
            &[
                repo().join("crds"),
                shared_schema("prometheusrules-crd.yaml"),
                shared_schema("analysis-template-crd.yaml"),
            ],
            &[ROLLOUT_CRD_STAND_IN],
            &[SLO_CRD, RULE_CRD, ANALYSIS_TEMPLATE_CRD, ROLLOUT_CRD],
        );
    });
    kube
}

/// A manifest with its SLO's namespace (the `metadata.namespace` line) set to `namespace`; the
/// text otherwise unchanged, so what cannot be parsed stays so.
pub fn in_namespace(text: &str, namespace: &str) -> String {
    text.lines()
        .map(|l| match l.starts_with("  namespace: ") {
            true => format!("  namespace: {namespace}"),
            false => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// A namespace of its own for each caller in this process: `<prefix>-<n>`, created.
pub fn fresh_namespace(kube: &Access, prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    kube.namespace(&format!("{prefix}-{n}"))
}

/// The chart's RBAC for release `plimsoll` in `namespace` watching only `namespace`
/// (`watchNamespaces`: a Role there, no cluster-wide object, so tests in one process cannot
/// overwrite each other's bindings), rendered by Helm's engine: the ServiceAccount, the Roles and
/// their bindings. Returns the Lease name the chart gives the operator.
pub fn apply_chart_rbac(kube: &Access, namespace: &str) -> String {
    apply_chart_rbac_with(kube, namespace, json!({}))
}

/// [`apply_chart_rbac`] rendered with these values too (such as
/// `{"rollback": {"actions": {"enabled": false}}}`); `watchNamespaces` is always `[namespace]`.
pub fn apply_chart_rbac_with(kube: &Access, namespace: &str, mut values: Value) -> String {
    values["watchNamespaces"] = json!([namespace]);
    let rendered = helm::render_as("plimsoll", namespace, &values);
    let lease = rendered
        .env_value("PLIMSOLL_LEASE_NAME")
        .expect("the chart names the Lease");
    let applied = apply_kinds(
        kube,
        &rendered.objects,
        &["ServiceAccount", "Role", "RoleBinding"],
    );
    assert_eq!(applied, 5, "{:#?}", rendered.objects);
    lease
}

/// Applies server-side, as one List, those of `objects` whose kind is one of `kinds`; returns
/// how many.
pub fn apply_kinds(kube: &Access, objects: &[Value], kinds: &[&str]) -> usize {
    let items: Vec<&Value> = objects
        .iter()
        .filter(|o| kinds.contains(&o["kind"].as_str().unwrap_or_default()))
        .collect();
    let list = json!({"apiVersion": "v1", "kind": "List", "items": items});
    kube.kubectl_stdin(&["apply", "--server-side", "-f", "-"], &list.to_string())
        .expect_ok("applying the chart's objects");
    items.len()
}

/// A token of the chart's ServiceAccount `plimsoll` in `namespace`.
pub fn service_account_token(kube: &Access, namespace: &str) -> String {
    kube.kubectl(&[
        "create",
        "token",
        "plimsoll",
        "-n",
        namespace,
        "--duration=2h",
    ])
    .expect_ok("kubectl create token")
    .trim()
    .to_string()
}

/// `plimsoll run`'s flags for an operator that watches `namespace` alone and keeps its Lease
/// `lease` there, as `identity`.
pub fn scoped_operator_flags(namespace: &str, lease: &str, identity: &str) -> Vec<String> {
    vec![
        format!("--watch-namespace={namespace}"),
        format!("--lease-namespace={namespace}"),
        format!("--lease-name={lease}"),
        format!("--identity={identity}"),
    ]
}

/// A kubeconfig for a plain-HTTP server (such as a fault proxy) with a bearer token.
pub fn http_token_kubeconfig(file: &Path, server: &str, token: &str, namespace: &str) {
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: proxied\n  cluster:\n    server: {server}\n\
         users:\n- name: token\n  user:\n    token: {token}\n\
         contexts:\n- name: proxied\n  context: {{cluster: proxied, user: token, namespace: {namespace}}}\n\
         current-context: proxied\n"
    );
    std::fs::write(file, text).unwrap();
}

/// Where a kind lives in the API.
pub fn resource(api_version: &str, kind: &str) -> ApiResource {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let plural = match kind {
        "ServiceLevelObjective" => "servicelevelobjectives",
        "PrometheusRule" => "prometheusrules",
        "Deployment" => "deployments",
        "StatefulSet" => "statefulsets",
        "Rollout" => "rollouts",
        "AnalysisTemplate" => "analysistemplates",
        "Event" => "events",
        "Lease" => "leases",
        other => panic!("no plural known for {other}"),
    };
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

/// One namespace of the real control plane, read and written as admin under field managers the
/// caller names.
pub struct Namespace {
    pub kube: &'static Access,
    pub name: String,
    runtime: tokio::runtime::Runtime,
    client: kube::Client,
}

/// A manager's entry in `metadata.managedFields`.
#[derive(Debug, Clone)]
pub struct Manager {
    pub manager: String,
    pub operation: String,
    pub subresource: String,
    pub fields: Value,
}

impl Namespace {
    /// A new namespace `<prefix>-<n>` on the process' control plane, with the CRDs installed.
    pub fn new(prefix: &str) -> Namespace {
        Namespace::on(crds(), prefix)
    }

    /// A new namespace `<prefix>-<n>` on another control plane (a test's own, with the CRDs it
    /// chose), installing nothing.
    pub fn on(kube: &'static Access, prefix: &str) -> Namespace {
        let name = fresh_namespace(kube, prefix);
        Namespace::existing(kube, name)
    }

    /// The namespace `name` itself (created) on the process' control plane, with the CRDs
    /// installed: for a test binary of one test whose data names its namespace.
    pub fn named(name: &str) -> Namespace {
        let kube = crds();
        Namespace::existing(kube, kube.namespace(name))
    }

    fn existing(kube: &'static Access, name: String) -> Namespace {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let client = runtime.block_on(kube.client());
        Namespace {
            kube,
            name,
            runtime,
            client,
        }
    }

    pub fn client(&self) -> kube::Client {
        self.client.clone()
    }

    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    fn api(&self, api_version: &str, kind: &str) -> Api<DynamicObject> {
        Api::namespaced_with(
            self.client.clone(),
            &self.name,
            &resource(api_version, kind),
        )
    }

    /// An object of this world as JSON, its namespace set to this one.
    fn here(&self, mut object: Value) -> Value {
        object["metadata"]["namespace"] = json!(self.name);
        object
    }

    pub fn get(&self, api_version: &str, kind: &str, name: &str) -> Option<Value> {
        let api = self.api(api_version, kind);
        self.block_on(api.get_opt(name))
            .unwrap_or_else(|e| panic!("get {kind} {name}: {e}"))
            .map(|o| serde_json::to_value(o).unwrap())
    }

    pub fn list(&self, api_version: &str, kind: &str) -> Vec<Value> {
        let api = self.api(api_version, kind);
        self.block_on(api.list(&Default::default()))
            .unwrap_or_else(|e| panic!("list {kind}: {e}"))
            .items
            .into_iter()
            .map(|o| serde_json::to_value(o).unwrap())
            .collect()
    }

    /// Creates an object as `manager` (an Update in managedFields); a status in it is dropped
    /// where the kind has a status subresource, as the server does.
    pub fn create_as(&self, manager: &str, object: Value) -> Value {
        let kind = object["kind"].clone();
        self.try_create_as(manager, object)
            .unwrap_or_else(|e| panic!("create {kind}: {e}"))
    }

    /// [`Namespace::create_as`], with the server's refusal as an error.
    pub fn try_create_as(&self, manager: &str, object: Value) -> Result<Value, kube::Error> {
        let object = self.here(object);
        let (api_version, kind) = (
            object["apiVersion"].as_str().unwrap().to_string(),
            object["kind"].as_str().unwrap().to_string(),
        );
        let dynamic: DynamicObject = serde_json::from_value(object).unwrap();
        let params = PostParams {
            field_manager: Some(manager.into()),
            ..PostParams::default()
        };
        let api = self.api(&api_version, &kind);
        self.block_on(api.create(&params, &dynamic))
            .map(|created| serde_json::to_value(created).unwrap())
    }

    /// Server-side apply as `manager`, without force (a conflict is an error).
    pub fn apply_as(&self, manager: &str, object: Value) -> Result<Value, kube::Error> {
        let object = self.here(object);
        let api = self.api(
            object["apiVersion"].as_str().unwrap(),
            object["kind"].as_str().unwrap(),
        );
        let name = object["metadata"]["name"].as_str().unwrap().to_string();
        self.block_on(api.patch(&name, &PatchParams::apply(manager), &Patch::Apply(&object)))
            .map(|o| serde_json::to_value(o).unwrap())
    }

    /// A JSON merge patch as `manager`, of the object or of its status subresource.
    pub fn merge_as(
        &self,
        manager: &str,
        (api_version, kind): (&str, &str),
        name: &str,
        patch: Value,
        status: bool,
    ) -> Result<Value, kube::Error> {
        let api = self.api(api_version, kind);
        let params = PatchParams {
            field_manager: Some(manager.into()),
            ..PatchParams::default()
        };
        let patch = Patch::Merge(&patch);
        let patched = if status {
            self.block_on(api.patch_status(name, &params, &patch))
        } else {
            self.block_on(api.patch(name, &params, &patch))
        };
        patched.map(|o| serde_json::to_value(o).unwrap())
    }

    /// DELETE (background propagation, the default); false when it was not there.
    pub fn delete(&self, api_version: &str, kind: &str, name: &str) -> bool {
        let api = self.api(api_version, kind);
        match self.block_on(api.delete(name, &DeleteParams::default())) {
            Ok(_) => true,
            Err(kube::Error::Api(s)) if s.code == 404 => false,
            Err(e) => panic!("delete {kind} {name}: {e}"),
        }
    }

    /// Who owns what in an object (its managedFields).
    pub fn managers(&self, api_version: &str, kind: &str, name: &str) -> Vec<Manager> {
        let Some(object) = self.get(api_version, kind, name) else {
            return Vec::new();
        };
        object["metadata"]["managedFields"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|m| Manager {
                manager: m["manager"].as_str().unwrap_or_default().to_string(),
                operation: m["operation"].as_str().unwrap_or_default().to_string(),
                subresource: m["subresource"].as_str().unwrap_or_default().to_string(),
                fields: m["fieldsV1"].clone(),
            })
            .collect()
    }

    /// The managers owning one field, given as its path of keys (`["metadata", "annotations",
    /// "plimsoll.dev/rollback"]`).
    pub fn owners(&self, api_version: &str, kind: &str, name: &str, path: &[&str]) -> Vec<String> {
        self.managers(api_version, kind, name)
            .into_iter()
            .filter(|m| {
                path.iter()
                    .try_fold(&m.fields, |node, key| node.get(format!("f:{key}")))
                    .is_some()
            })
            .map(|m| m.manager)
            .collect()
    }
}

/// Polls `done` every 100 ms until it holds or `limit` passes; whether it held.
pub fn wait_for(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until `done`, at most `limit`; fails the test naming `what` otherwise.
pub fn wait_until(what: &str, limit: Duration, done: impl FnMut() -> bool) {
    assert!(wait_for(limit, done), "{what}: not within {limit:?}");
}

/// The chart's RBAC in the namespace and a token of its ServiceAccount: what an operator
/// watching only `namespace` runs with. Returns (the chart's Lease name, the token).
pub fn operator_credentials(kube: &Access, namespace: &str) -> (String, String) {
    let lease = apply_chart_rbac(kube, namespace);
    (lease, service_account_token(kube, namespace))
}

impl Namespace {
    /// A kube client authenticated with `token` (over TLS, straight to the API server), on this
    /// namespace's runtime.
    pub fn token_client(&self, token: &str) -> kube::Client {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("kubeconfig");
        self.kube.token_kubeconfig(&file, token, &self.name);
        let kubeconfig = kube::config::Kubeconfig::read_from(&file).unwrap();
        self.block_on(async {
            let config = kube::Config::from_custom_kubeconfig(
                kubeconfig,
                &kube::config::KubeConfigOptions::default(),
            )
            .await
            .unwrap();
            kube::Client::try_from(config).unwrap()
        })
    }

    /// Events of this namespace with this field selector, such as `regarding.uid=...`.
    pub fn events_where(&self, fields: &str) -> Vec<Value> {
        let api = self.api("events.k8s.io/v1", "Event");
        let params = kube::api::ListParams::default().fields(fields);
        self.block_on(api.list(&params))
            .unwrap_or_else(|e| panic!("list Events {fields}: {e}"))
            .items
            .into_iter()
            .map(|o| serde_json::to_value(o).unwrap())
            .collect()
    }
}
