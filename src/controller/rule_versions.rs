//! The resourceVersion of each of our PrometheusRules, as the owned-rule watch last saw it: all
//! the reconciler reads of a rule it has not changed. A store of the rules' metadata held 1.55
//! KiB per rule for this one string.

use std::collections::HashMap;
use std::sync::Mutex;

use kube::ResourceExt;
use kube::core::PartialObjectMeta;
use kube::runtime::watcher;

use crate::rules::PrometheusRule;

#[derive(Debug)]
struct Seen {
    version: String,
    /// The (re)list that last saw the rule; a relist that ends forgets the rules it did not see.
    list: u64,
}

#[derive(Debug, Default)]
struct Index {
    rules: HashMap<(String, String), Seen>,
    list: u64,
}

#[derive(Debug, Default)]
pub struct RuleVersions(Mutex<Index>);

type RuleEvent = watcher::Event<PartialObjectMeta<PrometheusRule>>;

impl RuleVersions {
    /// Follows one event of the owned-rule watch.
    pub fn follow(&self, event: &RuleEvent) {
        let mut index = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match event {
            watcher::Event::Init => index.list += 1,
            watcher::Event::InitApply(rule) | watcher::Event::Apply(rule) => {
                let Some(version) = rule.resource_version() else {
                    return;
                };
                let key = (rule.namespace().unwrap_or_default(), rule.name_any());
                let list = index.list;
                index.rules.insert(key, Seen { version, list });
            }
            watcher::Event::Delete(rule) => {
                let key = (rule.namespace().unwrap_or_default(), rule.name_any());
                index.rules.remove(&key);
            }
            watcher::Event::InitDone => {
                let list = index.list;
                index.rules.retain(|_, seen| seen.list == list);
            }
        }
    }

    pub fn get(&self, namespace: &str, name: &str) -> Option<String> {
        let index = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let key = (namespace.to_string(), name.to_string());
        index.rules.get(&key).map(|seen| seen.version.clone())
    }

    /// How many rules are known (tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).rules.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::api::ObjectMeta;
    use kube::core::PartialObjectMetaExt;

    fn rule(name: &str, version: &str) -> PartialObjectMeta<PrometheusRule> {
        ObjectMeta {
            name: Some(name.into()),
            namespace: Some("n".into()),
            resource_version: Some(version.into()),
            ..ObjectMeta::default()
        }
        .into_response_partial()
    }

    #[test]
    fn follows_changes_deletions_and_relists() {
        let seen = RuleVersions::default();
        seen.follow(&watcher::Event::Init);
        seen.follow(&watcher::Event::InitApply(rule("a", "1")));
        seen.follow(&watcher::Event::InitApply(rule("b", "2")));
        seen.follow(&watcher::Event::InitDone);
        seen.follow(&watcher::Event::Apply(rule("a", "3")));
        assert_eq!(seen.get("n", "a").as_deref(), Some("3"));
        seen.follow(&watcher::Event::Delete(rule("a", "4")));
        assert_eq!(seen.get("n", "a"), None);
        // A relist that no longer sees b forgets it once the list ends, not before.
        seen.follow(&watcher::Event::Init);
        seen.follow(&watcher::Event::InitApply(rule("c", "5")));
        assert_eq!(seen.get("n", "b").as_deref(), Some("2"));
        seen.follow(&watcher::Event::InitDone);
        assert_eq!((seen.get("n", "b"), seen.len()), (None, 1));
        assert_eq!(seen.get("n", "c").as_deref(), Some("5"));
    }
}
