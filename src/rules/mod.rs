//! Render: validated SLO -> Prometheus rule groups. Pure and deterministic: the same SLO always
//! gives byte-identical output.
//!
//! Counts are recorded once per 5 minutes and long windows sum them, so the long-window SLI is an
//! exact ratio of counts and costs one recorded sample per 5 minutes of window. See
//! `shared/design/rules.md` for the reasoning.

mod alerts;
mod amounts;
pub mod analysis;
pub mod output;
pub mod windows;

pub use alerts::{URL_ANNOTATION, link_alerts};

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::api::PartialResponseStrategy;
use crate::model::{BudgetingMethod, Duration, Indicator, Slo};
use amounts::{Reading, amounts, guarded_ratio, ratio, regrouped};
use windows::{COUNT_STEP, FROM_COUNTS, on_grid, over_steps, rate_suffix, recorded_windows};

pub use amounts::{le_bucket as threshold_bucket, le_spellings};
pub use analysis::{AnalysisTemplate, QueryTarget, analysis_template};
pub use output::{OutputError, PrometheusRule, VMRule, prometheus_rule, rule_file, vm_rule};

/// Record names, shared with the status reader.
pub mod names {
    pub const ERRORS_5M: &str = "slo:sli_errors:increase5m";
    pub const TOTAL_5M: &str = "slo:sli_total:increase5m";
    /// `slo:sli_total:rate5m` and the like: the raw total of a short window, read once.
    pub const TOTAL_RATE_PREFIX: &str = "slo:sli_total:rate";
    pub const SLICE_GOOD: &str = "slo:sli_slice_good:bool";
    pub const RATIO_PREFIX: &str = "slo:sli_error:";
    pub const RATIO_WINDOW: &str = "slo:sli_error:ratio_window";
    pub const ERRORS_WINDOW: &str = "slo:sli_errors:increase_window";
    pub const TOTAL_WINDOW: &str = "slo:sli_total:increase_window";
    pub const OBJECTIVE: &str = "slo:objective:ratio";
    pub const ERROR_BUDGET: &str = "slo:error_budget:ratio";
    pub const BUDGET_REMAINING: &str = "slo:error_budget_remaining:ratio";
    pub const WINDOW_SECONDS: &str = "slo:window:seconds";
    /// Burn rates over the long windows of the four alert conditions, whatever the SLO's window:
    /// the first and second page condition (1h and 6h for 30 days), the first and second ticket
    /// condition (1d and 3d). Each carries [`LABEL_BURN_WINDOW`], the window it is measured over.
    pub const BURN_RATES: [&str; 4] = [
        "slo:burn_rate:page_fast",
        "slo:burn_rate:page_slow",
        "slo:burn_rate:ticket_fast",
        "slo:burn_rate:ticket_slow",
    ];
    /// The window a burn-rate series is measured over, such as `1h` (`56m` for 28 days).
    pub const LABEL_BURN_WINDOW: &str = "burn_window";
    pub const INFO: &str = "slo:info";
    /// Labels every generated series carries.
    pub const LABEL_SLO: &str = "slo";
    pub const LABEL_NAMESPACE: &str = "slo_namespace";
    pub const LABEL_SERVICE: &str = "slo_service";
    /// The SLO's UID, on every series of an SLO that has one (the operator's).
    pub const LABEL_UID: &str = "slo_uid";
}

/// Interval of the group that reads raw series for short windows.
const FAST_INTERVAL: &str = "30s";

/// A Prometheus rule group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleGroup {
    pub name: String,
    pub interval: String,
    /// Thanos Ruler's field, written only when set: Prometheus refuses rule files with it
    /// (prometheus-operator drops it from PrometheusRules for Prometheus itself,
    /// prometheus-operator pkg/operator/rules.go).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial_response_strategy: Option<PartialResponseStrategy>,
    pub rules: Vec<Rule>,
}

