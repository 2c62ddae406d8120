//! One SLO this version cannot read must not stop the operator: the real `plimsoll run` with the
//! chart's RBAC against the real kube-apiserver (tests/support/kube.rs). The CRD installed is a
//! newer version's, as on a cluster whose CRD was upgraded before the operator (version skew):
//! `spec.objective`, `status.sli` and `status.rollback.state` take values this version's types
//! do not. A status another field manager wrote in such a shape (`status.sli` as a number, an
//! unknown state) is read as far as it is known, and the SLO is reconciled. A spec that cannot be
//! read leaves that SLO out: every other SLO gets its rule, the unreadable one is named in the
//! log and counted in `plimsoll_unreadable_objects`, and once it is mended it is reconciled like
//! the rest. And a watch that keeps failing, through a fault-injecting proxy in front of the API
//! server, makes /readyz say the copy is stale.

#[path = "support/operator.rs"]
mod operator;
mod support;

use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use operator::Operator;
use serde_json::{Value, json};
use support::cluster::{
    Namespace, SLO_CRD, apply_crds, http_token_kubeconfig, operator_credentials, wait_for,
};
use support::fault_proxy::{Fault, FaultProxy};

const SLO_API: &str = "plimsoll.dev/v1alpha1";
const SLO_KIND: &str = "ServiceLevelObjective";

fn slo(name: &str) -> Value {
    json!({
        "apiVersion": SLO_API, "kind": SLO_KIND,
        "metadata": {"name": name},
        "spec": {"service": name, "objective": 99.9, "window": "30d",
                 "indicator": {"ratio": {"errors": "http_requests_total{code=~\"5..\"}",
                                         "total": "http_requests_total"}}},
    })
}

/// The CRD of crds/ as a newer version might have it: `spec.objective` and `status.sli` of any
/// type (and without the rules on the objective's range), any `status.rollback.state`.
fn newer_crd() -> String {
    let file = support::yaml_files("crds").remove(0);
    let mut crd = support::document(&file);
    let schema = &mut crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"];
    let any = json!({"x-kubernetes-preserve-unknown-fields": true, "nullable": true});
    schema["spec"]["properties"]["objective"] = any.clone();
    schema["status"]["properties"]["sli"] = any;
    schema["status"]["properties"]["rollback"]["properties"]["state"]
        .as_object_mut()
        .unwrap()
        .remove("enum");
    let rules = schema["spec"]["x-kubernetes-validations"]
        .as_array_mut()
        .unwrap();
    let before = rules.len();
    rules.retain(|r| !r["rule"].as_str().unwrap().contains("self.objective"));
    assert_eq!(rules.len(), before - 2, "two rules on the objective");
    crd.to_string()
}

/// This process' namespaces on the newer CRD.
fn namespace(prefix: &str) -> Namespace {
    static NEWER: OnceLock<()> = OnceLock::new();
    let ns = Namespace::new(prefix);
    NEWER.get_or_init(|| apply_crds(ns.kube, &[], &[&newer_crd()], &[SLO_CRD]));
    ns
}

/// `plimsoll run` watching `ns` with the chart's RBAC, through the proxy.
fn operator(ns: &Namespace, proxy: &FaultProxy, dir: &Path, extra: &[&str]) -> Operator {
    let (lease, token) = operator_credentials(ns.kube, &ns.name);
    let kubeconfig = dir.join("kubeconfig");
    http_token_kubeconfig(&kubeconfig, &proxy.url, &token, &ns.name);
    let flags = [
        format!("--watch-namespace={}", ns.name),
        format!("--lease-namespace={}", ns.name),
        format!("--lease-name={lease}"),
        "--identity=unreadable-test".to_string(),
    ];
    let mut flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    flags.extend_from_slice(extra);
    Operator::start(&kubeconfig, &flags)
}

/// The SLO `broken` with this `spec.objective`, as another field manager writes it. The newer
/// CRD may take a moment to be served: a refusal by the older schema is retried.
fn broken(ns: &Namespace, objective: Value) {
    let mut object = slo("broken");
    object["spec"]["objective"] = objective.clone();
    let written = wait_for(Duration::from_secs(30), || {
        if ns.get(SLO_API, SLO_KIND, "broken").is_some() {
            let patch = json!({"spec": {"objective": objective}});
            return ns
                .merge_as("other-tool", (SLO_API, SLO_KIND), "broken", patch, false)
                .is_ok();
        }
        ns.try_create_as("other-tool", object.clone()).is_ok()
    });
    assert!(written, "the newer CRD takes objective {objective}");
}

fn rule(ns: &Namespace, name: &str) -> bool {
    ns.get("monitoring.coreos.com/v1", "PrometheusRule", name)
        .is_some()
}

fn unreadable_gauge(operator: &Operator) -> Option<String> {
    let (_, metrics) = operator.get("/metrics")?;
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("plimsoll_unreadable_objects "))
        .map(str::to_string)
}

