//! `/freeze`: the deploy freeze. While an SLO's error budget is exhausted, the pod template of
//! each of its rollback targets may not change, unless the workload carries the override
//! annotation with a reason. Pure: a decision over the request and a slice of SLOs.
//!
//! It never blocks on missing data: without the SLOs (the cache has not listed them yet) or with
//! a request it cannot read, it admits.

use std::sync::Arc;

use kube::core::admission::Operation;
use serde_json::Value;

use super::review::{Refusal, Review, Verdict};
use crate::api::{ServiceLevelObjective, TargetKind};
use crate::evaluator::status::BUDGET_EXHAUSTED;

/// Annotation on a workload that lets a pod template change through the freeze; the value is
/// the reason, shown back as a warning.
pub const FREEZE_OVERRIDE: &str = "plimsoll.dev/freeze-override";

/// A workload update, as the freeze judges it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change<'a> {
    pub kind: TargetKind,
    pub namespace: &'a str,
    pub name: &'a str,
    /// `spec.template` differs between the old and the new object.
    pub template_changed: bool,
    /// The override annotation on the new object, as written (possibly blank).
    pub override_reason: Option<&'a str>,
}

/// The verdict on one request; `slos` is `None` while the SLOs are not known.
pub fn review(review: &Review, slos: Option<&[Arc<ServiceLevelObjective>]>) -> Verdict {
    let Some(change) = change(review) else {
        return Verdict::allow();
    };
    if !change.template_changed {
        return Verdict::allow();
    }
    match slos {
        Some(slos) => decide(&change, slos),
        None => Verdict::warn(
            "deploy freeze not checked: the operator has not loaded the SLOs yet".to_string(),
        ),
    }
}

/// The workload update in a request; `None` for anything the freeze does not look at (other
/// operations, kinds or subresources, unreadable objects).
pub fn change(review: &Review) -> Option<Change<'_>> {
    let request = &review.request;
    if request.operation != Operation::Update || request.sub_resource.is_some() {
        return None;
    }
    let kind = match (request.kind.group.as_str(), request.kind.kind.as_str()) {
        ("apps", "Deployment") => TargetKind::Deployment,
        ("apps", "StatefulSet") => TargetKind::StatefulSet,
        ("apps", "DaemonSet") => TargetKind::DaemonSet,
        ("argoproj.io", "Rollout") => TargetKind::Rollout,
        _ => return None,
    };
    let object = review.object.as_ref()?;
    let old = review.old_object.as_ref()?;
    let namespace = request.namespace.as_deref().or_else(|| {
        object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
    })?;
    let name = Some(request.name.as_str())
        .filter(|n| !n.is_empty())
        .or_else(|| object.pointer("/metadata/name").and_then(Value::as_str))?;
    Some(Change {
        kind,
        namespace,
        name,
        template_changed: object.pointer("/spec/template") != old.pointer("/spec/template"),
        override_reason: object
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(FREEZE_OVERRIDE))
            .and_then(Value::as_str),
    })
}

/// The freeze decision for one change, over the SLOs known.
pub fn decide(change: &Change, slos: &[Arc<ServiceLevelObjective>]) -> Verdict {
    if !change.template_changed {
        return Verdict::allow();
    }
    let mut holding: Vec<&ServiceLevelObjective> = slos
        .iter()
        .map(AsRef::as_ref)
        .filter(|slo| targets(slo, change) && exhausted(slo))
        .collect();
    holding.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let (dry, enforcing): (Vec<_>, Vec<_>) = holding.into_iter().partition(|slo| dry_run(slo));
    let workload = format!("{:?} {}/{}", change.kind, change.namespace, change.name);
    if enforcing.is_empty() {
        return match dry.is_empty() {
            true => Verdict::allow(),
            false => Verdict::warn(format!(
                "deploy freeze (dryRun, not enforced): {} would refuse this pod template change \
                 to {workload}",
                budgets(&dry)
            )),
        };
    }
    let reason = change.override_reason.map(str::trim).unwrap_or_default();
    if !reason.is_empty() {
        return Verdict::warn(format!(
            "deploy freeze overridden by {FREEZE_OVERRIDE} ({reason:?}): {}",
            budgets(&enforcing)
        ));
    }
    let blank = match change.override_reason {
        Some(_) => format!(" ({FREEZE_OVERRIDE} is set but empty: give a reason.)"),
        None => String::new(),
    };
    Verdict::deny(
        Refusal::Forbidden,
        format!(
            "deploy freeze: {}, so the pod template of {workload} may not change until the budget \
         recovers. To change it anyway, set the annotation {FREEZE_OVERRIDE}: \"<reason>\" on the \
         {:?} in the same update (remove it afterwards); rollbacks change the pod template too \
         and need it as well.{blank}",
            budgets(&enforcing),
            change.kind,
        ),
    )
}