/// Sets `strategy` on the groups that have none of their own (the SLO's
/// `spec.partialResponseStrategy` wins over the command line's).
pub fn default_partial_response(
    groups: &mut [RuleGroup],
    strategy: Option<PartialResponseStrategy>,
) {
    for group in groups {
        group.partial_response_strategy = group.partial_response_strategy.or(strategy);
    }
}

/// A recording or alerting rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Rule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<String>,
    pub expr: String,
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    pub for_: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// Where an SLO's rules come from: the model and the namespace it lives in.
pub struct Context<'a> {
    pub slo: &'a Slo,
    pub namespace: &'a str,
}

impl Context<'_> {
    /// The labels every generated series carries.
    fn series_labels(&self) -> BTreeMap<String, String> {
        let mut labels = BTreeMap::from([
            (names::LABEL_SLO.to_string(), self.slo.name.clone()),
            (
                names::LABEL_NAMESPACE.to_string(),
                self.namespace.to_string(),
            ),
            (names::LABEL_SERVICE.to_string(), self.slo.service.clone()),
        ]);
        if let Some(uid) = &self.slo.uid {
            labels.insert(names::LABEL_UID.to_string(), uid.clone());
        }
        labels
    }

    /// `{slo="...",slo_namespace="..."}` (and `slo_uid` when the SLO has one): selects this SLO's
    /// recorded series, and not those of a deleted SLO that had the same name.
    fn own(&self, record: &str) -> String {
        let quote = crate::model::promql::quote;
        let uid = self
            .slo
            .uid
            .as_deref()
            .map(|u| format!(",{}={}", names::LABEL_UID, quote(u)))
            .unwrap_or_default();
        format!(
            "{record}{{{}={},{}={}{uid}}}",
            names::LABEL_SLO,
            quote(&self.slo.name),
            names::LABEL_NAMESPACE,
            quote(self.namespace)
        )
    }

    fn record(&self, record: impl Into<String>, expr: String) -> Rule {
        Rule {
            record: Some(record.into()),
            expr,
            labels: self.series_labels(),
            ..Rule::default()
        }
    }

    fn group_name(&self, part: &str) -> String {
        format!("plimsoll/{}/{}/{part}", self.namespace, self.slo.name)
    }

    /// The error budget as a ratio, exactly: 99.9 -> `0.001`.
    fn budget(&self) -> String {
        self.slo.error_budget().ratio_string()
    }
}

/// All rule groups of one SLO, in evaluation order.
pub fn render(slo: &Slo, namespace: &str) -> Vec<RuleGroup> {
    let ctx = Context { slo, namespace };
    let (short, long): (Vec<Duration>, Vec<Duration>) = windows_read(slo)
        .into_iter()
        .partition(|w| *w < FROM_COUNTS);
    let mut first = match &slo.method {
        BudgetingMethod::Occurrences => fast_group(&ctx, &short),
        BudgetingMethod::Timeslices { slice, objective } => {
            slice_group(&ctx, &short, *slice, &objective.complement().ratio_string())
        }
    };
    first.rules.extend(metadata(&ctx));
    let mut slow = slow_group(&ctx, &long);
    alerts::place(&ctx, &mut first, &mut slow);
    let mut groups = vec![first, slow];
    for group in &mut groups {
        group.partial_response_strategy = slo.partial_response_strategy;
    }
    groups
}

/// The windows with a recorded ratio: the burn-rate table's, and the policy's own burn-rate
/// trigger window, so the status and the AnalysisTemplate can read it.
pub fn windows_read(slo: &Slo) -> Vec<Duration> {
    let mut windows = recorded_windows(&slo.window);
    let trigger = slo
        .rollback
        .as_ref()
        .and_then(|r| r.burn_rate_above.as_ref());
    if let Some(t) = trigger
        && t.window < slo.window.rolling_equivalent()
        && !windows.contains(&t.window)
    {
        windows.push(t.window);
        windows.sort();
    }
    windows
}

