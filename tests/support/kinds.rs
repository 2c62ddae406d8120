//! "Parses as the kind it claims": each rendered object is deserialized into the Rust type of its
//! apiVersion and kind (k8s-openapi for Kubernetes' own kinds; small typed mirrors, with unknown
//! fields denied, for prometheus-operator's and cert-manager's), then serialized again. A field
//! the type does not know (a typo such as `readOnlyRootFileSystem`) is lost on the way and
//! reported with its path, so unknown fields are denied for every kind.
#![allow(dead_code)]

use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// prometheus-operator's ServiceMonitor (monitoring.coreos.com/v1), the fields the chart uses.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ServiceMonitor {
    api_version: String,
    kind: String,
    metadata: ObjectMeta,
    spec: ServiceMonitorSpec,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ServiceMonitorSpec {
    selector: LabelSelector,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace_selector: Option<NamespaceSelector>,
    endpoints: Vec<Endpoint>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct NamespaceSelector {
    #[serde(skip_serializing_if = "Option::is_none")]
    any: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    match_names: Option<Vec<String>>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Endpoint {
    port: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    interval: Option<String>,
}

/// cert-manager's Issuer (cert-manager.io/v1), self-signed.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Issuer {
    api_version: String,
    kind: String,
    metadata: ObjectMeta,
    spec: IssuerSpec,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct IssuerSpec {
    self_signed: SelfSigned,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SelfSigned {}

/// cert-manager's Certificate (cert-manager.io/v1), the fields the chart uses.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Certificate {
    api_version: String,
    kind: String,
    metadata: ObjectMeta,
    spec: CertificateSpec,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CertificateSpec {
    secret_name: String,
    dns_names: Vec<String>,
    issuer_ref: IssuerRef,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct IssuerRef {
    name: String,
    kind: String,
    group: String,
}

/// Deserializes `object` as `T` and checks that nothing was lost or changed.
fn round_trip<T: DeserializeOwned + Serialize>(object: &Value) -> Result<(), String> {
    let typed: T = serde_path_to_error::deserialize(object.clone())
        .map_err(|e| format!("at {}: {}", e.path(), e.inner()))?;
    let back = serde_json::to_value(&typed).map_err(|e| e.to_string())?;
    lost(object, &back, "")
}

/// The first path where `original` has something `back` lacks or changed.
fn lost(original: &Value, back: &Value, path: &str) -> Result<(), String> {
    match (original, back) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, value) in a {
                let here = format!("{path}.{key}");
                match b.get(key) {
                    Some(other) => lost(value, other, &here)?,
                    None if value.is_null() => {}
                    None => return Err(format!("{here}: unknown field")),
                }
            }
            Ok(())
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => a
            .iter()
            .zip(b)
            .enumerate()
            .try_for_each(|(i, (x, y))| lost(x, y, &format!("{path}[{i}]"))),
        (a, b) if a == b => Ok(()),
        (a, b) => Err(format!("{path}: {a} came back as {b}")),
    }
}

/// Checks that `object` is a valid object of the kind it claims, with no unknown fields.
pub fn check(object: &Value) -> Result<(), String> {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let kind = object["kind"].as_str().unwrap_or_default();
    let result = match (api_version, kind) {
        ("v1", "Namespace") => round_trip::<Namespace>(object),
        ("v1", "ServiceAccount") => round_trip::<ServiceAccount>(object),
        ("v1", "Service") => round_trip::<Service>(object),
        ("v1", "ConfigMap") => round_trip::<ConfigMap>(object),
        ("networking.k8s.io/v1", "Ingress") => round_trip::<Ingress>(object),
        ("apps/v1", "Deployment") => round_trip::<Deployment>(object),
        ("policy/v1", "PodDisruptionBudget") => round_trip::<PodDisruptionBudget>(object),
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => round_trip::<ClusterRole>(object),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
            round_trip::<ClusterRoleBinding>(object)
        }
        ("rbac.authorization.k8s.io/v1", "Role") => round_trip::<Role>(object),
        ("rbac.authorization.k8s.io/v1", "RoleBinding") => round_trip::<RoleBinding>(object),
        ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration") => {
            round_trip::<ValidatingWebhookConfiguration>(object)
        }
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition") => {
            round_trip::<CustomResourceDefinition>(object)
        }
        ("monitoring.coreos.com/v1", "ServiceMonitor") => round_trip::<ServiceMonitor>(object),
        ("cert-manager.io/v1", "Issuer") => round_trip::<Issuer>(object),
        ("cert-manager.io/v1", "Certificate") => round_trip::<Certificate>(object),
        _ => Err("no Rust type for this apiVersion and kind".to_string()),
    };
    result.map_err(|e| {
        format!(
            "{api_version} {kind} {}: {e}",
            object["metadata"]["name"].as_str().unwrap_or("?")
        )
    })
}

/// Every object's problem, if any.
pub fn check_all(objects: &[Value]) -> Vec<String> {
    objects.iter().filter_map(|o| check(o).err()).collect()
}
