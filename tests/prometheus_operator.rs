//! prometheus-operator (v0.93, built from its Go module by tests/consumers/build.sh) acting on what
//! `plimsoll run` writes, on the real control plane (tests/support/kube.rs), with its own CRDs:
//! a Prometheus object selects PrometheusRules by the chart's `ruleLabels` (kube-prometheus-stack's
//! `release` convention) in the namespaces labelled for it, and ServiceMonitors by the same label.
//! The operator's rule ConfigMaps (`prometheus-<name>-rulefiles-N`) are loaded into a real
//! Prometheus as its config reloader would, with a day of synthetic traffic; the rules evaluate
//! and `plimsoll run` reads the SLO's budget from what they record. An SLO whose rule no
//! Prometheus selects is told apart from one without traffic. The chart's ServiceMonitor becomes
//! a scrape job for the operator's metrics port in the config Secret the operator writes
//! (gzipped).

#[path = "support/operator.rs"]
mod operator;
#[path = "support/release.rs"]
mod release;
mod support;

use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use operator::{Operator, free_port};
use plimsoll::rules::{RuleGroup, names};
use plimsoll::synthetic::write_openmetrics;
use release::Release;
use serde_json::{Value, json};
use support::cluster::{RULE_CRD, SLO_CRD, apply_crds, apply_kinds};
use support::consumers::{Consumer, wait_for};
use support::kube::{Access, shared};
use support::month::{DAY, checkout_service};
use support::prometheus::{
    Prometheus, Version, backfill_rules_at, import_openmetrics_on, unix_now,
};

/// kube-prometheus-stack's release name, which its Prometheus selects rules and monitors by.
const KPS: &str = "kube-prometheus-stack";
/// The label on namespaces whose rules the Prometheus takes (its `ruleNamespaceSelector`).
const RULES_ON: (&str, &str) = ("plimsoll-test/rules", "on");
/// The Prometheus object, in namespace `monitoring`.
const PROMETHEUS: &str = "k8s";

fn get_json(kube: &Access, args: &[&str]) -> Option<Value> {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    let run = kube.kubectl(&all);
    run.ok().then(|| serde_json::from_str(&run.stdout).unwrap())
}

fn condition<'a>(status: &'a Value, kind: &str) -> &'a Value {
    status["conditions"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["type"] == kind))
        .unwrap_or(&Value::Null)
}

/// The SLO `name` in `namespace` on the checkout service's requests (99.9% over 30 days),
/// applied.
fn apply_slo(kube: &Access, namespace: &str, name: &str) {
    let slo = json!({
        "apiVersion": "plimsoll.dev/v1alpha1", "kind": "ServiceLevelObjective",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"service": "checkout", "objective": 99.9, "window": "30d",
                 "indicator": {"ratio": {
                     "errors": "http_requests_total{job=\"checkout\",code=\"500\"}",
                     "total": "http_requests_total{job=\"checkout\"}"}}},
    });
    kube.kubectl_stdin(&["apply", "--server-side", "-f", "-"], &slo.to_string())
        .expect_ok("the SLO");
}

/// The rule files of the operator's ConfigMaps `prometheus-k8s-rulefiles-N`: file name, text.
fn rule_files(kube: &Access) -> BTreeMap<String, String> {
    let list = get_json(kube, &["get", "configmaps", "-n", "monitoring"]).unwrap();
    let prefix = format!("prometheus-{PROMETHEUS}-rulefiles-");
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|cm| {
            cm["metadata"]["name"]
                .as_str()
                .is_some_and(|n| n.starts_with(&prefix))
        })
        .flat_map(|cm| cm["data"].as_object().cloned().unwrap_or_default())
        .map(|(k, v)| (k, v.as_str().unwrap().to_string()))
        .collect()
}

#[derive(serde::Deserialize)]
struct RuleFile {
    groups: Vec<RuleGroup>,
}

/// The groups of a rule file as prometheus-operator wrote it.
fn groups(text: &str) -> Vec<RuleGroup> {
    serde_saphyr::from_str::<RuleFile>(text)
        .unwrap_or_else(|e| panic!("the operator's rule file: {e}\n{text}"))
        .groups
}

