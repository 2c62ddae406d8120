//! A Kubernetes client that paces itself.
//!
//! At startup with 10,000 SLOs the controller would open thousands of API requests at once, and
//! a real API server answers such a storm with 429 (API Priority and Fairness). [`client`]
//! builds kube's ordinary client and adds one layer on top of its stack that:
//!
//! 1. caps the requests in flight at [`Limits::max_in_flight`]. Watches (`watch=true`/`1`) take
//!    no slot at all: they stream for minutes, and the API server does not count long-running
//!    requests against its in-flight limits either. A request's slot is held until its response
//!    body has been read, since the server is still working while a LIST streams;
//! 2. starts requests at most at [`Limits::qps`] per second with bursts of [`Limits::burst`], a
//!    token bucket like client-go's, charged for every request including a watch's start and
//!    every retry. A request takes its slot before its token, so at most `max_in_flight`
//!    requests queue on the bucket and a watch restart waits behind at most that many tokens
//!    (0.32 s with the defaults), never behind the whole backlog;
//! 3. sends a request again when the answer is 429 (or 503 with `Retry-After`) after the
//!    server's `Retry-After`, else the Status body's `details.retryAfterSeconds`, else an
//!    exponential backoff from 1 s with jitter capped at 30 s; at most
//!    [`Limits::max_retries`] times, after which the 429 reaches the caller as
//!    `kube::Error::Api` with code 429. Why replaying POST and PATCH is safe: see `retry.rs`.
//!
//! Everything below this layer is exactly what `Client::try_from(Config)` builds (auth, TLS,
//! timeouts, base URI, decompression, tracing), save one thing: kube's own default retry layer
//! (`Config::default_retry`) is switched off. It sits beneath ours, so it would retry 429s up to
//! 15 times on its own, outside the token bucket, before ours ever saw one: `max_retries` would
//! mean nothing and the retries would not be paced. Ours replaces it. kube's also retried 503
//! and 504 without `Retry-After`; those now reach the reconcile's error policy instead.
//!
//! Everything waits asynchronously inside the request's own future, so waiting costs a parked
//! task, not a thread, and a caller that gives up (drops the future) frees its place at once.

mod limit;
mod retry;
mod service;
mod stats;

#[cfg(test)]
mod tests;

pub use service::{LimitLayer, LimitService, LimitedBody};
pub use stats::{Counters, Stats};

use kube::client::ClientBuilder;

/// How hard the operator may press on the API server.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Requests in flight at once, watches not counted. 0 means no cap.
    pub max_in_flight: usize,
    /// Requests started per second, on average. 0 means no rate limit.
    pub qps: f64,
    /// Requests that may start at once after a quiet spell. At least 1 when `qps` is set.
    pub burst: u32,
    /// Times a throttled request is sent again before its 429 goes to the caller.
    pub max_retries: u32,
}

impl Default for Limits {
    /// client-go defaults to 5 qps and a burst of 10 per client, sized for kubectl and small
    /// controllers; kube-controller-manager runs at 20/30. One operator replica reconciling
    /// 10,000 SLOs, each needing a few writes, would take hours at 5 qps, so we allow 50 qps with
    /// a burst of 100 to absorb a restart's first wave. 16 in flight is a small fraction of the
    /// concurrency a default API server gives the `workload-low` priority level that service
    /// accounts land in (roughly 600 seats shared by weight, ~40% of them to that level), so
    /// our own bursts queue here rather than in the server's APF queues, where they would crowd
    /// out other tenants. Five retries ride out a few seconds of throttling (APF usually asks
    /// for 1 s) without holding a slot for minutes; past that the reconcile's own backoff is the
    /// better place to wait.
    fn default() -> Self {
        Limits {
            max_in_flight: 16,
            qps: 50.0,
            burst: 100,
            max_retries: 5,
        }
    }
}

impl Limits {
    /// Rejects limits that cannot mean anything, rather than guessing what was meant.
    pub fn validate(&self) -> Result<(), Error> {
        if !self.qps.is_finite() || self.qps < 0.0 {
            return Err(Error::Limits(
                "qps must be a finite number, 0 or more (0 turns the rate limit off)",
            ));
        }
        if self.qps > 0.0 && self.burst == 0 {
            return Err(Error::Limits(
                "burst must be at least 1 when qps is set: an empty bucket never lets a request through",
            ));
        }
        Ok(())
    }
}

/// Why the client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid Kubernetes client limits: {0}")]
    Limits(&'static str),
    #[error("cannot build the Kubernetes client: {0}")]
    Build(#[source] kube::Error),
}

impl Error {
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Limits(_) => "InvalidClientLimits",
            Error::Build(_) => "ClientBuildFailed",
        }
    }
}

/// A kube client for `config` that keeps to `limits`.
pub fn client(config: kube::Config, limits: Limits) -> Result<kube::Client, Error> {
    client_with_counters(config, limits).map(|(client, _)| client)
}

/// Like [`client`], with the counters of what the limit is doing.
pub fn client_with_counters(
    mut config: kube::Config,
    limits: Limits,
) -> Result<(kube::Client, Counters), Error> {
    let layer = LimitLayer::new(&limits)?;
    let counters = layer.counters();
    // Ours replaces kube's default retry; see the module documentation for why both would be
    // wrong.
    config.default_retry = false;
    let client = ClientBuilder::try_from(config)
        .map_err(Error::Build)?
        .with_layer(&layer)
        .build();
    Ok((client, counters))
}

/// Reads an object: `None` when it does not exist, or when its kind is not served at all. kube's
/// `get_opt` takes only a Status with reason `NotFound` for absent, but a real API server answers
/// a path of an API group it does not serve (Argo Rollouts not installed: no `argoproj.io`) with a
/// plain-text `404 page not found`, which kube reports as an error with code 404 and no reason.
pub async fn get_if_served<K>(api: &kube::Api<K>, name: &str) -> Result<Option<K>, kube::Error>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.get(name).await {
        Ok(object) => Ok(Some(object)),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(None),
        Err(e) => Err(e),
    }
}
