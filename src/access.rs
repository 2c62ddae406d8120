//! Every Kubernetes API call the operator makes, in one table. The Helm chart's ClusterRole and
//! Roles grant exactly these (tests/chart.rs renders the chart and compares), and the mocked API
//! servers of the tests refuse any request the table does not list (tests/support/access.rs).
//!
//! Server-side apply is a PATCH, but when the object does not exist yet the API server also
//! authorizes it as `create`: the kinds the operator generates by apply list both verbs. Targets
//! of rollback actions only get `patch`, so an apply can never create a workload.

/// Where a permission applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// A cluster-scoped resource: always a ClusterRole.
    Cluster,
    /// The namespaces the operator watches: a ClusterRole when it watches all namespaces, a Role
    /// in each watched namespace otherwise (`--namespace`).
    Watched,
    /// The operator's own namespace (the release namespace): a Role there.
    Own,
}

/// When a permission is needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum When {
    /// Whatever the configuration.
    Always,
    /// Rollback actions on workloads are enabled (`--rollback-actions`, the default).
    RollbackActions,
    /// The admission webhook runs with a certificate the operator generates and stores itself
    /// (`--webhook-secret`); with cert-manager (`--webhook-cert-dir`) none of these are used.
    WebhookCertificate,
}

/// A restriction to one object name (RBAC `resourceNames`). Kubernetes cannot restrict `create`,
/// `list` or `watch` by name, so those verbs are always listed in an entry without one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Name {
    /// Any object.
    Any,
    /// The leader-election Lease (`--lease-name`).
    Lease,
    /// The Secret holding the webhook's certificate (`--webhook-secret`).
    WebhookSecret,
    /// The ValidatingWebhookConfiguration whose caBundle the operator fills
    /// (`--webhook-configuration`).
    WebhookConfiguration,
}

/// One permission: a resource (with its subresource, if any), verbs, where and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    /// API group; `""` is the core group.
    pub group: &'static str,
    /// Plural resource, with `/subresource` when the call is on one.
    pub resource: &'static str,
    pub verbs: &'static [&'static str],
    pub scope: Scope,
    pub when: When,
    pub name: Name,
    /// Which code makes the calls, and why.
    pub why: &'static str,
}

