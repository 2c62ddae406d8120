//! The operator's requests as the API server saw them: its audit log, read as it grows. The
//! policy logs only the operator's ServiceAccount, at level Metadata (who, what, when, the
//! answer's code; no bodies), once a request is answered (and once when a watch starts), so the
//! log costs the server little more than a line per request.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde_json::Value;

/// The namespace the chart is released in; the policy logs its ServiceAccounts.
pub const RELEASE_NAMESPACE: &str = "plimsoll-system";

/// Every request by a ServiceAccount of [`RELEASE_NAMESPACE`], at level Metadata, answered or
/// (a watch) started; nothing else.
pub fn policy() -> String {
    format!(
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n\
         - level: Metadata\n  userGroups: [\"system:serviceaccounts:{RELEASE_NAMESPACE}\"]\n\
         - level: None\n"
    )
}

/// One request of the operator's.
#[derive(Clone, Debug)]
pub struct Request {
    pub verb: String,
    pub resource: String,
    pub subresource: String,
    /// Seconds since the epoch: received, and answered (for a watch: started).
    pub received: f64,
    pub answered: f64,
    pub code: u16,
    /// Seconds the request waited in API Priority and Fairness' queue (its audit annotation).
    pub queued: f64,
}

impl Request {
    pub fn write(&self) -> bool {
        matches!(
            self.verb.as_str(),
            "create" | "update" | "patch" | "delete" | "deletecollection"
        )
    }

    pub fn lease(&self) -> bool {
        self.resource == "leases"
    }
}

/// What the operator asked in a span of time. Leader election's Lease requests are counted
/// apart (`leases`), not in `total`, `writes` or `requests`.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub total: u64,
    pub writes: u64,
    pub leases: u64,
    /// Requests in flight at once (received, not yet answered; watches left out), at the most.
    pub peak_in_flight: usize,
    /// Requests received within one second, at the most (Leases included).
    pub peak_rps: u64,
    /// (verb, resource, subresource) -> count.
    pub requests: BTreeMap<(String, String, String), u64>,
    /// Answered 429 (API Priority and Fairness, or the server's max in flight).
    pub throttled: u64,
    /// Refused: 401 or 403, as `verb resource/subresource -> code`.
    pub refused: Vec<String>,
    /// The longest wait in APF's queue, in seconds, of the requests the server annotates
    /// (those that took more than 500 ms).
    pub max_queued: f64,
    /// Seconds from received to answered, watches left out: median, 99th percentile, slowest.
    pub latency: (f64, f64, f64),
}

impl Stats {
    pub fn verb(&self, verb: &str) -> u64 {
        self.requests
            .iter()
            .filter(|((v, _, _), _)| v == verb)
            .map(|(_, n)| n)
            .sum()
    }
}

struct Tail {
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
    /// Index in `requests` by audit ID (a watch logs twice: started, then ended).
    seen: HashMap<String, usize>,
    requests: Vec<Request>,
}

/// The audit log, read from where the last read stopped.
pub struct AuditLog {
    tail: RefCell<Tail>,
}

fn seconds(value: &Value) -> Option<f64> {
    let at: jiff::Timestamp = value.as_str()?.parse().ok()?;
    Some(at.as_microsecond() as f64 / 1e6)
}

/// APF's queue wait as the annotation writes it, a Go duration such as `1.2ms` or `0s`.
fn go_duration(text: &str) -> f64 {
    let split = text
        .find(|c: char| c.is_ascii_alphabetic() || c == 'µ')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().unwrap_or(0.0);
    value
        * match unit {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "m" => 60.0,
            "h" => 3600.0,
            _ => 1.0,
        }
}

impl AuditLog {
    pub fn new(path: &Path) -> AuditLog {
        AuditLog {
            tail: RefCell::new(Tail {
                path: path.to_path_buf(),
                offset: 0,
                partial: Vec::new(),
                seen: HashMap::new(),
                requests: Vec::new(),
            }),
        }
    }

