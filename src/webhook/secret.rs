//! The self-managed certificate, kept in a Secret of the operator's namespace so every replica
//! serves the same one. The first replica creates it (an `AlreadyExists` answer means another
//! replica won: theirs is read and used); whoever finds it due renews it with an update guarded
//! by its resourceVersion (a `Conflict` answer means another replica renewed first: theirs is
//! read again).
//!
//! The Secret has type `kubernetes.io/tls` with `tls.crt`, `tls.key`, `ca.crt` and `ca.key` (the
//! CA key stays, so a renewed serving certificate keeps the same CA and caBundle).

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::PostParams;

use super::FIELD_MANAGER;
use super::tls::{self, Bundle, Renewal, TlsError};
use crate::rules::output::{MANAGED_BY, MANAGED_BY_LABEL};

pub const TLS_CRT: &str = "tls.crt";
pub const TLS_KEY: &str = "tls.key";
pub const CA_CRT: &str = "ca.crt";
pub const CA_KEY: &str = "ca.key";
/// Rounds of read-then-write before giving up until the next check.
const ATTEMPTS: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot {verb} Secret {name}: {source}")]
    Api {
        verb: &'static str,
        name: String,
        source: kube::Error,
    },
    #[error(
        "Secret {name} exists without a plimsoll certificate and without the label \
         {MANAGED_BY_LABEL}={MANAGED_BY}; it is left alone: delete it or choose another \
         --webhook-secret"
    )]
    Foreign { name: String },
    #[error("Secret {name} kept changing under us ({ATTEMPTS} conflicts); trying again later")]
    Contended { name: String },
    #[error(transparent)]
    Tls(#[from] TlsError),
}

impl SecretError {
    pub fn reason(&self) -> &'static str {
        match self {
            SecretError::Api { .. } => "ApiError",
            SecretError::Foreign { .. } => "ForeignSecret",
            SecretError::Contended { .. } => "Contended",
            SecretError::Tls(e) => e.reason(),
        }
    }
}

/// What `ensure` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The stored certificate is good.
    Read,
    /// This replica created the Secret.
    Created,
    /// This replica renewed the serving certificate (or, with a failing CA, everything).
    Renewed,
}

/// The bundle stored in a Secret, if it has all four entries as UTF-8.
pub fn bundle(secret: &Secret) -> Option<Bundle> {
    let data = secret.data.as_ref()?;
    let text = |key: &str| {
        data.get(key)
            .and_then(|b| String::from_utf8(b.0.clone()).ok())
    };
    Some(Bundle {
        ca_cert: text(CA_CRT)?,
        ca_key: text(CA_KEY)?,
        cert: text(TLS_CRT)?,
        key: text(TLS_KEY)?,
    })
}

/// A new Secret holding `bundle`.
pub fn secret(name: &str, bundle: &Bundle) -> Secret {
    let mut secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            labels: Some(BTreeMap::from([
                (MANAGED_BY_LABEL.to_string(), MANAGED_BY.to_string()),
                (
                    "app.kubernetes.io/component".to_string(),
                    "webhook".to_string(),
                ),
            ])),
            ..ObjectMeta::default()
        },
        type_: Some("kubernetes.io/tls".to_string()),
        ..Secret::default()
    };
    store(&mut secret, bundle);
    secret
}

fn store(secret: &mut Secret, bundle: &Bundle) {
    let data = secret.data.get_or_insert_with(BTreeMap::new);
    for (key, value) in [
        (CA_CRT, &bundle.ca_cert),
        (CA_KEY, &bundle.ca_key),
        (TLS_CRT, &bundle.cert),
        (TLS_KEY, &bundle.key),
    ] {
        data.insert(key.to_string(), ByteString(value.as_bytes().to_vec()));
    }
}

/// Ours to overwrite: labelled by us, or holding nothing.
fn ours(secret: &Secret) -> bool {
    let labelled = secret
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(MANAGED_BY_LABEL))
        .is_some_and(|v| v == MANAGED_BY);
    let empty = secret.data.as_ref().is_none_or(BTreeMap::is_empty)
        && secret.string_data.as_ref().is_none_or(BTreeMap::is_empty);
    labelled || empty
}

/// Makes sure the Secret holds a bundle good for `names` for at least the renewal margin, and
/// returns the bundle to serve.
pub async fn ensure(
    api: &Api<Secret>,
    name: &str,
    names: &[String],
    now: Timestamp,
) -> Result<(Bundle, Action), SecretError> {
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..PostParams::default()
    };
    let api_error = |verb: &'static str| {
        move |source| SecretError::Api {
            verb,
            name: name.to_string(),
            source,
        }
    };
    for _ in 0..ATTEMPTS {
        let Some(mut current) = api.get_opt(name).await.map_err(api_error("get"))? else {
            let bundle = tls::generate(names, now)?;
            match api.create(&params, &secret(name, &bundle)).await {
                Ok(_) => return Ok((bundle, Action::Created)),
                // Another replica created it first: read theirs.
                Err(kube::Error::Api(status)) if status.code == 409 => continue,
                Err(e) => return Err(api_error("create")(e)),
            }
        };
        let stored = bundle(&current);
        if let Some(stored) = &stored
            && tls::assess(stored, names, now) == Renewal::None
        {
            return Ok((stored.clone(), Action::Read));
        }
        if stored.is_none() && !ours(&current) {
            return Err(SecretError::Foreign {
                name: name.to_string(),
            });
        }
        let renewed = tls::renew(stored.as_ref(), names, now)?;
        store(&mut current, &renewed);
        current.type_ = Some("kubernetes.io/tls".to_string());
        current.metadata.managed_fields = None;
        // The update carries the resourceVersion read above: a concurrent writer makes it 409.
        match api.replace(name, &params, &current).await {
            Ok(_) => return Ok((renewed, Action::Renewed)),
            Err(kube::Error::Api(status)) if status.code == 409 => continue,
            Err(e) => return Err(api_error("update")(e)),
        }
    }
    Err(SecretError::Contended {
        name: name.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundle_round_trips_through_a_secret() {
        let bundle = Bundle {
            ca_cert: "a".into(),
            ca_key: "b".into(),
            cert: "c".into(),
            key: "d".into(),
        };
        let s = secret("plimsoll-webhook-tls", &bundle);
        assert_eq!(s.type_.as_deref(), Some("kubernetes.io/tls"));
        assert_eq!(crate::webhook::secret::bundle(&s), Some(bundle));
        assert!(ours(&s));
        let foreign = Secret {
            data: Some(BTreeMap::from([("x".into(), ByteString(b"y".to_vec()))])),
            ..Secret::default()
        };
        assert_eq!(crate::webhook::secret::bundle(&foreign), None);
        assert!(!ours(&foreign));
        assert!(ours(&Secret::default()), "an empty Secret may be filled");
    }
}
