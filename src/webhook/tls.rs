//! The webhook's certificates: a CA of its own and a serving certificate it signs, generated,
//! checked and renewed here. Pure apart from the randomness of new keys; the time is a parameter.
//!
//! Lifetimes: the CA is valid for 10 years, the serving certificate for 1 year. A serving
//! certificate is renewed (same CA) once it would no longer verify 30 days from now (expiry,
//! changed DNS names, another CA); the CA and the certificate are both replaced once the CA
//! expires within 30 days or cannot sign.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::RootCertStore;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;

const DAY: i64 = 24 * 60 * 60;
/// How long a generated CA is valid.
pub const CA_LIFETIME_DAYS: i64 = 3650;
/// How long a generated serving certificate is valid.
pub const CERT_LIFETIME_DAYS: i64 = 365;
/// Certificates are replaced once they expire within this many days.
pub const RENEW_BEFORE_DAYS: i64 = 30;
/// Backdating of `notBefore`, for clocks slightly behind ours.
const BACKDATE_SECONDS: i64 = 60 * 60;
const CA_COMMON_NAME: &str = "plimsoll webhook CA";

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot generate a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("{what} is not a PEM certificate: {detail}")]
    Certificate { what: &'static str, detail: String },
    #[error("{what} is not a PEM private key: {detail}")]
    Key { what: &'static str, detail: String },
    #[error("the certificate and the key do not belong together: {0}")]
    Mismatch(rustls::Error),
    #[error("{0:?} is not a DNS name")]
    Name(String),
    #[error("the time {0} cannot be written into a certificate")]
    Time(i64),
}

impl TlsError {
    /// A static, low-cardinality reason for logs and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            TlsError::Generate(_) => "GenerateFailed",
            TlsError::Certificate { .. } => "BadCertificate",
            TlsError::Key { .. } => "BadKey",
            TlsError::Mismatch(_) => "KeyMismatch",
            TlsError::Name(_) => "BadName",
            TlsError::Time(_) => "BadTime",
        }
    }
}

/// A CA and the serving certificate it signed, all PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct Bundle {
    pub ca_cert: String,
    pub ca_key: String,
    pub cert: String,
    pub key: String,
}

impl std::fmt::Debug for Bundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bundle")
            .field("ca_cert", &self.ca_cert)
            .field("cert", &self.cert)
            .finish_non_exhaustive()
    }
}

/// The DNS names a Service is reached by from the API server.
pub fn service_names(service: &str, namespace: &str) -> Vec<String> {
    vec![
        service.to_string(),
        format!("{service}.{namespace}"),
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.cluster.local"),
    ]
}

/// What a stored bundle needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renewal {
    /// Valid for every name for at least `RENEW_BEFORE_DAYS` more.
    None,
    /// The serving certificate must be replaced; the CA can sign it.
    Certificate,
    /// The CA must be replaced too (expiring, unreadable, or its key does not match).
    All,
}

/// Decides what a bundle needs at `now` for the given DNS names.
pub fn assess(bundle: &Bundle, names: &[String], now: Timestamp) -> Renewal {
    let horizon = now.as_second() + RENEW_BEFORE_DAYS * DAY;
    let ca_ok = not_after(&bundle.ca_cert).is_some_and(|end| end > horizon)
        && issuer(bundle).is_ok_and(|(issuer, ca_der)| {
            // The key must be the CA's: sign a probe and check it against the CA.
            probe(&issuer, &ca_der, now)
        });
    if !ca_ok {
        return Renewal::All;
    }
    if verifies(bundle, names, horizon) {
        Renewal::None
    } else {
        Renewal::Certificate
    }
}

/// The bundle to use: `current` when it needs nothing, otherwise a renewed one.
pub fn renew(
    current: Option<&Bundle>,
    names: &[String],
    now: Timestamp,
) -> Result<Bundle, TlsError> {
    match current.map(|b| (b, assess(b, names, now))) {
        Some((bundle, Renewal::None)) => Ok(bundle.clone()),
        Some((bundle, Renewal::Certificate)) => {
            let (cert, key) = issue(bundle, names, now)?;
            Ok(Bundle {
                cert,
                key,
                ..bundle.clone()
            })
        }
        Some((_, Renewal::All)) | None => generate(names, now),
    }
}

/// A new CA and a serving certificate for `names`.
pub fn generate(names: &[String], now: Timestamp) -> Result<Bundle, TlsError> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::default();
    params.distinguished_name = ca_name();
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = time(now.as_second() - BACKDATE_SECONDS)?;
    params.not_after = time(now.as_second() + CA_LIFETIME_DAYS * DAY)?;
    let ca = params.self_signed(&key)?;
    let partial = Bundle {
        ca_cert: ca.pem(),
        ca_key: key.serialize_pem(),
        cert: String::new(),
        key: String::new(),
    };
    let (cert, key) = issue(&partial, names, now)?;
    Ok(Bundle {
        cert,
        key,
        ..partial
    })
}

