//! `/validate-slo`: ServiceLevelObjectives are admitted only when `plimsoll validate` would pass
//! them, and refused with its messages (field path, problem and fix). Pure.

use kube::core::admission::Operation;
use serde_json::Value;

use super::review::{Refusal, Review, Verdict};
use crate::manifests::{Decoded, decode};

/// The verdict on one SLO request.
pub fn review(review: &Review) -> Verdict {
    let request = &review.request;
    if !matches!(request.operation, Operation::Create | Operation::Update) {
        return Verdict::allow();
    }
    let Some(object) = &review.object else {
        return Verdict::deny(
            Refusal::BadRequest,
            format!(
                "the {:?} request carries no object to validate",
                request.operation
            ),
        );
    };
    if request.operation == Operation::Update && !needs_check(object, review.old_object.as_ref()) {
        return Verdict::allow();
    }
    verdict(object)
}

/// What `plimsoll validate` says about one object, as a verdict.
pub fn verdict(object: &Value) -> Verdict {
    match decode(object) {
        // kubectl prints each as "Warning: ..." and the SLO is admitted.
        Decoded::Valid(valid) => Verdict::Allow {
            warnings: crate::model::advise(&valid.1)
                .iter()
                .map(ToString::to_string)
                .collect(),
        },
        Decoded::Invalid(errors) => Verdict::deny(Refusal::Invalid, errors.to_string()),
        Decoded::Other { api_version, kind } => Verdict::warn(format!(
            "plimsoll validates ServiceLevelObjectives only; {api_version} {kind} was not checked"
        )),
    }
}

/// Updates that leave the spec as it was (labels, annotations, finalizers) and updates of an
/// object being deleted are not judged again, so an SLO stored before the webhook existed, or
/// before a rule tightened, can still be relabelled and deleted.
fn needs_check(object: &Value, old: Option<&Value>) -> bool {
    let deleting = object
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null());
    let same_spec = old.is_some_and(|old| old.get("spec") == object.get("spec"));
    !deleting && !same_spec
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::webhook::review::tests::{body, review as parse};
    use serde_json::json;

    const SLO_KIND: (&str, &str, &str) = ("plimsoll.dev", "v1alpha1", "ServiceLevelObjective");

    fn repo() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
    }

    fn yaml(path: &str) -> Value {
        let text = std::fs::read_to_string(repo().join(path)).unwrap();
        serde_saphyr::from_str(&text).unwrap()
    }

    fn judge(operation: &str, object: Option<Value>, old: Option<Value>) -> Verdict {
        review(&parse(&body(operation, SLO_KIND, object, old)))
    }

    #[test]
    fn a_valid_slo_is_admitted() {
        let slo = yaml("examples/checkout-availability.yaml");
        assert_eq!(judge("CREATE", Some(slo.clone()), None), Verdict::allow());
        let mut changed = slo.clone();
        changed["spec"]["objective"] = json!(99.5);
        assert_eq!(judge("UPDATE", Some(changed), Some(slo)), Verdict::allow());
    }

    #[test]
    fn a_valid_slo_that_is_likely_not_meant_is_admitted_with_validate_s_warning() {
        let mut slo = yaml("examples/api-latency.yaml");
        slo["spec"]["indicator"]["latency"]["threshold"] = json!(200);
        let Verdict::Allow { warnings } = judge("CREATE", Some(slo), None) else {
            panic!("a warning is no refusal");
        };
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].starts_with("spec.indicator.latency.threshold: 200 is over 60")
                && warnings[0].contains("200 ms is 0.2"),
            "{warnings:?}"
        );
    }

    #[test]
    fn bad_inputs_are_refused_with_the_messages_of_plimsoll_validate() {
        let mut checked = 0;
        for entry in std::fs::read_dir(repo().join("tests/bad-input")).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let Ok(document) = serde_saphyr::from_str::<Value>(&text) else {
                continue; // not YAML: the API server never sends it
            };
            if !document.is_object() {
                continue; // not an object: the API server never sends it either
            }
            if document
                .pointer("/metadata/namespace")
                .is_some_and(|n| !n.is_string())
            {
                continue; // metadata that is not ObjectMeta: nor this
            }
            let header = |key: &str| {
                text.lines()
                    .find_map(|l| l.strip_prefix(&format!("# {key}: ")))
                    .unwrap()
                    .to_string()
            };
            let Decoded::Invalid(errors) = decode(&document) else {
                panic!("{} should be invalid", path.display());
            };
            let Verdict::Deny { message, .. } = judge("CREATE", Some(document), None) else {
                panic!("{} was admitted", path.display());
            };
            assert_eq!(message, errors.to_string(), "{}", path.display());
            let expected = format!("{}: ", header("expect-path"));
            assert!(
                message.starts_with(&expected) || message.contains(&format!("; {expected}")),
                "{}: {message}",
                path.display()
            );
            assert!(
                message.contains(&header("expect-message")),
                "{}: {message}",
                path.display()
            );
            checked += 1;
        }
        assert!(checked >= 45, "only {checked} bad inputs checked");
    }

    #[test]
    fn several_problems_are_all_named_with_their_field_paths() {
        let mut slo = yaml("examples/checkout-availability.yaml");
        slo["spec"]["objective"] = json!(100);
        slo["spec"]["windw"] = json!("30d");
        let Verdict::Deny { message, .. } = judge("CREATE", Some(slo), None) else {
            panic!("admitted");
        };
        assert!(message.contains("spec.windw: "), "{message}");
        assert!(message.contains("did you mean \"window\"?"), "{message}");
        assert!(
            message.contains("spec.objective: must be a percentage strictly between 0 and 100"),
            "{message}"
        );
    }

    #[test]
    fn deletes_and_spec_preserving_updates_are_not_judged_again() {
        let mut invalid = yaml("examples/checkout-availability.yaml");
        invalid["spec"]["objective"] = json!(100);
        assert_eq!(
            judge("DELETE", None, Some(invalid.clone())),
            Verdict::allow()
        );
        let mut relabelled = invalid.clone();
        relabelled["metadata"]["labels"] = json!({"team": "shop"});
        assert_eq!(
            judge("UPDATE", Some(relabelled), Some(invalid.clone())),
            Verdict::allow()
        );
        let mut deleting = invalid.clone();
        deleting["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        deleting["metadata"]["finalizers"] = json!([]);
        assert_eq!(
            judge("UPDATE", Some(deleting), Some(invalid.clone())),
            Verdict::allow()
        );
        let mut worse = invalid.clone();
        worse["spec"]["window"] = json!("400d");
        assert!(!judge("UPDATE", Some(worse), Some(invalid)).allowed());
    }

    #[test]
    fn a_create_without_an_object_is_refused_and_other_kinds_pass_with_a_warning() {
        let Verdict::Deny { message, .. } = judge("CREATE", None, None) else {
            panic!("admitted");
        };
        assert!(message.contains("no object"), "{message}");
        let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment",
                                "metadata": {"name": "d", "namespace": "shop"}, "spec": {}});
        let verdict = review(&parse(&body(
            "CREATE",
            ("apps", "v1", "Deployment"),
            Some(deployment),
            None,
        )));
        assert!(verdict.allowed());
        assert!(matches!(verdict, Verdict::Allow { warnings } if warnings.len() == 1));
    }
}
