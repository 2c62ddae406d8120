//! The operator's Events, against the real kube-apiserver (tests/support/kube.rs) with the
//! chart's RBAC and its ServiceAccount's token: one Event per happening, a repeat counted into its
//! `series` (as `kubectl describe` shows "x3 over 2m"; the note stays the first one's, since the
//! server refuses to change it), each object's Events selected by
//! `regarding.uid` as the UI selects them, and a bounded memory of what was published.

mod support;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType};
use plimsoll::controller::events::Publisher;
use serde_json::Value;
use support::cluster::{Namespace, operator_credentials};

fn reference(namespace: &str, name: &str) -> ObjectReference {
    ObjectReference {
        api_version: Some("plimsoll.dev/v1alpha1".into()),
        kind: Some("ServiceLevelObjective".into()),
        name: Some(name.into()),
        namespace: Some(namespace.into()),
        uid: Some(format!("uid-{name}")),
        ..ObjectReference::default()
    }
}

fn warning(reason: &str, note: &str) -> Event {
    Event {
        type_: EventType::Warning,
        reason: reason.into(),
        note: Some(note.into()),
        action: "Evaluate".into(),
        secondary: None,
    }
}

/// A namespace, and a client with the chart's RBAC for an operator watching it.
fn operators_namespace(prefix: &str) -> (Namespace, kube::Client) {
    let ns = Namespace::new(prefix);
    let (_, token) = operator_credentials(ns.kube, &ns.name);
    let client = ns.token_client(&token);
    (ns, client)
}

fn events(ns: &Namespace) -> Vec<Value> {
    ns.list("events.k8s.io/v1", "Event")
}

#[test]
fn a_repeat_is_counted_into_the_first_event_and_other_happenings_get_their_own() {
    let (ns, client) = operators_namespace("events");
    let publisher = Publisher::new(client, "plimsoll", Some("plimsoll-0".into()));
    let checkout = reference(&ns.name, "checkout");
    let cart = reference(&ns.name, "cart");
    for (reason, note, regarding) in [
        ("ForeignSeries", "first", &checkout),
        ("ForeignSeries", "second", &checkout),
        ("ForeignSeries", "third", &checkout),
        ("NoData", "x", &checkout),
        ("ForeignSeries", "y", &cart),
    ] {
        ns.block_on(publisher.publish(&warning(reason, note), regarding))
            .unwrap_or_else(|e| panic!("{reason} {note}: {e}"));
    }

    let all = events(&ns);
    assert_eq!(all.len(), 3, "{all:#?}");
    let repeated = all
        .iter()
        .find(|e| e["regarding"]["name"] == "checkout" && e["reason"] == "ForeignSeries")
        .unwrap();
    assert_eq!(repeated["series"]["count"], 3);
    assert!(repeated["series"]["lastObservedTime"].is_string());
    // The server refuses a change to an Event's note: the first one stays.
    assert_eq!(repeated["note"], "first");
    assert_eq!(repeated["type"], "Warning");
    assert_eq!(repeated["reportingController"], "plimsoll");
    assert_eq!(repeated["reportingInstance"], "plimsoll-0");
    assert_eq!(repeated["regarding"]["uid"], "uid-checkout");
    assert!(repeated["eventTime"].is_string());
    for single in all.iter().filter(|e| e != &repeated) {
        assert!(single.get("series").is_none(), "{single:#?}");
    }
    // The server selects each object's Events by `regarding.uid`, as the UI asks for them.
    let mut reasons: Vec<String> = ns
        .events_where("regarding.uid=uid-checkout")
        .iter()
        .map(|e| e["reason"].as_str().unwrap().to_string())
        .collect();
    reasons.sort();
    assert_eq!(reasons, ["ForeignSeries", "NoData"]);
    let cart_events = ns.events_where("regarding.uid=uid-cart");
    assert_eq!(cart_events.len(), 1, "{cart_events:#?}");
    assert_eq!(cart_events[0]["note"], "y");
}

#[test]
fn what_is_remembered_stays_bounded_however_many_objects_had_events() {
    let (ns, client) = operators_namespace("events-bounded");
    let publisher = Publisher::new(client, "plimsoll", None);
    ns.block_on(async {
        for i in 0..1100 {
            let note = format!("rules of slo-{i}");
            let created = Event {
                type_: EventType::Normal,
                reason: "RulesCreated".into(),
                note: Some(note),
                action: "ApplyRules".into(),
                secondary: None,
            };
            publisher
                .publish(&created, &reference(&ns.name, &format!("slo-{i}")))
                .await
                .unwrap();
        }
    });
    let all = events(&ns);
    assert_eq!(all.len(), 1100);
    assert!(
        publisher.remembered() <= 1024,
        "{} remembered",
        publisher.remembered()
    );
    let first = all
        .into_iter()
        .find(|e| e["regarding"]["name"] == "slo-0")
        .unwrap();
    assert_eq!(
        first["reportingInstance"], "plimsoll",
        "defaults to the controller"
    );
}

/// A Warning's note is cut to what the server takes: 1,024 bytes of UTF-8 (a label value of a
/// foreign series can be any text), whole characters only.
#[test]
fn a_long_warning_note_is_cut_to_what_the_server_accepts() {
    let (ns, client) = operators_namespace("events-long");
    let publisher = Publisher::new(client, "plimsoll", None);
    let regarding = reference(&ns.name, "checkout");
    let note = "é".repeat(1500);
    ns.block_on(publisher.warn("ForeignSeries", "ReadBudget", &note, &regarding));
    let all = events(&ns);
    assert_eq!(all.len(), 1, "the Warning was published: {all:#?}");
    let published = all[0]["note"].as_str().unwrap();
    assert!(published.len() <= 1024, "{} bytes", published.len());
    assert!(note.starts_with(published), "a prefix of the note");
    assert!(published.len() > 1024 - 4, "cut no shorter than needed");
}
