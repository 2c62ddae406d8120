//! The operator's Events, against the API emulation with the operator's RBAC: one Event per
//! happening, a repeat counted into its `series` (as `kubectl describe` shows "x3 over 2m"),
//! and a bounded memory of what was published.

#[path = "support/apiserver/mod.rs"]
mod apiserver;

use apiserver::ApiServer;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType};
use plimsoll::controller::events::Publisher;
use serde_json::Value;

fn reference(name: &str) -> ObjectReference {
    ObjectReference {
        api_version: Some("plimsoll.dev/v1alpha1".into()),
        kind: Some("ServiceLevelObjective".into()),
        name: Some(name.into()),
        namespace: Some("shop".into()),
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

fn events(server: &ApiServer) -> Vec<Value> {
    server.list("events.k8s.io/v1", "Event", Some("shop"))
}

#[tokio::test]
async fn a_repeat_is_counted_into_the_first_event_and_other_happenings_get_their_own() {
    let server = ApiServer::start(apiserver::presets::all());
    let publisher = Publisher::new(server.client(), "plimsoll", Some("plimsoll-0".into()));
    let checkout = reference("checkout");
    let cart = reference("cart");
    for (reason, note, regarding) in [
        ("ForeignSeries", "first", &checkout),
        ("ForeignSeries", "second", &checkout),
        ("ForeignSeries", "third", &checkout),
        ("NoData", "x", &checkout),
        ("ForeignSeries", "y", &cart),
    ] {
        publisher
            .publish(&warning(reason, note), regarding)
            .await
            .unwrap();
    }

    let all = events(&server);
    assert_eq!(all.len(), 3, "{all:#?}");
    let repeated = all
        .iter()
        .find(|e| e["regarding"]["name"] == "checkout" && e["reason"] == "ForeignSeries")
        .unwrap();
    assert_eq!(repeated["series"]["count"], 3);
    assert!(repeated["series"]["lastObservedTime"].is_string());
    assert_eq!(repeated["note"], "third", "the latest note is shown");
    assert_eq!(repeated["type"], "Warning");
    assert_eq!(repeated["reportingController"], "plimsoll");
    assert_eq!(repeated["reportingInstance"], "plimsoll-0");
    assert_eq!(repeated["regarding"]["uid"], "uid-checkout");
    assert!(repeated["eventTime"].is_string());
    for single in all.iter().filter(|e| e != &repeated) {
        assert!(single.get("series").is_none(), "{single:#?}");
    }
    assert!(server.refused().is_empty(), "{:?}", server.refused());
}

#[tokio::test]
async fn what_is_remembered_stays_bounded_however_many_objects_had_events() {
    let server = ApiServer::start(apiserver::presets::all());
    let publisher = Publisher::new(server.client(), "plimsoll", None);
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
            .publish(&created, &reference(&format!("slo-{i}")))
            .await
            .unwrap();
    }
    assert_eq!(events(&server).len(), 1100);
    assert!(
        publisher.remembered() <= 1024,
        "{} remembered",
        publisher.remembered()
    );
    let first = events(&server)
        .into_iter()
        .find(|e| e["regarding"]["name"] == "slo-0")
        .unwrap();
    assert_eq!(
        first["reportingInstance"], "plimsoll",
        "defaults to the controller"
    );
}