/// Raw series, short windows, every 30s: what the fast page alert reads. Each window's raw total
/// is recorded first and the ratio reads it back, so the total selector is read once per window
/// instead of three times (in the ratio, and twice in the zero-traffic guard).
fn fast_group(ctx: &Context, windows: &[Duration]) -> RuleGroup {
    let indicator = &ctx.slo.indicator;
    let mut rules = Vec::new();
    for w in windows {
        let ratio_record = format!("{}{}", names::RATIO_PREFIX, rate_suffix(*w));
        let Some(total) = amounts::total(indicator, *w, Reading::Rate) else {
            rules.push(ctx.record(ratio_record, ratio(indicator, *w)));
            continue;
        };
        let total_record = format!("{}{w}", names::TOTAL_RATE_PREFIX);
        rules.push(ctx.record(total_record.clone(), total));
        let recorded = regrouped(indicator, &ctx.own(&total_record));
        if let Some(errors) = amounts::errors(indicator, *w, Reading::Rate, &recorded) {
            rules.push(ctx.record(ratio_record, guarded_ratio(&errors, &recorded)));
        }
    }
    rules.extend(burn_rates(ctx, windows));
    RuleGroup {
        name: ctx.group_name("fast"),
        interval: FAST_INTERVAL.to_string(),
        partial_response_strategy: None,
        rules,
    }
}

/// Timeslices: one good/bad sample per slice, and short windows as the share of bad slices.
fn slice_group(
    ctx: &Context,
    windows: &[Duration],
    slice: Duration,
    max_errors: &str,
) -> RuleGroup {
    let good = match amounts(&ctx.slo.indicator, slice, Reading::Increase) {
        // A slice without traffic is good: nothing failed in it.
        Some(a) => format!(
            "({} / ({} > 0) <= bool {max_errors}) or ({} == bool 0)",
            a.errors, a.total, a.total
        ),
        None => format!("{} <= bool {max_errors}", ratio(&ctx.slo.indicator, slice)),
    };
    // Slices on the grid of their length, so a calendar period's slices are exactly its own.
    let mut rules = vec![ctx.record(names::SLICE_GOOD, on_grid(&good, slice))];
    rules.extend(windows.iter().map(|w| {
        ctx.record(
            format!("{}{}", names::RATIO_PREFIX, rate_suffix(*w)),
            bad_slice_share(ctx, *w, slice),
        )
    }));
    rules.extend(burn_rates(ctx, windows));
    RuleGroup {
        name: ctx.group_name("slices"),
        interval: slice.to_string(),
        partial_response_strategy: None,
        rules,
    }
}

fn bad_slice_share(ctx: &Context, window: Duration, slice: Duration) -> String {
    format!(
        "1 - {}",
        over_steps("avg_over_time", &ctx.own(names::SLICE_GOOD), window, slice)
    )
}

