//! Whose series to read for an SLO without a UID of its own: one read from manifests (`plimsoll
//! gate -f`). The operator's rules label every series with the object's UID (`slo_uid`), which a
//! manifest in Git does not have; `plimsoll local`'s rules write none. So the series that name
//! the SLO's namespace and name say which UID to read: the one whose series are fresh. An SLO
//! deleted and created again has had two UIDs, and for up to the staleness bound after its
//! deletion both have fresh series: then nobody can tell from the series alone which is meant.

use k8s_openapi::jiff::{SignedDuration, Timestamp};

use crate::budget::STALE_AFTER;
use crate::model::Slo;
use crate::prometheus::{Identity, Readings, own};
use crate::rules::names;

/// A UID (or none) under which series of an SLO's namespace and name were read, each of them
/// exactly what the SLO's rules would write under that UID (its service, its `groupBy` labels,
/// nothing else).
#[derive(Debug, Clone, PartialEq)]
pub struct Claimant {
    /// `None`: series without `slo_uid`, as `plimsoll local` writes them.
    pub uid: Option<String>,
    /// When the newest of these series' window ratio was written; `None` when none has one.
    pub newest: Option<Timestamp>,
}

impl Claimant {
    /// Whether a sample of it is within the staleness bound the operator uses
    /// ([`STALE_AFTER`]): a UID whose series all are older is a deleted SLO's, or its rules
    /// stopped.
    pub fn fresh(&self, now: Timestamp) -> bool {
        self.newest.is_some_and(|written| {
            now.duration_since(written) <= SignedDuration::from_secs(STALE_AFTER.as_secs() as i64)
        })
    }
}

/// Every UID (or none) whose series would be this SLO's own under it, newest first.
pub fn claimants(slo: &Slo, namespace: &str, readings: &Readings) -> Vec<Claimant> {
    let mut uids: Vec<Option<&str>> = readings
        .claimed(namespace, &slo.name)
        .iter()
        .map(|set| set.labels.get(names::LABEL_UID).map(String::as_str))
        .collect();
    uids.sort();
    uids.dedup();
    let mut out: Vec<Claimant> = uids
        .into_iter()
        .filter_map(|uid| {
            let id = Identity {
                namespace,
                name: &slo.name,
                service: &slo.service,
                uid,
                group_by: slo.indicator.group_by(),
            };
            let (mine, _) = own(readings, &id);
            if mine.is_empty() {
                return None;
            }
            Some(Claimant {
                uid: uid.map(str::to_string),
                newest: mine.iter().filter_map(|(_, r)| r.newest_sample).max(),
            })
        })
        .collect();
    // `None` (never written) sorts before any time, so last here.
    out.sort_by(|a, b| b.newest.cmp(&a.newest).then_with(|| a.uid.cmp(&b.uid)));
    out
}

/// Which series to read.
#[derive(Debug, Clone, PartialEq)]
pub enum Pick {
    /// Those of this UID; `None`: those without one.
    Read(Option<String>),
    /// Several UIDs have fresh series (sorted): an SLO of this name was deleted and created
    /// again less than the staleness bound ago, and the series cannot tell which is meant.
    Several(Vec<String>),
}

