//! Load measurement and injected trouble. A request is in flight from arrival until its response
//! body is sent; a watch only until its headers are, and then counts as an open watch. The
//! request rate is the peak number of (non-watch) arrivals within any sliding second.
//!
//! Throttling answers 429 with `Retry-After: 1` and details.retryAfterSeconds, as API Priority and
//! Fairness does when a priority level's seats are taken or its queues are full.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::status::ApiError;

/// What the server saw since start (or the last reset).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stats {
    /// Requests by (verb, resource, subresource); verbs as RBAC names them (get, list, watch,
    /// create, update, patch, delete, deletecollection).
    pub requests: BTreeMap<(String, String, String), u64>,
    pub total: u64,
    /// POST, PUT, PATCH and DELETE requests.
    pub writes: u64,
    pub in_flight: usize,
    pub peak_in_flight: usize,
    pub open_watches: usize,
    pub peak_open_watches: usize,
    /// Peak non-watch requests within one sliding second.
    pub peak_rps: usize,
    /// Answered 429 by the throttle.
    pub throttled: u64,
    /// Answered with an injected fault.
    pub injected: u64,
}

impl Stats {
    /// Requests with this verb on this resource (`plural` or `plural/subresource`).
    pub fn count(&self, verb: &str, resource: &str) -> u64 {
        let (plural, sub) = resource.split_once('/').unwrap_or((resource, ""));
        self.requests
            .get(&(verb.to_string(), plural.to_string(), sub.to_string()))
            .copied()
            .unwrap_or(0)
    }

    /// Requests with this verb on any resource.
    pub fn verb(&self, verb: &str) -> u64 {
        self.requests
            .iter()
            .filter(|((v, _, _), _)| v == verb)
            .map(|(_, n)| n)
            .sum()
    }
}

/// A fault for the next `times` requests that match.
#[derive(Clone, Debug)]
pub struct Fault {
    /// RBAC verb, or `*`.
    pub verb: String,
    /// `plural`, `plural/subresource`, or `*`.
    pub resource: String,
    pub name: Option<String>,
    /// The status to answer; 0 answers normally (after `delay`).
    pub code: u16,
    pub times: usize,
    pub retry_after: Option<u64>,
    pub message: Option<String>,
    pub delay: Duration,
}

impl Fault {
    /// Fails the next matching request with 500.
    pub fn new(verb: &str, resource: &str) -> Fault {
        Fault {
            verb: verb.to_string(),
            resource: resource.to_string(),
            name: None,
            code: 500,
            times: 1,
            retry_after: None,
            message: None,
            delay: Duration::ZERO,
        }
    }

    pub fn named(mut self, name: &str) -> Fault {
        self.name = Some(name.to_string());
        self
    }

    pub fn status(mut self, code: u16) -> Fault {
        self.code = code;
        self
    }

    pub fn times(mut self, times: usize) -> Fault {
        self.times = times;
        self
    }

    pub fn retry_after(mut self, seconds: u64) -> Fault {
        self.retry_after = Some(seconds);
        self
    }

    pub fn message(mut self, message: &str) -> Fault {
        self.message = Some(message.to_string());
        self
    }

    /// Delays matching requests; with `status(0)` they are then served normally.
    pub fn delay(mut self, delay: Duration) -> Fault {
        self.delay = delay;
        self
    }

    fn matches(&self, verb: &str, resource: &str, name: &str) -> bool {
        (self.verb == "*" || self.verb == verb)
            && (self.resource == "*" || self.resource == resource)
            && self.name.as_deref().is_none_or(|n| n == name)
    }
}

/// Limits beyond which requests get 429.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Throttle {
    pub max_in_flight: Option<usize>,
    pub max_per_second: Option<usize>,
}

#[derive(Default)]
struct State {
    stats: Stats,
    arrivals: VecDeque<Instant>,
    admitted: VecDeque<Instant>,
    faults: Vec<Fault>,
    throttle: Option<Throttle>,
    latency: Duration,
    /// Requests (watches too) since the start: never reset, for holds.
    arrived: u64,
    /// Admitted requests wait until `arrived` reaches this.
    hold_until: Option<u64>,
}

#[derive(Default)]
pub struct Load {
    state: Mutex<State>,
}

