//! Acting on workloads when a budget runs out: the rollback annotations on each listed target's
//! metadata (never its pod template), and `status.abort` on Argo Rollouts. Annotations are written
//! with server-side apply under their own field manager, so clearing them removes exactly our keys.

use std::collections::BTreeMap;

use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::{Api, Client};
use serde_json::json;

use crate::api::TargetKind;

/// Field manager of the annotations on targets.
pub const FIELD_MANAGER: &str = "plimsoll-rollback";

/// The annotation contract (README: "The rollback annotation contract").
pub mod keys {
    pub const BUDGET_STATE: &str = "plimsoll.dev/budget-state";
    pub const ROLLBACK: &str = "plimsoll.dev/rollback";
    pub const REASON: &str = "plimsoll.dev/rollback-reason";
    pub const SLO: &str = "plimsoll.dev/slo";
    pub const EXHAUSTED_AT: &str = "plimsoll.dev/exhausted-at";
    pub const REVISION: &str = "plimsoll.dev/rollback-revision";
}

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

/// The API of one target kind in one namespace.
fn target_api(
    client: &Client,
    namespace: &str,
    kind: TargetKind,
) -> (Api<DynamicObject>, ApiResource) {
    let resource = resource(kind);
    let api = Api::namespaced_with(client.clone(), namespace, &resource);
    (api, resource)
}

/// The annotation a workload's controller keeps its revision in.
fn revision_key(kind: TargetKind) -> &'static str {
    match kind {
        TargetKind::Rollout => "rollout.argoproj.io/revision",
        _ => "deployment.kubernetes.io/revision",
    }
}

/// The facts of one rollback signal.
#[derive(Debug, Clone, PartialEq)]
pub struct Signal {
    /// `<namespace>/<name>` of the SLO that acts.
    pub slo: String,
    /// Healthy, Burning or Exhausted.
    pub state: &'static str,
    /// One sentence with the numbers.
    pub reason: String,
    /// RFC 3339, when the episode began.
    pub exhausted_at: String,
}

/// What happened to one target.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Annotated { revision: Option<String> },
    Aborted { revision: Option<String> },
    Cleared,
    Missing,
}

/// Our annotations while the trigger holds.
pub fn rollback_annotations(signal: &Signal, revision: Option<&str>) -> BTreeMap<String, String> {
    let mut a = BTreeMap::from([
        (keys::BUDGET_STATE.to_string(), signal.state.to_string()),
        (keys::ROLLBACK.to_string(), "true".to_string()),
        (keys::REASON.to_string(), signal.reason.clone()),
        (keys::SLO.to_string(), signal.slo.clone()),
        (keys::EXHAUSTED_AT.to_string(), signal.exhausted_at.clone()),
    ]);
    if let Some(r) = revision {
        a.insert(keys::REVISION.to_string(), r.to_string());
    }
    a
}

/// Our annotations after recovery: the state stays visible, the signal is gone.
pub fn cleared_annotations(slo: &str, state: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (keys::BUDGET_STATE.to_string(), state.to_string()),
        (keys::SLO.to_string(), slo.to_string()),
    ])
}

async fn apply_annotations(
    api: &Api<DynamicObject>,
    resource: &ApiResource,
    name: &str,
    annotations: &BTreeMap<String, String>,
) -> Result<(), kube::Error> {
    let body = json!({
        "apiVersion": resource.api_version,
        "kind": resource.kind,
        "metadata": {"name": name, "annotations": annotations},
    });
    api.patch(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .map(|_| ())
}

/// What a target shows now: the revision its controller runs, and when our signal on it began.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Observed {
    pub revision: Option<String>,
    pub exhausted_at: Option<String>,
}

/// Reads a target; `None` when it (or its kind) does not exist.
pub async fn observe(
    client: &Client,
    namespace: &str,
    kind: TargetKind,
    name: &str,
) -> Result<Option<Observed>, kube::Error> {
    let (api, _) = target_api(client, namespace, kind);
    let Some(target) = api.get_opt(name).await? else {
        return Ok(None);
    };
    let annotation = |key: &str| {
        target
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(key))
            .cloned()
    };
    Ok(Some(Observed {
        revision: annotation(revision_key(kind)),
        exhausted_at: annotation(keys::EXHAUSTED_AT),
    }))
}

