//! The reconcile's rollback step: given the policy's next step, assert this SLO's signal on its
//! targets while the trigger holds, follow new revisions, withdraw on recovery. Only this SLO's
//! own annotations are ever written or removed (see `crate::actions`); a target shared with
//! other SLOs keeps their signals.

use kube::ResourceExt;

use super::Context;
use crate::actions::{self, Facts, Observed};
use crate::api::{RollbackState, ServiceLevelObjective, TargetKind, TargetStatus};
use crate::budget::{self, Assessment};
use crate::model::{RollbackPolicy, Slo};

/// Actions a target entry in the status can record.
pub mod action {
    pub const SIGNALLED: &str = "Signalled";
    pub const ABORTED: &str = "Aborted";
    /// Signalled on a new revision, not aborted: the Rollout carries a freeze override.
    pub const OVERRIDDEN: &str = "Overridden";
    pub const WITHDRAWN: &str = "Withdrawn";
    pub const MISSING: &str = "Missing";
    /// Not acted on: `--require-target-opt-in` and the target lacks the label.
    pub const REFUSED: &str = "Refused";
    pub const FAILED: &str = "Failed";
    pub const WOULD_SIGNAL: &str = "WouldSignal";
    pub const WOULD_WITHDRAW: &str = "WouldWithdraw";
    /// Round 1's words: such targets may still carry its single-SLO annotations.
    pub const LEGACY: [&str; 2] = ["Annotated", "Cleared"];
}

/// What an Event announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum News {
    Signalled,
    /// Signalled again within the episode: a new revision, or a signal someone removed.
    Followed,
    Withdrawn,
}

/// What one round did to the targets: every entry for the status, and what to announce.
pub struct Acted {
    pub targets: Vec<TargetStatus>,
    pub news: Option<(News, Vec<TargetStatus>)>,
}

/// Whether a status entry says our signal may be on the target.
fn may_carry_signal(entry: &TargetStatus) -> bool {
    matches!(
        entry.action.as_str(),
        action::SIGNALLED | action::ABORTED | action::OVERRIDDEN
    ) || action::LEGACY.contains(&entry.action.as_str())
}

/// Runs the rollback step. `withheld` says why nothing may be written (dryRun, actions off).
pub async fn act(
    ctx: &Context,
    object: &ServiceLevelObjective,
    slo: &Slo,
    step: &budget::Step,
    verdict: Result<&Assessment, &budget::NoData>,
    withheld: Option<&'static str>,
) -> Option<Acted> {
    let policy = slo.rollback.as_ref()?;
    let previous = object
        .status
        .as_ref()
        .and_then(|s| s.rollback.as_ref())
        .map(|r| r.targets.as_slice())
        .unwrap_or_default();
    let holds = matches!(
        step.memory.state,
        RollbackState::Exhausted | RollbackState::Recovering
    );
    if let Some(why) = withheld {
        let word = match step.action {
            budget::Action::Trigger => action::WOULD_SIGNAL,
            budget::Action::Clear => action::WOULD_WITHDRAW,
            budget::Action::None => return None,
        };
        let news = match step.action {
            budget::Action::Trigger => News::Signalled,
            _ => News::Withdrawn,
        };
        let entries: Vec<TargetStatus> = policy
            .targets
            .iter()
            .map(|t| {
                entry(
                    t.kind,
                    &t.name,
                    word,
                    None,
                    Some(format!("{why}: nothing written")),
                )
            })
            .collect();
        return Some(Acted {
            targets: entries.clone(),
            news: Some((news, entries)),
        });
    }
    match (holds, verdict) {
        (true, Ok(a)) => Some(hold(ctx, object, slo, policy, step, a, previous).await),
        // No fresh data: nothing is written, the signal stays as it is.
        (true, Err(_)) => None,
        (false, _) if step.action == budget::Action::Clear => {
            let listed: Vec<(TargetKind, String)> = policy
                .targets
                .iter()
                .map(|t| (t.kind, t.name.clone()))
                .collect();
            Some(withdraw_all(ctx, object, &listed, previous).await)
        }
        (false, _) if previous.iter().any(may_carry_signal) => {
            Some(withdraw_all(ctx, object, &[], previous).await)
        }
        _ => None,
    }
}

