//! The two client-side limits: a cap on requests in flight and a token bucket on the rate at
//! which requests start.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use http::Uri;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::stats::{Counters, Gauge, Level};

/// Whether a request is a long-lived stream rather than a call that answers and ends.
///
/// Watches (`watch=true` or `watch=1`, what kube-runtime's watcher sends) stream for minutes.
/// Were they to hold an in-flight slot, a handful of watchers would use up the whole cap and
/// starve every reconcile. The API server makes the same cut: its own in-flight limits
/// (`--max-requests-inflight`, and APF's concurrency seats) do not count long-running requests
/// for their whole life either. `follow=true` log streams are long-running in the same way; the
/// operator sends none, but one must not pin a slot forever if someone adds it.
pub(crate) fn is_long_running(uri: &Uri) -> bool {
    let Some(query) = uri.query() else {
        return false;
    };
    query.split('&').any(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        matches!(key, "watch" | "follow") && matches!(value, "true" | "1")
    })
}

/// The cap on requests in flight. `None` inside means no cap.
#[derive(Debug)]
pub(crate) struct InFlight {
    slots: Option<Arc<Semaphore>>,
}

/// An in-flight slot; the slot frees when this is dropped.
#[derive(Debug)]
pub(crate) struct Slot {
    _permit: Option<OwnedSemaphorePermit>,
    _gauge: Gauge,
}

impl InFlight {
    pub(crate) fn new(max_in_flight: usize) -> Self {
        InFlight {
            slots: (max_in_flight > 0).then(|| Arc::new(Semaphore::new(max_in_flight))),
        }
    }

    /// Waits for a slot. Tokio's semaphore is fair (first come, first served), so a burst of
    /// 10,000 reconciles drains in order and none waits indefinitely behind later arrivals.
    pub(crate) async fn acquire(&self, counters: &Counters) -> Slot {
        let permit = match &self.slots {
            Some(slots) => {
                let _waiting = counters.raise(Level::Waiting);
                // The semaphore is never closed, so an error cannot happen; if it ever did,
                // going on without a slot is better than failing the request.
                Arc::clone(slots).acquire_owned().await.ok()
            }
            None => None,
        };
        Slot {
            _permit: permit,
            _gauge: counters.raise(Level::InFlight),
        }
    }
}

/// A token bucket: `burst` tokens, refilled at `qps` per second, one token per request start.
///
/// Built like golang.org/x/time/rate, which client-go's rate limiter uses: a request that finds
/// the bucket empty takes a token anyway, driving the count below zero, and sleeps exactly until
/// its token will have been refilled. Waiters thus line up in arrival order, each sleeps once,
/// and nothing polls in a loop.
#[derive(Debug)]
pub(crate) struct TokenBucket {
    /// `None` when the rate is unlimited (qps 0).
    rate: Option<Rate>,
}

#[derive(Debug)]
struct Rate {
    qps: f64,
    burst: f64,
    state: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// The longest single wait we compute. Only reachable with absurdly low rates; it keeps
/// `Instant` arithmetic from overflowing instead of panicking.
const LONGEST_WAIT: Duration = Duration::from_secs(365 * 24 * 3600);

impl TokenBucket {
    /// `qps` must be finite and non-negative and `burst` at least 1 when `qps > 0`; the caller
    /// ([`super::Limits::validate`]) checks that.
    pub(crate) fn new(qps: f64, burst: u32) -> Self {
        let rate = (qps > 0.0).then(|| Rate {
            qps,
            burst: f64::from(burst.max(1)),
            state: Mutex::new(Bucket {
                tokens: f64::from(burst.max(1)),
                last: Instant::now(),
            }),
        });
        TokenBucket { rate }
    }

    /// Takes one token, sleeping until it is there.
    pub(crate) async fn acquire(&self, counters: &Counters) {
        let Some(rate) = &self.rate else {
            return;
        };
        let Some(at) = rate.reserve() else {
            return;
        };
        let _waiting = counters.raise(Level::Waiting);
        let mut refund = Refund(Some(rate));
        tokio::time::sleep_until(at).await;
        refund.0 = None;
    }
}

impl Rate {
    /// Takes a token now; returns when it may be used if the bucket was empty.
    fn reserve(&self) -> Option<Instant> {
        let now = Instant::now();
        let mut b = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.qps).min(self.burst);
        b.last = now;
        b.tokens -= 1.0;
        if b.tokens >= 0.0 {
            return None;
        }
        let wait = Duration::try_from_secs_f64(-b.tokens / self.qps)
            .unwrap_or(LONGEST_WAIT)
            .min(LONGEST_WAIT);
        Some(now + wait)
    }

    fn give_back(&self) {
        let mut b = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        b.tokens = (b.tokens + 1.0).min(self.burst);
    }
}

/// Puts a reserved token back if the waiting request is dropped before its turn (its caller
/// gave up), so cancelled requests do not slow down the ones behind them. Later waiters keep
/// their computed times; the returned token goes to the next newcomer, which keeps the rate.
struct Refund<'a>(Option<&'a Rate>);

impl Drop for Refund<'_> {
    fn drop(&mut self) {
        if let Some(rate) = self.0 {
            rate.give_back();
        }
    }
}
