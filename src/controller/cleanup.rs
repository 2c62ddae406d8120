//! The finalizer that takes our rollback annotations off the targets when an SLO goes away, so a
//! deleted SLO never leaves `plimsoll.dev/rollback: "true"` behind on a workload.
//!
//! Only SLOs that can write to targets (targets listed, not `dryRun`) carry it, so deleting the
//! others never waits for the operator.

use std::collections::BTreeSet;

use kube::api::{Patch, PatchParams};
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::json;

use crate::actions;
use crate::api::{ServiceLevelObjective, TargetKind};

/// Our finalizer on ServiceLevelObjectives.
pub const FINALIZER: &str = "plimsoll.dev/cleanup";

/// Whether this SLO may leave annotations on targets, and so needs the finalizer.
pub fn wanted(slo: &ServiceLevelObjective) -> bool {
    slo.meta().deletion_timestamp.is_none()
        && slo
            .spec
            .rollback
            .as_ref()
            .is_some_and(|r| !r.dry_run && !r.targets.is_empty())
}

/// Whether the finalizer is on the object.
pub fn present(slo: &ServiceLevelObjective) -> bool {
    slo.finalizers().iter().any(|f| f == FINALIZER)
}

/// Every target that may carry our annotations: those listed now and those the status says were
/// acted on (a target removed from the spec mid-episode is still cleaned). Only the SLO's own
/// namespace: targets elsewhere are never touched.
pub fn targets(slo: &ServiceLevelObjective) -> Vec<(TargetKind, String)> {
    let namespace = slo.namespace();
    let listed = slo
        .spec
        .rollback
        .iter()
        .flat_map(|r| &r.targets)
        .filter(|t| t.namespace.is_none() || t.namespace == namespace)
        .map(|t| (t.kind, t.name.clone()));
    let acted = slo
        .status
        .iter()
        .filter_map(|s| s.rollback.as_ref())
        .flat_map(|r| &r.targets)
        .map(|t| (t.kind, t.name.clone()));
    let unique: BTreeSet<(String, TargetKind, String)> = listed
        .chain(acted)
        .map(|(kind, name)| (format!("{kind:?}"), kind, name))
        .collect();
    unique.into_iter().map(|(_, k, n)| (k, n)).collect()
}

/// The finalizers after adding or removing ours, keeping everyone else's in order.
pub fn with(slo: &ServiceLevelObjective, ours: bool) -> Vec<String> {
    let mut list: Vec<String> = slo
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    if ours {
        list.push(FINALIZER.to_string());
    }
    list
}

/// Writes the finalizer list. The resourceVersion makes it a compare-and-swap: if someone else
/// changed the object meanwhile, the API server answers 409 and the reconcile is retried. Taking
/// ours off an SLO already gone (a reconcile of a copy from before our finalizer came off and
/// the object was deleted) is done, not a failed reconcile.
pub async fn set(
    client: &Client,
    slo: &ServiceLevelObjective,
    ours: bool,
) -> Result<(), kube::Error> {
    let api: Api<ServiceLevelObjective> =
        Api::namespaced(client.clone(), &slo.namespace().unwrap_or_default());
    let patch = json!({"metadata": {
        "finalizers": with(slo, ours),
        "resourceVersion": slo.resource_version(),
    }});
    match api
        .patch(
            &slo.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 && !ours => Ok(()),
        Err(e) => Err(e),
    }
}

/// Withdraws this SLO's signal from every target (other SLOs' signals on a shared target stay)
/// and releases round 1's annotations there; stops at the first failure so the finalizer stays
/// and the cleanup is retried.
pub async fn release_targets(
    client: &Client,
    slo: &ServiceLevelObjective,
) -> Result<usize, kube::Error> {
    let namespace = slo.namespace().unwrap_or_default();
    let mut released = 0;
    for (kind, name) in targets(slo) {
        if actions::withdraw(client, &namespace, kind, &name, &slo.name_any()).await? {
            actions::release_legacy(client, &namespace, kind, &name).await?;
            released += 1;
        }
    }
    Ok(released)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slo(rollback: serde_json::Value, finalizers: &[&str]) -> ServiceLevelObjective {
        serde_json::from_value(json!({
            "apiVersion": "plimsoll.dev/v1alpha1", "kind": "ServiceLevelObjective",
            "metadata": {"name": "checkout", "namespace": "shop", "finalizers": finalizers},
            "spec": {"service": "checkout", "objective": 99.9, "window": "30d",
                     "indicator": {"ratio": {"errors": "e_total", "total": "t_total"}},
                     "rollback": rollback},
            "status": {"rollback": {"state": "Exhausted", "targets": [
                {"kind": "Deployment", "name": "old", "action": "Annotated"},
                {"kind": "Deployment", "name": "checkout", "action": "Annotated"}]}},
        }))
        .unwrap()
    }

    #[test]
    fn only_slos_that_write_to_targets_want_the_finalizer() {
        let targets = json!({"targets": [{"kind": "Deployment", "name": "checkout"}]});
        assert!(wanted(&slo(targets.clone(), &[])));
        let mut dry = targets;
        dry["dryRun"] = json!(true);
        assert!(!wanted(&slo(dry, &[])));
        assert!(!wanted(&slo(json!({}), &[])));
    }

    #[test]
    fn targets_include_those_acted_on_but_no_longer_listed() {
        let s = slo(
            json!({"targets": [{"kind": "Deployment", "name": "checkout"},
                               {"kind": "Rollout", "name": "canary"},
                               {"kind": "Deployment", "name": "elsewhere", "namespace": "other"}]}),
            &[],
        );
        let names: Vec<String> = targets(&s).into_iter().map(|(_, n)| n).collect();
        assert_eq!(names, ["checkout", "old", "canary"]);
    }

    #[test]
    fn other_finalizers_are_kept_in_order() {
        let s = slo(json!({}), &["a.io/x", FINALIZER, "b.io/y"]);
        assert!(present(&s));
        assert_eq!(with(&s, false), ["a.io/x", "b.io/y"]);
        assert_eq!(with(&s, true), ["a.io/x", "b.io/y", FINALIZER]);
    }
}
