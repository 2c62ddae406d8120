//! The error budget policy as a state machine: Healthy -> Burning -> Exhausted -> Recovering.
//! It signals a rollback once per episode and clears only at the recovery line (hysteresis), and
//! it never moves on missing or stale data.

use k8s_openapi::jiff::Timestamp;

use super::assess::{Assessment, NoData};
use crate::api::RollbackState;
use crate::model::{Duration, RollbackPolicy};

/// What the policy remembers between rounds (kept in the SLO's status).
#[derive(Debug, Clone, PartialEq)]
pub struct Memory {
    pub state: RollbackState,
    /// When the current state began.
    pub since: Timestamp,
}

/// What to do to the targets this round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    None,
    /// A new episode: signal the rollback.
    Trigger,
    /// The budget is back above the recovery line: remove the signal.
    Clear,
}

/// The outcome of one round.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub memory: Memory,
    pub action: Action,
}

/// Whether the trigger holds for this assessment.
pub fn triggered(policy: &RollbackPolicy, a: &Assessment) -> bool {
    let below = a.remaining < policy.budget_remaining_below.as_f64();
    let burning = policy.burn_rate_above.as_ref().is_some_and(|b| {
        a.burn_rates
            .get(&b.window)
            .is_some_and(|rate| *rate > b.factor)
    });
    below || burning
}

