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
    Query {
        error_ratio: String,
        /// Why the source's counters were kept as written rather than read as counts.
        as_written: Option<String>,
    },
}

impl Sli {
    /// A query fallback with nothing more to say than that it is one.
    pub fn query(error_ratio: String) -> Sli {
        Sli::Query {
            error_ratio,
            as_written: None,
        }
    }
}

/// How a windowed counter is counted; a ratio needs the same on both sides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Count {
    Rate,
    Increase,
}

impl Count {
    fn name(self) -> &'static str {
        match self {
            Count::Rate => "rate",
            Count::Increase => "increase",
        }
    }
}

/// A counter and the labels its sum keeps.
#[derive(Debug, Clone, PartialEq)]
struct Counter {
    selector: Selector,
    by: Vec<String>,
    /// None for a plain selector, which the source counts itself.
    count: Option<Count>,
}

impl Counter {
    /// Two counters that divide as counts: the same labels kept (in any order, as PromQL
    /// reads `by`) and counted alike.
    fn matches(&self, other: &Counter) -> bool {
        same_labels(&self.by, &other.by) && alike(self.count, other.count)
    }
}

/// `rate` over `increase` is a ratio scaled by the window's seconds, not a share of events; a
/// plain selector is counted by the source itself and goes with either.
fn alike(a: Option<Count>, b: Option<Count>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    }
}

/// `by` lists name sets of labels.
fn same_labels(a: &[String], b: &[String]) -> bool {
    a.iter().all(|l| b.contains(l)) && b.iter().all(|l| a.contains(l))
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
    if let Some(sli) = from_counters(&first_expr, &total_expr, events, form) {
        return Ok(sli);
    }
    // Two counters that are not a ratio and differ in their `by`: they match no common series,
    // and any query of them would mean something else.
    if let (Some(f), Some(t)) = (counter(&first_expr, form), counter(&total_expr, form))
        && !same_labels(&f.by, &t.by)
    {
        return Err(format!(
            "sums by ({}) over a total by ({}): the two sides match no common series; give both \
             the same `by`",
            f.by.join(", "),
            t.by.join(", ")
        ));
    }
    let role = match events {
        Events::Bad => "the error query",
        Events::Good => "the good query",
    };
    let as_written = mixed(count_of(&first_expr, form), count_of(&total_expr, form))
        .map(|counts| scaled(role, "the total", counts, form));
    let (first, total) = (windowed(first, form)?, windowed(total, form)?);
    let error_ratio = match events {
        Events::Bad => format!("({first}) / ({total})"),
        Events::Good => format!("1 - (({first}) / ({total}))"),
    };
    Ok(Sli::Query {
        error_ratio,
        as_written,
    })
}

/// The latency or ratio indicator when both queries are counters that divide as counts.
fn from_counters(first: &Expr, total: &Expr, events: Events, form: Form) -> Option<Sli> {
    let total = counter(total, form)?;
    let latency = match events {
        Events::Bad => count_minus_bucket(first, form),
        Events::Good => counter(first, form).and_then(|c| bucket_of(&c)),
    };
    if let Some((bucket, le)) = latency
        && let Some(sli) = latency_sli(&bucket, le, &total)
    {
        return Some(sli);
    }
    let first = counter(first, form).filter(|c| c.matches(&total))?;
    let (errors, good) = match events {
        Events::Bad => (Some(first.selector.to_string()), None),
        Events::Good => (None, Some(first.selector.to_string())),
    };
    Some(Sli::Ratio(RatioIndicator {
        errors,
        good,
        total: total.selector.to_string(),
        group_by: total.by,
    }))
}

/// An error-ratio query: a ratio of two counters when it is one, else the query with `$window`.
pub fn error_ratio(text: &str, form: Form) -> Result<Sli, String> {
    let expr = parse(text).map_err(|e| format!("is not PromQL: {e}"))?;
    let mut as_written = None;
    if let Expr::Binary(b) = strip(&expr)
        && b.op.to_string() == "/"
        && b.modifier.is_none()
    {
        if let (Some(errors), Some(total)) = (counter(&b.lhs, form), counter(&b.rhs, form))
            && errors.matches(&total)
        {
            return Ok(Sli::Ratio(RatioIndicator {
                errors: Some(errors.selector.to_string()),
                good: None,
                total: total.selector.to_string(),
                group_by: total.by,
            }));
        }
        as_written = mixed(count_of(&b.lhs, form), count_of(&b.rhs, form))
            .map(|counts| scaled("the numerator", "the denominator", counts, form));
    }
    let error_ratio = windowed(text, form)?.trim().to_string();
    Ok(Sli::Query {
        error_ratio,
        as_written,
    })
}

