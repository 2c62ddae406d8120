//! The evaluator: every interval, one batched read of all SLOs' recorded series, then per SLO the
//! budget assessment, the policy's next state and, when a visible value changed, a status apply
//! under its own field manager.

pub mod status;

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Api, Resource, ResourceExt};
use tracing::warn;

use crate::actions;
use crate::api::{RollbackState, ServiceLevelObjective, TargetStatus};
use crate::budget::{self, Assessment, Memory, NoData, Reading};
use crate::controller::status::StatusApply;
use crate::model::{self, RollbackPolicy, Slo};
use crate::prometheus::{self, SeriesKey};
use crate::rules::windows::burn_windows;

/// Field manager of the evaluator's status fields.
pub const FIELD_MANAGER: &str = "plimsoll-evaluator";
/// Status applies in flight at once.
pub const CONCURRENCY: usize = 8;

/// Everything one round read from Prometheus, or why it could not.
pub type Readings = Result<BTreeMap<SeriesKey, Reading>, String>;

/// Reads every SLO's series with two queries.
pub async fn read(client: &prometheus::Client) -> Readings {
    let ratios = client.query(prometheus::RATIOS_QUERY).await;
    let ages = client.query(prometheus::AGES_QUERY).await;
    match (ratios, ages) {
        (Ok(r), Ok(a)) => Ok(prometheus::readings(&r, &a)),
        (Err(e), _) | (_, Err(e)) => Err(e.to_string()),
    }
}