/// While the signal holds: every listed target carries this SLO's facts for the revision it runs
/// now. Reads each target; writes only where the facts are missing or out of date.
async fn hold(
    ctx: &Context,
    object: &ServiceLevelObjective,
    slo: &Slo,
    policy: &RollbackPolicy,
    step: &budget::Step,
    a: &Assessment,
    previous: &[TargetStatus],
) -> Acted {
    let namespace = object.namespace().unwrap_or_default();
    let key = format!("{namespace}/{}", slo.name);
    let reason = crate::evaluator::rollback_reason(&key, slo, policy, a);
    let mut all = Vec::new();
    let mut fresh = Vec::new();
    for target in &policy.targets {
        let before = previous
            .iter()
            .find(|t| t.kind == target.kind && t.name == target.name);
        let seen = actions::observe(
            &ctx.client,
            &namespace,
            target.kind,
            &target.name,
            &slo.name,
        )
        .await;
        let result = match seen {
            Ok(None) => entry(target.kind, &target.name, action::MISSING, None, None),
            Err(e) => entry(
                target.kind,
                &target.name,
                action::FAILED,
                None,
                Some(e.to_string()),
            ),
            Ok(Some(seen)) if ctx.config.require_target_opt_in && !seen.opted_in => {
                refuse(ctx, &namespace, target.kind, &target.name, &slo.name, &seen).await
            }
            Ok(Some(seen)) => {
                let facts = Facts {
                    state: format!("{:?}", step.memory.state),
                    since: seen
                        .facts
                        .as_ref()
                        .map(|f| f.since.clone())
                        .unwrap_or_else(|| step.memory.since.to_string()),
                    revision: seen.revision.clone(),
                    reason: reason.clone(),
                };
                let current = seen.facts.as_ref().is_some_and(|f| f.same_signal(&facts))
                    && seen.aggregate
                    && !seen.legacy;
                if current {
                    let kept = before.filter(|b| may_carry_signal(b)).cloned();
                    kept.unwrap_or_else(|| signalled(target.kind, &target.name, &seen))
                } else {
                    let done = assert_signal(
                        ctx,
                        &namespace,
                        target.kind,
                        &target.name,
                        slo,
                        policy,
                        &facts,
                        &seen,
                    )
                    .await;
                    fresh.push(done.clone());
                    done
                }
            }
        };
        all.push(result);
    }
    let mut withdrawn = withdraw_unlisted(ctx, object, policy, previous).await;
    fresh.extend(withdrawn.iter().cloned());
    all.append(&mut withdrawn);
    let news = if step.action == budget::Action::Trigger {
        Some((News::Signalled, fresh))
    } else {
        (!fresh.is_empty()).then_some((News::Followed, fresh))
    };
    Acted { targets: all, news }
}

fn signalled(kind: TargetKind, name: &str, seen: &Observed) -> TargetStatus {
    entry(kind, name, action::SIGNALLED, seen.revision.clone(), None)
}

/// Writes this SLO's facts, aborts a Rollout on its first signal and on every new revision
/// (unless it carries a freeze override: a fix is rolling forward), and releases round 1's keys.
#[allow(clippy::too_many_arguments)]
async fn assert_signal(
    ctx: &Context,
    namespace: &str,
    kind: TargetKind,
    name: &str,
    slo: &Slo,
    policy: &RollbackPolicy,
    facts: &Facts,
    seen: &Observed,
) -> TargetStatus {
    let failed = |e: kube::Error| entry(kind, name, action::FAILED, None, Some(e.to_string()));
    if let Err(e) = actions::signal(&ctx.client, namespace, kind, name, &slo.name, facts).await {
        return failed(e);
    }
    if seen.legacy
        && let Err(e) = actions::release_legacy(&ctx.client, namespace, kind, name).await
    {
        return failed(e);
    }
    let new_revision = seen
        .facts
        .as_ref()
        .is_some_and(|f| f.revision != seen.revision);
    let first = seen.facts.is_none();
    let aborts = policy.abort_rollouts && kind == TargetKind::Rollout;
    let overridden = |seen: &Observed| {
        let why = seen.override_reason.as_ref()?;
        let message = format!("not aborted: plimsoll.dev/freeze-override: {why:?}");
        Some(entry(
            kind,
            name,
            action::OVERRIDDEN,
            seen.revision.clone(),
            Some(message),
        ))
    };
    if !(aborts && (first || new_revision)) {
        // Nothing to do this round: the entry says what the Rollout shows, so an abort (or an
        // override that spared a fix) stays in the status for as long as it holds, not for one
        // round.
        return match (aborts, seen.aborted) {
            (true, true) => entry(kind, name, action::ABORTED, seen.revision.clone(), None),
            (true, false) => overridden(seen).unwrap_or_else(|| signalled(kind, name, seen)),
            _ => signalled(kind, name, seen),
        };
    }
    if new_revision && let Some(spared) = overridden(seen) {
        return spared;
    }
    match actions::abort(&ctx.client, namespace, name).await {
        Ok(()) => entry(kind, name, action::ABORTED, seen.revision.clone(), None),
        Err(e) => failed(e),
    }
}

