//! Create, update and the patch types, with the answers a real API server gives.

use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;

use super::{DEPLOY, SLO, api_error, apply, deployments, server, slo, slos, value};

#[tokio::test]
async fn creates_and_updates_keep_the_api_servers_rules() {
    let server = server();
    let api = slos(&server);
    let object = serde_json::from_value(slo("checkout")).unwrap();
    let created = api.create(&PostParams::default(), &object).await.unwrap();
    let meta = &created.metadata;
    assert!(meta.uid.is_some() && meta.creation_timestamp.is_some());
    assert_eq!(meta.generation, Some(1));
    let status = api_error(api.create(&PostParams::default(), &object).await);
    assert_eq!(
        (status.code, status.reason.as_str()),
        (409, "AlreadyExists")
    );

    let mut generated = slo("");
    generated["metadata"] = json!({"generateName": "checkout-"});
    let generated = serde_json::from_value(generated).unwrap();
    let named = api
        .create(&PostParams::default(), &generated)
        .await
        .unwrap();
    assert!(named.metadata.name.unwrap().starts_with("checkout-"));

    // A custom resource needs a resourceVersion to be replaced.
    let mut unconditional = created.clone();
    unconditional.metadata.resource_version = None;
    let status = api_error(
        api.replace("checkout", &PostParams::default(), &unconditional)
            .await,
    );
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));

    // Labels are metadata: no new generation. A dry run changes nothing.
    let labels = json!({"metadata": {"labels": {"team": "shop"}}});
    let relabelled = api
        .patch("checkout", &PatchParams::default(), &Patch::Merge(&labels))
        .await
        .unwrap();
    assert_eq!(relabelled.metadata.generation, Some(1));
    let spec = json!({"spec": {"objective": 90.0}});
    let dry = PatchParams {
        dry_run: true,
        ..PatchParams::default()
    };
    let answer = api
        .patch("checkout", &dry, &Patch::Merge(&spec))
        .await
        .unwrap();
    assert_eq!(answer.data["spec"]["objective"], 90.0);
    let stored = server.get(SLO.0, SLO.1, "shop", "checkout").unwrap();
    assert_eq!(stored["spec"]["objective"], 99.9);
    assert_eq!(
        stored["metadata"]["resourceVersion"],
        json!(relabelled.metadata.resource_version)
    );
}

#[tokio::test]
async fn an_apply_that_changes_nothing_writes_nothing() {
    let server = server();
    let api = slos(&server);
    let first = apply(&api, "plimsoll", slo("checkout"), false)
        .await
        .unwrap();
    let before = server.resource_version();
    let again = apply(&api, "plimsoll", slo("checkout"), false)
        .await
        .unwrap();
    assert_eq!(
        again.metadata.resource_version,
        first.metadata.resource_version
    );
    assert_eq!(server.resource_version(), before, "no write, no event");
    let entry = &value(&again)["metadata"]["managedFields"][0];
    assert_eq!(
        entry["fieldsV1"],
        json!({"f:spec": {"f:objective": {}, "f:service": {}}})
    );
}

#[tokio::test]
async fn json_patches_test_and_custom_resources_refuse_strategic_merge() {
    let server = server();
    let api = slos(&server);
    apply(&api, "plimsoll", slo("checkout"), false)
        .await
        .unwrap();
    let patch = |expected: f64| -> json_patch::Patch {
        serde_json::from_value(json!([
            {"op": "test", "path": "/spec/objective", "value": expected},
            {"op": "replace", "path": "/spec/objective", "value": 95.0}]))
        .unwrap()
    };
    let status = api_error(
        api.patch(
            "checkout",
            &PatchParams::default(),
            &Patch::Json::<()>(patch(1.0)),
        )
        .await,
    );
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    let patched = api
        .patch(
            "checkout",
            &PatchParams::default(),
            &Patch::Json::<()>(patch(99.9)),
        )
        .await
        .unwrap();
    assert_eq!(patched.data["spec"]["objective"], 95.0);

    let strategic = Patch::Strategic(json!({"spec": {"objective": 90.0}}));
    let status = api_error(
        api.patch("checkout", &PatchParams::default(), &strategic)
            .await,
    );
    assert_eq!(
        (status.code, status.reason.as_str()),
        (415, "UnsupportedMediaType")
    );
    assert!(
        status.message.ends_with("application/apply-patch+yaml"),
        "{}",
        status.message
    );
}

#[tokio::test]
async fn strategic_merge_merges_containers_by_name_on_built_in_kinds() {
    let server = server();
    let container = |name: &str, image: &str| json!({"name": name, "image": image});
    server.put(json!({"apiVersion": DEPLOY.0, "kind": DEPLOY.1,
        "metadata": {"name": "web", "namespace": "shop", "finalizers": ["a"]},
        "spec": {"template": {"spec": {"containers": [container("app", "app:1"), container("proxy", "proxy:1")]}}}}));
    let patch = json!({"metadata": {"finalizers": ["b"]},
                       "spec": {"template": {"spec": {"containers": [container("app", "app:2")]}}}});
    let api = deployments(&server);
    let patched = value(
        &api.patch("web", &PatchParams::default(), &Patch::Strategic(patch))
            .await
            .unwrap(),
    );
    let images: Vec<&str> = patched["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["image"].as_str().unwrap())
        .collect();
    assert_eq!(images, ["app:2", "proxy:1"]);
    assert_eq!(
        patched["metadata"]["finalizers"],
        json!(["a", "b"]),
        "finalizers merge as a set"
    );
}

#[tokio::test]
async fn an_apply_creates_with_201_and_updates_with_200() {
    let server = server();
    let path = "/apis/plimsoll.dev/v1alpha1/namespaces/shop/servicelevelobjectives/checkout?fieldManager=m";
    let status = async |objective: f64| {
        let mut object = slo("checkout");
        object["spec"]["objective"] = json!(objective);
        let request = http::Request::patch(path)
            .header("content-type", "application/apply-patch+yaml")
            .body(kube::client::Body::from(
                serde_json::to_vec(&object).unwrap(),
            ))
            .unwrap();
        server
            .client()
            .send(request)
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(status(99.9).await, 201);
    assert_eq!(status(99.5).await, 200);
    assert_eq!(
        server.get(SLO.0, SLO.1, "shop", "checkout").unwrap()["spec"]["objective"],
        99.5
    );
}

#[tokio::test]
async fn an_apply_needs_a_field_manager() {
    let server = server();
    let body = serde_json::to_vec(&slo("checkout")).unwrap();
    let path = "/apis/plimsoll.dev/v1alpha1/namespaces/shop/servicelevelobjectives/checkout";
    // kube refuses to send an apply without one, so this request is built by hand.
    let request = http::Request::patch(path)
        .header("content-type", "application/apply-patch+yaml")
        .body(body)
        .unwrap();
    let status = api_error(server.client().request_text(request).await);
    assert_eq!((status.code, status.reason.as_str()), (400, "BadRequest"));
    assert!(
        status.message.contains("fieldManager: Required value"),
        "{}",
        status.message
    );
}
