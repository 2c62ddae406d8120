//! Counters out of the PromQL other tools write: `sum(rate(SEL[{{.window}}])) by (L)` is the
//! counter `SEL` with `groupBy: [L]`, a count minus a bucket is a latency threshold, and
//! anything else stays a free query with `$window`.

use std::time::Duration;

use promql_parser::parser::LabelModifier;
use promql_parser::parser::{self, Expr};

use crate::api::{LatencyIndicator, RatioIndicator};
use crate::model::promql::{MatchKind, Selector, WINDOW_PLACEHOLDER, selector_of};

/// What `{{.window}}` is replaced by while a query is parsed: a range no one writes.
const STAND_IN: &str = "8765431s";
const STAND_IN_SECONDS: u64 = 8_765_431;

/// How the source writes its counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// Sloth: `sum(rate(SEL[{{.window}}]))`; a bare selector is not a count.
    Windowed,
    /// Pyrra and OpenSLO: a selector (or `sum(SEL)`) of a counter; the windowed form is taken too.
    Plain,
}

/// Whether the first query counts failures or successes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Events {
    Bad,
    Good,
}

/// The indicator read out of a pair of queries.
#[derive(Debug, Clone, PartialEq)]
pub enum Sli {
    Ratio(RatioIndicator),
    Latency {
        indicator: LatencyIndicator,
        /// The `le` text as the source wrote it, when it is not how Plimsoll writes the number.
        le_written: Option<String>,
    },
    /// No counters: an error-ratio query with `$window`.
    Query(String),
}

/// A counter and the labels its sum keeps.
#[derive(Debug, Clone, PartialEq)]
struct Counter {
    selector: Selector,
    by: Vec<String>,
}

/// Sloth's `{{.window}}` (also `{{ .window }}`) replaced by `with`.
pub fn replace_window(text: &str, with: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start..].find("}}") else {
            break;
        };
        let inner = rest[start + 2..start + len].trim();
        out.push_str(&rest[..start]);
        if inner == ".window" {
            out.push_str(with);
        } else {
            out.push_str(&rest[start..start + len + 2]);
        }
        rest = &rest[start + len + 2..];
    }
    out.push_str(rest);
    out
}

/// True when the text uses Sloth's window placeholder.
pub fn has_window(text: &str) -> bool {
    replace_window(text, STAND_IN) != text
}

/// Parses a source query with its window placeholder filled in.
pub fn parse(text: &str) -> Result<Expr, String> {
    parser::parse(&replace_window(text, STAND_IN))
}

/// The indicator of a failures-or-successes query over a total query.
pub fn events(first: &str, total: &str, events: Events, form: Form) -> Result<Sli, String> {
    let first_expr = parse(first).map_err(|e| format!("is not PromQL: {e}"))?;
    let total_expr = parse(total).map_err(|e| format!("the total is not PromQL: {e}"))?;
    let total_counter = counter(&total_expr, form);
    if let Some(total) = &total_counter {
        let latency = match events {
            Events::Bad => count_minus_bucket(&first_expr, form),
            Events::Good => counter(&first_expr, form).and_then(|c| bucket_of(&c)),
        };
        if let Some((bucket, le)) = latency
            && let Some(sli) = latency_sli(&bucket, le, total)
        {
            return Ok(sli);
        }
        if let Some(first) = counter(&first_expr, form)
            && first.by == total.by
        {
            let (errors, good) = match events {
                Events::Bad => (Some(first.selector.to_string()), None),
                Events::Good => (None, Some(first.selector.to_string())),
            };
            return Ok(Sli::Ratio(RatioIndicator {
                errors,
                good,
                total: total.selector.to_string(),
                group_by: total.by.clone(),
            }));
        }
    }
    // Two counters that are not a ratio differ in their `by`: they match no common series, and
    // any query of them would mean something else.
    if let (Some(f), Some(t)) = (counter(&first_expr, form), &total_counter) {
        return Err(format!(
            "sums by ({}) over a total by ({}): the two sides match no common series; give both \
             the same `by`",
            f.by.join(", "),
            t.by.join(", ")
        ));
    }
    let (first, total) = (windowed(first, form)?, windowed(total, form)?);
    Ok(Sli::Query(match events {
        Events::Bad => format!("({first}) / ({total})"),
        Events::Good => format!("1 - (({first}) / ({total}))"),
    }))
}

/// An error-ratio query: a ratio of two counters when it is one, else the query with `$window`.
pub fn error_ratio(text: &str, form: Form) -> Result<Sli, String> {
    let expr = parse(text).map_err(|e| format!("is not PromQL: {e}"))?;
    if let Expr::Binary(b) = strip(&expr)
        && b.op.to_string() == "/"
        && b.modifier.is_none()
        && let (Some(errors), Some(total)) = (counter(&b.lhs, form), counter(&b.rhs, form))
        && errors.by == total.by
    {
        return Ok(Sli::Ratio(RatioIndicator {
            errors: Some(errors.selector.to_string()),
            good: None,
            total: total.selector.to_string(),
            group_by: total.by,
        }));
    }
    windowed(text, form)
        .map(|q| q.trim().to_string())
        .map(Sli::Query)
}

