//! Actions you can trust, end to end: the real `plimsoll run` with the chart's RBAC against a
//! real kube-apiserver (field ownership, finalizers, watches, the Deployment controller's
//! revisions, the garbage collector) and a real Prometheus. Every test asserts the objects as they
//! end up, never the requests that got them there.

#[path = "support/operator.rs"]
mod operator;
mod support;
#[path = "trust/world.rs"]
mod world;

use std::time::Instant;

use serde_json::json;
use world::{
    SLO_API, SLO_KIND, Series, World, annotations, condition, deployment, our_keys, rollback_state,
    rollout, slo,
};

const EXHAUSTED: f64 = 0.002;

/// The SLO most tests use: `availability`, signalling Deployment `web`.
fn availability_on_web() -> serde_json::Value {
    slo(
        "availability",
        json!([{"kind": "Deployment", "name": "web"}]),
        false,
    )
}
const HEALTHY: f64 = 0.0001;

/// Two SLOs on one Deployment: deleting one, then the other recovering. The signal stays while
/// any SLO holds it, each SLO's facts are its own, and nothing of ours is left at the end.
#[test]
fn two_slos_on_one_workload_never_erase_each_other() {
    let web = json!([{"kind": "Deployment", "name": "web"}]);
    let mut w = World::new(vec![
        deployment("web", "4"),
        slo("availability", web.clone(), false),
        slo("latency", web, false),
    ]);
    w.record(&[
        Series::own(&w, "availability", EXHAUSTED),
        Series::own(&w, "latency", EXHAUSTED),
    ]);
    w.start(&[]);
    let both = [
        "plimsoll.dev/rollback",
        "rollback.plimsoll.dev/availability",
        "rollback.plimsoll.dev/latency",
    ];
    w.wait(60, "both SLOs signal web", |w| {
        our_keys(&w.deployment("web")) == both
    });
    let owners = w.ns.owners(
        "apps/v1",
        "Deployment",
        "web",
        &["metadata", "annotations", "plimsoll.dev/rollback"],
    );
    assert_eq!(owners.len(), 2, "the aggregate is co-owned: {owners:?}");
    let facts: serde_json::Value = serde_json::from_str(
        annotations(&w.deployment("web"))["rollback.plimsoll.dev/latency"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(facts["state"], "Exhausted");
    assert_eq!(facts["revision"], "4");

    // Deleting one SLO withdraws only its own signal.
    assert!(w.ns.delete(SLO_API, SLO_KIND, "availability"));
    w.wait(60, "availability is gone", |w| {
        w.slo("availability").is_none()
    });
    let left = ["plimsoll.dev/rollback", "rollback.plimsoll.dev/latency"];
    assert_eq!(our_keys(&w.deployment("web")), left);
    // A deleted SLO never acts again, however many rounds pass.
    w.while_rounds_pass(4, || {
        assert_eq!(
            our_keys(&w.deployment("web")),
            left,
            "deletion re-annotated"
        );
    });

    // The last SLO recovering takes the signal off.
    w.record(&[Series::own(&w, "latency", HEALTHY)]);
    w.wait(60, "latency recovers", |w| {
        let state = w.slo("latency").and_then(|s| rollback_state(&s));
        our_keys(&w.deployment("web")).is_empty() && state.as_deref() == Some("Healthy")
    });
    let spec = &w.deployment("web")["spec"];
    assert_eq!(spec["template"]["spec"]["containers"][0]["image"], "app:1");
    let log = w.finish();
    // A reconcile of a copy from before the deleted SLO was gone finds nothing left to do.
    let failed: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("reconcile failed") && l.contains("NotFound"))
        .collect();
    assert!(failed.is_empty(), "{failed:#?}");
}

/// A signal removed by hand comes back on the next round while the trigger holds.
#[test]
fn a_removed_signal_is_asserted_again() {
    let mut w = World::new(vec![deployment("web", "1"), availability_on_web()]);
    w.record(&[Series::own(&w, "availability", EXHAUSTED)]);
    w.start(&[]);
    let signalled = |w: &World| our_keys(&w.deployment("web")).len() == 2;
    w.wait(60, "signalled", signalled);
    w.ns.merge_as(
        "kubectl-edit",
        ("apps/v1", "Deployment"),
        "web",
        json!({"metadata": {"annotations": {"plimsoll.dev/rollback": null}}}),
        false,
    )
    .unwrap();
    assert_eq!(our_keys(&w.deployment("web")).len(), 1);
    w.wait(60, "the aggregate is back", signalled);
    w.finish();
}

/// A forged series (an exporter's, with its job and instance) and another cluster's series of
/// the same SLO behind one query endpoint never move a decision.
#[test]
fn foreign_and_other_cluster_series_never_act() {
    let mut w = World::new(vec![deployment("web", "1"), availability_on_web()]);
    let own = Series::own(&w, "availability", HEALTHY).with("cluster", "a");
    let other_cluster = Series::own(&w, "availability", 1.0).with("cluster", "b");
    let forged = Series {
        labels: vec![
            ("slo".into(), "availability".into()),
            ("slo_namespace".into(), w.namespace().into()),
            ("slo_service".into(), "availability".into()),
            ("job".into(), "evil".into()),
            ("instance".into(), "10.0.0.1:8080".into()),
            ("cluster".into(), "a".into()),
        ],
        ratio: 1.0,
    };
    // A deleted SLO of the same name left its series behind: another UID.
    let mut predecessor = Series::own(&w, "availability", 1.0).with("cluster", "a");
    predecessor.labels[3].1 = "uid-of-a-deleted-slo".into();
    w.record(&[own, other_cluster, forged, predecessor]);
    w.start(&[r#"--reading-selector=cluster="a""#]);
    w.wait(60, "the SLO reads its own series", |w| {
        w.slo("availability")
            .is_some_and(|s| s["status"]["errorBudget"]["remaining"] == "90.0")
    });
    let slo = w.slo("availability").unwrap();
    assert_eq!(rollback_state(&slo).as_deref(), Some("Healthy"));
    assert_eq!(
        condition(&slo, "DataAvailable"),
        Some(("True".into(), "SeriesPresent".into()))
    );
    assert!(our_keys(&w.deployment("web")).is_empty());
    let events = w.events();
    let foreign: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["reason"] == "ForeignSeries")
        .collect();
    assert_eq!(foreign.len(), 1, "named once: {events:?}");
    assert!(
        foreign[0]["note"]
            .as_str()
            .unwrap()
            .contains("job=\"evil\"")
    );
    let (_, metrics) = w.operator.as_ref().unwrap().get("/metrics").unwrap();
    assert!(
        metrics.contains(r#"plimsoll_foreign_series_total{reason="unexpected_labels"}"#)
            && metrics.contains(r#"plimsoll_foreign_series_total{reason="other_uid"}"#),
        "{metrics}"
    );
    w.finish();
}

/// No series at all: DataAvailable=False, and nothing is written to targets.
#[test]
fn no_data_never_acts() {
    let mut w = World::new(vec![deployment("web", "1"), availability_on_web()]);
    w.start(&[]);
    // The world's Prometheus records none of the SLO's rules, and its /api/v1/rules says so.
    w.wait(60, "no data is reported", |w| {
        w.slo("availability")
            .and_then(|s| condition(&s, "DataAvailable"))
            == Some(("False".into(), "RulesNotLoaded".into()))
    });
    w.while_rounds_pass(3, || assert!(our_keys(&w.deployment("web")).is_empty()));
    w.finish();
}

/// The resync reads each SLO's rule again once per period, from one tick for every SLO (no timer
/// per SLO), and in between a settled SLO costs no read at all.
#[test]
fn the_resync_reads_each_rule_once_per_period() {
    let mut w = World::new(vec![deployment("web", "1"), availability_on_web()]);
    w.record(&[Series::own(&w, "availability", HEALTHY)]);
    w.start(&["--resync=4s"]);
    w.wait(60, "the SLO is evaluated", |w| {
        w.slo("availability")
            .and_then(|s| condition(&s, "DataAvailable"))
            .is_some_and(|(status, _)| status == "True")
    });
    // The operator's requests, as the proxy in front of the API server counts them.
    let gets = |w: &World| {
        let rule = format!(
            "/apis/monitoring.coreos.com/v1/namespaces/{}/prometheusrules/availability",
            w.namespace()
        );
        w.proxy.count("GET", &rule) as u64
    };
    // Four more reads of the rule must come (60 s is a bound for a loaded machine: 4 s apart
    // they take 12-16 s), and never more often than the resync allows in the time they took,
    // however long that was: the ticks are at least 4 s apart, and a read is counted here at
    // most one tick early (a tick just before `before` whose reconcile ran after it).
    let started = Instant::now();
    let before = gets(&w);
    w.wait(60, "four resync reads of the rule", |w| {
        gets(w) >= before + 4
    });
    let read = gets(&w) - before;
    let took = started.elapsed();
    let allowed = (took.as_secs_f64() / 4.0).floor() as u64 + 2;
    assert!(
        read <= allowed,
        "{read} reads of the rule in {took:?} with a 4 s resync (at most {allowed})"
    );
    w.finish();
}

/// A PrometheusRule of the SLO's name that someone else made is left alone.
#[test]
fn a_foreign_rule_of_our_name_is_not_adopted() {
    let theirs = json!({
        "apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
        "metadata": {"name": "availability", "labels": {"team": "db"}},
        "spec": {"groups": [{"name": "theirs", "rules": [{"record": "x", "expr": "vector(1)"}]}]},
    });
    let mut w = World::new(vec![slo("availability", json!([]), false)]);
    w.ns.create_as("helm", theirs.clone());
    w.start(&[]);
    w.wait(60, "NameTaken is reported", |w| {
        w.slo("availability").and_then(|s| condition(&s, "Ready"))
            == Some(("False".into(), "NameTaken".into()))
    });
    let rule =
        w.ns.get("monitoring.coreos.com/v1", "PrometheusRule", "availability")
            .unwrap();
    assert_eq!(rule["spec"], theirs["spec"]);
    assert!(rule["metadata"].get("ownerReferences").is_none());
    let managers =
        w.ns.managers("monitoring.coreos.com/v1", "PrometheusRule", "availability");
    assert!(managers.iter().all(|m| m.manager == "helm"), "{managers:?}");
    w.finish();
}

/// The Rollout is aborted when the budget runs out and again on a new revision, unless that
/// revision carries the freeze override (a fix rolling forward).
#[test]
fn a_new_rollout_revision_with_the_override_is_not_aborted() {
    let mut w = World::new(vec![
        rollout("canary", "1"),
        slo(
            "availability",
            json!([{"kind": "Rollout", "name": "canary"}]),
            true,
        ),
    ]);
    w.record(&[Series::own(&w, "availability", EXHAUSTED)]);
    w.start(&[]);
    w.wait(60, "aborted", |w| {
        w.rollout("canary")["status"]["abort"] == true
    });
    // Argo Rollouts resets the abort for the next revision, which carries the override.
    w.ns.merge_as(
        "argo-rollouts",
        ("argoproj.io/v1alpha1", "Rollout"),
        "canary",
        json!({"status": {"abort": false}}),
        true,
    )
    .unwrap();
    argo_rollouts_patch(
        &w,
        json!({"metadata": {"annotations": {"rollout.argoproj.io/revision": "2",
                "plimsoll.dev/freeze-override": "hotfix for INC-7"}}}),
    );
    let facts_revision = |w: &World| {
        let a = annotations(&w.rollout("canary"));
        let facts = a
            .get("rollback.plimsoll.dev/availability")?
            .as_str()?
            .to_string();
        let facts: serde_json::Value = serde_json::from_str(&facts).ok()?;
        facts["revision"].as_str().map(String::from)
    };
    w.wait(60, "revision 2 is signalled", |w| {
        facts_revision(w).as_deref() == Some("2")
    });
    w.while_rounds_pass(3, || {
        assert_eq!(w.rollout("canary")["status"]["abort"], false, "not aborted");
    });
    let slo = w.slo("availability").unwrap();
    let targets = &slo["status"]["rollback"]["targets"];
    assert_eq!(targets[0]["action"], "Overridden", "{targets}");
    // Revision 3 without the override is aborted again.
    argo_rollouts_patch(
        &w,
        json!({"metadata": {"annotations": {"rollout.argoproj.io/revision": "3",
                "plimsoll.dev/freeze-override": null}}}),
    );
    w.wait(60, "revision 3 aborted", |w| {
        w.rollout("canary")["status"]["abort"] == true
    });
    w.finish();
}

/// What Argo Rollouts does to the Rollout's metadata on a new revision.
fn argo_rollouts_patch(w: &World, patch: serde_json::Value) {
    w.ns.merge_as(
        "argo-rollouts",
        ("argoproj.io/v1alpha1", "Rollout"),
        "canary",
        patch,
        false,
    )
    .unwrap();
}

/// Round 1 wrote single-SLO keys under one field manager; they are cleared, not left behind.
#[test]
fn round_one_annotations_are_cleared() {
    let mut w = World::new(vec![deployment("web", "1"), availability_on_web()]);
    let slo_key = format!("{}/availability", w.namespace());
    w.ns.apply_as(
        "plimsoll-rollback",
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "web", "annotations": {
                   "plimsoll.dev/budget-state": "Healthy",
                   "plimsoll.dev/slo": slo_key}}}),
    )
    .unwrap();
    w.ns.merge_as(
        "seed",
        (SLO_API, SLO_KIND),
        "availability",
        json!({"status": {"rollback": {"state": "Healthy", "targets": [
            {"kind": "Deployment", "name": "web", "action": "Cleared"}]}}}),
        true,
    )
    .unwrap();
    w.record(&[Series::own(&w, "availability", HEALTHY)]);
    w.start(&[]);
    w.wait(60, "round 1's keys are gone", |w| {
        our_keys(&w.deployment("web")).is_empty()
    });
    w.finish();
}

/// With --require-target-opt-in, a target without the label is reported and never touched.
#[test]
fn targets_must_opt_in_when_required() {
    let mut allowed = deployment("allowed", "1");
    allowed["metadata"]["labels"] = json!({"plimsoll.dev/rollback-allowed": "true"});
    let targets = json!([{"kind": "Deployment", "name": "allowed"},
                         {"kind": "Deployment", "name": "web"}]);
    let mut w = World::new(vec![
        allowed,
        deployment("web", "1"),
        slo("availability", targets, false),
    ]);
    w.record(&[Series::own(&w, "availability", EXHAUSTED)]);
    w.start(&["--require-target-opt-in"]);
    w.wait(60, "the allowed target is signalled", |w| {
        our_keys(&w.deployment("allowed")).len() == 2
    });
    assert!(our_keys(&w.deployment("web")).is_empty());
    w.wait(60, "the other is refused in status", |w| {
        w.slo("availability").is_some_and(|s| {
            s["status"]["rollback"]["targets"]
                .as_array()
                .is_some_and(|t| {
                    t.iter()
                        .any(|t| t["name"] == "web" && t["action"] == "Refused")
                })
        })
    });
    w.finish();
}
