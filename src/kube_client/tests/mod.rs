//! The layer against a fake API server (a `service_fn`) under paused time, so that tests which
//! wait seconds take none and measure exactly; `http.rs` runs the real stack over TCP.

mod http;
mod retries;

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ::http::{Request, Response, StatusCode, Uri};
use axum::body::Body as AxumBody;
use hyper::body::Bytes;
use kube::client::Body;
use tokio::time::Instant;
use tower::util::BoxService;
use tower::{BoxError, Layer, Service, ServiceExt, service_fn};

use super::limit::is_long_running;
use super::*;

type Fake = BoxService<Request<Body>, Response<AxumBody>, Infallible>;

fn limits(max_in_flight: usize, qps: f64, burst: u32, max_retries: u32) -> Limits {
    Limits {
        max_in_flight,
        qps,
        burst,
        max_retries,
    }
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

fn ok(body: &str) -> Response<AxumBody> {
    Response::new(AxumBody::from(body.to_owned()))
}

/// An answer whose body never ends, like a watch's.
fn endless() -> Response<AxumBody> {
    let stream = futures::stream::pending::<Result<Bytes, Infallible>>();
    Response::new(AxumBody::from_stream(stream))
}

/// A fake server that answers the n-th call (from 0) with `answer(n, request)`, and counts
/// calls.
fn server(
    answer: impl Fn(usize, Request<Body>) -> Response<AxumBody> + Send + Sync + 'static,
) -> (Fake, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&calls);
    let answer = Arc::new(answer);
    let svc = service_fn(move |req: Request<Body>| {
        let n = seen.fetch_add(1, Ordering::SeqCst);
        let response = answer(n, req);
        async move { Ok::<_, Infallible>(response) }
    });
    (BoxService::new(svc), calls)
}

/// Sends one request and reads its whole body, which frees its slot.
async fn fetch<S>(svc: S, req: Request<Body>) -> Result<(StatusCode, Bytes), BoxError>
where
    S: Service<Request<Body>, Response = Response<LimitedBody<AxumBody>>, Error = BoxError>,
{
    let response = svc.oneshot(req).await?;
    let status = response.status();
    let body = axum::body::to_bytes(AxumBody::new(response.into_body()), usize::MAX).await?;
    Ok((status, body))
}

#[test]
fn watches_and_log_follows_are_long_running() {
    let uri = |s: &str| s.parse::<Uri>().unwrap();
    assert!(is_long_running(&uri("/api/v1/pods?watch=true")));
    assert!(is_long_running(&uri(
        "/apis/x/v1/slos?allowWatchBookmarks=true&watch=1&resourceVersion=5"
    )));
    assert!(is_long_running(&uri(
        "/api/v1/namespaces/a/pods/p/log?follow=true"
    )));
    assert!(!is_long_running(&uri("/api/v1/pods?watch=false")));
    assert!(!is_long_running(&uri(
        "/api/v1/pods?labelSelector=watch%3Dtrue"
    )));
    assert!(!is_long_running(&uri("/api/v1/pods")));
}

#[test]
fn limits_that_mean_nothing_are_refused() {
    for bad in [
        limits(1, f64::NAN, 1, 0),
        limits(1, -1.0, 1, 0),
        limits(1, f64::INFINITY, 1, 0),
        limits(1, 5.0, 0, 0),
    ] {
        let err = LimitLayer::new(&bad).unwrap_err();
        assert_eq!(err.reason(), "InvalidClientLimits", "{bad:?}");
    }
    assert!(LimitLayer::new(&limits(0, 0.0, 0, 0)).is_ok());
    assert!(Limits::default().validate().is_ok());
}

#[tokio::test(start_paused = true)]
async fn in_flight_never_exceeds_the_limit() {
    let now = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (n, p) = (Arc::clone(&now), Arc::clone(&peak));
    let inner = service_fn(move |_req: Request<Body>| {
        let (n, p) = (Arc::clone(&n), Arc::clone(&p));
        async move {
            let current = n.fetch_add(1, Ordering::SeqCst) + 1;
            p.fetch_max(current, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(10)).await;
            n.fetch_sub(1, Ordering::SeqCst);
            Ok::<_, Infallible>(ok("{}"))
        }
    });
    let layer = LimitLayer::new(&limits(4, 0.0, 0, 0)).unwrap();
    let svc = layer.layer(inner);
    let requests = (0..100).map(|i| fetch(svc.clone(), get(&format!("/api/v1/x/{i}"))));
    let responses = futures::future::join_all(requests).await;
    assert!(responses.iter().all(|r| r.is_ok()));
    assert_eq!(peak.load(Ordering::SeqCst), 4);
    let stats = layer.counters().stats();
    assert_eq!((stats.sent, stats.in_flight, stats.waiting), (100, 0, 0));
}