/// The query with `$window`; a plain query without a window cannot be evaluated per window.
fn windowed(text: &str, form: Form) -> Result<String, String> {
    if !has_window(text) {
        let why = match form {
            Form::Windowed => "has no {{.window}} placeholder",
            Form::Plain => "is neither a counter selector nor a query with {{.window}}",
        };
        return Err(format!(
            "{why}, so it cannot be measured over each window; write it as a counter selector \
             or with {{{{.window}}}} in its range"
        ));
    }
    Ok(replace_window(text.trim(), WINDOW_PLACEHOLDER))
}

fn strip(expr: &Expr) -> &Expr {
    match expr {
        Expr::Paren(p) => strip(&p.expr),
        other => other,
    }
}

/// `sum(rate(SEL[window])) by (L)`, `sum(increase(...))`, and in the plain form `SEL` and
/// `sum(SEL) by (L)`.
fn counter(expr: &Expr, form: Form) -> Option<Counter> {
    match strip(expr) {
        Expr::Aggregate(a) if a.op.to_string() == "sum" && a.param.is_none() => {
            let by = match &a.modifier {
                None => Vec::new(),
                Some(LabelModifier::Include(labels)) => labels.labels.clone(),
                Some(LabelModifier::Exclude(_)) => return None,
            };
            counted(&a.expr, form).map(|selector| Counter { selector, by })
        }
        Expr::VectorSelector(vs) if form == Form::Plain => {
            selector_of(vs).ok().map(|selector| Counter {
                selector,
                by: Vec::new(),
            })
        }
        _ => None,
    }
}

fn counted(expr: &Expr, form: Form) -> Option<Selector> {
    match strip(expr) {
        Expr::Call(call)
            if matches!(call.func.name, "rate" | "increase") && call.args.args.len() == 1 =>
        {
            match call.args.args.first().map(|a| strip(a)) {
                Some(Expr::MatrixSelector(m))
                    if m.range == Duration::from_secs(STAND_IN_SECONDS) =>
                {
                    selector_of(&m.vs).ok()
                }
                _ => None,
            }
        }
        Expr::VectorSelector(vs) if form == Form::Plain => selector_of(vs).ok(),
        _ => None,
    }
}

/// `count - bucket`, both counters with the same sum labels: the bucket and its `le`.
fn count_minus_bucket(expr: &Expr, form: Form) -> Option<(Counter, String)> {
    let Expr::Binary(b) = strip(expr) else {
        return None;
    };
    if b.op.to_string() != "-" || b.modifier.is_some() {
        return None;
    }
    let (count, bucket) = (counter(&b.lhs, form)?, counter(&b.rhs, form)?);
    let (bucket, le) = bucket_of(&bucket)?;
    let same = count.by == bucket.by
        && count.selector.metric.strip_suffix("_count")
            == bucket.selector.metric.strip_suffix("_bucket")
        && same_matchers(&count.selector, &bucket.selector);
    same.then_some((bucket, le))
}

/// A `_bucket` counter with an `le="T"` matcher: the counter without `le`, and T.
fn bucket_of(counter: &Counter) -> Option<(Counter, String)> {
    counter.selector.metric.strip_suffix("_bucket")?;
    let le = counter
        .selector
        .matchers
        .iter()
        .find(|m| m.name == "le" && m.op == MatchKind::Equal)?
        .value
        .clone();
    let mut without = counter.clone();
    without.selector.matchers.retain(|m| m.name != "le");
    Some((without, le))
}

/// The latency indicator when the total is the bucket's `_count` with the same matchers.
fn latency_sli(bucket: &Counter, le: String, total: &Counter) -> Option<Sli> {
    let base = bucket.selector.metric.strip_suffix("_bucket")?;
    let fits = total.selector.metric.strip_suffix("_count") == Some(base)
        && bucket.by == total.by
        && same_matchers(&bucket.selector, &total.selector);
    if !fits {
        return None;
    }
    let threshold: f64 = le.trim().parse().ok().filter(|t: &f64| t.is_finite())?;
    let le_written = (threshold.to_string() != le).then_some(le);
    Some(Sli::Latency {
        indicator: LatencyIndicator {
            histogram: total.selector.with_metric(base).to_string(),
            threshold,
            group_by: total.by.clone(),
        },
        le_written,
    })
}

/// The same label matchers in any order.
fn same_matchers(a: &Selector, b: &Selector) -> bool {
    a.matchers.len() == b.matchers.len() && a.matchers.iter().all(|m| b.matchers.contains(m))
}

#[cfg(test)]
#[path = "promql_tests.rs"]
mod tests;