/// "the error budget of SLO shop/a is exhausted (-3.2% left)", for one or more SLOs.
fn budgets(slos: &[&ServiceLevelObjective]) -> String {
    let each: Vec<String> = slos
        .iter()
        .map(|slo| {
            let remaining = slo
                .status
                .as_ref()
                .and_then(|s| s.error_budget.as_ref())
                .map(|b| format!("{}% left", b.remaining))
                .unwrap_or_else(|| "remaining budget unknown".to_string());
            format!(
                "SLO {}/{} ({remaining})",
                slo.metadata.namespace.as_deref().unwrap_or_default(),
                slo.metadata.name.as_deref().unwrap_or_default()
            )
        })
        .collect();
    match each.len() {
        1 => format!("the error budget of {} is exhausted", each.join("")),
        _ => format!("the error budgets of {} are exhausted", each.join(", ")),
    }
}

fn targets(slo: &ServiceLevelObjective, change: &Change) -> bool {
    slo.metadata.namespace.as_deref() == Some(change.namespace)
        && slo.spec.rollback.as_ref().is_some_and(|rollback| {
            rollback.targets.iter().any(|t| {
                t.kind == change.kind
                    && t.name == change.name
                    && t.namespace
                        .as_deref()
                        .is_none_or(|ns| ns == change.namespace)
            })
        })
}

fn exhausted(slo: &ServiceLevelObjective) -> bool {
    slo.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == BUDGET_EXHAUSTED && c.status == "True")
    })
}

