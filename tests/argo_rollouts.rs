//! Argo Rollouts (v1.10, built from its Go module by tests/consumers/build.sh) acting on what
//! `plimsoll run` writes, on the real control plane (tests/support/kube.rs) with kwok running the
//! pods, and the real Rollout CRDs from the same module: a canary Rollout paused at its first
//! step, an SLO whose budget is exhausted (its recorded series in a real Prometheus), and the
//! chart's operator with its RBAC. The operator's abort (`status.abort`, as `kubectl argo rollouts
//! abort` writes it) must make the real controller abort: phase Degraded, the canary scaled back
//! to nothing and the stable ReplicaSet left as it was; a fix under the freeze override rolls
//! forward. And the AnalysisTemplate the operator writes, run by the real analysis controller as
//! a canary step: Successful with budget left, Failed when it is spent.

#[path = "support/operator.rs"]
mod operator;
#[path = "support/release.rs"]
mod release;
mod support;

use std::time::Duration;

use operator::{Operator, free_port};
use release::Release;
use serde_json::{Value, json};
use support::cluster::{SLO_CRD, apply_crds};
use support::consumers::{Consumer, wait_for};
use support::kube::{Access, shared};
use support::prometheus::{Prometheus, Version, data_dir, rules_config};

const NAMESPACE: &str = "shop";
const ROLLOUT: &str = "checkout";

fn get_json(kube: &Access, args: &[&str]) -> Option<Value> {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    let run = kube.kubectl(&all);
    run.ok().then(|| serde_json::from_str(&run.stdout).unwrap())
}

/// A canary Rollout of two pods: half the pods on the new revision, then a pause nobody lifts.
fn rollout(image: &str) -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": ROLLOUT, "namespace": NAMESPACE},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": ROLLOUT}},
            "template": {
                "metadata": {"labels": {"app": ROLLOUT}},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
            "strategy": {"canary": {"steps": [{"setWeight": 50}, {"pause": {}}]}},
        },
    })
}

fn apply(kube: &Access, object: &Value, what: &str) {
    kube.kubectl_stdin(
        &["apply", "--server-side", "--force-conflicts", "-f", "-"],
        &object.to_string(),
    )
    .expect_ok(what);
}

/// The Rollout's status as the controller writes it.
fn status(kube: &Access) -> Value {
    get_json(kube, &["get", "rollout", ROLLOUT, "-n", NAMESPACE])
        .map(|r| r["status"].clone())
        .unwrap_or(Value::Null)
}

