//! The desired state of a ServiceLevelObjective: what users write.
//!
//! Checks the API server can run itself live here as OpenAPI keywords and CEL rules
//! (`x-kubernetes-validations`); everything else is checked by [`crate::model`].

use crate::small_map::SmallMap;

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::status::ServiceLevelObjectiveStatus;

/// A service level objective: an indicator, a target and a window, turned into Prometheus rules,
/// a live error budget and, optionally, rollback signals for the workloads that spend it.
// Clippy reads each `printcolumn(type_ = ...)` of kube's attribute as a repeated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "plimsoll.dev",
    version = "v1alpha1",
    kind = "ServiceLevelObjective",
    plural = "servicelevelobjectives",
    // Not `slo`: Pyrra's CRD (pyrra.dev) has the same kind and plural and the short name `slo`,
    // and running both is the migration path. `kubectl get plslo` is ours alone.
    shortname = "plslo",
    category = "plimsoll",
    namespaced,
    doc = "A service level objective: Plimsoll turns it into Prometheus rules, a live error budget \
           in status and, optionally, rollback signals for the workloads that spend the budget.",
    status = "ServiceLevelObjectiveStatus",
    printcolumn(name = "Service", type_ = "string", json_path = ".spec.service"),
    printcolumn(name = "Objective %", type_ = "number", json_path = ".spec.objective"),
    printcolumn(name = "Window", type_ = "string", json_path = ".spec.window"),
    printcolumn(
        name = "SLI %",
        type_ = "string",
        description = "Service level indicator over the window, percent with 4 decimals",
        json_path = ".status.sli"
    ),
    printcolumn(
        name = "Budget %",
        type_ = "string",
        description = "Error budget remaining, percent; negative when overspent",
        json_path = ".status.errorBudget.remaining"
    ),
    printcolumn(
        name = "State",
        type_ = "string",
        description = "Healthy, Burning, Exhausted or Recovering as last measured; Unknown without fresh data",
        json_path = ".status.state"
    ),
    printcolumn(
        name = "Fresh",
        type_ = "string",
        description = "Whether the numbers are from the latest read of Prometheus (DataAvailable)",
        json_path = ".status.conditions[?(@.type==\"DataAvailable\")].status"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Fast burn ×",
        type_ = "string",
        description = "Burn rate over the fast page window (1h for 30d, scaled with the window); 1 spends exactly the budget",
        json_path = ".status.fastBurnRate",
        priority = 1
    ),
    printcolumn(
        name = "Exhausts at",
        type_ = "string",
        description = "When the budget runs out at the current burn rate (UTC); empty when it does not",
        json_path = ".status.exhaustion",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    cel
)]
#[x_kube(
    validation = Rule::new("self.objective > 0.0 && self.objective < 100.0")
        .message("objective must be a percentage strictly between 0 and 100, such as 99.9")
        .field_path(".objective"),
    validation = Rule::new("self.objective <= 0.0 || self.objective >= 1.0")
        .message("objective is a percentage, not a fraction: 0.999 means 0.999%; did you mean 99.9?")
        .field_path(".objective"),
    validation = Rule::new("(self.window == 'month' || self.window == 'week') || !has(self.timeZone)")
        .message("timeZone applies to calendar windows only (window: month or week)")
        .field_path(".timeZone"),
    validation = Rule::new("has(self.timeslice) == (has(self.budgetingMethod) && self.budgetingMethod == 'Timeslices')")
        .message("timeslice is required with budgetingMethod: Timeslices and not allowed otherwise")
        .field_path(".timeslice"),
)]
#[serde(rename_all = "camelCase")]
pub struct ServiceLevelObjectiveSpec {
    /// The service this objective belongs to. Becomes the `slo_service` label of every generated
    /// series, so it must be a valid label value (at most 63 characters).
    #[schemars(length(min = 1, max = 63))]
    pub service: String,

    /// What the objective promises, in words. Shown in alert descriptions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub description: Option<String>,

    /// The target, in percent of good events (or good time slices) over the window. Strictly
    /// between 0 and 100, for example 99.9.
    pub objective: f64,

