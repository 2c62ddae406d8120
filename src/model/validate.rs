//! API object -> validated model. Reports every problem it finds, each with its field path.

use crate::small_map::SmallMap;
use std::collections::{BTreeMap, BTreeSet};

use crate::api;

use super::error::{Problem, ValidationErrors};
use super::names::{
    RESERVED_ALERT_LABELS, RESERVED_SERIES_LABELS, camel_case, is_dns_label, is_dns_subdomain,
    is_label_name, is_label_value,
};
use super::promql::{normalize_error_ratio, parse_selector};
use super::{
    AbsentAlert, AlertTier, Alerting, BadEvents, BudgetingMethod, BurnRateTrigger, CalendarPeriod,
    DEFAULT_RECOVERY_MARGIN, Duration, Indicator, Percent, RollbackPolicy, Selector, Slo, Target,
    Window,
};

/// Shortest and longest rolling windows. Below a day the slow alert tiers lose meaning; beyond 90
/// days the 5m counts outgrow typical Prometheus retention.
const MIN_WINDOW: Duration = Duration::from_days(1);
const MAX_WINDOW: Duration = Duration::from_days(90);
/// The resolution of recorded counts: burn-rate windows are read from them.
const COUNT_STEP: Duration = Duration::from_minutes(5);
const DEFAULT_ABSENT_FOR: Duration = Duration::from_minutes(10);