/// Every 5m: the 5m counts, then long windows summed from them, then the remaining budget.
fn slow_group(ctx: &Context, windows: &[Duration]) -> RuleGroup {
    let full = ctx.slo.window.rolling_equivalent();
    let mut rules = Vec::new();
    let indicator = &ctx.slo.indicator;
    // Counts on the 5m grid: each covers a whole grid interval, whatever the group's offset.
    let counts = amounts::total(indicator, COUNT_STEP, Reading::IncreaseOnGrid);
    if let (Some(total), BudgetingMethod::Occurrences) = (&counts, &ctx.slo.method) {
        // The total first: the errors read it back instead of the raw total.
        rules.push(ctx.record(names::TOTAL_5M, total.clone()));
        let recorded = regrouped(indicator, &ctx.own(names::TOTAL_5M));
        if let Some(errors) =
            amounts::errors(indicator, COUNT_STEP, Reading::IncreaseOnGrid, &recorded)
        {
            rules.push(ctx.record(names::ERRORS_5M, errors));
        }
    }
    let sum =
        |record: &str, w: Duration| over_steps("sum_over_time", &ctx.own(record), w, COUNT_STEP);
    let long_ratio = |w: Duration| match (&ctx.slo.method, &counts) {
        (BudgetingMethod::Timeslices { slice, .. }, _) => bad_slice_share(ctx, w, *slice),
        (BudgetingMethod::Occurrences, Some(_)) => {
            guarded_ratio(&sum(names::ERRORS_5M, w), &sum(names::TOTAL_5M, w))
        }
        // Free queries have no counts: average the 5m ratios, skipping NaN from idle periods.
        (BudgetingMethod::Occurrences, None) => {
            let ratio_5m = ctx.own(&format!(
                "{}{}",
                names::RATIO_PREFIX,
                rate_suffix(COUNT_STEP)
            ));
            over_steps(
                "avg_over_time",
                &format!("({ratio_5m} >= 0)"),
                w,
                COUNT_STEP,
            )
        }
    };
    for w in windows {
        rules.push(ctx.record(
            format!("{}{}", names::RATIO_PREFIX, rate_suffix(*w)),
            long_ratio(*w),
        ));
    }
    rules.extend(burn_rates(ctx, windows));
    if let (Some(_), BudgetingMethod::Occurrences) = (&counts, &ctx.slo.method) {
        // The full window is the longest read; recording its two sums once keeps each query to
        // one pass over the counts instead of three.
        rules.push(ctx.record(names::ERRORS_WINDOW, sum(names::ERRORS_5M, full)));
        rules.push(ctx.record(names::TOTAL_WINDOW, sum(names::TOTAL_5M, full)));
        rules.push(ctx.record(
            names::RATIO_WINDOW,
            guarded_ratio(
                &ctx.own(names::ERRORS_WINDOW),
                &ctx.own(names::TOTAL_WINDOW),
            ),
        ));
    } else {
        rules.push(ctx.record(names::RATIO_WINDOW, long_ratio(full)));
    }
    // Calendar windows: the period so far, as the status computes it; none where PromQL cannot
    // tell the period (a zone whose offset changes), rather than the rolling figure.
    let remaining = match &ctx.slo.window {
        crate::model::Window::Rolling(_) => Some(format!(
            "1 - {} / {}",
            ctx.own(names::RATIO_WINDOW),
            ctx.budget()
        )),
        crate::model::Window::Calendar { .. } => {
            analysis::period_budget_remaining(ctx.slo, ctx.namespace)
        }
    };
    rules.extend(remaining.map(|expr| ctx.record(names::BUDGET_REMAINING, expr)));
    RuleGroup {
        name: ctx.group_name("slow"),
        interval: COUNT_STEP.to_string(),
        partial_response_strategy: None,
        rules,
    }
}

/// `slo:burn_rate:<condition>` for each alert condition whose long window is among `windows`
/// (those this group records): its error ratio over the error budget, labelled with the window.
/// The names are the same for every SLO window, so one dashboard reads them all.
fn burn_rates(ctx: &Context, recorded: &[Duration]) -> Vec<Rule> {
    windows::burn_windows(&ctx.slo.window)
        .iter()
        .zip(names::BURN_RATES)
        .filter(|(b, _)| recorded.contains(&b.long))
        .map(|(b, record)| {
            let ratio = ctx.own(&format!("{}{}", names::RATIO_PREFIX, rate_suffix(b.long)));
            let mut rule = ctx.record(record, format!("{ratio} / {}", ctx.budget()));
            rule.labels
                .insert(names::LABEL_BURN_WINDOW.to_string(), b.long.to_string());
            rule
        })
        .collect()
}

