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
use crate::api::{RollbackState, ServiceLevelObjective, ServiceLevelObjectiveStatus, TargetStatus};
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

/// Whether rollback actions may write to workloads (`plimsoll run --rollback-actions`). Disabled,
/// every policy decides as in `dryRun`: status and Events say what would have been done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actions {
    Enabled,
    Disabled,
}

impl Actions {
    /// Why nothing is written to a policy's targets, if nothing is.
    fn withheld(self, policy: &RollbackPolicy) -> Option<&'static str> {
        if policy.dry_run {
            Some("dryRun")
        } else if self == Actions::Disabled {
            Some("rollback actions are disabled in the operator")
        } else {
            None
        }
    }
}

/// Reads every SLO's series with two queries.
pub async fn read(client: &prometheus::Client) -> Readings {
    let ratios = client.query(prometheus::RATIOS_QUERY).await;
    let ages = client.query_samples(prometheus::AGES_QUERY).await;
    match (ratios, ages) {
        (Ok(r), Ok(a)) => Ok(prometheus::readings(&r, &prometheus::newest(&a))),
        (Err(e), _) | (_, Err(e)) => Err(e.to_string()),
    }
}

/// [`read`], plus for SLOs with calendar windows the sums since their period start: one more
/// query per distinct period start (all SLOs with monthly periods in one time zone share one).
pub async fn read_for(
    client: &prometheus::Client,
    slos: &[(String, Slo)],
    now: Timestamp,
) -> Readings {
    let mut readings = read(client).await?;
    let mut by_start: BTreeMap<Timestamp, Vec<(&str, &str)>> = BTreeMap::new();
    for (namespace, slo) in slos {
        if let Some((start, _)) = slo.window.period(now) {
            by_start
                .entry(start)
                .or_default()
                .push((namespace.as_str(), slo.name.as_str()));
        }
    }
    for (start, members) in by_start {
        let seconds = now.duration_since(start).as_secs().max(1) as u64;
        let query = prometheus::period_query(&members, seconds);
        let samples = client.query(&query).await.map_err(|e| e.to_string())?;
        for (key, ratio) in prometheus::period_ratios(&samples) {
            let member = members.contains(&(key.namespace.as_str(), key.name.as_str()));
            if let (true, Some(reading)) = (member, readings.get_mut(&key)) {
                reading.period_error_ratio = Some(ratio);
            }
        }
    }
    Ok(readings)
}

/// One SLO's round with rollback actions enabled; see [`evaluate_with`].
pub async fn evaluate(
    client: &kube::Client,
    recorder: &Recorder,
    object: &ServiceLevelObjective,
    readings: &Readings,
    now: Timestamp,
) -> Result<bool, kube::Error> {
    evaluate_with(client, recorder, object, readings, now, Actions::Enabled).await
}

