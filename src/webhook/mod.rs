//! The validating admission webhook, served over HTTPS on every replica (not only the leader):
//!
//! - `POST /validate-slo`: ServiceLevelObjective CREATE and UPDATE are refused with the messages
//!   of `plimsoll validate` ([`validate`]).
//! - `POST /freeze`: with `--deploy-freeze`, pod template changes to a rollback target whose
//!   SLO's budget is exhausted are refused unless overridden ([`freeze`]); without it, `/freeze`
//!   admits everything.
//!
//! The decisions are pure ([`validate`], [`freeze`], [`review`]); the edges are the certificate
//! sources ([`cert_dir`] or the self-managed [`secret`] with [`tls`]), the caBundle
//! ([`ca_bundle`]), the SLO cache ([`slos`]) and HTTPS ([`server`]).

pub mod ca_bundle;
pub mod cert_dir;
pub mod freeze;
pub mod review;
pub mod secret;
pub mod server;
pub mod tls;
pub mod validate;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use kube::{Api, Client};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::controller::Scope;
use crate::slo_cache::SloCache;
use server::{AppState, Certificates};

/// Field manager of everything the webhook writes (the Secret, the caBundle patch).
pub const FIELD_MANAGER: &str = "plimsoll-webhook";
pub const VALIDATE_SLO_PATH: &str = "/validate-slo";
pub const FREEZE_PATH: &str = "/freeze";
/// How often certificates and the caBundle are checked again once the webhook serves.
pub const RECHECK: Duration = Duration::from_secs(60);
/// How soon a missing certificate, or a caBundle not yet set, is looked for again.
const RETRY: Duration = Duration::from_secs(5);

/// Where the serving certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertSource {
    /// `tls.crt` and `tls.key` (and `ca.crt`, if any) in a directory, re-read every round.
    Dir(PathBuf),
    /// A CA and certificate the operator generates and keeps in this Secret of `namespace`,
    /// valid for the DNS names of `service`.
    Secret {
        name: String,
        namespace: String,
        service: String,
    },
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub certificates: CertSource,
    /// The ValidatingWebhookConfiguration whose caBundles get our CA.
    pub configuration: Option<String>,
    pub deploy_freeze: bool,
    /// The replica's SLO cache, shared with the other endpoints; started here when absent.
    pub cache: Option<Arc<SloCache>>,
    /// The SLOs the freeze looks at: the controllers' namespaces and selector.
    pub scope: Scope,
    /// How often certificates and the caBundle are checked again.
    pub recheck: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot set up TLS: {0}")]
    Tls(#[from] rustls::Error),
}

/// The webhook server, running.
pub struct Running {
    /// Where it listens (the port chosen when `listen` had port 0).
    pub addr: SocketAddr,
    pub certificates: Arc<Certificates>,
    /// Ends after shutdown, once open requests are answered.
    pub done: JoinHandle<()>,
}

/// Binds the listener and starts serving, keeping the certificate (and the caBundle) current and,
/// with the freeze on, the SLO cache; all of it stops on `shutdown`.
pub async fn start(
    client: Client,
    settings: Settings,
    shutdown: watch::Receiver<bool>,
) -> Result<Running, Error> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|source| Error::Bind {
            addr: settings.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| Error::Bind {
        addr: settings.listen,
        source,
    })?;
    let certificates = Arc::new(Certificates::default());
    let config = server::tls_config(certificates.clone())?;
    let mut tasks = Vec::new();
    let freeze = match (settings.deploy_freeze, &settings.cache) {
        (false, _) => None,
        (true, Some(shared)) => Some(shared.clone()),
        (true, None) => {
            let (cache, feeding) = SloCache::start(&client, &settings.scope);
            tasks.extend(feeding);
            Some(cache)
        }
    };
    tasks.push(tokio::spawn(keep_certificates(
        client,
        settings.clone(),
        certificates.clone(),
        shutdown.clone(),
    )));
    let app = server::router(AppState { freeze });
    info!(
        %addr,
        deploy_freeze = settings.deploy_freeze,
        "serving the admission webhook ({VALIDATE_SLO_PATH}, {FREEZE_PATH})"
    );
    let done = tokio::spawn(async move {
        server::serve(listener, config, app, shutdown).await;
        for task in tasks {
            task.abort();
        }
    });
    Ok(Running {
        addr,
        certificates,
        done,
    })
}

