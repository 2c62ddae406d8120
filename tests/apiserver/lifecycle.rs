//! Finalizers, garbage collection and resourceVersion preconditions.

use kube::api::{DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use super::{SLO, api_error, apply, rules, server, slo, slos, value};

#[tokio::test]
async fn a_finalizer_holds_a_deleted_object_until_it_is_patched_away() {
    let server = server();
    let api = slos(&server);
    let mut object = slo("checkout");
    object["metadata"]["finalizers"] = json!(["plimsoll.dev/cleanup"]);
    api.create(
        &PostParams::default(),
        &serde_json::from_value(object).unwrap(),
    )
    .await
    .unwrap();

    let pending = api
        .delete("checkout", &DeleteParams::default())
        .await
        .unwrap()
        .left()
        .unwrap();
    assert!(pending.metadata.deletion_timestamp.is_some());
    let live = value(&api.get("checkout").await.unwrap());
    assert_eq!(live["metadata"]["deletionGracePeriodSeconds"], 0);
    assert_eq!(
        live["metadata"]["generation"], 2,
        "markAsDeleting bumps generation"
    );

    let more = json!({"metadata": {"finalizers": ["plimsoll.dev/cleanup", "other/one"]}});
    let status = api_error(
        api.patch("checkout", &PatchParams::default(), &Patch::Merge(&more))
            .await,
    );
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    assert!(
        status
            .message
            .contains("no new finalizers can be added if the object is being deleted"),
        "{}",
        status.message
    );

    let none = json!({"metadata": {"finalizers": null}});
    api.patch("checkout", &PatchParams::default(), &Patch::Merge(&none))
        .await
        .unwrap();
    assert_eq!(api_error(api.get("checkout").await).code, 404);
}

#[tokio::test]
async fn dependents_are_garbage_collected_with_their_owner() {
    let server = server();
    let slo_api = slos(&server);
    let owner = slo_api
        .create(
            &PostParams::default(),
            &serde_json::from_value(slo("checkout")).unwrap(),
        )
        .await
        .unwrap();
    let other = slo_api
        .create(
            &PostParams::default(),
            &serde_json::from_value(slo("other")).unwrap(),
        )
        .await
        .unwrap();
    let reference = |o: &DynamicObject| {
        json!({"apiVersion": SLO.0, "kind": SLO.1, "name": o.metadata.name,
                                               "uid": o.metadata.uid, "controller": true})
    };
    let rule = |name: &str, owners: Value| {
        json!({"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
        "metadata": {"name": name, "ownerReferences": owners}, "spec": {"groups": []}})
    };
    let rules = rules(&server);
    apply(
        &rules,
        "plimsoll",
        rule("checkout", json!([reference(&owner)])),
        false,
    )
    .await
    .unwrap();
    apply(
        &rules,
        "plimsoll",
        rule("shared", json!([reference(&owner), reference(&other)])),
        false,
    )
    .await
    .unwrap();

    slo_api
        .delete("checkout", &DeleteParams::default())
        .await
        .unwrap();
    assert_eq!(api_error(rules.get("checkout").await).code, 404);
    let shared = rules.get("shared").await.unwrap();
    let left: Vec<String> = shared
        .metadata
        .owner_references
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(
        left,
        ["other"],
        "a dependent with a live owner only loses the dangling reference"
    );
}

#[tokio::test]
async fn a_stale_resource_version_is_a_409() {
    let server = server();
    let api = slos(&server);
    let created = api
        .create(
            &PostParams::default(),
            &serde_json::from_value(slo("checkout")).unwrap(),
        )
        .await
        .unwrap();
    let stale = created.metadata.resource_version.clone().unwrap();
    let mut changed = created.clone();
    changed.data["spec"]["objective"] = json!(99.0);
    let updated = api
        .replace("checkout", &PostParams::default(), &changed)
        .await
        .unwrap();
    assert_ne!(
        updated.metadata.resource_version.as_deref(),
        Some(stale.as_str())
    );

    let status = api_error(
        api.replace("checkout", &PostParams::default(), &changed)
            .await,
    );
    assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
    assert!(
        status.message.contains("the object has been modified"),
        "{}",
        status.message
    );
    let patch = json!({"metadata": {"resourceVersion": stale}, "spec": {"objective": 98.0}});
    let status = api_error(
        api.patch("checkout", &PatchParams::default(), &Patch::Merge(&patch))
            .await,
    );
    assert_eq!(status.code, 409);
    let fresh = json!({"metadata": {"resourceVersion": updated.metadata.resource_version}, "spec": {"objective": 98.0}});
    api.patch("checkout", &PatchParams::default(), &Patch::Merge(&fresh))
        .await
        .unwrap();
}
