//! Property tests: whatever arrives, decoding and validation answer with a result, never a panic;
//! and what they accept survives a round trip through the API types.

mod support;

use plimsoll::manifests::{self, Decoded, Source};
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use support::{document, yaml_files};

/// Field names of the API, so random documents reach deep into the schema instead of stopping at
/// the first unknown key.
const KEYS: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "name",
    "namespace",
    "spec",
    "service",
    "objective",
    "window",
    "timeZone",
    "budgetingMethod",
    "timeslice",
    "duration",
    "indicator",
    "ratio",
    "errors",
    "good",
    "total",
    "groupBy",
    "latency",
    "histogram",
    "threshold",
    "gauge",
    "metric",
    "query",
    "errorRatio",
    "alerting",
    "labels",
    "annotations",
    "page",
    "ticket",
    "absent",
    "for",
    "disabled",
    "rollback",
    "trigger",
    "budgetRemainingBelow",
    "burnRateAbove",
    "factor",
    "recoverAbove",
    "targets",
    "abortRollouts",
    "dryRun",
    "partialResponseStrategy",
    "x",
];

/// Strings that are close to what fields expect: durations, selectors, numbers, oddities.
fn interesting_string() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("plimsoll.dev/v1alpha1".to_string()),
        Just("ServiceLevelObjective".to_string()),
        Just("30d".to_string()),
        Just("month".to_string()),
        Just("Timeslices".to_string()),
        Just("Rollout".to_string()),
        Just("warn".to_string()),
        Just("up{job=\"x\"}".to_string()),
        Just("sum(rate(a[$window]))".to_string()),
        Just("$window".to_string()),
        Just("".to_string()),
        "[a-z0-9{}\\[\\]()=~\"$ ._:-]{0,24}",
        any::<String>(),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        (-1e12f64..1e12).prop_map(|f| json!(f)),
        prop_oneof![Just(0.0), Just(99.9), Just(100.0), Just(-1.0), Just(1e308)]
            .prop_map(|f| json!(f)),
        interesting_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 96, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..8).prop_map(|pairs| {
                Value::Object(
                    pairs
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), v))
                        .collect::<Map<_, _>>(),
                )
            }),
        ]
    })
}

/// An SLO document from examples/ with one field, at any depth, replaced or removed.
fn mutated_example() -> impl Strategy<Value = Value> {
    let examples: Vec<Value> = yaml_files("examples").iter().map(|f| document(f)).collect();
    (
        prop::sample::select(examples),
        any::<prop::sample::Index>(),
        prop::option::of(json_value()),
    )
        .prop_map(|(mut doc, at, replacement)| {
            let mut paths = Vec::new();
            collect_paths(&doc, &mut Vec::new(), &mut paths);
            let path = at.get(&paths).clone();
            replace_at(&mut doc, &path, replacement);
            doc
        })
}

#[derive(Clone, Debug)]
enum Step {
    Key(String),
    Index(usize),
}

fn collect_paths(value: &Value, prefix: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                prefix.push(Step::Key(k.clone()));
                out.push(prefix.clone());
                collect_paths(v, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                prefix.push(Step::Index(i));
                out.push(prefix.clone());
                collect_paths(v, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

fn replace_at(value: &mut Value, path: &[Step], replacement: Option<Value>) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut node = value;
    for step in parents {
        node = match step {
            Step::Key(k) => &mut node[k.as_str()],
            Step::Index(i) => &mut node[*i],
        };
    }
    match (last, node, replacement) {
        (Step::Key(k), Value::Object(map), Some(v)) => {
            map.insert(k.clone(), v);
        }
        (Step::Key(k), Value::Object(map), None) => {
            map.remove(k);
        }
        (Step::Index(i), Value::Array(items), Some(v)) => items[*i] = v,
        (Step::Index(i), Value::Array(items), None) => {
            items.remove(*i);
        }
        _ => {}
    }
}

/// Whatever decode accepts must be accepted again after a trip through the typed API object, with
/// the same model: nothing the checks rely on is lost or invented by serde defaults.
fn accepted_documents_round_trip(value: &Value) -> Result<(), TestCaseError> {
    if let Decoded::Valid(valid) = manifests::decode(value) {
        let (object, model) = *valid;
        let again = serde_json::to_value(&object).unwrap();
        match manifests::decode(&again) {
            Decoded::Valid(second) => prop_assert_eq!(&second.1, &model),
            other => prop_assert!(
                false,
                "accepted once, refused after a round trip: {other:?}"
            ),
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_documents_never_panic(value in json_value()) {
        let _ = manifests::decode(&value);
    }

    #[test]
    fn arbitrary_slo_shaped_documents_never_panic(spec in json_value(), metadata in json_value()) {
        let value = json!({
            "apiVersion": "plimsoll.dev/v1alpha1",
            "kind": "ServiceLevelObjective",
            "metadata": metadata,
            "spec": spec,
        });
        let _ = manifests::decode(&value);
        let _ = manifests::cel_check(&value);
    }

    #[test]
    fn mutated_examples_never_panic_and_round_trip(value in mutated_example()) {
        accepted_documents_round_trip(&value)?;
    }

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        if let Source::Documents(docs) = manifests::parse("fuzz.yaml", &text) {
            for doc in docs {
                let _ = manifests::decode(&doc.value);
            }
        }
    }

    #[test]
    fn yaml_like_text_never_panics(text in "([a-zA-Z]{1,8}: ?(\\[|\\{|-|'|\"|[0-9.]{1,5}|\\$window)?\n {0,4}){0,12}(---\n)?") {
        if let Source::Documents(docs) = manifests::parse("fuzz.yaml", &text) {
            for doc in docs {
                let _ = manifests::decode(&doc.value);
            }
        }
    }
}

#[test]
fn every_example_round_trips() {
    for file in yaml_files("examples") {
        let value = document(&file);
        assert!(
            matches!(manifests::decode(&value), Decoded::Valid(_)),
            "{}",
            file.display()
        );
        accepted_documents_round_trip(&value).unwrap();
    }
}
