//! PromQL inputs: plain vector selectors for the counter-based indicators, and the free
//! `query.errorRatio` template. Parsing uses `promql-parser`, Prometheus' grammar in Rust.

use std::fmt;

use promql_parser::label::MatchOp;
use promql_parser::parser::value::ValueType;
use promql_parser::parser::{self, Expr};
use promql_parser::util::{ExprVisitor, walk_expr};

use super::error::Problem;
use super::names::{is_label_name, is_metric_name};

/// The placeholder in `query.errorRatio` that each window replaces.
pub const WINDOW_PLACEHOLDER: &str = "$window";

/// A metric name with label matchers, such as `http_requests_total{job="checkout",code=~"5.."}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Selector {
    pub metric: String,
    pub matchers: Vec<LabelMatcher>,
}

/// One label matcher of a selector.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LabelMatcher {
    pub name: String,
    pub op: MatchKind,
    pub value: String,
}

/// The four PromQL matcher operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchKind {
    Equal,
    NotEqual,
    Regex,
    NotRegex,
}

impl MatchKind {
    fn as_str(self) -> &'static str {
        match self {
            MatchKind::Equal => "=",
            MatchKind::NotEqual => "!=",
            MatchKind::Regex => "=~",
            MatchKind::NotRegex => "!~",
        }
    }
}

impl Selector {
    /// The same selector with another metric name, such as the `_bucket` series of a histogram.
    pub fn with_metric(&self, metric: impl Into<String>) -> Selector {
        Selector {
            metric: metric.into(),
            matchers: self.matchers.clone(),
        }
    }

    /// True when a matcher names this label.
    pub fn matches_label(&self, label: &str) -> bool {
        self.matchers.iter().any(|m| m.name == label)
    }
}

impl fmt::Display for LabelMatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{}", self.name, self.op.as_str(), quote(&self.value))
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.metric)?;
        if self.matchers.is_empty() {
            return Ok(());
        }
        f.write_str("{")?;
        for (i, m) in self.matchers.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{m}")?;
        }
        f.write_str("}")
    }
}

/// A PromQL double-quoted string literal for any text.
pub fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Prometheus' PromQL lexer reads U+FFFD as a decoding error and refuses the expression, though
/// it is valid UTF-8 and promql-parser accepts it.
fn refuse_replacement_character(text: &str) -> Result<(), Problem> {
    match text.contains(char::REPLACEMENT_CHARACTER) {
        true => Err(Problem::invalid(
            "contains U+FFFD (the replacement character), which Prometheus refuses in PromQL as \
             invalid UTF-8; remove it or match it with a regex such as `.`",
        )),
        false => Ok(()),
    }
}

/// Parses a plain vector selector: a metric name and label matchers, nothing else.
pub fn parse_selector(text: &str) -> Result<Selector, Problem> {
    refuse_replacement_character(text)?;
    let expr = parse(text)?;
    let Expr::VectorSelector(vs) = expr else {
        return Err(not_a_selector(&expr));
    };
    if vs.offset.is_some() || vs.at.is_some() {
        return Err(Problem::NotASelector {
            found: "a selector with an offset or @ modifier".into(),
            hint: "remove the modifier; windows are added by the generated rules".into(),
        });
    }
    if !vs.matchers.or_matchers.is_empty() {
        return Err(Problem::NotASelector {
            found: "a selector with `or` between matchers".into(),
            hint: "use one set of matchers, with a regex (`label=~\"a|b\"`) for alternatives"
                .into(),
        });
    }
    let mut metric = vs.name.clone();
    let mut matchers = Vec::new();
    for m in &vs.matchers.matchers {
        let op = match &m.op {
            MatchOp::Equal => MatchKind::Equal,
            MatchOp::NotEqual => MatchKind::NotEqual,
            MatchOp::Re(_) => MatchKind::Regex,
            MatchOp::NotRe(_) => MatchKind::NotRegex,
        };
        if m.name == "__name__" {
            if op != MatchKind::Equal || metric.is_some() {
                return Err(Problem::NotASelector {
                    found: "a selector matching several metric names".into(),
                    hint: "name exactly one metric".into(),
                });
            }
            metric = Some(m.value.clone());
            continue;
        }
        matchers.push(LabelMatcher {
            name: m.name.clone(),
            op,
            value: m.value.clone(),
        });
    }
    match metric {
        Some(metric) if is_metric_name(&metric) => Ok(Selector { metric, matchers }),
        _ => Err(Problem::NotASelector {
            found: "a selector without a metric name".into(),
            hint: "start with the metric name, such as `http_requests_total{job=\"api\"}`".into(),
        }),
    }
}

/// A window no one writes, standing in for `$window` while the template is parsed and printed.
/// It is spelled as promql-parser prints it, so the printed text gives it back unchanged.
const WINDOW_STAND_IN: &str = "12345d6h7m8s9ms";