/// One SLO's round: assessment (the worst group decides), decision, and status when it changed.
/// Returns whether a status was written.
pub async fn evaluate_with(
    client: &kube::Client,
    recorder: &Recorder,
    object: &ServiceLevelObjective,
    readings: &Readings,
    now: Timestamp,
    actions: Actions,
) -> Result<bool, kube::Error> {
    let Ok(slo) = model::validate(object) else {
        return Ok(false); // the reconciler reports invalid specs
    };
    let namespace = object.namespace().unwrap_or_default();
    let current = object.status.as_ref();
    let Conclusion {
        verdict,
        groups,
        step,
    } = conclude(&slo, &namespace, readings, &remembered(current, now), now);
    let key = format!("{namespace}/{}", object.name_any());
    let previous = current
        .and_then(|s| s.rollback.as_ref())
        .map(|r| r.targets.as_slice())
        .unwrap_or_default();
    let withheld = slo.rollback.as_ref().and_then(|p| actions.withheld(p));
    let (targets, news) = match (&slo.rollback, step.action, verdict.as_ref()) {
        (Some(policy), budget::Action::Trigger, Ok(a)) => {
            let since = step.memory.since.to_string();
            let signal = signal_for(&slo, &key, policy, a, since);
            let done = act(
                client,
                &namespace,
                &key,
                policy,
                withheld,
                Some(&signal),
                "Exhausted",
            )
            .await;
            (Some(done.clone()), Some((done, News::Signalled)))
        }
        (Some(policy), budget::Action::Clear, _) => {
            let after = if step.memory.state == RollbackState::Burning {
                "Burning"
            } else {
                "Healthy"
            };
            let done = act(client, &namespace, &key, policy, withheld, None, after).await;
            (Some(done.clone()), Some((done, News::Cleared)))
        }
        (Some(policy), budget::Action::None, Ok(a))
            if signal_holds(step.memory.state) && withheld.is_none() =>
        {
            let since = step.memory.since.to_string();
            let signal = signal_for(&slo, &key, policy, a, since);
            let followed = follow(client, &namespace, policy, &signal, previous).await;
            match followed {
                Some((all, fresh)) => (Some(all), Some((fresh, News::NewRevision))),
                None => (None, None),
            }
        }
        _ => (None, None),
    };
    if let (Some((done, news)), Some(_)) = (&news, &slo.rollback) {
        announce(recorder, object, withheld, done, *news).await;
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

/// What an Event announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum News {
    Signalled,
    Cleared,
    /// A target moved to a revision the signal did not name yet, within the same episode.
    NewRevision,
}

/// Whether the rollback signal is on: from the trigger until recovery.
fn signal_holds(state: RollbackState) -> bool {
    matches!(state, RollbackState::Exhausted | RollbackState::Recovering)
}

/// The facts of the signal, with one sentence a person can act on.
fn signal_for(
    slo: &Slo,
    key: &str,
    policy: &RollbackPolicy,
    a: &Assessment,
    exhausted_at: String,
) -> actions::Signal {
    actions::Signal {
        slo: key.to_string(),
        state: "Exhausted",
        reason: rollback_reason(key, slo, policy, a),
        exhausted_at,
    }
}

/// While the signal holds, each target is signalled once per revision: a target that now runs
/// a revision the signal did not name (a new rollout during the episode), or that could not be
/// signalled before, is signalled again. Returns every target's entry and the fresh ones, or
/// `None` when nothing changed.
async fn follow(
    client: &kube::Client,
    namespace: &str,
    policy: &RollbackPolicy,
    signal: &actions::Signal,
    previous: &[TargetStatus],
) -> Option<(Vec<TargetStatus>, Vec<TargetStatus>)> {
    let mut all = Vec::new();
    let mut fresh = Vec::new();
    for target in &policy.targets {
        let before = previous
            .iter()
            .find(|t| t.kind == target.kind && t.name == target.name);
        let entry = match actions::observe(client, namespace, target.kind, &target.name).await {
            Ok(Some(seen)) if before.is_some_and(|b| signalled(b, &seen)) => before.cloned(),
            Ok(Some(seen)) => {
                let signal = actions::Signal {
                    exhausted_at: seen.exhausted_at.unwrap_or(signal.exhausted_at.clone()),
                    ..signal.clone()
                };
                let outcome = actions::signal_observed(
                    client,
                    namespace,
                    target.kind,
                    &target.name,
                    &signal,
                    policy.abort_rollouts,
                    seen.revision,
                )
                .await;
                let entry = target_status(target, namespace, outcome);
                fresh.push(entry.clone());
                Some(entry)
            }
            Ok(None) => Some(target_status(
                target,
                namespace,
                Ok(actions::Outcome::Missing),
            )),
            Err(e) => Some(target_status(target, namespace, Err(e))),
        };
        all.extend(entry);
    }
    (all.as_slice() != previous).then_some((all, fresh))
}

/// Whether the entry records a signal on the revision the target runs now.
fn signalled(entry: &TargetStatus, seen: &actions::Observed) -> bool {
    matches!(entry.action.as_str(), "Annotated" | "Aborted") && entry.revision == seen.revision
}

/// One SLO's round without side effects: the assessment the policy acts on, every group's
/// budget, and the policy's next step. The operator and local mode both decide here.
#[derive(Debug, Clone, PartialEq)]
pub struct Conclusion {
    pub verdict: Result<Assessment, NoData>,
    pub groups: Groups,
    pub step: budget::Step,
}

/// Judges the readings for one SLO and runs its policy (observe-only without `rollback`) from
/// what it remembers.
pub fn conclude(
    slo: &Slo,
    namespace: &str,
    readings: &Readings,
    memory: &Memory,
    now: Timestamp,
) -> Conclusion {
    let (verdict, groups) = judge(slo, namespace, readings, now);
    let policy = slo
        .rollback
        .clone()
        .unwrap_or_else(RollbackPolicy::observe_only);
    let step = budget::decide(
        &policy,
        memory,
        verdict.as_ref(),
        projection_window(slo),
        now,
    );
    Conclusion {
        verdict,
        groups,
        step,
    }
}

/// What the policy remembers, as the last written status says; a new SLO starts Healthy now.
pub fn remembered(status: Option<&ServiceLevelObjectiveStatus>, now: Timestamp) -> Memory {
    status
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
        })
}

