//! What the controller remembers between reconciles, small and per SLO UID: which rules are known
//! to match (so a settled SLO costs no GET per round), and which foreign series were already
//! reported. Entries of SLOs that are gone are dropped by `retain`.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A rule known to match its SLO: at this SLO generation, the rule had this resourceVersion.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Match {
    generation: Option<i64>,
    rule_version: String,
    at: Instant,
}

#[derive(Debug, Default)]
pub struct Verified(Mutex<HashMap<String, Match>>);

impl Verified {
    /// Whether the rule is known to match: same SLO generation, same rule version, and checked
    /// within `resync` (after which it is read again as a safety net).
    pub fn holds(
        &self,
        uid: &str,
        generation: Option<i64>,
        rule_version: Option<&str>,
        resync: Duration,
    ) -> bool {
        let known = self.0.lock().unwrap_or_else(|p| p.into_inner());
        known.get(uid).is_some_and(|m| {
            m.generation == generation
                && Some(m.rule_version.as_str()) == rule_version
                && m.at.elapsed() < resync
        })
    }

    pub fn record(&self, uid: &str, generation: Option<i64>, rule_version: String) {
        let entry = Match {
            generation,
            rule_version,
            at: Instant::now(),
        };
        let mut known = self.0.lock().unwrap_or_else(|p| p.into_inner());
        known.insert(uid.to_string(), entry);
    }

    pub fn forget(&self, uid: &str) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(uid);
    }

    /// Forgets every match (the resync reads every rule again).
    pub fn forget_all(&self) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Keeps only the entries of these UIDs.
    pub fn retain(&self, alive: &HashSet<String>) {
        let mut known = self.0.lock().unwrap_or_else(|p| p.into_inner());
        known.retain(|uid, _| alive.contains(uid));
    }

    pub fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Foreign label sets already named in an Event, per SLO UID.
#[derive(Debug, Default)]
pub struct ForeignReported(Mutex<HashMap<String, HashSet<String>>>);

/// At most this many label sets are remembered per SLO; beyond, nothing more is announced.
const PER_SLO: usize = 16;

impl ForeignReported {
    /// True the first time this label set is seen for this SLO.
    pub fn first_time(&self, uid: &str, labels: &str) -> bool {
        let mut seen = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let sets = seen.entry(uid.to_string()).or_default();
        if sets.len() >= PER_SLO {
            return false;
        }
        sets.insert(labels.to_string())
    }

    /// Forgets every match (the resync reads every rule again).
    pub fn forget_all(&self) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Keeps only the entries of these UIDs.
    pub fn retain(&self, alive: &HashSet<String>) {
        let mut seen = self.0.lock().unwrap_or_else(|p| p.into_inner());
        seen.retain(|uid, _| alive.contains(uid));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_match_holds_for_the_same_generation_and_rule_version_only() {
        let v = Verified::default();
        let hour = Duration::from_secs(3600);
        assert!(!v.holds("u", Some(1), Some("5"), hour));
        v.record("u", Some(1), "5".into());
        assert!(v.holds("u", Some(1), Some("5"), hour));
        assert!(!v.holds("u", Some(2), Some("5"), hour), "the SLO changed");
        assert!(!v.holds("u", Some(1), Some("6"), hour), "the rule changed");
        assert!(!v.holds("u", Some(1), Some("5"), Duration::ZERO), "resync");
        v.retain(&HashSet::new());
        assert!(v.is_empty(), "a deleted SLO leaves nothing behind");
    }

    #[test]
    fn foreign_sets_are_announced_once() {
        let f = ForeignReported::default();
        assert!(f.first_time("u", "{job=\"x\"}"));
        assert!(!f.first_time("u", "{job=\"x\"}"));
        assert!(f.first_time("v", "{job=\"x\"}"));
    }
}
