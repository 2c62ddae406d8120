//! The budget evaluation of one SLO, pure: the round's readings -> the SLO's own series ->
//! an assessment (the worst group decides) -> the policy's next step. The operator's reconcile
//! and local mode both decide here; neither the API server nor Prometheus is called.

pub mod owner;
pub mod status;

use std::collections::BTreeMap;

use k8s_openapi::jiff::Timestamp;

use crate::api::{RollbackState, ServiceLevelObjectiveStatus};
use crate::budget::{self, Assessment, Memory, NoData};
use crate::model::{self, RollbackPolicy, Slo};
use crate::prometheus::{Failure, Foreign, Identity, Readings, own};
use crate::rules::windows::burn_windows;

/// Everything one round read from Prometheus, or why it could not.
pub type ReadResult = Result<Readings, Failure>;

/// One SLO's round without side effects: the assessment the policy acts on, every group's
/// budget, and the policy's next step. The operator and local mode both decide here.
#[derive(Debug, Clone, PartialEq)]
pub struct Conclusion {
    pub verdict: Result<Assessment, NoData>,
    pub groups: Groups,
    pub step: budget::Step,
    /// Series that name this SLO but are not its own: ignored, and reported.
    pub foreign: Vec<Foreign>,
}

/// Judges the readings for one SLO and runs its policy (observe-only without `rollback`) from
/// what it remembers.
pub fn conclude(
    slo: &Slo,
    namespace: &str,
    readings: &ReadResult,
    memory: &Memory,
    now: Timestamp,
) -> Conclusion {
    let Judgement {
        verdict,
        groups,
        foreign,
    } = judge(slo, namespace, readings, now);
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
        foreign,
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

/// The fast page tier's long window (1h for 30 days, scaled with the window): the burn rate the
/// `Fast burn ×` column shows.
pub fn fast_window(slo: &Slo) -> model::Duration {
    burn_windows(&slo.window)
        .first()
        .map(|b| b.long)
        .unwrap_or(model::Duration::from_hours(1))
}

/// What the readings say of one SLO.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    /// The assessment the policy acts on: the only one, or the group with the least budget left.
    pub verdict: Result<Assessment, NoData>,
    pub groups: Groups,
    pub foreign: Vec<Foreign>,
}

/// Judges the SLO from its own series only (see [`own`]). A failed read, or a failed read of the
/// SLO's calendar period, is no verdict.
pub fn judge(slo: &Slo, namespace: &str, readings: &ReadResult, now: Timestamp) -> Judgement {
    let failed = |f: &Failure| Judgement {
        verdict: Err(NoData::Prometheus {
            reason: f.reason,
            message: f.message.clone(),
        }),
        groups: vec![],
        foreign: vec![],
    };
    let readings = match readings {
        Ok(r) => r,
        Err(f) => return failed(f),
    };
    if let Some(f) = slo
        .window
        .period(now)
        .and_then(|(start, _)| readings.period_failure(start))
    {
        return failed(f);
    }
    let id = Identity {
        namespace,
        name: &slo.name,
        service: &slo.service,
        uid: slo.uid.as_deref(),
        group_by: slo.indicator.group_by(),
    };
    let (mine, foreign) = own(readings, &id);
    let projection = projection_window(slo);
    let mut best: Option<Result<Assessment, NoData>> = None;
    let mut groups = Vec::new();
    for (group, reading) in mine {
        let verdict = budget::assess(slo, reading, projection, now);
        if let Ok(a) = &verdict
            && !slo.indicator.group_by().is_empty()
        {
            groups.push((group, a.remaining));
        }
        best = Some(match (best, verdict) {
            (None, v) => v,
            (Some(Ok(b)), Ok(a)) => Ok(if a.remaining < b.remaining { a } else { b }),
            (Some(Err(_)), Ok(a)) | (Some(Ok(a)), Err(_)) => Ok(a),
            (Some(Err(e)), Err(_)) => Err(e),
        });
    }
    let missing = || match readings.rules_loaded(namespace, &slo.name) {
        Some((false, labels)) => NoData::RulesNotLoaded {
            namespace: namespace.to_string(),
            name: slo.name.clone(),
            rule_labels: labels.to_string(),
        },
        _ => NoData::Missing,
    };
    Judgement {
        verdict: best.unwrap_or_else(|| Err(missing())),
        groups,
        foreign,
    }
}
