//! HTTPS for the webhooks: the routes, the certificate the TLS handshakes use (swapped in place
//! when it is renewed or its files change), and the accept loop with graceful shutdown.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use rustls::ServerConfig;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};

use super::review::{self, Refusal, ReviewError, Verdict};
use super::tls::{self, TlsError};
use super::{FREEZE_PATH, VALIDATE_SLO_PATH, freeze, validate};
use crate::slo_cache::SloCache;

/// AdmissionReviews carry the object twice; etcd objects are at most 1.5 MiB each.
const MAX_BODY: usize = 8 * 1024 * 1024;
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// The serving certificate, shared by every handshake and replaced in place.
#[derive(Default)]
pub struct Certificates {
    current: RwLock<Option<Served>>,
}

struct Served {
    key: Arc<CertifiedKey>,
    cert_pem: String,
    key_pem: String,
    ca_pem: Option<String>,
}

impl std::fmt::Debug for Certificates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificates")
            .field("loaded", &self.loaded())
            .finish()
    }
}

impl Certificates {
    /// Serves this certificate from the next handshake on. `Ok(false)` when it is the one
    /// served already; an error leaves the current one in place.
    pub fn load(
        &self,
        cert_pem: &str,
        key_pem: &str,
        ca_pem: Option<&str>,
    ) -> Result<bool, TlsError> {
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        if let Some(served) = current.as_mut()
            && served.cert_pem == cert_pem
            && served.key_pem == key_pem
        {
            served.ca_pem = ca_pem.map(str::to_string);
            return Ok(false);
        }
        let key = tls::certified_key(cert_pem, key_pem)?;
        *current = Some(Served {
            key,
            cert_pem: cert_pem.to_string(),
            key_pem: key_pem.to_string(),
            ca_pem: ca_pem.map(str::to_string),
        });
        Ok(true)
    }

    pub fn loaded(&self) -> bool {
        self.read(|_| ()).is_some()
    }

    /// The CA to put in the webhook configuration's caBundle, when known.
    pub fn ca(&self) -> Option<String> {
        self.read(|s| s.ca_pem.clone()).flatten()
    }

    /// The certificate served now (PEM).
    pub fn cert(&self) -> Option<String> {
        self.read(|s| s.cert_pem.clone())
    }

    fn read<T>(&self, f: impl FnOnce(&Served) -> T) -> Option<T> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(f)
    }
}

impl ResolvesServerCert for Certificates {
    /// No certificate yet: the handshake fails, and the API server applies the failure policy.
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.read(|s| s.key.clone())
    }
}

/// TLS 1.2 and 1.3 with the crate's ring provider, HTTP/1.1, certificates from `certificates`.
pub fn tls_config(certificates: Arc<Certificates>) -> Result<Arc<ServerConfig>, rustls::Error> {
    let mut config = ServerConfig::builder_with_provider(Arc::new(tls::provider()))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(certificates);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The SLOs for the deploy freeze; `None` when `--deploy-freeze` is off (everything passes).
    pub freeze: Option<Arc<SloCache>>,
}

/// `POST /validate-slo` and `POST /freeze`.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route(VALIDATE_SLO_PATH, post(validate_slo))
        .route(FREEZE_PATH, post(deploy_freeze))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

/// The API server sends `Content-Type: application/json`; anything else is not an AdmissionReview.
fn json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"))
}

fn not_json() -> Response {
    let message = "an AdmissionReview is sent as Content-Type: application/json\n";
    (StatusCode::UNSUPPORTED_MEDIA_TYPE, message).into_response()
}

async fn validate_slo(headers: HeaderMap, body: Bytes) -> Response {
    if !json(&headers) {
        return not_json();
    }
    judge("validate-slo", &body, validate::review, |detail| {
        Verdict::deny(
            Refusal::BadRequest,
            format!("plimsoll cannot read this AdmissionReview: {detail}"),
        )
    })
}