/// One SLO's round: assessment (the worst group decides), decision, and status when it changed.
/// Returns whether a status was written.
pub async fn evaluate(
    client: &kube::Client,
    recorder: &Recorder,
    object: &ServiceLevelObjective,
    readings: &Readings,
    now: Timestamp,
) -> Result<bool, kube::Error> {
    let Ok(slo) = model::validate(object) else {
        return Ok(false); // the reconciler reports invalid specs
    };
    let namespace = object.namespace().unwrap_or_default();
    let projection = projection_window(&slo);
    let (verdict, groups) = judge(&slo, &namespace, readings, now);
    let current = object.status.as_ref();
    let memory = current
        .and_then(|s| s.rollback.as_ref())
        .map(|r| Memory {
            state: r.state,
            since: r
                .since
                .as_deref()
                .and_then(|s| s.parse().ok())
                .unwrap_or(now),
        })
        .unwrap_or(Memory {
            state: RollbackState::Healthy,
            since: now,
        });
    let policy = slo
        .rollback
        .clone()
        .unwrap_or_else(RollbackPolicy::observe_only);
    let step = budget::decide(&policy, &memory, verdict.as_ref(), projection, now);
    let key = format!("{namespace}/{}", object.name_any());
    let targets = match (&slo.rollback, step.action, verdict.as_ref()) {
        (Some(policy), budget::Action::Trigger, Ok(a)) => {
            let signal = actions::Signal {
                slo: key.clone(),
                state: "Exhausted",
                reason: format!(
                    "{:.1}% of the error budget of {key} is left (SLI {:.4}%, objective {}% over {}); \
                     the policy triggers below {}%",
                    a.remaining,
                    a.sli,
                    slo.objective,
                    slo.window.rolling_equivalent(),
                    policy.budget_remaining_below
                ),
                exhausted_at: step.memory.since.to_string(),
            };
            Some(act(client, &namespace, &key, policy, Some(&signal), "Exhausted").await)
        }
        (Some(policy), budget::Action::Clear, _) => {
            let after = if step.memory.state == RollbackState::Burning {
                "Burning"
            } else {
                "Healthy"
            };
            Some(act(client, &namespace, &key, policy, None, after).await)
        }
        _ => None,
    };
    if let (Some(done), Some(policy)) = (&targets, &slo.rollback) {
        announce(recorder, object, policy, done, step.action).await;
    }
    let round = status::Round {
        verdict: verdict.as_ref(),
        groups,
        targets,
        memory: &step.memory,
        generation: object.metadata.generation,
        now,
    };
    let Some(next) = status::next(current, &round) else {
        return Ok(false);
    };
    let api: Api<ServiceLevelObjective> = Api::namespaced(client.clone(), &namespace);
    let body = StatusApply::new(object.name_any(), namespace, next);
    api.patch_status(
        &object.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await?;
    Ok(true)
}

/// Signals (with `Some`) or clears the rollback on every target, in order; failures are reported
/// per target and never stop the others. `dryRun` writes nothing and says what it would do.
async fn act(
    client: &kube::Client,
    namespace: &str,
    slo_key: &str,
    policy: &RollbackPolicy,
    signal: Option<&actions::Signal>,
    state_after: &str,
) -> Vec<TargetStatus> {
    let mut out = Vec::new();
    for target in &policy.targets {
        let (action, revision, message) = if policy.dry_run {
            let would = if signal.is_some() {
                "WouldAnnotate"
            } else {
                "WouldClear"
            };
            (
                would.to_string(),
                None,
                Some("dryRun: nothing written".to_string()),
            )
        } else {
            let result = match signal {
                Some(s) => {
                    actions::signal(
                        client,
                        namespace,
                        target.kind,
                        &target.name,
                        s,
                        policy.abort_rollouts,
                    )
                    .await
                }
                None => {
                    actions::clear(
                        client,
                        namespace,
                        target.kind,
                        &target.name,
                        slo_key,
                        state_after,
                    )
                    .await
                }
            };
            match result {
                Ok(actions::Outcome::Annotated { revision }) => {
                    ("Annotated".into(), revision, None)
                }
                Ok(actions::Outcome::Aborted { revision }) => ("Aborted".into(), revision, None),
                Ok(actions::Outcome::Cleared) => ("Cleared".into(), None, None),
                Ok(actions::Outcome::Missing) => (
                    "Missing".into(),
                    None,
                    Some(format!(
                        "{:?} {namespace}/{} does not exist",
                        target.kind, target.name
                    )),
                ),
                Err(e) => ("Failed".into(), None, Some(e.to_string())),
            }
        };
        out.push(TargetStatus {
            kind: target.kind,
            name: target.name.clone(),
            action,
            revision,
            message,
        });
    }
    out
}

/// An Event on the SLO for the decision, and one on each target that was written to. Events are
/// for people; a failure to publish is logged, never fatal.
async fn announce(
    recorder: &Recorder,
    object: &ServiceLevelObjective,
    policy: &RollbackPolicy,
    done: &[TargetStatus],
    action: budget::Action,
) {
    let (reason, verb) = match (action, policy.dry_run) {
        (budget::Action::Trigger, false) => ("RollbackSignalled", "signalled a rollback on"),
        (budget::Action::Trigger, true) => {
            ("RollbackWouldSignal", "would signal a rollback on (dryRun)")
        }
        (_, false) => ("RollbackCleared", "cleared the rollback signal on"),
        (_, true) => (
            "RollbackWouldClear",
            "would clear the rollback signal on (dryRun)",
        ),
    };
    let listed: Vec<String> = done
        .iter()
        .map(|t| format!("{:?}/{} ({})", t.kind, t.name, t.action))
        .collect();
    let slo_key = format!(
        "{}/{}",
        object.namespace().unwrap_or_default(),
        object.name_any()
    );
    let note = format!("SLO {slo_key} {verb} {}", listed.join(", "));
    let event = |note: String| Event {
        type_: EventType::Warning,
        reason: reason.to_string(),
        note: Some(note.chars().take(1000).collect()),
        action: "Rollback".to_string(),
        secondary: None,
    };
    if let Err(e) = recorder
        .publish(&event(note), &object.object_ref(&()))
        .await
    {
        warn!(slo = %slo_key, error = %e, "could not publish event");
    }
    if policy.dry_run {
        return;
    }
    for target in done
        .iter()
        .filter(|t| matches!(t.action.as_str(), "Annotated" | "Aborted" | "Cleared"))
    {
        let resource = actions::resource(target.kind);
        let reference = ObjectReference {
            api_version: Some(resource.api_version.clone()),
            kind: Some(resource.kind.clone()),
            name: Some(target.name.clone()),
            namespace: object.namespace(),
            ..ObjectReference::default()
        };
        let note = format!("SLO {slo_key} {verb} this {:?}", target.kind);
        if let Err(e) = recorder.publish(&event(note), &reference).await {
            warn!(slo = %slo_key, error = %e, "could not publish event");
        }
    }
}

/// Every group's labels and remaining budget; empty without `groupBy`.
pub type Groups = Vec<(BTreeMap<String, String>, f64)>;

/// The window whose burn rate projects exhaustion and marks Burning: the long window of the
/// slower page tier (6h for 30 days).
pub fn projection_window(slo: &Slo) -> model::Duration {
    burn_windows(&slo.window)
        .get(1)
        .map(|b| b.long)
        .unwrap_or(model::Duration::from_hours(6))
}

/// The assessment the policy acts on: the only one, or the group with the least budget left.
pub fn judge(
    slo: &Slo,
    namespace: &str,
    readings: &Readings,
    now: Timestamp,
) -> (Result<Assessment, NoData>, Groups) {
    let projection = projection_window(slo);
    let readings = match readings {
        Ok(r) => r,
        Err(e) => return (Err(NoData::Unreachable(e.clone())), vec![]),
    };
    let mine = readings
        .iter()
        .filter(|(k, _)| k.namespace == namespace && k.name == slo.name);
    let mut best: Option<Result<Assessment, NoData>> = None;
    let mut groups = Vec::new();
    for (key, reading) in mine {
        let verdict = budget::assess(slo, reading, projection, now);
        if let Ok(a) = &verdict
            && !slo.indicator.group_by().is_empty()
        {
            groups.push((key.group.clone(), a.remaining));
        }
        best = Some(match (best, verdict) {
            (None, v) => v,
            (Some(Ok(b)), Ok(a)) => Ok(if a.remaining < b.remaining { a } else { b }),
            (Some(Err(_)), Ok(a)) | (Some(Ok(a)), Err(_)) => Ok(a),
            (Some(Err(e)), Err(_)) => Err(e),
        });
    }
    (best.unwrap_or(Err(NoData::Missing)), groups)
}

/// A whole round over the SLOs in the caches, at most [`CONCURRENCY`] writes at a time.
pub async fn round(
    client: &kube::Client,
    recorder: &Recorder,
    prometheus: &prometheus::Client,
    slos: Vec<Arc<ServiceLevelObjective>>,
) -> usize {
    let readings = read(prometheus).await;
    if let Err(e) = &readings {
        warn!(error = %e, "Prometheus read failed; SLOs will show DataAvailable=False");
    }
    let now = Timestamp::now();
    let readings = &readings;
    futures::stream::iter(slos)
        .map(|slo| async move {
            match evaluate(client, recorder, &slo, readings, now).await {
                Ok(written) => written,
                Err(e) => {
                    warn!(slo = %slo.name_any(), error = %e, "could not write the budget status");
                    false
                }
            }
        })
        .buffer_unordered(CONCURRENCY)
        .filter(|written| futures::future::ready(*written))
        .count()
        .await
}
