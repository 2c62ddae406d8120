//! Acting on workloads when a budget runs out: the rollback annotations on each listed target's
//! metadata (never its pod template), and `status.abort` on Argo Rollouts.
//!
//! The contract (README: "Rollback signals on workloads"): every SLO writes with server-side
//! apply under a field manager of its own, `plimsoll-slo-<name>`, two annotations:
//! - `rollback.plimsoll.dev/<slo-name>`: this SLO's facts as JSON (state, reason, since,
//!   revision), present exactly while this SLO asserts a rollback on the target;
//! - `plimsoll.dev/rollback: "true"`: the aggregate. Every asserting SLO applies the same value,
//!   so the API server records them all as its owners; when one withdraws (an apply that names
//!   no annotation), the others still own it and it stays. It goes with the last owner.
//!
//! Two SLOs on one workload therefore never erase each other's signal, and withdrawing removes
//! exactly our own keys and nothing anyone else wrote.

mod target;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use target::{Observed, abort, observe, release_legacy, resource, signal, withdraw};

/// The aggregate annotation: present while any SLO listing the target asserts a rollback.
pub const ROLLBACK: &str = "plimsoll.dev/rollback";
/// Prefix of the per-SLO annotation: `rollback.plimsoll.dev/<slo-name>`.
pub const PER_SLO_PREFIX: &str = "rollback.plimsoll.dev/";
/// The label a target must carry under `--require-target-opt-in`.
pub const OPT_IN_LABEL: &str = "plimsoll.dev/rollback-allowed";
/// The field manager of round 1, which wrote single-SLO keys; released wherever it is found.
pub const LEGACY_FIELD_MANAGER: &str = "plimsoll-rollback";
/// The single-SLO keys of round 1 (owned by [`LEGACY_FIELD_MANAGER`]).
pub const LEGACY_KEYS: [&str; 5] = [
    "plimsoll.dev/budget-state",
    "plimsoll.dev/rollback-reason",
    "plimsoll.dev/slo",
    "plimsoll.dev/exhausted-at",
    "plimsoll.dev/rollback-revision",
];

/// The field manager of one SLO's annotations on its targets (targets share the SLO's
/// namespace, so the name identifies the SLO).
pub fn field_manager(slo_name: &str) -> String {
    format!("plimsoll-slo-{slo_name}")
}

/// The per-SLO annotation key.
pub fn per_slo_key(slo_name: &str) -> String {
    format!("{PER_SLO_PREFIX}{slo_name}")
}

/// One SLO's facts on a target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Facts {
    /// Exhausted or Recovering: the signal holds in both.
    pub state: String,
    /// When this SLO's episode began (RFC 3339).
    pub since: String,
    /// The target's revision when it was signalled (`deployment.kubernetes.io/revision` or
    /// `rollout.argoproj.io/revision`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// One sentence with the numbers.
    pub reason: String,
}

impl Facts {
    /// Whether the two say the same, apart from the numbers in the reason (which move every
    /// round and are not worth a write).
    pub fn same_signal(&self, other: &Facts) -> bool {
        self.state == other.state && self.since == other.since && self.revision == other.revision
    }
}

/// The annotations one SLO applies while it asserts a rollback.
pub fn signal_annotations(slo_name: &str, facts: &Facts) -> BTreeMap<String, String> {
    let text = serde_json::to_string(facts).unwrap_or_default();
    BTreeMap::from([
        (ROLLBACK.to_string(), "true".to_string()),
        (per_slo_key(slo_name), text),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contract_keys_and_values() {
        let facts = Facts {
            state: "Exhausted".into(),
            since: "2027-01-15T08:00:00Z".into(),
            revision: Some("7".into()),
            reason: "0.0% of the error budget left".into(),
        };
        let a = signal_annotations("checkout", &facts);
        assert_eq!(a[ROLLBACK], "true");
        let back: Facts = serde_json::from_str(&a["rollback.plimsoll.dev/checkout"]).unwrap();
        assert_eq!(back, facts);
        assert_eq!(field_manager("checkout"), "plimsoll-slo-checkout");
        let moved = Facts {
            reason: "other numbers".into(),
            ..facts.clone()
        };
        assert!(facts.same_signal(&moved));
    }

    #[test]
    fn per_slo_keys_are_valid_annotation_keys_for_the_longest_names() {
        let name = "a".repeat(63);
        let key = per_slo_key(&name);
        let (prefix, rest) = key.split_once('/').unwrap();
        assert!(prefix.len() <= 253 && rest.len() <= 63, "{key}");
        assert!(field_manager(&name).len() <= 128);
    }
}
