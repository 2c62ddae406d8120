//! From a converted SLI to the Plimsoll indicator, with the reports every format shares.

use crate::api::{Indicator, QueryIndicator};

use super::fields::Fields;
use super::finding::Findings;
use super::promql::Sli;

/// The indicator, reporting a query fallback and a rewritten `le`; a query that cannot be read
/// refuses the SLO (reported at `path`).
pub fn from_sli(
    converted: Result<Sli, String>,
    path: &str,
    findings: &Findings,
) -> Option<Indicator> {
    match converted {
        Err(why) => {
            findings.refused(path, why);
            None
        }
        Ok(Sli::Ratio(ratio)) => Some(Indicator {
            ratio: Some(ratio),
            ..Indicator::default()
        }),
        Ok(Sli::Latency {
            indicator,
            le_written,
        }) => {
            if let Some(le) = le_written {
                findings.changed(
                    path,
                    format!(
                        "le=\"{le}\" is the threshold {}; Plimsoll's bucket selector matches both \
                         spellings Prometheus writes (\"5\" in 2.x, \"5.0\" in 3.x)",
                        indicator.threshold
                    ),
                );
            }
            if indicator.histogram.contains("_milliseconds") {
                findings.changed(
                    path,
                    format!(
                        "the histogram counts milliseconds, so the threshold {} is in \
                         milliseconds (no generated rule or description assumes seconds)",
                        indicator.threshold
                    ),
                );
            }
            Some(Indicator {
                latency: Some(indicator),
                ..Indicator::default()
            })
        }
        Ok(Sli::Query {
            error_ratio,
            as_written,
        }) => {
            if error_ratio.contains("[$window:") {
                findings.changed(
                    path,
                    "a subquery over $window: every evaluation runs the inner query once per step of \
                     the window (Plimsoll gives it windows up to 1h; longer ones average its 5m \
                     ratios), which costs more than a rate",
                );
            }
            // A source that divides its counters as written gets the reason, not the general
            // "not a rate of counters", which would hide that the source's own ratio is off.
            findings.changed(
                path,
                as_written.unwrap_or_else(|| {
                    "not a plain rate of counters, so it becomes indicator.query (a query \
                     fallback): it has no counts, so the long windows average its 5m ratios \
                     instead of summing events, and there is no groupBy"
                        .to_string()
                }),
            );
            Some(Indicator {
                query: Some(QueryIndicator { error_ratio }),
                ..Indicator::default()
            })
        }
    }
}

/// Refuses an SLI block that holds none of the forms the format allows.
pub fn missing(block: &Fields, forms: &str) -> Option<Indicator> {
    block
        .findings()
        .refused(block.here(), format!("holds none of {forms}"));
    None
}