/// A target that has not opted in: reported, and any signal of ours on it withdrawn.
async fn refuse(
    ctx: &Context,
    namespace: &str,
    kind: TargetKind,
    name: &str,
    slo_name: &str,
    seen: &Observed,
) -> TargetStatus {
    if seen.facts.is_some()
        && let Err(e) = actions::withdraw(&ctx.client, namespace, kind, name, slo_name).await
    {
        return entry(kind, name, action::FAILED, None, Some(e.to_string()));
    }
    let message = format!(
        "the operator runs with --require-target-opt-in and this target lacks the label {}=\"true\"",
        actions::OPT_IN_LABEL
    );
    entry(kind, name, action::REFUSED, None, Some(message))
}

/// Targets the status says we signalled but that are no longer listed: withdrawn.
async fn withdraw_unlisted(
    ctx: &Context,
    object: &ServiceLevelObjective,
    policy: &RollbackPolicy,
    previous: &[TargetStatus],
) -> Vec<TargetStatus> {
    let gone: Vec<&TargetStatus> = previous
        .iter()
        .filter(|p| may_carry_signal(p))
        .filter(|p| {
            !policy
                .targets
                .iter()
                .any(|t| t.kind == p.kind && t.name == p.name)
        })
        .collect();
    let mut out = Vec::new();
    for p in gone {
        out.push(withdraw_one(ctx, object, p.kind, &p.name).await);
    }
    out
}

/// Withdraws from the listed targets and from every one the status says may carry our signal.
async fn withdraw_all(
    ctx: &Context,
    object: &ServiceLevelObjective,
    listed: &[(TargetKind, String)],
    previous: &[TargetStatus],
) -> Acted {
    let mut targets: Vec<(TargetKind, String)> = listed.to_vec();
    for p in previous.iter().filter(|p| may_carry_signal(p)) {
        if !targets.iter().any(|(k, n)| *k == p.kind && *n == p.name) {
            targets.push((p.kind, p.name.clone()));
        }
    }
    let mut entries = Vec::new();
    for (kind, name) in &targets {
        entries.push(withdraw_one(ctx, object, *kind, name).await);
    }
    Acted {
        targets: entries.clone(),
        news: Some((News::Withdrawn, entries)),
    }
}

async fn withdraw_one(
    ctx: &Context,
    object: &ServiceLevelObjective,
    kind: TargetKind,
    name: &str,
) -> TargetStatus {
    let namespace = object.namespace().unwrap_or_default();
    let slo_name = object.name_any();
    let result = async {
        if !actions::withdraw(&ctx.client, &namespace, kind, name, &slo_name).await? {
            return Ok(action::MISSING);
        }
        actions::release_legacy(&ctx.client, &namespace, kind, name).await?;
        Ok::<_, kube::Error>(action::WITHDRAWN)
    }
    .await;
    match result {
        Ok(word) => entry(kind, name, word, None, None),
        Err(e) => entry(kind, name, action::FAILED, None, Some(e.to_string())),
    }
}

fn entry(
    kind: TargetKind,
    name: &str,
    action: &str,
    revision: Option<String>,
    message: Option<String>,
) -> TargetStatus {
    let message = message.or_else(|| {
        (action == self::action::MISSING).then(|| format!("{kind:?} {name} does not exist"))
    });
    TargetStatus {
        kind,
        name: name.to_string(),
        action: action.to_string(),
        revision,
        message,
    }
}
