//! One reconcile: validate -> render -> apply -> status. Reads before it writes, and writes only
//! what changed, so a healthy SLO costs one GET.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::{Api, Resource, ResourceExt};
use tracing::{info, warn};

use super::cleanup;
use super::error::{Error, api_code};
use super::rule::{self, Change};
use super::status::{self, Readiness, StatusApply, reason};
use super::{Context, FIELD_MANAGER, STATUS_FIELD_MANAGER};
use super::{budget, template};
use crate::api::ServiceLevelObjective;
use crate::model::{self, Slo};
use crate::rules::PrometheusRule;

/// How long to wait before looking again when the PrometheusRule CRD is missing.
pub const OPERATOR_MISSING_RETRY: Duration = Duration::from_secs(300);
/// How long to wait after the API server refused the rules (a webhook, RBAC).
pub const APPLY_FAILED_RETRY: Duration = Duration::from_secs(900);

/// The reconciler, as kube-runtime calls it.
pub async fn reconcile(
    slo: Arc<ServiceLevelObjective>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let _running = InFlight::enter(&ctx);
    let started = Instant::now();
    let result = reconcile_slo(&slo, &ctx).await;
    ctx.metrics
        .reconciled(started.elapsed(), result.as_ref().err().map(Error::reason));
    if result.is_ok() {
        ctx.backoff.succeeded(&key(&slo));
    }
    result
}

/// Counts a reconcile as running until dropped, even if its future is cancelled.
struct InFlight<'a>(&'a Context);

