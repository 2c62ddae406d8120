//! Recent history for rules taken as they are written (the operator's PrometheusRule groups,
//! local mode's rendering): the checkout service's synthetic traffic over a few days, and the
//! 5m counts those groups would have recorded from it, under whatever UID their labels carry.

use std::io::{BufWriter, Write};
use std::path::Path;

use plimsoll::manifests::{self, Decoded};
use plimsoll::rules::{self, names};
use plimsoll::synthetic::write_openmetrics;
use serde_json::{Value, json};

use super::month::checkout_service;
use super::prometheus::{Version, backfill_rules, import_openmetrics};

/// The rule groups `plimsoll local` (and `generate`) write for a manifest in namespace `shop`:
/// with `slo_uid` only when the manifest has a `metadata.uid`.
pub fn rendered(manifest: &Value) -> Vec<Value> {
    let Decoded::Valid(valid) = manifests::decode(manifest) else {
        panic!("invalid manifest {manifest}")
    };
    rules::render(&valid.1, "shop")
        .iter()
        .map(|g| serde_json::to_value(g).unwrap())
        .collect()
}

/// The checkout service's traffic from `start` to `end` (unix seconds), imported into `data`.
pub fn import_traffic(data: &Path, dir: &Path, start: u64, end: u64) {
    let traffic = dir.join("traffic.om");
    let mut out = BufWriter::new(std::fs::File::create(&traffic).unwrap());
    write_openmetrics(&[checkout_service()], start, end - start, 30, &mut out).unwrap();
    out.flush().unwrap();
    drop(out);
    import_openmetrics(&traffic, data);
}

/// One record's rules out of all these groups, as one group: a backfill evaluates them over the
/// history. Records of several UIDs of one SLO may share a group; their groups may not share a
/// file.
fn one_record(groups: &[&Value], record: &str) -> Value {
    let rules: Vec<Value> = groups
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap())
        .filter(|r| r["record"] == record)
        .cloned()
        .collect();
    assert!(!rules.is_empty(), "no {record} rule");
    json!({"name": format!("backfill {record}"), "interval": "5m", "rules": rules})
}

/// Writes the history of these groups' 5m counts into `data`, as the rules would have recorded
/// it from `start` to `end`: the totals first, since the errors read the recorded totals.
pub fn backfill_counts(data: &Path, dir: &Path, groups: &[&Value], start: u64, end: u64) {
    for record in [names::TOTAL_5M, names::ERRORS_5M] {
        let file = dir.join("counts.json");
        let group = one_record(groups, record);
        std::fs::write(&file, json!({"groups": [group]}).to_string()).unwrap();
        backfill_rules(Version::chosen(), data, &file, start, end);
    }
}
