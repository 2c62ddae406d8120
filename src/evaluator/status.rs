//! The evaluator's part of the status: the budget in numbers, the rollback state, and the
//! BudgetExhausted and DataAvailable conditions. Pure; written only when a visible value changed.

use crate::small_map::SmallMap;
use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use serde::Serialize;

use crate::api::{
    BudgetState, ErrorBudgetStatus, GroupsStatus, RollbackState, RollbackStatus,
    ServiceLevelObjectiveStatus, TargetStatus, WorstGroup,
};
use crate::budget::format::{
    BUDGET_DECIMALS, BURN_RATE_DECIMALS, MINUTES_DECIMALS, SLI_DECIMALS, fixed,
};
use crate::budget::{Assessment, Memory, NoData};
use crate::model::Duration;

pub const DATA_AVAILABLE: &str = "DataAvailable";
pub const BUDGET_EXHAUSTED: &str = "BudgetExhausted";

/// The status fields the evaluator writes with server-side apply, all of them every time.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct EvaluatedStatus {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sli: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_budget: Option<ErrorBudgetStatus>,
    #[serde(skip_serializing_if = "SmallMap::is_empty")]
    pub burn_rates: SmallMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exhaustion: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fast_burn_rate: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups: Option<GroupsStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evaluated_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<BudgetState>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback: Option<RollbackStatus>,
    pub conditions: Vec<Condition>,
}

impl EvaluatedStatus {
    /// The status an SLO shows once this is applied (local mode keeps it in memory).
    pub fn into_status(self) -> ServiceLevelObjectiveStatus {
        ServiceLevelObjectiveStatus {
            sli: self.sli,
            error_budget: self.error_budget,
            burn_rates: self.burn_rates,
            exhaustion: self.exhaustion,
            fast_burn_rate: self.fast_burn_rate,
            groups: self.groups,
            evaluated_at: self.evaluated_at,
            state: self.state,
            rollback: self.rollback,
            conditions: self.conditions,
            ..ServiceLevelObjectiveStatus::default()
        }
    }
}

/// The numbers are from a successful read: DataAvailable is True.
pub fn fresh(status: &ServiceLevelObjectiveStatus) -> bool {
    status
        .conditions
        .iter()
        .any(|c| c.type_ == DATA_AVAILABLE && c.status == "True")
}

/// The state to show: as written, or for a status an older version wrote, the policy's state
/// on fresh data; Unknown without a measurement.
pub fn shown(status: &ServiceLevelObjectiveStatus) -> BudgetState {
    status.state.unwrap_or_else(|| match &status.rollback {
        Some(r) => BudgetState::measured(r.state, fresh(status)),
        None => BudgetState::Unknown,
    })
}

/// What one round found for one SLO.
pub struct Round<'a> {
    /// The assessment the policy acts on (the worst group's, for groupBy SLOs), or why none.
    pub verdict: Result<&'a Assessment, &'a NoData>,
    /// Every group's remaining budget, with its labels; empty without groupBy.
    pub groups: Vec<(BTreeMap<String, String>, f64)>,
    pub memory: &'a Memory,
    /// What was done to the targets this round; `None` keeps what the status says.
    pub targets: Option<Vec<TargetStatus>>,
    pub generation: Option<i64>,
    pub now: Timestamp,
    /// The fast page tier's long window ([`super::fast_window`]): its burn rate is also written
    /// as a number, for the `Fast burn ×` column.
    pub fast_window: Duration,
}

/// The status to write, or `None` when the visible values are those already written.
pub fn next(
    current: Option<&ServiceLevelObjectiveStatus>,
    round: &Round,
) -> Option<EvaluatedStatus> {
    let mut status = match round.verdict {
        Ok(a) => numbers(a, &round.groups, round.fast_window),
        // Without data the last numbers stay; only the condition says they are old.
        Err(_) => kept_numbers(current),
    };
    let fresh = round.verdict.is_ok();
    status.state = Some(BudgetState::measured(round.memory.state, fresh));
    // The policy's memory is written once a round has measured the budget; before that there
    // is no state to remember, and missing data never changes it.
    let remembered = current.and_then(|c| c.rollback.as_ref());
    status.rollback = (fresh || remembered.is_some()).then(|| RollbackStatus {
        state: round.memory.state,
        since: Some(round.memory.since.to_string()),
        targets: round
            .targets
            .clone()
            .unwrap_or_else(|| remembered.map(|r| r.targets.clone()).unwrap_or_default()),
    });
    let data = match round.verdict {
        Ok(_) => (
            "True",
            "SeriesPresent",
            "Prometheus has fresh recorded series for this SLO".to_string(),
        ),
        Err(e) => ("False", e.reason(), e.to_string()),
    };
    let exhausted = matches!(
        round.memory.state,
        RollbackState::Exhausted | RollbackState::Recovering
    );
    // A held trigger stays True without data (missing data clears nothing); otherwise nobody
    // can say whether the budget is within the policy.
    let budget = match (exhausted, fresh) {
        (true, true) => (
            "True",
            "BudgetExhausted",
            "the error budget policy's trigger holds".to_string(),
        ),
        (true, false) => (
            "True",
            "BudgetExhausted",
            "the error budget policy's trigger held on the last fresh data; without fresh \
             data it is neither confirmed nor cleared"
                .to_string(),
        ),
        (false, true) => (
            "False",
            "WithinBudget",
            "the error budget is within the policy".to_string(),
        ),
        (false, false) => (
            "Unknown",
            "NoData",
            "no fresh data: whether the error budget is within the policy is not known (see \
             DataAvailable)"
                .to_string(),
        ),
    };
    status.conditions = vec![
        condition(current, DATA_AVAILABLE, data, round),
        condition(current, BUDGET_EXHAUSTED, budget, round),
    ];
    let unchanged = current.is_some_and(|c| visible(owned(c)) == visible(status.clone()));
    if unchanged {
        return None;
    }
    status.evaluated_at = Some(round.now.to_string());
    Some(status)
}