/// A serving certificate for `names`, signed by the bundle's CA: (certificate, key) as PEM.
pub fn issue(
    bundle: &Bundle,
    names: &[String],
    now: Timestamp,
) -> Result<(String, String), TlsError> {
    let (issuer, _) = issuer(bundle)?;
    let mut params =
        CertificateParams::new(names.to_vec()).map_err(|_| TlsError::Name(names.join(",")))?;
    let mut subject = DistinguishedName::new();
    subject.push(
        DnType::CommonName,
        names.first().cloned().unwrap_or_default(),
    );
    params.distinguished_name = subject;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.not_before = time(now.as_second() - BACKDATE_SECONDS)?;
    params.not_after = time(now.as_second() + CERT_LIFETIME_DAYS * DAY)?;
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// The serving certificate and key as rustls serves them; fails when they do not match.
pub fn certified_key(cert_pem: &str, key_pem: &str) -> Result<Arc<CertifiedKey>, TlsError> {
    let chain = certificates(cert_pem, "the serving certificate")?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| TlsError::Key {
        what: "the serving key",
        detail: e.to_string(),
    })?;
    let key = CertifiedKey::from_der(chain, key, &provider()).map_err(TlsError::Mismatch)?;
    Ok(Arc::new(key))
}

/// Every certificate of a PEM text, at least one.
pub fn certificates(
    pem: &str,
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let chain = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Certificate {
            what,
            detail: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::Certificate {
            what,
            detail: "no CERTIFICATE block".to_string(),
        });
    }
    Ok(chain)
}

/// The crypto provider the crate uses everywhere (ring).
pub fn provider() -> CryptoProvider {
    rustls::crypto::ring::default_provider()
}

fn ca_name() -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, "plimsoll.dev");
    name.push(DnType::CommonName, CA_COMMON_NAME);
    name
}

fn time(second: i64) -> Result<time::OffsetDateTime, TlsError> {
    time::OffsetDateTime::from_unix_timestamp(second).map_err(|_| TlsError::Time(second))
}

fn issuer(
    bundle: &Bundle,
) -> Result<(Issuer<'static, KeyPair>, CertificateDer<'static>), TlsError> {
    let key = KeyPair::from_pem(&bundle.ca_key).map_err(|e| TlsError::Key {
        what: "the CA key",
        detail: e.to_string(),
    })?;
    let ca = certificates(&bundle.ca_cert, "the CA certificate")?
        .into_iter()
        .next()
        .ok_or(TlsError::Certificate {
            what: "the CA certificate",
            detail: "empty".to_string(),
        })?;
    let issuer = Issuer::from_ca_cert_der(&ca, key).map_err(|e| TlsError::Certificate {
        what: "the CA certificate",
        detail: e.to_string(),
    })?;
    Ok((issuer, ca))
}

/// Whether the CA key signs certificates that verify against the CA certificate.
fn probe(issuer: &Issuer<'static, KeyPair>, ca: &CertificateDer<'static>, now: Timestamp) -> bool {
    let name = "probe.plimsoll.invalid".to_string();
    let signed = (|| -> Result<CertificateDer<'static>, TlsError> {
        let mut params =
            CertificateParams::new(vec![name.clone()]).map_err(|_| TlsError::Name(name.clone()))?;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.not_before = time(now.as_second() - BACKDATE_SECONDS)?;
        params.not_after = time(now.as_second() + DAY)?;
        let key = KeyPair::generate()?;
        Ok(params.signed_by(&key, issuer)?.der().clone())
    })();
    signed.is_ok_and(|leaf| verify_der(ca, &leaf, &[], &name, now.as_second()))
}

/// Whether the serving certificate verifies against the CA for every name at `at` (seconds).
fn verifies(bundle: &Bundle, names: &[String], at: i64) -> bool {
    let (Ok(ca), Ok(chain)) = (
        certificates(&bundle.ca_cert, "the CA certificate"),
        certificates(&bundle.cert, "the serving certificate"),
    ) else {
        return false;
    };
    let (Some(ca), Some((leaf, intermediates))) = (ca.first(), chain.split_first()) else {
        return false;
    };
    if certified_key(&bundle.cert, &bundle.key).is_err() {
        return false;
    }
    !names.is_empty()
        && names
            .iter()
            .all(|name| verify_der(ca, leaf, intermediates, name, at))
}

fn verify_der(
    ca: &CertificateDer<'static>,
    leaf: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    name: &str,
    at: i64,
) -> bool {
    let mut roots = RootCertStore::empty();
    if roots.add(ca.clone()).is_err() {
        return false;
    }
    let Ok(verifier) =
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::new(provider())).build()
    else {
        return false;
    };
    let Ok(server_name) = ServerName::try_from(name.to_string()) else {
        return false;
    };
    let Ok(at) = u64::try_from(at) else {
        return false;
    };
    verifier
        .verify_server_cert(
            leaf,
            intermediates,
            &server_name,
            &[],
            UnixTime::since_unix_epoch(Duration::from_secs(at)),
        )
        .is_ok()
}

