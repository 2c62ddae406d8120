//! `plimsoll local` with a manifest that has a `metadata.uid` of its own (as `kubectl get -o
//! yaml` writes it): its rules carry that UID as `slo_uid`, and the web UI's charts read the
//! series of that UID, as the budget does, beside an SLO without one.

mod support;

use serde_json::{Value, json};
use support::counts;
use support::demo::{Local, prometheus_with_rules};
use support::month::{DAY, checkout_manifest};
use support::prometheus::{data_dir, unix_now};

const UID: &str = "6a1e0c52-exported";

fn manifest(name: &str, uid: Option<&str>) -> Value {
    let mut m = checkout_manifest();
    m["metadata"]["name"] = json!(name);
    m["spec"]["objective"] = json!(99.0);
    if let Some(uid) = uid {
        m["metadata"]["uid"] = json!(uid);
    }
    m
}

/// The `data-points` of the first element after `marker` and before `until` that has them; 0
/// when none has, or there is no `marker` (an empty chart draws no line).
fn points_after(page: &str, marker: &str, until: &str) -> usize {
    let Some(at) = page.find(marker) else {
        return 0;
    };
    let rest = &page[at..];
    let rest = rest.split(until).next().unwrap_or(rest);
    rest.split("data-points=\"")
        .nth(1)
        .and_then(|v| v.split('"').next())
        .map_or(0, |v| v.parse().unwrap())
}

#[test]
fn local_modes_ui_reads_the_series_of_a_manifests_own_uid() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let slos = dir.join("slos");
    std::fs::create_dir(&slos).unwrap();
    let exported = manifest("exported", Some(UID));
    let plain = manifest("plain", None);
    for m in [&exported, &plain] {
        let name = m["metadata"]["name"].as_str().unwrap();
        std::fs::write(slos.join(format!("{name}.yaml")), m.to_string()).unwrap();
    }
    // Two days of the 5m counts those rules record, under their labels.
    let data = data_dir(dir);
    let end = unix_now() / 3600 * 3600 - 2 * 3600;
    let start = end - 2 * DAY;
    counts::import_traffic(&data, dir, start, end);
    let (with_uid, without) = (counts::rendered(&exported), counts::rendered(&plain));
    assert!(with_uid[0].to_string().contains(UID));
    let groups: Vec<&Value> = with_uid.iter().chain(&without).collect();
    counts::backfill_counts(&data, dir, &groups, start, end);

    let (prometheus, rules) = prometheus_with_rules(dir);
    let local = Local::start(dir, &slos, &rules, &prometheus.url);
    local.wait_for("both SLOs", |s| {
        s["slos"].as_array().is_some_and(|a| a.len() == 2)
    });
    let page = |path: &str| {
        let (code, body) = local.get(path).unwrap();
        assert_eq!(code, 200, "{path}: {body}");
        body
    };
    for name in ["plain", "exported"] {
        let detail = page(&format!("/ui/slo/shop/{name}"));
        assert!(
            points_after(&detail, "data-label=\"budget left\"", "/>") > 0,
            "{name}: an empty burn-down"
        );
        assert!(
            points_after(&detail, "data-label=\"error ratio\"", "/>") > 0,
            "{name}: an empty error ratio"
        );
    }
    let list = page("/ui");
    for name in ["plain", "exported"] {
        let row = format!("href=\"/ui/slo/shop/{name}\"");
        assert!(
            points_after(&list, &row, "</tr>") > 0,
            "{name}: no sparkline in the list"
        );
    }
    assert_eq!(local.terminate(), Some(0));
}
