//! The operator's own metrics, served on /metrics. Labels are fixed words (results, reasons,
//! condition states), never object names or error text, so cardinality stays flat.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReadyLabel {
    pub ready: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabel {
    pub version: &'static str,
}

/// All metrics, registered once at start-up.
pub struct Metrics {
    pub registry: Registry,
    pub reconciles: Family<ResultLabel, Counter>,
    pub errors: Family<ReasonLabel, Counter>,
    pub duration: Histogram,
    pub slos: Family<ReadyLabel, Gauge>,
    pub leader: Gauge,
    /// Series that named an SLO but were not its own, per evaluation, by why.
    pub foreign: Family<ReasonLabel, Counter>,
    /// Prometheus reads, by result (`ok` or the failure's reason).
    pub reads: Family<ResultLabel, Counter>,
    /// SLOs left out of the cache because this version cannot read them.
    pub unreadable: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("plimsoll");
        let reconciles = Family::<ResultLabel, Counter>::default();
        registry.register(
            "reconciles",
            "Reconciles of ServiceLevelObjectives, by result",
            reconciles.clone(),
        );
        let errors = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "reconcile_errors",
            "Failed reconciles, by reason",
            errors.clone(),
        );
        let duration = Histogram::new(exponential_buckets(0.001, 2.0, 14));
        registry.register(
            "reconcile_duration_seconds",
            "Time one reconcile takes",
            duration.clone(),
        );
        let slos = Family::<ReadyLabel, Gauge>::default();
        registry.register(
            "slos",
            "ServiceLevelObjectives watched, by their Ready condition",
            slos.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this replica holds the leader lease and writes",
            leader.clone(),
        );
        let foreign = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "foreign_series",
            "Series named like an SLO's records but not written by its rules (ignored), by reason",
            foreign.clone(),
        );
        let reads = Family::<ResultLabel, Counter>::default();
        registry.register(
            "prometheus_reads",
            "Rounds of budget reads from Prometheus, by result",
            reads.clone(),
        );
        let unreadable = Gauge::default();
        registry.register(
            "unreadable_objects",
            "ServiceLevelObjectives left out because this version cannot read them (see the log)",
            unreadable.clone(),
        );
        let build = Family::<BuildLabel, Gauge>::default();
        build
            .get_or_create(&BuildLabel {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        registry.register("build_info", "Version of the running binary", build);
        Metrics {
            registry,
            reconciles,
            errors,
            duration,
            slos,
            leader,
            foreign,
            reads,
            unreadable,
        }
    }
}

impl Metrics {
    pub fn foreign_series(&self, reason: &'static str) {
        self.foreign.get_or_create(&ReasonLabel { reason }).inc();
    }

    pub fn set_unreadable(&self, objects: usize) {
        self.unreadable.set(objects as i64);
    }

    pub fn read(&self, result: &'static str) {
        self.reads.get_or_create(&ResultLabel { result }).inc();
    }

    pub fn reconciled(&self, took: Duration, error_reason: Option<&'static str>) {
        self.duration.observe(took.as_secs_f64());
        let result = if error_reason.is_some() {
            "error"
        } else {
            "ok"
        };
        self.reconciles.get_or_create(&ResultLabel { result }).inc();
        if let Some(reason) = error_reason {
            self.errors.get_or_create(&ReasonLabel { reason }).inc();
        }
    }

    /// Sets the SLO gauges from counts of Ready True, False and unknown.
    pub fn set_slos(&self, ready: i64, not_ready: i64, unknown: i64) {
        for (label, n) in [("True", ready), ("False", not_ready), ("Unknown", unknown)] {
            self.slos.get_or_create(&ReadyLabel { ready: label }).set(n);
        }
    }

    /// The OpenMetrics text of all metrics.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_counters_by_static_labels() {
        let m = Metrics::default();
        m.reconciled(Duration::from_millis(3), None);
        m.reconciled(Duration::from_millis(3), Some("ApplyRule"));
        m.set_slos(2, 1, 0);
        m.leader.set(1);
        let text = m.encode().unwrap();
        assert!(
            text.contains("plimsoll_reconciles_total{result=\"ok\"} 1"),
            "{text}"
        );
        assert!(text.contains("plimsoll_reconcile_errors_total{reason=\"ApplyRule\"} 1"));
        assert!(text.contains("plimsoll_slos{ready=\"True\"} 2"));
        assert!(text.contains("plimsoll_leader 1"));
        assert!(text.contains("plimsoll_build_info{version=\""));
        assert!(text.contains("plimsoll_reconcile_duration_seconds_count 2"));
    }
}
