//! Reading status written by another version of Plimsoll, or by another tool.
//!
//! The compatibility rule for status: a field is only ever added, never renamed, retyped or
//! given a new meaning; every field is optional; a reader ignores fields it does not know. And
//! here, what a reader cannot read of its own status (a part in a shape it does not know, such
//! as an enum value a newer version added) counts as absent: that part is not acted on, and the
//! next status write replaces it. The spec stays strict: an SLO whose spec cannot be read is left
//! out and reported (slo_cache), never guessed at.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// The part as written, or its default (absent) when it cannot be read.
pub fn part<'de, D: Deserializer<'de>, T: DeserializeOwned + Default>(d: D) -> Result<T, D::Error> {
    let value = Value::deserialize(d)?;
    Ok(serde_json::from_value(value).unwrap_or_default())
}

/// The entries of a list that can be read; the others are left out.
pub fn entries<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<Vec<T>, D::Error> {
    let Value::Array(items) = Value::deserialize(d)? else {
        return Ok(Vec::new());
    };
    Ok(items
        .into_iter()
        .filter_map(|item| serde_json::from_value(item).ok())
        .collect())
}

#[cfg(test)]
mod tests {
    use crate::api::{RollbackState, ServiceLevelObjective};
    use serde_json::json;

    fn with_status(status: serde_json::Value) -> ServiceLevelObjective {
        serde_json::from_value(json!({
            "apiVersion": "plimsoll.dev/v1alpha1", "kind": "ServiceLevelObjective",
            "metadata": {"name": "a", "namespace": "n"},
            "spec": {"service": "s", "objective": 99.9, "window": "30d",
                     "indicator": {"ratio": {"errors": "e", "total": "t"}}},
            "status": status,
        }))
        .unwrap()
    }

    #[test]
    fn a_status_from_the_next_version_is_read_as_far_as_it_is_known() {
        let slo = with_status(json!({
            "observedGeneration": 4,
            "sli": 99.5,
            "errorBudget": {"remaining": "41.2", "consumedMinutes": "25.4", "totalMinutes": "43.2"},
            "burnRates": {"1h": "0.9"},
            "rollback": {"state": "Paused", "targets": []},
            "conditions": [
                {"type": "Ready", "status": "True", "reason": "RulesApplied", "message": "",
                 "lastTransitionTime": "2026-11-01T00:00:00Z", "observedGeneration": 4},
                {"type": "Forecast", "status": "True"}
            ],
            "someFieldOfTheFuture": {"x": 1}
        }));
        let status = slo.status.unwrap();
        assert_eq!(status.observed_generation, Some(4));
        assert_eq!(status.sli, None, "a number where a string belongs: absent");
        assert_eq!(status.error_budget.unwrap().remaining, "41.2");
        assert_eq!(status.burn_rates.get("1h").map(String::as_str), Some("0.9"));
        assert_eq!(status.rollback, None, "an unknown state is never acted on");
        let types: Vec<&str> = status.conditions.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(
            types,
            ["Ready"],
            "a condition that cannot be read is left out"
        );
    }

    #[test]
    fn a_status_from_the_previous_version_with_fields_missing_is_read() {
        let slo = with_status(json!({"rollback": {"state": "Exhausted"}}));
        let status = slo.status.unwrap();
        assert_eq!(status.rollback.unwrap().state, RollbackState::Exhausted);
        assert!(status.conditions.is_empty() && status.sli.is_none());
        let empty = with_status(json!({}));
        assert_eq!(empty.status.unwrap(), Default::default());
    }
}