/// Checks the `query.errorRatio` template and returns it printed from its parsed expression:
/// comments, line breaks and spacing are gone, so splicing the result into `(...)` or `absent(...)`
/// cannot change its meaning. It must contain `$window` and, once a window is put in, parse to an
/// instant vector.
pub fn normalize_error_ratio(template: &str) -> Result<String, Problem> {
    if !template.contains(WINDOW_PLACEHOLDER) {
        return Err(Problem::invalid(format!(
            "must contain the {WINDOW_PLACEHOLDER} placeholder in each range, such as \
             `sum(rate(errors_total[$window])) / sum(rate(requests_total[$window]))`"
        )));
    }
    refuse_replacement_character(template)?;
    if template.contains(WINDOW_STAND_IN) {
        return Err(Problem::invalid(format!(
            "must not contain {WINDOW_STAND_IN:?}: Plimsoll uses that text while it reads the query"
        )));
    }
    let expr = parse(&template.replace(WINDOW_PLACEHOLDER, WINDOW_STAND_IN))?;
    if expr.value_type() != ValueType::Vector {
        return Err(Problem::invalid(format!(
            "must be an instant vector (an error ratio per series), but it is a {}; \
             wrap range selectors in a function such as rate()",
            expr.value_type()
        )));
    }
    let mut newer = NewerThanPrometheus::default();
    let _ = walk_expr(&mut newer, &expr);
    if let Some(found) = newer.0 {
        return Err(Problem::invalid(format!(
            "uses {found}, which Prometheus 2.42 does not know (in Prometheus 3 it is experimental \
             or new syntax); write it with what both understand"
        )));
    }
    let printed = expr.to_string();
    // The printer must give back the same expression, or what runs would not be what was checked.
    match parser::parse(&printed) {
        Ok(again) if again == expr => Ok(printed.replace(WINDOW_STAND_IN, WINDOW_PLACEHOLDER)),
        _ => Err(Problem::invalid(format!(
            "cannot be written back unchanged (it reads as `{printed}`); simplify the expression, \
             for example without `or` between label matchers"
        ))),
    }
}

/// Functions and aggregations that promql-parser knows and Prometheus 2.42 does not; most are
/// experimental in Prometheus 3, behind a feature flag.
const NEWER_THAN_PROMETHEUS: &[&str] = &[
    "double_exponential_smoothing",
    "first_over_time",
    "histogram_avg",
    "histogram_quantiles",
    "histogram_stddev",
    "histogram_stdvar",
    "info",
    "integral",
    "mad_over_time",
    "max_of",
    "min_of",
    "sort_by_label",
    "sort_by_label_desc",
    "start_timestamp",
    "ts_of_first_over_time",
    "ts_of_last_over_time",
    "ts_of_max_over_time",
    "ts_of_min_over_time",
    "limitk",
    "limit_ratio",
];

/// The first use of something Prometheus 2.42 would refuse: a newer function or aggregation, or
/// a quoted (UTF-8) metric or label name.
#[derive(Default)]
struct NewerThanPrometheus(Option<String>);

impl ExprVisitor for NewerThanPrometheus {
    type Error = std::convert::Infallible;

    fn pre_visit(&mut self, expr: &Expr) -> Result<bool, Self::Error> {
        let selector = match expr {
            Expr::VectorSelector(vs) => Some(vs),
            Expr::MatrixSelector(ms) => Some(&ms.vs),
            _ => None,
        };
        let found = match expr {
            Expr::Call(call) if NEWER_THAN_PROMETHEUS.contains(&call.func.name) => {
                Some(format!("{}()", call.func.name))
            }
            Expr::Aggregate(agg)
                if NEWER_THAN_PROMETHEUS.contains(&agg.op.to_string().as_str()) =>
            {
                Some(agg.op.to_string())
            }
            _ => selector.and_then(|vs| {
                let metric = vs.name.iter().filter(|n| !is_metric_name(n));
                let labels = vs.matchers.matchers.iter().map(|m| &m.name);
                let labels = labels.filter(|n| *n != "__name__" && !is_label_name(n));
                metric
                    .chain(labels)
                    .next()
                    .map(|name| format!("the quoted name {name:?}"))
            }),
        };
        if found.is_some() && self.0.is_none() {
            self.0 = found;
        }
        Ok(true)
    }
}

fn parse(text: &str) -> Result<Expr, Problem> {
    parser::parse(text).map_err(|detail| Problem::PromqlSyntax {
        query: text.to_string(),
        detail,
    })
}