/// The gzipped Prometheus config of the Secret `prometheus-k8s`, as YAML text.
fn prometheus_config(kube: &Access) -> Option<String> {
    let encoded = kube.kubectl(&[
        "get",
        "secret",
        &format!("prometheus-{PROMETHEUS}"),
        "-n",
        "monitoring",
        "-o",
        "jsonpath={.data.prometheus\\.yaml\\.gz}",
    ]);
    if !encoded.ok() || encoded.stdout.is_empty() {
        return None;
    }
    let out = Command::new("sh")
        .args(["-c", "base64 -d | gzip -dc"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(encoded.stdout.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    Some(String::from_utf8(out.stdout).unwrap())
}

/// A day of the checkout service's traffic up to `end` in `data`, and the 5m counts of it as the
/// operator's rule file `file` (its groups `groups`) records them, backfilled: what Prometheus
/// would hold had it evaluated the rules all along.
fn history(version: Version, dir: &Path, data: &Path, groups: &[RuleGroup], start: u64, end: u64) {
    let traffic = dir.join("traffic.om");
    let mut out = BufWriter::new(std::fs::File::create(&traffic).unwrap());
    write_openmetrics(&[checkout_service()], start, end - start, 30, &mut out).unwrap();
    out.flush().unwrap();
    drop(out);
    import_openmetrics_on(version, &traffic, data);
    // The totals first: the errors' count reads the recorded totals.
    for record in [names::TOTAL_5M, names::ERRORS_5M] {
        let counts: Vec<RuleGroup> = groups
            .iter()
            .cloned()
            .map(|mut g| {
                g.rules.retain(|r| r.record.as_deref() == Some(record));
                g
            })
            .filter(|g| !g.rules.is_empty())
            .collect();
        assert!(!counts.is_empty(), "no {record} rule in {groups:#?}");
        let file = dir.join("counts.yaml");
        std::fs::write(&file, plimsoll::rules::rule_file(&counts).unwrap()).unwrap();
        // At a group offset as Prometheus picks one (a hash of the group), not on the grid. With
        // counts exactly on the grid, 2.42's closed lookback lets the window's step after the
        // last count take that count again: this history stops 2 hours before now, and the
        // budget read 54.2% where the counts give 54.39 to 54.57% (3.16, left-open: within).
        backfill_rules_at(version, data, &file, (start, end), 137_250);
    }
}

#[test]
fn the_operator_selects_our_rules_prometheus_evaluates_them_and_the_budget_is_read_back() {
    let version = Version::chosen();
    let kube = shared();
    let consumer = Consumer::prometheus_operator();
    let mut crds = vec![support::repo().join("crds")];
    crds.extend(consumer.crd_files());
    apply_crds(
        kube,
        &crds,
        &[],
        &[
            SLO_CRD,
            RULE_CRD,
            "prometheuses.monitoring.coreos.com",
            "servicemonitors.monitoring.coreos.com",
        ],
    );

    // The chart, watching shop (whose rules the Prometheus takes) and lab (whose it does not),
    // with kube-prometheus-stack's label on its rules and on its ServiceMonitor.
    let values = json!({
        "watchNamespaces": ["shop", "lab"],
        "ruleLabels": {"release": KPS},
        "metrics": {"serviceMonitor": {"enabled": true, "labels": {"release": KPS}}},
    });
    let release = Release::install_on(kube, "plimsoll", "plimsoll", &values);
    apply_kinds(
        kube,
        &release.rendered.objects,
        &["Service", "ServiceMonitor"],
    );
    kube.kubectl(&[
        "label",
        "namespace",
        "shop",
        &format!("{}={}", RULES_ON.0, RULES_ON.1),
    ])
    .expect_ok("labelling shop");
    kube.namespace("monitoring");

    // prometheus-operator, as admin, and the Prometheus object kube-prometheus-stack makes.
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = kube.kubeconfig.to_str().unwrap();
    let mut po = consumer.start(
        &[format!("--web.listen-address=127.0.0.1:{}", free_port())],
        &[("KUBECONFIG", kubeconfig)],
        &dir.path().join("prometheus-operator.log"),
    );
    let prometheus_object = json!({
        "apiVersion": "monitoring.coreos.com/v1", "kind": "Prometheus",
        "metadata": {"name": PROMETHEUS, "namespace": "monitoring"},
        "spec": {
            "version": match version { Version::Two => "v2.42.0", Version::Three => "v3.16.0" },
            "replicas": 1,
            "ruleSelector": {"matchLabels": {"release": KPS}},
            "ruleNamespaceSelector": {"matchLabels": {RULES_ON.0: RULES_ON.1}},
            "serviceMonitorSelector": {"matchLabels": {"release": KPS}},
            "serviceMonitorNamespaceSelector": {},
        },
    });
    kube.kubectl_stdin(
        &["apply", "--server-side", "-f", "-"],
        &prometheus_object.to_string(),
    )
    .expect_ok("the Prometheus object");

    // `plimsoll run` as the chart's pod, first without Prometheus: it writes the rules.
    apply_slo(kube, "shop", "checkout");
    apply_slo(kube, "lab", "checkout-lab");
    // The chart's environment names the watched namespaces, the rule labels and the Lease.
    let identity = "plimsoll-0";
    let plimsoll =
        Operator::start_with_env(&release.kubeconfig, &release.operator_env(identity), &[]);
    let uid = |ns: &str, name: &str| {
        get_json(kube, &["get", SLO_CRD, name, "-n", ns]).unwrap()["metadata"]["uid"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let shop_uid = uid("shop", "checkout");
    // The rule of shop's SLO lands in the operator's ConfigMap, under its namespace, name and UID
    // of the PrometheusRule; lab's, with the same labels, does not (its namespace is not selected).
    let files = wait_for(
        "the operator's rule ConfigMap with shop's rule",
        Duration::from_secs(120),
        &mut [&mut po],
        || {
            let files = rule_files(kube);
            match files.keys().any(|k| k.starts_with("shop-checkout-")) {
                true => Ok(files),
                false => Err(format!("files: {:?}", files.keys().collect::<Vec<_>>())),
            }
        },
    );
    let rule = get_json(kube, &["get", "prometheusrule", "checkout", "-n", "shop"]).unwrap();
    let rule_uid = rule["metadata"]["uid"].as_str().unwrap();
    assert_eq!(rule["metadata"]["labels"]["release"], KPS, "{rule:#}");
    let key = format!("shop-checkout-{rule_uid}.yaml");
    assert_eq!(files.keys().collect::<Vec<_>>(), vec![&key], "{files:#?}");
    let lab_rule = get_json(
        kube,
        &["get", "prometheusrule", "checkout-lab", "-n", "lab"],
    )
    .unwrap();
    assert_eq!(lab_rule["metadata"]["labels"]["release"], KPS);
    // What the operator wrote is our rule, group for group (the operator keeps names, intervals
    // and expressions; it drops nothing Prometheus supports).
    let written = groups(&files[&key]);
    let ours: Vec<RuleGroup> = serde_json::from_value(rule["spec"]["groups"].clone()).unwrap();
    assert_eq!(written, ours);
    assert!(
        written
            .iter()
            .all(|g| g.name.starts_with("plimsoll/shop/checkout/")),
        "{written:#?}"
    );
    assert!(
        files[&key].contains(&format!("slo_uid: {shop_uid}")),
        "{}",
        files[&key]
    );
    plimsoll.finish_clean(Vec::new());

    // The chart's ServiceMonitor: a scrape job in the operator's config Secret for the Service's
    // port `http`, path /metrics, every 30 s, in the release's namespace.
    let config = wait_for(
        "the config Secret with the ServiceMonitor's job",
        Duration::from_secs(60),
        &mut [&mut po],
        || match prometheus_config(kube) {
            Some(c) if c.contains("serviceMonitor/plimsoll/plimsoll/0") => Ok(c),
            other => Err(format!("{other:?}")),
        },
    );
    let config: Value = serde_saphyr::from_str(&config).unwrap();
    let jobs = config["scrape_configs"].as_array().unwrap();
    assert_eq!(jobs.len(), 1, "{config:#}");
    let job = &jobs[0];
    assert_eq!(job["job_name"], "serviceMonitor/plimsoll/plimsoll/0");
    assert_eq!(job["metrics_path"], "/metrics", "{job:#}");
    assert_eq!(job["scrape_interval"], "30s", "{job:#}");
    let sd = &job["kubernetes_sd_configs"][0];
    assert_eq!(sd["namespaces"]["names"], json!(["plimsoll"]), "{job:#}");
    let relabels = job["relabel_configs"].as_array().unwrap();
    let keeps_port = relabels.iter().any(|r| {
        r["action"] == "keep"
            && r["regex"] == "http"
            && r["source_labels"].as_array().is_some_and(|s| {
                s.iter()
                    .any(|l| l.as_str().unwrap_or("").ends_with("port_name"))
            })
    });
    assert!(keeps_port, "no keep of port http: {relabels:#?}");
    let service = &release.rendered.of_kind("Service")[0];
    for (key, value) in service["spec"]["selector"].as_object().unwrap() {
        let label = format!(
            "__meta_kubernetes_service_label_{}",
            key.replace(['.', '/', '-'], "_")
        );
        let kept = relabels.iter().any(|r| {
            r["action"] == "keep"
                && r["source_labels"]
                    .as_array()
                    .is_some_and(|s| s.iter().any(|l| l == &json!(label)))
                && r["regex"]
                    .as_str()
                    .is_some_and(|re| re.contains(value.as_str().unwrap()))
        });
        assert!(kept, "no keep of {label}={value}: {relabels:#?}");
    }
    assert!(
        config["rule_files"].as_array().unwrap().iter().any(|f| f
            .as_str()
            .unwrap()
            .contains(&format!("prometheus-{PROMETHEUS}-rulefiles-0"))),
        "{config:#}"
    );

    // A real Prometheus loads the operator's rule files, with a day of history; every group
    // evaluated every 10 s (the counts on the 5m grid come out the same at any cadence).
    let data = support::prometheus::data_dir(dir.path());
    let end = unix_now() / 3600 * 3600 - 2 * 3600;
    let start = end - DAY;
    history(version, dir.path(), &data, &written, start, end);
    let rules_dir = dir.path().join("rules");
    std::fs::create_dir(&rules_dir).unwrap();
    let mut loaded = written.clone();
    for group in &mut loaded {
        group.interval = "10s".into();
    }
    std::fs::write(
        rules_dir.join(&key),
        plimsoll::rules::rule_file(&loaded).unwrap(),
    )
    .unwrap();
    let prom_config = dir.path().join("prometheus.yml");
    std::fs::write(
        &prom_config,
        format!(
            "global: {{evaluation_interval: 10s}}\nrule_files: [{}/*.yaml]\n",
            rules_dir.display()
        ),
    )
    .unwrap();
    let prometheus = Prometheus::start_on(version, &data, &prom_config, &[]);

    // `plimsoll run` reads the budget from what those rules record.
    let url = format!("--prometheus-url={}", prometheus.url);
    let plimsoll = Operator::start_with_env(
        &release.kubeconfig,
        &release.operator_env(identity),
        &[&url, "--evaluation-interval=2s"],
    );
    let status = |ns: &str, name: &str| {
        get_json(kube, &["get", SLO_CRD, name, "-n", ns]).unwrap()["status"].clone()
    };
    let shop = wait_for(
        "shop's budget read from the evaluated rules",
        Duration::from_secs(120),
        &mut [&mut po],
        || {
            let s = status("shop", "checkout");
            match condition(&s, "DataAvailable")["status"].as_str() {
                Some("True") => Ok(s),
                _ => Err(format!("{s:#}\n{}", plimsoll.log())),
            }
        },
    );
    // The budget of the day's counts, with or without the counter's first 5 minutes (the first
    // count needs a sample 5 minutes before it, and the history starts at `start`), to the
    // status' one decimal.
    let service = checkout_service();
    let (all, first) = (service.counts_until(end - start), service.counts_until(300));
    let budget = |errors: f64, requests: f64| (1.0 - errors / requests / 0.001) * 100.0;
    let (a, b) = (
        budget(all.errors, all.requests),
        budget(all.errors - first.errors, all.requests - first.requests),
    );
    let remaining: f64 = shop["errorBudget"]["remaining"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        remaining >= a.min(b) - 0.05 && remaining <= a.max(b) + 0.05,
        "remaining {remaining}, not between {a} and {b} from the synthetic counts: {shop:#}"
    );
    assert_eq!(shop["errorBudget"]["totalMinutes"], "43.2", "{shop:#}");

    // lab's SLO: its rule exists, but no Prometheus loaded it. Plimsoll cannot read which
    // Prometheus objects select what (no rights on them, nor knowledge of which one is at the URL),
    // but it can ask that Prometheus which rule groups it has loaded.
    let lab = wait_for(
        "lab's SLO reported without data",
        Duration::from_secs(60),
        &mut [&mut po],
        || {
            let s = status("lab", "checkout-lab");
            match condition(&s, "DataAvailable")["reason"].as_str() {
                Some(_) => Ok(s),
                None => Err(format!("{s:#}")),
            }
        },
    );
    let data_available = condition(&lab, "DataAvailable");
    assert_eq!(data_available["status"], "False", "{lab:#}");
    assert_eq!(data_available["reason"], "RulesNotLoaded", "{lab:#}");
    let message = data_available["message"].as_str().unwrap();
    for needle in [
        "plimsoll/lab/checkout-lab/",
        "PrometheusRule lab/checkout-lab",
        "ruleSelector",
        "ruleNamespaceSelector",
        "release=kube-prometheus-stack",
    ] {
        assert!(message.contains(needle), "{needle:?} not in {message:?}");
    }
    assert_eq!(lab["state"], "Unknown", "{lab:#}");

    plimsoll.finish_clean(Vec::new());
    assert_eq!(
        po.stop(Duration::from_secs(20)),
        Some(0),
        "{}",
        po.log_tail(30)
    );
}
