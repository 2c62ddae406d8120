//! A release of the chart on the real control plane (tests/support/kube.rs), as far as a test
//! needs it without an image: the CRDs, and of the chart's render (Helm's engine, as
//! tests/chart.rs renders it) the ServiceAccount, every Role, ClusterRole and binding, and the
//! ValidatingWebhookConfiguration when the webhook is on; plus a kubeconfig with a token of the
//! release's ServiceAccount, for `plimsoll run` to act as the chart's pods do.
//!
//! The chart's Deployment, Service and PodDisruptionBudget are not applied: the operator runs
//! as a process on loopback. Cluster-scoped names (ClusterRoles, the webhook configuration)
//! follow the release's name, so each test takes a release name of its own.
#![allow(dead_code)]

pub use crate::support::helm;

use std::path::PathBuf;

use serde_json::Value;

use crate::support::kube::Access;

/// The chart installed as far as RBAC (and the webhook configuration) goes.
pub struct Release {
    pub name: String,
    /// The release's namespace: the pods', the Lease's and the webhook Secret's.
    pub namespace: String,
    pub rendered: helm::Rendered,
    /// A kubeconfig with a token of the release's ServiceAccount, in the release's namespace.
    pub kubeconfig: PathBuf,
    /// The ID of that token, by which the audit log names whoever used it.
    pub credential: String,
    dir: tempfile::TempDir,
}

/// The kinds of the render that are applied.
const APPLIED_KINDS: &[&str] = &[
    "ServiceAccount",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
];

impl Release {
    /// Renders the chart as `name` in `namespace` with `values`, creates the namespace (and the
    /// watched ones, `watchNamespaces`), applies the RBAC objects and takes a token (2 hours).
    /// The webhook configuration is left to `apply_webhook_configuration`.
    pub fn install(kube: &Access, name: &str, namespace: &str, values: &Value) -> Release {
        crate::support::cluster::crds();
        Release::install_on(kube, name, namespace, values)
    }

    /// [`Release::install`] on a control plane of the caller's (not the process' shared one),
    /// whose CRDs the caller has applied.
    pub fn install_on(kube: &Access, name: &str, namespace: &str, values: &Value) -> Release {
        let rendered = helm::render_as(name, namespace, values);
        kube.namespace(namespace);
        for watched in values["watchNamespaces"].as_array().into_iter().flatten() {
            kube.namespace(watched.as_str().unwrap());
        }
        crate::support::cluster::apply_kinds(kube, &rendered.objects, APPLIED_KINDS);
        let mut release = Release {
            name: name.to_string(),
            namespace: namespace.to_string(),
            rendered,
            kubeconfig: PathBuf::new(),
            credential: String::new(),
            dir: tempfile::tempdir().unwrap(),
        };
        (release.kubeconfig, release.credential) = release.token(kube, "kubeconfig");
        release
    }

    /// A token of the release's ServiceAccount (2 hours), as another pod of it would have one,
    /// in a kubeconfig `file` of its own; and the token's ID (`JTI=...`, the `credential-id` of
    /// the audit log's users).
    pub fn token(&self, kube: &Access, file: &str) -> (PathBuf, String) {
        let token = self.service_account_token(kube);
        let kubeconfig = self.dir.path().join(file);
        kube.token_kubeconfig(&kubeconfig, &token, &self.namespace);
        (kubeconfig, format!("JTI={}", token_id(&token)))
    }

    /// A token (2 hours) of the release's ServiceAccount.
    pub fn service_account_token(&self, kube: &Access) -> String {
        let service_account = self.rendered.of_kind("ServiceAccount")[0]["metadata"]["name"]
            .as_str()
            .unwrap()
            .to_string();
        kube.kubectl(&[
            "create",
            "token",
            &service_account,
            "-n",
            &self.namespace,
            "--duration=2h",
        ])
        .expect_ok("kubectl create token")
        .trim()
        .to_string()
    }

    /// The plain value of one of the operator container's environment variables in the render.
    pub fn env(&self, name: &str) -> String {
        self.rendered
            .env_value(name)
            .unwrap_or_else(|| panic!("the chart sets no {name}"))
    }

    /// The rendered ValidatingWebhookConfiguration.
    pub fn webhook_configuration(&self) -> Value {
        let all = self.rendered.of_kind("ValidatingWebhookConfiguration");
        assert_eq!(all.len(), 1, "the webhook is not enabled in the values");
        all[0].clone()
    }
}

impl Release {
    /// The operator container's environment as the chart sets it, with the downward API's
    /// values filled in: `POD_NAME` is `identity`, `POD_NAMESPACE` the release's namespace.
    pub fn operator_env(&self, identity: &str) -> Vec<(String, String)> {
        self.rendered
            .env()
            .into_iter()
            .map(|(name, value)| {
                let value = match (name.as_str(), value) {
                    ("POD_NAME", _) => identity.to_string(),
                    ("POD_NAMESPACE", _) => self.namespace.clone(),
                    (_, Value::String(text)) => text,
                    (_, other) => panic!("{name}: {other} is not filled in by the tests"),
                };
                (name, value)
            })
            .collect()
    }
}

/// The `jti` claim of a ServiceAccount token: a JWT, whose middle part is base64url JSON.
pub fn token_id(token: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let payload = token.trim().split('.').nth(1).expect("a JWT");
    let (mut bits, mut count, mut bytes) = (0u32, 0u32, Vec::new());
    for c in payload.bytes() {
        let value = ALPHABET.iter().position(|&a| a == c).expect("base64url") as u32;
        bits = (bits << 6) | value;
        count += 6;
        if count >= 8 {
            count -= 8;
            bytes.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    let claims: Value = serde_json::from_slice(&bytes).expect("JSON claims");
    claims["jti"].as_str().expect("a jti claim").to_string()
}
