//! The tower layer that puts the limits and the retries around kube's HTTP stack.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use http::{Request, Response};
use hyper::body::{Body as HttpBody, Bytes, Frame, SizeHint};
use kube::client::Body;
use tokio::sync::Mutex;
use tower::{BoxError, Layer, Service};

use super::limit::{InFlight, Slot, TokenBucket, is_long_running};
use super::retry;
use super::stats::{Counters, Level};
use super::{Error, Limits};

/// Applies [`Limits`] to every request of the service it wraps.
///
/// Every service built from one layer shares its limits and counters.
#[derive(Debug, Clone)]
pub struct LimitLayer {
    limiter: Arc<Limiter>,
}

#[derive(Debug)]
struct Limiter {
    in_flight: InFlight,
    bucket: TokenBucket,
    max_retries: u32,
    counters: Counters,
}

impl LimitLayer {
    pub fn new(limits: &Limits) -> Result<Self, Error> {
        limits.validate()?;
        Ok(LimitLayer {
            limiter: Arc::new(Limiter {
                in_flight: InFlight::new(limits.max_in_flight),
                bucket: TokenBucket::new(limits.qps, limits.burst),
                max_retries: limits.max_retries,
                counters: Counters::default(),
            }),
        })
    }

    /// The live counters of this layer's services.
    pub fn counters(&self) -> Counters {
        self.limiter.counters.clone()
    }
}

impl<S> Layer<S> for LimitLayer {
    type Service = LimitService<S>;

    fn layer(&self, inner: S) -> LimitService<S> {
        LimitService {
            limiter: Arc::clone(&self.limiter),
            inner: Arc::new(Mutex::new(inner)),
        }
    }
}

/// The service [`LimitLayer`] builds.
///
/// The inner service sits behind a mutex because one request may call it several times (its
/// retries) from its own future, and kube's default stack is a `BoxService`, which cannot be
/// cloned. The lock is held only for the inner `poll_ready` and `call`, which for kube's stack
/// are immediate; the response is awaited outside it, so requests still run concurrently.
pub struct LimitService<S> {
    limiter: Arc<Limiter>,
    inner: Arc<Mutex<S>>,
}

impl<S> Clone for LimitService<S> {
    fn clone(&self) -> Self {
        LimitService {
            limiter: Arc::clone(&self.limiter),
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<S, B> Service<Request<Body>> for LimitService<S>
where
    S: Service<Request<Body>, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: HttpBody<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<LimitedBody<B>>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Self::Response, BoxError>>;

    /// Always ready: all waiting happens inside the request's own future. kube's client feeds
    /// every request through one buffer worker, which calls `poll_ready` before each `call`;
    /// waiting there would line every request, watches included, up behind the one at the head.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        Box::pin(send(
            Arc::clone(&self.limiter),
            Arc::clone(&self.inner),
            request,
        ))
    }
}

/// One request through the limits, with its retries.
async fn send<S, B>(
    limiter: Arc<Limiter>,
    inner: Arc<Mutex<S>>,
    request: Request<Body>,
) -> Result<Response<LimitedBody<B>>, BoxError>
where
    S: Service<Request<Body>, Response = Response<B>>,
    S::Error: Into<BoxError>,
    B: HttpBody<Data = Bytes> + Unpin,
{
    let counters = &limiter.counters;
    let long_running = is_long_running(request.uri());
    let (parts, body) = request.into_parts();
    // kube builds request bodies from in-memory bytes, so collecting is a move, not a copy;
    // each attempt then gets a cheap clone of the same bytes, identical to the first.
    let body = body.collect_bytes().await?;
    let mut slot: Option<Slot> = None;
    let mut retries = 0;
    loop {
        // Slot first, token second: only requests holding a slot queue in the bucket, so the
        // bucket's queue is at most `max_in_flight` long plus the watches, and a watch (which
        // takes no slot) waits behind at most that many tokens, not behind thousands of
        // reconciles. A throttled request keeps its slot across its retries: while the server
        // throttles us, our concurrency drops instead of the slot going to the next request
        // only for it to meet the same 429.
        if !long_running && slot.is_none() {
            slot = Some(limiter.in_flight.acquire(counters).await);
        }
        // Every attempt, a retry or a watch's start included, costs a token, as in client-go.
        limiter.bucket.acquire(counters).await;
        let attempt = Request::from_parts(parts.clone(), Body::from(body.clone()));
        counters.sent();
        let response = call(&inner, attempt).await?;
        let delay = match judge(response, retries, limiter.max_retries, counters).await {
            Verdict::Done(mut response) => {
                // The slot stays taken until the body has been read: a LIST's answer is still
                // being produced while it streams. A long-running request holds none.
                response.body_mut().slot = slot.take();
                return Ok(response);
            }
            Verdict::Retry(delay) => delay,
        };
        retries += 1;
        counters.retried();
        tracing::debug!(
            method = %parts.method,
            uri = %parts.uri,
            retry = retries,
            delay_ms = delay.as_millis() as u64,
            "Kubernetes API throttled the request, retrying"
        );
        let _backing_off = counters.raise(Level::BackingOff);
        tokio::time::sleep(delay).await;
    }
}

