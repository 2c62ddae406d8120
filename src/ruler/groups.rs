//! Rule groups as the ruler holds them: names in the ruler, how a group is recognised as
//! Plimsoll's, and whether a group the ruler holds is the one we want.
//!
//! Names: a rule file's group `plimsoll/<namespace>/<slo>/<part>` is `plimsoll:<namespace>:<slo>:
//! <part>` in the ruler. The ruler API carries group names in URL paths, and an encoded `/` does
//! not survive every router and proxy (grafana/loki#3375: a leading `%2F` is cleaned into a
//! redirect; fgouteroux/terraform-provider-mimir#76 refuses `/` in group names); `:` never
//! appears in a namespace or an SLO name.
//!
//! Ours: a group is Plimsoll's only when its name has that form, its namespace part is the ruler
//! namespace's SLO namespace, and every rule is one Plimsoll generates for that SLO: a record
//! named `slo:...` with the SLO's `slo` and `slo_namespace` labels, or an alert that carries those
//! labels or reads only that SLO's `slo:` records. Another tool's group may share the namespace
//! or even the name; such a group is never changed or deleted.

use std::collections::BTreeMap;

use promql_parser::label::MatchOp;
use promql_parser::parser::Expr;
use promql_parser::util::{ExprVisitor, walk_expr};
use serde::Deserialize;

use crate::model::names::{is_dns_label, is_dns_subdomain};
use crate::rules::{self, RuleGroup, names};

/// The parts an SLO's groups are named after (`rules::render`).
const PARTS: [&str; 3] = ["fast", "slow", "slices"];
const GROUP_PREFIX: &str = "plimsoll";

/// A rule group as the ruler's list returns it (Prometheus' rulefmt, plus Mimir's and Cortex'
/// fields). Fields Plimsoll never writes are kept so that a group carrying them is seen to
/// differ from ours.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct RulerGroup {
    pub name: String,
    #[serde(default)]
    pub interval: Option<String>,
    #[serde(default)]
    pub rules: Vec<RulerRule>,
    #[serde(default)]
    pub limit: Option<u64>,
    #[serde(default)]
    pub query_offset: Option<String>,
    #[serde(default)]
    pub evaluation_delay: Option<String>,
    #[serde(default)]
    pub source_tenants: Option<Vec<String>>,
    #[serde(default)]
    pub align_evaluation_time_on_interval: Option<bool>,
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct RulerRule {
    #[serde(default)]
    pub record: Option<String>,
    #[serde(default)]
    pub alert: Option<String>,
    #[serde(default)]
    pub expr: String,
    #[serde(default, rename = "for")]
    pub for_: Option<String>,
    #[serde(default)]
    pub keep_firing_for: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// The SLO a group of ours belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub namespace: String,
    pub slo: String,
}

/// The ruler's name for a rule file's group name.
pub fn ruler_name(file_group: &str) -> String {
    file_group.replace('/', ":")
}

/// The ruler namespace of an SLO namespace.
pub fn ruler_namespace(prefix: &str, slo_namespace: &str) -> String {
    format!("{prefix}{slo_namespace}")
}

/// The SLO namespace a ruler namespace stands for, when it is one of ours.
pub fn slo_namespace<'a>(prefix: &str, ruler_namespace: &'a str) -> Option<&'a str> {
    ruler_namespace
        .strip_prefix(prefix)
        .filter(|ns| is_dns_label(ns))
}

/// The group as we POST it: its ruler name, the rules unchanged.
pub fn for_ruler(group: &RuleGroup) -> RuleGroup {
    RuleGroup {
        name: ruler_name(&group.name),
        // Thanos Ruler's field: Mimir's and Cortex' rulers read groups without it and would
        // store them without it, so every sync would see a difference and write again.
        partial_response_strategy: None,
        ..group.clone()
    }
}

/// The group's body for the ruler's set endpoint: one group as YAML.
pub fn body(group: &RuleGroup) -> Result<String, rules::OutputError> {
    Ok(serde_saphyr::to_string(group)?)
}

/// `plimsoll:<namespace>:<slo>:<part>` split, when the name has that form.
fn parse_name(name: &str) -> Option<Owner> {
    let parts: Vec<&str> = name.split(':').collect();
    match parts.as_slice() {
        [GROUP_PREFIX, namespace, slo, part]
            if PARTS.contains(part) && is_dns_label(namespace) && is_dns_subdomain(slo) =>
        {
            Some(Owner {
                namespace: namespace.to_string(),
                slo: slo.to_string(),
            })
        }
        _ => None,
    }
}

/// The SLO the group belongs to when it is Plimsoll's (see the module's notes); `None` for
/// anybody else's group.
pub fn owner(prefix: &str, ruler_namespace: &str, group: &RulerGroup) -> Option<Owner> {
    let owner = parse_name(&group.name)?;
    let ours = slo_namespace(prefix, ruler_namespace) == Some(owner.namespace.as_str())
        && !group.rules.is_empty()
        && group.rules.iter().all(|r| generated(&owner, r));
    ours.then_some(owner)
}

