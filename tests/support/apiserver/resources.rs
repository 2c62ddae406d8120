//! The resources the emulated API server serves, registered by the test. A resource that is not
//! registered answers 404 like an API server without that CRD installed.

/// One served resource: what discovery would say about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resource {
    /// API group; `""` is the core group.
    pub group: String,
    pub version: String,
    pub plural: String,
    pub kind: String,
    pub namespaced: bool,
    /// Has the `/status` subresource: writes to the main resource ignore `.status`, writes to
    /// `/status` change only `.status`, and status changes do not bump `metadata.generation`.
    pub status: bool,
}

impl Resource {
    /// A namespaced resource without a status subresource.
    pub fn new(group: &str, version: &str, plural: &str, kind: &str) -> Resource {
        Resource {
            group: group.to_string(),
            version: version.to_string(),
            plural: plural.to_string(),
            kind: kind.to_string(),
            namespaced: true,
            status: false,
        }
    }

    pub fn cluster_scoped(mut self) -> Resource {
        self.namespaced = false;
        self
    }

    pub fn with_status(mut self) -> Resource {
        self.status = true;
        self
    }

    /// `group/version`, or `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `plural.group` as error messages name it (`secrets` for the core group).
    pub fn group_resource(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// Kubernetes' own kinds, as opposed to custom resources. The difference shows in two places:
    /// custom resources refuse strategic merge patches (415), and refuse a PUT without
    /// `metadata.resourceVersion` (422), as the apiextensions server does.
    pub fn builtin(&self) -> bool {
        matches!(
            self.group.as_str(),
            "" | "apps"
                | "events.k8s.io"
                | "coordination.k8s.io"
                | "admissionregistration.k8s.io"
                | "policy"
                | "rbac.authorization.k8s.io"
                | "batch"
        )
    }

    /// The URL path of the collection, in `namespace` when namespaced.
    pub fn collection_path(&self, namespace: Option<&str>) -> String {
        let base = if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        };
        match namespace {
            Some(ns) if self.namespaced => format!("{base}/namespaces/{ns}/{}", self.plural),
            _ => format!("{base}/{}", self.plural),
        }
    }
}

/// The kinds the operator reads and writes.
pub mod presets {
    use super::Resource;

    pub fn service_level_objectives() -> Resource {
        Resource::new(
            "plimsoll.dev",
            "v1alpha1",
            "servicelevelobjectives",
            "ServiceLevelObjective",
        )
        .with_status()
    }

    pub fn prometheus_rules() -> Resource {
        Resource::new(
            "monitoring.coreos.com",
            "v1",
            "prometheusrules",
            "PrometheusRule",
        )
    }

    pub fn analysis_templates() -> Resource {
        Resource::new(
            "argoproj.io",
            "v1alpha1",
            "analysistemplates",
            "AnalysisTemplate",
        )
    }

    pub fn rollouts() -> Resource {
        Resource::new("argoproj.io", "v1alpha1", "rollouts", "Rollout").with_status()
    }

    pub fn deployments() -> Resource {
        Resource::new("apps", "v1", "deployments", "Deployment").with_status()
    }

    pub fn stateful_sets() -> Resource {
        Resource::new("apps", "v1", "statefulsets", "StatefulSet").with_status()
    }

    pub fn daemon_sets() -> Resource {
        Resource::new("apps", "v1", "daemonsets", "DaemonSet").with_status()
    }

    pub fn events() -> Resource {
        Resource::new("events.k8s.io", "v1", "events", "Event")
    }

    pub fn core_events() -> Resource {
        Resource::new("", "v1", "events", "Event")
    }

    pub fn leases() -> Resource {
        Resource::new("coordination.k8s.io", "v1", "leases", "Lease")
    }

    pub fn secrets() -> Resource {
        Resource::new("", "v1", "secrets", "Secret")
    }

    pub fn validating_webhook_configurations() -> Resource {
        Resource::new(
            "admissionregistration.k8s.io",
            "v1",
            "validatingwebhookconfigurations",
            "ValidatingWebhookConfiguration",
        )
        .cluster_scoped()
    }

    /// Every preset: what a cluster with the operator's CRD, prometheus-operator and Argo
    /// Rollouts installed serves.
    pub fn all() -> Vec<Resource> {
        vec![
            service_level_objectives(),
            prometheus_rules(),
            analysis_templates(),
            rollouts(),
            deployments(),
            stateful_sets(),
            daemon_sets(),
            events(),
            core_events(),
            leases(),
            secrets(),
            validating_webhook_configurations(),
        ]
    }
}