/// Signals a rollback on one target; for Rollouts with `abort`, also aborts the rollout (as
/// `kubectl argo rollouts abort` does). A target that does not exist is reported, not fatal.
pub async fn signal(
    client: &Client,
    namespace: &str,
    kind: TargetKind,
    name: &str,
    signal: &Signal,
    abort: bool,
) -> Result<Outcome, kube::Error> {
    match observe(client, namespace, kind, name).await? {
        None => Ok(Outcome::Missing),
        Some(seen) => {
            signal_observed(client, namespace, kind, name, signal, abort, seen.revision).await
        }
    }
}

/// Signals a rollback on a target just read, naming the revision it runs.
pub async fn signal_observed(
    client: &Client,
    namespace: &str,
    kind: TargetKind,
    name: &str,
    signal: &Signal,
    abort: bool,
    revision: Option<String>,
) -> Result<Outcome, kube::Error> {
    let (api, resource) = target_api(client, namespace, kind);
    apply_annotations(
        &api,
        &resource,
        name,
        &rollback_annotations(signal, revision.as_deref()),
    )
    .await?;
    if abort && kind == TargetKind::Rollout {
        api.patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(&json!({"status": {"abort": true}})),
        )
        .await?;
        return Ok(Outcome::Aborted { revision });
    }
    Ok(Outcome::Annotated { revision })
}

/// Removes the signal from one target, keeping the budget state visible.
pub async fn clear(
    client: &Client,
    namespace: &str,
    kind: TargetKind,
    name: &str,
    slo: &str,
    state: &str,
) -> Result<Outcome, kube::Error> {
    let annotations = cleared_annotations(slo, state);
    apply_if_present(client, namespace, kind, name, Some(&annotations)).await
}

/// Applies our annotations (`None`: none at all) to a target that exists. Apply creates missing
/// objects, so the target is read first: a workload must never be created by a rollback signal.
async fn apply_if_present(
    client: &Client,
    namespace: &str,
    kind: TargetKind,
    name: &str,
    annotations: Option<&BTreeMap<String, String>>,
) -> Result<Outcome, kube::Error> {
    let (api, resource) = target_api(client, namespace, kind);
    if api.get_opt(name).await?.is_none() {
        return Ok(Outcome::Missing);
    }
    let empty = BTreeMap::new();
    match apply_annotations(&api, &resource, name, annotations.unwrap_or(&empty)).await {
        Ok(()) => Ok(Outcome::Cleared),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(Outcome::Missing),
        Err(e) => Err(e),
    }
}

/// Takes all our annotations off one target (the SLO is being deleted): an apply that names no
/// annotation gives up every one this manager owned, and the API server removes them.
pub async fn release(
    client: &Client,
    namespace: &str,
    kind: TargetKind,
    name: &str,
) -> Result<Outcome, kube::Error> {
    apply_if_present(client, namespace, kind, name, None).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contract_keys_and_values() {
        let s = Signal {
            slo: "shop/checkout".into(),
            state: "Exhausted",
            reason: "0.0% of the error budget left".into(),
            exhausted_at: "2027-01-15T08:00:00Z".into(),
        };
        let a = rollback_annotations(&s, Some("7"));
        assert_eq!(a[keys::ROLLBACK], "true");
        assert_eq!(a[keys::REVISION], "7");
        assert_eq!(a[keys::SLO], "shop/checkout");
        assert_eq!(a.len(), 6);
        let c = cleared_annotations("shop/checkout", "Healthy");
        assert!(!c.contains_key(keys::ROLLBACK));
        assert_eq!(c[keys::BUDGET_STATE], "Healthy");
    }

    #[test]
    fn resources_of_every_kind() {
        assert_eq!(resource(TargetKind::Deployment).api_version, "apps/v1");
        assert_eq!(resource(TargetKind::Rollout).plural, "rollouts");
        assert_eq!(
            resource(TargetKind::Rollout).api_version,
            "argoproj.io/v1alpha1"
        );
    }
}
