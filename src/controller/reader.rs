//! The reader: one task on the leader that reads every SLO's series from Prometheus once per
//! round (a fixed number of queries, whatever the number of SLOs), keeps the latest round, and
//! wakes the SLOs whose readings changed. It writes nothing: each SLO's reconcile judges from the
//! latest round and is the only writer of that SLO's status and actions.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::ResourceExt;
use tracing::{debug, warn};

use crate::api::ServiceLevelObjective;
use crate::budget::STALE_AFTER;
use crate::evaluator::ReadResult;
use crate::metrics::Metrics;
use crate::model;
use crate::prometheus::readings::Labelled;
use crate::prometheus::version::{TooOld, check_native_histograms};
use crate::prometheus::{self, ReadingScope};
use crate::slo_cache::SloCache;

/// One round's readings, and when they were read.
#[derive(Debug)]
pub struct Round {
    pub at: Timestamp,
    pub result: ReadResult,
    /// Whether the server evaluates native histograms: learned while some SLO reads one, kept
    /// through failed reads; `None` until learned.
    pub native_histograms: Option<Result<(), TooOld>>,
}

/// The latest round, shared with every reconcile.
#[derive(Debug, Default)]
pub struct Latest(RwLock<Option<Arc<Round>>>);

impl Latest {
    pub fn latest(&self) -> Option<Arc<Round>> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Keeps `round` and returns the one before.
    pub fn replace(&self, round: Round) -> Option<Arc<Round>> {
        let mut guard = self.0.write().unwrap_or_else(|p| p.into_inner());
        guard.replace(Arc::new(round))
    }

    /// Forgets the readings (a term ended: the next leader reads afresh).
    pub fn clear(&self) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

/// What the reader needs.
pub struct Reader {
    pub prometheus: prometheus::Client,
    pub scope: ReadingScope,
    pub interval: Duration,
    pub cache: Arc<SloCache>,
    pub latest: Arc<Latest>,
    pub metrics: Arc<Metrics>,
    /// `key=value,...` of `--rule-label`, for the message of an SLO whose rules Prometheus has
    /// not loaded.
    pub rule_labels: String,
}

impl Reader {
    /// Reads every `interval` until dropped (the task is aborted when the term ends).
    pub async fn run(self) {
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let woken = self.round().await;
            debug!(woken, "read round");
        }
    }

    /// One round: read, keep, wake. Returns how many SLOs were woken.
    pub async fn round(&self) -> usize {
        let now = Timestamp::now();
        let slos = self.cache.all();
        // Only calendar SLOs need their model here; the window's spelling picks them.
        let calendar: Vec<(String, model::Slo)> = slos
            .iter()
            .filter(|o| matches!(o.spec.window.as_str(), "month" | "week"))
            .filter_map(|o| Some((o.namespace()?, model::validate(o).ok()?)))
            .collect();
        let calendars =
            prometheus::read::calendars(calendar.iter().map(|(ns, m)| (ns.as_str(), m)), now);
        let mut result = prometheus::read(&self.prometheus, &self.scope, &calendars, now).await;
        let native_histograms = self.native_histograms(&slos).await;
        if let Ok(readings) = &mut result {
            self.loaded_rules(readings, &slos).await;
        }
        match &result {
            Ok(_) => self.metrics.read("ok"),
            Err(f) => {
                self.metrics.read(f.reason);
                warn!(reason = f.reason, error = %f.message, "Prometheus read failed; SLOs show DataAvailable=False");
            }
        }
        let previous = self.latest.replace(Round {
            at: now,
            result,
            native_histograms,
        });
        let Some(current) = self.latest.latest() else {
            return 0;
        };
        let woken: Vec<Arc<ServiceLevelObjective>> = slos
            .into_iter()
            .filter(|slo| changed(previous.as_deref(), &current, slo, now))
            .collect();
        self.cache.wake(&woken);
        woken.len()
    }

    /// Whether the server evaluates native histograms, asked only while some SLO reads one; a
    /// failed question keeps the last answer.
    async fn native_histograms(
        &self,
        slos: &[Arc<ServiceLevelObjective>],
    ) -> Option<Result<(), TooOld>> {
        let known = self
            .latest
            .latest()
            .and_then(|r| r.native_histograms.clone());
        if !slos.iter().any(|s| reads_native_histograms(s)) {
            return known;
        }
        match check_native_histograms(&self.prometheus).await {
            Ok(verdict) => Some(verdict),
            Err(e) => {
                debug!(error = %e, "Prometheus did not say its version");
                known
            }
        }
    }

    /// When some SLO has no series at all, asks Prometheus which of our rule groups it has
    /// loaded (one request, only then), so those SLOs can say whether their rules are loaded.
    /// An endpoint that does not answer leaves it unknown: they say only that series are missing.
    async fn loaded_rules(
        &self,
        readings: &mut prometheus::Readings,
        slos: &[Arc<ServiceLevelObjective>],
    ) {
        let unread = slos.iter().any(|slo| {
            let namespace = slo.namespace().unwrap_or_default();
            readings.claimed(&namespace, &slo.name_any()).is_empty()
        });
        if !unread {
            return;
        }
        match prometheus::loaded_rule_groups(&self.prometheus).await {
            Ok(groups) => readings.set_loaded_rules(prometheus::LoadedRules::from_groups(
                groups.iter().map(String::as_str),
                self.rule_labels.clone(),
            )),
            Err(e) => debug!(error = %e, "Prometheus did not list its rule groups"),
        }
    }
}

