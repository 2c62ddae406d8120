//! The Events of the rollback step: one on the SLO for each decision, and one on every target
//! written to. Events are for people; a failure to publish is logged, never fatal.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};
use tracing::warn;

use super::Context;
use super::rollback::{News, action};
use crate::actions;
use crate::api::{ServiceLevelObjective, TargetStatus};

/// An Event on the SLO for the decision, and one on each target that was written to. Events are
/// for people; a failure to publish is logged, never fatal.
pub async fn announce(
    ctx: &Context,
    object: &ServiceLevelObjective,
    withheld: Option<&str>,
    news: News,
    done: &[TargetStatus],
) {
    let (reason, verb) = match (news, withheld) {
        (News::Signalled, None) => ("RollbackSignalled", "signalled a rollback on".to_string()),
        (News::Signalled, Some(why)) => (
            "RollbackWouldSignal",
            format!("would signal a rollback on ({why})"),
        ),
        (News::Followed, _) => (
            "RollbackSignalled",
            "signalled a rollback again (a new revision, or a signal that was removed) on"
                .to_string(),
        ),
        (News::Withdrawn, None) => (
            "RollbackCleared",
            "withdrew its rollback signal from".to_string(),
        ),
        (News::Withdrawn, Some(why)) => (
            "RollbackWouldClear",
            format!("would withdraw its rollback signal from ({why})"),
        ),
    };
    let key = format!(
        "{}/{}",
        object.namespace().unwrap_or_default(),
        object.name_any()
    );
    let listed: Vec<String> = done
        .iter()
        .map(|t| {
            let detail = t
                .message
                .as_deref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default();
            format!("{:?}/{} ({}{detail})", t.kind, t.name, t.action)
        })
        .collect();
    let event = |note: String| Event {
        type_: EventType::Warning,
        reason: reason.to_string(),
        note: Some(note.chars().take(1000).collect()),
        action: "Rollback".to_string(),
        secondary: None,
    };
    let note = format!("SLO {key} {verb} {}", listed.join(", "));
    if let Err(e) = ctx
        .recorder
        .publish(&event(note), &object.object_ref(&()))
        .await
    {
        warn!(slo = %key, error = %e, "could not publish event");
    }
    if withheld.is_some() {
        return;
    }
    let written = [
        action::SIGNALLED,
        action::ABORTED,
        action::OVERRIDDEN,
        action::WITHDRAWN,
    ];
    for target in done.iter().filter(|t| written.contains(&t.action.as_str())) {
        let resource = actions::resource(target.kind);
        let reference = ObjectReference {
            api_version: Some(resource.api_version.clone()),
            kind: Some(resource.kind.clone()),
            name: Some(target.name.clone()),
            namespace: object.namespace(),
            ..ObjectReference::default()
        };
        let note = format!(
            "SLO {key} {verb} this {:?} ({})",
            target.kind, target.action
        );
        if let Err(e) = ctx.recorder.publish(&event(note), &reference).await {
            warn!(slo = %key, error = %e, "could not publish event");
        }
    }
}