fn numbers(
    a: &Assessment,
    groups: &[(BTreeMap<String, String>, f64)],
    fast_window: Duration,
) -> EvaluatedStatus {
    EvaluatedStatus {
        fast_burn_rate: a
            .burn_rates
            .get(&fast_window)
            .map(|r| fixed(*r, BURN_RATE_DECIMALS)),
        sli: Some(fixed(a.sli, SLI_DECIMALS)),
        error_budget: Some(ErrorBudgetStatus {
            remaining: fixed(a.remaining, BUDGET_DECIMALS),
            consumed_minutes: fixed(a.consumed_minutes, MINUTES_DECIMALS),
            total_minutes: fixed(a.total_minutes, MINUTES_DECIMALS),
        }),
        burn_rates: a
            .burn_rates
            .iter()
            .map(|(w, r)| (w.to_string(), fixed(*r, BURN_RATE_DECIMALS)))
            .collect(),
        // Rounded to the minute, so the projection does not churn every round.
        exhaustion: a.exhaustion.map(|t| {
            let minute = t.as_second() / 60 * 60;
            Timestamp::from_second(minute).unwrap_or(t).to_string()
        }),
        groups: worst_group(groups),
        ..EvaluatedStatus::default()
    }
}

fn worst_group(groups: &[(BTreeMap<String, String>, f64)]) -> Option<GroupsStatus> {
    if groups.is_empty() {
        return None;
    }
    let worst = groups
        .iter()
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(labels, remaining)| WorstGroup {
            labels: labels.clone().into(),
            remaining: fixed(*remaining, BUDGET_DECIMALS),
        });
    Some(GroupsStatus {
        count: groups.len() as i64,
        worst,
    })
}

fn kept_numbers(current: Option<&ServiceLevelObjectiveStatus>) -> EvaluatedStatus {
    let Some(c) = current else {
        return EvaluatedStatus::default();
    };
    EvaluatedStatus {
        sli: c.sli.clone(),
        error_budget: c.error_budget.clone(),
        burn_rates: c.burn_rates.clone(),
        exhaustion: c.exhaustion.clone(),
        fast_burn_rate: c.fast_burn_rate.clone(),
        groups: c.groups.clone(),
        ..EvaluatedStatus::default()
    }
}

fn condition(
    current: Option<&ServiceLevelObjectiveStatus>,
    type_: &str,
    (status, reason, message): (&str, &str, String),
    round: &Round,
) -> Condition {
    let previous = current.and_then(|c| c.conditions.iter().find(|x| x.type_ == type_));
    let last_transition_time = match previous {
        Some(p) if p.status == status => p.last_transition_time.clone(),
        _ => Time(round.now),
    };
    Condition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: reason.to_string(),
        message,
        observed_generation: round.generation,
        last_transition_time,
    }
}

/// The evaluator's fields of a written status.
fn owned(c: &ServiceLevelObjectiveStatus) -> EvaluatedStatus {
    EvaluatedStatus {
        state: c.state,
        rollback: c.rollback.clone(),
        conditions: c.conditions.clone(),
        ..kept_numbers(Some(c))
    }
}

/// What a reader sees: no evaluatedAt, no transition times, only our own conditions.
fn visible(mut s: EvaluatedStatus) -> EvaluatedStatus {
    s.evaluated_at = None;
    s.conditions = own_conditions(&s.conditions);
    s
}

