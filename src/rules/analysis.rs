//! The Argo Rollouts AnalysisTemplate of an SLO: it measures the SLO's own rollback trigger
//! (`budgetRemainingBelow`, and `burnRateAbove` when the policy has one) from the series our rules
//! record, over the policy's own window, for background or step analysis. Pure.
//!
//! What it relies on in Argo Rollouts (argoproj/argo-rollouts):
//! - metricproviders/prometheus/prometheus.go (`processResponse`): one instant query per
//!   measurement; `result` is the list of the vector's sample values, `[]` without series. A
//!   failed query (unreachable, timeout, error answer) is a measurement Error, never Failed.
//! - utils/evaluate/evaluate.go (`EvaluateResult`, expr-lang): with only a `failureCondition`, a
//!   measurement that does not meet it is Successful; with both conditions and neither met,
//!   Inconclusive; a condition that cannot be evaluated (`result[0]` of `[]`) is an Error. `&&`
//!   short-circuits, NaN compares false, `isNaN` is provided; `default()` replaces only a nil
//!   result, and an empty vector is not nil.
//! - analysis/analysis.go (`assessMetricFailureInconclusiveOrError`): a metric is Failed once
//!   failed > `failureLimit` (0), Inconclusive once inconclusive > `inconclusiveLimit` (0, counted
//!   over the whole run), Error once consecutive errors > `consecutiveErrorLimit` (4).
//! - rollout/analysis.go: for background and step runs alike, Inconclusive pauses the Rollout,
//!   Error and Failed abort it; rollout/canary.go: a step completes only on Successful.
//!
//! So there are only failure conditions: no data and NaN are Successful in both kinds of analysis
//! (Inconclusive would pause the Rollout on missing data, and stick for the whole run).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::CustomResource;
use serde::{Deserialize, Serialize};

use super::names;
use super::output::{MANAGED_BY, MANAGED_BY_LABEL, SLO_LABEL};
use super::windows::{self, COUNT_STEP, rate_suffix};
use crate::model::promql::quote;
use crate::model::{
    BudgetingMethod, CalendarPeriod, Duration, LabelMatcher, MatchKind, RollbackPolicy, Slo, Window,
};

/// The part of Argo Rollouts' AnalysisTemplate (argoproj.io/v1alpha1) that we write. Every field
/// added since the first version has a default, so templates written before still read.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "argoproj.io",
    version = "v1alpha1",
    kind = "AnalysisTemplate",
    namespaced,
    schema = "disabled"
)]
pub struct AnalysisTemplateSpec {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<Argument>,
    pub metrics: Vec<Metric>,
}

/// A template argument; a Rollout's `analysis.args` can override only those declared here.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Argument {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// One measurement of the analysis.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Metric {
    pub name: String,
    pub interval: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<IntOrString>,
    /// Only a failure condition: a measurement that does not meet it succeeds, so an empty
    /// result or NaN (no data) never fails or pauses a rollout.
    pub failure_condition: String,
    pub failure_limit: IntOrString,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consecutive_error_limit: Option<IntOrString>,
    pub provider: Provider,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Provider {
    pub prometheus: PrometheusProvider,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct PrometheusProvider {
    pub address: String,
    pub query: String,
    /// Sent with every query (metricproviders/prometheus/prometheus.go, `httpHeadersRoundTripper`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<ProviderHeader>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ProviderHeader {
    pub key: String,
    pub value: String,
}

/// Where Argo Rollouts sends a template's queries.
#[derive(Debug, Clone, Copy)]
pub struct QueryTarget<'a> {
    pub address: &'a str,
    /// A Mimir or Cortex tenant, sent as `X-Scope-OrgID`. Only the tenant: the operator's other
    /// headers may hold secrets, and a template is readable by whoever may read the namespace's
    /// AnalysisTemplates.
    pub tenant: Option<&'a str>,
}

