//! Server-side apply: shared ownership, conflicts and force, removal of what a manager
//! stops applying, list-maps merged by key across managers, the status subresource.

use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use super::value;
use super::{
    DEPLOY, SLO, api_error, apply, deployment_annotations, deployments, server, slo, slos,
};

#[tokio::test]
async fn two_managers_share_an_annotation_until_both_stop_applying_it() {
    let server = server();
    server.put(json!({"apiVersion": DEPLOY.0, "kind": DEPLOY.1,
                      "metadata": {"name": "web", "namespace": "shop"}, "spec": {"replicas": 2}}));
    let api = deployments(&server);
    let owners = || {
        server.owners(
            DEPLOY.0,
            DEPLOY.1,
            "shop",
            "web",
            ".metadata.annotations.team",
        )
    };
    let shared = json!({"team": "shop"});
    apply(
        &api,
        "argocd",
        deployment_annotations("web", shared.clone()),
        false,
    )
    .await
    .unwrap();
    // The same value from another manager is no conflict: both own the field.
    apply(
        &api,
        "plimsoll",
        deployment_annotations("web", shared),
        false,
    )
    .await
    .unwrap();
    assert_eq!(owners(), ["argocd", "plimsoll"]);

    apply(
        &api,
        "argocd",
        deployment_annotations("web", json!({"argocd": "1"})),
        false,
    )
    .await
    .unwrap();
    let live = api.get("web").await.unwrap();
    assert_eq!(
        live.metadata.annotations.as_ref().unwrap()["team"],
        "shop",
        "plimsoll still owns it"
    );
    assert_eq!(owners(), ["plimsoll"]);

    apply(
        &api,
        "plimsoll",
        deployment_annotations("web", json!({})),
        false,
    )
    .await
    .unwrap();
    let live = api.get("web").await.unwrap();
    let annotations = live.metadata.annotations.clone().unwrap();
    assert!(
        !annotations.contains_key("team"),
        "nobody owns it any more: {annotations:?}"
    );
    assert_eq!(annotations["argocd"], "1");
    // The seed manager's spec is untouched throughout.
    assert_eq!(value(&live)["spec"]["replicas"], 2);
}

#[tokio::test]
async fn a_conflicting_apply_is_409_without_force_and_moves_ownership_with_it() {
    let server = server();
    let api = deployments(&server);
    apply(
        &api,
        "kubectl",
        deployment_annotations("web", json!({"x": "1"})),
        false,
    )
    .await
    .unwrap();

    let status = api_error(
        apply(
            &api,
            "plimsoll",
            deployment_annotations("web", json!({"x": "2"})),
            false,
        )
        .await,
    );
    assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        status.message,
        "Apply failed with 1 conflict: conflict with \"kubectl\": .metadata.annotations.x"
    );
    let cause = &status.details.as_ref().unwrap().causes[0];
    assert_eq!(
        (cause.reason.as_str(), cause.field.as_str()),
        ("FieldManagerConflict", ".metadata.annotations.x")
    );
    assert_eq!(
        api.get("web").await.unwrap().metadata.annotations.unwrap()["x"],
        "1"
    );

    apply(
        &api,
        "plimsoll",
        deployment_annotations("web", json!({"x": "2"})),
        true,
    )
    .await
    .unwrap();
    let live = api.get("web").await.unwrap();
    assert_eq!(live.metadata.annotations.as_ref().unwrap()["x"], "2");
    assert_eq!(
        server.owners(DEPLOY.0, DEPLOY.1, "shop", "web", ".metadata.annotations.x"),
        ["plimsoll"]
    );
    // kubectl owned nothing else, so its entry is gone from managedFields.
    let managers: Vec<String> = live
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert_eq!(managers, ["plimsoll"]);
}