/// `(pod template hash, spec.replicas)` of the Rollout's ReplicaSets.
fn replica_sets(kube: &Access) -> Vec<(String, u64)> {
    let list = get_json(
        kube,
        &[
            "get",
            "replicasets",
            "-n",
            NAMESPACE,
            "-l",
            &format!("app={ROLLOUT}"),
        ],
    )
    .unwrap();
    let mut out: Vec<(String, u64)> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|rs| {
            (
                rs["metadata"]["labels"]["rollouts-pod-template-hash"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                rs["spec"]["replicas"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    out.sort();
    out
}

/// Recorded series of an SLO whose budget is spent: 0.2% errors over the window on a 99.9%
/// objective (20% overspent), burning 14.4x over the last hour, written every second.
fn exhausted_rules(uid: &str) -> String {
    let labels = format!(
        "{{slo: checkout, slo_namespace: {NAMESPACE}, slo_service: checkout, slo_uid: {uid}}}"
    );
    let rules: String = [
        ("window", 0.0012),
        ("rate5m", 0.02),
        ("rate1h", 0.0144),
        ("rate6h", 0.01),
    ]
    .iter()
    .map(|(suffix, ratio)| {
        format!(
            "  - {{record: \"slo:sli_error:ratio_{suffix}\", expr: \"vector({ratio})\", labels: {labels}}}\n"
        )
    })
    .collect();
    format!("groups:\n- name: recorded\n  interval: 1s\n  rules:\n{rules}")
}

#[test]
fn an_exhausted_budget_makes_the_real_controller_abort_the_canary() {
    let kube = shared();
    let argo = Consumer::argo_rollouts();
    let mut crds = vec![support::repo().join("crds")];
    crds.extend(argo.crd_files());
    apply_crds(
        kube,
        &crds,
        &[],
        &[
            SLO_CRD,
            "rollouts.argoproj.io",
            "analysistemplates.argoproj.io",
            "analysisruns.argoproj.io",
        ],
    );
    let release = Release::install_on(
        kube,
        "plimsoll",
        "plimsoll",
        &json!({"watchNamespaces": [NAMESPACE]}),
    );

    // The controller as admin, in the namespace only.
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = kube.kubeconfig.to_str().unwrap();
    let mut controller = argo.start(
        &[
            "--namespaced".into(),
            format!("--namespace={NAMESPACE}"),
            format!("--metricsPort={}", free_port()),
            format!("--healthzPort={}", free_port()),
            // One controller: no Lease (it would want the namespace argo-rollouts).
            "--leader-elect=false".into(),
            "--loglevel=info".into(),
        ],
        &[("KUBECONFIG", kubeconfig)],
        &dir.path().join("rollouts-controller.log"),
    );

    // The first revision rolls out whole (no canary for the first); the second stops at 50%.
    apply(kube, &rollout("checkout:1"), "the Rollout");
    wait_for(
        "the first revision to be Healthy",
        Duration::from_secs(120),
        &mut [&mut controller],
        || match status(kube)["phase"].as_str() {
            Some("Healthy") => Ok(()),
            other => Err(format!("phase {other:?}: {}", status(kube))),
        },
    );
    apply(kube, &rollout("checkout:2"), "the second revision");
    wait_for(
        "the canary to pause at 50%",
        Duration::from_secs(120),
        &mut [&mut controller],
        || {
            let s = status(kube);
            let sets = replica_sets(kube);
            let canary = sets.iter().filter(|(_, n)| *n > 0).count() == 2;
            match (s["phase"].as_str(), canary) {
                (Some("Paused"), true) => Ok(()),
                _ => Err(format!("{s}, replica sets {sets:?}")),
            }
        },
    );
    let stable = status(kube)["stableRS"].as_str().unwrap().to_string();
    let canary = status(kube)["currentPodHash"].as_str().unwrap().to_string();
    assert_ne!(stable, canary);

    // The SLO, its spent budget in Prometheus, and the operator reading it.
    let slo = json!({
        "apiVersion": "plimsoll.dev/v1alpha1", "kind": "ServiceLevelObjective",
        "metadata": {"name": "checkout", "namespace": NAMESPACE},
        "spec": {"service": "checkout", "objective": 99.9, "window": "30d",
                 "indicator": {"ratio": {
                     "errors": "http_requests_total{job=\"checkout\",code=~\"5..\"}",
                     "total": "http_requests_total{job=\"checkout\"}"}},
                 "rollback": {"targets": [{"kind": "Rollout", "name": ROLLOUT}],
                              "abortRollouts": true}},
    });
    apply(kube, &slo, "the SLO");
    let uid =
        get_json(kube, &["get", SLO_CRD, "checkout", "-n", NAMESPACE]).unwrap()["metadata"]["uid"]
            .as_str()
            .unwrap()
            .to_string();
    let data = data_dir(dir.path());
    let config = rules_config(dir.path(), &exhausted_rules(&uid), "1s");
    let prometheus = Prometheus::start_on(Version::chosen(), &data, &config, &[]);
    let url = format!("--prometheus-url={}", prometheus.url);
    let plimsoll = Operator::start_with_env(
        &release.kubeconfig,
        &release.operator_env("plimsoll-0"),
        &[&url, "--evaluation-interval=1s"],
    );

    // Our abort, then the controller's: Degraded, the canary at nothing, the stable whole.
    wait_for(
        "the controller to abort the canary",
        Duration::from_secs(120),
        &mut [&mut controller],
        || {
            let s = status(kube);
            let sets = replica_sets(kube);
            let scaled = sets.iter().find(|(h, _)| *h == canary).map(|s| s.1);
            let whole = sets.iter().find(|(h, _)| *h == stable).map(|s| s.1);
            match (s["abort"].as_bool(), s["phase"].as_str(), scaled, whole) {
                (Some(true), Some("Degraded"), Some(0), Some(2)) => Ok(()),
                _ => Err(format!(
                    "{s}, replica sets {sets:?}\n--- the SLO's status: {}\n--- plimsoll:\n{}",
                    get_json(kube, &["get", SLO_CRD, "checkout", "-n", NAMESPACE]).unwrap()["status"],
                    plimsoll.log()
                )),
            }
        },
    );
    let s = status(kube);
    eprintln!("aborted: {s}");
    assert!(
        s["message"]
            .as_str()
            .is_some_and(|m| m.contains("RolloutAborted")),
        "{s}"
    );
    let slo_status = || {
        get_json(kube, &["get", SLO_CRD, "checkout", "-n", NAMESPACE]).unwrap()["status"].clone()
    };
    let aborted = slo_status();
    assert_eq!(aborted["rollback"]["state"], "Exhausted", "{aborted}");
    assert_eq!(
        aborted["rollback"]["targets"][0]["action"], "Aborted",
        "{aborted}"
    );

    // A fix rolls forward past the exhausted budget only with the freeze override: the new
    // revision is signalled, not aborted, and the real controller takes it to its canary step.
    let mut fix = rollout("checkout:3");
    fix["metadata"]["annotations"] =
        json!({"plimsoll.dev/freeze-override": "hotfix for the 5xx, INC-42"});
    apply(kube, &fix, "the fix, with the freeze override");
    wait_for(
        "the fix to reach its canary step",
        Duration::from_secs(120),
        &mut [&mut controller],
        || {
            let s = status(kube);
            let sets = replica_sets(kube);
            let fix_hash = s["currentPodHash"].as_str().unwrap_or_default().to_string();
            let fix_up = sets.iter().any(|(h, n)| *h == fix_hash && *n > 0);
            let target = slo_status()["rollback"]["targets"][0].clone();
            match (
                s["phase"].as_str(),
                s["abort"].as_bool().unwrap_or(false),
                fix_hash != canary && fix_up,
                target["action"].as_str(),
            ) {
                (Some("Paused"), false, true, Some("Overridden")) => Ok(()),
                _ => Err(format!("{s}\nreplica sets {sets:?}\ntarget {target}")),
            }
        },
    );
    let target = slo_status()["rollback"]["targets"][0].clone();
    eprintln!("overridden: {target}");
    assert!(
        target["message"]
            .as_str()
            .is_some_and(|m| m.contains("INC-42")),
        "{target}"
    );

    let (exit, log) = plimsoll.terminate();
    assert_eq!(exit, Some(0), "{log}");
    assert!(controller.running(), "{}", controller.log_tail(40));
    controller.stop(Duration::from_secs(10));
}

/// The recorded budget of an SLO `name` in `namespace` (uid `uid`): `left` of it, as a ratio.
fn budget_rules(namespace: &str, name: &str, uid: &str, left: f64) -> String {
    format!(
        "groups:\n- name: recorded\n  interval: 1s\n  rules:\n  - {{record: \"slo:error_budget_remaining:ratio\", \
         expr: \"vector({left})\", labels: {{slo: {name}, slo_namespace: {namespace}, \
         slo_service: {name}, slo_uid: {uid}}}}}\n"
    )
}

/// A canary Rollout whose second step is an analysis with the SLO's template, measured once.
fn analysed_rollout(namespace: &str, name: &str, image: &str) -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
            "strategy": {"canary": {"steps": [
                {"setWeight": 50},
                {"analysis": {"templates": [{"templateName": name}],
                              "args": [{"name": "plimsoll-count", "value": "1"}]}},
            ]}},
        },
    })
}

