//! OpenSLO alert policies on Plimsoll's fixed tiers: a burn-rate condition's severity becomes the
//! label of the tier whose windows are nearest; its exact threshold and windows are reported.

use serde_json::Value;

use crate::api::{AlertTier, Alerting};

use super::super::fields::{Fields, join};
use super::super::finding::Findings;
use super::index::Index;
use super::sli::is_inline;

/// Conditions whose look-back is at most this many seconds page; longer ones ticket (Plimsoll's
/// page tier reads 1h and 6h, its ticket tier 1d and 3d).
const PAGE_LOOKBACK_SECONDS: u64 = 6 * 3600;

/// `spec.alertPolicies` as Plimsoll alerting; None when a reference cannot be resolved.
pub fn alerting(spec: &Fields, index: &Index) -> Option<Alerting> {
    let f = spec.findings();
    let policies = spec.list("alertPolicies");
    if policies.is_empty() {
        f.changed(
            spec.path("alertPolicies"),
            "the source defines no alerts, so alerting.disabled is true; remove it to get \
             Plimsoll's burn-rate and absent alerts",
        );
        return Some(Alerting {
            disabled: true,
            ..Alerting::default()
        });
    }
    let mut alerting = Alerting::default();
    for (i, policy) in policies.into_iter().enumerate() {
        let path = join(&spec.path("alertPolicies"), &format!("[{i}]"));
        let (value, path) = resolve(policy, "AlertPolicy", "alertPolicyRef", &path, index, f)?;
        let Some(policy) = Fields::of(value, path.clone(), f) else {
            continue;
        };
        policy.ignore(&["kind", "apiVersion"]);
        ignore_metadata(&policy);
        if let Some(body) = policy.object("spec") {
            policy_spec(&body, index, &mut alerting)?;
        }
    }
    for (tier, other, set) in [
        ("page", "ticket", alerting.page.is_some()),
        ("ticket", "page", alerting.ticket.is_some()),
    ] {
        if !set && (alerting.page.is_some() || alerting.ticket.is_some()) {
            f.changed(
                spec.path("alertPolicies"),
                format!(
                    "no condition maps to the {tier} tier, only to the {other} tier; Plimsoll \
                     keeps its {tier} alert with its default severity (set \
                     alerting.{tier}.disabled: true to do without)"
                ),
            );
        }
    }
    Some(alerting)
}

/// An AlertPolicy's spec: its conditions set the tiers' severities, and what has no counterpart
/// is reported. None when a conditionRef does not resolve.
pub fn policy_spec(body: &Fields, index: &Index, alerting: &mut Alerting) -> Option<()> {
    let f = body.findings();
    if body.take("description").is_some() {
        f.dropped(
            body.path("description"),
            "the policy's description; not carried",
        );
    }
    for key in ["alertWhenBreaching", "alertWhenResolved", "alertWhenNoData"] {
        if body.take(key).is_some() {
            f.dropped(
                body.path(key),
                "Plimsoll's alerts fire while the burn rate is over the line and resolve on \
                 their own; not carried",
            );
        }
    }
    for (j, target) in body.list("notificationTargets").into_iter().enumerate() {
        let what = target
            .get("targetRef")
            .or_else(|| target.pointer("/spec/target"))
            .and_then(Value::as_str)
            .unwrap_or("(inline)");
        f.dropped(
            join(&body.path("notificationTargets"), &format!("[{j}]")),
            format!(
                "{what:?}: where alerts go is Alertmanager's routing (by the tier's labels); \
                 not carried"
            ),
        );
    }
    for (j, condition) in body.list("conditions").into_iter().enumerate() {
        let path = join(&body.path("conditions"), &format!("[{j}]"));
        let (value, path) = resolve(condition, "AlertCondition", "conditionRef", &path, index, f)?;
        tier_of_condition(value, &path, f, alerting);
    }
    Some(())
}