/// Whether an SLO's reconcile should look at the new round: its series changed, the read
/// failed or recovered, or what it has is aging into staleness (no value moves then).
fn changed(
    previous: Option<&Round>,
    current: &Round,
    slo: &ServiceLevelObjective,
    now: Timestamp,
) -> bool {
    let (namespace, name) = (slo.namespace().unwrap_or_default(), slo.name_any());
    // While a rollback holds, every round looks at the targets (new revisions, lost signals).
    if holds(slo) {
        return true;
    }
    match (previous.map(|p| &p.result), &current.result) {
        (None, _) => true,
        (Some(Ok(before_all)), Ok(after_all)) => {
            let (before, after) = (
                before_all.claimed(&namespace, &name),
                after_all.claimed(&namespace, &name),
            );
            // Sample times move every evaluation; only values (and aging) are news. A calendar
            // budget also moves with the share of the period gone by.
            let loaded = |r: &prometheus::Readings| r.rules_loaded(&namespace, &name).map(|l| l.0);
            let rules_moved = loaded(before_all) != loaded(after_all);
            let version_learned = reads_native_histograms(slo)
                && previous.map(|p| &p.native_histograms) != Some(&current.native_histograms);
            !same_values(before, after)
                || rules_moved
                || version_learned
                || aging(after, now)
                || matches!(slo.spec.window.as_str(), "month" | "week")
        }
        (Some(Err(before)), Err(after)) => before != after,
        _ => true,
    }
}

/// Whether the SLO's indicator is a native histogram, which only Prometheus 3 evaluates.
pub fn reads_native_histograms(slo: &ServiceLevelObjective) -> bool {
    slo.spec.indicator.native_latency.is_some()
}

/// Whether the SLO's last written state holds a rollback.
fn holds(slo: &ServiceLevelObjective) -> bool {
    let state = slo
        .status
        .as_ref()
        .and_then(|s| s.rollback.as_ref())
        .map(|r| r.state);
    matches!(
        state,
        Some(crate::api::RollbackState::Exhausted | crate::api::RollbackState::Recovering)
    )
}

/// Whether both rounds read the same label sets with the same values.
fn same_values(a: &[Labelled], b: &[Labelled]) -> bool {
    let bits = |v: Option<f64>| v.map(f64::to_bits);
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            let (r, s) = (&x.reading, &y.reading);
            x.labels == y.labels
                && bits(r.window_error_ratio) == bits(s.window_error_ratio)
                && bits(r.period_error_ratio) == bits(s.period_error_ratio)
                && r.error_ratios.len() == s.error_ratios.len()
                && r.error_ratios
                    .iter()
                    .zip(&s.error_ratios)
                    .all(|((w, v), (u, t))| w == u && v.to_bits() == t.to_bits())
        })
}

/// Whether any of these readings is older than the staleness bound.
fn aging(sets: &[Labelled], now: Timestamp) -> bool {
    let bound = now - SignedDuration::from_secs(STALE_AFTER.as_secs() as i64);
    sets.iter().any(|set| {
        let r = &set.reading;
        r.newest_sample.is_none_or(|t| t < bound) || r.ratios_written.values().any(|t| *t < bound)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::Reading;
    use crate::model::Duration as Window;

    fn slo() -> ServiceLevelObjective {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "plimsoll.dev/v1alpha1", "kind": "ServiceLevelObjective",
            "metadata": {"name": "checkout", "namespace": "shop"},
            "spec": {"service": "checkout", "objective": 99.9, "window": "30d",
                     "indicator": {"ratio": {"errors": "e", "total": "t"}}},
        }))
        .unwrap()
    }

    fn round(ratio: f64, written: Timestamp) -> Round {
        let mut r = prometheus::Readings::default();
        let reading = Reading {
            window_error_ratio: Some(ratio),
            error_ratios: [(Window::from_hours(1), ratio)].into(),
            ..Reading::default()
        };
        r.insert_own(
            "shop",
            "checkout",
            "checkout",
            None,
            reading.written_at(written),
        );
        Round {
            at: written,
            result: Ok(r),
            native_histograms: None,
        }
    }

    #[test]
    fn only_moved_values_aging_data_or_a_changed_read_wake_an_slo() {
        let t = Timestamp::from_second(1_800_000_000).unwrap();
        let later = t + SignedDuration::from_secs(60);
        let s = slo();
        assert!(changed(None, &round(0.1, t), &s, t), "the first round");
        let (before, after) = (round(0.1, t), round(0.1, later));
        assert!(
            !changed(Some(&before), &after, &s, later),
            "only sample times moved"
        );
        assert!(changed(Some(&before), &round(0.2, later), &s, later));
        let much_later = t + SignedDuration::from_secs(11 * 60);
        let stalled = round(0.1, t);
        assert!(
            changed(Some(&before), &stalled, &s, much_later),
            "aging into staleness"
        );
        let failed = Round {
            at: later,
            result: Err(prometheus::Failure {
                reason: "PrometheusUnreachable",
                message: "down".into(),
            }),
            native_histograms: None,
        };
        assert!(changed(Some(&before), &failed, &s, later));
        assert!(
            !changed(Some(&failed), &failed, &s, later),
            "still down: no news"
        );
    }
}