/// How often the analysis measures: the fast rule group records every 30s.
pub const INTERVAL: &str = "1m";
/// The argument that sets every metric's `count` (a Rollout can override only arguments the
/// template declares: `MergeArgs`); one name in every Plimsoll template, so one Rollout argument
/// sets them all (`FlattenTemplates` accepts arguments of one name with equal values).
pub const COUNT_ARG: &str = "plimsoll-count";
/// Its default: a week of measurements. An interval without a count measures until the Rollout
/// ends the run (`EffectiveCount`), but a step analysis is refused when its template, resolved
/// with the template's own argument values, has such a metric (validation_references.go); a
/// step sets a few, a background analysis "0" to run as long as the rollout, or keeps a week.
pub const DEFAULT_COUNT: u32 = 7 * 24 * 60;
/// Consecutive errors a metric tolerates: all of them. An Error is retried after 10 s whatever the
/// interval and does not count towards `count`, so Argo's default of 4 turned a 50 s Prometheus
/// outage into an aborted rollout; now a background analysis goes on and a step waits.
pub const ERROR_LIMIT: i32 = i32::MAX;
/// Newest sample a measurement reads: the operator calls older data stale and never acts on it.
const FRESH: &str = "10m";
/// The label that tells the calendar periods of the period query apart.
const PERIOD_LABEL: &str = "plimsoll_period";

/// The template for an SLO with a rollback policy, named like the SLO. Every selector picks the
/// SLO's own series: name, namespace and service, `slo_uid` when `uid` is given, and `scope`
/// (the operator's reading selector, such as `cluster="a"`). A calendar window in a zone with
/// summer time knows the zone's offsets for a year from the month `at` falls in (see [`Zone`]).
pub fn analysis_template(
    slo: &Slo,
    policy: &RollbackPolicy,
    namespace: &str,
    target: QueryTarget,
    uid: Option<&str>,
    scope: &[LabelMatcher],
    at: jiff::Timestamp,
) -> AnalysisTemplate {
    let q = Queries::new(slo, namespace, uid, scope, at);
    let headers: Vec<ProviderHeader> = target
        .tenant
        .map(|tenant| ProviderHeader {
            key: crate::prometheus::request::TENANT_HEADER.to_string(),
            value: tenant.to_string(),
        })
        .into_iter()
        .collect();
    let metric = |name: String, query: String, failure_condition: String| Metric {
        name: format!("{}-{name}", slo.name),
        interval: INTERVAL.to_string(),
        count: Some(IntOrString::String(format!("{{{{args.{COUNT_ARG}}}}}"))),
        failure_condition,
        failure_limit: IntOrString::Int(0),
        consecutive_error_limit: Some(IntOrString::Int(ERROR_LIMIT)),
        provider: Provider {
            prometheus: PrometheusProvider {
                address: target.address.to_string(),
                query,
                headers: headers.clone(),
            },
        },
    };
    let mut metrics = vec![metric(
        "error-budget-remaining".to_string(),
        format!("min({})", q.remaining()),
        condition("<", &policy.budget_remaining_below.ratio_string()),
    )];
    if let Some(b) = &policy.burn_rate_above {
        metrics.push(metric(
            format!("burn-rate-{}", b.window),
            q.burn_rate(&rate_suffix(b.window)),
            condition(">", &b.factor.to_string()),
        ));
    }
    let labels = BTreeMap::from([
        (MANAGED_BY_LABEL.to_string(), MANAGED_BY.to_string()),
        (SLO_LABEL.to_string(), slo.name.clone()),
    ]);
    AnalysisTemplate {
        metadata: ObjectMeta {
            name: Some(slo.name.clone()),
            namespace: Some(namespace.to_string()),
            labels: Some(labels),
            ..ObjectMeta::default()
        },
        spec: AnalysisTemplateSpec {
            args: vec![Argument {
                name: COUNT_ARG.to_string(),
                value: Some(DEFAULT_COUNT.to_string()),
            }],
            metrics,
        },
    }
}

/// Fails only on a number beyond the threshold: `[]` and NaN are Successful measurements.
fn condition(op: &str, threshold: &str) -> String {
    format!("len(result) > 0 && !isNaN(result[0]) && result[0] {op} {threshold}")
}

/// The PromQL of one SLO's template.
struct Queries<'a> {
    slo: &'a Slo,
    /// The inside of every selector's braces.
    matchers: String,
    /// When the template is rendered: the zone's offsets are written for a year from then.
    at: jiff::Timestamp,
}

