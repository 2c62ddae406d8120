//! Numbers read from Prometheus -> the error budget in the terms people use: SLI, budget left,
//! minutes of full outage spent and left, burn rates, when the budget runs out.

use std::collections::BTreeMap;

use k8s_openapi::jiff::{SignedDuration, Timestamp};

use crate::model::{Duration, Slo};

/// What Prometheus said about one SLO (or one group of it) at one instant.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Reading {
    /// `slo:sli_error:ratio_window`: the share of bad events (or slices) over the window.
    pub window_error_ratio: Option<f64>,
    /// Error ratios of the recorded burn windows (`slo:sli_error:ratio_rate<W>`).
    pub error_ratios: BTreeMap<Duration, f64>,
    /// When the newest of these samples was written.
    pub newest_sample: Option<Timestamp>,
}

/// Why there is no verdict: nothing is decided on missing or stale data.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NoData {
    #[error("no recorded series for this SLO in Prometheus yet")]
    Missing,
    #[error("the newest recorded sample is {age} old; the rules look stalled")]
    Stale { age: String },
    #[error("the recorded error ratio is not a number")]
    NotANumber,
    #[error("Prometheus cannot be queried: {0}")]
    Unreachable(String),
}

impl NoData {
    pub fn reason(&self) -> &'static str {
        match self {
            NoData::Missing => "SeriesMissing",
            NoData::Stale { .. } => "SeriesStale",
            NoData::NotANumber => "NotANumber",
            NoData::Unreachable(_) => "PrometheusUnreachable",
        }
    }
}

/// The budget at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct Assessment {
    /// Good events over the window, in percent.
    pub sli: f64,
    /// Budget left, in percent of the whole budget; negative when overspent.
    pub remaining: f64,
    /// Budget spent, in minutes of full outage.
    pub consumed_minutes: f64,
    /// The whole budget, in minutes of full outage over the window.
    pub total_minutes: f64,
    /// Burn rate per window: 1 spends exactly the budget over the SLO window.
    pub burn_rates: BTreeMap<Duration, f64>,
    /// When the budget is gone at the projection window's burn rate; `None` when it burns at
    /// most 1 or is already gone.
    pub exhaustion: Option<Timestamp>,
}

/// Samples older than this many evaluations of the slow (5m) group mean the rules are not running.
pub const STALE_AFTER: Duration = Duration::from_minutes(10);

