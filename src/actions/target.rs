//! The API calls on one target: read what it shows, assert or withdraw one SLO's signal, abort a
//! Rollout, release round 1's annotations.

use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::{Api, Client};
use serde_json::json;

use super::{Facts, LEGACY_FIELD_MANAGER, OPT_IN_LABEL, ROLLBACK, field_manager, per_slo_key};
use crate::api::TargetKind;
use crate::webhook::freeze::FREEZE_OVERRIDE;

/// Where each kind lives in the API.
pub fn resource(kind: TargetKind) -> ApiResource {
    let (group, version, kind, plural) = match kind {
        TargetKind::Deployment => ("apps", "v1", "Deployment", "deployments"),
        TargetKind::StatefulSet => ("apps", "v1", "StatefulSet", "statefulsets"),
        TargetKind::DaemonSet => ("apps", "v1", "DaemonSet", "daemonsets"),
        TargetKind::Rollout => ("argoproj.io", "v1alpha1", "Rollout", "rollouts"),
    };
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

fn target_api(client: &Client, namespace: &str, kind: TargetKind) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), namespace, &resource(kind))
}

/// The annotation a workload's controller keeps its revision in.
fn revision_key(kind: TargetKind) -> &'static str {
    match kind {
        TargetKind::Rollout => "rollout.argoproj.io/revision",
        _ => "deployment.kubernetes.io/revision",
    }
}

/// What a target shows now, as far as one SLO's signal goes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Observed {
    /// The revision its controller runs.
    pub revision: Option<String>,
    /// This SLO's facts on it, if it asserts a rollback there now.
    pub facts: Option<Facts>,
    /// The aggregate `plimsoll.dev/rollback` is there.
    pub aggregate: bool,
    /// Round 1's field manager still owns annotations on it.
    pub legacy: bool,
    /// It carries `plimsoll.dev/rollback-allowed: "true"`.
    pub opted_in: bool,
    /// Its `plimsoll.dev/freeze-override` reason, when non-empty: a fix is shipping.
    pub override_reason: Option<String>,
    /// A Rollout whose update is aborted now (`status.abort`, kept by its controller until the
    /// next revision).
    pub aborted: bool,
}

/// Reads a target; `None` when it (or its kind) does not exist.
pub async fn observe(
    client: &Client,
    namespace: &str,
    kind: TargetKind,
    name: &str,
    slo_name: &str,
) -> Result<Option<Observed>, kube::Error> {
    let api = target_api(client, namespace, kind);
    let Some(target) = crate::kube_client::get_if_served(&api, name).await? else {
        return Ok(None);
    };
    let meta = &target.metadata;
    let annotation = |key: &str| meta.annotations.as_ref().and_then(|a| a.get(key)).cloned();
    let legacy = meta
        .managed_fields
        .iter()
        .flatten()
        .any(|m| m.manager.as_deref() == Some(LEGACY_FIELD_MANAGER));
    let opted_in = meta
        .labels
        .as_ref()
        .and_then(|l| l.get(OPT_IN_LABEL))
        .is_some_and(|v| v == "true");
    Ok(Some(Observed {
        revision: annotation(revision_key(kind)),
        facts: annotation(&per_slo_key(slo_name)).and_then(|t| serde_json::from_str(&t).ok()),
        aggregate: annotation(ROLLBACK).is_some_and(|v| v == "true"),
        legacy,
        opted_in,
        override_reason: annotation(FREEZE_OVERRIDE).filter(|r| !r.trim().is_empty()),
        aborted: kind == TargetKind::Rollout && target.data["status"]["abort"] == true,
    }))
}

/// Applies exactly these annotations under `manager`: whatever the manager owned before and
/// does not name now is given up, and removed unless someone else owns it too.
async fn apply(
    client: &Client,
    namespace: &str,
    kind: TargetKind,
    name: &str,
    manager: &str,
    annotations: serde_json::Value,
) -> Result<(), kube::Error> {
    let resource = resource(kind);
    let mut metadata = json!({"name": name});
    if !annotations.as_object().is_none_or(|a| a.is_empty()) {
        metadata["annotations"] = annotations;
    }
    let body = json!({
        "apiVersion": resource.api_version,
        "kind": resource.kind,
        "metadata": metadata,
    });
    target_api(client, namespace, kind)
        .patch(
            name,
            &PatchParams::apply(manager).force(),
            &Patch::Apply(&body),
        )
        .await
        .map(|_| ())
}

/// Asserts one SLO's rollback on a target just observed to exist.
pub async fn signal(
    client: &Client,
    namespace: &str,
    kind: TargetKind,
    name: &str,
    slo_name: &str,
    facts: &Facts,
) -> Result<(), kube::Error> {
    let annotations = serde_json::to_value(super::signal_annotations(slo_name, facts))
        .unwrap_or_else(|_| json!({}));
    apply(
        client,
        namespace,
        kind,
        name,
        &field_manager(slo_name),
        annotations,
    )
    .await
}

/// Withdraws one SLO's signal: its per-SLO key goes, and the aggregate goes only if no other SLO
/// still owns it. Apply would create a missing object, so the target is read first; `false`
/// when it does not exist.
pub async fn withdraw(
    client: &Client,
    namespace: &str,
    kind: TargetKind,
    name: &str,
    slo_name: &str,
) -> Result<bool, kube::Error> {
    let api = target_api(client, namespace, kind);
    if crate::kube_client::get_if_served(&api, name)
        .await?
        .is_none()
    {
        return Ok(false);
    }
    let manager = field_manager(slo_name);
    match apply(client, namespace, kind, name, &manager, json!({})).await {
        Ok(()) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
        Err(e) => Err(e),
    }
}

/// Gives up everything round 1's field manager owned on a target (its single-SLO keys, and its
/// share of the aggregate: an SLO asserting now owns that too, so it stays).
pub async fn release_legacy(
    client: &Client,
    namespace: &str,
    kind: TargetKind,
    name: &str,
) -> Result<(), kube::Error> {
    apply(
        client,
        namespace,
        kind,
        name,
        LEGACY_FIELD_MANAGER,
        json!({}),
    )
    .await
}

/// Aborts a Rollout as `kubectl argo rollouts abort` does: `status.abort: true` on the status
/// subresource.
pub async fn abort(client: &Client, namespace: &str, name: &str) -> Result<(), kube::Error> {
    target_api(client, namespace, TargetKind::Rollout)
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(&json!({"status": {"abort": true}})),
        )
        .await
        .map(|_| ())
}