    /// The window the budget is measured over. Rolling: a duration from 1d to 90d in w, d and h
    /// units, such as `30d` or `4w`. Calendar: `month` or `week`; the budget resets at the start of
    /// each period in `timeZone`.
    #[schemars(regex(pattern = r"^(month|week|([0-9]+[wdh])+)$"))]
    pub window: String,

    /// IANA time zone in which calendar periods start, such as `Europe/Berlin`. Calendar windows
    /// only; defaults to UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,

    /// How the budget is counted. `Occurrences` (default): good events over all events.
    /// `Timeslices`: good time slices over all slices; a slice is good when its own ratio meets
    /// `timeslice.objective`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budgeting_method: Option<BudgetingMethod>,

    /// The slice definition, required with `budgetingMethod: Timeslices`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeslice: Option<Timeslice>,

    /// What is measured. Exactly one of `ratio`, `latency`, `nativeLatency`, `gauge` or `query`.
    pub indicator: Indicator,

    /// The multiwindow, multi-burn-rate alerts generated for this objective.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alerting: Option<Alerting>,

    /// The error budget policy: when to signal a rollback and to which workloads. Without it, the
    /// operator only observes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<Rollback>,

    /// For Thanos Ruler: the rule groups' `partial_response_strategy` (the schema shows the
    /// enum's text, which says it all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial_response_strategy: Option<PartialResponseStrategy>,
}

// Thanos' own field and spelling (thanos-io/thanos docs/components/rule.md, "Partial Response");
// prometheus-operator's PrometheusRule group field of the same name takes the same values.
/// For Thanos Ruler: whether this SLO's rule groups are still evaluated when some of Thanos'
/// stores do not answer (`warn`) or their evaluation fails (`abort`, Thanos' default). Written as
/// each group's `partial_response_strategy`, in place of the operator's
/// `--partial-response-strategy`. prometheus-operator drops it for Prometheus; a plain Prometheus
/// refuses rule files that carry it.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum PartialResponseStrategy {
    /// Evaluate on what the answering stores return; Thanos counts it in
    /// `thanos_rule_evaluation_with_warnings_total`.
    Warn,
    /// Fail the evaluation when a store does not answer.
    Abort,
}

/// How the error budget is counted.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, schemars::JsonSchema,
)]
pub enum BudgetingMethod {
    /// Good events divided by all events.
    #[default]
    Occurrences,
    /// Good time slices divided by all time slices.
    Timeslices,
}

/// A time slice for the `Timeslices` budgeting method, e.g. "P95 <= 200ms" per minute is a latency
/// indicator with threshold 0.2 and a slice of `1m` with objective 95.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("self.objective > 0.0 && self.objective <= 100.0")
    .message("timeslice.objective must be greater than 0 and at most 100").field_path(".objective"))]
#[serde(rename_all = "camelCase")]
pub struct Timeslice {
    /// Length of one slice, whole minutes from 1m to 1h, such as `1m` or `5m`.
    #[schemars(regex(pattern = r"^[0-9]+[mh]$"))]
    pub duration: String,
    /// A slice is good when its own ratio of good events, in percent, is at least this value.
    /// Between 0 (exclusive) and 100 (inclusive).
    pub objective: f64,
}

/// What is measured. Exactly one field must be set.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[x_kube(validation = Rule::new(
    "[has(self.ratio), has(self.latency), has(self.nativeLatency), has(self.gauge), has(self.query)].filter(x, x).size() == 1"
).message("set exactly one of ratio, latency, nativeLatency, gauge or query"))]
#[serde(rename_all = "camelCase")]
pub struct Indicator {
    /// Errors (or good events) and total events from two counters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratio: Option<RatioIndicator>,
    /// Requests slower than a threshold, from a classic Prometheus histogram.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<LatencyIndicator>,
    /// Requests slower than a threshold, from a Prometheus native histogram (Prometheus 3 or
    /// later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub native_latency: Option<NativeLatencyIndicator>,
    /// A 0/1 gauge sampled over time, such as `probe_success`: 1 is good, 0 is bad.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gauge: Option<GaugeIndicator>,
    /// Escape hatch: a PromQL expression for the error ratio.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<QueryIndicator>,
}

/// A ratio of two counters. Exactly one of `errors` and `good` must be set.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[x_kube(validation = Rule::new("has(self.errors) != has(self.good)")
    .message("set exactly one of errors or good"))]