#[tokio::test(start_paused = true)]
async fn a_slot_is_held_until_the_body_is_read() {
    let (inner, calls) = server(|_, _| ok("{}"));
    let svc = LimitLayer::new(&limits(1, 0.0, 0, 0)).unwrap().layer(inner);
    let first = svc.clone().oneshot(get("/a")).await.unwrap();
    let second = tokio::spawn(fetch(svc.clone(), get("/b")));
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "sent while the first streams"
    );
    let body = axum::body::to_bytes(AxumBody::new(first.into_body()), 1024).await;
    assert_eq!(body.unwrap(), "{}");
    assert!(second.await.unwrap().is_ok());
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn watches_take_no_slot() {
    let (inner, calls) = server(|_, _| endless());
    let layer = LimitLayer::new(&limits(1, 0.0, 0, 0)).unwrap();
    let svc = layer.layer(inner);
    // Two watches stay open (their bodies never end) and a GET keeps the only slot by leaving
    // its body unread: a third watch still starts at once.
    let mut open = Vec::new();
    for uri in [
        "/api/v1/pods?watch=true",
        "/apis/a/v1/b?watch=1&resourceVersion=0",
        "/api/v1/pods/held",
    ] {
        open.push(svc.clone().oneshot(get(uri)).await.unwrap());
    }
    assert_eq!(layer.counters().stats().in_flight, 1);
    let watch = tokio::time::timeout(
        Duration::from_millis(1),
        svc.clone().oneshot(get("/api/v1/pods?watch=true")),
    );
    assert!(watch.await.unwrap().is_ok(), "a watch waited for a slot");
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    // Closing the GET frees the slot; the watches never held one.
    open.pop();
    assert_eq!(layer.counters().stats().in_flight, 0);
}

/// Sends `n` requests at once through `limits`; returns when each reached the server, from
/// the start, in order.
async fn arrivals(limits: Limits, n: usize) -> Vec<Duration> {
    let start = Instant::now();
    let times = Arc::new(Mutex::new(Vec::new()));
    let t = Arc::clone(&times);
    let inner = service_fn(move |_req: Request<Body>| {
        t.lock().unwrap().push(start.elapsed());
        async { Ok::<_, Infallible>(ok("{}")) }
    });
    let svc = LimitLayer::new(&limits).unwrap().layer(inner);
    let requests = (0..n).map(|_| fetch(svc.clone(), get("/api/v1/x")));
    let responses = futures::future::join_all(requests).await;
    assert!(responses.iter().all(|r| r.is_ok()));
    let mut times = times.lock().unwrap().clone();
    times.sort();
    times
}

#[tokio::test(start_paused = true)]
async fn qps_and_burst_are_respected() {
    // With no cap every request queues on the bucket; with one, only the slot holders do.
    for max_in_flight in [0, 16] {
        let times = arrivals(limits(max_in_flight, 10.0, 5, 0), 100).await;
        // The burst goes at once, then one every 100 ms: 5 + 2 s × 10 = 25 in the first 2 s.
        assert!(times[..5].iter().all(|t| t.is_zero()), "{:?}", &times[..6]);
        assert!(times[5] >= Duration::from_millis(100), "{:?}", &times[..6]);
        let within_2s = times
            .iter()
            .filter(|t| **t <= Duration::from_secs(2))
            .count();
        assert!(
            (24..=25).contains(&within_2s),
            "{within_2s} in the first 2 s"
        );
        // No second, anywhere, holds more starts than burst + qps.
        for (i, from) in times.iter().enumerate() {
            let in_window = times[i..]
                .iter()
                .take_while(|t| **t < *from + Duration::from_secs(1))
                .count();
            assert!(
                in_window <= 15,
                "{in_window} starts in the second from {from:?}"
            );
        }
        // Nor is the rate lower than asked: the 95 after the burst take 9.5 s.
        let last = times[99];
        assert!(
            last >= Duration::from_millis(9_500) && last <= Duration::from_millis(9_520),
            "{last:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_wait_gives_its_token_back() {
    let start = Instant::now();
    let layer = LimitLayer::new(&limits(0, 1.0, 1, 0)).unwrap();
    let svc = layer.layer(server(|_, _| ok("{}")).0);
    fetch(svc.clone(), get("/first")).await.unwrap();
    // The second would go at 1 s; its caller gives up at 0.1 s.
    let second = tokio::time::timeout(Duration::from_millis(100), fetch(svc.clone(), get("/2")));
    assert!(second.await.is_err());
    assert_eq!(layer.counters().stats().waiting, 0);
    // Had its token been lost, the third would wait until 2 s.
    fetch(svc.clone(), get("/third")).await.unwrap();
    let elapsed = start.elapsed();
    assert!(
        elapsed >= Duration::from_millis(990) && elapsed <= Duration::from_millis(1_010),
        "{elapsed:?}"
    );
}