/// Validates an API object into the model, or returns every problem found.
pub fn validate(object: &api::ServiceLevelObjective) -> Result<Slo, ValidationErrors> {
    let mut c = Checker::default();
    let name = c.object_name(object.metadata.name.as_deref());
    let namespace = c.namespace(object.metadata.namespace.as_deref());
    let spec = &object.spec;
    let service = c.service(&spec.service);
    let description = spec.description.clone();
    let objective = c.objective(spec.objective);
    let window = c.window(&spec.window, spec.time_zone.as_deref());
    let method = c.method(spec.budgeting_method, spec.timeslice.as_ref());
    if let (
        Some(Window::Calendar { time_zone, .. }),
        Some(BudgetingMethod::Timeslices { slice, .. }),
    ) = (&window, &method)
    {
        c.slices_start_with_the_period(time_zone, *slice);
    }
    let indicator = c.indicator(&spec.indicator);
    let alerting = c.alerting(spec.alerting.as_ref(), name.as_deref().unwrap_or_default());
    let rollback = spec.rollback.as_ref().and_then(|r| {
        c.rollback(
            r,
            namespace.as_deref(),
            window.as_ref().map(Window::rolling_equivalent),
        )
    });
    match (
        name, service, objective, window, method, indicator, alerting,
    ) {
        (
            Some(name),
            Some(service),
            Some(objective),
            Some(window),
            Some(method),
            Some(indicator),
            Some(alerting),
        ) if c.errors.is_empty() => Ok(Slo {
            name,
            namespace,
            uid: object.metadata.uid.clone().filter(|u| !u.is_empty()),
            service,
            description,
            objective,
            window,
            method,
            indicator,
            alerting,
            rollback,
            partial_response_strategy: spec.partial_response_strategy,
        }),
        _ => Err(c.errors),
    }
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

#[derive(Default)]
struct Checker {
    errors: ValidationErrors,
}

impl Checker {
    fn fail<T>(&mut self, path: impl Into<String>, problem: Problem) -> Option<T> {
        self.errors.push(path, problem);
        None
    }

    fn object_name(&mut self, name: Option<&str>) -> Option<String> {
        const PATH: &str = "metadata.name";
        match name {
            None | Some("") => self.fail(
                PATH,
                Problem::Required {
                    hint: "name the SLO, such as `checkout-availability`",
                },
            ),
            Some(n) if n.len() > 63 => self.fail(
                PATH,
                Problem::invalid(format!(
                    "{n:?} is {} characters; at most 63, as it becomes a label value",
                    n.len()
                )),
            ),
            Some(n) if !is_dns_subdomain(n) => self.fail(
                PATH,
                Problem::invalid(format!(
                    "{n:?} is not a valid object name: use lower-case letters, digits, '-' and '.'"
                )),
            ),
            Some(n) => Some(n.to_string()),
        }
    }

    fn namespace(&mut self, namespace: Option<&str>) -> Option<String> {
        let ns = namespace?;
        if is_dns_label(ns) {
            Some(ns.to_string())
        } else {
            self.fail(
                "metadata.namespace",
                Problem::invalid(format!(
                    "{ns:?} is not a valid namespace: use lower-case letters, digits and '-'"
                )),
            )
        }
    }

    fn service(&mut self, service: &str) -> Option<String> {
        if service.is_empty() {
            return self.fail(
                "spec.service",
                Problem::Required {
                    hint: "name the service, such as `checkout`",
                },
            );
        }
        if !is_label_value(service) {
            return self.fail(
                "spec.service",
                Problem::invalid(format!(
                    "{service:?} is not a valid label value: at most 63 letters, digits, '-', '_' \
                     or '.', starting and ending with a letter or digit"
                )),
            );
        }
        Some(service.to_string())
    }

    fn objective(&mut self, value: f64) -> Option<Percent> {
        const PATH: &str = "spec.objective";
        let bound = "a percentage strictly between 0 and 100, such as 99.9";
        match Percent::from_f64(value) {
            // 0.999 is the fraction habit (OpenSLO's target): as a percentage it leaves 99.001%
            // of the window as budget, and no alert can ever fire.
            Ok(p) if p > Percent::ZERO && value < 1.0 => self.fail(
                PATH,
                Problem::invalid(format!(
                    "{value} is a percentage here ({value}%), not a fraction; did you mean {}? \
                     Objectives below 1% are refused",
                    fraction_as_percent(value)
                )),
            ),
            Ok(p) if p > Percent::ZERO && p < Percent::HUNDRED => Some(p),
            Ok(_) | Err(super::PercentError::Negative | super::PercentError::TooLarge) => self
                .fail(
                    PATH,
                    Problem::OutOfRange {
                        value: value.to_string(),
                        bound: bound.into(),
                    },
                ),
            Err(e) => self.fail(PATH, Problem::invalid(format!("{value} {e}; use {bound}"))),
        }
    }

    fn window(&mut self, window: &str, time_zone: Option<&str>) -> Option<Window> {
        let period = match window {
            "month" => Some(CalendarPeriod::Month),
            "week" => Some(CalendarPeriod::Week),
            _ => None,
        };
        if let Some(period) = period {
            let time_zone = self.time_zone(time_zone.unwrap_or("UTC"))?;
            return Some(Window::Calendar { period, time_zone });
        }
        if time_zone.is_some() {
            self.errors.push(
                "spec.timeZone",
                Problem::NotAllowed {
                    hint:
                        "timeZone applies to calendar windows (window: month or week); remove it \
                           for a rolling window"
                            .into(),
                },
            );
        }
        let duration = self.duration(
            "spec.window",
            window,
            "wdh",
            "use a rolling duration in w, d or h such as `30d` or `4w`, or `month` or `week`",
        )?;
        if duration < MIN_WINDOW || duration > MAX_WINDOW {
            return self.fail(
                "spec.window",
                Problem::OutOfRange {
                    value: window.to_string(),
                    bound: format!("from {MIN_WINDOW} to {MAX_WINDOW}"),
                },
            );
        }
        Some(Window::Rolling(duration))
    }

    fn time_zone(&mut self, name: &str) -> Option<String> {
        match jiff::tz::TimeZone::get(name) {
            Ok(_) => Some(name.to_string()),
            Err(_) => self.fail(
                "spec.timeZone",
                Problem::invalid(format!(
                    "{name:?} is not a known IANA time zone; use a name such as `UTC` or \
                     `Europe/Berlin`"
                )),
            ),
        }
    }

    fn duration(&mut self, path: &str, text: &str, units: &str, hint: &str) -> Option<Duration> {
        match Duration::parse(text, units) {
            Ok(d) => Some(d),
            Err(e) => self.fail(
                path,
                Problem::Duration {
                    value: text.to_string(),
                    reason: e.to_string(),
                    hint: hint.to_string(),
                },
            ),
        }
    }

    fn method(
        &mut self,
        method: Option<api::BudgetingMethod>,
        slice: Option<&api::Timeslice>,
    ) -> Option<BudgetingMethod> {
        match (method.unwrap_or_default(), slice) {
            (api::BudgetingMethod::Occurrences, None) => Some(BudgetingMethod::Occurrences),
            (api::BudgetingMethod::Occurrences, Some(_)) => self.fail(
                "spec.timeslice",
                Problem::NotAllowed {
                    hint: "timeslice is used with budgetingMethod: Timeslices; set that or remove \
                           timeslice"
                        .into(),
                },
            ),
            (api::BudgetingMethod::Timeslices, None) => self.fail(
                "spec.timeslice",
                Problem::Required {
                    hint: "budgetingMethod: Timeslices needs a slice, such as \
                           `timeslice: {duration: 1m, objective: 95}`",
                },
            ),
            (api::BudgetingMethod::Timeslices, Some(t)) => self.timeslice(t),
        }
    }

    /// A calendar period starts at local midnight, which is on the UTC grid of a slice only
    /// where every offset the zone keeps is a multiple of the slice: 30m slices would straddle
    /// each start in Asia/Kathmandu (+05:45), and a period's slices would not be its own.
    fn slices_start_with_the_period(&mut self, zone: &str, slice: Duration) {
        const HOUR: i64 = 3_600;
        let Ok(tz) = jiff::tz::TimeZone::get(zone) else {
            return;
        };
        // The offsets a zone keeps from 2000 to 2100, as the period starts that can be read.
        let (Ok(from), Ok(to)) = (
            jiff::Timestamp::from_second(946_684_800),
            jiff::Timestamp::from_second(4_102_444_800),
        ) else {
            return;
        };
        let mut offsets = vec![tz.to_offset(from).seconds()];
        for t in tz.following(from) {
            if t.timestamp() >= to {
                break;
            }
            offsets.push(t.offset().seconds());
        }
        let aligned = offsets
            .iter()
            .fold(HOUR, |g, o| gcd(g, i64::from(*o).abs()));
        if aligned % slice.as_secs() as i64 != 0 {
            let odd = offsets
                .iter()
                .find(|o| i64::from(**o) % slice.as_secs() as i64 != 0)
                .map_or(String::new(), |o| {
                    let sign = if *o < 0 { '-' } else { '+' };
                    let o = o.unsigned_abs();
                    format!(" (UTC{sign}{:02}:{:02})", o / 3600, o % 3600 / 60)
                });
            let hint = if aligned >= 60 && aligned % 60 == 0 {
                format!(
                    "use a duration that divides {}",
                    Duration::from_secs(aligned as u64)
                )
            } else {
                "use budgetingMethod: Occurrences in this zone".to_string()
            };
            self.fail::<()>(
                "spec.timeslice.duration",
                Problem::invalid(format!(
                    "{slice} slices would straddle the start of each period in {zone}{odd}: {hint}"
                )),
            );
        }
    }

    fn timeslice(&mut self, t: &api::Timeslice) -> Option<BudgetingMethod> {
        const HOUR: Duration = Duration::from_hours(1);
        let bound = "whole minutes that divide an hour, from 1m to 1h, such as `1m` or `5m`";
        let hint = format!("use {bound}");
        let slice = self.duration("spec.timeslice.duration", &t.duration, "hm", &hint);
        let slice = slice.and_then(|d| {
            if d >= Duration::from_minutes(1) && HOUR.is_multiple_of(d) && d.as_secs() % 60 == 0 {
                Some(d)
            } else {
                self.fail(
                    "spec.timeslice.duration",
                    Problem::OutOfRange {
                        value: t.duration.clone(),
                        bound: bound.into(),
                    },
                )
            }
        });
        let objective = match Percent::from_f64(t.objective) {
            Ok(p) if p > Percent::ZERO => Some(p),
            _ => self.fail(
                "spec.timeslice.objective",
                Problem::OutOfRange {
                    value: t.objective.to_string(),
                    bound: "greater than 0 and at most 100, such as 95".into(),
                },
            ),
        };
        Some(BudgetingMethod::Timeslices {
            slice: slice?,
            objective: objective?,
        })
    }

    fn indicator(&mut self, ind: &api::Indicator) -> Option<Indicator> {
        const PATH: &str = "spec.indicator";
        let set: Vec<&str> = [
            ("ratio", ind.ratio.is_some()),
            ("latency", ind.latency.is_some()),
            ("nativeLatency", ind.native_latency.is_some()),
            ("gauge", ind.gauge.is_some()),
            ("query", ind.query.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, present)| present.then_some(name))
        .collect();
        if set.len() != 1 {
            return self.fail(
                PATH,
                Problem::ExactlyOne {
                    fields: "ratio, latency, nativeLatency, gauge or query".into(),
                    found: found_list(&set),
                },
            );
        }
        if let Some(r) = &ind.ratio {
            return self.ratio(r);
        }
        if let Some(l) = &ind.latency {
            return self.latency(l);
        }
        if let Some(n) = &ind.native_latency {
            return self.native_latency(n);
        }
        if let Some(g) = &ind.gauge {
            let metric = self.selector("spec.indicator.gauge.metric", &g.metric);
            let group_by = self.group_by("spec.indicator.gauge.groupBy", &g.group_by);
            return Some(Indicator::Gauge {
                metric: metric?,
                group_by: group_by?,
            });
        }
        let q = ind.query.as_ref()?;
        match normalize_error_ratio(&q.error_ratio) {
            Ok(error_ratio) => Some(Indicator::Query { error_ratio }),
            Err(p) => self.fail("spec.indicator.query.errorRatio", p),
        }
    }

    fn ratio(&mut self, r: &api::RatioIndicator) -> Option<Indicator> {
        const PATH: &str = "spec.indicator.ratio";
        let bad = match (&r.errors, &r.good) {
            (Some(e), None) => self
                .selector(&format!("{PATH}.errors"), e)
                .map(BadEvents::Errors),
            (None, Some(g)) => self
                .selector(&format!("{PATH}.good"), g)
                .map(BadEvents::Good),
            (e, g) => {
                let found: Vec<&str> = [("errors", e.is_some()), ("good", g.is_some())]
                    .into_iter()
                    .filter_map(|(n, p)| p.then_some(n))
                    .collect();
                self.fail(
                    PATH,
                    Problem::ExactlyOne {
                        fields: "errors or good".into(),
                        found: found_list(&found),
                    },
                )
            }
        };
        let total = self.selector(&format!("{PATH}.total"), &r.total);
        let group_by = self.group_by(&format!("{PATH}.groupBy"), &r.group_by);
        Some(Indicator::Ratio {
            bad: bad?,
            total: total?,
            group_by: group_by?,
        })
    }

    fn latency(&mut self, l: &api::LatencyIndicator) -> Option<Indicator> {
        const PATH: &str = "spec.indicator.latency";
        let histogram = self
            .selector(&format!("{PATH}.histogram"), &l.histogram)
            .and_then(|h| self.histogram_base(h));
        let threshold = if l.threshold.is_finite() && l.threshold > 0.0 {
            Some(l.threshold)
        } else {
            self.fail(
                format!("{PATH}.threshold"),
                Problem::OutOfRange {
                    value: l.threshold.to_string(),
                    bound: "a positive number equal to one of the histogram's bucket bounds (le), \
                            such as 0.3"
                        .into(),
                },
            )
        };
        let group_by = self.group_by(&format!("{PATH}.groupBy"), &l.group_by);
        Some(Indicator::Latency {
            histogram: histogram?,
            threshold: threshold?,
            group_by: group_by?,
        })
    }

    /// Offline, the threshold must be a positive number; whether it is a bucket boundary of the
    /// histogram's schema depends on the live series, which `validate --prometheus-url` checks.
    fn native_latency(&mut self, n: &api::NativeLatencyIndicator) -> Option<Indicator> {
        const PATH: &str = "spec.indicator.nativeLatency";
        let histogram = self
            .selector(&format!("{PATH}.histogram"), &n.histogram)
            .and_then(|h| self.native_histogram(h));
        let threshold = if n.threshold.is_finite() && n.threshold > 0.0 {
            Some(n.threshold)
        } else {
            self.fail(
                format!("{PATH}.threshold"),
                Problem::OutOfRange {
                    value: n.threshold.to_string(),
                    bound: "a positive number, a bucket boundary of the histogram (a power of two \
                            such as 0.25 is one at every schema from 0 up)"
                        .into(),
                },
            )
        };
        let group_by = self.group_by(&format!("{PATH}.groupBy"), &n.group_by);
        Some(Indicator::NativeLatency {
            histogram: histogram?,
            threshold: threshold?,
            group_by: group_by?,
        })
    }

    /// A native histogram is one series: the classic suffixes and `le` mean a classic histogram.
    fn native_histogram(&mut self, h: Selector) -> Option<Selector> {
        const PATH: &str = "spec.indicator.nativeLatency.histogram";
        for suffix in ["_bucket", "_count", "_sum"] {
            if let Some(base) = h.metric.strip_suffix(suffix) {
                return self.fail(
                    PATH,
                    Problem::invalid(format!(
                        "`{}` is a classic histogram's series: a native histogram is one series \
                         without suffix, such as `{base}`; for classic `_bucket` series use \
                         indicator.latency",
                        h.metric
                    )),
                );
            }
        }
        if h.matches_label("le") {
            return self.fail(
                PATH,
                Problem::invalid(
                    "remove the `le` matcher: native histograms have no `le` label; the \
                     threshold is nativeLatency.threshold"
                        .to_string(),
                ),
            );
        }
        Some(h)
    }

    /// The generated rules append `_bucket` and `_count` and match `le` themselves.
    fn histogram_base(&mut self, h: Selector) -> Option<Selector> {
        const PATH: &str = "spec.indicator.latency.histogram";
        for suffix in ["_bucket", "_count", "_sum"] {
            if let Some(base) = h.metric.strip_suffix(suffix) {
                return self.fail(
                    PATH,
                    Problem::invalid(format!(
                        "give the histogram's base name `{base}`, without `{suffix}`; Plimsoll \
                         reads `{base}_bucket` and `{base}_count` itself"
                    )),
                );
            }
        }
        if h.matches_label("le") {
            return self.fail(
                PATH,
                Problem::invalid(
                    "remove the `le` matcher; the bucket comes from latency.threshold".to_string(),
                ),
            );
        }
        Some(h)
    }

    fn selector(&mut self, path: &str, text: &str) -> Option<Selector> {
        match parse_selector(text) {
            Ok(s) => Some(s),
            Err(p) => self.fail(path, p),
        }
    }

    fn group_by(&mut self, path: &str, labels: &[String]) -> Option<Vec<String>> {
        let before = self.errors.0.len();
        let mut seen = BTreeSet::new();
        for (i, label) in labels.iter().enumerate() {
            let item = format!("{path}[{i}]");
            if !is_label_name(label) {
                self.errors.push(
                    item,
                    Problem::LabelName {
                        what: "groupBy label",
                        name: label.clone(),
                    },
                );
            } else if RESERVED_SERIES_LABELS.contains(&label.as_str())
                || RESERVED_ALERT_LABELS.contains(&label.as_str())
            {
                self.errors.push(item, reserved(label));
            } else if !seen.insert(label) {
                self.errors.push(
                    item,
                    Problem::Duplicate {
                        name: label.clone(),
                    },
                );
            }
        }
        (self.errors.0.len() == before).then(|| labels.to_vec())
    }

    fn alerting(&mut self, a: Option<&api::Alerting>, object_name: &str) -> Option<Alerting> {
        let default = api::Alerting::default();
        let a = a.unwrap_or(&default);
        let before = self.errors.0.len();
        let name = match &a.name {
            Some(n) if is_alert_name(n) => n.clone(),
            Some(n) => {
                self.errors.push(
                    "spec.alerting.name",
                    Problem::invalid(format!(
                        "{n:?} is not a valid alert name prefix: use letters, digits and \
                         underscores, starting with a letter, such as `CheckoutAvailability`"
                    )),
                );
                String::new()
            }
            None => camel_case(object_name),
        };
        self.alert_labels("spec.alerting.labels", &a.labels);
        self.annotations("spec.alerting.annotations", &a.annotations);
        let page = self.tier("page", a.page.as_ref(), a, "critical");
        let ticket = self.tier("ticket", a.ticket.as_ref(), a, "warning");
        let absent = a.absent.clone().unwrap_or_default();
        let absent_for = match &absent.for_ {
            Some(text) => self.duration(
                "spec.alerting.absent.for",
                text,
                "dhms",
                "use a Prometheus duration such as `10m`",
            ),
            None => Some(DEFAULT_ABSENT_FOR),
        };
        if self.errors.0.len() != before {
            return None;
        }
        let enabled = !a.disabled;
        Some(Alerting {
            name,
            labels: a.labels.clone().into(),
            annotations: a.annotations.clone().into(),
            page: page.filter(|_| enabled),
            ticket: ticket.filter(|_| enabled),
            absent: absent_for
                .filter(|_| enabled && !absent.disabled)
                .map(|for_| AbsentAlert { for_ }),
        })
    }

    fn tier(
        &mut self,
        tier: &str,
        t: Option<&api::AlertTier>,
        common: &api::Alerting,
        severity: &str,
    ) -> Option<AlertTier> {
        let default = api::AlertTier::default();
        let t = t.unwrap_or(&default);
        self.alert_labels(&format!("spec.alerting.{tier}.labels"), &t.labels);
        self.annotations(&format!("spec.alerting.{tier}.annotations"), &t.annotations);
        if t.disabled {
            return None;
        }
        let mut labels = BTreeMap::from([("severity".to_string(), severity.to_string())]);
        labels.extend(common.labels.clone());
        labels.extend(t.labels.clone());
        let mut annotations: BTreeMap<String, String> = common.annotations.clone().into();
        annotations.extend(t.annotations.clone());
        Some(AlertTier {
            labels,
            annotations,
        })
    }

    /// Alert labels and annotations are templates Prometheus parses before it loads the file.
    fn templates(&mut self, path: &str, texts: &SmallMap<String, String>) {
        for (name, text) in texts.iter() {
            if let Err(e) = super::template::check(text) {
                self.errors.push(
                    format!("{path}.{name}"),
                    Problem::Template {
                        detail: e.to_string(),
                    },
                );
            }
        }
    }

    fn alert_labels(&mut self, path: &str, labels: &SmallMap<String, String>) {
        self.templates(path, labels);
        for name in labels.keys() {
            let item = format!("{path}.{name}");
            if !is_label_name(name) {
                self.errors.push(
                    item,
                    Problem::LabelName {
                        what: "alert label",
                        name: name.clone(),
                    },
                );
            } else if RESERVED_SERIES_LABELS.contains(&name.as_str())
                || RESERVED_ALERT_LABELS.contains(&name.as_str())
            {
                self.errors.push(item, reserved(name));
            }
        }
    }

    fn annotations(&mut self, path: &str, annotations: &SmallMap<String, String>) {
        self.templates(path, annotations);
        for name in annotations.keys().filter(|n| !is_label_name(n)) {
            self.errors.push(
                format!("{path}.{name}"),
                Problem::LabelName {
                    what: "annotation",
                    name: name.clone(),
                },
            );
        }
    }

    fn rollback(
        &mut self,
        r: &api::Rollback,
        namespace: Option<&str>,
        window: Option<Duration>,
    ) -> Option<RollbackPolicy> {
        const PATH: &str = "spec.rollback";
        let before = self.errors.0.len();
        let trigger = r.trigger.clone().unwrap_or_default();
        let below = self.percent_in(
            &format!("{PATH}.trigger.budgetRemainingBelow"),
            trigger.budget_remaining_below.unwrap_or(0.0),
            "from 0 to 100 percent of the budget, such as 0 (exhausted) or 25",
        );
        let burn = trigger
            .burn_rate_above
            .as_ref()
            .and_then(|b| self.burn_rate(b, window));
        let recover = match (r.recover_above, below) {
            (Some(value), _) => self.percent_in(
                &format!("{PATH}.recoverAbove"),
                value,
                "from 0 to 100 percent of the budget, such as 10",
            ),
            (None, Some(below)) => {
                Percent::from_f64((below.as_f64() + DEFAULT_RECOVERY_MARGIN as f64).min(100.0)).ok()
            }
            (None, None) => None,
        };
        if let (Some(below), Some(recover), Some(_)) = (below, recover, r.recover_above)
            && recover < below
        {
            self.errors.push(
                format!("{PATH}.recoverAbove"),
                Problem::invalid(format!(
                    "recoverAbove ({recover}) is below trigger.budgetRemainingBelow ({below}): the \
                     rollback would clear while still triggered; set recoverAbove to at least \
                     {below}"
                )),
            );
        }
        let targets = self.targets(&r.targets, namespace);
        if r.abort_rollouts && !r.targets.iter().any(|t| t.kind == api::TargetKind::Rollout) {
            self.errors.push(
                format!("{PATH}.abortRollouts"),
                Problem::invalid(
                    "abortRollouts needs at least one target of kind Rollout; add one or remove \
                     abortRollouts"
                        .to_string(),
                ),
            );
        }
        if self.errors.0.len() != before {
            return None;
        }
        Some(RollbackPolicy {
            budget_remaining_below: below?,
            burn_rate_above: burn,
            recover_above: recover?,
            targets,
            abort_rollouts: r.abort_rollouts,
            analysis_template: r.analysis_template,
            dry_run: r.dry_run,
        })
    }

    fn percent_in(&mut self, path: &str, value: f64, bound: &str) -> Option<Percent> {
        match Percent::from_f64(value) {
            Ok(p) => Some(p),
            Err(_) => self.fail(
                path,
                Problem::OutOfRange {
                    value: value.to_string(),
                    bound: bound.to_string(),
                },
            ),
        }
    }

    fn burn_rate(
        &mut self,
        b: &api::BurnRateTrigger,
        slo_window: Option<Duration>,
    ) -> Option<BurnRateTrigger> {
        const PATH: &str = "spec.rollback.trigger.burnRateAbove";
        let hint = "use a multiple of 5m such as `1h`";
        let window = self
            .duration(&format!("{PATH}.window"), &b.window, "wdhm", hint)
            .and_then(|w| {
                let max = slo_window.unwrap_or(MAX_WINDOW);
                if w.is_multiple_of(COUNT_STEP) && w <= max {
                    Some(w)
                } else {
                    self.fail(
                        format!("{PATH}.window"),
                        Problem::OutOfRange {
                            value: b.window.clone(),
                            bound: format!("a multiple of {COUNT_STEP} up to the SLO window {max}"),
                        },
                    )
                }
            });
        let factor = if b.factor.is_finite() && b.factor > 0.0 {
            Some(b.factor)
        } else {
            self.fail(
                format!("{PATH}.factor"),
                Problem::OutOfRange {
                    value: b.factor.to_string(),
                    bound: "a positive number, such as 14.4".into(),
                },
            )
        };
        Some(BurnRateTrigger {
            window: window?,
            factor: factor?,
        })
    }

    fn targets(&mut self, targets: &[api::RollbackTarget], namespace: Option<&str>) -> Vec<Target> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for (i, t) in targets.iter().enumerate() {
            let path = format!("spec.rollback.targets[{i}]");
            if let Some(target_ns) = t.namespace.as_deref()
                && Some(target_ns) != namespace
            {
                let slo_ns = namespace.map_or_else(
                    || "the SLO's namespace (set metadata.namespace to compare)".to_string(),
                    |ns| format!("the SLO's namespace {ns:?}"),
                );
                self.errors.push(
                    format!("{path}.namespace"),
                    Problem::NotAllowed {
                        hint: format!(
                            "targets must be in {slo_ns}, not {target_ns:?}; create the SLO in the \
                             target's namespace, or remove namespace"
                        ),
                    },
                );
                continue;
            }
            if !is_dns_subdomain(&t.name) {
                self.errors.push(
                    format!("{path}.name"),
                    Problem::invalid(format!(
                        "{:?} is not a valid object name: use lower-case letters, digits, '-' and \
                         '.'",
                        t.name
                    )),
                );
                continue;
            }
            let target = Target {
                kind: t.kind,
                name: t.name.clone(),
            };
            if !seen.insert(target.clone()) {
                self.errors.push(
                    path,
                    Problem::Duplicate {
                        name: format!("{:?}/{}", t.kind, t.name),
                    },
                );
                continue;
            }
            out.push(target);
        }
        out
    }
}

