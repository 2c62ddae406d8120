//! The reconcile's budget step: the latest reading of the SLO's own series -> the assessment and
//! the policy's next step (pure, `crate::evaluator`) -> the rollback step -> the budget part of
//! the status, under its own field manager, written only when a visible value changed.

use kube::api::{Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};

use super::Context;
use super::error::Error;
use super::rollback::{self, Acted};
use super::status::StatusApply;
use crate::api::ServiceLevelObjective;
use crate::evaluator::{self, Conclusion, status};
use crate::model::{RollbackPolicy, Slo};
use crate::prometheus::Foreign;

/// Field manager of the budget part of the status.
pub const FIELD_MANAGER: &str = "plimsoll-evaluator";

/// Why nothing is written to a policy's targets, if nothing is.
fn withheld(ctx: &Context, policy: &RollbackPolicy) -> Option<&'static str> {
    if policy.dry_run {
        Some("dryRun")
    } else if !ctx.config.rollback_actions {
        Some("rollback actions are disabled in the operator")
    } else {
        None
    }
}

/// Judges the SLO from the latest round, acts on its targets, and writes the budget status when
/// it changed. Does nothing before the first round (or without Prometheus).
pub async fn evaluate(
    ctx: &Context,
    object: &ServiceLevelObjective,
    slo: &Slo,
    namespace: &str,
) -> Result<(), Error> {
    let Some(round) = ctx.readings.latest() else {
        return Ok(());
    };
    let now = (ctx.clock)();
    let current = object.status.as_ref();
    let Conclusion {
        verdict,
        groups,
        step,
        foreign,
    } = evaluator::conclude(
        slo,
        namespace,
        &round.result,
        &evaluator::remembered(current, now),
        now,
    );
    report_foreign(ctx, object, &foreign).await;
    let withheld = slo.rollback.as_ref().and_then(|p| withheld(ctx, p));
    let acted = rollback::act(ctx, object, slo, &step, verdict.as_ref(), withheld).await;
    let targets = match acted {
        Some(Acted { targets, news }) => {
            if let Some((news, done)) = news {
                super::announce::announce(ctx, object, withheld, news, &done).await;
            }
            Some(targets)
        }
        None => None,
    };
    let next = status::next(
        current,
        &status::Round {
            verdict: verdict.as_ref(),
            groups,
            targets,
            memory: &step.memory,
            generation: object.metadata.generation,
            now,
            fast_window: evaluator::fast_window(slo),
        },
    );
    let Some(next) = next else {
        return Ok(());
    };
    let name = object.name_any();
    let api: Api<ServiceLevelObjective> = Api::namespaced(ctx.client.clone(), namespace);
    let body = StatusApply::new(name.clone(), namespace.to_string(), next);
    api.patch_status(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .map_err(|source| Error::WriteStatus { name, source })?;
    Ok(())
}

/// Series that claim this SLO but are not its own are counted, and named once in a Warning
/// Event (once per SLO and label set while the operator runs).
async fn report_foreign(ctx: &Context, object: &ServiceLevelObjective, foreign: &[Foreign]) {
    let uid = object.uid().unwrap_or_default();
    for f in foreign {
        ctx.metrics.foreign_series(f.reason());
        let Foreign::UnexpectedLabels(labels) = f else {
            continue;
        };
        if !ctx.foreign_reported.first_time(&uid, labels) {
            continue;
        }
        let note = format!(
            "Prometheus holds a series named like this SLO's records that its rules did not \
             write: {labels}. It is ignored. If it comes from another cluster behind the same \
             Thanos or Mimir, scope the readings with --reading-selector (its external labels); \
             otherwise find who writes it (an exporter, honor_labels)."
        );
        let regarding = object.object_ref(&());
        ctx.recorder
            .warn("ForeignSeries", "ReadBudget", &note, &regarding)
            .await;
    }
}
