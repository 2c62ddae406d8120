//! The reconciler's part of the status: observedGeneration, prometheusRule and the Ready
//! condition. Pure: the caller writes the result only when it differs from what is there.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use serde::Serialize;

use crate::api::{API_VERSION, KIND, ServiceLevelObjectiveStatus};

/// The condition the reconciler owns.
pub const READY: &str = "Ready";

/// Reasons of the Ready condition.
pub mod reason {
    pub const RULES_APPLIED: &str = "RulesApplied";
    pub const INVALID_SPEC: &str = "InvalidSpec";
    pub const PROMETHEUS_OPERATOR_MISSING: &str = "PrometheusOperatorMissing";
    pub const APPLY_FAILED: &str = "ApplyFailed";
    /// An object of our name exists that is not ours: it is never taken over.
    pub const NAME_TAKEN: &str = "NameTaken";
    /// The SLO reads a native histogram and the Prometheus read is a 2.x.
    pub const PROMETHEUS_TOO_OLD: &str = "PrometheusTooOld";
    /// The SLO reads a native histogram and Prometheus has not said its version yet.
    pub const PROMETHEUS_VERSION_UNKNOWN: &str = "PrometheusVersionUnknown";
    /// Reasons of the AnalysisTemplateReady condition.
    pub const TEMPLATE_APPLIED: &str = "TemplateApplied";
    pub const ROLLOUTS_MISSING: &str = "ArgoRolloutsMissing";
    pub const PROMETHEUS_ADDRESS_MISSING: &str = "PrometheusAddressMissing";
}

/// The verdict of one reconcile.
#[derive(Debug, Clone, PartialEq)]
pub struct Readiness {
    pub ready: bool,
    pub reason: &'static str,
    pub message: String,
}

/// The status fields the reconciler writes with server-side apply. Every apply carries all of
/// them: a field left out would be given up, and removed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OwnedStatus {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prometheus_rule: Option<String>,
    pub conditions: Vec<Condition>,
}

/// The body of a status apply: type, identity and the writer's own fields, nothing of the spec.
/// The reconciler and the evaluator each send theirs under their own field manager.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusApply<S> {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub metadata: ApplyMeta,
    pub status: S,
}

#[derive(Debug, Serialize)]
pub struct ApplyMeta {
    pub name: String,
    pub namespace: String,
}

impl<S: Serialize> StatusApply<S> {
    pub fn new(name: String, namespace: String, status: S) -> Self {
        StatusApply {
            api_version: API_VERSION,
            kind: KIND,
            metadata: ApplyMeta { name, namespace },
            status,
        }
    }
}

/// The status to write, or `None` when the current one already says the same. The transition
/// time moves only when the condition's status flips, so watchers see no churn.
pub fn next(
    current: Option<&ServiceLevelObjectiveStatus>,
    generation: Option<i64>,
    prometheus_rule: Option<String>,
    readiness: &Readiness,
    now: Timestamp,
) -> Option<OwnedStatus> {
    next_with(
        current,
        generation,
        prometheus_rule,
        &[(READY, readiness)],
        now,
    )
}

/// Conditions the reconciler owns; one missing from a verdict list is removed.
const OWNED: [&str; 2] = [READY, super::template::CONDITION];

/// [`next`] for several conditions: `Ready` and, when the SLO has one, `AnalysisTemplateReady`.
pub fn next_with(
    current: Option<&ServiceLevelObjectiveStatus>,
    generation: Option<i64>,
    prometheus_rule: Option<String>,
    verdicts: &[(&str, &Readiness)],
    now: Timestamp,
) -> Option<OwnedStatus> {
    let previous =
        |type_: &str| current.and_then(|s| s.conditions.iter().find(|c| c.type_ == type_));
    let conditions: Vec<Condition> = verdicts
        .iter()
        .map(|(type_, readiness)| {
            let status = if readiness.ready { "True" } else { "False" };
            let last_transition_time = match previous(type_) {
                Some(p) if p.status == status => p.last_transition_time.clone(),
                _ => Time(now),
            };
            Condition {
                type_: type_.to_string(),
                status: status.to_string(),
                reason: readiness.reason.to_string(),
                message: readiness.message.clone(),
                observed_generation: generation,
                last_transition_time,
            }
        })
        .collect();
    let same_conditions = conditions.iter().all(|c| previous(&c.type_) == Some(c))
        && OWNED
            .iter()
            .all(|t| previous(t).is_none() || conditions.iter().any(|c| c.type_ == *t));
    let unchanged = current.is_some_and(|s| {
        s.observed_generation == generation && s.prometheus_rule == prometheus_rule
    }) && same_conditions;
    (!unchanged).then_some(OwnedStatus {
        observed_generation: generation,
        prometheus_rule,
        conditions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied() -> Readiness {
        Readiness {
            ready: true,
            reason: reason::RULES_APPLIED,
            message: "2 rule groups applied".into(),
        }
    }

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).unwrap()
    }

    fn as_current(owned: OwnedStatus) -> ServiceLevelObjectiveStatus {
        ServiceLevelObjectiveStatus {
            observed_generation: owned.observed_generation,
            prometheus_rule: owned.prometheus_rule,
            conditions: owned.conditions,
            ..Default::default()
        }
    }

    #[test]
    fn first_status_is_written() {
        let s = next(None, Some(1), Some("checkout".into()), &applied(), at(100)).unwrap();
        assert_eq!(s.conditions[0].status, "True");
        assert_eq!(s.conditions[0].last_transition_time, Time(at(100)));
        assert_eq!(s.conditions[0].observed_generation, Some(1));
    }

    #[test]
    fn the_same_verdict_writes_nothing() {
        let first = next(None, Some(1), Some("checkout".into()), &applied(), at(100)).unwrap();
        let current = as_current(first);
        assert_eq!(
            next(
                Some(&current),
                Some(1),
                Some("checkout".into()),
                &applied(),
                at(999)
            ),
            None
        );
    }

    #[test]
    fn transition_time_moves_only_when_the_status_flips() {
        let current = as_current(next(None, Some(1), None, &applied(), at(100)).unwrap());
        // New generation, still ready: written, same transition time.
        let s = next(Some(&current), Some(2), None, &applied(), at(200)).unwrap();
        assert_eq!(s.conditions[0].last_transition_time, Time(at(100)));
        // Invalid: flips, new transition time.
        let invalid = Readiness {
            ready: false,
            reason: reason::INVALID_SPEC,
            message: "spec.window: ...".into(),
        };
        let s = next(Some(&current), Some(2), None, &invalid, at(300)).unwrap();
        assert_eq!(s.conditions[0].last_transition_time, Time(at(300)));
        // Another message with the same status: written, time kept.
        let current = as_current(s);
        let other = Readiness {
            message: "spec.objective: ...".into(),
            ..invalid
        };
        let s = next(Some(&current), Some(2), None, &other, at(400)).unwrap();
        assert_eq!(s.conditions[0].last_transition_time, Time(at(300)));
    }

    #[test]
    fn apply_body_names_the_kind() {
        let s = next(None, Some(3), None, &applied(), at(100)).unwrap();
        let body = serde_json::to_value(StatusApply::new("a".into(), "b".into(), s)).unwrap();
        assert_eq!(
            body["metadata"],
            serde_json::json!({"name": "a", "namespace": "b"})
        );
        assert_eq!(body["apiVersion"], "plimsoll.dev/v1alpha1");
        assert_eq!(body["kind"], "ServiceLevelObjective");
        assert_eq!(body["status"]["observedGeneration"], 3);
        assert!(body["status"].get("prometheusRule").is_none());
    }
}
