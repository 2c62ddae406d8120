//! The API calls the tests' mocked API servers see, held to `plimsoll::access::ACCESS`: each
//! request is mapped to what RBAC would check (group, resource with subresource, verb,
//! namespace, name), and a request the table does not permit fails the test.
#![allow(dead_code)]

use plimsoll::access::{self, Call, DEFAULT_LEASE_NAME, Features, Name};

/// The operator as the tests run it: every feature on, default object names.
pub const FEATURES: Features = Features {
    rollback_actions: true,
    webhook_certificate: true,
};

/// The object names of a default install (release `plimsoll`).
pub fn default_names(name: Name) -> String {
    match name {
        Name::Any => String::new(),
        Name::Lease => DEFAULT_LEASE_NAME.to_string(),
        Name::WebhookSecret => "plimsoll-webhook-tls".to_string(),
        Name::WebhookConfiguration => "plimsoll".to_string(),
    }
}

/// What RBAC checks for an HTTP request to the API server, or `None` for a request that is not
/// about a resource (discovery, /version).
pub fn call(method: &str, path: &str, query: &str) -> Option<Call> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, rest) = match segments.as_slice() {
        ["api", "v1", rest @ ..] => ("", rest),
        ["apis", group, _version, rest @ ..] => (*group, rest),
        _ => return None,
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, resource, rest @ ..] => (Some(ns.to_string()), {
            let mut r = vec![*resource];
            r.extend_from_slice(rest);
            r
        }),
        other => (None, other.to_vec()),
    };
    let (resource, name, subresource) = match rest.as_slice() {
        [resource] => (*resource, None, None),
        [resource, name] => (*resource, Some(name.to_string()), None),
        [resource, name, sub] => (*resource, Some(name.to_string()), Some(*sub)),
        _ => return None,
    };
    let watching = query
        .split('&')
        .any(|q| q == "watch=true" || q == "watch=1");
    let verb = match (method, name.is_some()) {
        ("GET", true) => "get",
        ("GET", false) if watching => "watch",
        ("GET", false) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => return None,
    };
    let resource = match subresource {
        Some(sub) => format!("{resource}/{sub}"),
        None => resource.to_string(),
    };
    Some(Call {
        group: group.to_string(),
        resource,
        verb: verb.to_string(),
        namespace,
        name,
    })
}

/// Why the operator, with `features`, may not make this request; `None` when it may.
pub fn refusal(method: &str, path: &str, query: &str, features: Features) -> Option<String> {
    match call(method, path, query) {
        None => Some(format!(
            "{method} {path}: not a resource request the table could list"
        )),
        Some(call) => access::permit(&call, features, default_names).err(),
    }
}

/// Fails the test when the request is not permitted with every feature on.
pub fn check(method: &str, path: &str, query: &str) {
    check_with(method, path, query, FEATURES);
}

/// Fails the test when the request is not permitted with `features`.
pub fn check_with(method: &str, path: &str, query: &str, features: Features) {
    if let Some(why) = refusal(method, path, query, features) {
        panic!("the operator made a call its RBAC does not grant: {why}");
    }
}
