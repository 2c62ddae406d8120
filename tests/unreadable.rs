//! One SLO this version cannot read must not stop the operator: the real `plimsoll run` against
//! the API emulation. A status another field manager wrote in a shape our types do not know
//! (`status.sli` as a number; a newer version's enum value does the same) is read as far as it is
//! known, and the SLO is reconciled. A spec that cannot be read (written past the schema; on a
//! real cluster, version skew) leaves that SLO out: every other SLO gets its rule, the unreadable
//! one is named in the log and counted in `plimsoll_unreadable_objects`, and once it is mended
//! it is reconciled like the rest.

#[path = "support/apiserver/mod.rs"]
mod apiserver;
#[path = "support/operator.rs"]
mod operator;

use std::time::Duration;

use apiserver::ApiServer;
use operator::Operator;
use serde_json::json;

const SLO_API: &str = "plimsoll.dev/v1alpha1";
const SLO_KIND: &str = "ServiceLevelObjective";

fn slo(name: &str) -> serde_json::Value {
    json!({
        "apiVersion": SLO_API, "kind": SLO_KIND,
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {"service": name, "objective": 99.9, "window": "30d",
                 "indicator": {"ratio": {"errors": "http_requests_total{code=~\"5..\"}",
                                         "total": "http_requests_total"}}},
    })
}

/// The SLO `broken` with this `spec.objective`, as another field manager writes it.
fn broken(api: &ApiServer, objective: serde_json::Value) {
    let mut object = slo("broken");
    object["spec"]["objective"] = objective;
    api.put_as("other-tool", object);
}

fn rule(api: &ApiServer, name: &str) -> bool {
    api.get("monitoring.coreos.com/v1", "PrometheusRule", "shop", name)
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
fn gauge_becomes(api: &ApiServer, operator: &Operator, value: &str) {
    let reached = api.wait_for(Duration::from_secs(10), || {
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
    let api = ApiServer::start(apiserver::presets::all());
    for name in ["checkout", "cart", "search"] {
        api.put(slo(name));
    }
    broken(&api, json!("high"));
    // Another writer's status our types cannot read: tolerated.
    let status = json!({"status": {"sli": 99.5, "rollback": {"state": "Paused"}}});
    api.patch_status_merge_as("other-tool", SLO_API, SLO_KIND, "shop", "search", status)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let operator = Operator::start(&api.kubeconfig(dir.path()), &["--leader-election=false"]);

    let others = api.wait_for(Duration::from_secs(30), || {
        ["checkout", "cart", "search"].iter().all(|n| rule(&api, n))
    });
    assert!(
        others,
        "the readable SLOs get their rules, search with its odd status too"
    );
    gauge_becomes(&api, &operator, "1");
    assert!(
        !rule(&api, "broken"),
        "nothing is done for what cannot be read"
    );
    let warned = |api: &ApiServer| {
        api.list("events.k8s.io/v1", "Event", Some("shop"))
            .into_iter()
            .filter(|e| e["regarding"]["name"] == "broken" && e["reason"] == "Unreadable")
            .collect::<Vec<_>>()
    };
    assert!(
        api.wait_for(Duration::from_secs(15), || !warned(&api).is_empty()),
        "a Warning Event on the unreadable SLO"
    );
    let event = &warned(&api)[0];
    assert_eq!(event["type"], "Warning");
    let note = event["note"].as_str().unwrap();
    assert!(note.contains("spec.objective"), "{note}");
    assert_eq!(
        operator.get("/readyz").map(|r| r.0),
        Some(200),
        "still ready"
    );

    // Mended: read and reconciled like any other.
    broken(&api, json!(99.5));
    assert!(
        api.wait_for(Duration::from_secs(30), || rule(&api, "broken")),
        "the mended SLO gets its rule"
    );
    gauge_becomes(&api, &operator, "0");
    assert_eq!(warned(&api).len(), 1, "one Event for one resourceVersion");
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
    assert!(api.refused().is_empty(), "{:?}", api.refused());
}

/// A watch that keeps failing makes the copy stale: /readyz fails and says why, until the API
/// server answers again.
#[test]
fn a_watch_failing_past_the_bound_makes_readyz_say_the_copy_is_stale() {
    let api = ApiServer::start(apiserver::presets::all());
    api.put(slo("checkout"));
    api.inject(
        apiserver::Fault::new("list", "servicelevelobjectives")
            .status(503)
            .times(1000),
    );
    let dir = tempfile::tempdir().unwrap();
    let operator = Operator::start(
        &api.kubeconfig(dir.path()),
        &["--leader-election=false", "--cache-stale-after=2s"],
    );
    let stale = |operator: &Operator| {
        operator
            .get("/readyz")
            .filter(|(code, _)| *code == 503)
            .is_some_and(|(_, text)| text.contains("the SLO watch has failed for"))
    };
    if !api.wait_for(Duration::from_secs(30), || stale(&operator)) {
        let last = operator.get("/readyz");
        let (_, log) = operator.terminate();
        panic!("{last:?}; {:?}; log:\n{log}", api.stats());
    }
    api.clear_faults();
    assert!(
        api.wait_for(Duration::from_secs(60), || operator
            .get("/readyz")
            .is_some_and(|(code, _)| code == 200)),
        "ready again once the API server answers: {:?}",
        operator.get("/readyz")
    );
    assert!(
        api.wait_for(Duration::from_secs(30), || rule(&api, "checkout")),
        "and the SLO is reconciled"
    );
}
