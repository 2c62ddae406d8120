//! Local mode's state between rounds, pure: per SLO the status the operator would write (which
//! carries the rollback policy's memory), what the policy did this round, and a note for people.

use k8s_openapi::jiff::Timestamp;
use serde::Serialize;

use super::catalog::Loaded;
use crate::api::{BudgetState, RollbackState, ServiceLevelObjectiveStatus};
use crate::budget::{Action, Assessment, Step};
use crate::evaluator::{self, Conclusion, ReadResult, status};
use crate::model::{RollbackPolicy, Slo};
use crate::server::flagger;

/// One SLO on the board.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// `<namespace>/<name>`.
    pub key: String,
    pub slo: Slo,
    /// The manifest it came from.
    pub location: String,
    /// The manifest's document as YAML.
    pub manifest: std::sync::Arc<str>,
    /// What the operator would have written to the SLO's status by now.
    pub status: ServiceLevelObjectiveStatus,
    /// What the policy did this round.
    pub action: Action,
    /// Why a rollback holds, when the budget runs out, or why nothing was decided.
    pub note: Option<String>,
}

/// The policy's decision as the table and `/status` show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Decision {
    /// The trigger holds on fresh data: Flagger's webhook answers 200.
    RollBack,
    /// The budget is back above the recovery line: the signal cleared this round.
    Clear,
    /// Within the policy.
    None,
    /// No fresh data: nothing is decided.
    NoData,
}

impl Decision {
    pub fn text(self) -> &'static str {
        match self {
            Decision::RollBack => "ROLL BACK",
            Decision::Clear => "clear rollback",
            Decision::None => "none",
            Decision::NoData => "none (no data)",
        }
    }
}

impl Entry {
    /// The decision, from the same status the Flagger webhook answers from.
    pub fn decision(&self) -> Decision {
        if !status::fresh(&self.status) {
            Decision::NoData
        } else if flagger::holds(Some(&self.status)) {
            Decision::RollBack
        } else if self.action == Action::Clear {
            Decision::Clear
        } else {
            Decision::None
        }
    }

    /// The state shown: Unknown without fresh data.
    pub fn shown(&self) -> BudgetState {
        status::shown(&self.status)
    }

    /// The policy's memory, which missing data never changes (Healthy before any measurement).
    #[cfg(test)]
    pub fn state(&self) -> RollbackState {
        self.status
            .rollback
            .as_ref()
            .map(|r| r.state)
            .unwrap_or_default()
    }
}

/// Every SLO after the latest round, in manifest order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Board {
    pub entries: Vec<Entry>,
    /// When the latest round read Prometheus.
    pub evaluated_at: Option<Timestamp>,
    /// Why the latest read failed, if it did.
    pub prometheus_error: Option<String>,
}

/// One round for every SLO, from the previous board: each SLO's policy continues from its own
/// status, SLOs that are gone drop out, new ones start Healthy.
pub fn advance(previous: &Board, slos: &[Loaded], readings: &ReadResult, now: Timestamp) -> Board {
    let entries = slos
        .iter()
        .map(|loaded| {
            let before = previous
                .entries
                .iter()
                .find(|e| e.key == loaded.key)
                .map(|e| &e.status);
            let memory = evaluator::remembered(before, now);
            let Conclusion {
                verdict,
                groups,
                step,
                ..
            } = evaluator::conclude(&loaded.slo, &loaded.namespace, readings, &memory, now);
            let round = status::Round {
                verdict: verdict.as_ref(),
                groups,
                memory: &step.memory,
                targets: None,
                generation: None,
                now,
                fast_window: evaluator::fast_window(&loaded.slo),
            };
            let status = match status::next(before, &round) {
                Some(next) => next.into_status(),
                None => before.cloned().unwrap_or_default(),
            };
            let note = match &verdict {
                Ok(a) => note(loaded, &step, a, now),
                Err(e) => Some(format!("nothing decided: {e}")),
            };
            Entry {
                key: loaded.key.clone(),
                slo: loaded.slo.clone(),
                location: loaded.location.clone(),
                manifest: loaded.manifest.clone(),
                status,
                action: step.action,
                note,
            }
        })
        .collect();
    Board {
        entries,
        evaluated_at: Some(now),
        prometheus_error: readings.as_ref().err().map(|f| f.message.clone()),
    }
}

