//! OpenSLO indicators: ratioMetric (good or bad over total), raw error ratios and
//! thresholdMetric, from Prometheus sources only.

use serde_json::Value;

use crate::api::Indicator;

use super::super::fields::Fields;
use super::super::finding::Findings;
use super::super::indicator::from_sli;
use super::super::promql::{self, Events, Form};
use super::comparison::Comparison;

/// What an SLI measures, before an objective gives it a target.
#[derive(Debug, Clone, PartialEq)]
pub enum Measure {
    /// `good` or `bad` over `total`; `counter: false` says they are not counters.
    Ratio {
        first: String,
        total: String,
        events: Events,
        counter: bool,
    },
    /// A raw ratio; `success` when it is the good share.
    Raw { query: String, success: bool },
    /// A metric compared with an objective's `op` and `value`.
    Threshold { query: String },
}

/// Reads a v1 SLI spec (`ratioMetric` / `thresholdMetric`); None when refused.
pub fn v1_spec(spec: &Fields) -> Option<Measure> {
    let f = spec.findings();
    if spec.text("description").is_some() {
        f.dropped(
            spec.path("description"),
            "the SLI's description; a Plimsoll SLO has one description, the SLO's",
        );
    }
    if let Some(ratio) = spec.object("ratioMetric") {
        let counter = ratio.flag("counter").unwrap_or(true);
        if let Some(raw) = ratio.object("raw") {
            let raw_type = ratio.text("rawType").unwrap_or_else(|| {
                f.changed(
                    ratio.path("rawType"),
                    "is missing (OpenSLO requires it with raw); read as failure: the query is \
                     the error ratio",
                );
                "failure".to_string()
            });
            let query = source_query(&raw)?;
            return Some(Measure::Raw {
                query,
                success: raw_type.eq_ignore_ascii_case("success"),
            });
        }
        let good = ratio.object("good");
        let bad = ratio.object("bad");
        let total = ratio.object("total");
        let total = match &total {
            Some(t) => source_query(t),
            None => {
                f.refused(ratio.path("total"), "is missing");
                None
            }
        };
        let (first, events) = match (good, bad) {
            (Some(_), Some(_)) => {
                f.refused(
                    ratio.here(),
                    "sets both good and bad; OpenSLO allows one of them (as Plimsoll's ratio takes \
                     one of errors or good)",
                );
                return None;
            }
            (Some(g), None) => (source_query(&g)?, Events::Good),
            (None, Some(b)) => (source_query(&b)?, Events::Bad),
            (None, None) => {
                f.refused(ratio.here(), "has neither good nor bad (nor raw)");
                return None;
            }
        };
        let total = total?;
        return Some(Measure::Ratio {
            first,
            total,
            events,
            counter,
        });
    }
    if let Some(threshold) = spec.object("thresholdMetric") {
        return source_query(&threshold).map(|query| Measure::Threshold { query });
    }
    f.refused(spec.here(), "holds neither ratioMetric nor thresholdMetric");
    None
}

/// Whether an SLI spec breaks OpenSLO's own schema, whatever its source: a ratioMetric takes one
/// of good and bad. Such an SLI is refused even when no SLO uses it (`oslo validate` rejects the
/// file too), while what Plimsoll merely cannot read (a Datadog source) matters only to an SLO
/// that uses it.
pub fn breaks_schema(spec: &Value) -> bool {
    let ratio = spec.get("ratioMetric");
    let set = |key: &str| ratio.and_then(|r| r.get(key)).is_some_and(|v| !v.is_null());
    set("good") && set("bad")
}

