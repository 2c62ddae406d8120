//! `plimsoll gate -f` against the operator's own series, end to end (issue 23): the real
//! `plimsoll run`, with the chart's RBAC and a token of its ServiceAccount, writes the SLOs'
//! PrometheusRules on the real control plane (tests/support/kube.rs), a real Prometheus evaluates
//! exactly those rules over two days of synthetic traffic, and the gate given the manifests
//! (which have no UID, while every series of the operator's carries one) answers PASS, FAIL and
//! UNKNOWN as the gate reading the same SLOs from the cluster does. Local mode's series, without a
//! UID, are read too. An SLO deleted and created again leaves two UIDs with fresh series: the gate
//! says so and does not decide, and `--slo-uid` picks one.

#[path = "support/operator.rs"]
mod operator;
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use operator::Operator;
use plimsoll::rules::names;
use serde_json::{Value, json};
use support::cluster::{Namespace, operator_credentials};
use support::counts;
use support::month::{DAY, checkout_manifest, wait_for};
use support::prometheus::{Prometheus, data_dir, http, unix_now};

const SLO: (&str, &str) = ("plimsoll.dev/v1alpha1", "ServiceLevelObjective");
const RULE: (&str, &str) = ("monitoring.coreos.com/v1", "PrometheusRule");

/// shop/<name> over the checkout service's traffic: 99% leaves most of the budget, 99.99% is
/// overspent many times.
fn manifest(name: &str, objective: f64) -> Value {
    let mut m = checkout_manifest();
    m["metadata"]["name"] = json!(name);
    m["spec"]["objective"] = json!(objective);
    m
}

fn uid(ns: &Namespace, name: &str) -> String {
    let slo = ns.get(SLO.0, SLO.1, name).expect("the SLO exists");
    slo["metadata"]["uid"].as_str().unwrap().to_string()
}