fn not_a_selector(expr: &Expr) -> Problem {
    let (found, hint) = match expr {
        Expr::Call(call) => (
            format!("a call to {}()", call.func.name),
            "give the counter itself; Plimsoll applies rate() and increase() per window",
        ),
        Expr::Aggregate(_) => (
            "an aggregation".to_string(),
            "give the series selector; use groupBy to keep labels",
        ),
        Expr::MatrixSelector(_) => (
            "a range selector".to_string(),
            "drop the [range]; windows are added by the generated rules",
        ),
        Expr::Binary(_) => (
            "an arithmetic expression".to_string(),
            "give one selector per field, or use indicator.query for free PromQL",
        ),
        _ => (
            "another kind of expression".to_string(),
            "give a selector such as `metric{label=\"value\"}`, or use indicator.query",
        ),
    };
    Problem::NotASelector {
        found,
        hint: hint.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_selectors_and_prints_them_back() {
        let s = parse_selector(r#"http_requests_total{job="checkout",code=~"5.."}"#).unwrap();
        assert_eq!(s.metric, "http_requests_total");
        assert_eq!(s.matchers.len(), 2);
        assert_eq!(
            s.to_string(),
            r#"http_requests_total{job="checkout",code=~"5.."}"#
        );
        let by_name = parse_selector(r#"{__name__="up",job="x"}"#).unwrap();
        assert_eq!(by_name.to_string(), r#"up{job="x"}"#);
    }

    #[test]
    fn printing_escapes_values() {
        let s = parse_selector(r#"m{path="/a\"b\\c"}"#).unwrap();
        assert_eq!(s.matchers[0].value, "/a\"b\\c");
        let again = parse_selector(&s.to_string()).unwrap();
        assert_eq!(again, s);
    }

    #[test]
    fn refuses_what_is_not_a_plain_selector() {
        let cases = [
            ("rate(x[5m])", "rate()"),
            ("sum(x)", "aggregation"),
            ("x[5m]", "range selector"),
            ("x / y", "arithmetic"),
            ("x offset 5m", "offset"),
            (r#"{job="a"}"#, "without a metric name"),
            (r#"{__name__=~"a|b"}"#, "several metric names"),
            ("42", "another kind"),
        ];
        for (input, fragment) in cases {
            let err = parse_selector(input).unwrap_err().to_string();
            assert!(err.contains(fragment), "{input}: {err}");
        }
    }

    #[test]
    fn refuses_what_prometheus_reads_as_invalid_utf8() {
        for text in [
            "m{a=\"x\u{FFFD}\"}",
            "sum(rate(m{a=\"\u{FFFD}\"}[$window]))",
        ] {
            let err = parse_selector(text)
                .err()
                .or(normalize_error_ratio(text).err())
                .unwrap();
            assert!(err.to_string().contains("U+FFFD"), "{err}");
        }
        assert!(normalize_error_ratio("sum(rate(m{a=\"\u{FFFD}\"}[$window]))").is_err());
    }

    #[test]
    fn refuses_what_prometheus_2_42_does_not_know() {
        for (text, found) in [
            (
                "sort_by_label(sum by (a) (rate(m[$window])), \"a\")",
                "sort_by_label()",
            ),
            ("limitk(1, rate(m[$window]))", "limitk"),
            ("rate(m{\"a.b\"=\"x\"}[$window])", "the quoted name \"a.b\""),
        ] {
            match normalize_error_ratio(text) {
                Err(e) => assert!(e.to_string().contains(found), "{text}: {e}"),
                Ok(printed) => panic!("{text} accepted as {printed}"),
            }
        }
    }

    #[test]
    fn reports_syntax_errors() {
        let err = parse_selector("http_requests_total{job=").unwrap_err();
        assert_eq!(err.reason(), "PromQLSyntax");
    }

    #[test]
    fn checks_query_templates() {
        assert_eq!(
            normalize_error_ratio("sum(rate(a[$window])) / sum(rate(b[$window]))").unwrap(),
            "sum(rate(a[$window])) / sum(rate(b[$window]))"
        );
        assert!(
            normalize_error_ratio("sum(rate(a[5m]))")
                .unwrap_err()
                .to_string()
                .contains("$window")
        );
        assert_eq!(
            normalize_error_ratio("sum(rate(a[$window])")
                .unwrap_err()
                .reason(),
            "PromQLSyntax"
        );
        assert!(
            normalize_error_ratio("a[$window]")
                .unwrap_err()
                .to_string()
                .contains("instant vector")
        );
    }

    #[test]
    fn query_templates_are_printed_without_comments_or_line_breaks() {
        let printed = normalize_error_ratio(
            "sum(rate(errors_total[$window])) # the failures\n/\n  sum(rate(requests_total[$window])) # all",
        )
        .unwrap();
        assert_eq!(
            printed,
            "sum(rate(errors_total[$window])) / sum(rate(requests_total[$window]))"
        );
        // Precedence is kept by the parser's own parentheses.
        assert_eq!(
            normalize_error_ratio("(1 - sum(rate(a[$window:1m]))) * 2").unwrap(),
            "(1 - sum(rate(a[$window:1m]))) * 2"
        );
        assert_eq!(
            normalize_error_ratio("x[12345d6h7m8s9ms] + rate(a[$window])")
                .unwrap_err()
                .reason(),
            "Invalid"
        );
    }
}