/// Judges one reading. `projection` is the window whose burn rate projects exhaustion (the 6h of
/// a 30d SLO).
pub fn assess(
    slo: &Slo,
    reading: &Reading,
    projection: Duration,
    now: Timestamp,
) -> Result<Assessment, NoData> {
    let ratio = reading.window_error_ratio.ok_or(NoData::Missing)?;
    if !ratio.is_finite() {
        return Err(NoData::NotANumber);
    }
    let newest = reading.newest_sample.ok_or(NoData::Missing)?;
    let age = now.duration_since(newest);
    if age > SignedDuration::from_secs(STALE_AFTER.as_secs() as i64) {
        return Err(NoData::Stale {
            age: Duration::from_secs(age.as_secs().max(0) as u64).to_string(),
        });
    }
    let budget = slo.error_budget().as_f64() / 100.0;
    let window_minutes = slo.window.rolling_equivalent().as_secs() as f64 / 60.0;
    let burn_rates: BTreeMap<Duration, f64> = reading
        .error_ratios
        .iter()
        .filter(|(_, r)| r.is_finite())
        .map(|(w, r)| (*w, r / budget))
        .collect();
    let remaining = (1.0 - ratio / budget) * 100.0;
    let exhaustion = burn_rates
        .get(&projection)
        .filter(|burn| **burn > 1.0 && remaining > 0.0)
        .map(|burn| {
            // At `burn` times the sustainable rate, what is left lasts this share of the window.
            let minutes = remaining / 100.0 * window_minutes / burn;
            now + SignedDuration::from_secs((minutes * 60.0).round() as i64)
        });
    Ok(Assessment {
        sli: (1.0 - ratio) * 100.0,
        remaining,
        consumed_minutes: ratio * window_minutes,
        total_minutes: budget * window_minutes,
        burn_rates,
        exhaustion,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ServiceLevelObjective;

    fn slo(objective: f64, window: &str) -> Slo {
        let object: ServiceLevelObjective = serde_json::from_value(serde_json::json!({
            "apiVersion": "plimsoll.dev/v1alpha1", "kind": "ServiceLevelObjective",
            "metadata": {"name": "checkout", "namespace": "shop"},
            "spec": {"service": "checkout", "objective": objective, "window": window,
                     "indicator": {"ratio": {"errors": "e", "total": "t"}}},
        }))
        .unwrap();
        crate::model::validate(&object).unwrap()
    }

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).unwrap()
    }

    const SIX_HOURS: Duration = Duration::from_hours(6);

    fn reading(window_ratio: f64, six_hour_ratio: f64, sampled: i64) -> Reading {
        Reading {
            window_error_ratio: Some(window_ratio),
            error_ratios: BTreeMap::from([
                (Duration::from_hours(1), 0.0005),
                (SIX_HOURS, six_hour_ratio),
            ]),
            newest_sample: Some(at(sampled)),
        }
    }

    #[test]
    fn the_api_example_adds_up() {
        // 99.9% over 30d: 43.2 minutes of budget; a 0.0588% error ratio spends 58.8% of it.
        let a = assess(
            &slo(99.9, "30d"),
            &reading(0.000588, 0.0011, 1000),
            SIX_HOURS,
            at(1000),
        )
        .unwrap();
        assert!((a.total_minutes - 43.2).abs() < 1e-9);
        assert!((a.consumed_minutes - 25.4016).abs() < 1e-9);
        assert!((a.remaining - 41.2).abs() < 1e-9);
        assert!((a.sli - 99.9412).abs() < 1e-9);
        assert!((a.burn_rates[&SIX_HOURS] - 1.1).abs() < 1e-9);
        assert!((a.burn_rates[&Duration::from_hours(1)] - 0.5).abs() < 1e-9);
    }

    #[test]
    fn exhaustion_is_projected_only_when_burning_faster_than_sustainable() {
        let s = slo(99.9, "30d");
        // 41.2% of a 30-day budget left at a 6h burn of 2: gone in 0.412 * 30d / 2 = 6.18 days.
        let a = assess(&s, &reading(0.000588, 0.002, 0), SIX_HOURS, at(0)).unwrap();
        let eta = a.exhaustion.unwrap();
        assert_eq!(
            eta.duration_since(at(0)).as_secs(),
            (0.412 * 30.0 * 86_400.0 / 2.0_f64).round() as i64
        );
        assert_eq!(
            assess(&s, &reading(0.000588, 0.001, 0), SIX_HOURS, at(0))
                .unwrap()
                .exhaustion,
            None
        );
        assert_eq!(
            assess(&s, &reading(0.002, 0.01, 0), SIX_HOURS, at(0))
                .unwrap()
                .exhaustion,
            None,
            "already gone"
        );
    }

    #[test]
    fn overspent_budgets_go_negative() {
        let a = assess(&slo(99.0, "7d"), &reading(0.03, 0.03, 0), SIX_HOURS, at(0)).unwrap();
        assert!((a.remaining + 200.0).abs() < 1e-9);
        assert!((a.total_minutes - 100.8).abs() < 1e-9);
    }

    #[test]
    fn missing_stale_or_nan_data_gives_no_verdict() {
        let s = slo(99.9, "30d");
        assert_eq!(
            assess(&s, &Reading::default(), SIX_HOURS, at(0)),
            Err(NoData::Missing)
        );
        let stale = assess(&s, &reading(0.0, 0.0, 0), SIX_HOURS, at(11 * 60));
        assert_eq!(stale, Err(NoData::Stale { age: "11m".into() }));
        assert!(assess(&s, &reading(0.0, 0.0, 0), SIX_HOURS, at(9 * 60)).is_ok());
        let nan = assess(&s, &reading(f64::NAN, 0.0, 0), SIX_HOURS, at(0));
        assert_eq!(nan, Err(NoData::NotANumber));
    }
}