/// Whether a rule is one Plimsoll generates for `owner`'s SLO.
fn generated(owner: &Owner, rule: &RulerRule) -> bool {
    let labelled = rule.labels.get(names::LABEL_SLO) == Some(&owner.slo)
        && rule.labels.get(names::LABEL_NAMESPACE) == Some(&owner.namespace);
    match (&rule.record, &rule.alert) {
        (Some(record), None) => record.starts_with("slo:") && labelled,
        (None, Some(_)) => labelled || reads_only_own_records(owner, &rule.expr),
        _ => false,
    }
}

/// True when the expression parses and every selector in it is an `slo:` record selected with
/// the SLO's `slo` and `slo_namespace` labels.
fn reads_only_own_records(owner: &Owner, expr: &str) -> bool {
    let Ok(parsed) = promql_parser::parser::parse(expr) else {
        return false;
    };
    let mut check = OwnSelectors {
        owner,
        seen: 0,
        foreign: false,
    };
    let _ = walk_expr(&mut check, &parsed);
    check.seen > 0 && !check.foreign
}

struct OwnSelectors<'a> {
    owner: &'a Owner,
    seen: usize,
    foreign: bool,
}

impl ExprVisitor for OwnSelectors<'_> {
    type Error = std::convert::Infallible;

    fn pre_visit(&mut self, expr: &Expr) -> Result<bool, Self::Error> {
        let selector = match expr {
            Expr::VectorSelector(vs) => vs,
            Expr::MatrixSelector(ms) => &ms.vs,
            _ => return Ok(true),
        };
        self.seen += 1;
        let equal = |label: &str, value: &str| {
            selector
                .matchers
                .find_matchers(label)
                .iter()
                .any(|m| matches!(m.op, MatchOp::Equal) && m.value == value)
        };
        let own = selector
            .name
            .as_deref()
            .is_some_and(|n| n.starts_with("slo:"))
            && selector.matchers.or_matchers.is_empty()
            && equal(names::LABEL_SLO, &self.owner.slo)
            && equal(names::LABEL_NAMESPACE, &self.owner.namespace);
        self.foreign |= !own;
        Ok(true)
    }
}

/// Whether the ruler's group is exactly `wanted` (already renamed for the ruler). Durations are
/// compared as durations: the ruler writes them back in its own form (`1d` for `24h`).
pub fn same(wanted: &RuleGroup, found: &RulerGroup) -> bool {
    let extras_unset = found.limit.unwrap_or(0) == 0
        && zero(&found.query_offset)
        && zero(&found.evaluation_delay)
        && found.source_tenants.as_ref().is_none_or(Vec::is_empty)
        && !found.align_evaluation_time_on_interval.unwrap_or(false)
        && found.labels.as_ref().is_none_or(BTreeMap::is_empty);
    wanted.name == found.name
        && extras_unset
        && same_duration(Some(&wanted.interval), found.interval.as_ref())
        && wanted.rules.len() == found.rules.len()
        && wanted
            .rules
            .iter()
            .zip(&found.rules)
            .all(|(w, f)| same_rule(w, f))
}

fn same_rule(wanted: &rules::Rule, found: &RulerRule) -> bool {
    wanted.record == found.record
        && wanted.alert == found.alert
        && wanted.expr == found.expr
        && same_duration(wanted.for_.as_ref(), found.for_.as_ref())
        && zero(&found.keep_firing_for)
        && wanted.labels == found.labels
        && wanted.annotations == found.annotations
}

/// Milliseconds of a Prometheus duration (`1h30m`, `500ms`, `1y`); absent is zero.
fn millis(text: Option<&String>) -> Option<u64> {
    let Some(text) = text else { return Some(0) };
    let mut total: u64 = 0;
    let mut rest = text.as_str();
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        let number: u64 = rest[..digits].parse().ok()?;
        let tail = &rest[digits..];
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(tail.len());
        let unit = match &tail[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            "y" => 31_536_000_000,
            _ => return None,
        };
        total = total.checked_add(number.checked_mul(unit)?)?;
        rest = &tail[unit_len..];
    }
    Some(total)
}

fn same_duration(wanted: Option<&String>, found: Option<&String>) -> bool {
    match (millis(wanted), millis(found)) {
        (Some(w), Some(f)) => w == f,
        _ => wanted == found,
    }
}

