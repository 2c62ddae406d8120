//! When a throttled answer is worth sending again, and after how long.
//!
//! Why replaying is safe even for POST and PATCH: a 429 from the API server means the request
//! was rejected before it was executed. API Priority and Fairness rejects a request it cannot
//! seat or queue, and the older `--max-requests-inflight` filter rejects it outright, both with
//! 429 and `Retry-After`, in the filter chain ahead of any handler
//! (<https://kubernetes.io/docs/concepts/cluster-administration/flow-control/>; RFC 6585 §4
//! defines 429 as "too many requests", with `Retry-After` saying how long to wait). Other 429s
//! the API server sends, such as an eviction refused by a PodDisruptionBudget, likewise change
//! nothing. A 503 carrying `Retry-After` is the server saying it is unavailable for now and when
//! to come back (RFC 9110 §15.6.4), so it is treated the same way. Other 5xx answers are not
//! retried here: a 504 or 500 may come after the request took effect, and replaying a create or
//! a patch blindly is not ours to decide; the reconcile's error policy requeues those.

use std::pin::Pin;
use std::time::Duration;

use http::{HeaderMap, StatusCode, header::RETRY_AFTER};
use hyper::body::{Body as HttpBody, Bytes};

/// The first wait when the server gave no hint, doubled per retry.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// The longest we hold a request before trying again. Past this the caller's own backoff (the
/// reconcile's error policy) is the better place to wait: it does not keep a slot busy. A
/// server asking for longer than this gets its 429 handed back at once instead of a shortened
/// wait, because retrying earlier than asked only earns another 429.
pub(crate) const LONGEST_WAIT: Duration = Duration::from_secs(30);

/// A Status body is a few hundred bytes; anything much larger is not one, and we do not buffer
/// it just to look for a hint.
const STATUS_BODY_LIMIT: usize = 64 * 1024;

/// How long we wait for a throttled answer's body before falling back to our own backoff, so a
/// proxy that sends headers and then stalls cannot hang the retry path.
const STATUS_BODY_TIMEOUT: Duration = Duration::from_secs(2);

/// Whether the answer asks us to slow down and come back.
pub(crate) fn is_throttled(status: StatusCode, headers: &HeaderMap) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS
        || (status == StatusCode::SERVICE_UNAVAILABLE && headers.contains_key(RETRY_AFTER))
}

/// `Retry-After` in delta-seconds, the only form the API server sends. An HTTP date is not
/// understood and falls through to the body's hint or our backoff.
pub(crate) fn header_delay(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// `details.retryAfterSeconds` of a Kubernetes Status body: the server's hint when a proxy
/// dropped the header, or the answer was built without one.
pub(crate) fn body_delay(body: &[u8]) -> Option<Duration> {
    let status: serde_json::Value = serde_json::from_slice(body).ok()?;
    let seconds = status.get("details")?.get("retryAfterSeconds")?.as_u64()?;
    Some(Duration::from_secs(seconds))
}

/// Exponential backoff from one second, doubling per retry (`retry` counts from 0), capped at
/// [`LONGEST_WAIT`], stretched by up to a quarter at random so that requests throttled
/// together do not all come back in the same instant.
pub(crate) fn backoff(retry: u32) -> Duration {
    let base = FIRST_BACKOFF
        .checked_mul(1u32.checked_shl(retry).unwrap_or(u32::MAX))
        .unwrap_or(LONGEST_WAIT)
        .min(LONGEST_WAIT);
    base.mul_f64(1.0 + fastrand::f64() / 4.0).min(LONGEST_WAIT)
}

/// Reads a throttled answer's body, if it is small and arrives promptly. `None` when it is
/// too large, fails or stalls; the caller then does without the body's hint.
pub(crate) async fn read_status_body<B>(body: &mut B) -> Option<Bytes>
where
    B: HttpBody<Data = Bytes> + Unpin,
{
    tokio::time::timeout(STATUS_BODY_TIMEOUT, read_capped(body))
        .await
        .ok()
        .flatten()
}

async fn read_capped<B>(body: &mut B) -> Option<Bytes>
where
    B: HttpBody<Data = Bytes> + Unpin,
{
    let mut buf = Vec::new();
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)).await {
        let Ok(data) = frame.ok()?.into_data() else {
            // Trailers carry no hint.
            continue;
        };
        if buf.len() + data.len() > STATUS_BODY_LIMIT {
            return None;
        }
        buf.extend_from_slice(&data);
    }
    Some(Bytes::from(buf))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(retry_after: Option<&'static str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(v) = retry_after {
            h.insert(RETRY_AFTER, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn throttled_answers() {
        assert!(is_throttled(StatusCode::TOO_MANY_REQUESTS, &headers(None)));
        assert!(is_throttled(
            StatusCode::SERVICE_UNAVAILABLE,
            &headers(Some("1"))
        ));
        assert!(!is_throttled(
            StatusCode::SERVICE_UNAVAILABLE,
            &headers(None)
        ));
        assert!(!is_throttled(
            StatusCode::GATEWAY_TIMEOUT,
            &headers(Some("1"))
        ));
        assert!(!is_throttled(StatusCode::OK, &headers(Some("1"))));
    }

    #[test]
    fn retry_after_header() {
        assert_eq!(
            header_delay(&headers(Some("3"))),
            Some(Duration::from_secs(3))
        );
        assert_eq!(header_delay(&headers(Some(" 0 "))), Some(Duration::ZERO));
        assert_eq!(
            header_delay(&headers(Some("Wed, 21 Oct 2015 07:28:00 GMT"))),
            None
        );
        assert_eq!(header_delay(&headers(Some("-1"))), None);
        assert_eq!(header_delay(&headers(None)), None);
    }

    #[test]
    fn retry_after_in_status_body() {
        let body = br#"{"kind":"Status","code":429,"details":{"retryAfterSeconds":7}}"#;
        assert_eq!(body_delay(body), Some(Duration::from_secs(7)));
        assert_eq!(body_delay(br#"{"kind":"Status","code":429}"#), None);
        assert_eq!(body_delay(b"Too Many Requests"), None);
    }

    #[test]
    fn backoff_doubles_from_one_second_and_stops_at_the_cap() {
        for retry in 0..40 {
            let want = Duration::from_secs(1u64 << retry.min(5)).min(LONGEST_WAIT);
            let got = backoff(retry);
            assert!(got >= want && got <= LONGEST_WAIT, "retry {retry}: {got:?}");
            assert!(got <= want.mul_f64(1.25), "retry {retry}: {got:?}");
        }
    }
}