/// An inline object, or the object a `*Ref` names in the same import.
fn resolve<'a>(
    item: &'a Value,
    kind: &str,
    ref_key: &str,
    path: &str,
    index: &Index<'a>,
    f: &Findings,
) -> Option<(&'a Value, String)> {
    if let Some(name) = item.get(ref_key).and_then(Value::as_str) {
        return match index.get(kind, name) {
            Some(found) => Some((found, format!("{path}.{ref_key}({name})"))),
            None => {
                f.refused(
                    format!("{path}.{ref_key}"),
                    format!("{kind} {name:?} is not among the imported objects; give its file too"),
                );
                None
            }
        };
    }
    if is_inline(item, kind) {
        return Some((item, path.to_string()));
    }
    f.refused(path, format!("is neither an inline {kind} nor a {ref_key}"));
    None
}

fn tier_of_condition(value: &Value, path: &str, f: &Findings, alerting: &mut Alerting) {
    let Some(condition) = Fields::of(value, path, f) else {
        return;
    };
    condition.ignore(&["kind", "apiVersion"]);
    ignore_metadata(&condition);
    let Some(spec) = condition.object("spec") else {
        return;
    };
    if spec.take("description").is_some() {
        f.dropped(
            spec.path("description"),
            "the condition's description; not carried",
        );
    }
    let severity = spec.text("severity");
    let Some(rule) = spec.object("condition") else {
        return;
    };
    // OpenSLO: kind "defaults to `burnrate`".
    let kind = rule.text("kind").unwrap_or_else(|| "burnrate".to_string());
    let op = rule.scalar("op").unwrap_or_default();
    let threshold = rule.scalar("threshold").unwrap_or_default();
    let lookback = rule.scalar("lookbackWindow").unwrap_or_default();
    let after = rule.scalar("alertAfter").unwrap_or_default();
    if !kind.eq_ignore_ascii_case("burnrate") {
        f.dropped(
            rule.path("kind"),
            format!("{kind:?} is not a burn-rate condition; not carried"),
        );
        return;
    }
    let page = seconds(&lookback).is_none_or(|s| s <= PAGE_LOOKBACK_SECONDS);
    let tier_name = if page { "page" } else { "ticket" };
    let mut message = format!(
        "burn rate {op} {threshold} over {lookback} for {after}: Plimsoll's tiers are fixed (page \
         14.4x over 1h/5m and 6x over 6h/30m; ticket 3x over 1d/2h and 1x over 3d/6h), so this \
         maps to the {tier_name} tier"
    );
    if matches!(op.as_str(), "lt" | "lte") {
        message.push_str(&format!(
            "; op {op} would alert while the burn is low, the inverse of a budget alert: read as \
             gt"
        ));
    }
    if let Some(severity) = severity {
        message.push_str(&format!(" with severity: {severity}"));
        let tier = if page {
            &mut alerting.page
        } else {
            &mut alerting.ticket
        };
        tier.get_or_insert_with(AlertTier::default)
            .labels
            .insert("severity".to_string(), severity);
    }
    f.changed(path, message);
}

/// `1h`, `30m`, `2d` in seconds.
fn seconds(text: &str) -> Option<u64> {
    let text = text.trim();
    let digits = text.trim_end_matches(|c: char| !c.is_ascii_digit());
    let n: u64 = digits.parse().ok()?;
    let unit = match &text[digits.len()..] {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return None,
    };
    Some(n * unit)
}

/// An inline object's name says nothing Plimsoll keeps; its labels and annotations are OpenSLO
/// metadata, not the alerts' own, and are reported.
fn ignore_metadata(object: &Fields) {
    if let Some(meta) = object.object("metadata") {
        meta.ignore(&["name", "displayName"]);
        for key in ["labels", "annotations"] {
            if meta.take(key).is_some() {
                meta.findings().dropped(
                    meta.path(key),
                    "OpenSLO metadata of the alert object, not labels or annotations of the \
                     alerts; not carried (set alerting.labels / annotations)",
                );
            }
        }
    }
}