fn zero(found: &Option<String>) -> bool {
    millis(found.as_ref()) == Some(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ServiceLevelObjective;

    fn slo_groups() -> Vec<RuleGroup> {
        let object: ServiceLevelObjective = serde_json::from_value(serde_json::json!({
            "apiVersion": "plimsoll.dev/v1alpha1",
            "kind": "ServiceLevelObjective",
            "metadata": {"name": "checkout", "namespace": "shop"},
            "spec": {"service": "checkout", "objective": 99.9, "window": "30d",
                     "indicator": {"ratio": {"errors": "e_total", "total": "t_total"}}},
        }))
        .unwrap();
        let slo = crate::model::validate(&object).unwrap();
        rules::render(&slo, "shop").iter().map(for_ruler).collect()
    }

    /// What the ruler's list gives back for a group we POSTed: our YAML read as the ruler's.
    fn as_listed(group: &RuleGroup) -> RulerGroup {
        serde_saphyr::from_str(&body(group).unwrap()).unwrap()
    }

    #[test]
    fn thanos_partial_response_strategy_is_not_sent_to_a_ruler() {
        let mut group = rules::render(
            &crate::model::validate(
                &serde_json::from_value::<ServiceLevelObjective>(serde_json::json!({
                    "apiVersion": "plimsoll.dev/v1alpha1",
                    "kind": "ServiceLevelObjective",
                    "metadata": {"name": "checkout", "namespace": "shop"},
                    "spec": {"service": "checkout", "objective": 99.9, "window": "30d",
                             "partialResponseStrategy": "abort",
                             "indicator": {"ratio": {"errors": "e_total", "total": "t_total"}}},
                }))
                .unwrap(),
            )
            .unwrap(),
            "shop",
        )
        .remove(0);
        assert!(group.partial_response_strategy.is_some());
        group = for_ruler(&group);
        assert_eq!(group.partial_response_strategy, None);
        assert!(!body(&group).unwrap().contains("partial_response"));
    }

    #[test]
    fn our_groups_are_ours_and_read_back_the_same() {
        for group in slo_groups() {
            assert!(!group.name.contains('/'), "{}", group.name);
            let listed = as_listed(&group);
            let found = owner("", "shop", &listed).unwrap_or_else(|| panic!("{}", group.name));
            assert_eq!(
                (found.namespace.as_str(), found.slo.as_str()),
                ("shop", "checkout")
            );
            assert!(same(&group, &listed), "{}", group.name);
            assert_eq!(owner("slo-", "slo-shop", &listed), Some(found.clone()));
            assert_eq!(owner("", "other", &listed), None, "namespace must match");
        }
    }

    #[test]
    fn a_group_with_our_name_and_foreign_rules_is_not_ours() {
        let mut listed = as_listed(&slo_groups()[0]);
        listed.rules.push(RulerRule {
            record: Some("job:up:sum".into()),
            expr: "sum(up)".into(),
            ..RulerRule::default()
        });
        assert_eq!(owner("", "shop", &listed), None);
        let mut alert = as_listed(&slo_groups()[1]);
        let rule = alert.rules.iter_mut().find(|r| r.alert.is_some()).unwrap();
        rule.labels.remove("slo");
        rule.expr = format!("{} or up == 0", rule.expr);
        assert_eq!(owner("", "shop", &alert), None, "reads a raw series");
        let empty = RulerGroup {
            name: "plimsoll:shop:checkout:fast".into(),
            ..RulerGroup::default()
        };
        assert_eq!(owner("", "shop", &empty), None);
        for name in [
            "plimsoll/shop/checkout/fast",
            "plimsoll:shop:checkout:other",
            "x:shop:c:fast",
        ] {
            let renamed = RulerGroup {
                name: name.into(),
                ..as_listed(&slo_groups()[0])
            };
            assert_eq!(owner("", "shop", &renamed), None, "{name}");
        }
    }

    #[test]
    fn differences_are_seen_and_duration_forms_are_not() {
        let group = &slo_groups()[1];
        let mut listed = as_listed(group);
        listed.interval = Some("300s".into());
        assert!(same(group, &listed), "5m written back as 300s");
        listed.interval = Some("1m".into());
        assert!(!same(group, &listed));
        let mut listed = as_listed(group);
        listed.rules[0].expr.push(' ');
        assert!(!same(group, &listed));
        let mut listed = as_listed(group);
        listed.source_tenants = Some(vec!["other".into()]);
        assert!(!same(group, &listed));
        let mut listed = as_listed(group);
        listed.rules.pop();
        assert!(!same(group, &listed));
        assert_eq!(millis(Some(&"1h30m".to_string())), Some(5_400_000));
        assert_eq!(
            millis(Some(&"1d".to_string())),
            millis(Some(&"24h".to_string()))
        );
        assert_eq!(millis(Some(&"1x".to_string())), None);
    }

    #[test]
    fn ruler_namespaces_carry_the_prefix() {
        assert_eq!(ruler_namespace("slo-", "shop"), "slo-shop");
        assert_eq!(slo_namespace("slo-", "slo-shop"), Some("shop"));
        assert_eq!(slo_namespace("slo-", "shop"), None);
        assert_eq!(slo_namespace("", "Shop Alerts"), None);
    }
}
