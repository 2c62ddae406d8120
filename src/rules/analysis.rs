//! The Argo Rollouts AnalysisTemplate of an SLO: a background analysis that fails a rollout when
//! the SLO's trigger holds, read from the series our rules record. Pure.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::CustomResource;
use serde::{Deserialize, Serialize};

use super::output::{MANAGED_BY, MANAGED_BY_LABEL, SLO_LABEL};
use super::windows::{burn_windows, rate_suffix};
use super::{Context, names};
use crate::model::{Duration, RollbackPolicy, Slo};

/// The part of Argo Rollouts' AnalysisTemplate (argoproj.io/v1alpha1) that we write.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "argoproj.io",
    version = "v1alpha1",
    kind = "AnalysisTemplate",
    namespaced,
    schema = "disabled"
)]
pub struct AnalysisTemplateSpec {
    pub metrics: Vec<Metric>,
}

/// One measurement of the analysis.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Metric {
    pub name: String,
    pub interval: String,
    /// Only a failure condition: a measurement that does not meet it succeeds, so an empty
    /// result (no data) never fails a rollout.
    pub failure_condition: String,
    pub failure_limit: i64,
    pub provider: Provider,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Provider {
    pub prometheus: PrometheusProvider,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct PrometheusProvider {
    pub address: String,
    pub query: String,
}

/// How often the analysis measures: the fast rule group records every 30s.
const INTERVAL: &str = "1m";

/// The burn-rate condition the template checks: the policy's `burnRateAbove`, or else the fast
/// page tier (1h at 14.4 for 30 days).
pub fn burn_condition(slo: &Slo, policy: &RollbackPolicy) -> (Duration, String) {
    if let Some(b) = &policy.burn_rate_above {
        return (b.window, b.factor.to_string());
    }
    let page = burn_windows(&slo.window).into_iter().next();
    page.map(|b| (b.long, b.factor.to_string()))
        .unwrap_or((Duration::from_hours(1), "14.4".to_string()))
}

/// The template for an SLO with a rollback policy, named like the SLO.
pub fn analysis_template(
    slo: &Slo,
    policy: &RollbackPolicy,
    namespace: &str,
    prometheus_address: &str,
) -> AnalysisTemplate {
    let ctx = Context { slo, namespace };
    let (window, factor) = burn_condition(slo, policy);
    let ratio = ctx.own(&format!("{}{}", names::RATIO_PREFIX, rate_suffix(window)));
    let prometheus = |query: String| Provider {
        prometheus: PrometheusProvider {
            address: prometheus_address.to_string(),
            query,
        },
    };
    // The worst group speaks for the SLO, as in the operator's own decision.
    let burn = Metric {
        name: format!("burn-rate-{window}"),
        interval: INTERVAL.to_string(),
        failure_condition: format!("len(result) > 0 && result[0] > {factor}"),
        failure_limit: 0,
        provider: prometheus(format!("max({ratio}) / {}", ctx.budget())),
    };
    let below = policy.budget_remaining_below.as_f64() / 100.0;
    let remaining = Metric {
        name: "error-budget-remaining".to_string(),
        interval: INTERVAL.to_string(),
        failure_condition: format!("len(result) > 0 && result[0] < {below}"),
        failure_limit: 0,
        provider: prometheus(format!("min({})", ctx.own(names::BUDGET_REMAINING))),
    };
    let labels = BTreeMap::from([
        (MANAGED_BY_LABEL.to_string(), MANAGED_BY.to_string()),
        (SLO_LABEL.to_string(), slo.name.clone()),
    ]);
    AnalysisTemplate {
        metadata: ObjectMeta {
            name: Some(slo.name.clone()),
            namespace: Some(namespace.to_string()),
            labels: Some(labels),
            ..ObjectMeta::default()
        },
        spec: AnalysisTemplateSpec {
            metrics: vec![burn, remaining],
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slo(rollback: serde_json::Value) -> Slo {
        let object: crate::api::ServiceLevelObjective = serde_json::from_value(serde_json::json!({
            "apiVersion": "plimsoll.dev/v1alpha1", "kind": "ServiceLevelObjective",
            "metadata": {"name": "checkout", "namespace": "shop"},
            "spec": {"service": "checkout", "objective": 99.9, "window": "30d",
                     "indicator": {"ratio": {"errors": "e_total", "total": "t_total"}},
                     "rollback": rollback},
        }))
        .unwrap();
        crate::model::validate(&object).unwrap()
    }

    #[test]
    fn defaults_check_the_fast_page_tier_and_an_empty_budget() {
        let s = slo(serde_json::json!({"analysisTemplate": true}));
        let t = analysis_template(&s, s.rollback.as_ref().unwrap(), "shop", "http://prom:9090");
        let [burn, remaining] = &t.spec.metrics[..] else {
            panic!("two metrics")
        };
        assert_eq!(burn.name, "burn-rate-1h");
        assert_eq!(
            burn.provider.prometheus.query,
            "max(slo:sli_error:ratio_rate1h{slo=\"checkout\",slo_namespace=\"shop\"}) / 0.001"
        );
        assert_eq!(
            burn.failure_condition,
            "len(result) > 0 && result[0] > 14.4"
        );
        assert_eq!(
            remaining.failure_condition,
            "len(result) > 0 && result[0] < 0"
        );
        assert!(
            remaining
                .provider
                .prometheus
                .query
                .starts_with("min(slo:error_budget_remaining:ratio{")
        );
        assert_eq!(burn.provider.prometheus.address, "http://prom:9090");
        for m in &t.spec.metrics {
            let q = &m.provider.prometheus.query;
            assert!(promql_parser::parser::parse(q).is_ok(), "{q}");
        }
        assert_eq!(t.metadata.labels.unwrap()["plimsoll.dev/slo"], "checkout");
    }

    #[test]
    fn the_policys_own_trigger_is_used() {
        let s = slo(serde_json::json!({"analysisTemplate": true, "trigger": {
            "budgetRemainingBelow": 25, "burnRateAbove": {"window": "30m", "factor": 6}}}));
        let t = analysis_template(&s, s.rollback.as_ref().unwrap(), "shop", "http://p");
        assert_eq!(t.spec.metrics[0].name, "burn-rate-30m");
        assert!(
            t.spec.metrics[0]
                .provider
                .prometheus
                .query
                .contains("ratio_rate30m")
        );
        assert!(t.spec.metrics[0].failure_condition.ends_with("> 6"));
        assert!(t.spec.metrics[1].failure_condition.ends_with("< 0.25"));
    }
}