impl<'a> Queries<'a> {
    fn new(
        slo: &'a Slo,
        namespace: &str,
        uid: Option<&str>,
        scope: &[LabelMatcher],
        at: jiff::Timestamp,
    ) -> Self {
        // Argo substitutes `{{...}}` anywhere in a metric and fails the run on an unknown
        // name: braces in a value are written as the escape PromQL reads back as `{`.
        let value = |v: &str| quote(v).replace('{', r"\x7b");
        let mut parts = vec![
            format!("{}={}", names::LABEL_SLO, quote(&slo.name)),
            format!("{}={}", names::LABEL_NAMESPACE, quote(namespace)),
            format!("{}={}", names::LABEL_SERVICE, value(&slo.service)),
        ];
        parts.extend(uid.map(|u| format!("{}={}", names::LABEL_UID, quote(u))));
        parts.extend(scope.iter().map(|m| {
            let op = match m.op {
                MatchKind::Equal => "=",
                MatchKind::NotEqual => "!=",
                MatchKind::Regex => "=~",
                MatchKind::NotRegex => "!~",
            };
            format!("{}{op}{}", m.name, value(&m.value))
        }));
        Queries {
            slo,
            matchers: parts.join(","),
            at,
        }
    }

    fn own(&self, record: &str) -> String {
        format!("{record}{{{}}}", self.matchers)
    }

    /// The newest sample of the last 10 minutes, as fresh as the operator requires.
    fn fresh(&self, record: &str) -> String {
        format!("last_over_time({}[{FRESH}])", self.own(record))
    }

    /// The remaining budget of each group (one series without `groupBy`), as a ratio: the
    /// recorded one for rolling windows, the calendar period so far otherwise.
    fn remaining(&self) -> String {
        match &self.slo.window {
            Window::Rolling(_) => self.fresh(names::BUDGET_REMAINING),
            Window::Calendar { period, time_zone } => {
                self.period_remaining(*period, &Zone::of(time_zone, self.at))
            }
        }
    }

    /// The burn rate of the group the policy acts on (the one with the least budget left, as in
    /// the operator), only while that group has a fresh budget at all.
    fn burn_rate(&self, suffix: &str) -> String {
        let ratio = self.fresh(&format!("{}{suffix}", names::RATIO_PREFIX));
        format!(
            "max({ratio} and on({}) bottomk(1, {})) / {}",
            self.slo.indicator.group_by().join(", "),
            self.remaining(),
            self.budget()
        )
    }

    fn budget(&self) -> String {
        self.slo.error_budget().ratio_string()
    }

