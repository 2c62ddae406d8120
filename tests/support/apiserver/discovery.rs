//! The non-resource paths a client may ask for: /version and the discovery documents of the
//! registered resources (/api, /apis, /api/v1, /apis/group/version). RBAC grants these to every
//! authenticated user (system:discovery), so they are never refused. Anything else is 404.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::response::Response;
use serde_json::{Value, json};

use super::Shared;
use super::http::{error_response, json_response};
use super::resources::Resource;
use super::status::ApiError;

fn resource_list(group_version: &str, defs: &[Resource]) -> Value {
    let mut resources = Vec::new();
    for d in defs {
        let verbs = [
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ];
        resources.push(
            json!({"name": d.plural, "singularName": d.kind.to_lowercase(),
                              "namespaced": d.namespaced, "kind": d.kind, "verbs": verbs}),
        );
        if d.status {
            resources.push(
                json!({"name": format!("{}/status", d.plural), "singularName": "",
                                  "namespaced": d.namespaced, "kind": d.kind,
                                  "verbs": ["get", "patch", "update"]}),
            );
        }
    }
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version,
           "resources": resources})
}

fn group_list(defs: &[Resource]) -> Value {
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for d in defs.iter().filter(|d| !d.group.is_empty()) {
        let versions = groups.entry(d.group.clone()).or_default();
        if !versions.contains(&d.version) {
            versions.push(d.version.clone());
        }
    }
    let groups: Vec<Value> = groups
        .iter()
        .map(|(g, vs)| {
            let versions: Vec<Value> = vs
                .iter()
                .map(|v| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
                .collect();
            json!({"name": g, "versions": versions, "preferredVersion": versions[0]})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

pub fn answer(shared: &Shared, method: &str, path: &str) -> Response {
    if method != "GET" {
        return error_response(&ApiError::no_resource());
    }
    let defs: Vec<Resource> = {
        let store = shared.store.lock().unwrap();
        store
            .tables
            .iter()
            .flatten()
            .map(|t| t.def.clone())
            .collect()
    };
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let body = match segments.as_slice() {
        ["version"] => json!({"major": "1", "minor": "33", "gitVersion": "v1.33.0",
                              "platform": "linux/amd64"}),
        ["api"] => json!({"kind": "APIVersions", "versions": ["v1"],
                          "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                              "serverAddress": format!("127.0.0.1:{}", shared.port)}]}),
        ["api", "v1"] => {
            let core: Vec<Resource> = defs.into_iter().filter(|d| d.group.is_empty()).collect();
            resource_list("v1", &core)
        }
        ["apis"] => group_list(&defs),
        ["apis", group, version] => {
            let served: Vec<Resource> = defs
                .into_iter()
                .filter(|d| d.group == *group && d.version == *version)
                .collect();
            if served.is_empty() {
                return error_response(&ApiError::no_resource());
            }
            resource_list(&format!("{group}/{version}"), &served)
        }
        _ => return error_response(&ApiError::no_resource()),
    };
    json_response(200, Bytes::from(body.to_string()))
}