impl<'a> InFlight<'a> {
    fn enter(ctx: &'a Context) -> Self {
        ctx.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(ctx)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Transient failures back off exponentially, with jitter, per object.
pub fn error_policy(slo: Arc<ServiceLevelObjective>, error: &Error, ctx: Arc<Context>) -> Action {
    let delay = ctx.backoff.failed(&key(&slo));
    warn!(slo = %key(&slo), reason = error.reason(), error = %error, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

fn key(slo: &ServiceLevelObjective) -> String {
    format!("{}/{}", slo.namespace().unwrap_or_default(), slo.name_any())
}

async fn reconcile_slo(slo: &ServiceLevelObjective, ctx: &Context) -> Result<Action, Error> {
    let namespace = slo.namespace().ok_or(Error::MissingMetadata("namespace"))?;
    let uid = slo.uid().unwrap_or_default();
    if slo.meta().deletion_timestamp.is_some() {
        if cleanup::present(slo) {
            finalize(slo, ctx, false).await?;
        }
        ctx.verified.forget(&uid);
        return Ok(Action::await_change());
    }
    let wanted = ctx.config.rollback_actions && cleanup::wanted(slo);
    if wanted != cleanup::present(slo) {
        finalize(slo, ctx, wanted).await?;
    }
    let model = match model::validate(slo) {
        Ok(model) => model,
        Err(problems) => {
            ctx.verified.forget(&uid);
            let readiness = Readiness {
                ready: false,
                reason: reason::INVALID_SPEC,
                message: problems.to_string(),
            };
            // The last good rules keep running: a typo must not switch off alerting.
            let kept = slo.status.as_ref().and_then(|s| s.prometheus_rule.clone());
            update_status(slo, ctx, &namespace, kept, &[(status::READY, &readiness)]).await?;
            return Ok(Action::await_change());
        }
    };
    let rule_version = ctx.rule_version(&namespace, &model.name);
    let settled = ctx.verified.holds(
        &uid,
        slo.meta().generation,
        rule_version.as_deref(),
        ctx.config.resync,
    );
    let retry = if settled {
        None
    } else {
        build_and_apply(slo, &model, ctx, &namespace).await?
    };
    budget::evaluate(ctx, slo, &model, &namespace).await?;
    // The resync is one tick for all SLOs (controller::start), not a timer per SLO: at 10,000
    // SLOs the scheduler's timers held 7 MiB.
    Ok(retry.map_or_else(Action::await_change, Action::requeue))
}

/// The spec-derived part: the PrometheusRule, the AnalysisTemplate and the Ready conditions.
/// Returns a retry delay for failures that will not heal by themselves soon.
async fn build_and_apply(
    slo: &ServiceLevelObjective,
    model: &Slo,
    ctx: &Context,
    namespace: &str,
) -> Result<Option<Duration>, Error> {
    let (readiness, retry, version) = apply_rule(slo, model, ctx, namespace).await?;
    let (template, template_retry) = template::reconcile(slo, model, ctx, namespace).await?;
    let rule_name = readiness.ready.then(|| model.name.clone());
    let kept = rule_name.or_else(|| slo.status.as_ref().and_then(|s| s.prometheus_rule.clone()));
    let mut verdicts = vec![(status::READY, &readiness)];
    verdicts.extend(template.as_ref().map(|t| (template::CONDITION, t)));
    update_status(slo, ctx, namespace, kept, &verdicts).await?;
    let template_ok = template.as_ref().is_none_or(|t| t.ready);
    if let (true, true, Some(version)) = (readiness.ready, template_ok, version) {
        ctx.verified.record(
            &slo.uid().unwrap_or_default(),
            slo.meta().generation,
            version,
        );
    }
    Ok(retry.into_iter().chain(template_retry).min())
}

/// Puts our finalizer on, or takes it off after removing our annotations from every target.
async fn finalize(slo: &ServiceLevelObjective, ctx: &Context, keep: bool) -> Result<(), Error> {
    let name = key(slo);
    if !keep && ctx.config.rollback_actions {
        let released = cleanup::release_targets(&ctx.client, slo)
            .await
            .map_err(|source| Error::ReleaseTargets {
                name: name.clone(),
                source,
            })?;
        info!(slo = %name, released, "rollback annotations removed from targets");
    }
    cleanup::set(&ctx.client, slo, keep)
        .await
        .map_err(|source| Error::Finalizer { name, source })
}

/// Applies the PrometheusRule when it is missing or differs. Returns the verdict, a retry delay
/// for failures that will not heal by themselves soon, and the rule's resourceVersion once it
/// matches. A rule of our name that is not ours (no controller reference to this SLO) is never
/// taken over.
async fn apply_rule(
    slo: &ServiceLevelObjective,
    model: &Slo,
    ctx: &Context,
    namespace: &str,
) -> Result<(Readiness, Option<Duration>, Option<String>), Error> {
    if let Some(held) = held_for_native_histograms(model, ctx) {
        return Ok((held, Some(OPERATOR_MISSING_RETRY), None));
    }
    let desired = rule::desired(slo, model, namespace, &ctx.config);
    let api: Api<PrometheusRule> = Api::namespaced(ctx.client.clone(), namespace);
    let name = model.name.clone();
    // Read untyped: a rule someone else wrote need not have the shape ours have, and must
    // still be recognised as not ours rather than fail every reconcile.
    let untyped: Api<kube::api::DynamicObject> = Api::namespaced_with(
        ctx.client.clone(),
        namespace,
        &kube::api::ApiResource::erase::<PrometheusRule>(&()),
    );
    let found = match untyped.get_opt(&name).await {
        Ok(found) => found,
        // The kind is not served: the apply below says so.
        Err(e) if api_code(&e) == Some(404) => None,
        Err(source) => return Err(Error::ReadRule { name, source }),
    };
    let taken = found.as_ref().and_then(|e| rule::taken(e, slo));
    // Ours, but not in a shape we read (edited by hand): it differs, and is applied again.
    let existing: Option<PrometheusRule> = found
        .filter(|_| taken.is_none())
        .and_then(|o| serde_json::to_value(o).ok())
        .and_then(|v| serde_json::from_value(v).ok());
    if let Some(taken) = taken {
        let message = format!(
            "PrometheusRule {namespace}/{name} exists and is not this SLO's ({taken}); Plimsoll \
             never takes over an object it did not create. Rename the SLO, or delete that \
             PrometheusRule if it is a leftover. Retrying every 5 minutes."
        );
        let readiness = Readiness {
            ready: false,
            reason: reason::NAME_TAKEN,
            message,
        };
        return Ok((readiness, Some(OPERATOR_MISSING_RETRY), None));
    }
    let change = rule::change(existing.as_ref(), &desired);
    let applied = Readiness {
        ready: true,
        reason: reason::RULES_APPLIED,
        message: summary(&desired, namespace),
    };
    if change == Change::None {
        let version = existing.and_then(|e| e.resource_version());
        return Ok((applied, None, version));
    }
    let params = PatchParams::apply(FIELD_MANAGER).force();
    match api.patch(&name, &params, &Patch::Apply(&desired)).await {
        Ok(stored) => {
            let (event_reason, verb) = match change {
                Change::Create => ("RulesCreated", "created"),
                _ => ("RulesUpdated", "updated"),
            };
            info!(slo = %key(slo), "PrometheusRule {verb}");
            publish(ctx, slo, EventType::Normal, event_reason, "ApplyRules", &applied.message).await;
            Ok((applied, None, stored.resource_version()))
        }
        Err(e) if api_code(&e) == Some(404) => Ok((
            Readiness {
                ready: false,
                reason: reason::PROMETHEUS_OPERATOR_MISSING,
                message: "The PrometheusRule kind (monitoring.coreos.com/v1) is not served by this \
                          cluster: install prometheus-operator (for example the \
                          kube-prometheus-stack Helm chart), or use `plimsoll generate` for a plain \
                          Prometheus. Retrying every 5 minutes."
                    .to_string(),
            },
            Some(OPERATOR_MISSING_RETRY),
            None,
        )),
        Err(kube::Error::Api(status)) if matches!(status.code, 400 | 403 | 422) => Ok((
            Readiness {
                ready: false,
                reason: reason::APPLY_FAILED,
                message: format!(
                    "The API server refused PrometheusRule {namespace}/{name} ({}): {}",
                    status.code, status.message
                ),
            },
            Some(APPLY_FAILED_RETRY),
            None,
        )),
        Err(source) => Err(Error::ApplyRule { name, source }),
    }
}

/// Why an SLO over a native histogram gets no PrometheusRule yet: Prometheus 2 loads its rules
/// but has native histograms only behind a feature flag, as an experiment whose PromQL changed
/// on the way to 3, so its budget would be missing or not 3's. The rule waits until the
/// Prometheus read is known not to be a 2.x; the reader learns it and wakes the SLO. A rule
/// applied before is left as it is.
fn held_for_native_histograms(model: &Slo, ctx: &Context) -> Option<Readiness> {
    if !(model.indicator.needs_prometheus_3() && ctx.config.checks_prometheus_version) {
        return None;
    }
    let learned = ctx
        .readings
        .latest()
        .and_then(|r| r.native_histograms.clone());
    match learned {
        Some(Ok(())) => None,
        Some(Err(too_old)) => Some(Readiness {
            ready: false,
            reason: reason::PROMETHEUS_TOO_OLD,
            message: format!("No PrometheusRule written: {too_old}."),
        }),
        None => Some(Readiness {
            ready: false,
            reason: reason::PROMETHEUS_VERSION_UNKNOWN,
            message: "No PrometheusRule written yet: indicator.nativeLatency needs Prometheus \
                      3.0.0 or later, and Prometheus has not said its version yet."
                .to_string(),
        }),
    }
}

fn summary(rule: &PrometheusRule, namespace: &str) -> String {
    let rules = rule.spec.groups.iter().flat_map(|g| &g.rules);
    let (records, alerts) = rules.fold((0, 0), |(r, a), rule| {
        if rule.alert.is_some() {
            (r, a + 1)
        } else {
            (r + 1, a)
        }
    });
    format!(
        "PrometheusRule {namespace}/{} holds {} rule groups: {records} recording rules, {alerts} alerts",
        rule.name_any(),
        rule.spec.groups.len()
    )
}

/// Writes the reconciler's status fields when they changed; a Warning Event goes out when a
/// verdict turns into a new problem.
async fn update_status(
    slo: &ServiceLevelObjective,
    ctx: &Context,
    namespace: &str,
    prometheus_rule: Option<String>,
    verdicts: &[(&str, &Readiness)],
) -> Result<(), Error> {
    let current = slo.status.as_ref();
    let Some(next) = status::next_with(
        current,
        slo.meta().generation,
        prometheus_rule,
        verdicts,
        (ctx.clock)(),
    ) else {
        return Ok(());
    };
    let new_problems: Vec<&Readiness> = verdicts
        .iter()
        .filter(|(type_, readiness)| {
            let previous = current.and_then(|s| s.conditions.iter().find(|c| c.type_ == *type_));
            !readiness.ready
                && previous
                    .is_none_or(|p| p.reason != readiness.reason || p.message != readiness.message)
        })
        .map(|(_, readiness)| *readiness)
        .collect();
    let api: Api<ServiceLevelObjective> = Api::namespaced(ctx.client.clone(), namespace);
    let name = slo.name_any();
    api.patch_status(
        &name,
        &PatchParams::apply(STATUS_FIELD_MANAGER).force(),
        &Patch::Apply(&StatusApply::new(name.clone(), namespace.to_string(), next)),
    )
    .await
    .map_err(|source| Error::WriteStatus { name, source })?;
    for problem in new_problems {
        publish(
            ctx,
            slo,
            EventType::Warning,
            problem.reason,
            "Reconcile",
            &problem.message,
        )
        .await;
    }
    Ok(())
}

/// Events are for people; failing to publish one must not fail the reconcile.
async fn publish(
    ctx: &Context,
    slo: &ServiceLevelObjective,
    type_: EventType,
    reason: &str,
    action: &str,
    note: &str,
) {
    let event = Event {
        type_,
        reason: reason.to_string(),
        note: Some(note.chars().take(1000).collect()),
        action: action.to_string(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &slo.object_ref(&())).await {
        warn!(slo = %key(slo), error = %e, "could not publish event");
    }
}