    /// What the operator computes for calendar windows (`prometheus::period::period_query` and
    /// `budget::assess`): the error ratio of the period's 5m counts (or the share of its bad
    /// slices), spent over the share of the period gone by in whole 5m steps. PromQL has no
    /// dynamic range, so the sums run over the longest period and each step carries the period
    /// of the interval it reads as a label; only the current period's steps are kept.
    ///
    /// The counts lie on their step's grid (`windows::on_grid`): the subquery's step s reads,
    /// through `offset 1ms`, the count of (s - 2 step, s - step], written before s whatever the
    /// group's evaluation offset, and tags it with the period of the instant just before its end.
    /// Since every period starts on the grid, each count is wholly in one period. The share gone
    /// by counts grid steps too: those of the current period up to now, over all of its steps
    /// (a step on each side of now for the period's whole length), which gives its true length
    /// across a change to or from summer time.
    fn period_remaining(&self, period: CalendarPeriod, zone: &Zone) -> String {
        let (longest, index) = match period {
            CalendarPeriod::Month => (Duration::from_days(32), "month(vector({t}))"),
            // 1970-01-05, 345600 s after the epoch, was a Monday.
            CalendarPeriod::Week => (
                Duration::from_days(8),
                "floor((vector({t}) - 345600) / 604800)",
            ),
        };
        // The period of the instant `before` seconds ahead of each evaluation, as a label.
        let period_of = |before: u64| {
            let at = if before == 0 {
                "time()".to_string()
            } else {
                format!("time() - {before}")
            };
            let index = index.replace("{t}", &zone.local(&at));
            format!(r#"count_values("{PERIOD_LABEL}", {index})"#)
        };
        let since_start = |record: &str, step: Duration, over: &str| {
            format!(
                "{over}(({} * on() group_left({PERIOD_LABEL}) {})[{longest}:{step}] \
                 offset -{step})",
                windows::newest_in_step(&self.own(record), step, " offset 1ms"),
                period_of(step.as_secs() + 1)
            )
        };
        let (ratio, grid) = match &self.slo.method {
            BudgetingMethod::Occurrences => {
                let errors = since_start(names::ERRORS_5M, COUNT_STEP, "sum_over_time");
                let total = since_start(names::TOTAL_5M, COUNT_STEP, "sum_over_time");
                (
                    format!("({errors} / ({total} > 0) or ({total} == 0))"),
                    COUNT_STEP,
                )
            }
            BudgetingMethod::Timeslices { slice, .. } => (
                format!(
                    "(1 - {})",
                    since_start(names::SLICE_GOOD, *slice, "avg_over_time")
                ),
                *slice,
            ),
        };
        // The period's grid steps (the ends of its counts or slices) up to now, and all of its
        // 5m steps; a slice is a whole number of 5m steps or divides one.
        let gone = format!("count_over_time({}[{longest}:{grid}])", period_of(1));
        let gone = if grid == COUNT_STEP {
            gone
        } else {
            format!("{gone} * {} / {}", grid.as_secs(), COUNT_STEP.as_secs())
        };
        let whole = format!(
            "count_over_time({}[{}:{COUNT_STEP}] offset -{longest})",
            period_of(1),
            Duration::from_secs(2 * longest.as_secs())
        );
        let current = period_of(0);
        format!(
            "(1 - ({ratio} and on({PERIOD_LABEL}) {current}) * scalar(({gone} and on({PERIOD_LABEL}) \
             {current}) / on({PERIOD_LABEL}) {whole}) / {}) and on() count({}){}",
            self.budget(),
            self.fresh(names::RATIO_WINDOW),
            zone.guard()
        )
    }
}

/// The recorded remaining budget of a calendar SLO (`slo:error_budget_remaining:ratio`): the
/// period so far, as [`Queries::period_remaining`] computes it, with its period label dropped.
/// Only for zones whose offset has not changed since 2020 and never will by the time zone
/// database (UTC, Asia/Kathmandu): a zone with summer time would need its changes written into
/// the rules, so they would depend on when they were rendered (see [`Zone`]). `None` for those,
/// and for rolling windows.
pub(super) fn period_budget_remaining(slo: &Slo, namespace: &str) -> Option<String> {
    let Window::Calendar { period, time_zone } = &slo.window else {
        return None;
    };
    let since = jiff::Timestamp::from_second(SETTLED_SINCE).ok()?;
    let tz = jiff::tz::TimeZone::get(time_zone).ok()?;
    let base = tz.to_offset(since);
    // A change to another offset (the database may list transitions that keep it).
    if tz.following(since).take(4).any(|t| t.offset() != base) {
        return None;
    }
    let q = Queries::new(slo, namespace, slo.uid.as_deref(), &[], since);
    let zone = Zone {
        base: base.seconds(),
        changes: vec![],
        until: SETTLED_SINCE,
    };
    Some(format!(
        r#"label_replace({}, "{PERIOD_LABEL}", "", "", "")"#,
        q.period_remaining(*period, &zone)
    ))
}

/// 2020-01-01T00:00:00Z: a zone without an offset change from then on has one offset for the
/// rules.
const SETTLED_SINCE: i64 = 1_577_836_800;

/// A time zone as PromQL can use it: PromQL's date functions know only UTC, so the local time is
/// the Unix time plus the zone's offset, written as its offset at the start of a span plus each
/// change in it (summer time, a new standard offset) from the time zone database. Each change is
/// a term evaluated at every step of the template's subqueries (12 years of them made a month's
/// query take 37 s), so the span is short: from 35 days before the month the template is
/// rendered in (the subqueries look 32 days back) to 400 days after. Past a year from that
/// month, a template of a zone with changes answers no data (never a number from the wrong
/// period); the operator renders its templates anew every month, `generate` must be run again.
#[derive(Debug, Clone, PartialEq)]
struct Zone {
    base: i32,
    /// When the offset changes, and by how many seconds.
    changes: Vec<(i64, i32)>,
    /// The first instant past the span the template may be evaluated at.
    until: i64,
}

impl Zone {
    fn of(name: &str, at: jiff::Timestamp) -> Zone {
        const DAY: i64 = 86_400;
        // The month's start, so a template changes once a month, not at every render.
        let anchor = at
            .to_zoned(jiff::tz::TimeZone::UTC)
            .date()
            .first_of_month()
            .to_zoned(jiff::tz::TimeZone::UTC)
            .map_or(at.as_second(), |z| z.timestamp().as_second());
        let (from, to) = (anchor - 35 * DAY, anchor + 400 * DAY);
        let until = anchor + 365 * DAY;
        let unknown = Zone {
            base: 0,
            changes: vec![],
            until,
        };
        // Validation refuses unknown zones; a template is never rendered for one.
        let Ok(tz) = jiff::tz::TimeZone::get(name) else {
            return unknown;
        };
        let Ok(start) = jiff::Timestamp::from_second(from) else {
            return unknown;
        };
        let base = tz.to_offset(start).seconds();
        let mut previous = base;
        let mut changes = Vec::new();
        for t in tz.following(start) {
            let when = t.timestamp().as_second();
            if when >= to {
                break;
            }
            let offset = t.offset().seconds();
            if offset != previous {
                changes.push((when, offset - previous));
                previous = offset;
            }
        }
        Zone {
            base,
            changes,
            until,
        }
    }

