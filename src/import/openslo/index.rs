//! OpenSLO objects by kind and name, so that an SLO's `indicatorRef`, `alertPolicyRef`,
//! `conditionRef` and `targetRef` resolve to objects given in the same import.

use std::collections::HashMap;

use serde_json::Value;

/// Every OpenSLO object of the import, by (kind, metadata.name); the first of a name wins.
#[derive(Debug, Default)]
pub struct Index<'a> {
    objects: HashMap<(String, String), &'a Value>,
    counts: HashMap<(String, String), usize>,
}

impl<'a> Index<'a> {
    pub fn of(units: &[(String, &'a Value)]) -> Self {
        let mut objects = HashMap::new();
        let mut counts = HashMap::new();
        for (_, value) in units {
            let api = value
                .get("apiVersion")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if !api.starts_with("openslo/") {
                continue;
            }
            let kind = value.get("kind").and_then(Value::as_str);
            let name = value.pointer("/metadata/name").and_then(Value::as_str);
            if let (Some(kind), Some(name)) = (kind, name) {
                *counts
                    .entry((kind.to_string(), name.to_string()))
                    .or_insert(0) += 1;
                objects
                    .entry((kind.to_string(), name.to_string()))
                    .or_insert(*value);
            }
        }
        Index { objects, counts }
    }

    /// How many objects of this kind have this name.
    pub fn count(&self, kind: &str, name: &str) -> usize {
        self.counts
            .get(&(kind.to_string(), name.to_string()))
            .copied()
            .unwrap_or(0)
    }

    /// The object of this kind and name.
    pub fn get(&self, kind: &str, name: &str) -> Option<&'a Value> {
        self.objects
            .get(&(kind.to_string(), name.to_string()))
            .copied()
    }
}
