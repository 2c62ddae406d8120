//! One test world: the API emulation, a real Prometheus recording an SLO's series from constant
//! rules (reloaded to change the numbers), and the real `plimsoll run` against both.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

use super::apiserver::{ApiServer, presets};
use super::operator::Operator;
use super::support::prometheus::{Prometheus, http, rules_config};

/// One SLO's recorded series: its labels and the error ratio of every window.
pub struct Series {
    pub labels: Vec<(String, String)>,
    pub ratio: f64,
}

impl Series {
    /// The series an SLO's own rules write: name, namespace, service (= name) and UID.
    pub fn own(api: &ApiServer, name: &str, ratio: f64) -> Series {
        let uid = uid(api, name);
        Series {
            labels: vec![
                ("slo".into(), name.into()),
                ("slo_namespace".into(), "shop".into()),
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

pub fn uid(api: &ApiServer, name: &str) -> String {
    let slo = api
        .get(
            "plimsoll.dev/v1alpha1",
            "ServiceLevelObjective",
            "shop",
            name,
        )
        .expect("the SLO exists");
    slo["metadata"]["uid"].as_str().unwrap().to_string()
}

pub struct World {
    pub api: ApiServer,
    pub prometheus: Prometheus,
    rules: PathBuf,
    dir: tempfile::TempDir,
    pub operator: Option<Operator>,
}

const WINDOWS: [&str; 7] = ["5m", "30m", "1h", "2h", "6h", "1d", "3d"];

fn rules(series: &[Series]) -> String {
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
    /// The emulation with these objects; Prometheus starts once [`World::record`] is called.
    pub fn new(objects: Vec<Value>) -> World {
        let api = ApiServer::start(presets::all());
        for object in objects {
            api.put(object);
        }
        let dir = tempfile::tempdir().unwrap();
        let config = rules_config(dir.path(), "groups: []\n", "1s");
        let rules = dir.path().join("rules.yaml");
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let prometheus = Prometheus::start_with(&data, &config, &["--web.enable-lifecycle"]);
        World {
            api,
            prometheus,
            rules,
            dir,
            operator: None,
        }
    }

    /// Prometheus records exactly these series from now on.
    pub fn record(&self, series: &[Series]) {
        std::fs::write(&self.rules, rules(series)).unwrap();
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
    /// this world's Prometheus.
    pub fn start_reading(&mut self, url: &str, extra: &[&str]) {
        let kubeconfig = self.api.kubeconfig(self.dir.path());
        let url = format!("--prometheus-url={url}");
        let mut flags = vec![
            "--leader-election=false",
            "--evaluation-interval=1s",
            url.as_str(),
        ];
        flags.extend_from_slice(extra);
        self.operator = Some(Operator::start(&kubeconfig, &flags));
    }

    pub fn slo(&self, name: &str) -> Option<Value> {
        self.api.get(
            "plimsoll.dev/v1alpha1",
            "ServiceLevelObjective",
            "shop",
            name,
        )
    }

    pub fn deployment(&self, name: &str) -> Value {
        self.api
            .get("apps/v1", "Deployment", "shop", name)
            .expect("the deployment exists")
    }

    pub fn rollout(&self, name: &str) -> Value {
        self.api
            .get("argoproj.io/v1alpha1", "Rollout", "shop", name)
            .expect("the rollout exists")
    }

    /// Waits for `done`, failing the test with the operator's log after `seconds`.
    pub fn wait(&mut self, seconds: u64, what: &str, mut done: impl FnMut(&World) -> bool) {
        let ok = {
            let me = &*self;
            me.api.wait_for(Duration::from_secs(seconds), || done(me))
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

    /// Stops the operator and checks it was never refused by RBAC.
    pub fn finish(mut self) -> String {
        let (code, log) = self.operator.take().expect("running").terminate();
        assert_eq!(code, Some(0), "{log}");
        assert!(self.api.refused().is_empty(), "{:?}", self.api.refused());
        log
    }
}

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

/// A ratio SLO in namespace `shop` with a rollback policy on these targets.
pub fn slo(name: &str, targets: Value, abort: bool) -> Value {
    json!({
        "apiVersion": "plimsoll.dev/v1alpha1", "kind": "ServiceLevelObjective",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {"service": name, "objective": 99.9, "window": "30d",
                 "indicator": {"ratio": {"errors": "http_requests_total{code=~\"5..\"}",
                                         "total": "http_requests_total"}},
                 "rollback": {"targets": targets, "abortRollouts": abort}},
    })
}

pub fn deployment(name: &str, revision: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "shop",
                     "annotations": {"deployment.kubernetes.io/revision": revision}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "app", "image": "app:1"}]}}},
    })
}

pub fn rollout(name: &str, revision: &str) -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": name, "namespace": "shop",
                     "annotations": {"rollout.argoproj.io/revision": revision}},
        "spec": {"replicas": 2, "strategy": {"canary": {"steps": [{"setWeight": 20}]}}},
        "status": {"abort": false},
    })
}