/// The end of the first certificate's validity, in seconds since the epoch.
fn not_after(pem: &str) -> Option<i64> {
    let der = certificates(pem, "certificate").ok()?.into_iter().next()?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der).ok()?;
    Some(cert.validity().not_after.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(second).unwrap()
    }

    fn names() -> Vec<String> {
        service_names("plimsoll-webhook", "plimsoll-system")
    }

    #[test]
    fn service_names_cover_every_way_the_api_server_may_ask() {
        assert_eq!(
            service_names("wh", "ops"),
            ["wh", "wh.ops", "wh.ops.svc", "wh.ops.svc.cluster.local"]
        );
    }

    #[test]
    fn a_generated_bundle_verifies_for_its_names_and_serves() {
        let bundle = generate(&names(), at(NOW)).unwrap();
        assert_eq!(assess(&bundle, &names(), at(NOW)), Renewal::None);
        certified_key(&bundle.cert, &bundle.key).unwrap();
        assert!(bundle.ca_cert.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(bundle.key.contains("PRIVATE KEY"));
        assert_eq!(
            not_after(&bundle.ca_cert),
            Some(NOW + CA_LIFETIME_DAYS * DAY)
        );
        assert_eq!(
            not_after(&bundle.cert),
            Some(NOW + CERT_LIFETIME_DAYS * DAY)
        );
    }

    #[test]
    fn the_serving_certificate_is_renewed_30_days_before_it_expires() {
        let bundle = generate(&names(), at(NOW)).unwrap();
        let end = NOW + CERT_LIFETIME_DAYS * DAY;
        let just_fresh = end - RENEW_BEFORE_DAYS * DAY - 60;
        assert_eq!(assess(&bundle, &names(), at(just_fresh)), Renewal::None);
        let due = end - RENEW_BEFORE_DAYS * DAY + 60;
        assert_eq!(assess(&bundle, &names(), at(due)), Renewal::Certificate);
        let renewed = renew(Some(&bundle), &names(), at(due)).unwrap();
        assert_eq!(
            renewed.ca_cert, bundle.ca_cert,
            "same CA, so the caBundle stays"
        );
        assert_eq!(renewed.ca_key, bundle.ca_key);
        assert_ne!(renewed.cert, bundle.cert);
        assert_eq!(assess(&renewed, &names(), at(due)), Renewal::None);
    }

    #[test]
    fn the_ca_is_replaced_30_days_before_it_expires() {
        let bundle = generate(&names(), at(NOW)).unwrap();
        let due = NOW + (CA_LIFETIME_DAYS - RENEW_BEFORE_DAYS) * DAY + 60;
        assert_eq!(assess(&bundle, &names(), at(due)), Renewal::All);
        let renewed = renew(Some(&bundle), &names(), at(due)).unwrap();
        assert_ne!(renewed.ca_cert, bundle.ca_cert);
        assert_eq!(assess(&renewed, &names(), at(due)), Renewal::None);
    }

    #[test]
    fn other_names_a_foreign_ca_or_a_wrong_key_are_renewed() {
        let bundle = generate(&names(), at(NOW)).unwrap();
        let other = service_names("other", "plimsoll-system");
        assert_eq!(assess(&bundle, &other, at(NOW)), Renewal::Certificate);

        let foreign = generate(&names(), at(NOW)).unwrap();
        let mixed = Bundle {
            cert: foreign.cert.clone(),
            key: foreign.key.clone(),
            ..bundle.clone()
        };
        assert_eq!(assess(&mixed, &names(), at(NOW)), Renewal::Certificate);

        let wrong_key = Bundle {
            key: foreign.key.clone(),
            ..bundle.clone()
        };
        assert_eq!(assess(&wrong_key, &names(), at(NOW)), Renewal::Certificate);

        let wrong_ca_key = Bundle {
            ca_key: foreign.ca_key.clone(),
            ..bundle.clone()
        };
        assert_eq!(assess(&wrong_ca_key, &names(), at(NOW)), Renewal::All);

        let garbage = Bundle {
            ca_cert: "not a certificate".into(),
            ..bundle
        };
        assert_eq!(assess(&garbage, &names(), at(NOW)), Renewal::All);
        let fresh = renew(Some(&garbage), &names(), at(NOW)).unwrap();
        assert_eq!(assess(&fresh, &names(), at(NOW)), Renewal::None);
    }

    #[test]
    fn unreadable_or_mismatched_serving_material_is_an_error_not_a_panic() {
        let bundle = generate(&names(), at(NOW)).unwrap();
        let other = generate(&names(), at(NOW)).unwrap();
        assert_eq!(
            certified_key(&bundle.cert, &other.key)
                .unwrap_err()
                .reason(),
            "KeyMismatch"
        );
        assert_eq!(
            certified_key("", &bundle.key).unwrap_err().reason(),
            "BadCertificate"
        );
        assert_eq!(
            certified_key(&bundle.cert, "junk").unwrap_err().reason(),
            "BadKey"
        );
    }
}
