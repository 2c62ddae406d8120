//! The caBundle of the ValidatingWebhookConfiguration: every webhook in it must trust our CA, or
//! the API server cannot call us. Set with a JSON patch (RFC 6902) that first tests each
//! webhook's name at its index, so a configuration re-ordered in between is refused (422) rather
//! than patched in the wrong place; checked again every round, so a re-applied chart that blanks
//! the field is mended.

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};

use super::FIELD_MANAGER;

#[derive(Debug, thiserror::Error)]
pub enum CaBundleError {
    #[error("cannot read ValidatingWebhookConfiguration {name}: {source}")]
    Get { name: String, source: kube::Error },
    #[error("cannot patch the caBundle of ValidatingWebhookConfiguration {name}: {source}")]
    Patch { name: String, source: kube::Error },
    #[error("cannot encode the caBundle patch: {0}")]
    Encode(#[from] serde_json::Error),
}

impl CaBundleError {
    pub fn reason(&self) -> &'static str {
        match self {
            CaBundleError::Get { .. } => "GetFailed",
            CaBundleError::Patch { .. } => "PatchFailed",
            CaBundleError::Encode(_) => "EncodeFailed",
        }
    }
}

/// What a round did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every webhook already trusts the CA.
    Unchanged,
    /// This many webhooks were given the CA.
    Patched(usize),
    /// The configuration does not exist (yet).
    Missing,
}

/// The JSON patch giving every webhook of `configuration` the CA `ca_pem`, or `None` when all
/// of them have it already.
pub fn patch(configuration: &ValidatingWebhookConfiguration, ca_pem: &str) -> Option<Value> {
    let wanted = ByteString(ca_pem.as_bytes().to_vec());
    let encoded = serde_json::to_value(&wanted).ok()?;
    let ops: Vec<Value> = configuration
        .webhooks
        .iter()
        .flatten()
        .enumerate()
        .filter(|(_, webhook)| webhook.client_config.ca_bundle.as_ref() != Some(&wanted))
        .flat_map(|(i, webhook)| {
            [
                json!({"op": "test", "path": format!("/webhooks/{i}/name"), "value": webhook.name}),
                json!({"op": "add", "path": format!("/webhooks/{i}/clientConfig/caBundle"),
                       "value": encoded}),
            ]
        })
        .collect();
    match ops.is_empty() {
        true => None,
        false => Some(Value::Array(ops)),
    }
}

/// Reads the configuration and patches its caBundles where they differ from `ca_pem`.
pub async fn ensure(
    api: &Api<ValidatingWebhookConfiguration>,
    name: &str,
    ca_pem: &str,
) -> Result<Outcome, CaBundleError> {
    let configuration = api
        .get_opt(name)
        .await
        .map_err(|source| CaBundleError::Get {
            name: name.to_string(),
            source,
        })?;
    let Some(configuration) = configuration else {
        return Ok(Outcome::Missing);
    };
    let Some(ops) = patch(&configuration, ca_pem) else {
        return Ok(Outcome::Unchanged);
    };
    let count = ops.as_array().map_or(0, |ops| ops.len() / 2);
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..PatchParams::default()
    };
    api.patch(
        name,
        &params,
        &Patch::Json::<()>(serde_json::from_value(ops)?),
    )
    .await
    .map_err(|source| CaBundleError::Patch {
        name: name.to_string(),
        source,
    })?;
    Ok(Outcome::Patched(count))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CA: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

    fn configuration(bundles: &[Option<&str>]) -> ValidatingWebhookConfiguration {
        let webhooks: Vec<Value> = bundles
            .iter()
            .enumerate()
            .map(|(i, bundle)| {
                let mut client = json!({"service": {"name": "plimsoll-webhook",
                                                    "namespace": "plimsoll-system",
                                                    "path": "/validate-slo"}});
                if let Some(b) = bundle {
                    client["caBundle"] =
                        serde_json::to_value(ByteString(b.as_bytes().to_vec())).unwrap();
                }
                json!({"name": format!("w{i}.plimsoll.dev"), "clientConfig": client,
                       "sideEffects": "None", "admissionReviewVersions": ["v1"]})
            })
            .collect();
        serde_json::from_value(json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": "plimsoll"}, "webhooks": webhooks}))
        .unwrap()
    }

    #[test]
    fn only_webhooks_without_our_ca_are_patched_each_behind_a_name_test() {
        let patch = patch(&configuration(&[Some(CA), None, Some("old")]), CA).unwrap();
        let base64 = serde_json::to_value(ByteString(CA.as_bytes().to_vec())).unwrap();
        assert_eq!(
            patch,
            json!([
                {"op": "test", "path": "/webhooks/1/name", "value": "w1.plimsoll.dev"},
                {"op": "add", "path": "/webhooks/1/clientConfig/caBundle", "value": base64},
                {"op": "test", "path": "/webhooks/2/name", "value": "w2.plimsoll.dev"},
                {"op": "add", "path": "/webhooks/2/clientConfig/caBundle", "value": base64},
            ])
        );
        assert!(
            base64.as_str().unwrap().starts_with("LS0tLS1CRUdJTi"),
            "{base64}"
        );
    }

    #[test]
    fn nothing_to_do_when_every_webhook_trusts_the_ca_or_there_are_none() {
        assert_eq!(patch(&configuration(&[Some(CA), Some(CA)]), CA), None);
        assert_eq!(patch(&configuration(&[]), CA), None);
    }
}