#[tokio::test]
async fn an_apply_that_omits_keys_removes_only_that_managers_keys() {
    let server = server();
    let api = deployments(&server);
    let labels = |l: Value| {
        json!({"apiVersion": DEPLOY.0, "kind": DEPLOY.1,
                                   "metadata": {"name": "web", "labels": l}})
    };
    apply(&api, "a", labels(json!({"a1": "x", "a2": "x"})), false)
        .await
        .unwrap();
    apply(&api, "b", labels(json!({"b1": "x"})), false)
        .await
        .unwrap();
    server
        .patch_merge_as(
            "human",
            DEPLOY.0,
            DEPLOY.1,
            "shop",
            "web",
            json!({"metadata": {"labels": {"h": "x"}}}),
        )
        .unwrap();
    apply(&api, "a", labels(json!({"a1": "x"})), false)
        .await
        .unwrap();
    let live = api.get("web").await.unwrap();
    let mut keys: Vec<String> = live.metadata.labels.unwrap().into_keys().collect();
    keys.sort();
    assert_eq!(keys, ["a1", "b1", "h"]);
    let fields = server.managers(DEPLOY.0, DEPLOY.1, "shop", "web");
    let human = fields.iter().find(|m| m.manager == "human").unwrap();
    assert_eq!(
        (human.operation.as_str(), human.fields.as_slice()),
        ("Update", &[".metadata.labels.h".to_string()][..])
    );
}

#[tokio::test]
async fn status_conditions_merge_by_type_across_managers() {
    let server = server();
    let api = slos(&server);
    api.create(
        &PostParams::default(),
        &serde_json::from_value(slo("checkout")).unwrap(),
    )
    .await
    .unwrap();
    let status = |conditions: Value| {
        json!({"apiVersion": SLO.0, "kind": SLO.1,
                                             "metadata": {"name": "checkout"}, "status": {"conditions": conditions}})
    };
    let condition = |t: &str, s: &str| json!({"type": t, "status": s, "reason": "R"});
    let params = PatchParams::apply("plimsoll-reconciler").force();
    api.patch_status(
        "checkout",
        &params,
        &Patch::Apply(status(json!([condition("Ready", "False")]))),
    )
    .await
    .unwrap();
    let params = PatchParams::apply("plimsoll-evaluator").force();
    api.patch_status(
        "checkout",
        &params,
        &Patch::Apply(status(json!([condition("BudgetExhausted", "True")]))),
    )
    .await
    .unwrap();
    let params = PatchParams::apply("plimsoll-reconciler").force();
    let after = api
        .patch_status(
            "checkout",
            &params,
            &Patch::Apply(status(json!([condition("Ready", "True")]))),
        )
        .await
        .unwrap();
    let after = value(&after);
    let conditions: Vec<(String, String)> = after["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["type"].as_str().unwrap().into(),
                c["status"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        conditions,
        [
            ("Ready".into(), "True".into()),
            ("BudgetExhausted".into(), "True".into())
        ]
    );
    assert_eq!(
        after["metadata"]["generation"], 1,
        "status writes do not bump generation"
    );
    let entry = after["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["manager"] == "plimsoll-reconciler")
        .unwrap()
        .clone();
    assert_eq!(entry["subresource"], "status");
    assert_eq!(entry["operation"], "Apply");
    assert_eq!(
        entry["fieldsV1"],
        json!({"f:status": {"f:conditions": {"k:{\"type\":\"Ready\"}": {
        ".": {}, "f:reason": {}, "f:status": {}, "f:type": {}}}}})
    );

    // The main resource ignores status; a spec change bumps generation.
    let mut changed = slo("checkout");
    changed["spec"]["objective"] = json!(99.5);
    changed["status"] = json!({"conditions": []});
    // The creator (kube-rs sends no User-Agent, so the manager is "") owns the spec: force.
    let after = value(&apply(&api, "kubectl", changed, true).await.unwrap());
    assert_eq!(after["metadata"]["generation"], 2);
    assert_eq!(after["status"]["conditions"].as_array().unwrap().len(), 2);
}
