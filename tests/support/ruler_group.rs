//! The loopback ruler's checks of a posted group: decoding it as rulefmt does, Mimir's
//! `ValidateRuleGroup` (grafana/mimir pkg/ruler/manager.go) and Prometheus' `RuleNode.Validate`
//! (prometheus/prometheus model/rulefmt/rulefmt.go), and durations as `model.Duration` parses
//! and prints them (prometheus/common model/time.go).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{Group, Rule};

/// The group as posted: rulefmt's fields, durations as text.
#[derive(Deserialize)]
pub struct Posted {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub interval: Option<String>,
    #[serde(default)]
    pub rules: Vec<PostedRule>,
}

#[derive(Deserialize)]
pub struct PostedRule {
    #[serde(default)]
    record: Option<String>,
    #[serde(default)]
    alert: Option<String>,
    #[serde(default)]
    expr: String,
    #[serde(default, rename = "for")]
    for_: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

pub fn validate(posted: Posted) -> Result<Group, String> {
    const BAD: &str = "unable to decode rule group";
    if posted.name.is_empty() {
        return Err("invalid rules configuration: rule group name must not be empty".into());
    }
    if posted.rules.is_empty() {
        return Err(format!(
            "invalid rules configuration: rule group '{}' has no rules",
            posted.name
        ));
    }
    let interval = match posted.interval.as_deref() {
        None => None,
        Some(t) => Some(millis(t).ok_or(BAD)?),
    };
    let mut errors = Vec::new();
    let mut rules = Vec::new();
    for (i, rule) in posted.rules.into_iter().enumerate() {
        let for_ms = match rule.for_.as_deref() {
            None => 0,
            Some(t) => millis(t).ok_or(BAD)?,
        };
        let name = rule
            .record
            .clone()
            .or(rule.alert.clone())
            .unwrap_or_default();
        for problem in rule_problems(&rule, for_ms) {
            errors.push(format!(
                "group {:?}, rule {i}, {name:?}: {problem}",
                posted.name
            ));
        }
        rules.push(Rule {
            record: rule.record,
            alert: rule.alert,
            expr: rule.expr,
            for_: (for_ms > 0).then(|| duration_text(for_ms)),
            labels: rule.labels,
            annotations: rule.annotations,
        });
    }
    if !errors.is_empty() {
        return Err(errors.join(", "));
    }
    Ok(Group {
        name: posted.name,
        interval: interval.filter(|ms| *ms > 0).map(duration_text),
        rules,
    })
}

/// rulefmt's `RuleNode.Validate`, without template parsing.
fn rule_problems(rule: &PostedRule, for_ms: u64) -> Vec<String> {
    let mut out = Vec::new();
    let (record, alert) = (rule.record.as_deref(), rule.alert.as_deref());
    match (
        record.filter(|r| !r.is_empty()),
        alert.filter(|a| !a.is_empty()),
    ) {
        (Some(_), Some(_)) => out.push("only one of 'record' and 'alert' must be set".to_string()),
        (None, None) => out.push("one of 'record' or 'alert' must be set".to_string()),
        _ => {}
    }
    if rule.expr.is_empty() {
        out.push("field 'expr' must be set in rule".into());
    } else if let Err(e) = promql_parser::parser::parse(&rule.expr) {
        out.push(format!("could not parse expression: {e}"));
    }
    if let Some(record) = record.filter(|r| !r.is_empty()) {
        if !rule.annotations.is_empty() {
            out.push("invalid field 'annotations' in recording rule".into());
        }
        if for_ms != 0 {
            out.push("invalid field 'for' in recording rule".into());
        }
        if !is_name(record, true) {
            out.push(format!("invalid recording rule name: {record}"));
        }
    }
    for (k, v) in &rule.labels {
        if !is_name(k, false) || k == "__name__" {
            out.push(format!("invalid label name: {k}"));
        }
        if v.contains('\u{FFFD}') {
            out.push(format!("invalid label value: {v}"));
        }
    }
    for k in rule.annotations.keys().filter(|k| !is_name(k, false)) {
        out.push(format!("invalid annotation name: {k}"));
    }
    out
}

/// Prometheus' legacy metric (`colons`) and label name syntax.
fn is_name(name: &str, colons: bool) -> bool {
    let ok = |c: char, first: bool| {
        c.is_ascii_alphabetic()
            || c == '_'
            || (colons && c == ':')
            || (!first && c.is_ascii_digit())
    };
    let mut chars = name.chars();
    chars.next().is_some_and(|c| ok(c, true)) && chars.all(|c| ok(c, false))
}

const UNITS: [(&str, u64); 7] = [
    ("y", 31_536_000_000),
    ("w", 604_800_000),
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

/// `model.ParseDuration`: `1h30m`, `500ms`.
fn millis(text: &str) -> Option<u64> {
    let mut total = 0u64;
    let mut rest = text;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        let number: u64 = rest[..digits].parse().ok()?;
        let tail = &rest[digits..];
        let len = tail
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(tail.len());
        let unit = UNITS.iter().find(|(u, _)| *u == &tail[..len])?.1;
        total += number * unit;
        rest = &tail[len..];
    }
    Some(total)
}

/// `model.Duration.String`: years and weeks only when exact.
fn duration_text(mut ms: u64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in UNITS {
        if matches!(unit, "y" | "w") && !ms.is_multiple_of(size) {
            continue;
        }
        if ms / size > 0 {
            out.push_str(&format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    out
}