/// Our AnalysisTemplate run by the real analysis controller as a canary step: with budget left
/// the run is Successful and the revision is promoted; with the budget spent it is Failed and the
/// controller aborts the update.
#[test]
fn the_template_s_step_analysis_promotes_with_budget_left_and_fails_when_spent() {
    let kube = shared();
    let argo = Consumer::argo_rollouts();
    let mut crds = vec![support::repo().join("crds")];
    crds.extend(argo.crd_files());
    apply_crds(
        kube,
        &crds,
        &[],
        &[
            SLO_CRD,
            "rollouts.argoproj.io",
            "analysistemplates.argoproj.io",
            "analysisruns.argoproj.io",
        ],
    );
    let ns = "lab";
    let name = "catalog";
    let release = Release::install_on(
        kube,
        "plimsoll-lab",
        "plimsoll-lab",
        &json!({"watchNamespaces": [ns]}),
    );
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = kube.kubeconfig.to_str().unwrap();
    let mut controller = argo.start(
        &[
            "--namespaced".into(),
            format!("--namespace={ns}"),
            format!("--metricsPort={}", free_port()),
            format!("--healthzPort={}", free_port()),
            "--leader-elect=false".into(),
        ],
        &[("KUBECONFIG", kubeconfig)],
        &dir.path().join("rollouts-controller.log"),
    );
    let slo = json!({
        "apiVersion": "plimsoll.dev/v1alpha1", "kind": "ServiceLevelObjective",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"service": name, "objective": 99.9, "window": "30d",
                 "indicator": {"ratio": {
                     "errors": "http_requests_total{job=\"catalog\",code=~\"5..\"}",
                     "total": "http_requests_total{job=\"catalog\"}"}},
                 "rollback": {"analysisTemplate": true}},
    });
    apply(kube, &slo, "the SLO");
    let uid = get_json(kube, &["get", SLO_CRD, name, "-n", ns]).unwrap()["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_string();
    // Prometheus with the budget 80% left; its rules are rewritten and reloaded below.
    let data = data_dir(dir.path());
    let config = rules_config(dir.path(), &budget_rules(ns, name, &uid, 0.8), "1s");
    let rules_file = dir.path().join("rules.yaml");
    let prometheus = Prometheus::start_on(
        Version::chosen(),
        &data,
        &config,
        &["--web.enable-lifecycle"],
    );
    let url = format!("--prometheus-url={}", prometheus.url);
    let plimsoll = Operator::start_with_env(
        &release.kubeconfig,
        &release.operator_env("plimsoll-lab-0"),
        &[&url, "--evaluation-interval=1s"],
    );
    wait_for(
        "the operator's AnalysisTemplate",
        Duration::from_secs(60),
        &mut [&mut controller],
        || match get_json(kube, &["get", "analysistemplate", name, "-n", ns]) {
            Some(_) => Ok(()),
            None => Err(plimsoll.log()),
        },
    );
    let rollout_status = || {
        get_json(kube, &["get", "rollout", name, "-n", ns])
            .map(|r| r["status"].clone())
            .unwrap_or(Value::Null)
    };
    let runs = || -> Vec<(String, String)> {
        let list = get_json(kube, &["get", "analysisruns", "-n", ns]).unwrap();
        let mut out: Vec<(String, String)> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["metadata"]["name"].as_str().unwrap().to_string(),
                    r["status"]["phase"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        out.sort();
        out
    };
    let phase_after =
        |image: &str, want: &str, run: &str, controller: &mut support::consumers::Daemon| {
            apply(kube, &analysed_rollout(ns, name, image), image);
            wait_for(
                &format!("{image}: the rollout {want}, an analysis run {run}"),
                Duration::from_secs(120),
                &mut [controller],
                || {
                    let s = rollout_status();
                    let r = runs();
                    let ran = r.iter().any(|(_, p)| p == run);
                    match (s["phase"].as_str(), ran) {
                        (Some(p), true) if p == want => Ok(r),
                        _ => Err(format!("{s}\nruns {r:?}")),
                    }
                },
            )
        };
    // The first revision has no steps to run; the second is analysed with budget left.
    apply(kube, &analysed_rollout(ns, name, "catalog:1"), "catalog:1");
    wait_for(
        "the first revision Healthy",
        Duration::from_secs(120),
        &mut [&mut controller],
        || match rollout_status()["phase"].as_str() {
            Some("Healthy") => Ok(()),
            _ => Err(rollout_status().to_string()),
        },
    );
    let promoted = phase_after("catalog:2", "Healthy", "Successful", &mut controller);
    eprintln!("promoted: {promoted:?}");
    // The budget spent: the next revision's run fails and the controller aborts it.
    std::fs::write(&rules_file, budget_rules(ns, name, &uid, -0.2)).unwrap();
    let reloaded = support::prometheus::http()
        .post(format!("{}/-/reload", prometheus.url))
        .send()
        .unwrap();
    assert!(reloaded.status().is_success(), "{reloaded:?}");
    std::thread::sleep(Duration::from_secs(3));
    let failed = phase_after("catalog:3", "Degraded", "Failed", &mut controller);
    eprintln!("failed: {failed:?}");
    let s = rollout_status();
    assert!(
        s["message"]
            .as_str()
            .is_some_and(|m| m.contains("RolloutAborted")),
        "{s}"
    );
    let (exit, log) = plimsoll.terminate();
    assert_eq!(exit, Some(0), "{log}");
    controller.stop(Duration::from_secs(10));
}