/// How a counter or a count-minus-bucket is counted, when it is one of those.
fn count_of(expr: &Expr, form: Form) -> Option<Count> {
    counter(expr, form)
        .or_else(|| count_minus_bucket(expr, form).map(|(bucket, _)| bucket))
        .and_then(|c| c.count)
}

/// Both sides counted, each its own way.
fn mixed(a: Option<Count>, b: Option<Count>) -> Option<(Count, Count)> {
    match (a, b) {
        (Some(a), Some(b)) if a != b => Some((a, b)),
        _ => None,
    }
}

/// Why a rate over an increase (or the reverse) stays as written: the source divides the two
/// as they are, and reading them as counts would silently repair what it computes.
fn scaled(first: &str, second: &str, (a, b): (Count, Count), form: Form) -> String {
    let who = match form {
        Form::Windowed => "Sloth",
        Form::Plain => "the source",
    };
    format!(
        "{first} uses {} and {second} {} (increase counts the window's events, rate their mean \
         per second): {who} divides them as written, so the ratio is scaled by the window's \
         seconds; kept as written in indicator.query (a query fallback: no counts, no groupBy) \
         — fix the source",
        a.name(),
        b.name()
    )
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
            inside_sum(&a.expr, form).map(|(selector, count)| Counter {
                selector,
                by,
                count,
            })
        }
        Expr::VectorSelector(vs) if form == Form::Plain => {
            selector_of(vs).ok().map(|selector| Counter {
                selector,
                by: Vec::new(),
                count: None,
            })
        }
        _ => None,
    }
}

/// What a sum adds up: `rate` or `increase` over the window, or in the plain form a selector.
fn inside_sum(expr: &Expr, form: Form) -> Option<(Selector, Option<Count>)> {
    match strip(expr) {
        Expr::Call(call) if call.args.args.len() == 1 => {
            let count = match call.func.name {
                "rate" => Count::Rate,
                "increase" => Count::Increase,
                _ => return None,
            };
            match call.args.args.first().map(|a| strip(a)) {
                Some(Expr::MatrixSelector(m))
                    if m.range == Duration::from_secs(STAND_IN_SECONDS) =>
                {
                    selector_of(&m.vs).ok().map(|s| (s, Some(count)))
                }
                _ => None,
            }
        }
        Expr::VectorSelector(vs) if form == Form::Plain => selector_of(vs).ok().map(|s| (s, None)),
        _ => None,
    }
}

/// `count - bucket`, both counters with the same sum labels, counted alike: the bucket and its
/// `le`.
fn count_minus_bucket(expr: &Expr, form: Form) -> Option<(Counter, String)> {
    let Expr::Binary(b) = strip(expr) else {
        return None;
    };
    if b.op.to_string() != "-" || b.modifier.is_some() {
        return None;
    }
    let (count, bucket) = (counter(&b.lhs, form)?, counter(&b.rhs, form)?);
    let (bucket, le) = bucket_of(&bucket)?;
    let same = count.matches(&bucket)
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
        && bucket.matches(total)
        && same_matchers(&bucket.selector, &total.selector);
    if !fits {
        return None;
    }
    let threshold: f64 = le.trim().parse().ok().filter(|t: &f64| t.is_finite())?;
    // Plimsoll's bucket selector matches the spellings Prometheus writes (`0.25`; `5` and
    // `5.0`); a bucket the source names otherwise (`0.250`) stays as written, in a ratio.
    let spellings = crate::rules::le_spellings(threshold);
    if !spellings.contains(&le) {
        return None;
    }
    let le_written = (spellings.first() != Some(&le)).then_some(le);
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