#[serde(rename_all = "camelCase")]
pub struct RatioIndicator {
    /// Counter of failed events: a PromQL vector selector (metric name and label matchers), such
    /// as `http_requests_total{job="checkout",code=~"5.."}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<String>,
    /// Counter of successful events, a vector selector; errors are then `total - good`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub good: Option<String>,
    /// Counter of all events, a vector selector, such as `http_requests_total{job="checkout"}`.
    pub total: String,
    /// Labels to keep a separate budget for, such as `[route]`. Empty: one budget for the service.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub group_by: Vec<String>,
}

/// Events slower than a threshold are errors. Reads a classic histogram's `_bucket` and `_count`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LatencyIndicator {
    /// The histogram's base name with label matchers, without the `_bucket` suffix, such as
    /// `http_request_duration_seconds{job="checkout"}`.
    pub histogram: String,
    /// The threshold in the histogram's unit (seconds, by convention). Must equal one of the
    /// histogram's bucket bounds (`le`), such as 0.3.
    pub threshold: f64,
    /// Labels to keep a separate budget for. Empty: one budget for the service.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub group_by: Vec<String>,
}

/// Events slower than a threshold are errors. Reads a native histogram (one series per histogram,
/// no `_bucket` series) with `histogram_fraction`, which Prometheus 3 evaluates; Prometheus 2 is
/// refused. The count is exact when the threshold is a bucket boundary of the histogram:
/// `2^(k * 2^-schema)` for the exponential schemas (powers of two, such as 0.25 or 1, are
/// boundaries at every schema from 0 up), or one of the custom bounds of a histogram with custom
/// buckets (NHCB, schema -53). Elsewhere Prometheus interpolates inside the bucket, and
/// `validate --prometheus-url` refuses the threshold.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NativeLatencyIndicator {
    /// The native histogram, a vector selector, such as
    /// `http_request_duration_seconds{job="checkout"}`.
    pub histogram: String,
    /// The threshold in the histogram's unit (seconds, by convention), such as 0.25. For an exact
    /// count it must be a bucket boundary: a power of `2^(2^-schema)` for exponential schemas
    /// (powers of two such as 0.25 or 1 are boundaries at every schema from 0 up), or one of the
    /// custom bounds of a custom-bucket histogram (NHCB). Elsewhere Prometheus interpolates
    /// inside the bucket, and `plimsoll validate --prometheus-url` refuses the threshold.
    pub threshold: f64,
    /// Labels to keep a separate budget for. Empty: one budget for the service.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub group_by: Vec<String>,
}

/// A sampled 0/1 gauge: the share of samples equal to 1 is the SLI.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GaugeIndicator {
    /// The gauge, a vector selector, such as `probe_success{job="blackbox"}`.
    pub metric: String,
    /// Labels to keep a separate budget for, such as `[instance]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub group_by: Vec<String>,
}

/// A free PromQL error ratio. Long windows average its 5m values, which weighs quiet and busy
/// periods alike: prefer `ratio` or `latency` when the counters exist.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct QueryIndicator {
    /// PromQL for the ratio of bad events (0 to 1) over `$window`, which is replaced by each
    /// window, such as `sum(rate(errors_total[$window])) / sum(rate(requests_total[$window]))`.
    #[x_kube(validation = Rule::new("self.contains('$window')")
        .message("errorRatio must contain the $window placeholder"))]
    pub error_ratio: String,
}

/// The alerts generated for the objective.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Alerting {
    /// Turn off every alert of this objective. Recording rules are still generated.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disabled: bool,
    /// Prefix of the alert names, such as `CheckoutAvailability` (alerts are then
    /// `CheckoutAvailabilityErrorBudgetBurn` and `CheckoutAvailabilitySLIAbsent`). Default: the
    /// object's name in CamelCase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-zA-Z_][a-zA-Z0-9_]*$"))]
    pub name: Option<String>,
    /// Labels added to every alert, such as `team: shop`.
    #[serde(default, skip_serializing_if = "SmallMap::is_empty")]
    pub labels: SmallMap<String, String>,
    /// Annotations added to every alert, such as `runbook_url`.
    #[serde(default, skip_serializing_if = "SmallMap::is_empty")]
    pub annotations: SmallMap<String, String>,
    /// The fast-burn tier (2% of a 30d budget in 1h, 5% in 6h). Default label `severity: critical`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<AlertTier>,
    /// The slow-burn tier (10% of a 30d budget in 1d or 3d). Default label `severity: warning`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<AlertTier>,
    /// An alert when the indicator's total series vanish, so a dead exporter is not mistaken for a
    /// perfect service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub absent: Option<AbsentAlert>,
}