fn note(loaded: &Loaded, step: &Step, a: &Assessment, now: Timestamp) -> Option<String> {
    match step.memory.state {
        RollbackState::Exhausted | RollbackState::Recovering => {
            let policy = loaded
                .slo
                .rollback
                .clone()
                .unwrap_or_else(RollbackPolicy::observe_only);
            let reason = evaluator::rollback_reason(&loaded.key, &loaded.slo, &policy, a);
            let when = if step.action == Action::Trigger {
                "rollback signalled now".to_string()
            } else {
                let since = step.memory.since;
                let since = Timestamp::from_second(since.as_second()).unwrap_or(since);
                format!("rollback signalled since {since}")
            };
            Some(format!(
                "{when}: {reason}; the signal clears once {}% of the budget is back",
                policy.recover_above
            ))
        }
        RollbackState::Healthy | RollbackState::Burning => a.exhaustion.map(|at| {
            let window = evaluator::projection_window(&loaded.slo);
            let rate = a.burn_rates.get(&window).copied().unwrap_or_default();
            let minute = Timestamp::from_second(at.as_second() / 60 * 60).unwrap_or(at);
            format!(
                "at the {window} burn rate of {rate:.1} the budget is gone in {} ({minute})",
                human(at.as_second() - now.as_second())
            )
        }),
    }
}

