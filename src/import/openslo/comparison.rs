//! An OpenSLO objective's `op` and `value`: what a thresholdMetric's points are compared with.

use super::super::fields::Fields;
use super::sli::Measure;

/// How an objective compares a thresholdMetric's points with its `value`: a point is good when
/// `point op value` holds (OpenSLO's `op`, read literally).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Comparison {
    pub op: Op,
    pub value: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Lte,
    Gt,
    Gte,
}

impl Op {
    pub fn parse(text: &str) -> Option<Op> {
        match text.to_ascii_lowercase().as_str() {
            "lt" => Some(Op::Lt),
            "lte" => Some(Op::Lte),
            "gt" => Some(Op::Gt),
            "gte" => Some(Op::Gte),
            _ => None,
        }
    }

    pub fn promql(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Lte => "<=",
            Op::Gt => ">",
            Op::Gte => ">=",
        }
    }

    /// The comparison that holds exactly where this one does not (for a number; NaN fails both).
    pub fn negated(self) -> Op {
        match self {
            Op::Lt => Op::Gte,
            Op::Lte => Op::Gt,
            Op::Gt => Op::Lte,
            Op::Gte => Op::Lt,
        }
    }
}

/// An objective's `op` and `value`. A thresholdMetric is compared with them; on a ratio
/// objective they mean nothing, and with a refused indicator they are reported rather than lost
/// with it.
pub fn comparison(objective: &Fields, measure: Option<&Measure>) -> Option<Comparison> {
    if let Some(Measure::Threshold { .. }) = measure {
        return threshold_comparison(objective);
    }
    let (op, value) = (objective.scalar("op"), objective.scalar("value"));
    if op.is_none() && value.is_none() {
        return None;
    }
    let why = match measure {
        Some(_) => "on a ratio objective has no meaning for Plimsoll",
        None => "goes with the indicator, which is refused",
    };
    let given: Vec<String> = [("op", op), ("value", value)]
        .into_iter()
        .filter_map(|(key, text)| text.map(|t| format!("{key} {t}")))
        .collect();
    objective.findings().dropped(
        objective.path("op"),
        format!("{} {why}; not carried", given.join(" ")),
    );
    None
}

/// The `op` and `value` a thresholdMetric's points are compared with; refused when either is
/// missing or unreadable.
fn threshold_comparison(objective: &Fields) -> Option<Comparison> {
    let f = objective.findings();
    let op = match objective.scalar("op") {
        Some(text) => {
            let op = Op::parse(&text);
            if op.is_none() {
                f.refused(
                    objective.path("op"),
                    format!("{text:?} is not one of lt, lte, gt, gte"),
                );
            }
            op
        }
        None => {
            f.refused(
                objective.path("op"),
                "is missing: a thresholdMetric's points are compared with op (lt, lte, gt or \
                 gte) and value",
            );
            None
        }
    };
    let value = match objective.number("value") {
        Some(Ok(v)) => Some(v),
        Some(Err(why)) => {
            f.refused(objective.path("value"), why);
            None
        }
        None => {
            f.refused(
                objective.path("value"),
                "is missing: the threshold a thresholdMetric's points are compared with",
            );
            None
        }
    };
    Some(Comparison {
        op: op?,
        value: value?,
    })
}