/// The UID to read, from the claimants ([`claimants`]) at `now`: the one UID with fresh
/// series; without any, fresh series without a UID (local mode's); with several, none. When
/// nothing is fresh, the newest claimant (or none), so that the judgement says how old its
/// series are, as it does for an SLO of the cluster whose rules stopped.
pub fn pick(claimants: &[Claimant], now: Timestamp) -> Pick {
    let fresh: Vec<&Claimant> = claimants.iter().filter(|c| c.fresh(now)).collect();
    let mut uids: Vec<String> = fresh.iter().filter_map(|c| c.uid.clone()).collect();
    uids.sort();
    match uids.len() {
        0 if !fresh.is_empty() => Pick::Read(None),
        0 => Pick::Read(claimants.first().and_then(|c| c.uid.clone())),
        1 => Pick::Read(uids.pop()),
        _ => Pick::Several(uids),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::budget::Reading;
    use crate::manifests::{self, Decoded};

    fn slo(group_by: &[&str]) -> Slo {
        let mut ratio = serde_json::json!({"errors": "e{code=\"500\"}", "total": "e"});
        if !group_by.is_empty() {
            ratio["groupBy"] = serde_json::json!(group_by);
        }
        let manifest = serde_json::json!({
            "apiVersion": "plimsoll.dev/v1alpha1", "kind": "ServiceLevelObjective",
            "metadata": {"name": "checkout", "namespace": "shop"},
            "spec": {"service": "checkout", "objective": 99.9, "window": "30d",
                     "indicator": {"ratio": ratio}},
        });
        match manifests::decode(&manifest) {
            Decoded::Valid(v) => v.1,
            other => panic!("{other:?}"),
        }
    }

    fn now() -> Timestamp {
        "2026-03-02T12:00:00Z".parse().unwrap()
    }

    /// A reading whose window ratio was written `minutes` before [`now`].
    fn written(minutes: i64) -> Reading {
        let at = now() - SignedDuration::from_mins(minutes);
        Reading {
            window_error_ratio: Some(0.0001),
            ..Reading::default()
        }
        .written_at(at)
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn picked(readings: &Readings, slo: &Slo) -> Pick {
        pick(&claimants(slo, "shop", readings), now())
    }

    #[test]
    fn the_one_fresh_uid_is_read() {
        let mut r = Readings::default();
        r.insert_own("shop", "checkout", "checkout", Some("new"), written(1));
        assert_eq!(picked(&r, &slo(&[])), Pick::Read(Some("new".into())));
    }

    #[test]
    fn a_uid_whose_series_are_all_stale_is_a_deleted_slos_and_ignored() {
        let mut r = Readings::default();
        r.insert_own("shop", "checkout", "checkout", Some("old"), written(11));
        r.insert_own("shop", "checkout", "checkout", Some("new"), written(2));
        assert_eq!(picked(&r, &slo(&[])), Pick::Read(Some("new".into())));
        // Exactly at the bound is still fresh, as in the assessment.
        let mut r = Readings::default();
        r.insert_own("shop", "checkout", "checkout", Some("old"), written(10));
        r.insert_own("shop", "checkout", "checkout", Some("new"), written(0));
        assert_eq!(
            picked(&r, &slo(&[])),
            Pick::Several(vec!["new".into(), "old".into()])
        );
    }

    #[test]
    fn two_fresh_uids_are_not_told_apart() {
        let mut r = Readings::default();
        r.insert_own("shop", "checkout", "checkout", Some("b"), written(1));
        r.insert_own("shop", "checkout", "checkout", Some("a"), written(3));
        assert_eq!(
            picked(&r, &slo(&[])),
            Pick::Several(vec!["a".into(), "b".into()])
        );
    }

    #[test]
    fn without_fresh_uids_the_fresh_series_without_one_are_local_modes() {
        let mut r = Readings::default();
        r.insert_own("shop", "checkout", "checkout", None, written(1));
        r.insert_own("shop", "checkout", "checkout", Some("gone"), written(30));
        assert_eq!(picked(&r, &slo(&[])), Pick::Read(None));
        // A fresh UID is the operator's: it wins over local mode's series of the same name.
        r.insert_own("shop", "checkout", "checkout", Some("live"), written(1));
        assert_eq!(picked(&r, &slo(&[])), Pick::Read(Some("live".into())));
    }

    #[test]
    fn with_nothing_fresh_the_newest_is_read_so_its_age_is_told() {
        let mut r = Readings::default();
        r.insert_own("shop", "checkout", "checkout", Some("older"), written(40));
        r.insert_own("shop", "checkout", "checkout", Some("newer"), written(20));
        assert_eq!(picked(&r, &slo(&[])), Pick::Read(Some("newer".into())));
        assert_eq!(picked(&Readings::default(), &slo(&[])), Pick::Read(None));
    }

    #[test]
    fn only_series_the_slos_rules_would_write_claim_it() {
        let mut r = Readings::default();
        // Another service's SLO of the same name, an exporter's extra label: not this SLO's.
        r.insert_own("shop", "checkout", "payments", Some("x"), written(1));
        r.insert(
            "shop",
            "checkout",
            labels(&[
                ("slo_service", "checkout"),
                ("slo_uid", "y"),
                ("instance", "a"),
            ]),
            written(1),
        );
        // Another namespace's.
        r.insert_own("pay", "checkout", "checkout", Some("z"), written(1));
        assert_eq!(claimants(&slo(&[]), "shop", &r), vec![]);
        r.insert_own("shop", "checkout", "checkout", Some("mine"), written(1));
        assert_eq!(picked(&r, &slo(&[])), Pick::Read(Some("mine".into())));
    }

    #[test]
    fn groups_of_one_uid_are_one_claimant_with_the_newest_sample() {
        let mut r = Readings::default();
        for (route, minutes) in [("/a", 30), ("/b", 2)] {
            r.insert(
                "shop",
                "checkout",
                labels(&[
                    ("slo_service", "checkout"),
                    ("slo_uid", "u"),
                    ("route", route),
                ]),
                written(minutes),
            );
        }
        let found = claimants(&slo(&["route"]), "shop", &r);
        assert_eq!(
            found,
            vec![Claimant {
                uid: Some("u".into()),
                newest: Some(now() - SignedDuration::from_mins(2)),
            }]
        );
        assert!(found[0].fresh(now()));
        // Without the groupBy in the manifest, grouped series are not its own.
        assert_eq!(claimants(&slo(&[]), "shop", &r), vec![]);
    }

    #[test]
    fn series_without_a_window_ratio_are_never_fresh() {
        let mut r = Readings::default();
        r.insert_own(
            "shop",
            "checkout",
            "checkout",
            Some("u"),
            Reading::default(),
        );
        let found = claimants(&slo(&[]), "shop", &r);
        assert_eq!(found.len(), 1);
        assert!(!found[0].fresh(now()));
        assert_eq!(picked(&r, &slo(&[])), Pick::Read(Some("u".into())));
    }

    /// Without series, the reader's list of loaded rule groups tells a PrometheusRule that no
    /// Prometheus took from rules that recorded nothing; without the list, only "missing".
    #[test]
    fn an_slo_without_series_says_whether_its_rules_are_loaded() {
        use crate::budget::NoData;
        use crate::evaluator::judge;
        use crate::prometheus::LoadedRules;
        let slo = slo(&[]);
        let verdict = |readings: Readings| judge(&slo, "shop", &Ok(readings), now()).verdict;
        assert_eq!(verdict(Readings::default()), Err(NoData::Missing));
        let mut loaded = Readings::default();
        loaded.set_loaded_rules(LoadedRules::from_groups(
            [
                "plimsoll/shop/checkout/fast",
                "plimsoll/shop/checkout/slow",
                "other",
            ],
            "release=kps".into(),
        ));
        assert_eq!(verdict(loaded), Err(NoData::Missing));
        let mut elsewhere = Readings::default();
        elsewhere.set_loaded_rules(LoadedRules::from_groups(
            [
                "plimsoll/lab/checkout/fast",
                "plimsoll/shop/checkout-2/fast",
                "kube",
            ],
            "release=kps".into(),
        ));
        let not_loaded = verdict(elsewhere).unwrap_err();
        assert_eq!(not_loaded.reason(), "RulesNotLoaded");
        let message = not_loaded.to_string();
        for needle in [
            "plimsoll/shop/checkout/...",
            "PrometheusRule shop/checkout (labelled release=kps)",
            "ruleSelector",
            "ruleNamespaceSelector takes the namespace shop",
            "InvalidConfiguration",
        ] {
            assert!(message.contains(needle), "{needle:?} not in {message}");
        }
    }
}
