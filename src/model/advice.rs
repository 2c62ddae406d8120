//! Warnings: what is valid but most likely not meant. Errors refuse an SLO; these are shown beside
//! it (by `validate`, and by the admission webhook as warnings kubectl prints) and never stop it.

use std::fmt;

use super::{Indicator, Slo};

/// One warning at one field.
#[derive(Debug, Clone, PartialEq)]
pub struct Advice {
    /// Dotted path from the object's root, as in errors.
    pub path: &'static str,
    pub message: String,
}

impl fmt::Display for Advice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Latency thresholds above this many seconds are almost always milliseconds written as seconds:
/// a request budget of more than a minute is rare, a 200 ms one is common.
const LIKELY_MILLISECONDS_ABOVE: f64 = 60.0;

/// Everything about a valid SLO worth a second look.
pub fn advise(slo: &Slo) -> Vec<Advice> {
    let mut advice = Vec::new();
    let latency = match &slo.indicator {
        Indicator::Latency {
            histogram,
            threshold,
            ..
        } => Some(("spec.indicator.latency.threshold", histogram, *threshold)),
        Indicator::NativeLatency {
            histogram,
            threshold,
            ..
        } => Some((
            "spec.indicator.nativeLatency.threshold",
            histogram,
            *threshold,
        )),
        _ => None,
    };
    if let Some((path, histogram, threshold)) = latency
        && threshold > LIKELY_MILLISECONDS_ABOVE
        && !in_milliseconds(&histogram.metric)
    {
        advice.push(Advice {
            path,
            message: format!(
                "{threshold} is over {LIKELY_MILLISECONDS_ABOVE}: the threshold is in the \
                 histogram's unit, seconds by convention (`{}`), so requests of up to \
                 {threshold} s ({:.1} min) count as good; {threshold} ms is {}",
                histogram.metric,
                threshold / 60.0,
                threshold / 1000.0
            ),
        });
    }
    advice
}

/// A histogram whose name says it counts milliseconds (`_milliseconds`, `_ms`), where large
/// thresholds are meant.
fn in_milliseconds(metric: &str) -> bool {
    let base = metric.strip_suffix("_bucket").unwrap_or(metric);
    ["_milliseconds", "_millis", "_ms"]
        .iter()
        .any(|unit| base.ends_with(unit) || base.contains(&format!("{unit}_")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ServiceLevelObjective;
    use serde_json::json;

    /// A validated SLO with a latency indicator of `kind` (`latency` or `nativeLatency`).
    fn latency_of(kind: &str, histogram: &str, threshold: f64) -> Slo {
        let object: ServiceLevelObjective = serde_json::from_value(json!({
            "apiVersion": "plimsoll.dev/v1alpha1", "kind": "ServiceLevelObjective",
            "metadata": {"name": "a", "namespace": "n"},
            "spec": {"service": "s", "objective": 99.0, "window": "30d",
                     "indicator": {kind: {"histogram": histogram, "threshold": threshold}}},
        }))
        .unwrap();
        crate::model::validate(&object).unwrap()
    }

    fn latency(histogram: &str, threshold: f64) -> Slo {
        latency_of("latency", histogram, threshold)
    }

    #[test]
    fn a_threshold_over_a_minute_in_seconds_is_questioned_with_the_value_it_likely_means() {
        let advice = advise(&latency("http_request_duration_seconds{job=\"a\"}", 200.0));
        assert_eq!(advice.len(), 1, "{advice:?}");
        assert_eq!(advice[0].path, "spec.indicator.latency.threshold");
        assert!(advice[0].message.contains("200 ms is 0.2"), "{}", advice[0]);
        assert!(
            advice[0].message.contains("seconds by convention"),
            "{}",
            advice[0]
        );
    }

    #[test]
    fn a_native_histogram_s_threshold_is_questioned_alike() {
        let advice = advise(&latency_of("nativeLatency", "rpc_duration_seconds", 250.0));
        assert_eq!(advice.len(), 1, "{advice:?}");
        assert_eq!(advice[0].path, "spec.indicator.nativeLatency.threshold");
        assert!(
            advice[0].message.contains("250 ms is 0.25"),
            "{}",
            advice[0]
        );
    }

    #[test]
    fn a_minute_or_a_histogram_in_milliseconds_is_not_questioned() {
        assert!(advise(&latency("http_request_duration_seconds", 60.0)).is_empty());
        assert!(advise(&latency("http_request_duration_seconds", 0.2)).is_empty());
        assert!(advise(&latency("rpc_latency_milliseconds", 200.0)).is_empty());
        assert!(advise(&latency("request_ms", 250.0)).is_empty());
        assert!(advise(&latency_of("nativeLatency", "rpc_duration_ms", 250.0)).is_empty());
    }
}
