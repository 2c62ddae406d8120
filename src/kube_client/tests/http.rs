//! The real stack, `client(config, limits)`, against a tiny axum server on 127.0.0.1: auth,
//! base URI, hyper and the limit all in the path, in real time (these tests take well under a
//! second).

use std::sync::atomic::AtomicUsize;

use axum::Router;
use axum::extract::{Query, State};
use axum::response::IntoResponse;
use axum::routing::get as route_get;
use kube::Config;

use super::*;

#[derive(Default)]
struct Server {
    now: AtomicUsize,
    peak: AtomicUsize,
    posts: Mutex<Vec<Bytes>>,
}

async fn slow(State(s): State<Arc<Server>>) -> &'static str {
    let current = s.now.fetch_add(1, Ordering::SeqCst) + 1;
    s.peak.fetch_max(current, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(20)).await;
    s.now.fetch_sub(1, Ordering::SeqCst);
    "{}"
}

/// A watch whose stream never ends; anything else answers at once.
async fn pods(Query(q): Query<Vec<(String, String)>>) -> AxumBody {
    if q.iter().any(|(k, v)| k == "watch" && v == "true") {
        AxumBody::from_stream(futures::stream::pending::<Result<Bytes, Infallible>>())
    } else {
        AxumBody::from("{}")
    }
}

/// Throttles every other POST, and records what each carried.
async fn create(State(s): State<Arc<Server>>, body: Bytes) -> axum::response::Response {
    let mut posts = s.posts.lock().unwrap();
    posts.push(body);
    if posts.len() % 2 == 1 {
        let status =
            r#"{"kind":"Status","status":"Failure","reason":"TooManyRequests","code":429}"#;
        (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "0"), ("content-type", "application/json")],
            status,
        )
            .into_response()
    } else {
        (StatusCode::CREATED, "created").into_response()
    }
}

/// Starts the server; returns a kube config pointing at it and the server's records.
async fn serve() -> (Config, Arc<Server>) {
    let state = Arc::new(Server::default());
    let app = Router::new()
        .route("/slow/{n}", route_get(slow))
        .route("/api/v1/pods", route_get(pods))
        .route("/create", axum::routing::post(create))
        .with_state(Arc::clone(&state));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let url: Uri = format!("http://{addr}").parse().unwrap();
    (Config::new(url), state)
}

fn request(method: &str, uri: &str, body: &[u8]) -> Request<Vec<u8>> {
    Request::builder()
        .method(method)
        .uri(uri)
        .body(body.to_vec())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_never_sees_more_than_max_in_flight() {
    let (config, server) = serve().await;
    let (client, counters) = client_with_counters(config, limits(8, 0.0, 0, 0)).unwrap();
    let requests =
        (0..100).map(|i| client.request_text(request("GET", &format!("/slow/{i}"), b"")));
    let answers = futures::future::join_all(requests).await;
    assert!(answers.iter().all(|a| a.as_deref().ok() == Some("{}")));
    let peak = server.peak.load(Ordering::SeqCst);
    assert!(peak <= 8, "the server saw {peak} at once");
    assert!(peak >= 2, "no concurrency at all: {peak}");
    assert_eq!(counters.stats().sent, 100);
}

#[tokio::test]
async fn an_open_watch_does_not_block_other_requests() {
    let (config, _) = serve().await;
    let (client, counters) = client_with_counters(config, limits(1, 0.0, 0, 0)).unwrap();
    let watch = request("GET", "/api/v1/pods?watch=true&resourceVersion=0", b"");
    let open = client.send(watch.map(Body::from)).await.unwrap();
    assert_eq!(open.status(), StatusCode::OK);
    let list = tokio::time::timeout(
        Duration::from_secs(5),
        client.request_text(request("GET", "/api/v1/pods", b"")),
    );
    assert_eq!(list.await.unwrap().unwrap(), "{}");
    assert_eq!(counters.stats().in_flight, 0);
    drop(open);
}

#[tokio::test]
async fn a_throttled_post_is_replayed_and_a_persistent_429_surfaces() {
    let (config, server) = serve().await;
    let retrying = client(config.clone(), limits(4, 0.0, 0, 3)).unwrap();
    let payload = br#"{"metadata":{"name":"x"}}"#;
    let answer = retrying
        .request_text(request("POST", "/create", payload))
        .await;
    assert_eq!(answer.unwrap(), "created");
    {
        let posts = server.posts.lock().unwrap();
        assert_eq!(posts.len(), 2);
        assert!(posts.iter().all(|p| p.as_ref() == payload));
    }
    // Without retries the same 429 reaches the caller, as kube's API error.
    let strict = client(config, limits(4, 0.0, 0, 0)).unwrap();
    match strict
        .request_text(request("POST", "/create", payload))
        .await
    {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 429),
        other => panic!("expected a 429 Api error, got {other:?}"),
    }
}