/// Constant series that describe the SLO, so dashboards and the operator need nothing else.
fn metadata(ctx: &Context) -> Vec<Rule> {
    let slo = ctx.slo;
    let window_label = match &slo.window {
        crate::model::Window::Rolling(d) => d.to_string(),
        crate::model::Window::Calendar { period, .. } => format!("{period:?}").to_lowercase(),
    };
    let method = match slo.method {
        BudgetingMethod::Occurrences => "Occurrences",
        BudgetingMethod::Timeslices { .. } => "Timeslices",
    };
    let indicator = match slo.indicator {
        Indicator::Ratio { .. } => "ratio",
        Indicator::Latency { .. } => "latency",
        Indicator::NativeLatency { .. } => "nativeLatency",
        Indicator::Gauge { .. } => "gauge",
        Indicator::Query { .. } => "query",
    };
    let mut info = ctx.record(names::INFO, "vector(1)".to_string());
    info.labels.extend([
        ("window".to_string(), window_label),
        ("objective".to_string(), slo.objective.to_string()),
        ("budgeting_method".to_string(), method.to_string()),
        ("indicator".to_string(), indicator.to_string()),
    ]);
    vec![
        ctx.record(
            names::OBJECTIVE,
            format!("vector({})", slo.objective.ratio_string()),
        ),
        ctx.record(names::ERROR_BUDGET, format!("vector({})", ctx.budget())),
        ctx.record(
            names::WINDOW_SECONDS,
            format!("vector({})", slo.window.rolling_equivalent().as_secs()),
        ),
        info,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ServiceLevelObjective;
    use std::collections::BTreeSet;

    fn slo(spec: serde_json::Value) -> Slo {
        let object: ServiceLevelObjective = serde_json::from_value(serde_json::json!({
            "apiVersion": "plimsoll.dev/v1alpha1",
            "kind": "ServiceLevelObjective",
            "metadata": {"name": "checkout", "namespace": "shop"},
            "spec": spec,
        }))
        .unwrap();
        crate::model::validate(&object).unwrap()
    }

    #[test]
    fn every_series_and_every_own_selector_carries_the_uid() {
        let mut model = slo(spec(
            serde_json::json!({"ratio": {"errors": "e_total", "total": "t_total", "groupBy": ["route"]}}),
        ));
        model.uid = Some("u-1".into());
        for group in render(&model, "shop") {
            for rule in &group.rules {
                if rule.record.is_some() {
                    assert_eq!(rule.labels.get("slo_uid").map(String::as_str), Some("u-1"));
                }
                // A recreated SLO must never sum its predecessor's recorded counts.
                for (at, _) in rule.expr.match_indices("{slo=") {
                    let selector = &rule.expr[at..rule.expr[at..].find('}').unwrap() + at];
                    assert!(selector.contains(r#"slo_uid="u-1""#), "{}", rule.expr);
                }
            }
        }
    }

    fn spec(indicator: serde_json::Value) -> serde_json::Value {
        serde_json::json!({"service": "checkout", "objective": 99.9, "window": "30d", "indicator": indicator})
    }

    fn all_kinds() -> Vec<Slo> {
        let mut timeslices =
            spec(serde_json::json!({"latency": {"histogram": "lat{job=\"a\"}", "threshold": 0.2}}));
        timeslices["budgetingMethod"] = "Timeslices".into();
        timeslices["timeslice"] = serde_json::json!({"duration": "1m", "objective": 95});
        vec![
            slo(spec(
                serde_json::json!({"ratio": {"errors": "e_total", "total": "t_total", "groupBy": ["route"]}}),
            )),
            slo(spec(
                serde_json::json!({"ratio": {"good": "g_total", "total": "t_total"}}),
            )),
            slo(spec(
                serde_json::json!({"latency": {"histogram": "lat", "threshold": 1}}),
            )),
            slo(spec(
                serde_json::json!({"gauge": {"metric": "probe_success", "groupBy": ["instance"]}}),
            )),
            slo(spec(
                serde_json::json!({"query": {"errorRatio": "sum(rate(e[$window])) / sum(rate(t[$window]))"}}),
            )),
            slo(timeslices),
        ]
    }

    #[test]
    fn every_expression_parses() {
        for slo in all_kinds() {
            for group in render(&slo, "shop") {
                for rule in group.rules {
                    promql_parser::parser::parse(&rule.expr)
                        .unwrap_or_else(|e| panic!("{}: {e}\n{}", group.name, rule.expr));
                }
            }
        }
    }

    #[test]
    fn rendering_is_deterministic() {
        for slo in all_kinds() {
            let once = rule_file(&render(&slo, "shop")).unwrap();
            let again = rule_file(&render(&slo.clone(), "shop")).unwrap();
            assert_eq!(once, again);
        }
    }

    #[test]
    fn each_record_is_written_once() {
        for slo in all_kinds() {
            let mut seen = BTreeSet::new();
            for group in render(&slo, "shop") {
                for rule in group.rules.iter().filter(|r| r.record.is_some()) {
                    let key = (rule.record.clone(), rule.labels.clone());
                    assert!(seen.insert(key), "{:?} twice", rule.record);
                }
            }
        }
    }

    #[test]
    fn a_burn_rate_trigger_window_outside_the_table_is_recorded_too() {
        let mut s = spec(serde_json::json!({"ratio": {"errors": "e", "total": "t"}}));
        s["rollback"] =
            serde_json::json!({"trigger": {"burnRateAbove": {"window": "10m", "factor": 20}}});
        let text = rule_file(&render(&slo(s.clone()), "shop")).unwrap();
        assert!(
            text.contains("record: slo:sli_error:ratio_rate10m"),
            "{text}"
        );
        s["rollback"] =
            serde_json::json!({"trigger": {"burnRateAbove": {"window": "1h", "factor": 20}}});
        let again = rule_file(&render(&slo(s), "shop")).unwrap();
        assert_eq!(
            again
                .matches("record: slo:sli_error:ratio_rate1h\n")
                .count(),
            1
        );
    }

    fn windowed(window: &str, time_zone: Option<&str>) -> Vec<RuleGroup> {
        let mut s = spec(serde_json::json!({"ratio": {"errors": "e", "total": "t"}}));
        s["window"] = window.into();
        if let Some(tz) = time_zone {
            s["timeZone"] = tz.into();
        }
        render(&slo(s), "shop")
    }

    /// Each record with its labels and the index of the group that writes it, in group order.
    fn records(groups: &[RuleGroup]) -> Vec<(usize, String, BTreeMap<String, String>)> {
        groups
            .iter()
            .enumerate()
            .flat_map(|(i, g)| {
                g.rules
                    .iter()
                    .filter_map(move |r| Some((i, r.record.clone()?, r.labels.clone())))
            })
            .collect()
    }

    #[test]
    fn every_window_records_the_same_burn_rate_names_after_their_ratios() {
        for (window, long) in [
            ("30d", ["1h", "6h", "1d", "3d"]),
            ("4w", ["56m", "5h35m", "22h25m", "2d19h10m"]),
            ("7d", ["14m", "1h24m", "5h35m", "16h50m"]),
            ("month", ["1h", "6h", "1d", "3d"]),
        ] {
            let groups = windowed(window, None);
            let all = records(&groups);
            for (name, w) in names::BURN_RATES.iter().zip(long) {
                let at = all
                    .iter()
                    .position(|(_, r, _)| r == name)
                    .unwrap_or_else(|| panic!("{window}: no {name}"));
                let (group, _, labels) = &all[at];
                assert_eq!(labels[names::LABEL_BURN_WINDOW], w, "{window} {name}");
                // Written after its ratio, in the same group, so it reads this evaluation's.
                let ratio = format!("slo:sli_error:ratio_rate{w}");
                let read = all.iter().position(|(_, r, _)| *r == ratio).unwrap();
                assert!(read < at && all[read].0 == *group, "{window} {name}");
                let rule = groups[*group]
                    .rules
                    .iter()
                    .find(|r| r.record.as_deref() == Some(name))
                    .unwrap();
                assert!(rule.expr.ends_with(" / 0.001"), "{}", rule.expr);
            }
        }
    }

    #[test]
    fn a_calendar_budget_is_the_period_so_far_where_promql_can_tell_the_period() {
        let remaining = |groups: &[RuleGroup]| {
            groups
                .iter()
                .flat_map(|g| &g.rules)
                .find(|r| r.record.as_deref() == Some(names::BUDGET_REMAINING))
                .map(|r| r.expr.clone())
        };
        let rolling = remaining(&windowed("30d", None)).unwrap();
        assert!(
            rolling.starts_with("1 - slo:sli_error:ratio_window{"),
            "{rolling}"
        );
        for (window, zone) in [("month", None), ("week", Some("Asia/Kathmandu"))] {
            let expr = remaining(&windowed(window, zone)).unwrap();
            assert!(expr.contains("sum_over_time((last_over_time(slo:sli_errors:increase5m{"));
            assert!(expr.starts_with("label_replace("), "{expr}");
            assert!(
                expr.ends_with(r#", "plimsoll_period", "", "", "")"#),
                "{expr}"
            );
            assert!(!expr.contains("vector(time()) <"), "{expr}");
        }
        assert!(
            remaining(&windowed("month", Some("Asia/Kathmandu")))
                .unwrap()
                .contains("(time() - 301 + 20700)")
        );
        // Summer time: the offsets would have to be written for the time of rendering.
        assert_eq!(remaining(&windowed("month", Some("Europe/Berlin"))), None);
    }

    #[test]
    fn budgets_are_exact_decimals() {
        let mut s = spec(serde_json::json!({"ratio": {"errors": "e", "total": "t"}}));
        s["objective"] = serde_json::json!(99.95);
        let text = rule_file(&render(&slo(s), "shop")).unwrap();
        assert!(text.contains("vector(0.0005)"), "{text}");
        assert!(text.contains("(14.4 * 0.0005)"));
        assert!(!text.contains("0.000499"));
    }

    #[test]
    fn group_by_labels_are_kept_in_every_aggregation() {
        let slo = &all_kinds()[0];
        for group in render(slo, "shop") {
            for rule in &group.rules {
                assert!(
                    !rule.expr.contains("sum("),
                    "ungrouped sum in {}",
                    rule.expr
                );
            }
        }
    }

    #[test]
    fn timeslices_record_slices_at_the_slice_interval() {
        let groups = render(&all_kinds()[5], "shop");
        assert_eq!(groups[0].interval, "1m");
        assert_eq!(
            groups[0].rules[0].record.as_deref(),
            Some(names::SLICE_GOOD)
        );
        assert!(groups[0].rules[0].expr.contains("<= bool 0.05"));
    }

    #[test]
    fn disabled_tiers_generate_no_alerts() {
        let mut s = spec(serde_json::json!({"ratio": {"errors": "e", "total": "t"}}));
        s["alerting"] =
            serde_json::json!({"page": {"disabled": true}, "absent": {"disabled": true}});
        let alerts: Vec<Rule> = render(&slo(s), "shop")
            .into_iter()
            .flat_map(|g| g.rules)
            .filter(|r| r.alert.is_some())
            .collect();
        assert_eq!(alerts.len(), 2);
        assert!(alerts.iter().all(|a| a.labels["severity"] == "warning"));
        s = spec(serde_json::json!({"ratio": {"errors": "e", "total": "t"}}));
        s["alerting"] = serde_json::json!({"disabled": true});
        let any_alert = render(&slo(s), "shop")
            .into_iter()
            .flat_map(|g| g.rules)
            .any(|r| r.alert.is_some());
        assert!(!any_alert);
    }
}