/// The rule groups the operator wrote for shop/<name>, once they carry this UID.
fn operators_groups(ns: &Namespace, operator: &Operator, name: &str, uid: &str) -> Vec<Value> {
    let mut groups = Vec::new();
    let written = support::cluster::wait_for(Duration::from_secs(60), || {
        let Some(rule) = ns.get(RULE.0, RULE.1, name) else {
            return false;
        };
        groups = rule["spec"]["groups"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let labelled: Vec<&Value> = groups
            .iter()
            .flat_map(|g| g["rules"].as_array().into_iter().flatten())
            .filter_map(|r| r["labels"].get(names::LABEL_UID))
            .collect();
        !labelled.is_empty() && labelled.iter().all(|u| *u == uid)
    });
    assert!(
        written,
        "no PrometheusRule shop/{name} for uid {uid}:\n{}",
        operator.log()
    );
    groups
}

/// A rule file of these groups, each evaluated every 10 s (the window's sums over 5m counts are
/// the same at any cadence).
fn rule_file(path: &Path, groups: &[Value]) -> PathBuf {
    let groups: Vec<Value> = groups
        .iter()
        .map(|g| {
            let mut g = g.clone();
            g["interval"] = json!("10s");
            g
        })
        .collect();
    std::fs::write(
        path,
        serde_json::to_string(&json!({"groups": groups})).unwrap(),
    )
    .unwrap();
    path.to_path_buf()
}

/// A Prometheus config under `dir` reading these rule files.
fn config(dir: &Path, files: &[&Path]) -> PathBuf {
    let path = dir.join("prometheus.yml");
    let files: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    let text = format!(
        "global: {{evaluation_interval: 10s}}\nrule_files: {}\n",
        json!(files)
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// What the gate answered: exit code, stdout, stderr.
#[derive(Debug, Clone, PartialEq)]
struct Answer {
    code: Option<i32>,
    out: String,
    err: String,
}

struct Gate<'a> {
    url: &'a str,
    kubeconfig: &'a Path,
    slos: &'a Path,
    /// A home without a kubeconfig: the gate with -f must need no cluster.
    home: &'a Path,
}

impl Gate<'_> {
    fn run(&self, slo: &str, min: &str, files: bool, extra: &[&str]) -> Answer {
        let mut command = Command::new(env!("CARGO_BIN_EXE_plimsoll"));
        command
            .args(["gate", "--slo", slo, "--min-budget", min])
            .arg(format!("--prometheus-url={}", self.url))
            .args(extra)
            .env_remove("PLIMSOLL_PROMETHEUS_URL")
            .env_remove("KUBERNETES_SERVICE_HOST");
        if files {
            command
                .arg("-f")
                .arg(self.slos)
                .env_remove("KUBECONFIG")
                .env("HOME", self.home);
        } else {
            command.env("KUBECONFIG", self.kubeconfig);
        }
        let out = command.output().unwrap();
        Answer {
            code: out.status.code(),
            out: String::from_utf8_lossy(&out.stdout).into(),
            err: String::from_utf8_lossy(&out.stderr).into(),
        }
    }

    /// The SLO read from the cluster.
    fn cluster(&self, slo: &str, min: &str) -> Answer {
        self.run(slo, min, false, &[])
    }

    /// The SLO read from the manifests.
    fn files(&self, slo: &str, min: &str, extra: &[&str]) -> Answer {
        self.run(slo, min, true, extra)
    }

    /// The same answer from the cluster and from the files. A new evaluation between the two
    /// may move the budget's last digit (the window slides by 5 minutes at a time): then again.
    fn same(&self, slo: &str, min: &str, extra: &[&str]) -> Answer {
        let mut last = None;
        for _ in 0..3 {
            let (cluster, files) = (self.cluster(slo, min), self.files(slo, min, extra));
            if cluster == files {
                return cluster;
            }
            last = Some((cluster, files));
        }
        panic!("the cluster's and the files' answers differ: {last:#?}");
    }
}

/// The budget left that a PASS or FAIL line gives.
fn remaining(line: &str) -> f64 {
    let (_, rest) = line.split_once(": ").expect("a verdict line");
    rest.split('%')
        .next()
        .unwrap()
        .parse()
        .expect("a percentage")
}

#[test]
fn gate_from_manifests_reads_the_operators_series_as_from_the_cluster() {
    // The cluster: checkout, deleted and created again (two UIDs), strict and dark, in the
    // namespace `shop` of this process' control plane; the operator watches it with the chart's
    // RBAC for it.
    let ns = Namespace::named("shop");
    let (lease, token) = operator_credentials(ns.kube, &ns.name);
    let dir = tempfile::tempdir().unwrap();
    let operators = dir.path().join("operator-kubeconfig");
    ns.kube.token_kubeconfig(&operators, &token, &ns.name);
    ns.create_as("kubectl", manifest("checkout", 99.0));
    let operator = Operator::start(
        &operators,
        &[
            "--watch-namespace=shop",
            "--lease-namespace=shop",
            &format!("--lease-name={lease}"),
            "--identity=gate-test",
        ],
    );
    let deleted_uid = uid(&ns, "checkout");
    let deleted = operators_groups(&ns, &operator, "checkout", &deleted_uid);
    assert!(ns.delete(SLO.0, SLO.1, "checkout"));
    let gone = support::cluster::wait_for(Duration::from_secs(30), || {
        ns.get(SLO.0, SLO.1, "checkout").is_none()
    });
    assert!(gone, "the SLO was deleted:\n{}", operator.log());
    // Created again at once: the controller-manager's garbage collector deletes the predecessor's
    // rule in the background (the emulation did it within the DELETE), and the operator writes
    // the successor's.
    ns.create_as("kubectl", manifest("checkout", 99.0));
    ns.create_as("kubectl", manifest("strict", 99.99));
    ns.create_as("kubectl", manifest("dark", 99.0));
    let checkout_uid = uid(&ns, "checkout");
    assert_ne!(checkout_uid, deleted_uid);
    let checkout = operators_groups(&ns, &operator, "checkout", &checkout_uid);
    let strict = operators_groups(&ns, &operator, "strict", &uid(&ns, "strict"));
    operators_groups(&ns, &operator, "dark", &uid(&ns, "dark"));
    let (code, log) = operator.terminate();
    assert_eq!(code, Some(0), "{log}");

    assert!(!log.to_lowercase().contains("forbidden"), "{log}");
    // The gate reads the SLOs with its user's rights (here the admin's kubeconfig), not the
    // operator's.
    let kubeconfig = ns.kube.kubeconfig.clone();
    // `plimsoll local`'s rules for an SLO the cluster does not have: no UID.
    let local = counts::rendered(&manifest("local", 99.0));
    assert!(!local[0].to_string().contains(names::LABEL_UID));

    // The manifests in Git: the same SLOs, without UIDs.
    let slos = dir.path().join("slos");
    std::fs::create_dir(&slos).unwrap();
    for (name, objective) in [
        ("checkout", 99.0),
        ("strict", 99.99),
        ("dark", 99.0),
        ("local", 99.0),
    ] {
        let text = serde_json::to_string(&manifest(name, objective)).unwrap();
        std::fs::write(slos.join(format!("{name}.yaml")), text).unwrap();
    }

    // The service's traffic and its 5m counts under every UID, then Prometheus evaluating the
    // current rules (dark's never: its rules are not loaded).
    let data = data_dir(dir.path());
    let end = unix_now() / 3600 * 3600 - 2 * 3600;
    // Two days of it: a window's sums need not cover all of it for the two gates to agree.
    let start = end - 2 * DAY;
    counts::import_traffic(&data, dir.path(), start, end);
    let every: Vec<&Value> = [&deleted, &checkout, &strict, &local]
        .into_iter()
        .flatten()
        .collect();
    counts::backfill_counts(&data, dir.path(), &every, start, end);
    let mut current_groups = checkout.clone();
    current_groups.extend(strict.iter().cloned());
    current_groups.extend(local.iter().cloned());
    let current = rule_file(&dir.path().join("current.json"), &current_groups);
    let config_file = config(dir.path(), &[&current]);
    let live = Prometheus::start_with(&data, &config_file, &["--web.enable-lifecycle"]);
    let home = tempfile::tempdir().unwrap();
    let gate = Gate {
        url: &live.url,
        kubeconfig: &kubeconfig,
        slos: &slos,
        home: home.path(),
    };

    // PASS, from the cluster and from the files alike.
    let pass = wait_for(
        Duration::from_secs(120),
        "a PASS from the cluster",
        &String::new,
        || match gate.cluster("shop/checkout", "15") {
            a if a.code == Some(0) => Ok(a),
            a => Err(format!("{a:?}")),
        },
    );
    assert!(pass.out.starts_with("PASS shop/checkout: "), "{pass:?}");
    let pass = gate.same("shop/checkout", "15", &[]);
    assert_eq!(pass.code, Some(0), "{pass:?}");
    let left = remaining(&pass.out);
    assert!(left > 15.0 && left < 100.0, "{pass:?}");
    // FAIL: the same SLO against a higher bar, and an overspent one.
    let fail = gate.same("shop/checkout", "100", &[]);
    assert_eq!(fail.code, Some(1), "{fail:?}");
    assert!(fail.out.starts_with("FAIL shop/checkout: "), "{fail:?}");
    wait_for(
        Duration::from_secs(60),
        "strict's series",
        &String::new,
        || match gate.cluster("shop/strict", "15") {
            a if a.code == Some(1) => Ok(a),
            a => Err(format!("{a:?}")),
        },
    );
    let overspent = gate.same("shop/strict", "15", &[]);
    assert_eq!(overspent.code, Some(1), "{overspent:?}");
    assert!(remaining(&overspent.out) < 0.0, "{overspent:?}");
    // UNKNOWN: an SLO whose rules Prometheus does not evaluate.
    let dark = gate.same("shop/dark", "15", &[]);
    assert_eq!(dark.code, Some(3), "{dark:?}");
    assert!(
        dark.out
            .starts_with("UNKNOWN shop/dark: no recorded series for this SLO"),
        "{dark:?}"
    );
    // No such SLO, in the cluster or the files.
    assert_eq!(gate.cluster("shop/nothing", "15").code, Some(3));
    let nothing = gate.files("shop/nothing", "15", &[]);
    assert_eq!(nothing.code, Some(3), "{nothing:?}");
    assert!(
        nothing.out.contains("no valid SLO of that name"),
        "{nothing:?}"
    );

    // Local mode's series, without a UID: same traffic and objective as checkout, same budget.
    let local = wait_for(
        Duration::from_secs(60),
        "local's series",
        &String::new,
        || match gate.files("shop/local", "15", &[]) {
            a if a.code == Some(0) => Ok(a),
            a => Err(format!("{a:?}")),
        },
    );
    assert!(
        (remaining(&local.out) - left).abs() <= 0.1,
        "{local:?} vs {pass:?}"
    );

    // The deleted checkout's rules evaluated again beside its successor's, as in the minutes
    // after a deletion: two UIDs with fresh series.
    let old = rule_file(&dir.path().join("deleted.json"), &deleted);
    config(dir.path(), &[&current, &old]);
    let reloaded = http()
        .post(format!("{}/-/reload", live.url))
        .send()
        .unwrap();
    assert!(reloaded.status().is_success(), "{reloaded:?}");
    let mut uids = [deleted_uid.clone(), checkout_uid.clone()];
    uids.sort();
    let two = wait_for(
        Duration::from_secs(60),
        "two fresh UIDs",
        &String::new,
        || match gate.files("shop/checkout", "15", &[]) {
            a if a.code == Some(3) => Ok(a),
            a => Err(format!("{a:?}")),
        },
    );
    assert!(two.err.is_empty(), "{two:?}");
    assert!(
        two.out.starts_with(&format!(
            "UNKNOWN shop/checkout: 2 SLOs named shop/checkout have fresh series (uids {}, {}): \
             the SLO was deleted and created again; pass --slo-uid",
            uids[0], uids[1]
        )),
        "{two:?}"
    );
    // The cluster knows which is meant, and --slo-uid says it.
    let pick = format!("--slo-uid={checkout_uid}");
    let picked = gate.same("shop/checkout", "15", &[&pick]);
    assert_eq!(picked.code, Some(0), "{picked:?}");
    let old_pick = format!("--slo-uid={deleted_uid}");
    let predecessor = gate.files("shop/checkout", "15", &[&old_pick]);
    assert_eq!(predecessor.code, Some(0), "its own series: {predecessor:?}");
    let unknown = gate.files("shop/checkout", "15", &["--slo-uid=no-such-uid"]);
    assert_eq!(unknown.code, Some(3), "{unknown:?}");
    assert!(
        unknown.out.contains("no recorded series for this SLO")
            && unknown.out.contains(&checkout_uid)
            && unknown.out.contains(&deleted_uid),
        "{unknown:?}"
    );
    // --slo-uid is for manifests: the cluster's SLO has its own. A usage error: exit 2, never
    // the unknown answer's 3.
    let refused = gate.run("shop/checkout", "15", false, &[&pick]);
    assert_eq!(refused.code, Some(2), "{refused:?}");
    assert!(refused.err.contains("--filename"), "{refused:?}");
    drop(live);
}
