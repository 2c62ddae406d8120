//! Per-object exponential backoff with jitter, so one failing SLO neither hammers the API server
//! nor synchronises its retries with every other failing SLO.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

pub struct Backoff {
    first: Duration,
    max: Duration,
    failures: Mutex<HashMap<String, u32>>,
}

impl Backoff {
    pub fn new(first: Duration, max: Duration) -> Self {
        Backoff {
            first,
            max,
            failures: Mutex::default(),
        }
    }

    /// Counts a failure and returns how long to wait: doubling from `first` up to `max`, times a
    /// random factor between 0.5 and 1.5.
    pub fn failed(&self, key: &str) -> Duration {
        let attempts = {
            let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
            let n = failures.entry(key.to_string()).or_insert(0);
            *n = n.saturating_add(1);
            *n
        };
        let base = self
            .first
            .saturating_mul(2u32.saturating_pow(attempts.saturating_sub(1).min(20)))
            .min(self.max);
        base.mul_f64(0.5 + fastrand::f64())
    }

    pub fn succeeded(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_with_jitter_up_to_the_cap_and_resets() {
        let b = Backoff::new(Duration::from_secs(5), Duration::from_secs(300));
        let delays: Vec<Duration> = (0..10).map(|_| b.failed("a")).collect();
        for (i, d) in delays.iter().enumerate() {
            let base = (5.0 * 2f64.powi(i as i32)).min(300.0);
            let secs = d.as_secs_f64();
            assert!(
                secs >= base * 0.5 && secs <= base * 1.5,
                "attempt {i}: {secs}"
            );
        }
        assert!(
            b.failed("b") <= Duration::from_secs_f64(7.5),
            "keys are independent"
        );
        b.succeeded("a");
        assert!(
            b.failed("a") <= Duration::from_secs_f64(7.5),
            "success resets"
        );
    }
}
