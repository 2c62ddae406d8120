//! The web UI of `plimsoll run`: the real binary with the chart's RBAC against the real
//! kube-apiserver (tests/support/kube.rs), pages answered from the replica's SLO cache, an SLO's
//! page listing its own Events (the server selects them by `regarding.uid`) and never those of a
//! predecessor of the same name, an invalid SLO shown with its problem, alerts linked to the UI
//! with --ui-url, and --ui=false serving no pages. (tests/ui_browser.rs loads the same pages in a
//! real browser.)

#[path = "support/operator.rs"]
mod operator;
mod support;

use std::time::Duration;

use operator::Operator;
use serde_json::{Value, json};
use support::cluster::{Namespace, operator_credentials, wait_for};

/// `plimsoll run` watching `ns` with the chart's RBAC and its ServiceAccount's token.
fn operator(ns: &Namespace, dir: &std::path::Path, extra: &[&str]) -> Operator {
    let (lease, token) = operator_credentials(ns.kube, &ns.name);
    let kubeconfig = dir.join("kubeconfig");
    ns.kube.token_kubeconfig(&kubeconfig, &token, &ns.name);
    let flags = [
        format!("--watch-namespace={}", ns.name),
        format!("--lease-namespace={}", ns.name),
        format!("--lease-name={lease}"),
        "--identity=ui-test".to_string(),
    ];
    let mut flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    flags.extend_from_slice(extra);
    Operator::start(&kubeconfig, &flags)
}

fn slo(name: &str, errors: &str) -> Value {
    json!({
        "apiVersion": "plimsoll.dev/v1alpha1", "kind": "ServiceLevelObjective",
        "metadata": {"name": name,
                     "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"secret\":\"x\"}"}},
        "spec": {"service": name, "objective": 99.5, "window": "28d",
                 "indicator": {"ratio": {"errors": errors, "total": "http_requests_total"}}},
    })
}

/// An Event about an SLO of this name that was deleted and created again: another UID.
fn predecessors_event(namespace: &str) -> Value {
    json!({
        "apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": "checkout.old"},
        "eventTime": "2026-01-01T00:00:00.000000Z",
        "reportingController": "plimsoll.dev/operator", "reportingInstance": "old",
        "action": "ApplyRules", "reason": "PredecessorsEvent", "type": "Normal",
        "note": "about the SLO that had this name before",
        "regarding": {"apiVersion": "plimsoll.dev/v1alpha1", "kind": "ServiceLevelObjective",
                      "namespace": namespace, "name": "checkout", "uid": "uid-of-a-deleted-slo"},
    })
}

fn page(operator: &Operator, path: &str) -> (u16, String) {
    operator.get(path).unwrap_or_else(|| panic!("GET {path}"))
}

#[test]
fn the_operator_serves_the_ui_from_its_cache_with_each_slos_own_events() {
    let ns = Namespace::new("ui");
    let shop = ns.name.clone();
    ns.create_as(
        "seed",
        slo("checkout", r#"http_requests_total{code=~"5.."}"#),
    );
    ns.create_as("seed", slo("broken", "rate(http_requests_total[5m]"));
    ns.create_as("seed", predecessors_event(&shop));
    let dir = tempfile::tempdir().unwrap();
    let operator = operator(&ns, dir.path(), &["--ui-url=https://slo.example.com"]);
    let created = wait_for(Duration::from_secs(60), || {
        ns.list("events.k8s.io/v1", "Event")
            .iter()
            .any(|e| e["reason"] == "RulesCreated")
    });
    assert!(
        created,
        "the operator announced the rules\n{}",
        operator.log()
    );

    let (code, list) = page(&operator, "/ui");
    assert_eq!(code, 200);
    for name in ["checkout", "broken"] {
        assert!(
            list.contains(&format!("href=\"/ui/slo/{shop}/{name}\"")),
            "{name} in {list}"
        );
    }
    assert!(list.contains("99.5% / 28d"));
    assert!(
        list.contains("no Prometheus"),
        "without --prometheus-url the page says so"
    );

    let (code, checkout) = page(&operator, &format!("/ui/slo/{shop}/checkout"));
    assert_eq!(code, 200);
    assert!(checkout.contains("RulesCreated"), "its own Event");
    assert!(
        !checkout.contains("PredecessorsEvent"),
        "an Event about another SLO of the same name is not this SLO's"
    );
    assert!(checkout.contains("from this cluster"));
    assert!(checkout.contains("kind: ServiceLevelObjective"));
    assert!(
        !checkout.contains("managedFields"),
        "no server bookkeeping in the spec"
    );
    assert!(
        !checkout.contains("last-applied-configuration"),
        "the last-applied copy is not shown"
    );
    assert!(
        checkout.contains(&format!("plimsoll/{shop}/checkout/fast")),
        "the rules"
    );
    assert!(checkout.contains(&format!(
        "plimsoll_url: https://slo.example.com/ui/slo/{shop}/checkout"
    )));

    // The rules in the cluster carry the same link.
    let rule = ns
        .get("monitoring.coreos.com/v1", "PrometheusRule", "checkout")
        .expect("the PrometheusRule");
    let alerts: Vec<&Value> = rule["spec"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap())
        .filter(|r| r.get("alert").is_some())
        .collect();
    assert!(!alerts.is_empty());
    for alert in alerts {
        assert_eq!(
            alert["annotations"]["plimsoll_url"],
            format!("https://slo.example.com/ui/slo/{shop}/checkout")
        );
    }

    let (code, broken) = page(&operator, &format!("/ui/slo/{shop}/broken"));
    assert_eq!(code, 200);
    assert!(broken.contains("This SLO is not valid"), "{broken}");
    assert!(
        broken.contains("spec.indicator.ratio.errors"),
        "names the field"
    );

    let (code, missing) = page(&operator, &format!("/ui/slo/{shop}/nope"));
    assert_eq!(code, 404);
    assert!(missing.contains("No such SLO"));
    let (code, hostile) = page(
        &operator,
        &format!("/ui/slo/{shop}/%3Cscript%3Ealert(1)%3C%2Fscript%3E"),
    );
    assert_eq!(code, 404);
    assert!(
        hostile.contains(&format!("{shop}/&lt;script&gt;alert(1)&lt;/script&gt;")),
        "{hostile}"
    );
    assert!(!hostile.contains("<script"), "{hostile}");
    let (code, log) = operator.terminate();
    assert_eq!(code, Some(0));
    assert!(!log.to_lowercase().contains("forbidden"), "{log}");
}

#[test]
fn with_the_ui_off_no_page_is_served() {
    let ns = Namespace::new("ui-off");
    let dir = tempfile::tempdir().unwrap();
    let operator = operator(&ns, dir.path(), &["--ui=false"]);
    assert_eq!(page(&operator, "/ui").0, 404);
    assert_eq!(page(&operator, "/healthz").0, 200);
}