fn dry_run(slo: &ServiceLevelObjective) -> bool {
    slo.spec.rollback.as_ref().is_some_and(|r| r.dry_run)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::review::tests::{body, review as parse};
    use serde_json::json;

    /// An SLO in `namespace` whose rollback targets the Deployment `checkout`, with the
    /// BudgetExhausted condition `exhausted` (None: no status at all).
    fn slo(namespace: &str, exhausted: Option<&str>, dry_run: bool) -> Arc<ServiceLevelObjective> {
        let mut object = json!({
            "apiVersion": "plimsoll.dev/v1alpha1", "kind": "ServiceLevelObjective",
            "metadata": {"name": "checkout-availability", "namespace": namespace},
            "spec": {"service": "checkout", "objective": 99.9, "window": "30d",
                     "indicator": {"ratio": {"errors": "e_total", "total": "t_total"}},
                     "rollback": {"targets": [{"kind": "Rollout", "name": "checkout"},
                                              {"kind": "Deployment", "name": "checkout"}],
                                  "dryRun": dry_run}},
        });
        if let Some(status) = exhausted {
            object["status"] = json!({
                "errorBudget": {"remaining": "-3.2", "consumedMinutes": "44.6",
                                "totalMinutes": "43.2"},
                "conditions": [{"type": "BudgetExhausted", "status": status,
                                "reason": "BudgetExhausted", "message": "",
                                "lastTransitionTime": "2026-01-01T00:00:00Z"}]});
        }
        Arc::new(serde_json::from_value(object).unwrap())
    }

    fn update<'a>(name: &'a str, template_changed: bool, reason: Option<&'a str>) -> Change<'a> {
        Change {
            kind: TargetKind::Deployment,
            namespace: "shop",
            name,
            template_changed,
            override_reason: reason,
        }
    }

    fn denied(verdict: &Verdict) -> bool {
        !verdict.allowed()
    }

    /// (template changed, target name, SLOs, override annotation, denied)
    type Row<'a> = (
        bool,
        &'a str,
        &'a [Arc<ServiceLevelObjective>],
        Option<&'a str>,
        bool,
    );

    #[test]
    fn decision_table() {
        let exhausted = [slo("shop", Some("True"), false)];
        let within = [slo("shop", Some("False"), false)];
        let no_status = [slo("shop", None, false)];
        let elsewhere = [slo("payments", Some("True"), false)];
        let dry = [slo("shop", Some("True"), true)];
        let none: [Arc<ServiceLevelObjective>; 0] = [];
        let table: [Row; 12] = [
            (true, "checkout", &exhausted, None, true),
            (false, "checkout", &exhausted, None, false),
            (true, "other", &exhausted, None, false),
            (true, "checkout", &elsewhere, None, false),
            (true, "checkout", &within, None, false),
            (true, "checkout", &no_status, None, false),
            (true, "checkout", &none, None, false),
            (
                true,
                "checkout",
                &exhausted,
                Some("hotfix for INC-42"),
                false,
            ),
            (true, "checkout", &exhausted, Some(""), true),
            (true, "checkout", &exhausted, Some("   "), true),
            (true, "checkout", &dry, None, false),
            (false, "checkout", &exhausted, Some(""), false),
        ];
        for (i, (template, name, slos, reason, deny)) in table.into_iter().enumerate() {
            let verdict = decide(&update(name, template, reason), slos);
            assert_eq!(denied(&verdict), deny, "row {i}: {verdict:?}");
        }
    }

    #[test]
    fn the_denial_names_the_slo_its_budget_and_the_override() {
        let Verdict::Deny { message, .. } = decide(
            &update("checkout", true, None),
            &[slo("shop", Some("True"), false)],
        ) else {
            panic!("allowed");
        };
        assert!(
            message.starts_with(
                "deploy freeze: the error budget of SLO shop/checkout-availability (-3.2% left) \
                 is exhausted, so the pod template of Deployment shop/checkout may not change"
            ),
            "{message}"
        );
        assert!(
            message.contains("plimsoll.dev/freeze-override: \"<reason>\""),
            "{message}"
        );
        let Verdict::Deny { message, .. } = decide(
            &update("checkout", true, Some("")),
            &[slo("shop", Some("True"), false)],
        ) else {
            panic!("allowed");
        };
        assert!(message.contains("is set but empty"), "{message}");
    }

    #[test]
    fn an_override_or_a_dry_run_admits_with_a_warning() {
        let Verdict::Allow { warnings } = decide(
            &update("checkout", true, Some("hotfix for INC-42")),
            &[slo("shop", Some("True"), false)],
        ) else {
            panic!("denied");
        };
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0].contains("\"hotfix for INC-42\""),
            "{warnings:?}"
        );
        assert!(warnings[0].contains("shop/checkout-availability"));
        let Verdict::Allow { warnings } = decide(
            &update("checkout", true, None),
            &[slo("shop", Some("True"), true)],
        ) else {
            panic!("denied");
        };
        assert!(warnings[0].contains("dryRun"), "{warnings:?}");
    }

    #[test]
    fn several_exhausted_slos_are_all_named() {
        let mut other = (*slo("shop", Some("True"), false)).clone();
        other.metadata.name = Some("checkout-latency".into());
        let Verdict::Deny { message, .. } = decide(
            &update("checkout", true, None),
            &[slo("shop", Some("True"), false), Arc::new(other)],
        ) else {
            panic!("allowed");
        };
        assert!(
            message.contains(
                "the error budgets of SLO shop/checkout-availability (-3.2% left), SLO \
                 shop/checkout-latency (-3.2% left) are exhausted"
            ),
            "{message}"
        );
    }

    fn deployment(image: &str, annotations: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "checkout", "namespace": "shop", "annotations": annotations},
               "spec": {"replicas": 2, "template": {"spec": {"containers": [
                   {"name": "app", "image": image}]}}}})
    }

    #[test]
    fn requests_are_read_into_changes() {
        let old = deployment("shop:1", json!({}));
        let new = deployment("shop:2", json!({FREEZE_OVERRIDE: "INC-42"}));
        let r = parse(&body(
            "UPDATE",
            ("apps", "v1", "Deployment"),
            Some(new),
            Some(old.clone()),
        ));
        assert_eq!(
            change(&r),
            Some(Change {
                kind: TargetKind::Deployment,
                namespace: "shop",
                name: "checkout",
                template_changed: true,
                override_reason: Some("INC-42"),
            })
        );
        let mut scaled = old.clone();
        scaled["spec"]["replicas"] = json!(5);
        let r = parse(&body(
            "UPDATE",
            ("apps", "v1", "Deployment"),
            Some(scaled),
            Some(old.clone()),
        ));
        assert_eq!(change(&r).map(|c| c.template_changed), Some(false));
        for (kind, expected) in [
            (("apps", "v1", "StatefulSet"), Some(TargetKind::StatefulSet)),
            (("apps", "v1", "DaemonSet"), Some(TargetKind::DaemonSet)),
            (
                ("argoproj.io", "v1alpha1", "Rollout"),
                Some(TargetKind::Rollout),
            ),
            (("", "v1", "Pod"), None),
            (("example.com", "v1", "Deployment"), None),
        ] {
            let r = parse(&body("UPDATE", kind, Some(old.clone()), Some(old.clone())));
            assert_eq!(change(&r).map(|c| c.kind), expected, "{kind:?}");
        }
        let create = parse(&body(
            "CREATE",
            ("apps", "v1", "Deployment"),
            Some(old),
            None,
        ));
        assert_eq!(change(&create), None, "creating a workload is not frozen");
    }

    #[test]
    fn nothing_known_admits() {
        let old = deployment("shop:1", json!({}));
        let new = deployment("shop:2", json!({}));
        let r = parse(&body(
            "UPDATE",
            ("apps", "v1", "Deployment"),
            Some(new),
            Some(old),
        ));
        let verdict = review(&r, None);
        assert!(verdict.allowed(), "the SLOs are not loaded: {verdict:?}");
        assert!(denied(&review(
            &r,
            Some(&[slo("shop", Some("True"), false)])
        )));
        let mut no_old = r.clone();
        no_old.old_object = None;
        assert_eq!(
            review(&no_old, Some(&[slo("shop", Some("True"), false)])),
            Verdict::allow()
        );
    }
}
