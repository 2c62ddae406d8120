//! One sync: list the tenant's groups, then create the groups that are missing, replace ours
//! that differ, and delete ours that no SLO wants any more. Foreign groups are never written: a
//! foreign group with a name we want is a conflict, reported and left as it is.

use std::collections::{BTreeMap, BTreeSet};

use futures::StreamExt;

use super::client::{Client, Deleted, RulerError};
use super::groups::{self, RulerGroup};
use crate::rules::{self, RuleGroup};

/// The groups one SLO namespace wants, as rendered for rule files.
#[derive(Debug, Clone)]
pub struct Wanted {
    pub slo_namespace: String,
    pub groups: Vec<RuleGroup>,
}

/// What a sync does, or did, to one group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    Create,
    Update,
    Delete,
    Unchanged,
    /// A group that is not ours holds a name we want; left alone.
    Conflict,
}

impl Action {
    fn done(self) -> &'static str {
        match self {
            Action::Create => "created",
            Action::Update => "updated",
            Action::Delete => "deleted",
            Action::Unchanged => "unchanged",
            Action::Conflict => "conflict",
        }
    }
}

/// One group's step of the plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub namespace: String,
    pub group: String,
    pub action: Action,
    /// The group to POST, for creates and updates.
    pub body: Option<RuleGroup>,
}

/// The steps that bring the tenant's groups (`found`) to what the SLOs want. Only ruler
/// namespaces that stand for an SLO namespace under `prefix` are looked at for deletions.
pub fn plan(
    prefix: &str,
    wanted: &[Wanted],
    found: &BTreeMap<String, Vec<RulerGroup>>,
) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut wanted_names: BTreeSet<(String, String)> = BTreeSet::new();
    for want in wanted {
        let namespace = groups::ruler_namespace(prefix, &want.slo_namespace);
        let held = found.get(&namespace).map(Vec::as_slice).unwrap_or_default();
        for group in want.groups.iter().map(groups::for_ruler) {
            wanted_names.insert((namespace.clone(), group.name.clone()));
            let action = match held.iter().find(|g| g.name == group.name) {
                None => Action::Create,
                Some(g) if groups::owner(prefix, &namespace, g).is_none() => Action::Conflict,
                Some(g) if groups::same(&group, g) => Action::Unchanged,
                Some(_) => Action::Update,
            };
            let body = matches!(action, Action::Create | Action::Update).then(|| group.clone());
            steps.push(Step {
                namespace: namespace.clone(),
                group: group.name,
                action,
                body,
            });
        }
    }
    for (namespace, held) in found {
        if groups::slo_namespace(prefix, namespace).is_none() {
            continue;
        }
        for group in held {
            let key = (namespace.clone(), group.name.clone());
            if !wanted_names.contains(&key) && groups::owner(prefix, namespace, group).is_some() {
                steps.push(Step {
                    namespace: namespace.clone(),
                    group: group.name.clone(),
                    action: Action::Delete,
                    body: None,
                });
            }
        }
    }
    steps
}

/// What one sync did: every step with its outcome.
#[derive(Debug, Default)]
pub struct Report {
    pub steps: Vec<(Step, Result<(), RulerError>)>,
}

impl Report {
    /// Steps that changed the ruler (created, updated or deleted).
    pub fn writes(&self) -> usize {
        self.steps
            .iter()
            .filter(|(s, r)| {
                r.is_ok() && matches!(s.action, Action::Create | Action::Update | Action::Delete)
            })
            .count()
    }

    pub fn conflicts(&self) -> usize {
        self.count(Action::Conflict)
    }

    pub fn failures(&self) -> impl Iterator<Item = &RulerError> {
        self.steps.iter().filter_map(|(_, r)| r.as_ref().err())
    }

    fn count(&self, action: Action) -> usize {
        self.steps
            .iter()
            .filter(|(s, _)| s.action == action)
            .count()
    }

