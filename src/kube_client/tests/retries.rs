//! Retries of throttled answers, seen through a real `kube::Client` over the fake server.

use super::*;

const STATUS_429: &str = r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"too many requests, please try again later","reason":"TooManyRequests","code":429}"#;

fn throttled(status: StatusCode, retry_after: Option<&str>, body: &str) -> Response<AxumBody> {
    let mut b = Response::builder().status(status);
    if let Some(v) = retry_after {
        b = b.header("retry-after", v);
    }
    b.body(AxumBody::from(body.to_owned())).unwrap()
}

fn too_many(retry_after: Option<&str>) -> Response<AxumBody> {
    throttled(StatusCode::TOO_MANY_REQUESTS, retry_after, STATUS_429)
}

/// A kube client over the fake server, and the layer's counters.
fn kube_client(inner: Fake, limits: Limits) -> (kube::Client, Counters) {
    let layer = LimitLayer::new(&limits).unwrap();
    let counters = layer.counters();
    (kube::Client::new(layer.layer(inner), "default"), counters)
}

fn list() -> Request<Vec<u8>> {
    Request::get("/api/v1/namespaces/default/configmaps")
        .body(Vec::new())
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_429_is_retried_after_retry_after_and_succeeds() {
    let (inner, calls) = server(|n, _| {
        if n < 2 {
            too_many(Some("3"))
        } else {
            ok("done")
        }
    });
    let (client, counters) = kube_client(inner, limits(4, 0.0, 0, 5));
    let start = Instant::now();
    assert_eq!(client.request_text(list()).await.unwrap(), "done");
    assert_eq!(start.elapsed(), Duration::from_secs(6));
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    let stats = counters.stats();
    assert_eq!((stats.sent, stats.throttled, stats.retried), (3, 2, 2));
    assert_eq!(
        (stats.exhausted, stats.in_flight, stats.backing_off),
        (0, 0, 0)
    );
}

#[tokio::test(start_paused = true)]
async fn without_the_header_the_status_body_or_backoff_says_when() {
    let hinted = r#"{"kind":"Status","code":429,"details":{"retryAfterSeconds":4}}"#;
    let (inner, _) = server(move |n, _| match n {
        0 => throttled(StatusCode::TOO_MANY_REQUESTS, None, "slow down"),
        1 => throttled(StatusCode::TOO_MANY_REQUESTS, None, hinted),
        _ => ok("done"),
    });
    let (client, _) = kube_client(inner, limits(4, 0.0, 0, 5));
    let start = Instant::now();
    assert_eq!(client.request_text(list()).await.unwrap(), "done");
    // No hint at all: the first backoff step, 1 s stretched by at most a quarter; then the
    // body's 4 s.
    let elapsed = start.elapsed();
    assert!(
        elapsed >= Duration::from_secs(5) && elapsed <= Duration::from_millis(5_250),
        "{elapsed:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_429_beyond_max_retries_is_an_api_error_429() {
    let (inner, calls) = server(|_, _| too_many(Some("1")));
    let (client, counters) = kube_client(inner, limits(4, 0.0, 0, 2));
    let err = client.request_text(list()).await.unwrap_err();
    match err {
        kube::Error::Api(status) => {
            assert_eq!(status.code, 429);
            assert_eq!(status.reason, "TooManyRequests");
        }
        other => panic!("expected Error::Api, got {other:?}"),
    }
    assert_eq!(calls.load(Ordering::SeqCst), 3, "one try and two retries");
    let stats = counters.stats();
    assert_eq!((stats.throttled, stats.retried, stats.exhausted), (3, 2, 1));
    assert_eq!(stats.in_flight, 0);
}

#[tokio::test(start_paused = true)]
async fn a_wait_longer_than_we_hold_requests_goes_back_at_once() {
    let (inner, calls) = server(|n, _| {
        if n == 0 {
            too_many(Some("120"))
        } else {
            let hinted = r#"{"kind":"Status","code":429,"details":{"retryAfterSeconds":600}}"#;
            throttled(StatusCode::TOO_MANY_REQUESTS, None, hinted)
        }
    });
    let (client, _) = kube_client(inner, limits(4, 0.0, 0, 5));
    let start = Instant::now();
    for _ in 0..2 {
        // The body read for the hint still reaches kube whole: it parses into the Status.
        match client.request_text(list()).await.unwrap_err() {
            kube::Error::Api(status) => assert_eq!(status.code, 429),
            other => panic!("expected Error::Api, got {other:?}"),
        }
    }
    assert!(start.elapsed().is_zero());
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn a_503_is_retried_only_when_it_says_when() {
    let (inner, calls) = server(|n, _| match n {
        0 => throttled(StatusCode::SERVICE_UNAVAILABLE, Some("2"), "later"),
        1 => ok("done"),
        _ => throttled(StatusCode::SERVICE_UNAVAILABLE, None, "down"),
    });
    let (client, _) = kube_client(inner, limits(4, 0.0, 0, 5));
    assert_eq!(client.request_text(list()).await.unwrap(), "done");
    match client.request_text(list()).await.unwrap_err() {
        kube::Error::Api(status) => assert_eq!(status.code, 503),
        other => panic!("expected Error::Api, got {other:?}"),
    }
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn the_body_is_replayed_identically() {
    type Seen = (String, String, Option<String>, Bytes);
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let record = Arc::clone(&seen);
    let inner = service_fn(move |req: Request<Body>| {
        let record = Arc::clone(&record);
        async move {
            let (parts, body) = req.into_parts();
            let body = body.collect_bytes().await.unwrap();
            let mut seen = record.lock().unwrap();
            seen.push((
                parts.method.to_string(),
                parts.uri.to_string(),
                parts
                    .headers
                    .get("content-type")
                    .map(|v| v.to_str().unwrap().to_owned()),
                body,
            ));
            let answer = if seen.len() < 3 {
                too_many(Some("0"))
            } else {
                ok("created")
            };
            Ok::<_, Infallible>(answer)
        }
    });
    let (client, _) = kube_client(BoxService::new(inner), limits(4, 0.0, 0, 5));
    let payload = br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"}}"#.to_vec();
    let create = Request::post("/api/v1/namespaces/default/configmaps?fieldManager=plimsoll")
        .header("content-type", "application/json")
        .body(payload.clone())
        .unwrap();
    assert_eq!(client.request_text(create).await.unwrap(), "created");
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 3);
    assert!(seen.iter().all(|s| *s == seen[0]), "{seen:?}");
    assert_eq!(seen[0].0, "POST");
    assert_eq!(seen[0].3, payload);
}

#[tokio::test(start_paused = true)]
async fn retries_take_rate_tokens_and_keep_their_slot() {
    // One slot, one token a second. The first request is throttled once with Retry-After 0:
    // its retry needs a new token (at 1 s) and keeps the slot, so the second request, queued
    // on the slot, starts only after it (at 2 s).
    let (inner, _) = server(|n, _| {
        if n == 0 {
            too_many(Some("0"))
        } else {
            ok("done")
        }
    });
    let (client, counters) = kube_client(inner, limits(1, 1.0, 1, 5));
    let start = Instant::now();
    let first = client.request_text(list());
    let second = async {
        tokio::task::yield_now().await;
        let text = client.request_text(list()).await;
        (text, start.elapsed())
    };
    let (first, (second, second_done)) = tokio::join!(first, second);
    assert_eq!(first.unwrap(), "done");
    assert_eq!(second.unwrap(), "done");
    assert!(
        second_done >= Duration::from_secs(2) && second_done <= Duration::from_millis(2_010),
        "{second_done:?}"
    );
    assert_eq!(counters.stats().sent, 3);
}
