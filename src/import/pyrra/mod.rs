//! Pyrra: `pyrra.dev/v1alpha1` ServiceLevelObjective objects (and the group-less `v1alpha1` its
//! filesystem mode writes). Pyrra's selectors are plain counters already; it adds the rates.

mod alerting;

use crate::api::{GaugeIndicator, Indicator, NativeLatencyIndicator, ServiceLevelObjectiveSpec};
use crate::model::promql::parse_selector;

use super::Draft;
use super::fields::{Fields, join};
use super::indicator::{self, from_sli};
use super::promql::{self, Events, Form};

/// Pyrra's prefix for labels and annotations it passes on to the alerts.
const PREFIX: &str = "pyrra.dev/";

/// Where a Pyrra object's metadata goes.
#[derive(Default)]
struct Meta {
    name: Option<String>,
    namespace: Option<String>,
    service: Option<String>,
    labels: Vec<(String, String)>,
    annotations: Vec<(String, String)>,
}

/// One Pyrra ServiceLevelObjective.
pub(super) fn object(doc: &Fields) -> Vec<Draft> {
    let f = doc.findings();
    if doc.take("apiVersion").and_then(|v| v.as_str()) == Some("v1alpha1") {
        f.changed(
            "apiVersion",
            "v1alpha1 without a group is what Pyrra's filesystem mode writes; read as \
             pyrra.dev/v1alpha1",
        );
    }
    doc.ignore(&["kind", "status"]);
    let meta = doc
        .object("metadata")
        .map(|m| metadata(&m))
        .unwrap_or_default();
    let Some(name) = meta.name.clone() else {
        f.refused(
            "metadata.name",
            "is missing: the SLO is named after the Pyrra object",
        );
        return Vec::new();
    };
    let Some(spec) = doc.object("spec") else {
        f.refused(
            "spec",
            "is missing: a Pyrra SLO needs spec.target, window and indicator",
        );
        return Vec::new();
    };
    let service = meta.service.clone().unwrap_or_else(|| name.clone());
    let how = if meta.service.is_some() {
        "from the pyrra.dev/service label"
    } else {
        "from metadata.name (Pyrra has no service field; a pyrra.dev/service label would name it)"
    };
    f.changed(
        "metadata.name",
        format!("spec.service is {service:?}, {how}"),
    );
    body(&spec, name, service, meta).into_iter().collect()
}

fn body(spec: &Fields, name: String, service: String, meta: Meta) -> Option<Draft> {
    let f = spec.findings();
    let objective = match spec.number("target") {
        Some(Ok(t)) => Some(t),
        Some(Err(e)) => {
            f.refused(spec.path("target"), e);
            None
        }
        None => {
            f.refused(
                spec.path("target"),
                "is missing: the target in percent, such as \"99.9\"",
            );
            None
        }
    };
    let window = spec.text("window").map(|w| in_days(spec, w));
    if window.is_none() {
        f.refused(
            spec.path("window"),
            "is missing: Pyrra's window, such as 4w",
        );
    }
    let description = spec.text("description").filter(|d| !d.is_empty());
    let indicator = spec.object("indicator").and_then(|i| indicator_of(&i));
    let mut labels = meta.labels;
    if let Some(indicator) = &indicator {
        labels.extend(alerting::selector_labels(spec, indicator));
    }
    let alerting = alerting::alerting(spec, &name, labels, meta.annotations);
    f.changed(
        spec.path("alerting"),
        "Pyrra's burn-rate windows and factors (scaled to the window) are replaced by \
         Plimsoll's tiers: page 14.4x over 1h/5m and 6x over 6h/30m, ticket 3x over 1d/2h and 1x \
         over 3d/6h (scaled to the window)",
    );
    Some(Draft {
        name,
        namespace: meta.namespace,
        spec: ServiceLevelObjectiveSpec {
            service,
            description,
            objective: objective?,
            window: window?,
            indicator: indicator?,
            alerting: Some(alerting),
            ..ServiceLevelObjectiveSpec::default()
        },
        item: "spec".to_string(),
        format: "Pyrra pyrra.dev/v1alpha1",
    })
}

