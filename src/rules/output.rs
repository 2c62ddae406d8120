//! The shapes rules are delivered in: a plain Prometheus rule file, a prometheus-operator
//! PrometheusRule object, and a VictoriaMetrics operator VMRule object.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::CustomResource;
use serde::{Deserialize, Serialize};

use super::RuleGroup;

/// Label on generated objects naming the tool that owns them.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "plimsoll";
/// Label on generated objects naming the SLO they come from.
pub const SLO_LABEL: &str = "plimsoll.dev/slo";

/// The part of prometheus-operator's PrometheusRule (monitoring.coreos.com/v1) that we write.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "monitoring.coreos.com",
    version = "v1",
    kind = "PrometheusRule",
    namespaced,
    schema = "disabled"
)]
pub struct PrometheusRuleSpec {
    pub groups: Vec<RuleGroup>,
}

/// The part of the VictoriaMetrics operator's VMRule (operator.victoriametrics.com/v1beta1) that
/// we write: the operator hands `spec.groups` to vmalert as a rule file. Our groups carry only
/// `name`, `interval` and `rules`, fields every operator release knows; it rejects a spec with a
/// member it does not know.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "operator.victoriametrics.com",
    version = "v1beta1",
    kind = "VMRule",
    namespaced,
    schema = "disabled"
)]
pub struct VmRuleSpec {
    pub groups: Vec<RuleGroup>,
}

/// Why rules could not be written out.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("could not serialize rules as YAML: {0}")]
    Yaml(#[from] serde_saphyr::SerializeError),
}

#[derive(Serialize)]
struct RuleFile<'a> {
    groups: &'a [RuleGroup],
}

/// A rule file for Prometheus' `rule_files`.
pub fn rule_file(groups: &[RuleGroup]) -> Result<String, OutputError> {
    Ok(serde_saphyr::to_string(&RuleFile { groups })?)
}

/// The PrometheusRule for one SLO: same name and namespace, our labels plus the operator's
/// configured ones (such as `release: kube-prometheus-stack`), never the SLO's own labels.
pub fn prometheus_rule(
    slo_name: &str,
    namespace: &str,
    groups: Vec<RuleGroup>,
    extra_labels: &BTreeMap<String, String>,
) -> PrometheusRule {
    PrometheusRule {
        metadata: rule_metadata(slo_name, namespace, extra_labels),
        spec: PrometheusRuleSpec { groups },
    }
}

/// The VMRule for one SLO, named and labelled as its PrometheusRule is, so a VMAlert's
/// `ruleSelector` picks it up by the same labels.
pub fn vm_rule(
    slo_name: &str,
    namespace: &str,
    groups: Vec<RuleGroup>,
    extra_labels: &BTreeMap<String, String>,
) -> VMRule {
    // The VictoriaMetrics operator refuses fields its VMRule groups do not have, and Thanos'
    // partial_response_strategy is not one of them.
    let groups = groups
        .into_iter()
        .map(|g| RuleGroup {
            partial_response_strategy: None,
            ..g
        })
        .collect();
    VMRule {
        metadata: rule_metadata(slo_name, namespace, extra_labels),
        spec: VmRuleSpec { groups },
    }
}

fn rule_metadata(
    slo_name: &str,
    namespace: &str,
    extra_labels: &BTreeMap<String, String>,
) -> ObjectMeta {
    let mut labels = extra_labels.clone();
    labels.insert(MANAGED_BY_LABEL.to_string(), MANAGED_BY.to_string());
    labels.insert(SLO_LABEL.to_string(), slo_name.to_string());
    ObjectMeta {
        name: Some(slo_name.to_string()),
        namespace: Some(namespace.to_string()),
        labels: Some(labels),
        ..ObjectMeta::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Rule;

    #[test]
    fn rule_files_read_back_to_the_same_rules() {
        let tricky = "sum(rate(x{path=\"/a  b\",q=\"it's \\\"quoted\\\"\"}[5m]))   /   \
                      sum(rate(x[5m])) or vector(0) and on() hour() > 3 unless x{a=\"{{ b }}\"}"
            .repeat(3);
        let groups = vec![RuleGroup {
            name: "g".into(),
            interval: "30s".into(),
            partial_response_strategy: None,
            rules: vec![Rule {
                record: Some("r".into()),
                expr: tricky,
                labels: BTreeMap::from([("k".into(), "a: b # not a comment".into())]),
                ..Rule::default()
            }],
        }];
        #[derive(Deserialize)]
        struct File {
            groups: Vec<RuleGroup>,
        }
        let text = rule_file(&groups).unwrap();
        let back: File = serde_saphyr::from_str(&text).unwrap();
        assert_eq!(back.groups, groups, "{text}");
    }

    #[test]
    fn the_partial_response_strategy_is_written_only_when_set_and_the_slo_s_wins() {
        use crate::api::PartialResponseStrategy::{Abort, Warn};
        let group = |strategy| RuleGroup {
            name: "g".into(),
            interval: "30s".into(),
            partial_response_strategy: strategy,
            rules: vec![],
        };
        let plain = rule_file(&[group(None)]).unwrap();
        assert!(!plain.contains("partial_response_strategy"), "{plain}");
        let mut groups = vec![group(None), group(Some(Abort))];
        crate::rules::default_partial_response(&mut groups, Some(Warn));
        let text = rule_file(&groups).unwrap();
        let strategies: Vec<&str> = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("partial_response_strategy: "))
            .collect();
        assert_eq!(strategies, ["warn", "abort"], "{text}");
    }

    #[test]
    fn prometheus_rules_carry_our_labels_and_the_configured_ones() {
        let extra = BTreeMap::from([("release".to_string(), "kube-prometheus-stack".to_string())]);
        let rule = prometheus_rule("checkout", "shop", vec![], &extra);
        let labels = rule.metadata.labels.unwrap();
        assert_eq!(labels[MANAGED_BY_LABEL], "plimsoll");
        assert_eq!(labels[SLO_LABEL], "checkout");
        assert_eq!(labels["release"], "kube-prometheus-stack");
        assert_eq!(rule.metadata.namespace.as_deref(), Some("shop"));
    }

    #[test]
    fn vm_rules_are_named_and_labelled_as_prometheus_rules() {
        let extra = BTreeMap::from([("release".to_string(), "vm".to_string())]);
        let groups = vec![RuleGroup {
            name: "g".into(),
            interval: "5m".into(),
            rules: vec![],
            partial_response_strategy: Some(crate::api::PartialResponseStrategy::Abort),
        }];
        let vm = vm_rule("checkout", "shop", groups.clone(), &extra);
        let prom = prometheus_rule("checkout", "shop", groups.clone(), &extra);
        assert_eq!(vm.metadata, prom.metadata);
        assert_eq!(prom.spec.groups, groups);
        // Thanos' field is not one the VictoriaMetrics operator takes.
        let without = RuleGroup {
            partial_response_strategy: None,
            ..groups[0].clone()
        };
        assert_eq!(vm.spec.groups, [without]);
        let json = serde_json::to_value(&vm).unwrap();
        assert_eq!(json["apiVersion"], "operator.victoriametrics.com/v1beta1");
        assert_eq!(json["kind"], "VMRule");
    }
}