/// Why a rollback is signalled, in one sentence with the numbers (`key` is `<namespace>/<name>`).
pub fn rollback_reason(key: &str, slo: &Slo, policy: &RollbackPolicy, a: &Assessment) -> String {
    format!(
        "{:.1}% of the error budget of {key} is left (SLI {:.4}%, objective {}% over {}); \
         the policy triggers below {}%",
        a.remaining,
        a.sli,
        slo.objective,
        slo.window.rolling_equivalent(),
        policy.budget_remaining_below
    )
}

/// Signals (with `Some`) or clears the rollback on every target, in order; failures are reported
/// per target and never stop the others. When `withheld` (dryRun, or actions disabled) it writes
/// nothing and says what it would do.
async fn act(
    client: &kube::Client,
    namespace: &str,
    slo_key: &str,
    policy: &RollbackPolicy,
    withheld: Option<&str>,
    signal: Option<&actions::Signal>,
    state_after: &str,
) -> Vec<TargetStatus> {
    let mut out = Vec::new();
    for target in &policy.targets {
        if let Some(why) = withheld {
            let would = if signal.is_some() {
                "WouldAnnotate"
            } else {
                "WouldClear"
            };
            out.push(TargetStatus {
                kind: target.kind,
                name: target.name.clone(),
                action: would.to_string(),
                revision: None,
                message: Some(format!("{why}: nothing written")),
            });
            continue;
        }
        let (kind, name) = (target.kind, target.name.as_str());
        let result = match signal {
            Some(s) => {
                actions::signal(client, namespace, kind, name, s, policy.abort_rollouts).await
            }
            None => actions::clear(client, namespace, kind, name, slo_key, state_after).await,
        };
        out.push(target_status(target, namespace, result));
    }
    out
}

/// The status entry for what happened to one target.
fn target_status(
    target: &model::Target,
    namespace: &str,
    result: Result<actions::Outcome, kube::Error>,
) -> TargetStatus {
    let (action, revision, message) = match result {
        Ok(actions::Outcome::Annotated { revision }) => ("Annotated", revision, None),
        Ok(actions::Outcome::Aborted { revision }) => ("Aborted", revision, None),
        Ok(actions::Outcome::Cleared) => ("Cleared", None, None),
        Ok(actions::Outcome::Missing) => (
            "Missing",
            None,
            Some(format!(
                "{:?} {namespace}/{} does not exist",
                target.kind, target.name
            )),
        ),
        Err(e) => ("Failed", None, Some(e.to_string())),
    };
    TargetStatus {
        kind: target.kind,
        name: target.name.clone(),
        action: action.to_string(),
        revision,
        message,
    }
}

/// An Event on the SLO for the decision, and one on each target that was written to. Events are
/// for people; a failure to publish is logged, never fatal.
async fn announce(
    recorder: &Recorder,
    object: &ServiceLevelObjective,
    withheld: Option<&str>,
    done: &[TargetStatus],
    news: News,
) {
    if done.is_empty() && news == News::NewRevision {
        return;
    }
    let (reason, verb) = match (news, withheld) {
        (News::Signalled, None) => ("RollbackSignalled", "signalled a rollback on".to_string()),
        (News::Signalled, Some(why)) => (
            "RollbackWouldSignal",
            format!("would signal a rollback on ({why})"),
        ),
        (News::NewRevision, _) => (
            "RollbackSignalled",
            "signalled a rollback on a new revision of".to_string(),
        ),
        (News::Cleared, None) => (
            "RollbackCleared",
            "cleared the rollback signal on".to_string(),
        ),
        (News::Cleared, Some(why)) => (
            "RollbackWouldClear",
            format!("would clear the rollback signal on ({why})"),
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
    if withheld.is_some() {
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
    actions: Actions,
) -> usize {
    let now = Timestamp::now();
    // Only calendar SLOs need their model here (each is validated again in `evaluate`); the
    // spelling of the window picks them without validating every SLO twice per round.
    let calendars: Vec<(String, Slo)> = slos
        .iter()
        .filter(|o| matches!(o.spec.window.as_str(), "month" | "week"))
        .filter_map(|o| Some((o.namespace()?, model::validate(o).ok()?)))
        .filter(|(_, m)| m.window.period(now).is_some())
        .collect();
    let readings = read_for(prometheus, &calendars, now).await;
    if let Err(e) = &readings {
        warn!(error = %e, "Prometheus read failed; SLOs will show DataAvailable=False");
    }
    let readings = &readings;
    futures::stream::iter(slos)
        .map(|slo| async move {
            match evaluate_with(client, recorder, &slo, readings, now, actions).await {
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
