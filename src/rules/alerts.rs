//! Multiwindow, multi-burn-rate alerts and the absent-data alert.

use std::collections::BTreeMap;

use super::amounts::presence;
use super::windows::{BurnWindow, FROM_COUNTS, Tier, burn_windows, rate_suffix};
use super::{Context, Rule, RuleGroup, names};
use crate::model::template::literal;
use crate::model::{AlertTier, Duration};

/// Adds the alerts to the groups that record their inputs: a burn-rate alert goes where its long
/// window is recorded, after it, so it never reads a value older than its own evaluation.
pub fn place(ctx: &Context, first: &mut RuleGroup, slow: &mut RuleGroup) {
    let alerting = &ctx.slo.alerting;
    for burn in burn_windows(&ctx.slo.window) {
        let tier = match burn.tier {
            Tier::Page => alerting.page.as_ref(),
            Tier::Ticket => alerting.ticket.as_ref(),
        };
        let Some(tier) = tier else { continue };
        let rule = burn_alert(ctx, &burn, tier);
        if burn.long < FROM_COUNTS {
            first.rules.push(rule);
        } else {
            slow.rules.push(rule);
        }
    }
    if let Some(absent) = &alerting.absent {
        first.rules.push(absent_alert(ctx, absent.for_));
    }
}

/// The annotation that links an alert to the SLO's page in the web UI.
pub const URL_ANNOTATION: &str = "plimsoll_url";

/// Adds [`URL_ANNOTATION`] with `url` to every alert of the groups (as literal text: a URL is
/// not a template).
pub fn link_alerts(groups: &mut [RuleGroup], url: &str) {
    for rule in groups.iter_mut().flat_map(|g| g.rules.iter_mut()) {
        if rule.alert.is_some() {
            rule.annotations
                .insert(URL_ANNOTATION.to_string(), literal(url));
        }
    }
}

fn ratio_record(ctx: &Context, window: Duration) -> String {
    if window >= ctx.slo.window.rolling_equivalent() {
        ctx.own(names::RATIO_WINDOW)
    } else {
        ctx.own(&format!("{}{}", names::RATIO_PREFIX, rate_suffix(window)))
    }
}

fn burn_alert(ctx: &Context, burn: &BurnWindow, tier: &AlertTier) -> Rule {
    let slo = ctx.slo;
    let threshold = format!("({} * {})", burn.factor, ctx.budget());
    let expr = format!(
        "{} > {threshold}\nand\n{} > {threshold}",
        ratio_record(ctx, burn.long),
        ratio_record(ctx, burn.short)
    );
    let window = slo.window.rolling_equivalent();
    let factor: f64 = burn.factor.parse().unwrap_or(1.0);
    let exhausted_in = Duration::from_secs((window.as_secs() as f64 / factor).round() as u64);
    let mut labels = tier.labels.clone();
    labels.extend([
        ("long".to_string(), burn.long.to_string()),
        ("short".to_string(), burn.short.to_string()),
        ("burn_rate".to_string(), burn.factor.to_string()),
    ]);
    let mut annotations = BTreeMap::from([
        (
            "summary".to_string(),
            format!(
                "SLO {} is spending its error budget {}x faster than sustainable.",
                who(ctx),
                burn.factor
            ),
        ),
        (
            "description".to_string(),
            format!(
                "The error ratio is {{{{ $value | humanizePercentage }}}} over the last {} and above \
                 {}x the budget over the last {}. The budget is {}% of events (objective {}% over \
                 {}); at this rate it is gone in {exhausted_in}.{}",
                burn.long,
                burn.factor,
                burn.short,
                slo.error_budget(),
                slo.objective,
                window_text(ctx),
                description_suffix(ctx),
            ),
        ),
    ]);
    annotations.extend(tier.annotations.clone());
    Rule {
        alert: Some(format!("{}ErrorBudgetBurn", slo.alerting.name)),
        expr,
        labels,
        annotations,
        ..Rule::default()
    }
}

fn absent_alert(ctx: &Context, for_: Duration) -> Rule {
    let slo = ctx.slo;
    let mut labels = BTreeMap::from([("severity".to_string(), "warning".to_string())]);
    labels.extend(slo.alerting.labels.clone());
    labels.extend([
        (names::LABEL_SLO.to_string(), slo.name.clone()),
        (
            names::LABEL_NAMESPACE.to_string(),
            ctx.namespace.to_string(),
        ),
    ]);
    let mut annotations = BTreeMap::from([
        (
            "summary".to_string(),
            format!("SLO {} has no data: its SLI cannot be computed.", who(ctx)),
        ),
        (
            "description".to_string(),
            format!(
                "The series the SLI is computed from have been missing for {for_}. Check that the \
                 exporter is scraped and that the indicator's selectors still match{}.",
                match slo.indicator {
                    crate::model::Indicator::Latency { .. } =>
                        ", and that latency.threshold is one of the histogram's bucket bounds",
                    crate::model::Indicator::NativeLatency { .. } =>
                        ", and that Prometheus stores the histogram as a native histogram",
                    _ => "",
                }
            ),
        ),
    ]);
    annotations.extend(slo.alerting.annotations.clone());
    Rule {
        alert: Some(format!("{}SLIAbsent", slo.alerting.name)),
        expr: format!("absent({})", presence(&slo.indicator)),
        for_: Some(for_.to_string()),
        labels,
        annotations,
        ..Rule::default()
    }
}

fn window_text(ctx: &Context) -> String {
    match &ctx.slo.window {
        crate::model::Window::Rolling(d) => d.to_string(),
        crate::model::Window::Calendar { period, time_zone } => {
            format!(
                "a calendar {} in {time_zone}",
                format!("{period:?}").to_lowercase()
            )
        }
    }
}

/// `namespace/name (service)`, as literal template text: the service is any label value.
fn who(ctx: &Context) -> String {
    literal(&format!(
        "{}/{} ({})",
        ctx.namespace, ctx.slo.name, ctx.slo.service
    ))
}

/// The SLO's own description, as literal template text: it is prose, not a template.
fn description_suffix(ctx: &Context) -> String {
    match &ctx.slo.description {
        Some(d) if !d.is_empty() => format!(" SLO: {}", literal(d)),
        _ => String::new(),
    }
}