    /// One line per group: `created <namespace>/<group>`, or the error.
    pub fn lines(&self) -> Vec<String> {
        self.steps
            .iter()
            .map(|(step, result)| match (step.action, result) {
                (Action::Conflict, _) => format!(
                    "conflict {}/{}: a group that Plimsoll did not write has this name; left \
                     as it is (rename or delete it to let Plimsoll write its own)",
                    step.namespace, step.group
                ),
                (action, Ok(())) => format!("{} {}/{}", action.done(), step.namespace, step.group),
                (_, Err(e)) => format!("failed {}/{}: {e}", step.namespace, step.group),
            })
            .collect()
    }

    /// `created 1, updated 0, deleted 2, unchanged 4, conflicts 0, failed 0`.
    pub fn summary(&self) -> String {
        let ok = |action| {
            self.steps
                .iter()
                .filter(|(s, r)| s.action == action && r.is_ok())
                .count()
        };
        format!(
            "created {}, updated {}, deleted {}, unchanged {}, conflicts {}, failed {}",
            ok(Action::Create),
            ok(Action::Update),
            ok(Action::Delete),
            ok(Action::Unchanged),
            self.conflicts(),
            self.failures().count()
        )
    }
}

/// Every SLO namespace must be one that [`groups::owner`] recognises, or our own groups would
/// look foreign on the next sync.
fn check_namespaces(wanted: &[Wanted]) -> Result<(), SyncError> {
    match wanted
        .iter()
        .find(|w| !crate::model::names::is_dns_label(&w.slo_namespace))
    {
        Some(w) => Err(SyncError::Namespace {
            namespace: w.slo_namespace.clone(),
        }),
        None => Ok(()),
    }
}

/// Writes sent to the ruler at once.
const WRITES_IN_FLIGHT: usize = 8;

async fn carry_out(client: &Client, step: &Step, body: Option<String>) -> Result<(), RulerError> {
    match (step.action, body) {
        (Action::Create | Action::Update, Some(text)) => {
            client.set(&step.namespace, &step.group, text).await
        }
        (Action::Delete, _) => client
            .delete(&step.namespace, &step.group)
            .await
            .map(|_: Deleted| ()),
        _ => Ok(()),
    }
}

/// Why a sync could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("{0}")]
    Ruler(#[from] RulerError),
    #[error(
        "SLO namespace {namespace:?} is not a Kubernetes namespace name (lowercase letters, \
         digits and '-'): its groups could not be told from another tool's; give --namespace one"
    )]
    Namespace { namespace: String },
    #[error("rule group {group}: {source}")]
    Render {
        group: String,
        #[source]
        source: rules::OutputError,
    },
}