/// Loads the certificate and keeps it (and the caBundle) current until `shutdown`.
async fn keep_certificates(
    client: Client,
    settings: Settings,
    certificates: Arc<Certificates>,
    mut shutdown: watch::Receiver<bool>,
) {
    let configurations: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let mut last_bundle_outcome = None;
    let mut warned_no_ca = false;
    loop {
        // The caBundle is not in place yet (the configuration is missing, or writing it failed):
        // until it is, the API server cannot call the webhook, so look again soon.
        let mut bundle_pending = false;
        refresh(&client, &settings.certificates, &certificates).await;
        if let Some(name) = &settings.configuration
            && certificates.loaded()
            && certificates.ca().is_none()
            && !warned_no_ca
        {
            warned_no_ca = true;
            warn!(configuration = %name,
                  "the certificate directory has no ca.crt: the caBundle is left to whoever \
                   manages it (such as cert-manager's CA injector)");
        }
        if let (Some(name), Some(ca)) = (&settings.configuration, certificates.ca()) {
            let outcome = ca_bundle::ensure(&configurations, name, &ca)
                .await
                .map_err(|e| (e.reason(), e.to_string()));
            if Some(&outcome) != last_bundle_outcome.as_ref() {
                match &outcome {
                    Ok(ca_bundle::Outcome::Patched(n)) => {
                        info!(configuration = %name, webhooks = n, "set the caBundle")
                    }
                    Ok(ca_bundle::Outcome::Unchanged) => {}
                    Ok(ca_bundle::Outcome::Missing) => warn!(
                        configuration = %name,
                        "ValidatingWebhookConfiguration not found; its caBundle is set once it exists"
                    ),
                    Err((reason, e)) => {
                        warn!(configuration = %name, reason, error = %e, "caBundle not set")
                    }
                }
            }
            bundle_pending = matches!(outcome, Ok(ca_bundle::Outcome::Missing) | Err(_));
            // A patch is an event each time; "unchanged" and the same error are not.
            last_bundle_outcome = match outcome {
                Ok(ca_bundle::Outcome::Patched(_)) => None,
                other => Some(other),
            };
        }
        let wait = match certificates.loaded() && !bundle_pending {
            true => settings.recheck,
            false => settings.recheck.min(RETRY),
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stopped(&mut shutdown) => return,
        }
    }
}

/// Resolves once `shutdown` says so (or its sender is gone), holding no borrow of it.
pub(crate) async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await;
}

/// One look at the certificate source; what it finds is served from the next handshake on.
async fn refresh(client: &Client, source: &CertSource, certificates: &Certificates) {
    let found = match source {
        CertSource::Dir(dir) => cert_dir::read(dir)
            .map(|f| (f.cert, f.key, f.ca, "read"))
            .map_err(|e| (e.reason(), e.to_string())),
        CertSource::Secret {
            name,
            namespace,
            service,
        } => {
            let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
            let names = tls::service_names(service, namespace);
            secret::ensure(&api, name, &names, Timestamp::now())
                .await
                .map(|(b, action)| {
                    let action = match action {
                        secret::Action::Read => "read",
                        secret::Action::Created => "created",
                        secret::Action::Renewed => "renewed",
                    };
                    (b.cert, b.key, Some(b.ca_cert), action)
                })
                .map_err(|e| (e.reason(), e.to_string()))
        }
    };
    match found {
        Ok((cert, key, ca, action)) => match certificates.load(&cert, &key, ca.as_deref()) {
            Ok(true) => info!(source = ?source, action, "webhook certificate loaded"),
            Ok(false) => {}
            Err(e) => warn!(source = ?source, reason = e.reason(), error = %e,
                            "webhook certificate not usable; keeping the previous one"),
        },
        Err((reason, e)) => warn!(source = ?source, reason, error = %e,
                                  "webhook certificate not available"),
    }
}
