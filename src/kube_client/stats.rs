//! Counters of what the limit did, so an operator can tell "we are throttling ourselves" from "the
//! API server is throttling us" without reading debug logs.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A point-in-time copy of the counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Requests put on the wire, retries included.
    pub sent: u64,
    /// Answers that asked us to slow down: every 429, and every 503 with Retry-After.
    pub throttled: u64,
    /// Times a throttled request was sent again.
    pub retried: u64,
    /// Throttled answers handed to the caller because the retries ran out or the server asked
    /// for a longer wait than we are willing to hold a request for.
    pub exhausted: u64,
    /// Requests waiting right now for an in-flight slot or a rate token (a gauge).
    pub waiting: u64,
    /// Requests that hold an in-flight slot right now (a gauge).
    pub in_flight: u64,
    /// Throttled requests sleeping right now before their retry (a gauge).
    pub backing_off: u64,
}

/// The live counters behind a limit; cheap to clone, every clone sees the same numbers.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    inner: Arc<Cells>,
}

#[derive(Debug, Default)]
struct Cells {
    sent: AtomicU64,
    throttled: AtomicU64,
    retried: AtomicU64,
    exhausted: AtomicU64,
    waiting: AtomicU64,
    in_flight: AtomicU64,
    backing_off: AtomicU64,
}

/// Which gauge a [`Gauge`] guard holds up.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Level {
    Waiting,
    InFlight,
    BackingOff,
}

impl Counters {
    /// Reads every counter. Each is read on its own (relaxed), so the numbers may be a moment
    /// apart from each other; they are for dashboards, not for decisions.
    pub fn stats(&self) -> Stats {
        let c = &self.inner;
        Stats {
            sent: c.sent.load(Ordering::Relaxed),
            throttled: c.throttled.load(Ordering::Relaxed),
            retried: c.retried.load(Ordering::Relaxed),
            exhausted: c.exhausted.load(Ordering::Relaxed),
            waiting: c.waiting.load(Ordering::Relaxed),
            in_flight: c.in_flight.load(Ordering::Relaxed),
            backing_off: c.backing_off.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn sent(&self) {
        self.inner.sent.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn throttled(&self) {
        self.inner.throttled.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn retried(&self) {
        self.inner.retried.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn exhausted(&self) {
        self.inner.exhausted.fetch_add(1, Ordering::Relaxed);
    }

    /// Raises a gauge until the returned guard is dropped. A guard, not a pair of calls, so a
    /// request future dropped mid-wait (its caller gave up) still lowers the gauge.
    pub(crate) fn raise(&self, level: Level) -> Gauge {
        self.cell(level).fetch_add(1, Ordering::Relaxed);
        Gauge {
            counters: self.clone(),
            level,
        }
    }

    fn cell(&self, level: Level) -> &AtomicU64 {
        match level {
            Level::Waiting => &self.inner.waiting,
            Level::InFlight => &self.inner.in_flight,
            Level::BackingOff => &self.inner.backing_off,
        }
    }
}

/// Holds one gauge up by one while alive.
#[derive(Debug)]
pub(crate) struct Gauge {
    counters: Counters,
    level: Level,
}

impl Drop for Gauge {
    fn drop(&mut self) {
        self.counters
            .cell(self.level)
            .fetch_sub(1, Ordering::Relaxed);
    }
}
