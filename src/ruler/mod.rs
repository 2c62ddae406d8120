//! Rule groups in a Mimir or Cortex ruler instead of rule files: one ruler namespace per SLO
//! namespace (with an optional prefix), groups created, replaced and deleted one by one, and only
//! groups Plimsoll wrote ever changed (see [`groups`] for how they are recognised).

pub mod client;
pub mod groups;
pub mod sync;

pub use client::{Client, Deleted, RulerError, Settings};
pub use sync::{Action, Report, Step, SyncError, Wanted, plan, sync};

/// The groups of each SLO, gathered by SLO namespace.
pub fn wanted<'a>(
    slos: impl IntoIterator<Item = (&'a str, Vec<crate::rules::RuleGroup>)>,
) -> Vec<Wanted> {
    let mut by_namespace: std::collections::BTreeMap<&str, Vec<crate::rules::RuleGroup>> =
        std::collections::BTreeMap::new();
    for (namespace, groups) in slos {
        by_namespace.entry(namespace).or_default().extend(groups);
    }
    by_namespace
        .into_iter()
        .map(|(namespace, groups)| Wanted {
            slo_namespace: namespace.to_string(),
            groups,
        })
        .collect()
}