/// Holds a request in flight (or a watch open) until dropped.
pub struct Guard {
    load: Arc<Load>,
    watch: bool,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let mut s = self.load.state.lock().unwrap();
        if self.watch {
            s.stats.open_watches -= 1;
        } else {
            s.stats.in_flight -= 1;
        }
    }
}

fn slide(window: &mut VecDeque<Instant>, now: Instant) {
    while window
        .front()
        .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1))
    {
        window.pop_front();
    }
}

impl Load {
    /// Counts a request and admits it, or answers 429 when throttled.
    pub fn arrive(
        self: &Arc<Self>,
        key: (String, String, String),
        watch: bool,
        write: bool,
    ) -> Result<Guard, ApiError> {
        let now = Instant::now();
        let mut s = self.state.lock().unwrap();
        s.arrived += 1;
        *s.stats.requests.entry(key).or_default() += 1;
        s.stats.total += 1;
        s.stats.writes += u64::from(write);
        if !watch {
            s.arrivals.push_back(now);
            slide(&mut s.arrivals, now);
            s.stats.peak_rps = s.stats.peak_rps.max(s.arrivals.len());
            slide(&mut s.admitted, now);
            if let Some(t) = s.throttle {
                let busy = t.max_in_flight.is_some_and(|k| s.stats.in_flight >= k);
                let fast = t.max_per_second.is_some_and(|r| s.admitted.len() >= r);
                if busy || fast {
                    s.stats.throttled += 1;
                    return Err(ApiError::too_many_requests(1));
                }
            }
            s.admitted.push_back(now);
        }
        s.stats.in_flight += 1;
        s.stats.peak_in_flight = s.stats.peak_in_flight.max(s.stats.in_flight);
        Ok(Guard {
            load: self.clone(),
            watch: false,
        })
    }

    pub fn open_watch(self: &Arc<Self>) -> Guard {
        let mut s = self.state.lock().unwrap();
        s.stats.open_watches += 1;
        s.stats.peak_open_watches = s.stats.peak_open_watches.max(s.stats.open_watches);
        Guard {
            load: self.clone(),
            watch: true,
        }
    }

    /// The injected fault for this request, if any (counted down), and the delay to add.
    pub fn fault(&self, verb: &str, resource: &str, name: &str) -> (Option<ApiError>, Duration) {
        let mut s = self.state.lock().unwrap();
        let mut delay = s.latency;
        let Some(i) = s
            .faults
            .iter()
            .position(|f| f.matches(verb, resource, name))
        else {
            return (None, delay);
        };
        let fault = s.faults[i].clone();
        s.faults[i].times -= 1;
        if s.faults[i].times == 0 {
            s.faults.remove(i);
        }
        delay += fault.delay;
        if fault.code == 0 {
            return (None, delay);
        }
        s.stats.injected += 1;
        let error = ApiError::injected(fault.code, fault.retry_after, fault.message.as_deref());
        (Some(error), delay)
    }

    pub fn inject(&self, fault: Fault) {
        if fault.times > 0 {
            self.state.lock().unwrap().faults.push(fault);
        }
    }

    pub fn clear_faults(&self) {
        self.state.lock().unwrap().faults.clear();
    }

    /// A new throttle starts counting the rate afresh.
    pub fn set_throttle(&self, throttle: Option<Throttle>) {
        let mut s = self.state.lock().unwrap();
        s.throttle = throttle;
        s.admitted.clear();
    }

    pub fn set_latency(&self, latency: Duration) {
        self.state.lock().unwrap().latency = latency;
    }

    /// From now on, admitted requests are held until `more` requests have arrived.
    pub fn hold_until_arrived(&self, more: u64) {
        let mut s = self.state.lock().unwrap();
        s.hold_until = Some(s.arrived + more);
    }

    /// Whether an admitted request must still wait for the hold.
    pub fn holding(&self) -> bool {
        let s = self.state.lock().unwrap();
        s.hold_until.is_some_and(|n| s.arrived < n)
    }

    pub fn stats(&self) -> Stats {
        self.state.lock().unwrap().stats.clone()
    }

    /// Zeroes the counters and peaks; what is in flight and open now stays counted.
    pub fn reset(&self) {
        let mut s = self.state.lock().unwrap();
        let (in_flight, open) = (s.stats.in_flight, s.stats.open_watches);
        s.stats = Stats {
            in_flight,
            peak_in_flight: in_flight,
            open_watches: open,
            peak_open_watches: open,
            ..Stats::default()
        };
        s.arrivals.clear();
    }
}
