//! The PrometheusRule an SLO should have, and whether the one in the cluster still matches it.

use kube::{Resource, ResourceExt};

use crate::api::ServiceLevelObjective;
use crate::model::Slo;
use crate::rules::{self, PrometheusRule};

/// The object to apply: rules rendered from the model (alerts linked to the UI when its URL is
/// set), our labels plus the configured ones, and an ownerReference so Kubernetes deletes it
/// with the SLO.
pub fn desired(
    object: &ServiceLevelObjective,
    model: &Slo,
    namespace: &str,
    settings: &super::Settings,
) -> PrometheusRule {
    let mut groups = crate::ui::linked_rules(model, namespace, settings.ui_url.as_deref());
    rules::default_partial_response(&mut groups, settings.partial_response_strategy);
    let mut rule = rules::prometheus_rule(&model.name, namespace, groups, &settings.rule_labels);
    rule.metadata.owner_references = object.controller_owner_ref(&()).map(|o| vec![o]);
    rule
}

/// Why an existing object of our name is not this SLO's, or `None` when it is: it must carry a
/// controller ownerReference to this very SLO (its UID), as everything we create does.
pub fn taken(existing: &impl Resource, slo: &ServiceLevelObjective) -> Option<String> {
    let uid = slo.meta().uid.as_deref()?;
    let owner = existing
        .meta()
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true));
    match owner {
        Some(o) if o.uid == uid => None,
        Some(o) => Some(format!(
            "its controller is {} {} ({})",
            o.kind, o.name, o.uid
        )),
        None => Some("it has no controller ownerReference".to_string()),
    }
}

/// What applying would change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// No rule yet.
    Create,
    /// The rule differs (edited by hand, or the SLO changed).
    Update,
    /// Nothing to do.
    None,
}

/// Compares only what we own: other tools may add labels or annotations of their own.
pub fn change(existing: Option<&PrometheusRule>, desired: &PrometheusRule) -> Change {
    let Some(existing) = existing else {
        return Change::Create;
    };
    let labels = existing.labels();
    let labels_match = desired
        .labels()
        .iter()
        .all(|(k, v)| labels.get(k) == Some(v));
    let owner_matches = desired.owner_references().iter().all(|o| {
        existing
            .owner_references()
            .iter()
            .any(|e| e.uid == o.uid && e.controller == o.controller)
    });
    if existing.spec == desired.spec && labels_match && owner_matches {
        Change::None
    } else {
        Change::Update
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::Settings;
    use std::collections::BTreeMap;

    fn slo() -> (ServiceLevelObjective, Slo) {
        let object: ServiceLevelObjective = serde_json::from_value(serde_json::json!({
            "apiVersion": "plimsoll.dev/v1alpha1",
            "kind": "ServiceLevelObjective",
            "metadata": {"name": "checkout", "namespace": "shop", "uid": "u-1",
                         "labels": {"team": "shop", "argocd.argoproj.io/instance": "shop"}},
            "spec": {"service": "checkout", "objective": 99.9, "window": "30d",
                     "indicator": {"ratio": {"errors": "e_total", "total": "t_total"}}},
        }))
        .unwrap();
        let model = crate::model::validate(&object).unwrap();
        (object, model)
    }

    #[test]
    fn the_rule_is_owned_by_the_slo_and_carries_no_slo_labels() {
        let (object, model) = slo();
        let extra = BTreeMap::from([("release".to_string(), "prom".to_string())]);
        let rule = desired(&object, &model, "shop", &Settings::new(extra));
        let owner = &rule.owner_references()[0];
        assert_eq!(owner.uid, "u-1");
        assert_eq!(owner.controller, Some(true));
        assert_eq!(owner.kind, "ServiceLevelObjective");
        assert_eq!(
            rule.labels().get("release").map(String::as_str),
            Some("prom")
        );
        assert!(!rule.labels().contains_key("team"));
        assert!(!rule.labels().contains_key("argocd.argoproj.io/instance"));
        assert!(rule.annotations().is_empty());
    }

    #[test]
    fn with_the_ui_url_every_alert_links_to_its_page() {
        let (object, model) = slo();
        let settings = Settings {
            ui_url: Some("https://slo.example.com/".into()),
            ..Settings::new(BTreeMap::new())
        };
        let rule = desired(&object, &model, "shop", &settings);
        let alerts: Vec<_> = rule
            .spec
            .groups
            .iter()
            .flat_map(|g| &g.rules)
            .filter(|r| r.alert.is_some())
            .collect();
        assert!(alerts.len() >= 5);
        for alert in alerts {
            assert_eq!(
                alert
                    .annotations
                    .get(rules::URL_ANNOTATION)
                    .map(String::as_str),
                Some("https://slo.example.com/ui/slo/shop/checkout")
            );
        }
        let plain = desired(&object, &model, "shop", &Settings::new(BTreeMap::new()));
        assert!(
            plain
                .spec
                .groups
                .iter()
                .flat_map(|g| &g.rules)
                .all(|r| !r.annotations.contains_key(rules::URL_ANNOTATION))
        );
    }

    #[test]
    fn detects_creation_drift_and_no_change() {
        let (object, model) = slo();
        let rule = desired(&object, &model, "shop", &Settings::new(BTreeMap::new()));
        assert_eq!(change(None, &rule), Change::Create);
        let mut same = rule.clone();
        same.labels_mut()
            .insert("added-by-someone".into(), "x".into());
        assert_eq!(change(Some(&same), &rule), Change::None);
        let mut edited = rule.clone();
        edited.spec.groups[0].rules[0].expr = "vector(1)".into();
        assert_eq!(change(Some(&edited), &rule), Change::Update);
        let mut relabelled = rule.clone();
        relabelled.labels_mut().remove("plimsoll.dev/slo");
        assert_eq!(change(Some(&relabelled), &rule), Change::Update);
        let mut orphaned = rule.clone();
        orphaned.metadata.owner_references = None;
        assert_eq!(change(Some(&orphaned), &rule), Change::Update);
    }
}