/// Waits for `plimsoll_unreadable_objects` to read `value`.
fn gauge_becomes(operator: &Operator, value: &str) {
    let reached = wait_for(Duration::from_secs(30), || {
        unreadable_gauge(operator).as_deref() == Some(value)
    });
    assert!(
        reached,
        "plimsoll_unreadable_objects is {:?}, not {value}",
        unreadable_gauge(operator)
    );
}

#[test]
fn an_unreadable_slo_is_left_out_and_reported_and_every_other_goes_on() {
    let ns = namespace("unreadable");
    for name in ["checkout", "cart", "search"] {
        ns.create_as("seed", slo(name));
    }
    broken(&ns, json!("high"));
    // Another writer's status our types cannot read: tolerated.
    let status = json!({"status": {"sli": 99.5, "rollback": {"state": "Paused"}}});
    ns.merge_as("other-tool", (SLO_API, SLO_KIND), "search", status, true)
        .unwrap();
    let proxy = FaultProxy::start(&ns.kube.server, &ns.kube.ca);
    let dir = tempfile::tempdir().unwrap();
    let operator = operator(&ns, &proxy, dir.path(), &[]);

    let others = wait_for(Duration::from_secs(60), || {
        ["checkout", "cart", "search"].iter().all(|n| rule(&ns, n))
    });
    assert!(
        others,
        "the readable SLOs get their rules, search with its odd status too\n{}",
        operator.log()
    );
    gauge_becomes(&operator, "1");
    assert!(
        !rule(&ns, "broken"),
        "nothing is done for what cannot be read"
    );
    let warned = |ns: &Namespace| {
        ns.list("events.k8s.io/v1", "Event")
            .into_iter()
            .filter(|e| e["regarding"]["name"] == "broken" && e["reason"] == "Unreadable")
            .collect::<Vec<_>>()
    };
    assert!(
        wait_for(Duration::from_secs(30), || !warned(&ns).is_empty()),
        "a Warning Event on the unreadable SLO"
    );
    let event = &warned(&ns)[0];
    assert_eq!(event["type"], "Warning");
    let note = event["note"].as_str().unwrap();
    assert!(note.contains("spec.objective"), "{note}");
    assert_eq!(
        operator.get("/readyz").map(|r| r.0),
        Some(200),
        "still ready"
    );

    // Mended: read and reconciled like any other.
    broken(&ns, json!(99.5));
    assert!(
        wait_for(Duration::from_secs(60), || rule(&ns, "broken")),
        "the mended SLO gets its rule\n{}",
        operator.log()
    );
    gauge_becomes(&operator, "0");
    assert_eq!(warned(&ns).len(), 1, "one Event for one resourceVersion");
    let (code, log) = operator.terminate();
    assert_eq!(code, Some(0));
    let named: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("cannot be read"))
        .collect();
    assert_eq!(
        named.len(),
        1,
        "reported once per resourceVersion: {named:#?}"
    );
    assert!(
        named[0].contains("name=broken") && named[0].contains("spec.objective"),
        "{}",
        named[0]
    );
    assert!(
        log.lines().all(|l| l.len() < 2000),
        "no line dumps a whole list"
    );
    assert!(proxy.forbidden().is_empty(), "{:?}", proxy.forbidden());
}

/// A watch that keeps failing makes the copy stale: /readyz fails and says why, until the API
/// server answers again. The proxy answers every GET of the SLO collection (lists and watches)
/// with 503 until the faults are cleared.
#[test]
fn a_watch_failing_past_the_bound_makes_readyz_say_the_copy_is_stale() {
    let ns = namespace("stale");
    ns.create_as("seed", slo("checkout"));
    let proxy = FaultProxy::start(&ns.kube.server, &ns.kube.ca);
    proxy.inject(Fault::get("/servicelevelobjectives").status(503));
    let dir = tempfile::tempdir().unwrap();
    let operator = operator(&ns, &proxy, dir.path(), &["--cache-stale-after=2s"]);
    let stale = |operator: &Operator| {
        operator
            .get("/readyz")
            .filter(|(code, _)| *code == 503)
            .is_some_and(|(_, text)| text.contains("the SLO watch has failed for"))
    };
    if !wait_for(Duration::from_secs(30), || stale(&operator)) {
        let last = operator.get("/readyz");
        let (_, log) = operator.terminate();
        panic!("{last:?}; {:?}; log:\n{log}", proxy.seen());
    }
    assert!(
        !rule(&ns, "checkout"),
        "nothing reconciled while no SLO could be listed"
    );
    proxy.clear_faults();
    assert!(
        wait_for(Duration::from_secs(60), || operator
            .get("/readyz")
            .is_some_and(|(code, _)| code == 200)),
        "ready again once the API server answers: {:?}",
        operator.get("/readyz")
    );
    assert!(
        wait_for(Duration::from_secs(30), || rule(&ns, "checkout")),
        "and the SLO is reconciled"
    );
    let (code, log) = operator.terminate();
    assert_eq!(code, Some(0), "{log}");
    assert!(proxy.forbidden().is_empty(), "{:?}", proxy.forbidden());
}
