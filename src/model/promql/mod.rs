//! PromQL inputs: plain vector selectors for the counter-based indicators, and the free
//! `query.errorRatio` template. Parsing uses `promql-parser`, Prometheus' grammar in Rust.

use std::fmt;

use promql_parser::label::MatchOp;
use promql_parser::parser::{self, Expr};

use super::error::Problem;
use super::names::is_metric_name;

mod compat;
mod error_ratio;

pub use error_ratio::normalize_error_ratio;

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

    /// The same selector with one more matcher.
    pub fn with_matcher(&self, matcher: LabelMatcher) -> Selector {
        let mut more = self.clone();
        more.matchers.push(matcher);
        more
    }

    /// True when a matcher names this label.
    pub fn matches_label(&self, label: &str) -> bool {
        self.matchers.iter().any(|m| m.name == label)
    }
}

impl LabelMatcher {
    pub fn new(name: impl Into<String>, op: MatchKind, value: impl Into<String>) -> Self {
        LabelMatcher {
            name: name.into(),
            op,
            value: value.into(),
        }
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

/// Parses a plain vector selector: a metric name and label matchers, nothing else.
pub fn parse_selector(text: &str) -> Result<Selector, Problem> {
    compat::check_text(text)?;
    let expr = parse_expr(text)?;
    compat::check(&expr)?;
    let Expr::VectorSelector(vs) = expr else {
        return Err(not_a_selector(&expr));
    };
    selector_of(&vs)
}

/// A parsed vector selector as a [`Selector`], refused when it is more than a metric name with
/// label matchers (modifiers, `or` between matchers, no or several metric names).
pub fn selector_of(vs: &promql_parser::parser::VectorSelector) -> Result<Selector, Problem> {
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

pub(super) fn parse_expr(text: &str) -> Result<Expr, Problem> {
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
    fn refuses_what_prometheus_2_42_refuses_or_reads_otherwise() {
        let refused = [
            ("m{a=\"x\u{FFFD}\"}", "U+FFFD"),
            ("m{a=\"x\\ufffd\"}", "U+FFFD"),
            ("m{a=\"\\xff\"}", "a byte above 0x7f"),
            ("m{a=\"\\377\"}", "a byte above 0x7f"),
            ("m{a=~\"x{1001}\"}", "repetition over {1000}"),
            ("m{a=~\"(?<n>a)\"}", "named group"),
            ("m{a=~\"(?x)a b\"}", "regex flags `(?x)`"),
        ];
        for (selector, found) in refused {
            let query = format!("sum(rate({selector}[$window]))");
            for err in [
                parse_selector(selector).unwrap_err(),
                normalize_error_ratio(&query).unwrap_err(),
            ] {
                assert!(err.to_string().contains(found), "{selector}: {err}");
            }
        }
        for query in [
            "sort_by_label(sum by (a) (rate(m[$window])), \"a\")",
            "limitk(1, rate(m[$window]))",
            "rate(m{\"a.b\"=\"x\"}[$window])",
            "rate(a[$window]) / fill(0) rate(b[$window])",
            "rate({a=\"1\" or b=\"2\"}[$window])",
            "rate(m[$window]) * start()",
            "label_replace(rate(m[$window]), \"x\", \"\u{FFFD}\", \"\", \"\")",
        ] {
            let err = normalize_error_ratio(query).unwrap_err();
            assert!(
                err.to_string().contains("Prometheus 2.42"),
                "{query}: {err}"
            );
        }
        // Go's forms of the same are fine.
        assert!(parse_selector("m{a=~\"(?i)x{2,1000}(?P<n>a)\"}").is_ok());
        assert!(parse_selector("m{a=\"\\u00ff\"}").is_ok());
    }

    #[test]
    fn matchers_in_any_order_are_accepted_and_printed_in_name_order() {
        assert_eq!(
            normalize_error_ratio(
                "sum(rate(http_requests_total{job=\"api\",code=~\"5..\"}[$window])) / sum(rate(http_requests_total{job=\"api\"}[$window]))"
            )
            .unwrap(),
            "sum(rate(http_requests_total{code=~\"5..\",job=\"api\"}[$window])) / sum(rate(http_requests_total{job=\"api\"}[$window]))"
        );
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
