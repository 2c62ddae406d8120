//! The observed state of a ServiceLevelObjective: what the operator writes back.
//!
//! Numbers are decimal strings with a fixed precision (API conventions avoid floats, and fixed
//! precision keeps status patches from churning on noise).

use crate::small_map::SmallMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use super::lenient;
use super::spec::TargetKind;

// Parts this version cannot read count as absent: see `lenient` for the compatibility rule.
/// Status of a ServiceLevelObjective.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ServiceLevelObjectiveStatus {
    /// The `metadata.generation` this status was computed from.
    #[serde(
        default,
        deserialize_with = "lenient::part",
        skip_serializing_if = "Option::is_none"
    )]
    pub observed_generation: Option<i64>,
    /// Name of the generated PrometheusRule, in the SLO's namespace.
    #[serde(
        default,
        deserialize_with = "lenient::part",
        skip_serializing_if = "Option::is_none"
    )]
    pub prometheus_rule: Option<String>,
    /// The service level indicator over the window, in percent with 4 decimals, such as "99.9412".
    #[serde(
        default,
        deserialize_with = "lenient::part",
        skip_serializing_if = "Option::is_none"
    )]
    pub sli: Option<String>,
    /// The error budget over the window.
    #[serde(
        default,
        deserialize_with = "lenient::part",
        skip_serializing_if = "Option::is_none"
    )]
    pub error_budget: Option<ErrorBudgetStatus>,
    /// Burn rates by window, such as {"1h": "0.9"}: 1 spends exactly the budget over the window.
    #[serde(
        default,
        deserialize_with = "lenient::part",
        skip_serializing_if = "SmallMap::is_empty"
    )]
    pub burn_rates: SmallMap<String, String>,
    /// When the budget runs out at the current 6h burn rate (RFC 3339). Absent when the burn rate
    /// is at most 1.
    #[serde(
        default,
        deserialize_with = "lenient::part",
        skip_serializing_if = "Option::is_none"
    )]
    pub exhaustion: Option<String>,
    /// The burn rate over the fast page tier's long window, such as "0.9", for the `-o wide`
    /// column `Fast burn ×`: 1h for a 30d window, scaled with the window (14m for 7d, 56m for
    /// 28d); 1 spends exactly the budget over the window. It is also in `burnRates`, under a key
    /// that depends on the window, which a printer column cannot follow.
    #[serde(
        default,
        deserialize_with = "lenient::part",
        skip_serializing_if = "Option::is_none"
    )]
    pub fast_burn_rate: Option<String>,
    /// Per-group budgets, with `groupBy` only.
    #[serde(
        default,
        deserialize_with = "lenient::part",
        skip_serializing_if = "Option::is_none"
    )]
    pub groups: Option<GroupsStatus>,
    /// When the numbers were read from Prometheus (RFC 3339).
    #[serde(
        default,
        deserialize_with = "lenient::part",
        skip_serializing_if = "Option::is_none"
    )]
    pub evaluated_at: Option<String>,
    /// What the budget is, as the latest round measured it: Healthy, Burning, Exhausted or
    /// Recovering; Unknown when that round had no fresh data (DataAvailable says why). The
    /// policy's memory, which missing data never changes, is `rollback.state`.
    #[serde(
        default,
        deserialize_with = "lenient::part",
        skip_serializing_if = "Option::is_none"
    )]
    pub state: Option<BudgetState>,
    /// The error budget policy's state and what it did: written once a round has measured the
    /// budget, and kept (not changed) while data is missing.
    #[serde(
        default,
        deserialize_with = "lenient::part",
        skip_serializing_if = "Option::is_none"
    )]
    pub rollback: Option<RollbackStatus>,
    /// Ready (spec valid and rules applied), BudgetExhausted and DataAvailable.
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    #[serde(
        default,
        deserialize_with = "lenient::entries",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub conditions: Vec<Condition>,
}

/// The error budget in numbers.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBudgetStatus {
    /// Budget left, in percent of the whole budget, with 1 decimal; negative when overspent.
    pub remaining: String,
    /// Budget spent, in minutes of full outage, with 1 decimal.
    pub consumed_minutes: String,
    /// The whole budget, in minutes of full outage over the window, with 1 decimal.
    pub total_minutes: String,
}

/// Summary of per-group budgets.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupsStatus {
    /// Number of groups with data.
    pub count: i64,
    /// The group with the least budget left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worst: Option<WorstGroup>,
}

/// The group with the least budget left.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorstGroup {
    /// The group's `groupBy` label values.
    pub labels: SmallMap<String, String>,
    /// Budget left in this group, in percent.
    pub remaining: String,
}

/// State of the error budget policy.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RollbackStatus {
    /// Healthy, Burning, Exhausted or Recovering.
    pub state: RollbackState,
    /// When the current state began (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// What was done to each target in the current episode.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<TargetStatus>,
}

/// States of the error budget policy.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, schemars::JsonSchema,
)]
pub enum RollbackState {
    /// Within budget.
    #[default]
    Healthy,
    /// Spending faster than sustainable, not yet at the trigger.
    Burning,
    /// The trigger holds: rollback signalled.
    Exhausted,
    /// Below the recovery line after an exhaustion; the signal still holds.
    Recovering,
}

/// What the budget is, as shown: the policy's state when the latest round measured it, Unknown
/// when it could not (no state is shown that nobody measured).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, schemars::JsonSchema)]
pub enum BudgetState {
    /// Within budget.
    Healthy,
    /// Spending faster than sustainable, not yet at the trigger.
    Burning,
    /// The trigger holds: rollback signalled.
    Exhausted,
    /// Below the recovery line after an exhaustion; the signal still holds.
    Recovering,
    /// No fresh data in the latest round: nothing measured, nothing decided.
    Unknown,
}

impl BudgetState {
    /// Every state, in the order pages and summaries list them.
    pub const ALL: [BudgetState; 5] = [
        BudgetState::Healthy,
        BudgetState::Burning,
        BudgetState::Exhausted,
        BudgetState::Recovering,
        BudgetState::Unknown,
    ];

    /// The state as measured: the policy's state on fresh data, else Unknown.
    pub fn measured(policy: RollbackState, fresh: bool) -> BudgetState {
        match (fresh, policy) {
            (false, _) => BudgetState::Unknown,
            (true, RollbackState::Healthy) => BudgetState::Healthy,
            (true, RollbackState::Burning) => BudgetState::Burning,
            (true, RollbackState::Exhausted) => BudgetState::Exhausted,
            (true, RollbackState::Recovering) => BudgetState::Recovering,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            BudgetState::Healthy => "Healthy",
            BudgetState::Burning => "Burning",
            BudgetState::Exhausted => "Exhausted",
            BudgetState::Recovering => "Recovering",
            BudgetState::Unknown => "Unknown",
        }
    }
}

impl std::fmt::Display for BudgetState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the operator did to one target.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetStatus {
    /// The target's kind.
    pub kind: TargetKind,
    /// The target's name.
    pub name: String,
    /// Signalled, Aborted, Overridden, Withdrawn, Missing, Refused, Failed, or WouldSignal /
    /// WouldWithdraw (dry run).
    pub action: String,
    /// The target's revision when it was acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// Details, such as why a target could not be acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}
