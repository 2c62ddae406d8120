//! What promql-parser reads and Prometheus 2.42 refuses or reads otherwise: newer functions and
//! aggregations, `fill()` modifiers, `or` between matchers, quoted (UTF-8) names, U+FFFD in
//! strings (Prometheus' lexer takes it for a decoding error), byte escapes (`\xff` is a byte in
//! Go and a character here), and regular expressions Rust's regex crate accepts and Go's RE2
//! does not. What `validate` accepts must load in Prometheus.

use promql_parser::label::{MatchOp, Matchers};
use promql_parser::parser::Expr;
use promql_parser::util::{ExprVisitor, walk_expr};

use super::super::error::Problem;
use super::super::names::{is_label_name, is_metric_name};

/// Functions and aggregations promql-parser knows and Prometheus 2.42 does not (found by running
/// promql-parser's function table through promtool); most are experimental in Prometheus 3.
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
    "start",
    "end",
    "range",
    "step",
    "limitk",
    "limit_ratio",
];

/// Go's RE2 refuses repetition counts above this.
const MAX_REPEAT: u32 = 1000;

/// Checks a parsed expression; the first thing Prometheus 2.42 would refuse is the problem.
pub fn check(expr: &Expr) -> Result<(), Problem> {
    let mut found = FirstRefusal(None);
    let _ = walk_expr(&mut found, expr);
    match found.0 {
        None => Ok(()),
        Some(what) => Err(Problem::invalid(format!(
            "uses {what}, which Prometheus 2.42 refuses or reads otherwise; write it with what \
             both Prometheus 2 and 3 understand"
        ))),
    }
}

/// Checks the text for escapes of bytes above 0x7f (`\xff`, `\377`), which Go reads as raw bytes
/// and promql-parser as characters.
pub fn check_text(text: &str) -> Result<(), Problem> {
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            continue;
        }
        let high = match chars.next() {
            Some('x') => chars.peek().is_some_and(|h| {
                ('8'..='9').contains(h) || h.is_ascii_hexdigit() && h.is_ascii_alphabetic()
            }),
            Some('2' | '3') => true,
            _ => false,
        };
        if high {
            return Err(Problem::invalid(
                "escapes a byte above 0x7f (`\\x80`-`\\xff` or `\\200`-`\\377`), which Prometheus \
                 reads as a raw byte, not a character: write the character itself or `\\u00ff`",
            ));
        }
    }
    Ok(())
}

struct FirstRefusal(Option<String>);

impl ExprVisitor for FirstRefusal {
    type Error = std::convert::Infallible;

    fn pre_visit(&mut self, expr: &Expr) -> Result<bool, Self::Error> {
        if self.0.is_none() {
            self.0 = refusal(expr);
        }
        Ok(self.0.is_none())
    }
}

fn refusal(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Call(call) if NEWER_THAN_PROMETHEUS.contains(&call.func.name) => {
            Some(format!("{}()", call.func.name))
        }
        Expr::Aggregate(agg) if NEWER_THAN_PROMETHEUS.contains(&agg.op.to_string().as_str()) => {
            Some(agg.op.to_string())
        }
        Expr::Binary(binary) => binary
            .modifier
            .as_ref()
            .filter(|m| m.fill_values.lhs.is_some() || m.fill_values.rhs.is_some())
            .map(|_| "a fill() modifier".to_string()),
        Expr::StringLiteral(s) => replacement_character(&s.val),
        Expr::VectorSelector(vs) => selector(vs.name.as_deref(), &vs.matchers),
        Expr::MatrixSelector(ms) => selector(ms.vs.name.as_deref(), &ms.vs.matchers),
        _ => None,
    }
}

fn selector(name: Option<&str>, matchers: &Matchers) -> Option<String> {
    if !matchers.or_matchers.is_empty() {
        return Some("`or` between label matchers".into());
    }
    if let Some(name) = name.filter(|n| !is_metric_name(n)) {
        return Some(format!("the quoted name {name:?}"));
    }
    matchers.matchers.iter().find_map(|m| {
        if m.name != "__name__" && !is_label_name(&m.name) {
            return Some(format!("the quoted name {:?}", m.name));
        }
        if let Some(found) = replacement_character(&m.value) {
            return Some(found);
        }
        match m.op {
            MatchOp::Re(_) | MatchOp::NotRe(_) => regex(&m.value),
            MatchOp::Equal | MatchOp::NotEqual => None,
        }
    })
}

fn replacement_character(text: &str) -> Option<String> {
    text.contains(char::REPLACEMENT_CHARACTER).then(|| {
        "U+FFFD (the replacement character), which Prometheus reads as invalid UTF-8".into()
    })
}

/// The parts of a regular expression RE2 (Go 1.19) refuses though Rust's regex accepts them.
fn regex(pattern: &str) -> Option<String> {
    if pattern.contains("(?<") && !pattern.contains("(?<=") && !pattern.contains("(?<!") {
        return Some(
            "a named group `(?<name>...)` in a regex (Go reads only `(?P<name>...)`)".into(),
        );
    }
    let mut rest = pattern;
    while let Some(at) = rest.find("(?") {
        let flags: String = rest[at + 2..]
            .chars()
            .take_while(|c| *c != ')' && *c != ':')
            .collect();
        if !flags.is_empty()
            && flags.chars().any(|c| !"imsU-".contains(c))
            && !flags.starts_with('P')
        {
            return Some(format!(
                "the regex flags `(?{flags})` (Go knows i, m, s and U)"
            ));
        }
        rest = &rest[at + 2..];
    }
    repeat_over_limit(pattern)
        .then(|| format!("a regex repetition over {{{MAX_REPEAT}}} (Go's limit)"))
}

fn repeat_over_limit(pattern: &str) -> bool {
    let mut rest = pattern;
    while let Some(at) = rest.find('{') {
        let inside: String = rest[at + 1..].chars().take_while(|c| *c != '}').collect();
        let counts: Vec<&str> = inside.split(',').collect();
        let numeric =
            counts.len() <= 2 && counts.iter().all(|n| n.chars().all(|c| c.is_ascii_digit()));
        if numeric
            && counts
                .iter()
                .any(|n| n.parse::<u64>().is_ok_and(|n| n > u64::from(MAX_REPEAT)))
        {
            return true;
        }
        rest = &rest[at + 1..];
    }
    false
}
