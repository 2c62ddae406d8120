//! Alert settings shared by the formats: a tier's labels and annotations, and alert names that
//! Plimsoll's CRD accepts.

use crate::api::AlertTier;
use crate::small_map::SmallMap;

use super::fields::Fields;
use super::finding::Findings;

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
    /// source did not have.
    pub fn into_spec(
        self,
        path: &str,
        name: &str,
        default_severity: &str,
        findings: &Findings,
    ) -> Option<AlertTier> {
        if !self.disabled && !self.labels.contains_key("severity") {
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