fn metadata(meta: &Fields) -> Meta {
    let f = meta.findings();
    let mut out = Meta {
        name: meta.text("name"),
        namespace: meta.text("namespace"),
        ..Meta::default()
    };
    meta.ignore(&["creationTimestamp", "uid", "resourceVersion", "generation"]);
    for (k, v) in meta.string_map("labels") {
        let path = join(&meta.path("labels"), &k);
        match k.strip_prefix(PREFIX) {
            Some(label) => {
                if label == "service" {
                    out.service = Some(v.clone());
                }
                f.changed(
                    path,
                    format!(
                        "goes to alerting.labels as {label}={v}; Pyrra also puts it on the \
                         recording rules, Plimsoll only on the alerts"
                    ),
                );
                out.labels.push((label.to_string(), v));
            }
            None => f.dropped(
                path,
                format!(
                    "{k}={v} selects the generated PrometheusRule for a Prometheus; a Plimsoll SLO \
                     has no such field (`plimsoll generate --rule-label {k}={v}`, or the \
                     operator's rule labels, do it); Pyrra does not pass it to the alerts"
                ),
            ),
        }
    }
    for (k, v) in meta.string_map("annotations") {
        let path = join(&meta.path("annotations"), &k);
        match k.strip_prefix(PREFIX) {
            Some(annotation) => out.annotations.push((annotation.to_string(), v)),
            None => f.dropped(
                path,
                "not a pyrra.dev/ annotation, so not an alert's; not carried over",
            ),
        }
    }
    out
}

/// ratio, latency, latencyNative, bool_gauge.
fn indicator_of(ind: &Fields) -> Option<Indicator> {
    let f = ind.findings();
    if let Some(ratio) = ind.object("ratio") {
        let errors = metric(&ratio, "errors")?;
        let total = metric(&ratio, "total")?;
        let converted = promql::events(&errors, &total, Events::Bad, Form::Plain);
        let mut indicator = from_sli(converted, &ratio.path("errors"), f)?;
        group(&ratio, &mut indicator);
        return Some(indicator);
    }
    if let Some(latency) = ind.object("latency") {
        let success = metric(&latency, "success")?;
        let total = metric(&latency, "total")?;
        let converted = promql::events(&success, &total, Events::Good, Form::Plain);
        let mut indicator = from_sli(converted, &latency.path("success"), f)?;
        if indicator.latency.is_none() {
            f.changed(
                latency.path("success"),
                "the success bucket and the total do not have the same matchers (besides le), \
                 or le is not spelled as Prometheus writes the number (such as \"0.250\" for \
                 0.25), so this is no Plimsoll latency indicator: it becomes a ratio of the \
                 bucket as good events over the total, with both selectors as the source has \
                 them (check the source: different matchers are usually a mistake)",
            );
        }
        group(&latency, &mut indicator);
        return Some(indicator);
    }
    if let Some(native) = ind.object("latencyNative") {
        return native_latency(&native);
    }
    if let Some(gauge) = ind.object("bool_gauge") {
        let text = metric_text(&gauge)?;
        if let Err(e) = parse_selector(&text) {
            f.refused(
                gauge.path("metric"),
                format!("is not a plain selector: {e}"),
            );
            return None;
        }
        let group_by = grouping(&gauge);
        return Some(Indicator {
            gauge: Some(GaugeIndicator {
                metric: text,
                group_by,
            }),
            ..Indicator::default()
        });
    }
    indicator::missing(ind, "ratio, latency, latencyNative or bool_gauge")
}