/// v1alpha: `{source, queryType, query}`; v1: `{metricSource: {type, metricSourceRef, spec: {query}}}`.
pub fn source_query(metric: &Fields) -> Option<String> {
    let f = metric.findings();
    if let Some(source) = metric.object("metricSource") {
        let kind = source.text("type").unwrap_or_default();
        if let Some(name) = source.text("metricSourceRef") {
            f.dropped(
                source.path("metricSourceRef"),
                format!("{name:?}: Plimsoll reads the Prometheus it is given (--prometheus-url)"),
            );
        }
        let Some(spec) = source.object("spec") else {
            f.refused(
                source.path("spec"),
                "is missing: a Prometheus source has spec.query",
            );
            return None;
        };
        if !kind.eq_ignore_ascii_case("prometheus") {
            spec.ignore(&spec.rest().iter().map(|(k, _)| *k).collect::<Vec<_>>());
            f.refused(
                source.path("type"),
                format!("unsupported metricSource type {kind:?}: Plimsoll reads Prometheus only"),
            );
            return None;
        }
        return query_text(&spec);
    }
    let source = metric.text("source").unwrap_or_default();
    metric.ignore(&["queryType"]);
    if !source.eq_ignore_ascii_case("prometheus") {
        metric.ignore(&["query"]);
        f.refused(
            metric.path("source"),
            format!("unsupported source {source:?}: Plimsoll reads Prometheus only"),
        );
        return None;
    }
    query_text(metric)
}

fn query_text(spec: &Fields) -> Option<String> {
    let query = spec.text("query");
    if query.is_none() {
        spec.findings()
            .refused(spec.path("query"), "is missing: the PromQL query");
    }
    query
}

/// The Plimsoll indicator of a measure, reported at `path`; a thresholdMetric needs the
/// objective's comparison.
pub fn indicator(
    measure: &Measure,
    comparison: Option<Comparison>,
    path: &str,
    f: &Findings,
) -> Option<Indicator> {
    match measure {
        Measure::Ratio {
            first,
            total,
            events,
            counter,
        } => {
            // Queries that are not counters are never read as counts.
            let form = if *counter {
                Form::Plain
            } else {
                Form::Windowed
            };
            if !counter {
                f.changed(path, "counter: false: the queries are not read as counters");
            }
            from_sli(promql::events(first, total, *events, form), path, f)
        }
        Measure::Raw { query, success } => {
            let converted = promql::error_ratio(query, Form::Windowed).map(|sli| match sli {
                promql::Sli::Query {
                    error_ratio,
                    as_written,
                } if *success => promql::Sli::Query {
                    error_ratio: format!("1 - ({error_ratio})"),
                    as_written,
                },
                promql::Sli::Ratio(mut ratio) if *success => {
                    ratio.good = ratio.errors.take();
                    promql::Sli::Ratio(ratio)
                }
                other => other,
            });
            if *success {
                f.changed(
                    path,
                    "rawType: success: the error ratio is 1 - (query); a query that already \
                     computes 1 - ratio is negated twice, as the source says",
                );
            }
            from_sli(converted, path, f)
        }
        Measure::Threshold { query } => threshold(query, comparison, path, f),
    }
}

/// A thresholdMetric as the share of its points that miss the comparison: each series' value
/// every minute is one event, good when it compares as the objective says. OpenSLO counts the
/// data source's own points, which have no fixed resolution in Prometheus, so this is reported
/// as the approximation it is.
fn threshold(
    query: &str,
    comparison: Option<Comparison>,
    path: &str,
    f: &Findings,
) -> Option<Indicator> {
    let query = one_line(query);
    let Some(Comparison { op, value }) = comparison else {
        f.refused(
            path,
            format!(
                "a thresholdMetric ({query}) is compared with the op and value of the objective \
                 that uses it, and there is none"
            ),
        );
        return None;
    };
    let bad = op.negated().promql();
    let error_ratio = format!(
        "sum(sum_over_time((({query}) {bad} bool {value})[$window:1m])) \
         / sum(count_over_time(({query})[$window:1m]))"
    );
    f.changed(
        path,
        format!(
            "a thresholdMetric becomes indicator.query: the share of points, one per series and \
             minute, where ({query}) {} {value} does not hold (op read literally: a point is good \
             when it is {} {value}); OpenSLO counts the data source's own points, so check that \
             a minute's resolution fits the metric",
            op.promql(),
            op.promql()
        ),
    );
    from_sli(Ok(promql::Sli::query(error_ratio)), path, f)
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// True when a value is an OpenSLO object of `kind` (inline, with its own metadata and spec).
pub fn is_inline(value: &Value, kind: &str) -> bool {
    value.get("kind").and_then(Value::as_str) == Some(kind) || value.get("spec").is_some()
}