/// The operator's API calls. Keep in step with the code: the tests fail in either direction.
pub const ACCESS: &[Access] = &[
    Access {
        group: "plimsoll.dev",
        resource: "servicelevelobjectives",
        verbs: &["list", "watch", "patch"],
        scope: Scope::Watched,
        when: When::Always,
        name: Name::Any,
        why: "the reconciler's watch and cache; patch for the plimsoll.dev/cleanup finalizer",
    },
    Access {
        group: "plimsoll.dev",
        resource: "servicelevelobjectives/status",
        verbs: &["patch"],
        scope: Scope::Watched,
        when: When::Always,
        name: Name::Any,
        why: "status by server-side apply: the reconciler's Ready condition, the evaluator's budget",
    },
    Access {
        group: "monitoring.coreos.com",
        resource: "prometheusrules",
        verbs: &["get", "list", "watch", "create", "patch"],
        scope: Scope::Watched,
        when: When::Always,
        name: Name::Any,
        why: "the generated rules: read, applied (apply creates them), and watched for drift",
    },
    Access {
        group: "argoproj.io",
        resource: "analysistemplates",
        verbs: &["get", "create", "patch", "delete"],
        scope: Scope::Watched,
        when: When::Always,
        name: Name::Any,
        why: "the AnalysisTemplate of SLOs with rollback.analysisTemplate: applied, and deleted \
              when the SLO stops asking for it",
    },
    Access {
        group: "events.k8s.io",
        resource: "events",
        verbs: &["create", "patch", "list"],
        scope: Scope::Watched,
        when: When::Always,
        name: Name::Any,
        why: "Events on SLOs and on rollback targets (a repeat is patched into the first Event's \
              series); the web UI lists an SLO's Events (fieldSelector regarding.uid)",
    },
    Access {
        group: "apps",
        resource: "deployments",
        verbs: &["get", "patch"],
        scope: Scope::Watched,
        when: When::RollbackActions,
        name: Name::Any,
        why: "rollback annotations on target Deployments (read the revision, apply annotations)",
    },
    Access {
        group: "apps",
        resource: "statefulsets",
        verbs: &["get", "patch"],
        scope: Scope::Watched,
        when: When::RollbackActions,
        name: Name::Any,
        why: "rollback annotations on target StatefulSets",
    },
    Access {
        group: "apps",
        resource: "daemonsets",
        verbs: &["get", "patch"],
        scope: Scope::Watched,
        when: When::RollbackActions,
        name: Name::Any,
        why: "rollback annotations on target DaemonSets",
    },
    Access {
        group: "argoproj.io",
        resource: "rollouts",
        verbs: &["get", "patch"],
        scope: Scope::Watched,
        when: When::RollbackActions,
        name: Name::Any,
        why: "rollback annotations on target Argo Rollouts",
    },
    Access {
        group: "argoproj.io",
        resource: "rollouts/status",
        verbs: &["patch"],
        scope: Scope::Watched,
        when: When::RollbackActions,
        name: Name::Any,
        why: "status.abort on Rollout targets with abortRollouts",
    },
    Access {
        group: "coordination.k8s.io",
        resource: "leases",
        verbs: &["create"],
        scope: Scope::Own,
        when: When::Always,
        name: Name::Any,
        why: "leader election: the Lease is created when missing",
    },
    Access {
        group: "coordination.k8s.io",
        resource: "leases",
        verbs: &["get", "patch"],
        scope: Scope::Own,
        when: When::Always,
        name: Name::Lease,
        why: "leader election: read, take, renew and release the Lease",
    },
    Access {
        group: "",
        resource: "secrets",
        verbs: &["create"],
        scope: Scope::Own,
        when: When::WebhookCertificate,
        name: Name::Any,
        why: "the webhook's certificate, stored once for all replicas",
    },
    Access {
        group: "",
        resource: "secrets",
        verbs: &["get", "update"],
        scope: Scope::Own,
        when: When::WebhookCertificate,
        name: Name::WebhookSecret,
        why: "the webhook's certificate: read by every replica, renewed before it expires",
    },
    Access {
        group: "admissionregistration.k8s.io",
        resource: "validatingwebhookconfigurations",
        verbs: &["get", "patch"],
        scope: Scope::Cluster,
        when: When::WebhookCertificate,
        name: Name::WebhookConfiguration,
        why: "the caBundle of the webhook configuration, filled with the generated CA",
    },
];

/// What the operator is configured to do, as far as permissions go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Features {
    pub rollback_actions: bool,
    pub webhook_certificate: bool,
}

impl When {
    pub fn applies(self, features: Features) -> bool {
        match self {
            When::Always => true,
            When::RollbackActions => features.rollback_actions,
            When::WebhookCertificate => features.webhook_certificate,
        }
    }
}

/// One API call, as RBAC sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub group: String,
    pub resource: String,
    pub verb: String,
    /// `None` for cluster-scoped objects and for lists and watches across all namespaces.
    pub namespace: Option<String>,
    pub name: Option<String>,
}

impl std::fmt::Display for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let group = if self.group.is_empty() {
            "core"
        } else {
            &self.group
        };
        write!(f, "{} {} ({group})", self.verb, self.resource)?;
        if let Some(ns) = &self.namespace {
            write!(f, " in namespace {ns}")?;
        }
        if let Some(name) = &self.name {
            write!(f, " named {name}")?;
        }
        Ok(())
    }
}

/// The entry that permits `call`, given the object names the operator was configured with, or
/// why none does.
pub fn permit(
    call: &Call,
    features: Features,
    names: impl Fn(Name) -> String,
) -> Result<&'static Access, String> {
    let mut near = Vec::new();
    for access in ACCESS {
        if access.group != call.group
            || access.resource != call.resource
            || !access.verbs.contains(&call.verb.as_str())
        {
            continue;
        }
        let scoped = match access.scope {
            Scope::Cluster => call.namespace.is_none(),
            Scope::Own => call.namespace.is_some(),
            Scope::Watched => true,
        };
        let named = access.name == Name::Any || call.name.as_deref() == Some(&names(access.name));
        match (scoped, named, access.when.applies(features)) {
            (true, true, true) => return Ok(access),
            (false, _, _) => near.push(format!("{:?} scope", access.scope)),
            (_, false, _) => near.push(format!("only the object named {}", names(access.name))),
            (_, _, false) => near.push(format!("only when {:?}", access.when)),
        }
    }
    if near.is_empty() {
        Err(format!(
            "{call}: not in plimsoll::access::ACCESS (add it there and to the chart's RBAC, \
             or do not make the call)"
        ))
    } else {
        Err(format!(
            "{call}: src/access.rs allows this only with {}",
            near.join("; ")
        ))
    }
}

