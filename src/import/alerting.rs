//! Alert settings shared by the formats: a tier's labels and annotations, and alert names that
//! Plimsoll's CRD accepts.

use crate::api::AlertTier;
use crate::small_map::SmallMap;

use super::fields::Fields;
use super::finding::Findings;

/// Sloth's label naming an alert's tier.
const SLOTH_SEVERITY: &str = "sloth_severity";

type Labels = SmallMap<String, String>;

/// One source alert tier (Sloth's page_alert / ticket_alert), as read.
#[derive(Debug, Default)]
pub struct Tier {
    pub disabled: bool,
    pub labels: SmallMap<String, String>,
    pub annotations: SmallMap<String, String>,
}

impl Tier {
    /// Reads `block.key`: `disable` (true/false), labels, annotations.
    pub fn read(block: &Fields, key: &'static str) -> Tier {
        let Some(tier) = block.object(key) else {
            return Tier::default();
        };
        Tier {
            disabled: tier.flag("disable").unwrap_or(false),
            labels: tier.string_map("labels").into_iter().collect(),
            annotations: tier.string_map("annotations").into_iter().collect(),
        }
    }

    /// The Plimsoll tier, or None when it sets nothing; says when Plimsoll adds a severity the
    /// alert had in neither its own labels nor `common` (the labels every alert gets).
    pub fn into_spec(
        self,
        path: &str,
        name: &str,
        default_severity: &str,
        common: &Labels,
        findings: &Findings,
    ) -> Option<AlertTier> {
        if !self.disabled && self.label("severity", common).is_none() {
            findings.changed(
                format!("{path}.{name}"),
                format!(
                    "the {name} alert has no severity label in the source; Plimsoll adds \
                     severity: {default_severity}"
                ),
            );
        }
        let empty = !self.disabled && self.labels.is_empty() && self.annotations.is_empty();
        (!empty).then_some(AlertTier {
            disabled: self.disabled,
            labels: self.labels,
            annotations: self.annotations,
        })
    }

    /// The value of `key` on this tier's alert: its own label, else the common one.
    pub fn label<'a>(&'a self, key: &str, common: &'a Labels) -> Option<&'a String> {
        self.labels.get(key).or_else(|| common.get(key))
    }
}

/// Sloth labels the page alert `sloth_severity: page` and the ticket alert `ticket`
/// (alert_rules_v1), under the source's own labels: Alertmanager routes match on it, so it is
/// written into each enabled tier the source does not label itself. Returns the tiers labelled.
pub fn sloth_severity(page: &mut Tier, ticket: &mut Tier, common: &Labels) -> Vec<&'static str> {
    let mut labelled = Vec::new();
    for (tier, value) in [(page, "page"), (ticket, "ticket")] {
        if !tier.disabled && tier.label(SLOTH_SEVERITY, common).is_none() {
            tier.labels
                .insert(SLOTH_SEVERITY.to_string(), value.to_string());
            labelled.push(value);
        }
    }
    labelled
}

/// When both alerts carry the same severity (set once in `alerting.labels`, say), what tells
/// them apart.
pub fn same_severity_note(page: &Tier, ticket: &Tier, common: &Labels) -> Option<String> {
    if page.disabled || ticket.disabled {
        return None;
    }
    let severity = page
        .label("severity", common)
        .filter(|s| ticket.label("severity", common) == Some(*s))?;
    let apart = match (
        page.label(SLOTH_SEVERITY, common),
        ticket.label(SLOTH_SEVERITY, common),
    ) {
        (Some(p), Some(t)) if p != t => {
            format!("{SLOTH_SEVERITY} ({p} and {t}), as in Sloth")
        }
        _ => "nothing but the long and short windows Plimsoll labels each alert with".to_string(),
    };
    Some(format!(
        "both alerts carry severity: {severity} from the source; the page and ticket alerts are \
         told apart by {apart}"
    ))
}

/// An alert name prefix as Plimsoll's CRD takes it (`^[a-zA-Z_][a-zA-Z0-9_]*$`): other
/// characters become `_`, a leading digit gets one before it; a change is reported.
pub fn sanitised_alert_name(name: &str, path: &str, findings: &Findings) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    if out != name {
        findings.changed(
            path,
            format!(
                "{name:?} is not an alert name Prometheus accepts as a prefix \
                 ([a-zA-Z_][a-zA-Z0-9_]*); it is written {out:?}"
            ),
        );
    }
    out
}