/// One burn-rate alert tier.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlertTier {
    /// Turn off this tier only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disabled: bool,
    /// Labels of this tier's alerts; they override `alerting.labels`.
    #[serde(default, skip_serializing_if = "SmallMap::is_empty")]
    pub labels: SmallMap<String, String>,
    /// Annotations of this tier's alerts; they override `alerting.annotations`.
    #[serde(default, skip_serializing_if = "SmallMap::is_empty")]
    pub annotations: SmallMap<String, String>,
}

/// The alert on missing indicator series.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AbsentAlert {
    /// Turn off the absent alert.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disabled: bool,
    /// How long the series must be missing before the alert fires, such as `10m` (default).
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+[smhd])+$"))]
    pub for_: Option<String>,
}

/// The error budget policy.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[x_kube(validation = Rule::new(
    "!has(self.recoverAbove) || !has(self.trigger) || !has(self.trigger.budgetRemainingBelow) || self.recoverAbove >= self.trigger.budgetRemainingBelow"
).message("recoverAbove must be at least trigger.budgetRemainingBelow, or the rollback would clear while still triggered").field_path(".recoverAbove"))]
#[serde(rename_all = "camelCase")]
pub struct Rollback {
    /// When the budget counts as exhausted. Default: no budget left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<RollbackTrigger>,
    /// The rollback signal clears only once the remaining budget, in percent, is back at or above
    /// this value, so a budget hovering at the line does not flap. Default: the trigger's
    /// budgetRemainingBelow plus 10 (10 with the default trigger), at most 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 100.0))]
    pub recover_above: Option<f64>,
    /// Workloads in the SLO's namespace that receive the rollback annotations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub targets: Vec<RollbackTarget>,
    /// Also abort Argo Rollout targets (`status.abort: true`, as `kubectl argo rollouts abort`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub abort_rollouts: bool,
    /// Generate an Argo Rollouts AnalysisTemplate named like this SLO that fails on the trigger.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub analysis_template: bool,
    /// Decide and report in status and Events, but write nothing to targets.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
}

/// What triggers the rollback signal. Either condition fires it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RollbackTrigger {
    /// Fire when the remaining budget, in percent of the whole budget, falls below this value.
    /// 0 (default) means exhausted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 100.0))]
    pub budget_remaining_below: Option<f64>,
    /// Also fire when the burn rate over a window exceeds a factor, such as 14.4 over 1h.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burn_rate_above: Option<BurnRateTrigger>,
}

/// A burn-rate condition: the budget is being spent `factor` times faster than sustainable.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("self.factor > 0.0")
    .message("burnRateAbove.factor must be greater than 0").field_path(".factor"))]
#[serde(rename_all = "camelCase")]
pub struct BurnRateTrigger {
    /// The window the burn rate is measured over, a multiple of 5m, such as `1h`.
    #[schemars(regex(pattern = r"^([0-9]+[wdhm])+$"))]
    pub window: String,
    /// The burn rate factor, greater than 0; 1 spends the budget exactly over the window.
    pub factor: f64,
}

/// A workload that receives the rollback annotations.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RollbackTarget {
    /// The workload kind.
    pub kind: TargetKind,
    /// The workload's name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Must be empty or equal to the SLO's namespace: targets in other namespaces are refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// Kinds of workloads a rollback can target.
#[derive(
    Serialize,
    Deserialize,
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    schemars::JsonSchema,
)]
pub enum TargetKind {
    /// apps/v1 Deployment.
    Deployment,
    /// apps/v1 StatefulSet.
    StatefulSet,
    /// apps/v1 DaemonSet.
    DaemonSet,
    /// argoproj.io/v1alpha1 Rollout (Argo Rollouts).
    Rollout,
}
