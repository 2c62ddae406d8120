//! The AnalysisTemplate an SLO asks for with `rollback.analysisTemplate`, kept like the
//! PrometheusRule: read, compare, apply when it differs; deleted when no longer asked for. Its
//! verdict is the `AnalysisTemplateReady` condition, apart from `Ready`, so a cluster without
//! Argo Rollouts never makes the SLO itself unready.

use std::time::Duration;

use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};

use super::error::{Error, api_code};
use super::status::{Readiness, reason};
use super::{Context, FIELD_MANAGER};
use crate::api::ServiceLevelObjective;
use crate::model::Slo;
use crate::rules::{AnalysisTemplate, QueryTarget, analysis_template};

/// The condition this module owns.
pub const CONDITION: &str = "AnalysisTemplateReady";

/// How long to wait before looking again when the Argo Rollouts CRDs are missing.
pub const ROLLOUTS_MISSING_RETRY: Duration = Duration::from_secs(300);

/// The verdict, when the SLO asks for a template (or had one), and a retry delay for failures
/// that will not heal soon.
pub type Outcome = (Option<Readiness>, Option<Duration>);

/// Keeps the template in line with the spec.
pub async fn reconcile(
    object: &ServiceLevelObjective,
    model: &Slo,
    ctx: &Context,
    namespace: &str,
) -> Result<Outcome, Error> {
    let api: Api<AnalysisTemplate> = Api::namespaced(ctx.client.clone(), namespace);
    let policy = model.rollback.as_ref().filter(|p| p.analysis_template);
    let Some(policy) = policy else {
        if had_one(object) {
            remove(&api, object, &model.name).await?;
        }
        return Ok((None, None));
    };
    let Some(address) = ctx.config.analysis_prometheus_url.as_deref() else {
        return Ok((
            Some(problem(
                reason::PROMETHEUS_ADDRESS_MISSING,
                "The operator has no Prometheus address for the AnalysisTemplate: start it with \
                 --prometheus-url (Helm value prometheus.url)."
                    .to_string(),
            )),
            None,
        ));
    };
    let mut desired = analysis_template(
        model,
        policy,
        namespace,
        QueryTarget {
            address,
            tenant: ctx.config.analysis_tenant.as_deref(),
        },
        model.uid.as_deref(),
        ctx.config.reading_scope.matchers(),
        k8s_openapi::jiff::Timestamp::now(),
    );
    desired.metadata.owner_references = object.controller_owner_ref(&()).map(|o| vec![o]);
    // The kind not served at all (no Argo Rollouts) reads as absent: the apply below says so.
    let existing = match crate::kube_client::get_if_served(&api, &model.name).await {
        Ok(found) => found,
        Err(source) => {
            return Err(Error::ApplyTemplate {
                name: model.name.clone(),
                source,
            });
        }
    };
    if let Some(taken) = existing
        .as_ref()
        .and_then(|e| super::rule::taken(e, object))
    {
        return Ok((
            Some(problem(
                reason::NAME_TAKEN,
                format!(
                    "AnalysisTemplate {namespace}/{} exists and is not this SLO's ({taken}); \
                     Plimsoll never takes over an object it did not create. Delete it if it is a \
                     leftover, or turn rollback.analysisTemplate off.",
                    model.name
                ),
            )),
            Some(ROLLOUTS_MISSING_RETRY),
        ));
    }
    if existing.as_ref().is_some_and(|e| matches(e, &desired)) {
        return Ok((Some(applied(namespace, &model.name)), None));
    }
    let params = PatchParams::apply(FIELD_MANAGER).force();
    match api
        .patch(&model.name, &params, &Patch::Apply(&desired))
        .await
    {
        Ok(_) => Ok((Some(applied(namespace, &model.name)), None)),
        Err(e) if api_code(&e) == Some(404) => Ok((
            Some(problem(
                reason::ROLLOUTS_MISSING,
                "The AnalysisTemplate kind (argoproj.io/v1alpha1) is not served by this cluster: \
                 install Argo Rollouts, or set rollback.analysisTemplate to false. Retrying every \
                 5 minutes."
                    .to_string(),
            )),
            Some(ROLLOUTS_MISSING_RETRY),
        )),
        Err(kube::Error::Api(s)) if matches!(s.code, 400 | 403 | 422) => Ok((
            Some(problem(
                reason::APPLY_FAILED,
                format!(
                    "The API server refused AnalysisTemplate {namespace}/{} ({}): {}",
                    model.name, s.code, s.message
                ),
            )),
            Some(super::reconcile::APPLY_FAILED_RETRY),
        )),
        Err(source) => Err(Error::ApplyTemplate {
            name: model.name.clone(),
            source,
        }),
    }
}

/// Whether the last status reported on a template, so turning the option off removes it.
fn had_one(object: &ServiceLevelObjective) -> bool {
    object
        .status
        .as_ref()
        .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == CONDITION))
}

/// Deletes the template only if it is this SLO's, with its UID as a precondition, so a template
/// someone else created under the same name meanwhile is never deleted.
async fn remove(
    api: &Api<AnalysisTemplate>,
    object: &ServiceLevelObjective,
    name: &str,
) -> Result<(), Error> {
    let failed = |source| Error::ApplyTemplate {
        name: name.to_string(),
        source,
    };
    let existing = match api.get_opt(name).await {
        Ok(found) => found,
        Err(e) if api_code(&e) == Some(404) => None,
        Err(source) => return Err(failed(source)),
    };
    let Some(existing) = existing else {
        return Ok(());
    };
    if super::rule::taken(&existing, object).is_some() {
        return Ok(());
    }
    let params = DeleteParams {
        preconditions: Some(kube::api::Preconditions {
            uid: existing.uid(),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match api.delete(name, &params).await {
        Ok(_) => Ok(()),
        Err(e) if api_code(&e) == Some(404) => Ok(()),
        Err(source) => Err(Error::ApplyTemplate {
            name: name.to_string(),
            source,
        }),
    }
}

/// Compares only what we own: the spec, our labels and the owner.
fn matches(existing: &AnalysisTemplate, desired: &AnalysisTemplate) -> bool {
    let labels = existing.labels();
    existing.spec == desired.spec
        && desired
            .labels()
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
        && desired.owner_references().iter().all(|o| {
            existing
                .owner_references()
                .iter()
                .any(|e| e.uid == o.uid && e.controller == o.controller)
        })
}

fn applied(namespace: &str, name: &str) -> Readiness {
    Readiness {
        ready: true,
        reason: reason::TEMPLATE_APPLIED,
        message: format!(
            "AnalysisTemplate {namespace}/{name} fails a rollout while the rollback trigger holds"
        ),
    }
}

fn problem(reason: &'static str, message: String) -> Readiness {
    Readiness {
        ready: false,
        reason,
        message,
    }
}