async fn call<S, B>(inner: &Mutex<S>, request: Request<Body>) -> Result<Response<B>, BoxError>
where
    S: Service<Request<Body>, Response = Response<B>>,
    S::Error: Into<BoxError>,
{
    let future = {
        let mut service = inner.lock().await;
        std::future::poll_fn(|cx| service.poll_ready(cx))
            .await
            .map_err(Into::into)?;
        service.call(request)
    };
    future.await.map_err(Into::into)
}

enum Verdict<B> {
    /// Hand this answer to the caller.
    Done(Response<LimitedBody<B>>),
    /// Send the request again after this long.
    Retry(Duration),
}

/// Decides whether an answer goes to the caller or the request goes out again.
async fn judge<B>(
    response: Response<B>,
    retries: u32,
    max_retries: u32,
    counters: &Counters,
) -> Verdict<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
{
    if !retry::is_throttled(response.status(), response.headers()) {
        return Verdict::Done(response.map(LimitedBody::streaming));
    }
    counters.throttled();
    if retries >= max_retries {
        // kube turns this answer into `Error::Api` with code 429 (or 503), which the
        // reconcile's error policy backs off on.
        counters.exhausted();
        return Verdict::Done(response.map(LimitedBody::streaming));
    }
    let (response, hint) = match retry::header_delay(response.headers()) {
        Some(delay) => (response.map(LimitedBody::streaming), Some(delay)),
        None => {
            // No header: look for the Status body's hint. The body is kept so the answer can
            // still go to the caller intact if we do not retry.
            let (head, mut body) = response.into_parts();
            match retry::read_status_body(&mut body).await {
                Some(bytes) => {
                    let hint = retry::body_delay(&bytes);
                    (
                        Response::from_parts(head, LimitedBody::buffered(bytes)),
                        hint,
                    )
                }
                // Unreadable: the answer is retried, never handed on half-read.
                None => return Verdict::Retry(retry::backoff(retries)),
            }
        }
    };
    match hint {
        Some(delay) if delay > retry::LONGEST_WAIT => {
            counters.exhausted();
            Verdict::Done(response)
        }
        Some(delay) => Verdict::Retry(delay),
        None => Verdict::Retry(retry::backoff(retries)),
    }
}

/// A response body that frees the request's in-flight slot once it has been read to the end
/// (or dropped), and that can also hold a body already read while looking for a retry hint.
pub struct LimitedBody<B> {
    kind: Kind<B>,
    slot: Option<Slot>,
}

enum Kind<B> {
    Streaming(B),
    Buffered(Option<Bytes>),
}

impl<B> LimitedBody<B> {
    fn streaming(body: B) -> Self {
        LimitedBody {
            kind: Kind::Streaming(body),
            slot: None,
        }
    }

    fn buffered(bytes: Bytes) -> Self {
        LimitedBody {
            kind: Kind::Buffered((!bytes.is_empty()).then_some(bytes)),
            slot: None,
        }
    }
}

impl<B> HttpBody for LimitedBody<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let polled = match &mut this.kind {
            Kind::Streaming(body) => Pin::new(body)
                .poll_frame(cx)
                .map(|frame| frame.map(|f| f.map_err(Into::into))),
            Kind::Buffered(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
        };
        if matches!(polled, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            this.slot = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Streaming(body) => body.is_end_stream(),
            Kind::Buffered(bytes) => bytes.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Streaming(body) => body.size_hint(),
            Kind::Buffered(Some(bytes)) => SizeHint::with_exact(bytes.len() as u64),
            Kind::Buffered(None) => SizeHint::with_exact(0),
        }
    }
}
