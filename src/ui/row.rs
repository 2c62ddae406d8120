//! One SLO as the pages show it, and what they derive from its status: the state, the decision
//! and how fresh the numbers are. The same status the operator writes (or local mode would).

use k8s_openapi::jiff::Timestamp;

use crate::api::ServiceLevelObjectiveStatus;
use crate::evaluator::status::{self, DATA_AVAILABLE};
use crate::model::Slo;
use crate::server::flagger;

/// An SLO in the list.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub namespace: String,
    pub name: String,
    pub service: String,
    /// Percent, as written, such as `99.9`.
    pub objective: String,
    /// `30d`, `month`, ...
    pub window: String,
    pub status: ServiceLevelObjectiveStatus,
}

/// An SLO on its own page: the row, and what only that page needs.
#[derive(Debug, Clone)]
pub struct Detail {
    pub row: Row,
    /// The validated model; `None` when the spec is invalid (then `problem` says why).
    pub slo: Option<Slo>,
    pub problem: Option<String>,
    /// The operator's SLOs carry a UID, on every series of theirs.
    pub uid: Option<String>,
    /// Where the SLO came from: a manifest file, or the cluster.
    pub source: String,
    /// The object as applied (no managed fields, no status), as YAML.
    pub manifest: String,
}

impl Row {
    /// Budget left in percent, when there are numbers.
    pub fn remaining(&self) -> Option<f64> {
        self.status
            .error_budget
            .as_ref()
            .and_then(|b| b.remaining.parse().ok())
    }

    /// Healthy, Burning, Exhausted or Recovering as the latest round measured it; Unknown
    /// without fresh data.
    pub fn state(&self) -> &'static str {
        status::shown(&self.status).as_str()
    }

    /// The numbers are from a successful read (DataAvailable=True).
    pub fn fresh(&self) -> bool {
        status::fresh(&self.status)
    }

    /// What the rollback signal says, as Flagger's webhook would answer.
    pub fn decision(&self) -> &'static str {
        if !self.fresh() {
            "none (no data)"
        } else if flagger::holds(Some(&self.status)) {
            "ROLL BACK"
        } else {
            "none"
        }
    }

    /// `read 40 s ago`, or why there is no data.
    pub fn freshness(&self, now: Timestamp) -> String {
        let age = self
            .status
            .evaluated_at
            .as_deref()
            .and_then(|t| t.parse::<Timestamp>().ok())
            .map(|t| now.as_second() - t.as_second());
        let data = self
            .status
            .conditions
            .iter()
            .find(|c| c.type_ == DATA_AVAILABLE);
        match (data, age) {
            (Some(c), _) if c.status != "True" => format!("no data: {}", c.reason),
            (_, Some(age)) if age < 120 => format!("read {} s ago", age.max(0)),
            (_, Some(age)) => format!("read {} ago", crate::local::board::human(age)),
            _ => "not read yet".to_string(),
        }
    }

    /// Burn rates by window, shortest window first.
    pub fn burn_rates(&self) -> Vec<(&str, &str)> {
        let mut rates: Vec<(&str, &str)> = self
            .status
            .burn_rates
            .iter()
            .map(|(w, r)| (w.as_str(), r.as_str()))
            .collect();
        rates.sort_by_key(|(w, _)| {
            crate::model::Duration::parse(w, "smhdw").map_or(u64::MAX, |d| d.as_secs())
        });
        rates
    }
}
