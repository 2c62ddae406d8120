//! One test world: a namespace of its own on the real control plane of this test process
//! (tests/support/kube.rs: kube-apiserver, the controller-manager's Deployment controller and
//! garbage collector, kwok's pods), the chart's RBAC for an operator watching only that namespace,
//! a real Prometheus recording an SLO's series from constant rules (reloaded to change the
//! numbers), and the real `plimsoll run` with the chart's ServiceAccount token, talking to the API
//! server through a loopback fault proxy (tests/support/fault_proxy.rs) that counts its requests.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

use super::operator::Operator;
use super::support::cluster::{
    Namespace, http_token_kubeconfig, operator_credentials, scoped_operator_flags, wait_for,
};
use super::support::fault_proxy::FaultProxy;
use super::support::prometheus::{Prometheus, http, labelled_config};

pub const SLO_API: &str = "plimsoll.dev/v1alpha1";
pub const SLO_KIND: &str = "ServiceLevelObjective";

/// One SLO's recorded series: its labels and the error ratio of every window.
pub struct Series {
    pub labels: Vec<(String, String)>,
    pub ratio: f64,
}

impl Series {
    /// The series an SLO's own rules write: name, namespace, service (= name) and UID.
    pub fn own(w: &World, name: &str, ratio: f64) -> Series {
        let uid = w
            .slo(name)
            .expect("the SLO exists")
            .pointer("/metadata/uid")
            .and_then(Value::as_str)
            .unwrap()
            .to_string();
        Series {
            labels: vec![
                ("slo".into(), name.into()),
                ("slo_namespace".into(), w.namespace().into()),
                ("slo_service".into(), name.into()),
                ("slo_uid".into(), uid),
            ],
            ratio,
        }
    }

    pub fn with(mut self, label: &str, value: &str) -> Series {
        self.labels.push((label.into(), value.into()));
        self
    }
}

pub struct World {
    /// First, so that it stops before what it talks to.
    pub operator: Option<Operator>,
    pub proxy: FaultProxy,
    pub ns: Namespace,
    pub prometheus: Prometheus,
    rules: PathBuf,
    lease: String,
    token: String,
    dir: tempfile::TempDir,
}

const WINDOWS: [&str; 7] = ["5m", "30m", "1h", "2h", "6h", "1d", "3d"];

/// A rule file recording these series (every window's ratio, as constants) every second.
pub fn recording_rules(series: &[Series]) -> String {
    let mut out = String::from("groups:\n- name: recorded\n  interval: 1s\n  rules:\n");
    for s in series {
        let labels: Vec<String> = s
            .labels
            .iter()
            .map(|(k, v)| format!("{k}: {}", json!(v)))
            .collect();
        let labels = labels.join(", ");
        let mut records = vec!["slo:sli_error:ratio_window".to_string()];
        records.extend(
            WINDOWS
                .iter()
                .map(|w| format!("slo:sli_error:ratio_rate{w}")),
        );
        for record in records {
            out.push_str(&format!(
                "  - {{record: \"{record}\", expr: \"vector({})\", labels: {{{labels}}}}}\n",
                s.ratio
            ));
        }
    }
    out
}

impl World {
    /// A fresh namespace with the chart's RBAC and these objects (their namespace replaced);
    /// Prometheus records nothing until [`World::record`] is called.
    pub fn new(objects: Vec<Value>) -> World {
        World::in_cluster(objects, &[])
    }

    /// [`World::new`] with a Prometheus that has these external labels (such as
    /// `cluster="a"`), as one cluster's behind Thanos.
    pub fn in_cluster(objects: Vec<Value>, external_labels: &[(&str, &str)]) -> World {
        let ns = Namespace::new("trust");
        let (lease, token) = operator_credentials(ns.kube, &ns.name);
        let proxy = FaultProxy::start(&ns.kube.server, &ns.kube.ca);
        let dir = tempfile::tempdir().unwrap();
        let config = labelled_config(dir.path(), "groups: []\n", "1s", external_labels);
        let rules = dir.path().join("rules.yaml");
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let prometheus = Prometheus::start_with(&data, &config, &["--web.enable-lifecycle"]);
        let world = World {
            operator: None,
            proxy,
            ns,
            prometheus,
            rules,
            lease,
            token,
            dir,
        };
        for object in objects {
            world.seed(object);
        }
        world
    }