    /// The local time at the Unix time `at` (a scalar expression), as a scalar.
    fn local(&self, at: &str) -> String {
        let mut out = format!("({at}");
        match self.base {
            0 => {}
            b if b > 0 => out.push_str(&format!(" + {b}")),
            b => out.push_str(&format!(" - {}", -b)),
        }
        for (when, delta) in &self.changes {
            let sign = if *delta >= 0 { '+' } else { '-' };
            out.push_str(&format!(
                " {sign} {} * ({at} >= bool {when})",
                delta.unsigned_abs()
            ));
        }
        out.push(')');
        out
    }

    /// `and on() (vector(time()) < until)` for a zone whose offset changes: no answer where its
    /// offsets are not known.
    fn guard(&self) -> String {
        if self.changes.is_empty() {
            String::new()
        } else {
            format!(" and on() (vector(time()) < {})", self.until)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn target(address: &str) -> QueryTarget<'_> {
        QueryTarget {
            address,
            tenant: None,
        }
    }

    /// The template and its queries, each checked to parse.
    fn template(window: &str, rollback: serde_json::Value) -> (AnalysisTemplate, Vec<String>) {
        let object: crate::api::ServiceLevelObjective = serde_json::from_value(json!({
            "apiVersion": "plimsoll.dev/v1alpha1", "kind": "ServiceLevelObjective",
            "metadata": {"name": "checkout", "namespace": "shop"},
            "spec": {"service": "checkout", "objective": 99.9, "window": window,
                     "indicator": {"ratio": {"errors": "e_total", "total": "t_total"}},
                     "rollback": rollback},
        }))
        .unwrap();
        let s = crate::model::validate(&object).unwrap();
        let policy = s.rollback.as_ref().unwrap();
        let t = analysis_template(&s, policy, "shop", target("http://p"), None, &[], at());
        let q = t
            .spec
            .metrics
            .iter()
            .map(|m| m.provider.prometheus.query.clone());
        let q: Vec<String> = q.collect();
        assert!(
            q.iter().all(|q| promql_parser::parser::parse(q).is_ok()),
            "{q:?}"
        );
        (t, q)
    }

    #[test]
    fn without_burn_rate_above_only_the_budget_is_measured() {
        let (t, q) = template("30d", json!({"analysisTemplate": true}));
        assert_eq!(t.spec.metrics.len(), 1);
        assert_eq!(t.spec.metrics[0].name, "checkout-error-budget-remaining");
        let own = r#"{slo="checkout",slo_namespace="shop",slo_service="checkout"}"#;
        assert_eq!(
            q,
            [format!(
                "min(last_over_time(slo:error_budget_remaining:ratio{own}[10m]))"
            )]
        );
    }

    #[test]
    fn the_conditions_fail_only_on_a_number_beyond_the_trigger() {
        let trigger = json!({"budgetRemainingBelow": 25,
            "burnRateAbove": {"window": "30m", "factor": 6}});
        let (t, q) = template("30d", json!({"trigger": trigger}));
        let expr = |op, n| format!("len(result) > 0 && !isNaN(result[0]) && result[0] {op} {n}");
        assert_eq!(t.spec.metrics[0].failure_condition, expr("<", "0.25"));
        assert_eq!(t.spec.metrics[1].failure_condition, expr(">", "6"));
        assert_eq!(t.spec.metrics[1].name, "checkout-burn-rate-30m");
        assert!(q[1].starts_with("max(last_over_time(slo:sli_error:ratio_rate30m{"));
        assert!(q[1].contains(" and on() bottomk(1, last_over_time(slo:error_budget_remaining"));
        assert!(q[1].ends_with(") / 0.001"), "{}", q[1]);
    }

    #[test]
    fn limits_never_end_a_metric_on_errors_and_count_is_an_argument() {
        let (t, _) = template("30d", json!({"analysisTemplate": true}));
        let m = &t.spec.metrics[0];
        assert_eq!(m.interval, "1m");
        assert_eq!(m.failure_limit, IntOrString::Int(0));
        assert_eq!(m.consecutive_error_limit, Some(IntOrString::Int(i32::MAX)));
        let count = IntOrString::String("{{args.plimsoll-count}}".into());
        assert_eq!(m.count, Some(count));
        assert_eq!(t.spec.args[0].name, "plimsoll-count");
        assert_eq!(t.spec.args[0].value.as_deref(), Some("10080"));
    }

    #[test]
    fn calendar_windows_read_the_period_so_far() {
        let (_, q) = template("month", json!({"analysisTemplate": true}));
        assert!(!q[0].contains("error_budget_remaining"), "{}", q[0]);
        for part in [
            "sum_over_time((last_over_time(slo:sli_errors:increase5m{",
            "}[5m] offset 1ms) * on() group_left(plimsoll_period) \
             count_values(\"plimsoll_period\", month(vector((time() - 301)))))[32d:5m] offset -5m)",
            "and on(plimsoll_period) count_values(\"plimsoll_period\", month(vector((time()))))",
            "count_over_time(count_values(\"plimsoll_period\", month(vector((time() - 1))))[32d:5m])",
            "[64d:5m] offset -32d)",
            "and on() count(last_over_time(slo:sli_error:ratio_window{",
        ] {
            assert!(q[0].contains(part), "{part} not in {}", q[0]);
        }
        // UTC never changes its offset: no guard for the end of the known offsets.
        assert!(!q[0].contains("vector(time()) <"), "{}", q[0]);
        let (_, q) = template("week", json!({"analysisTemplate": true}));
        assert!(q[0].contains("floor((vector((time() - 301)) - 345600) / 604800)"));
        assert!(q[0].contains("[8d:5m]"), "{}", q[0]);
    }

    /// 2024-03-10T12:00:00Z: New York's summer time began five hours before.
    fn at() -> jiff::Timestamp {
        jiff::Timestamp::from_second(1_710_072_000).unwrap()
    }

    #[test]
    fn a_zone_is_its_offsets_and_their_changes_for_a_year() {
        // Kathmandu: +5:45 all along, and no end to what is known.
        let kathmandu = Zone::of("Asia/Kathmandu", at());
        assert_eq!(kathmandu.local("time()"), "(time() + 20700)");
        assert_eq!(kathmandu.guard(), "");
        // New York, rendered in March 2024 (anchor 2024-03-01): -5h from 35 days before, an hour
        // more from 10 March 2024 07:00 UTC, back on 3 November 06:00 UTC, again on 9 March 2025;
        // evaluated no later than 2025-03-01.
        let new_york = Zone::of("America/New_York", at());
        assert_eq!(new_york.base, -18_000);
        assert_eq!(
            new_york.changes,
            [
                (1_710_054_000, 3600),
                (1_730_613_600, -3600),
                (1_741_503_600, 3600)
            ]
        );
        assert_eq!(
            new_york.local("time()"),
            "(time() - 18000 + 3600 * (time() >= bool 1710054000) - 3600 * (time() >= bool \
             1730613600) + 3600 * (time() >= bool 1741503600))"
        );
        assert_eq!(new_york.guard(), " and on() (vector(time()) < 1740787200)");
        // Anywhere in the month, the same template.
        let later = jiff::Timestamp::from_second(1_711_900_000).unwrap();
        assert_eq!(Zone::of("America/New_York", later), new_york);
    }
}
