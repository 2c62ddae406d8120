//! The API emulation in tests/support/apiserver behaves as a Kubernetes API server does, shown
//! with kube-rs's own Api, Patch, watcher and reflector against it: field ownership under
//! server-side apply, the status subresource, preconditions, finalizers, garbage collection,
//! patch types, watches, metadata-only requests, selectors, pagination, RBAC, injected faults,
//! throttling, load counters and missing kinds. The tests are in tests/apiserver/.

#[path = "support/apiserver/mod.rs"]
mod apiserver;

#[path = "apiserver/lifecycle.rs"]
mod lifecycle;
#[path = "apiserver/ownership.rs"]
mod ownership;
#[path = "apiserver/patches.rs"]
mod patches;
#[path = "apiserver/trouble.rs"]
mod trouble;
#[path = "apiserver/watching.rs"]
mod watching;

use std::time::Duration;

use apiserver::{ApiServer, Config};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use serde_json::{Value, json};

const SLO: (&str, &str) = ("plimsoll.dev/v1alpha1", "ServiceLevelObjective");
const DEPLOY: (&str, &str) = ("apps/v1", "Deployment");

fn server() -> ApiServer {
    ApiServer::start_with(Config {
        rbac: None,
        bookmark_interval: Duration::from_millis(200),
        ..Config::default()
    })
}

fn resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

fn slo_resource() -> ApiResource {
    resource(
        "plimsoll.dev",
        "v1alpha1",
        "ServiceLevelObjective",
        "servicelevelobjectives",
    )
}

fn slos(server: &ApiServer) -> Api<DynamicObject> {
    Api::namespaced_with(server.client(), "shop", &slo_resource())
}

fn deployments(server: &ApiServer) -> Api<DynamicObject> {
    Api::namespaced_with(
        server.client(),
        "shop",
        &resource("apps", "v1", "Deployment", "deployments"),
    )
}

fn rules(server: &ApiServer) -> Api<DynamicObject> {
    let ar = resource(
        "monitoring.coreos.com",
        "v1",
        "PrometheusRule",
        "prometheusrules",
    );
    Api::namespaced_with(server.client(), "shop", &ar)
}

fn slo(name: &str) -> Value {
    json!({"apiVersion": SLO.0, "kind": SLO.1, "metadata": {"name": name, "namespace": "shop"},
           "spec": {"service": name, "objective": 99.9}})
}

fn deployment_annotations(name: &str, annotations: Value) -> Value {
    json!({"apiVersion": DEPLOY.0, "kind": DEPLOY.1,
           "metadata": {"name": name, "namespace": "shop", "annotations": annotations}})
}

fn api_error(result: Result<impl std::fmt::Debug, kube::Error>) -> Box<kube::core::Status> {
    match result {
        Err(kube::Error::Api(status)) => status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn value(object: &DynamicObject) -> Value {
    serde_json::to_value(object).unwrap()
}

async fn apply(
    api: &Api<DynamicObject>,
    manager: &str,
    object: Value,
    force: bool,
) -> kube::Result<DynamicObject> {
    let name = object["metadata"]["name"].as_str().unwrap().to_string();
    let mut params = PatchParams::apply(manager);
    params.force = force;
    api.patch(&name, &params, &Patch::Apply(object)).await
}