    pub fn namespace(&self) -> &str {
        &self.ns.name
    }

    /// Creates an object as the manager `seed`. A Deployment's revision is its controller's: it
    /// is rolled (a pod-template annotation changed) until the controller says the revision the
    /// object was given. A status goes through the status subresource.
    pub fn seed(&self, mut object: Value) {
        let kind = object["kind"].as_str().unwrap().to_string();
        let api_version = object["apiVersion"].as_str().unwrap().to_string();
        let name = object["metadata"]["name"].as_str().unwrap().to_string();
        let status = object.as_object_mut().unwrap().remove("status");
        let revision = (kind == "Deployment").then(|| {
            object["metadata"]["annotations"]
                .as_object_mut()
                .and_then(|a| a.remove(DEPLOYMENT_REVISION))
                .and_then(|r| r.as_str()?.parse::<u32>().ok())
                .unwrap_or(1)
        });
        self.ns.create_as("seed", object);
        if let Some(status) = status {
            self.ns
                .merge_as(
                    "seed",
                    (&api_version, &kind),
                    &name,
                    json!({"status": status}),
                    true,
                )
                .unwrap();
        }
        for release in 1..=revision.unwrap_or(0) {
            if release > 1 {
                self.ns
                    .merge_as(
                        "seed",
                        ("apps/v1", "Deployment"),
                        &name,
                        json!({"spec": {"template": {"metadata": {"annotations": {
                            "example.com/release": release.to_string()}}}}}),
                        false,
                    )
                    .unwrap();
            }
            let at = |w: &World| {
                annotations(&w.deployment(&name))
                    .get(DEPLOYMENT_REVISION)
                    .and_then(Value::as_str)
                    == Some(&release.to_string())
            };
            assert!(
                wait_for(Duration::from_secs(60), || at(self)),
                "Deployment {name} at revision {release}: {:#}",
                self.deployment(&name)["metadata"]
            );
        }
    }

    /// Prometheus records exactly these series from now on.
    pub fn record(&self, series: &[Series]) {
        std::fs::write(&self.rules, recording_rules(series)).unwrap();
        let reloaded = http()
            .post(format!("{}/-/reload", self.prometheus.url))
            .send()
            .unwrap();
        assert!(reloaded.status().is_success(), "{reloaded:?}");
    }

    /// Starts `plimsoll run` reading every second.
    pub fn start(&mut self, extra: &[&str]) {
        let url = self.prometheus.url.clone();
        self.start_reading(&url, extra);
    }

    /// [`World::start`] with the budgets read from `url`, such as a query layer in front of
    /// this world's Prometheus. The operator watches this world's namespace only, holds the
    /// chart's Lease there, and reaches the API server through the proxy with the chart's
    /// ServiceAccount token.
    pub fn start_reading(&mut self, url: &str, extra: &[&str]) {
        let kubeconfig = self.dir.path().join("kubeconfig");
        http_token_kubeconfig(&kubeconfig, &self.proxy.url, &self.token, &self.ns.name);
        let mut flags = scoped_operator_flags(&self.ns.name, &self.lease, "trust-test");
        flags.push(format!("--prometheus-url={url}"));
        flags.push("--evaluation-interval=1s".to_string());
        let mut flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        flags.extend_from_slice(extra);
        self.operator = Some(Operator::start(&kubeconfig, &flags));
    }

    pub fn slo(&self, name: &str) -> Option<Value> {
        self.ns.get(SLO_API, SLO_KIND, name)
    }

    pub fn deployment(&self, name: &str) -> Value {
        self.ns
            .get("apps/v1", "Deployment", name)
            .expect("the deployment exists")
    }