/// Lists the tenant's groups and carries out the plan. A group the ruler refuses is reported
/// in its step and the others go on; a failed list stops the sync before any write.
pub async fn sync(client: &Client, prefix: &str, wanted: &[Wanted]) -> Result<Report, SyncError> {
    check_namespaces(wanted)?;
    let found = client.list().await?;
    let steps = plan(prefix, wanted, &found);
    // Bodies first: a group that cannot be rendered stops the sync before it writes anything.
    let mut bodies = BTreeMap::new();
    for step in &steps {
        if let Some(group) = &step.body {
            let text = groups::body(group).map_err(|source| SyncError::Render {
                group: group.name.clone(),
                source,
            })?;
            bodies.insert((step.namespace.clone(), step.group.clone()), text);
        }
    }
    // Deletes before every set: Mimir and Cortex check the tenant's group limit on every set
    // against all its groups plus one (pkg/ruler/api.go, CreateRuleGroup), so a full tenant has
    // room for new groups only once the stale ones are gone. The report lists them in that order.
    let (deletes, sets): (Vec<Step>, Vec<Step>) = steps
        .into_iter()
        .partition(|step| step.action == Action::Delete);
    let mut report = Report::default();
    for phase in [deletes, sets] {
        // Each write is an object-store write in the ruler: a few at a time, in plan order.
        let results: Vec<Result<(), RulerError>> = futures::stream::iter(&phase)
            .map(|step| {
                let body = bodies.remove(&(step.namespace.clone(), step.group.clone()));
                carry_out(client, step, body)
            })
            .buffered(WRITES_IN_FLIGHT)
            .collect()
            .await;
        report.steps.extend(phase.into_iter().zip(results));
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Rule;

    fn group(name: &str, ns: &str, slo: &str, expr: &str) -> RuleGroup {
        RuleGroup {
            name: name.into(),
            interval: "30s".into(),
            partial_response_strategy: None,
            rules: vec![Rule {
                record: Some("slo:objective:ratio".into()),
                expr: expr.into(),
                labels: BTreeMap::from([
                    ("slo".to_string(), slo.to_string()),
                    ("slo_namespace".to_string(), ns.to_string()),
                ]),
                ..Rule::default()
            }],
        }
    }

    fn listed(group: &RuleGroup) -> RulerGroup {
        serde_saphyr::from_str(&groups::body(&groups::for_ruler(group)).unwrap()).unwrap()
    }

    fn actions(steps: &[Step]) -> Vec<(String, Action)> {
        steps
            .iter()
            .map(|s| (format!("{}/{}", s.namespace, s.group), s.action))
            .collect()
    }

    #[test]
    fn plans_creates_updates_deletes_and_leaves_foreign_groups() {
        let a = group("plimsoll/shop/a/fast", "shop", "a", "vector(0.999)");
        let b = group("plimsoll/shop/b/fast", "shop", "b", "vector(0.99)");
        let gone = group("plimsoll/shop/gone/fast", "shop", "gone", "vector(0.9)");
        let b_old = group("plimsoll/shop/b/fast", "shop", "b", "vector(0.9)");
        let foreign = RulerGroup {
            name: "hand-written".into(),
            ..listed(&gone)
        };
        let squatter = RulerGroup {
            rules: vec![groups::RulerRule {
                record: Some("job:up:sum".into()),
                expr: "sum(up)".into(),
                ..Default::default()
            }],
            ..listed(&group("plimsoll/web/c/fast", "web", "c", "x"))
        };
        let c = group("plimsoll/web/c/fast", "web", "c", "vector(1)");
        let found = BTreeMap::from([
            (
                "shop".to_string(),
                vec![listed(&b_old), listed(&gone), foreign],
            ),
            ("web".to_string(), vec![squatter]),
            ("other".to_string(), vec![listed(&gone)]),
        ]);
        let wanted = [
            Wanted {
                slo_namespace: "shop".into(),
                groups: vec![a.clone(), b],
            },
            Wanted {
                slo_namespace: "web".into(),
                groups: vec![c],
            },
        ];
        assert_eq!(
            actions(&plan("", &wanted, &found)),
            [
                ("shop/plimsoll:shop:a:fast".to_string(), Action::Create),
                ("shop/plimsoll:shop:b:fast".into(), Action::Update),
                ("web/plimsoll:web:c:fast".into(), Action::Conflict),
                ("shop/plimsoll:shop:gone:fast".into(), Action::Delete),
            ],
            "the group filed under namespace `other` names `shop`: not ours, kept"
        );
        let settled = BTreeMap::from([("shop".to_string(), vec![listed(&a)])]);
        let only_a = [Wanted {
            slo_namespace: "shop".into(),
            groups: vec![a],
        }];
        assert_eq!(
            actions(&plan("", &only_a, &settled)),
            [("shop/plimsoll:shop:a:fast".to_string(), Action::Unchanged)]
        );
    }

    #[test]
    fn namespaces_that_could_not_be_recognised_are_refused() {
        let wanted = |ns: &str| Wanted {
            slo_namespace: ns.into(),
            groups: vec![],
        };
        assert!(check_namespaces(&[wanted("shop"), wanted("team-2")]).is_ok());
        for bad in ["Shop", "shop_eu", "shop.eu", ""] {
            assert!(
                matches!(
                    check_namespaces(&[wanted(bad)]),
                    Err(SyncError::Namespace { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn with_a_prefix_only_prefixed_namespaces_are_cleaned() {
        let gone = group("plimsoll/shop/gone/fast", "shop", "gone", "vector(0.9)");
        let found = BTreeMap::from([
            ("shop".to_string(), vec![listed(&gone)]),
            ("slo-shop".to_string(), vec![listed(&gone)]),
        ]);
        assert_eq!(
            actions(&plan("slo-", &[], &found)),
            [(
                "slo-shop/plimsoll:shop:gone:fast".to_string(),
                Action::Delete
            )]
        );
    }
}