fn own_conditions(conditions: &[Condition]) -> Vec<Condition> {
    let mut own: Vec<Condition> = conditions
        .iter()
        .filter(|c| c.type_ == DATA_AVAILABLE || c.type_ == BUDGET_EXHAUSTED)
        .map(|c| Condition {
            last_transition_time: Time(Timestamp::UNIX_EPOCH),
            observed_generation: None,
            ..c.clone()
        })
        .collect();
    own.sort_by(|a, b| a.type_.cmp(&b.type_));
    own
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Duration;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap()
    }

    fn assessment(remaining: f64) -> Assessment {
        Assessment {
            sli: 99.941234,
            remaining,
            consumed_minutes: 25.40,
            total_minutes: 43.2,
            burn_rates: BTreeMap::from([
                (Duration::from_hours(1), 0.94),
                (Duration::from_hours(6), 1.1),
            ]),
            exhaustion: None,
        }
    }

    fn applied(s: EvaluatedStatus) -> ServiceLevelObjectiveStatus {
        ServiceLevelObjectiveStatus {
            sli: s.sli,
            error_budget: s.error_budget,
            burn_rates: s.burn_rates,
            exhaustion: s.exhaustion,
            fast_burn_rate: s.fast_burn_rate,
            groups: s.groups,
            evaluated_at: s.evaluated_at,
            state: s.state,
            rollback: s.rollback,
            conditions: s.conditions,
            ..Default::default()
        }
    }

    fn memory() -> Memory {
        Memory {
            state: RollbackState::Healthy,
            since: at(0),
        }
    }

    #[test]
    fn numbers_are_fixed_precision_strings() {
        let a = assessment(41.23);
        let m = memory();
        let round = Round {
            verdict: Ok(&a),
            groups: vec![],
            memory: &m,
            targets: None,
            generation: Some(2),
            now: at(100),
            fast_window: Duration::from_hours(1),
        };
        let s = next(None, &round).unwrap();
        assert_eq!(s.sli.as_deref(), Some("99.9412"));
        let b = s.error_budget.as_ref().unwrap();
        assert_eq!(
            (
                b.remaining.as_str(),
                b.consumed_minutes.as_str(),
                b.total_minutes.as_str()
            ),
            ("41.2", "25.4", "43.2")
        );
        assert_eq!(s.burn_rates["1h"], "0.9");
        assert_eq!(s.burn_rates["6h"], "1.1");
        // The fast window's rate, for its column, as burnRates writes it.
        assert_eq!(s.fast_burn_rate.as_deref(), Some("0.9"));
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["fastBurnRate"], serde_json::json!("0.9"));
        assert_eq!(s.conditions[0].type_, "DataAvailable");
        assert_eq!(s.conditions[0].status, "True");
        assert_eq!(s.conditions[1].status, "False");
        assert_eq!(s.evaluated_at.as_deref(), Some("1970-01-01T00:01:40Z"));
    }

    #[test]
    fn noise_below_the_precision_writes_nothing() {
        let m = memory();
        let first = assessment(41.23);
        let s = next(
            None,
            &Round {
                verdict: Ok(&first),
                groups: vec![],
                memory: &m,
                targets: None,
                generation: Some(2),
                now: at(100),
                fast_window: Duration::from_hours(1),
            },
        )
        .unwrap();
        let current = applied(s);
        let later = assessment(41.24);
        let round = Round {
            verdict: Ok(&later),
            groups: vec![],
            memory: &m,
            targets: None,
            generation: Some(2),
            now: at(160),
            fast_window: Duration::from_hours(1),
        };
        assert_eq!(
            next(Some(&current), &round),
            None,
            "41.24 still shows as 41.2"
        );
        let moved = assessment(41.0);
        let round = Round {
            verdict: Ok(&moved),
            groups: vec![],
            memory: &m,
            targets: None,
            generation: Some(2),
            now: at(220),
            fast_window: Duration::from_hours(1),
        };
        assert!(next(Some(&current), &round).is_some());
    }

    #[test]
    fn missing_data_keeps_the_numbers_and_says_so() {
        let m = memory();
        let a = assessment(41.23);
        let current = applied(
            next(
                None,
                &Round {
                    verdict: Ok(&a),
                    groups: vec![],
                    memory: &m,
                    targets: None,
                    generation: None,
                    now: at(100),
                    fast_window: Duration::from_hours(1),
                },
            )
            .unwrap(),
        );
        let gone = NoData::Stale { age: "12m".into() };
        let s = next(
            Some(&current),
            &Round {
                verdict: Err(&gone),
                groups: vec![],
                memory: &m,
                targets: None,
                generation: None,
                now: at(900),
                fast_window: Duration::from_hours(1),
            },
        )
        .unwrap();
        assert_eq!(s.sli, current.sli);
        assert_eq!(s.error_budget, current.error_budget);
        assert_eq!(
            s.fast_burn_rate.as_deref(),
            Some("0.9"),
            "the columns keep the last numbers too"
        );
        let data = &s.conditions[0];
        assert_eq!(
            (data.status.as_str(), data.reason.as_str()),
            ("False", "SeriesStale")
        );
        assert_eq!(data.last_transition_time, Time(at(900)));
        // Within the policy is not known any more: a transition, at this round's time.
        let budget = &s.conditions[1];
        assert_eq!(
            (budget.status.as_str(), budget.last_transition_time.clone()),
            ("Unknown", Time(at(900)))
        );
        // A second round still without data keeps both transition times.
        let again = next(Some(&applied(s.clone())), &round(Err(&gone), &m, 960));
        assert_eq!(again, None, "nothing visible changed");
    }

    #[test]
    fn groups_report_the_worst() {
        let m = memory();
        let a = assessment(3.12);
        let groups = vec![
            (
                BTreeMap::from([("route".to_string(), "/cart".to_string())]),
                80.0,
            ),
            (
                BTreeMap::from([("route".to_string(), "/pay".to_string())]),
                3.12,
            ),
        ];
        let s = next(
            None,
            &Round {
                verdict: Ok(&a),
                groups,
                memory: &m,
                targets: None,
                generation: None,
                now: at(1),
                fast_window: Duration::from_hours(1),
            },
        )
        .unwrap();
        let g = s.groups.unwrap();
        assert_eq!(g.count, 2);
        let worst = g.worst.unwrap();
        assert_eq!(worst.labels["route"], "/pay");
        assert_eq!(worst.remaining, "3.1");
    }

    fn round<'a>(
        verdict: Result<&'a Assessment, &'a NoData>,
        memory: &'a Memory,
        now: i64,
    ) -> Round<'a> {
        Round {
            verdict,
            groups: vec![],
            memory,
            targets: None,
            generation: None,
            now: at(now),
            fast_window: Duration::from_hours(1),
        }
    }

    fn budget_condition(s: &EvaluatedStatus) -> (&str, &str) {
        let c = s
            .conditions
            .iter()
            .find(|c| c.type_ == BUDGET_EXHAUSTED)
            .unwrap();
        (c.status.as_str(), c.reason.as_str())
    }

    #[test]
    fn an_slo_never_measured_shows_unknown_and_remembers_no_state() {
        let m = memory();
        let down = NoData::Missing;
        let s = next(None, &round(Err(&down), &m, 100)).unwrap();
        assert_eq!(s.state, Some(BudgetState::Unknown));
        assert_eq!(s.rollback, None, "no policy state before a measurement");
        assert_eq!(budget_condition(&s), ("Unknown", "NoData"));
        let shown = shown(&applied(s));
        assert_eq!(shown, BudgetState::Unknown);
    }

    #[test]
    fn data_lost_after_a_measurement_shows_unknown_and_keeps_the_memory() {
        let m = memory();
        let a = assessment(41.23);
        let measured = next(None, &round(Ok(&a), &m, 100)).unwrap();
        assert_eq!(measured.state, Some(BudgetState::Healthy));
        assert_eq!(budget_condition(&measured), ("False", "WithinBudget"));
        let current = applied(measured);
        let gone = NoData::Stale { age: "12m".into() };
        let s = next(Some(&current), &round(Err(&gone), &m, 900)).unwrap();
        assert_eq!(s.state, Some(BudgetState::Unknown));
        assert_eq!(
            s.rollback, current.rollback,
            "missing data changes no memory"
        );
        assert_eq!(budget_condition(&s), ("Unknown", "NoData"));
    }

    #[test]
    fn a_held_trigger_stays_true_without_data_but_the_state_is_unknown() {
        let exhausted = Memory {
            state: RollbackState::Exhausted,
            since: at(50),
        };
        let a = assessment(-3.0);
        let current = applied(next(None, &round(Ok(&a), &exhausted, 100)).unwrap());
        assert_eq!(current.state, Some(BudgetState::Exhausted));
        let gone = NoData::Missing;
        let s = next(Some(&current), &round(Err(&gone), &exhausted, 900)).unwrap();
        assert_eq!(s.state, Some(BudgetState::Unknown));
        assert_eq!(budget_condition(&s), ("True", "BudgetExhausted"));
        assert_eq!(
            s.rollback.as_ref().map(|r| r.state),
            Some(RollbackState::Exhausted)
        );
    }

    #[test]
    fn a_status_without_state_is_shown_from_fresh_data_only() {
        let m = memory();
        let a = assessment(41.23);
        let mut older = applied(next(None, &round(Ok(&a), &m, 100)).unwrap());
        older.state = None;
        assert_eq!(shown(&older), BudgetState::Healthy);
        for c in &mut older.conditions {
            c.status = "False".into();
        }
        assert_eq!(shown(&older), BudgetState::Unknown);
    }
}
