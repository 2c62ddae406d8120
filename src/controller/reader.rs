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
use crate::evaluator::{self, ReadResult};
use crate::metrics::Metrics;
use crate::model;
use crate::prometheus::{self, ReadingScope, Readings};
use crate::slo_cache::SloCache;

/// One round's readings, and when they were read.
#[derive(Debug)]
pub struct Round {
    pub at: Timestamp,
    pub result: ReadResult,
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
        let calendars = evaluator::calendars(calendar.iter().map(|(ns, m)| (ns.as_str(), m)), now);
        let result = prometheus::read(&self.prometheus, &self.scope, &calendars, now).await;
        match &result {
            Ok(_) => self.metrics.read("ok"),
            Err(f) => {
                self.metrics.read(f.reason);
                warn!(reason = f.reason, error = %f.message, "Prometheus read failed; SLOs show DataAvailable=False");
            }
        }
        let previous = self.latest.replace(Round { at: now, result });
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
    let claimed = |r: &Readings| r.claimed(&namespace, &name).to_vec();
    match (previous.map(|p| &p.result), &current.result) {
        (None, _) => true,
        (Some(Ok(before)), Ok(after)) => {
            let now_claimed = claimed(after);
            claimed(before) != now_claimed
                || aging(&now_claimed, now)
                || matches!(slo.spec.window.as_str(), "month" | "week")
        }
        (Some(Err(before)), Err(after)) => before != after,
        _ => true,
    }
}

/// Whether any of these readings is older than the staleness bound.
fn aging(sets: &[prometheus::readings::Labelled], now: Timestamp) -> bool {
    let bound = now - SignedDuration::from_secs(STALE_AFTER.as_secs() as i64);
    sets.iter().any(|set| {
        let r = &set.reading;
        r.newest_sample.is_none_or(|t| t < bound) || r.ratios_written.values().any(|t| *t < bound)
    })
}