/// One round of the policy. `sustained` is the window whose burn rate above 1 counts as Burning.
pub fn decide(
    policy: &RollbackPolicy,
    previous: &Memory,
    verdict: Result<&Assessment, &NoData>,
    sustained: Duration,
    now: Timestamp,
) -> Step {
    let Ok(a) = verdict else {
        return Step {
            memory: previous.clone(),
            action: Action::None,
        };
    };
    let trigger = triggered(policy, a);
    let recovered = !trigger && a.remaining >= policy.recover_above.as_f64();
    let calm = if a.burn_rates.get(&sustained).is_some_and(|r| *r > 1.0) {
        RollbackState::Burning
    } else {
        RollbackState::Healthy
    };
    use RollbackState::*;
    let (state, action) = match previous.state {
        Healthy | Burning if trigger => (Exhausted, Action::Trigger),
        Healthy | Burning => (calm, Action::None),
        Exhausted | Recovering if recovered => (calm, Action::Clear),
        // Back under the trigger while recovering: the same episode, signalled already.
        Exhausted | Recovering if trigger => (Exhausted, Action::None),
        Exhausted | Recovering => (Recovering, Action::None),
    };
    let since = if state == previous.state {
        previous.since
    } else {
        now
    };
    Step {
        memory: Memory { state, since },
        action,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::model::{BurnRateTrigger, Percent};
    use RollbackState::*;

    const HOUR: Duration = Duration::from_hours(1);
    const SIX_HOURS: Duration = Duration::from_hours(6);

    fn policy(below: f64, recover: f64, burn: Option<f64>) -> RollbackPolicy {
        RollbackPolicy {
            budget_remaining_below: Percent::from_f64(below).unwrap(),
            burn_rate_above: burn.map(|factor| BurnRateTrigger {
                window: HOUR,
                factor,
            }),
            recover_above: Percent::from_f64(recover).unwrap(),
            targets: vec![],
            abort_rollouts: false,
            analysis_template: false,
            dry_run: false,
        }
    }

    fn assessment(remaining: f64, burn_1h: f64, burn_6h: f64) -> Assessment {
        Assessment {
            sli: 99.9,
            remaining,
            consumed_minutes: 0.0,
            total_minutes: 43.2,
            burn_rates: BTreeMap::from([(HOUR, burn_1h), (SIX_HOURS, burn_6h)]),
            exhaustion: None,
        }
    }

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).unwrap()
    }

    fn step(p: &RollbackPolicy, from: RollbackState, a: &Assessment) -> Step {
        let previous = Memory {
            state: from,
            since: at(0),
        };
        decide(p, &previous, Ok(a), SIX_HOURS, at(100))
    }

    #[test]
    fn every_transition() {
        let p = policy(0.0, 10.0, Some(14.4));
        // (from, remaining, 1h burn, 6h burn) -> (to, action)
        let table = [
            (Healthy, 50.0, 0.5, 0.5, Healthy, Action::None),
            (Healthy, 50.0, 0.5, 2.0, Burning, Action::None),
            (Healthy, -0.1, 0.5, 0.5, Exhausted, Action::Trigger),
            (Healthy, 50.0, 20.0, 20.0, Exhausted, Action::Trigger),
            (Burning, 30.0, 2.0, 2.0, Burning, Action::None),
            (Burning, 30.0, 0.9, 0.9, Healthy, Action::None),
            (Burning, -5.0, 2.0, 2.0, Exhausted, Action::Trigger),
            (Exhausted, -5.0, 2.0, 2.0, Exhausted, Action::None),
            (Exhausted, 5.0, 0.5, 0.5, Recovering, Action::None),
            (Exhausted, 10.0, 0.5, 0.5, Healthy, Action::Clear),
            (Exhausted, 12.0, 0.5, 3.0, Burning, Action::Clear),
            (Exhausted, 50.0, 20.0, 20.0, Exhausted, Action::None),
            (Recovering, 5.0, 0.5, 0.5, Recovering, Action::None),
            (Recovering, -1.0, 0.5, 0.5, Exhausted, Action::None),
            (Recovering, 50.0, 15.0, 15.0, Exhausted, Action::None),
            (Recovering, 10.0, 0.5, 0.5, Healthy, Action::Clear),
        ];
        for (from, remaining, b1, b6, to, action) in table {
            let s = step(&p, from, &assessment(remaining, b1, b6));
            assert_eq!(
                (s.memory.state, s.action),
                (to, action),
                "{from:?} at {remaining}% (1h {b1}, 6h {b6})"
            );
            let expected_since = if to == from { at(0) } else { at(100) };
            assert_eq!(s.memory.since, expected_since, "{from:?} -> {to:?}");
        }
    }

    #[test]
    fn no_data_changes_nothing() {
        let p = policy(0.0, 10.0, None);
        for state in [Healthy, Burning, Exhausted, Recovering] {
            let previous = Memory {
                state,
                since: at(0),
            };
            let s = decide(&p, &previous, Err(&NoData::Missing), SIX_HOURS, at(100));
            assert_eq!(
                s,
                Step {
                    memory: previous,
                    action: Action::None
                }
            );
        }
    }

    #[test]
    fn flapping_at_the_line_signals_once_and_clears_once() {
        let p = policy(0.0, 10.0, None);
        let mut memory = Memory {
            state: Healthy,
            since: at(0),
        };
        let mut actions = Vec::new();
        let series = [
            1.0, 0.2, -0.1, 0.3, -0.2, 0.1, 4.0, -0.3, 9.9, 10.0, 9.5, 0.4, -0.1, 12.0,
        ];
        for (i, remaining) in series.iter().enumerate() {
            let s = decide(
                &p,
                &memory,
                Ok(&assessment(*remaining, 0.5, 0.5)),
                SIX_HOURS,
                at(i as i64),
            );
            if s.action != Action::None {
                actions.push((i, s.action));
            }
            memory = s.memory;
        }
        // Triggered at -0.1; the dips and rises below 10 are one episode; cleared at 10.0; the
        // next dip below 0 is a new episode, cleared at 12.
        assert_eq!(
            actions,
            [
                (2, Action::Trigger),
                (9, Action::Clear),
                (12, Action::Trigger),
                (13, Action::Clear)
            ]
        );
    }

    #[test]
    fn a_burn_trigger_alone_fires_and_the_budget_line_still_governs_recovery() {
        let p = policy(0.0, 10.0, Some(14.4));
        let s = step(&p, Healthy, &assessment(80.0, 15.0, 3.0));
        assert_eq!((s.memory.state, s.action), (Exhausted, Action::Trigger));
        let s = step(&p, Exhausted, &assessment(78.0, 1.0, 3.0));
        assert_eq!((s.memory.state, s.action), (Burning, Action::Clear));
    }
}
