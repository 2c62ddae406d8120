//! Whether a watch is failing, and since when: a watcher that cannot reach the API server
//! yields an error on every retry (kube backs off up to about 30 s), and nothing once it works
//! again until something changes. So a failure is a streak of errors without a gap of a minute
//! between them, ended early by any event.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Errors further apart than this belong to different streaks.
const STREAK_GAP: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
struct Streak {
    since: Instant,
    last: Instant,
    error: String,
}

#[derive(Debug, Default)]
pub struct WatchHealth(Mutex<Option<Streak>>);

impl WatchHealth {
    pub fn failed(&self, error: String) {
        let now = Instant::now();
        let mut streak = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let since = match streak.as_ref() {
            Some(s) if now.duration_since(s.last) < STREAK_GAP => s.since,
            _ => now,
        };
        *streak = Some(Streak {
            since,
            last: now,
            error,
        });
    }

    pub fn worked(&self) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// How long the watch has been failing, and its last error, if for longer than `bound`.
    pub fn failing_for(&self, bound: Duration) -> Option<(Duration, String)> {
        let streak = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let s = streak.as_ref()?;
        let now = Instant::now();
        let current = now.duration_since(s.last) < STREAK_GAP;
        let long = now.duration_since(s.since);
        (current && long >= bound).then(|| (long, s.error.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_streak_of_errors_is_a_failure_until_an_event_comes() {
        let health = WatchHealth::default();
        assert!(health.failing_for(Duration::ZERO).is_none());
        health.failed("connection refused".into());
        health.failed("connection refused again".into());
        let (_, error) = health.failing_for(Duration::ZERO).unwrap();
        assert_eq!(error, "connection refused again");
        assert!(
            health.failing_for(Duration::from_secs(3600)).is_none(),
            "not for that long"
        );
        health.worked();
        assert!(health.failing_for(Duration::ZERO).is_none());
    }
}