async fn deploy_freeze(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    if !json(&headers) {
        return not_json();
    }
    let Some(cache) = state.freeze else {
        return judge("freeze", &body, |_| Verdict::allow(), |_| Verdict::allow());
    };
    judge(
        "freeze",
        &body,
        |review| {
            if let Some((long, error)) = cache.stale() {
                return Verdict::warn(format!(
                    "deploy freeze not checked: the operator's SLO watch has failed for {} s, so \
                     its copy is stale: {error}",
                    long.as_secs()
                ));
            }
            // The SLOs are looked at only for a pod template change.
            let slos = match freeze::change(review) {
                Some(change) if change.template_changed => cache.snapshot(change.namespace),
                _ => Some(Vec::new()),
            };
            freeze::review(review, slos.as_deref())
        },
        // Never block on what cannot be read.
        |detail| Verdict::warn(format!("deploy freeze not checked: {detail}")),
    )
}

fn judge(
    webhook: &'static str,
    body: &[u8],
    decide: impl FnOnce(&review::Review) -> Verdict,
    unreadable: impl FnOnce(&str) -> Verdict,
) -> Response {
    match review::parse(body) {
        Ok(review) => {
            let verdict = decide(&review);
            let request = &review.request;
            match &verdict {
                Verdict::Deny { message, .. } => info!(
                    webhook,
                    uid = %request.uid,
                    kind = %request.kind.kind,
                    namespace = request.namespace.as_deref().unwrap_or_default(),
                    name = %request.name,
                    message,
                    "admission denied"
                ),
                Verdict::Allow { warnings } => debug!(
                    webhook,
                    uid = %request.uid,
                    kind = %request.kind.kind,
                    name = %request.name,
                    ?warnings,
                    "admission allowed"
                ),
            }
            axum::Json(review::respond(request, verdict)).into_response()
        }
        Err(ReviewError::Unreadable {
            uid,
            api_version,
            detail,
        }) => {
            warn!(webhook, %uid, %detail, "unreadable AdmissionReview");
            let verdict = unreadable(&detail);
            let answer = review::respond_unreadable(&uid, &api_version, &detail, verdict);
            axum::Json(answer).into_response()
        }
        Err(e) => {
            warn!(webhook, reason = e.reason(), error = %e, "malformed AdmissionReview");
            (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response()
        }
    }
}

/// Serves `app` over TLS on `listener` until `shutdown`, then lets open requests finish (for at
/// most 5 s).
pub async fn serve(
    listener: TcpListener,
    config: Arc<ServerConfig>,
    app: Router,
    mut shutdown: watch::Receiver<bool>,
) {
    let acceptor = TlsAcceptor::from(config);
    let graceful = GracefulShutdown::new();
    loop {
        let (tcp, peer): (_, SocketAddr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: do not spin.
                    warn!(error = %e, "webhook accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = super::stopped(&mut shutdown) => break,
        };
        let acceptor = acceptor.clone();
        let service = TowerToHyperService::new(app.clone());
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(tls), service);
            if let Err(e) = watcher.watch(connection).await {
                debug!(%peer, error = %e, "webhook connection ended with an error");
            }
        });
    }
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(DRAIN_TIMEOUT) => warn!("webhook requests still open at shutdown"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    #[test]
    fn certificates_are_swapped_only_when_they_change_and_only_for_good_ones() {
        let names = vec!["localhost".to_string()];
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let a = tls::generate(&names, now).unwrap();
        let b = tls::generate(&names, now).unwrap();
        let certs = Certificates::default();
        assert!(!certs.loaded());
        assert_eq!(certs.ca(), None);
        assert!(certs.load(&a.cert, &a.key, Some(&a.ca_cert)).unwrap());
        assert!(!certs.load(&a.cert, &a.key, Some(&a.ca_cert)).unwrap());
        assert_eq!(certs.ca().as_deref(), Some(a.ca_cert.as_str()));
        assert!(certs.load(&b.cert, &a.key, None).is_err());
        assert_eq!(
            certs.cert().as_deref(),
            Some(a.cert.as_str()),
            "a bad pair keeps the old"
        );
        assert!(certs.load(&b.cert, &b.key, Some(&b.ca_cert)).unwrap());
        assert_eq!(certs.cert().as_deref(), Some(b.cert.as_str()));
        tls_config(Arc::new(certs)).unwrap();
    }
}
