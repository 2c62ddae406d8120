//! The free `query.errorRatio`: checked, and kept as printed from its parsed expression.

use promql_parser::label::Matchers;
use promql_parser::parser::value::ValueType;
use promql_parser::parser::{self, Expr};
use promql_parser::util::visitor::{ExprVisitorMut, walk_expr_mut};

use super::super::error::Problem;
use super::{WINDOW_PLACEHOLDER, compat, parse_expr};

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
    compat::check_text(template)?;
    if template.contains(WINDOW_STAND_IN) {
        return Err(Problem::invalid(format!(
            "must not contain {WINDOW_STAND_IN:?}: Plimsoll uses that text while it reads the query"
        )));
    }
    let expr = parse_expr(&template.replace(WINDOW_PLACEHOLDER, WINDOW_STAND_IN))?;
    if expr.value_type() != ValueType::Vector {
        return Err(Problem::invalid(format!(
            "must be an instant vector (an error ratio per series), but it is a {}; \
             wrap range selectors in a function such as rate()",
            expr.value_type()
        )));
    }
    compat::check(&expr)?;
    let printed = expr.to_string();
    // The printer must give back the same expression, or what runs would not be what was checked.
    // It writes label matchers in name order, which means the same.
    let same = parser::parse(&printed).is_ok_and(|again| sorted(again) == sorted(expr));
    match same {
        true => Ok(printed.replace(WINDOW_STAND_IN, WINDOW_PLACEHOLDER)),
        false => Err(Problem::invalid(format!(
            "cannot be written back unchanged (it reads as `{printed}`); simplify the expression, \
             for example without `or` between label matchers"
        ))),
    }
}

/// The expression with every selector's matchers in one order.
fn sorted(mut expr: Expr) -> Expr {
    struct Sort;
    impl ExprVisitorMut for Sort {
        type Error = std::convert::Infallible;
        fn pre_visit(&mut self, expr: &mut Expr) -> Result<bool, Self::Error> {
            let matchers: Option<&mut Matchers> = match expr {
                Expr::VectorSelector(vs) => Some(&mut vs.matchers),
                Expr::MatrixSelector(ms) => Some(&mut ms.vs.matchers),
                _ => None,
            };
            if let Some(m) = matchers {
                m.matchers
                    .sort_by_key(|m| (m.name.clone(), m.op.to_string(), m.value.clone()));
            }
            Ok(true)
        }
    }
    let _ = walk_expr_mut(&mut Sort, &mut expr);
    expr
}