    pub fn rollout(&self, name: &str) -> Value {
        self.ns
            .get("argoproj.io/v1alpha1", "Rollout", name)
            .expect("the rollout exists")
    }

    /// The events.k8s.io Events of this namespace.
    pub fn events(&self) -> Vec<Value> {
        self.ns.list("events.k8s.io/v1", "Event")
    }

    /// Waits for `done` (polled every 100 ms), failing the test with the operator's log after
    /// `seconds`.
    pub fn wait(&mut self, seconds: u64, what: &str, mut done: impl FnMut(&World) -> bool) {
        let ok = {
            let me = &*self;
            wait_for(Duration::from_secs(seconds), || done(me))
        };
        if !ok {
            let log = self.operator.take().map(|o| o.terminate().1);
            panic!(
                "{what}: not within {seconds} s\noperator log:\n{}",
                log.unwrap_or_default()
            );
        }
    }

    /// Waits until the operator has finished `rounds` more read rounds (at most 60 s), calling
    /// `each` after every poll: what must not happen is checked over rounds the operator
    /// actually ran, not over a fixed sleep in which a loaded machine may run none.
    pub fn while_rounds_pass(&self, rounds: u64, each: impl FnMut()) {
        self.operator.as_ref().expect("running").while_rounds_pass(
            rounds,
            Duration::from_secs(60),
            each,
        );
    }

    /// Stops the operator and checks that the real RBAC authorizer never refused it and that the
    /// server took every Event it published.
    pub fn finish(mut self) -> String {
        let forbidden = self.proxy.forbidden();
        self.operator
            .take()
            .expect("running")
            .finish_clean(forbidden)
    }
}

pub const DEPLOYMENT_REVISION: &str = "deployment.kubernetes.io/revision";

/// The annotations of an object.
pub fn annotations(object: &Value) -> serde_json::Map<String, Value> {
    object["metadata"]["annotations"]
        .as_object()
        .cloned()
        .unwrap_or_default()
}

/// Our keys on a target: the aggregate and the per-SLO ones.
pub fn our_keys(object: &Value) -> Vec<String> {
    let mut keys: Vec<String> = annotations(object)
        .keys()
        .filter(|k| k.contains("plimsoll.dev"))
        .cloned()
        .collect();
    keys.sort();
    keys
}

pub fn condition(slo: &Value, type_: &str) -> Option<(String, String)> {
    let c = slo["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)?;
    Some((
        c["status"].as_str()?.to_string(),
        c["reason"].as_str()?.to_string(),
    ))
}

pub fn rollback_state(slo: &Value) -> Option<String> {
    slo["status"]["rollback"]["state"]
        .as_str()
        .map(String::from)
}

/// A ratio SLO with a rollback policy on these targets (its namespace is the world's).
pub fn slo(name: &str, targets: Value, abort: bool) -> Value {
    json!({
        "apiVersion": SLO_API, "kind": SLO_KIND,
        "metadata": {"name": name},
        "spec": {"service": name, "objective": 99.9, "window": "30d",
                 "indicator": {"ratio": {"errors": "http_requests_total{code=~\"5..\"}",
                                         "total": "http_requests_total"}},
                 "rollback": {"targets": targets, "abortRollouts": abort}},
    })
}

/// A Deployment whose controller will have rolled it out to `revision` when the world has
/// seeded it; its pods run on kwok's fake node.
pub fn deployment(name: &str, revision: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "annotations": {DEPLOYMENT_REVISION: revision}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "app", "image": "app:1"}]}}},
    })
}

/// An Argo Rollout at this revision (no Argo Rollouts controller runs: the test plays it).
pub fn rollout(name: &str, revision: &str) -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": name, "annotations": {"rollout.argoproj.io/revision": revision}},
        "spec": {"replicas": 2, "strategy": {"canary": {"steps": [{"setWeight": 20}]}}},
        "status": {"abort": false},
    })
}