    /// Reads what was appended since the last call.
    pub fn poll(&self) {
        let mut tail = self.tail.borrow_mut();
        let Ok(mut file) = std::fs::File::open(&tail.path) else {
            return;
        };
        if file.seek(SeekFrom::Start(tail.offset)).is_err() {
            return;
        }
        let mut bytes = std::mem::take(&mut tail.partial);
        let Ok(read) = file.read_to_end(&mut bytes) else {
            return;
        };
        tail.offset += read as u64;
        let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        tail.partial = bytes.split_off(complete);
        for line in bytes.split(|b| *b == b'\n') {
            let Ok(event) = serde_json::from_slice::<Value>(line) else {
                continue;
            };
            let (Some(id), Some(received), Some(stage_at)) = (
                event["auditID"].as_str(),
                seconds(&event["requestReceivedTimestamp"]),
                seconds(&event["stageTimestamp"]),
            ) else {
                continue;
            };
            let queued = event["annotations"]["apiserver.latency.k8s.io/apf-queue-wait"]
                .as_str()
                .map_or(0.0, go_duration);
            let request = Request {
                verb: event["verb"].as_str().unwrap_or_default().to_string(),
                resource: event["objectRef"]["resource"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                subresource: event["objectRef"]["subresource"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                received,
                answered: stage_at,
                code: event["responseStatus"]["code"].as_u64().unwrap_or(0) as u16,
                queued,
            };
            match tail.seen.get(id) {
                // A watch's end: keep when it started, take the code it ended with.
                Some(&index) => {
                    let known = &mut tail.requests[index];
                    if request.code != 0 {
                        known.code = request.code;
                    }
                }
                None => {
                    let index = tail.requests.len();
                    tail.seen.insert(id.to_string(), index);
                    tail.requests.push(request);
                }
            }
        }
    }

    /// The requests received in [from, to) (seconds since the epoch), read up to now.
    pub fn stats(&self, from: f64, to: f64) -> Stats {
        self.poll();
        let tail = self.tail.borrow();
        let within: Vec<&Request> = tail
            .requests
            .iter()
            .filter(|r| r.received >= from && r.received < to)
            .collect();
        let mut stats = Stats::default();
        let mut per_second: HashMap<i64, u64> = HashMap::new();
        let mut edges: Vec<(f64, i32)> = Vec::new();
        let mut latencies: Vec<f64> = Vec::new();
        for r in &within {
            *per_second.entry(r.received.floor() as i64).or_default() += 1;
            if r.verb != "watch" {
                edges.push((r.received, 1));
                edges.push((r.answered.max(r.received), -1));
                latencies.push((r.answered - r.received).max(0.0));
            }
            stats.max_queued = stats.max_queued.max(r.queued);
            if r.code == 429 {
                stats.throttled += 1;
            }
            if r.code == 401 || r.code == 403 {
                stats.refused.push(format!(
                    "{} {}/{} -> {}",
                    r.verb, r.resource, r.subresource, r.code
                ));
            }
            if r.lease() {
                stats.leases += 1;
                continue;
            }
            stats.total += 1;
            stats.writes += u64::from(r.write());
            *stats
                .requests
                .entry((r.verb.clone(), r.resource.clone(), r.subresource.clone()))
                .or_default() += 1;
        }
        stats.peak_rps = per_second.values().copied().max().unwrap_or(0);
        latencies.sort_by(f64::total_cmp);
        let at = |q: f64| {
            let last = latencies.len().saturating_sub(1);
            latencies
                .get((last as f64 * q).round() as usize)
                .copied()
                .unwrap_or(f64::NAN)
        };
        stats.latency = (at(0.5), at(0.99), at(1.0));
        // Answers before arrivals at the same instant: back-to-back requests are not both in
        // flight.
        edges.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let mut now = 0i32;
        for (_, step) in edges {
            now += step;
            stats.peak_in_flight = stats.peak_in_flight.max(now.max(0) as usize);
        }
        stats
    }

    /// The operator's writes so far (Leases left out).
    pub fn writes(&self) -> u64 {
        self.poll();
        let tail = self.tail.borrow();
        tail.requests
            .iter()
            .filter(|r| r.write() && !r.lease())
            .count() as u64
    }
}