fn is_alert_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic()) && is_label_name(name)
}

fn reserved(name: &str) -> Problem {
    Problem::ReservedLabel {
        name: name.to_string(),
        reserved: RESERVED_SERIES_LABELS
            .iter()
            .chain(RESERVED_ALERT_LABELS.iter())
            .copied()
            .collect::<Vec<_>>()
            .join(", "),
    }
}

fn found_list(set: &[&str]) -> String {
    match set {
        [] => "none".to_string(),
        names => names.join(" and "),
    }
}

/// A fraction written as the percentage it means: 0.999 -> `99.9`, 0.95 -> `95`.
fn fraction_as_percent(value: f64) -> String {
    let percent = format!("{:.6}", value * 100.0);
    percent
        .trim_end_matches('0')
        .trim_end_matches('.')
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ServiceLevelObjective;

    fn object(spec: serde_json::Value) -> ServiceLevelObjective {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "plimsoll.dev/v1alpha1",
            "kind": "ServiceLevelObjective",
            "metadata": {"name": "checkout-availability", "namespace": "shop"},
            "spec": spec,
        }))
        .unwrap()
    }

    fn ratio_spec() -> serde_json::Value {
        serde_json::json!({
            "service": "checkout",
            "objective": 99.9,
            "window": "30d",
            "indicator": {"ratio": {
                "errors": "http_requests_total{job=\"checkout\",code=~\"5..\"}",
                "total": "http_requests_total{job=\"checkout\"}",
            }},
        })
    }

    fn with(mut base: serde_json::Value, key: &str, value: serde_json::Value) -> serde_json::Value {
        base[key] = value;
        base
    }

    #[test]
    fn a_minimal_slo_gets_sensible_defaults() {
        let slo = validate(&object(ratio_spec())).unwrap();
        assert_eq!(slo.error_budget().ratio_string(), "0.001");
        assert_eq!(slo.window, Window::Rolling(Duration::from_days(30)));
        assert_eq!(slo.method, BudgetingMethod::Occurrences);
        assert_eq!(slo.alerting.name, "CheckoutAvailability");
        let page = slo.alerting.page.as_ref().unwrap();
        assert_eq!(page.labels["severity"], "critical");
        assert_eq!(
            slo.alerting.ticket.as_ref().unwrap().labels["severity"],
            "warning"
        );
        assert_eq!(
            slo.alerting.absent.as_ref().unwrap().for_,
            DEFAULT_ABSENT_FOR
        );
        assert!(slo.rollback.is_none());
        let Indicator::Ratio { bad, total, .. } = &slo.indicator else {
            panic!("ratio expected");
        };
        assert_eq!(total.to_string(), r#"http_requests_total{job="checkout"}"#);
        assert!(matches!(bad, BadEvents::Errors(s) if s.matchers.len() == 2));
    }

    #[test]
    fn tier_labels_override_common_labels() {
        let spec = with(
            ratio_spec(),
            "alerting",
            serde_json::json!({
                "labels": {"team": "shop", "severity": "page-me"},
                "annotations": {"runbook_url": "https://r.example/common"},
                "ticket": {"labels": {"severity": "low"}, "annotations": {"runbook_url": "https://r.example/t"}},
                "absent": {"disabled": true},
            }),
        );
        let slo = validate(&object(spec)).unwrap();
        let page = slo.alerting.page.unwrap();
        let ticket = slo.alerting.ticket.unwrap();
        assert_eq!(page.labels["severity"], "page-me");
        assert_eq!(page.labels["team"], "shop");
        assert_eq!(ticket.labels["severity"], "low");
        assert_eq!(ticket.annotations["runbook_url"], "https://r.example/t");
        assert_eq!(page.annotations["runbook_url"], "https://r.example/common");
        assert!(slo.alerting.absent.is_none());
    }

    #[test]
    fn disabling_alerting_disables_every_tier() {
        let spec = with(
            ratio_spec(),
            "alerting",
            serde_json::json!({"disabled": true}),
        );
        let slo = validate(&object(spec)).unwrap();
        assert!(slo.alerting.page.is_none() && slo.alerting.ticket.is_none());
        assert!(slo.alerting.absent.is_none());
    }

    #[test]
    fn calendar_windows_default_to_utc_and_alert_on_the_rolling_equivalent() {
        let spec = with(ratio_spec(), "window", serde_json::json!("month"));
        let slo = validate(&object(spec)).unwrap();
        assert_eq!(
            slo.window,
            Window::Calendar {
                period: CalendarPeriod::Month,
                time_zone: "UTC".into()
            }
        );
        assert_eq!(slo.window.rolling_equivalent(), Duration::from_days(30));
    }

    #[test]
    fn recovery_defaults_to_ten_points_above_the_trigger() {
        let spec = with(
            ratio_spec(),
            "rollback",
            serde_json::json!({"trigger": {"budgetRemainingBelow": 25}}),
        );
        let policy = validate(&object(spec)).unwrap().rollback.unwrap();
        assert_eq!(policy.recover_above.to_string(), "35");
        let spec = with(ratio_spec(), "rollback", serde_json::json!({}));
        let policy = validate(&object(spec)).unwrap().rollback.unwrap();
        assert_eq!(policy.budget_remaining_below, Percent::ZERO);
        assert_eq!(policy.recover_above.to_string(), "10");
    }

    #[test]
    fn a_target_may_repeat_the_slos_own_namespace() {
        let spec = with(
            ratio_spec(),
            "rollback",
            serde_json::json!({"targets": [{"kind": "Deployment", "name": "checkout", "namespace": "shop"}]}),
        );
        let policy = validate(&object(spec)).unwrap().rollback.unwrap();
        assert_eq!(policy.targets.len(), 1);
    }

    #[test]
    fn reports_every_problem_not_just_the_first() {
        let mut spec = ratio_spec();
        spec["objective"] = serde_json::json!(100);
        spec["window"] = serde_json::json!("400d");
        spec["service"] = serde_json::json!("check out");
        let errors = validate(&object(spec)).unwrap_err();
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["spec.service", "spec.objective", "spec.window"]);
    }

    #[test]
    fn calendar_slices_must_start_with_the_period() {
        let sliced = |duration: &str, zone: &str| {
            let mut spec = ratio_spec();
            spec["window"] = serde_json::json!("month");
            spec["timeZone"] = serde_json::json!(zone);
            spec["budgetingMethod"] = serde_json::json!("Timeslices");
            spec["timeslice"] = serde_json::json!({"duration": duration, "objective": 95});
            validate(&object(spec))
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        assert_eq!(sliced("30m", "Europe/Berlin"), Ok(()));
        assert_eq!(sliced("30m", "Asia/Kolkata"), Ok(()));
        assert_eq!(sliced("15m", "Asia/Kathmandu"), Ok(()));
        let e = sliced("30m", "Asia/Kathmandu").unwrap_err();
        assert!(
            e.contains("spec.timeslice.duration")
                && e.contains("UTC+05:45")
                && e.contains("divides 15m"),
            "{e}"
        );
        // Lord Howe moves by half an hour in summer.
        let e = sliced("1h", "Australia/Lord_Howe").unwrap_err();
        assert!(e.contains("divides 30m"), "{e}");
    }

    #[test]
    fn timeslices_are_parsed() {
        let mut spec = ratio_spec();
        spec["budgetingMethod"] = serde_json::json!("Timeslices");
        spec["timeslice"] = serde_json::json!({"duration": "5m", "objective": 95});
        let slo = validate(&object(spec)).unwrap();
        assert_eq!(
            slo.method,
            BudgetingMethod::Timeslices {
                slice: Duration::from_minutes(5),
                objective: Percent::from_f64(95.0).unwrap()
            }
        );
    }
}