/// The default name of the leader-election Lease (`plimsoll run --lease-name`).
pub const DEFAULT_LEASE_NAME: &str = "plimsoll-leader";

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: Features = Features {
        rollback_actions: true,
        webhook_certificate: true,
    };

    fn names(name: Name) -> String {
        match name {
            Name::Any => String::new(),
            Name::Lease => DEFAULT_LEASE_NAME.into(),
            Name::WebhookSecret => "plimsoll-webhook-tls".into(),
            Name::WebhookConfiguration => "plimsoll".into(),
        }
    }

    fn call(group: &str, resource: &str, verb: &str, ns: Option<&str>, name: Option<&str>) -> Call {
        Call {
            group: group.into(),
            resource: resource.into(),
            verb: verb.into(),
            namespace: ns.map(Into::into),
            name: name.map(Into::into),
        }
    }

    #[test]
    fn names_restrict_only_verbs_that_kubernetes_can_restrict() {
        for access in ACCESS {
            if access.name != Name::Any {
                for verb in access.verbs {
                    assert!(
                        !["create", "list", "watch", "deletecollection"].contains(verb),
                        "{access:?}: RBAC ignores resourceNames for {verb}"
                    );
                }
            }
        }
    }

    #[test]
    fn generated_kinds_can_be_created_by_apply_and_targets_cannot() {
        let verbs = |resource: &str| -> Vec<&str> {
            ACCESS
                .iter()
                .filter(|a| a.resource == resource)
                .flat_map(|a| a.verbs.iter().copied())
                .collect()
        };
        for generated in ["prometheusrules", "analysistemplates"] {
            assert!(verbs(generated).contains(&"create"), "{generated}");
            assert!(verbs(generated).contains(&"patch"), "{generated}");
        }
        for target in ["deployments", "statefulsets", "daemonsets", "rollouts"] {
            assert_eq!(verbs(target), ["get", "patch"], "{target}");
        }
    }

    #[test]
    fn a_listed_call_is_permitted_and_others_are_refused_with_the_reason() {
        let apply = call(
            "monitoring.coreos.com",
            "prometheusrules",
            "patch",
            Some("shop"),
            Some("checkout"),
        );
        assert!(permit(&apply, ALL, names).is_ok());
        let delete = call(
            "apps",
            "deployments",
            "delete",
            Some("shop"),
            Some("checkout"),
        );
        let refused = permit(&delete, ALL, names).unwrap_err();
        assert!(refused.contains("delete deployments (apps)"), "{refused}");
        assert!(
            refused.contains("not in plimsoll::access::ACCESS"),
            "{refused}"
        );
    }

    #[test]
    fn names_scopes_and_features_are_enforced() {
        let lease = |name| {
            call(
                "coordination.k8s.io",
                "leases",
                "patch",
                Some("plimsoll"),
                Some(name),
            )
        };
        assert!(permit(&lease("plimsoll-leader"), ALL, names).is_ok());
        let other = permit(&lease("someone-elses"), ALL, names).unwrap_err();
        assert!(
            other.contains("only the object named plimsoll-leader"),
            "{other}"
        );
        let vwc = |ns| {
            call(
                "admissionregistration.k8s.io",
                "validatingwebhookconfigurations",
                "patch",
                ns,
                Some("plimsoll"),
            )
        };
        assert!(permit(&vwc(None), ALL, names).is_ok());
        assert!(permit(&vwc(Some("plimsoll")), ALL, names).is_err());
        let without = Features {
            rollback_actions: false,
            webhook_certificate: false,
        };
        assert!(permit(&vwc(None), without, names).is_err());
        let annotate = call(
            "apps",
            "deployments",
            "patch",
            Some("shop"),
            Some("checkout"),
        );
        assert!(permit(&annotate, ALL, names).is_ok());
        let off = permit(&annotate, without, names).unwrap_err();
        assert!(off.contains("only when RollbackActions"), "{off}");
    }
}