/// Seconds as days, hours and minutes, the two largest units: `4d 6h`, `3h 20m`, `12m`.
pub fn human(seconds: i64) -> String {
    let minutes = seconds.max(0) / 60;
    let (days, hours, minutes) = (minutes / 1440, minutes / 60 % 24, minutes % 60);
    match (days, hours) {
        (0, 0) => format!("{minutes}m"),
        (0, _) => format!("{hours}h {minutes}m"),
        _ => format!("{days}d {hours}h"),
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::budget::Reading;
    use crate::model::Duration;
    use crate::prometheus::{Failure, Readings};

    fn loaded(name: &str, rollback: bool) -> Loaded {
        let mut spec = serde_json::json!({
            "service": name, "objective": 99.9, "window": "30d",
            "indicator": {"ratio": {"errors": "e_total", "total": "t_total"}},
        });
        if rollback {
            spec["rollback"] = serde_json::json!({"recoverAbove": 10});
        }
        let object = serde_json::from_value(serde_json::json!({
            "apiVersion": "plimsoll.dev/v1alpha1", "kind": "ServiceLevelObjective",
            "metadata": {"name": name, "namespace": "shop"}, "spec": spec,
        }))
        .unwrap();
        Loaded {
            key: format!("shop/{name}"),
            namespace: "shop".into(),
            slo: crate::model::validate(&object).unwrap(),
            location: format!("slos/{name}.yaml"),
            manifest: "".into(),
        }
    }

    fn at(minutes: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + minutes * 60).unwrap()
    }

    /// Readings for the named SLOs: (window error ratio, 6h error ratio), written at `written`.
    fn readings(of: &[(&str, f64, f64)], written: Timestamp) -> ReadResult {
        let mut out = Readings::default();
        for (name, window, six_hours) in of {
            let reading = Reading {
                window_error_ratio: Some(*window),
                error_ratios: crate::small_map::SmallMap::from([
                    (Duration::from_hours(1), *six_hours),
                    (Duration::from_hours(6), *six_hours),
                ]),
                ..Reading::default()
            };
            out.insert_own("shop", name, name, None, reading.written_at(written));
        }
        Ok(out)
    }

    fn summary(board: &Board) -> Vec<(String, RollbackState, Decision, Action)> {
        board
            .entries
            .iter()
            .map(|e| (e.key.clone(), e.state(), e.decision(), e.action))
            .collect()
    }

    #[test]
    fn the_policy_keeps_its_memory_across_rounds() {
        use Action as A;
        use Decision as D;
        use RollbackState::*;
        let slos = [loaded("pay", true)];
        let key = "shop/pay".to_string();
        // (minute, window ratio, 6h ratio) -> state, decision, action
        let rounds = [
            (0, 0.0003, 0.0003, Healthy, D::None, A::None),
            (1, 0.0006, 0.003, Burning, D::None, A::None),
            (2, 0.0011, 0.05, Exhausted, D::RollBack, A::Trigger),
            (3, 0.0012, 0.05, Exhausted, D::RollBack, A::None),
            (4, 0.00095, 0.0002, Recovering, D::RollBack, A::None),
            (5, 0.0009, 0.0002, Healthy, D::Clear, A::Clear),
            (6, 0.0009, 0.0002, Healthy, D::None, A::None),
        ];
        let mut board = Board::default();
        for (minute, window, six, state, decision, action) in rounds {
            board = advance(
                &board,
                &slos,
                &readings(&[("pay", window, six)], at(minute)),
                at(minute),
            );
            assert_eq!(
                summary(&board),
                [(key.clone(), state, decision, action)],
                "minute {minute}"
            );
        }
        let since = board.entries[0]
            .status
            .rollback
            .as_ref()
            .unwrap()
            .since
            .clone();
        assert_eq!(
            since,
            Some(at(5).to_string()),
            "Healthy again since the clear"
        );
    }

    #[test]
    fn no_data_decides_nothing_and_keeps_the_state() {
        let slos = [loaded("pay", true)];
        let board = advance(
            &Board::default(),
            &slos,
            &readings(&[("pay", 0.0011, 0.05)], at(0)),
            at(0),
        );
        assert_eq!(board.entries[0].state(), RollbackState::Exhausted);
        let down = advance(
            &board,
            &slos,
            &Err(Failure {
                reason: "PrometheusUnreachable",
                message: "connection refused".into(),
            }),
            at(1),
        );
        let e = &down.entries[0];
        assert_eq!(
            (e.state(), e.decision(), e.action),
            (RollbackState::Exhausted, Decision::NoData, Action::None)
        );
        assert_eq!(e.status.error_budget, board.entries[0].status.error_budget);
        assert_eq!(down.prometheus_error.as_deref(), Some("connection refused"));
        assert_eq!(
            e.note.as_deref(),
            Some("nothing decided: connection refused")
        );
        let stale = advance(
            &board,
            &slos,
            &readings(&[("pay", 0.0, 0.0)], at(0)),
            at(30),
        );
        assert_eq!(stale.entries[0].decision(), Decision::NoData);
        assert_eq!(stale.entries[0].state(), RollbackState::Exhausted);
    }

    #[test]
    fn slos_come_and_go_with_the_catalog() {
        let both = [loaded("a", false), loaded("b", true)];
        let data = readings(&[("a", 0.0003, 0.0003), ("b", 0.002, 0.002)], at(0));
        let board = advance(&Board::default(), &both, &data, at(0));
        assert_eq!(board.entries.len(), 2);
        assert_eq!(board.entries[1].state(), RollbackState::Exhausted);
        let only_b = [loaded("b", true)];
        let board = advance(&board, &only_b, &data, at(1));
        assert_eq!(summary(&board).len(), 1);
        assert_eq!(
            board.entries[0].action,
            Action::None,
            "b remembers its episode: no second trigger"
        );
        let board = advance(&board, &both, &data, at(2));
        assert_eq!(board.entries[0].key, "shop/a");
        assert_eq!(board.entries[0].state(), RollbackState::Healthy);
        assert!(
            board.entries[0].status.sli.is_some(),
            "a new entry has numbers at once"
        );
    }

    #[test]
    fn notes_say_why_and_when() {
        let slos = [loaded("a", false), loaded("b", true)];
        // a: 42% left, burning at 3x over 6h; b: overspent.
        let data = readings(&[("a", 0.00058, 0.003), ("b", 0.0015, 0.0002)], at(0));
        let board = advance(&Board::default(), &slos, &data, at(0));
        let a = board.entries[0].note.clone().unwrap();
        // 42% of 30 days at 3x: 4.2 days.
        assert!(
            a.starts_with("at the 6h burn rate of 3.0 the budget is gone in 4d 4h ("),
            "{a}"
        );
        let b = board.entries[1].note.clone().unwrap();
        let later = advance(&board, &slos, &data, at(1));
        assert_eq!(
            later.entries[1].note.as_deref(),
            Some(b.replace("now:", &format!("since {}:", at(0))).as_str()),
            "the episode's start, not a new signal"
        );
        assert!(
            b.starts_with(
                "rollback signalled now: -50.0% of the error budget of shop/b is left (SLI 99.8500%"
            ),
            "{b}"
        );
        assert!(
            b.ends_with("the signal clears once 10% of the budget is back"),
            "{b}"
        );
    }

    #[test]
    fn durations_for_people() {
        assert_eq!(human(59), "0m");
        assert_eq!(human(12 * 60), "12m");
        assert_eq!(human(3 * 3600 + 20 * 60), "3h 20m");
        assert_eq!(human(4 * 86_400 + 6 * 3600 + 59 * 60), "4d 6h");
        assert_eq!(human(-5), "0m");
    }
}