/// Pyrra's latencyNative: `latency` (a Prometheus duration) over the native histogram
/// `total.metric`, good below it. Plimsoll's nativeLatency counts the same events: Pyrra's good
/// share is `histogram_fraction(0, latency, ...)`, ours the complement of
/// `histogram_fraction(latency, +Inf, ...)`; they differ only for observations below 0, which no
/// latency has.
fn native_latency(native: &Fields) -> Option<Indicator> {
    let f = native.findings();
    let histogram = metric(native, "total")?;
    if let Err(e) = parse_selector(&histogram) {
        f.refused(
            native.path("total"),
            format!("is not a plain selector of the native histogram: {e}"),
        );
        return None;
    }
    let Some(latency) = native.text("latency") else {
        f.refused(
            native.path("latency"),
            "is missing: the threshold as a duration, such as 200ms",
        );
        return None;
    };
    let threshold = match duration_seconds(&latency) {
        Some(seconds) if seconds > 0.0 => seconds,
        _ => {
            f.refused(
                native.path("latency"),
                format!("{latency:?} is not a positive Prometheus duration such as 200ms or 1s"),
            );
            return None;
        }
    };
    f.changed(
        native.path("latency"),
        format!(
            "{latency} is the threshold {threshold} (seconds, the native histogram's unit by \
             convention); the count is exact only when it is a bucket boundary of the histogram \
             (check with plimsoll validate --prometheus-url)"
        ),
    );
    Some(Indicator {
        native_latency: Some(NativeLatencyIndicator {
            histogram,
            threshold,
            group_by: grouping(native),
        }),
        ..Indicator::default()
    })
}

/// A Prometheus duration (`200ms`, `1s`, `1m30s`) in seconds; `None` when it is not one.
fn duration_seconds(text: &str) -> Option<f64> {
    const UNITS: [(&str, u64); 7] = [
        ("ms", 1),
        ("s", 1_000),
        ("m", 60_000),
        ("h", 3_600_000),
        ("d", 86_400_000),
        ("w", 604_800_000),
        ("y", 31_536_000_000),
    ];
    let mut rest = text;
    let mut millis: u64 = 0;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        if digits == 0 {
            return None;
        }
        let number: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (_, scale) = UNITS.iter().find(|(u, _)| *u == &rest[..unit_len])?;
        millis = millis.checked_add(number.checked_mul(*scale)?)?;
        rest = &rest[unit_len..];
    }
    Some(millis as f64 / 1000.0)
}

/// `{metric: SEL}` under `key`.
fn metric(block: &Fields, key: &'static str) -> Option<String> {
    let f = block.findings();
    let Some(query) = block.object(key) else {
        f.refused(block.path(key), "is missing: {metric: <selector>}");
        return None;
    };
    metric_text(&query)
}

fn metric_text(query: &Fields) -> Option<String> {
    let text = query.text("metric");
    if text.is_none() {
        query
            .findings()
            .refused(query.path("metric"), "is missing: a selector");
    }
    text
}

fn grouping(block: &Fields) -> Vec<String> {
    block
        .list("grouping")
        .into_iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

/// Pyrra's grouping becomes groupBy; a query fallback cannot keep it.
fn group(block: &Fields, indicator: &mut Indicator) {
    let labels = grouping(block);
    if labels.is_empty() {
        return;
    }
    if let Some(ratio) = &mut indicator.ratio {
        ratio.group_by = labels;
    } else if let Some(latency) = &mut indicator.latency {
        latency.group_by = labels;
    } else if let Some(native) = &mut indicator.native_latency {
        native.group_by = labels;
    } else {
        block.findings().dropped(
            block.path("grouping"),
            "indicator.query has no groupBy: the budget is one for all groups",
        );
    }
}

/// Pyrra reads its window with Prometheus' duration parser, where `y` is 365 days; Plimsoll's
/// windows have no years.
fn in_days(spec: &Fields, window: String) -> String {
    let Some(years) = window.strip_suffix('y').and_then(|n| n.parse::<u32>().ok()) else {
        return window;
    };
    let days = format!("{}d", u64::from(years) * 365);
    spec.findings().changed(
        spec.path("window"),
        format!("{window} is {days} (Prometheus' y is 365 days)"),
    );
    days
}
