//! `plimsoll run` on a real control plane (tests/support/kube.rs): replicas with the chart's
//! environment, RBAC and a token of its ServiceAccount (tests/support/release.rs), one release,
//! Lease and pair of namespaces per test. Two replicas: one leads, the other stands by and is
//! ready; SIGKILLed, the leader's Lease is taken over once it has expired, and never are two
//! leading. One replica with a real Prometheus: the rule, the status both writers own, Events,
//! and a Prometheus that goes away mid-run.

mod flagger;
#[path = "support/operator.rs"]
mod operator;
#[path = "support/release.rs"]
mod release;
mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Api;
use kube::api::{WatchEvent, WatchParams};
use operator::Operator;
use release::Release;
use serde_json::{Value, json};
use support::cluster::{SLO_CRD, wait_until};
use support::kube::shared;
use support::prometheus::Prometheus;

/// One replica of the operator as the chart's pod `identity` runs it, with `extra` flags.
fn replica(release: &Release, identity: &str, extra: &[&str]) -> Operator {
    Operator::start_with_env(&release.kubeconfig, &release.operator_env(identity), extra)
}

/// The writes made with the token `credential` (`JTI=...`) as the API server's audit log has
/// them, to Leases or (`leases` false) to anything else: when the server received each, and
/// what it was, oldest first.
fn writes(credential: &str, leases: bool) -> Vec<(Timestamp, String)> {
    let mut writes: Vec<(Timestamp, String)> = shared()
        .audit()
        .into_iter()
        .filter(|e| {
            e["user"]["extra"]["authentication.kubernetes.io/credential-id"][0] == credential
                && (e["objectRef"]["resource"] == "leases") == leases
                && e["verb"] != "get"
        })
        .map(|e| {
            let at = e["requestReceivedTimestamp"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap();
            let what = format!(
                "{} {}/{}/{}{} -> {}",
                e["verb"].as_str().unwrap_or_default(),
                e["objectRef"]["resource"].as_str().unwrap_or_default(),
                e["objectRef"]["namespace"].as_str().unwrap_or_default(),
                e["objectRef"]["name"].as_str().unwrap_or_default(),
                e["objectRef"]["subresource"]
                    .as_str()
                    .map(|s| format!("/{s}"))
                    .unwrap_or_default(),
                e["responseStatus"]["code"],
            );
            (at, what)
        })
        .collect();
    writes.sort();
    writes
}

/// The chart released as `name` in `<name>-system`, watching `<name>-shop`.
fn release(name: &str) -> (Release, String) {
    let watched = format!("{name}-shop");
    let release = Release::install(
        shared(),
        name,
        &format!("{name}-system"),
        &json!({"watchNamespaces": [watched]}),
    );
    (release, watched)
}

/// The checkout example as `name` in `namespace`, with `spec` merged in, applied; its UID.
fn slo(namespace: &str, name: &str, spec: Value) -> String {
    let mut slo: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(support::repo().join("examples/checkout-availability.yaml"))
            .unwrap(),
    )
    .unwrap();
    slo["metadata"]["namespace"] = json!(namespace);
    slo["metadata"]["name"] = json!(name);
    for (key, value) in spec.as_object().unwrap() {
        slo["spec"][key] = value.clone();
    }
    shared()
        .kubectl_stdin(&["apply", "--server-side", "-f", "-"], &slo.to_string())
        .expect_ok("the SLO");
    shared()
        .kubectl(&[
            "get",
            SLO_CRD,
            name,
            "-n",
            namespace,
            "-o",
            "jsonpath={.metadata.uid}",
        ])
        .expect_ok("kubectl get")
}

/// Writes `status` into an SLO's status as a field manager of the test's (standing in for the
/// evaluator of an earlier leader).
fn status(namespace: &str, name: &str, status: Value) {
    let object = json!({"apiVersion": "plimsoll.dev/v1alpha1", "kind": "ServiceLevelObjective",
                        "metadata": {"name": name, "namespace": namespace}, "status": status});
    shared()
        .kubectl_stdin(
            &[
                "apply",
                "--server-side",
                "--subresource=status",
                "--field-manager=test-evaluator",
                "-f",
                "-",
            ],
            &object.to_string(),
        )
        .expect_ok("the SLO's status");
}

fn get_json(args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    serde_json::from_str(&shared().kubectl(&all).expect_ok("kubectl get")).unwrap()
}

/// One version of the Lease, as a watch delivered it.
#[derive(Clone, Debug, PartialEq)]
struct Version {
    holder: Option<String>,
    acquired: Option<Timestamp>,
    renewed: Option<Timestamp>,
    duration: Option<i32>,
}

/// Every version of one Lease from its creation on, from a watch of the real server (a watch
/// delivers each write; polling could miss one).
struct LeaseLog {
    versions: Arc<Mutex<Vec<Version>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LeaseLog {
    fn start(namespace: &str, name: &str) -> LeaseLog {
        let versions = Arc::new(Mutex::new(Vec::new()));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (started, watching) = std::sync::mpsc::channel();
        let (namespace, name, sink) = (namespace.to_string(), name.to_string(), versions.clone());
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let client = shared().client().await;
                let leases: Api<Lease> = Api::namespaced(client, &namespace);
                // The Lease does not exist yet: the watch starts from the namespace's now.
                let list = leases.list(&Default::default()).await.unwrap();
                assert!(list.items.is_empty(), "{:?}", list.items);
                let from = list.metadata.resource_version.unwrap();
                let params = WatchParams::default().fields(&format!("metadata.name={name}"));
                let mut events = leases.watch(&params, &from).await.unwrap().boxed();
                started.send(()).unwrap();
                let mut stopped = stopped;
                loop {
                    tokio::select! {
                        _ = &mut stopped => return,
                        event = events.try_next() => match event.unwrap() {
                            Some(WatchEvent::Added(lease) | WatchEvent::Modified(lease)) => {
                                let spec = lease.spec.unwrap_or_default();
                                sink.lock().unwrap().push(Version {
                                    holder: spec.holder_identity,
                                    acquired: spec.acquire_time.map(|t| t.0),
                                    renewed: spec.renew_time.map(|t| t.0),
                                    duration: spec.lease_duration_seconds,
                                });
                            }
                            Some(other) => panic!("the Lease's watch: {other:?}"),
                            None => panic!("the Lease's watch ended"),
                        },
                    }
                }
            });
        });
        watching
            .recv_timeout(Duration::from_secs(60))
            .expect("the Lease's watch started within 60 s");
        LeaseLog {
            versions,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn versions(&self) -> Vec<Version> {
        self.versions.lock().unwrap().clone()
    }

    fn holder(&self) -> Option<String> {
        self.versions().last().and_then(|v| v.holder.clone())
    }

    /// The holders in order, each once per term (a forced release, no holder, in between).
    fn holders(&self) -> Vec<String> {
        let mut holders: Vec<String> = self
            .versions()
            .into_iter()
            .filter_map(|v| v.holder)
            .collect();
        holders.dedup();
        holders
    }
}

impl Drop for LeaseLog {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Whether the replica listening on `port` says it leads; `None` while it does not answer.
fn says_it_leads(port: u16) -> Option<bool> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let metrics = reqwest::blocking::Client::new()
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .timeout(Duration::from_secs(2))
        .send()
        .ok()?
        .text()
        .ok()?;
    Some(metrics.lines().any(|l| l == "plimsoll_leader 1"))
}

/// Asks both replicas whether they lead, over and over until dropped: how often both said yes.
struct TwoLeaders {
    stop: Arc<AtomicBool>,
    both: Arc<AtomicUsize>,
    samples: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TwoLeaders {
    fn watch(a: u16, b: u16) -> TwoLeaders {
        let stop = Arc::new(AtomicBool::new(false));
        let both = Arc::new(AtomicUsize::new(0));
        let samples = Arc::new(AtomicUsize::new(0));
        let (s, n, k) = (stop.clone(), both.clone(), samples.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                if says_it_leads(a) == Some(true) && says_it_leads(b) == Some(true) {
                    n.fetch_add(1, Ordering::SeqCst);
                }
                k.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        TwoLeaders {
            stop,
            both,
            samples,
            thread: Some(thread),
        }
    }

    /// (times both said they lead, samples taken)
    fn finish(mut self) -> (usize, usize) {
        self.stop();
        (
            self.both.load(Ordering::SeqCst),
            self.samples.load(Ordering::SeqCst),
        )
    }

    fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for TwoLeaders {
    fn drop(&mut self) {
        self.stop();
    }
}

/// From the API server's audit log: the writes made with the token `first` (other than to the
/// Lease) were all received before `first_until`, those with `second` from `second_from` until
/// its last write to the Lease (its release, which this waits for); and both wrote.
fn one_writer_at_a_time(first: &str, first_until: Timestamp, second: &str, second_from: Timestamp) {
    wait_until(
        "the second replica's release in the audit log",
        Duration::from_secs(30),
        || writes(second, true).len() >= 2,
    );
    let (first_writes, second_writes) = (writes(first, false), writes(second, false));
    let released = writes(second, true).last().unwrap().0;
    assert!(!first_writes.is_empty(), "the first leader wrote nothing");
    assert!(!second_writes.is_empty(), "the second leader wrote nothing");
    let outside: Vec<&(Timestamp, String)> = first_writes
        .iter()
        .filter(|(at, _)| *at >= first_until)
        .chain(
            second_writes
                .iter()
                .filter(|(at, _)| *at < second_from || *at > released),
        )
        .collect();
    assert!(
        outside.is_empty(),
        "writes outside their replica's term (the first until {first_until}, the second from \
         {second_from} to {released}): {outside:#?}\nfirst: {first_writes:#?}\nsecond: \
         {second_writes:#?}"
    );
    eprintln!(
        "the first leader wrote {} times in its term, the second {} times in its own",
        first_writes.len(),
        second_writes.len()
    );
}

/// How long before its Lease expires a holder renews it: `with_grace` in src/cli/run.rs.
const GRACE: SignedDuration = SignedDuration::from_secs(5);

#[test]
fn a_killed_leaders_lease_is_taken_over_once_it_has_expired_and_never_two_lead() {
    let (release, shop) = release("takeover");
    // An exhausted budget, as an earlier leader's evaluator would have written it, whose rollback
    // targets the checkout canary's Deployment (dry run: nothing is written), and a healthy one
    // beside it for the payments canary.
    for (name, target, state) in [
        ("checkout-availability", "checkout", "Exhausted"),
        ("payments-availability", "payments", "Healthy"),
    ] {
        slo(
            &shop,
            name,
            json!({"rollback": {"dryRun": true,
                                "targets": [{"kind": "Deployment", "name": target}]}}),
        );
        status(
            &shop,
            name,
            json!({"rollback": {"state": state}, "conditions": [
                {"type": "DataAvailable", "status": "True", "reason": "SeriesPresent",
                 "message": "", "lastTransitionTime": "2027-01-15T08:00:00Z"}]}),
        );
    }
    let lease_name = release.env("PLIMSOLL_LEASE_NAME");
    let lease = LeaseLog::start(&release.namespace, &lease_name);

    let a = replica(&release, "replica-a", &[]);
    wait_until("replica-a leads", Duration::from_secs(60), || {
        a.leading() && lease.holder().as_deref() == Some("replica-a")
    });
    wait_until(
        "replica-a is ready (watches synced)",
        Duration::from_secs(60),
        || a.ready(),
    );
    // replica-b has a token of its own, so the audit log tells the replicas' writes apart.
    let (b_kubeconfig, b_credential) = release.token(shared(), "kubeconfig-b");
    let b = Operator::start_with_env(&b_kubeconfig, &release.operator_env("replica-b"), &[]);
    let two_leaders = TwoLeaders::watch(a.port, b.port);
    wait_until(
        "replica-b stands by, ready",
        Duration::from_secs(60),
        || b.ready(),
    );
    // Through two renewals of replica-a's (the Lease's renewTime moves on), replica-b looks at
    // the Lease and stands by.
    let renewals = |versions: &[Version]| {
        let mut times: Vec<Timestamp> = versions
            .iter()
            .filter(|v| v.holder.as_deref() == Some("replica-a"))
            .filter_map(|v| v.renewed)
            .collect();
        times.dedup();
        times.len()
    };
    let before = renewals(&lease.versions());
    wait_until(
        "replica-a renews the Lease twice",
        Duration::from_secs(60),
        || renewals(&lease.versions()) >= before + 2,
    );
    assert!(a.leading());
    assert!(!b.leading(), "two leaders at once");
    // Flagger may reach either replica through the Service: both give the same answer.
    for replica in [&a, &b] {
        let by_hand = |slo: &str| {
            replica
                .get(&format!("/flagger/rollback?slo={slo}"))
                .unwrap()
                .0
        };
        assert_eq!(by_hand(&format!("{shop}/checkout-availability")), 200);
        assert_eq!(by_hand(&format!("{shop}/unknown")), 404);
        // As Flagger calls it: POST, Flagger's headers and body (tests/flagger).
        flagger::assert_the_protocol(
            &format!("http://127.0.0.1:{}/flagger/rollback", replica.port),
            &shop,
            ("checkout-availability", "checkout"),
            ("payments-availability", "payments"),
        );
    }

    // SIGKILL: no release, the Lease has to expire.
    let killed = Instant::now();
    let log_a = a.kill();
    wait_until("replica-b takes over", Duration::from_secs(60), || {
        b.leading()
    });
    let took = killed.elapsed();
    wait_until("the Lease names replica-b", Duration::from_secs(30), || {
        lease.holder().as_deref() == Some("replica-b")
    });
    wait_until(
        "replica-b is ready as the leader",
        Duration::from_secs(60),
        || b.ready(),
    );
    let (both, samples) = two_leaders.finish();
    assert_eq!(
        both, 0,
        "both replicas said they led, {both} of {samples} times"
    );
    assert!(samples > 0);

    let versions = lease.versions();
    assert_eq!(lease.holders(), ["replica-a", "replica-b"], "{versions:#?}");
    let last_of_a = versions
        .iter()
        .rev()
        .find(|v| v.holder.as_deref() == Some("replica-a"))
        .unwrap();
    let first_of_b = versions
        .iter()
        .find(|v| v.holder.as_deref() == Some("replica-b"))
        .unwrap();
    let duration = SignedDuration::from_secs(last_of_a.duration.unwrap().into());
    let expired = last_of_a.renewed.unwrap() + duration;
    let acquired = first_of_b.acquired.unwrap();
    // Both times are written by the replicas from one clock (this machine's): replica-b took the
    // Lease only after replica-a's last renewal had expired, and within the grace after that.
    assert!(
        acquired >= expired,
        "replica-b took the Lease at {acquired}, before it expired at {expired}: {versions:#?}"
    );
    assert!(
        acquired <= expired + GRACE,
        "replica-b took the Lease at {acquired}, more than {GRACE:?} after it expired at \
         {expired}: {versions:#?}"
    );
    eprintln!(
        "replica-b led {took:?} after the SIGKILL, took the Lease {:?} after it expired",
        acquired.duration_since(expired)
    );
    assert!(!log_a.contains("released the leader lease"), "{log_a}");
    // The new leader writes.
    a_change_is_reconciled(&shop, "payments-availability");

    let (exit, log) = b.terminate();
    assert_eq!(exit, Some(0), "{log}");
    assert!(log.contains("released the leader lease"), "{log}");
    wait_until("the Lease released", Duration::from_secs(30), || {
        lease.versions().last().is_some_and(|v| v.holder.is_none())
    });
    for log in [&log_a, &log] {
        assert!(!log.to_lowercase().contains("forbidden"), "{log}");
    }

    // Who wrote what, and when, as the API server recorded it: replica-a only until its Lease
    // expired, replica-b only from taking the Lease until releasing it.
    one_writer_at_a_time(&release.credential, expired, &b_credential, acquired);
}

/// A changed SLO is reconciled by whoever leads: its status says the new generation.
fn a_change_is_reconciled(namespace: &str, name: &str) {
    shared()
        .kubectl(&[
            "patch",
            SLO_CRD,
            name,
            "-n",
            namespace,
            "--type=merge",
            "-p",
            r#"{"spec": {"objective": 99.5}}"#,
        ])
        .expect_ok("kubectl patch slo");
    wait_until(
        "the leader reconciles the change",
        Duration::from_secs(60),
        || get_json(&["get", SLO_CRD, name, "-n", namespace])["status"]["observedGeneration"] == 2,
    );
}

/// The condition `type_` of a status.
fn condition(status: &Value, type_: &str) -> Value {
    status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == type_)
        .cloned()
        .unwrap_or(Value::Null)
}

#[test]
fn the_running_operator_reconciles_an_slo_end_to_end() {
    let kube = shared();
    let (release, shop) = release("solo");
    let uid = slo(&shop, "checkout-availability", json!({}));
    kube.kubectl(&[
        "label",
        SLO_CRD,
        "checkout-availability",
        "team=shop",
        "-n",
        &shop,
    ])
    .expect_ok("kubectl label");

    // A real Prometheus that has no series for the SLO yet.
    let dir = tempfile::tempdir().unwrap();
    let data = support::prometheus::data_dir(dir.path());
    let config = dir.path().join("prometheus.yml");
    std::fs::write(&config, "global: {evaluation_interval: 10s}\n").unwrap();
    let prometheus = Prometheus::start(&data, &config);
    let url = format!("--prometheus-url={}", prometheus.url);
    let replica = replica(&release, "solo", &[&url, "--evaluation-interval=1s"]);
    let read = || get_json(&["get", SLO_CRD, "checkout-availability", "-n", &shop]);
    wait_until(
        "the rule is applied and both status writers wrote",
        Duration::from_secs(60),
        || {
            let rule = kube.kubectl(&[
                "get",
                "prometheusrule",
                "checkout-availability",
                "-n",
                &shop,
            ]);
            let status = &read()["status"];
            rule.ok()
                && !condition(status, "Ready").is_null()
                && !condition(status, "DataAvailable").is_null()
                && !condition(status, "BudgetExhausted").is_null()
        },
    );
    wait_until("ready", Duration::from_secs(30), || replica.ready());
    let rule = get_json(&[
        "get",
        "prometheusrule",
        "checkout-availability",
        "-n",
        &shop,
    ]);
    let status = read()["status"].clone();
    assert_eq!(rule["metadata"]["ownerReferences"][0]["uid"], json!(uid));
    assert!(rule["metadata"]["labels"].get("team").is_none(), "{rule:#}");
    assert_eq!(condition(&status, "Ready")["status"], "True", "{status:#}");
    // The evaluator found no series, and the Prometheus (which loads no rule files) lists none
    // of the SLO's groups: it says so and decides nothing.
    assert_eq!(condition(&status, "DataAvailable")["status"], "False");
    assert_eq!(
        condition(&status, "DataAvailable")["reason"],
        "RulesNotLoaded"
    );
    // Nobody measured it: neither within the policy nor exhausted, and no state but Unknown.
    assert_eq!(condition(&status, "BudgetExhausted")["status"], "Unknown");
    assert_eq!(condition(&status, "BudgetExhausted")["reason"], "NoData");
    assert_eq!(status["state"], "Unknown", "{status:#}");
    assert!(status.get("rollback").is_none(), "{status:#}");
    assert_eq!(status["observedGeneration"], 1);
    let reasons = kube
        .kubectl(&[
            "get",
            "events.events.k8s.io",
            "-n",
            &shop,
            "-o",
            "jsonpath={.items[*].reason}",
        ])
        .expect_ok("kubectl get events");
    assert!(reasons.contains("RulesCreated"), "{reasons}");
    // Flagger's webhook: no rollback without current data; unknown SLOs and bad queries refused.
    let flagger = |query: &str| replica.get(&format!("/flagger/rollback{query}")).unwrap().0;
    assert_eq!(flagger(&format!("?slo={shop}/checkout-availability")), 412);
    assert_eq!(flagger(&format!("?slo={shop}/unknown")), 404);
    assert_eq!(flagger(""), 400);
    let (_, metrics) = replica.get("/metrics").unwrap();
    assert!(
        metrics.contains("plimsoll_reconciles_total{result=\"ok\"}"),
        "{metrics}"
    );
    let (exit, log) = replica.terminate();
    assert_eq!(exit, Some(0), "{log}");
    // Everything it did, the chart's RBAC allowed.
    assert!(!log.to_lowercase().contains("forbidden"), "{log}");
}

/// The SLO's recorded series as Prometheus would hold them, written by Prometheus itself every
/// second: 0.02% errors over the window on a 99.9% SLO (80% of the budget left), calm burn rates.
fn recorded(namespace: &str, uid: &str) -> String {
    format!(
        r#"
groups:
- name: recorded
  interval: 1s
  rules:
  - {{record: "slo:sli_error:ratio_window", expr: "vector(0.0002)", labels: &l {{slo: checkout-availability, slo_namespace: {namespace}, slo_service: checkout, slo_uid: {uid}}}}}
  - {{record: "slo:sli_error:ratio_rate5m", expr: "vector(0.0002)", labels: *l}}
  - {{record: "slo:sli_error:ratio_rate1h", expr: "vector(0.0002)", labels: *l}}
  - {{record: "slo:sli_error:ratio_rate6h", expr: "vector(0.0002)", labels: *l}}
"#
    )
}

#[test]
fn prometheus_stopping_mid_run_turns_data_unavailable_and_nothing_else() {
    let kube = shared();
    let (release, shop) = release("unreachable");
    let uid = slo(&shop, "checkout-availability", json!({}));
    let dir = tempfile::tempdir().unwrap();
    let data = support::prometheus::data_dir(dir.path());
    let config = support::prometheus::rules_config(dir.path(), &recorded(&shop, &uid), "1s");
    let prometheus = Prometheus::start(&data, &config);
    let url = format!("--prometheus-url={}", prometheus.url);
    let replica = replica(&release, "solo", &[&url, "--evaluation-interval=1s"]);
    let status =
        || get_json(&["get", SLO_CRD, "checkout-availability", "-n", &shop])["status"].clone();
    let data_available = || condition(&status(), "DataAvailable")["status"].clone();
    wait_until(
        "the budget is read from Prometheus",
        Duration::from_secs(60),
        || data_available() == "True",
    );
    let before = status();
    assert_eq!(before["sli"], "99.9800");
    assert_eq!(before["errorBudget"]["remaining"], "80.0");
    assert_eq!(before["state"], "Healthy");
    assert_eq!(condition(&before, "BudgetExhausted")["status"], "False");

    drop(prometheus);
    wait_until("DataAvailable turns False", Duration::from_secs(60), || {
        data_available() == "False"
    });
    let after = status();
    assert_eq!(
        condition(&after, "DataAvailable")["reason"],
        "PrometheusUnreachable"
    );
    // Nothing is decided without data: no rollback state change, no Warning Events; and no
    // state is shown that nobody measured.
    assert_eq!(after["rollback"]["state"], before["rollback"]["state"]);
    assert_eq!(after["state"], "Unknown");
    let budget = condition(&after, "BudgetExhausted");
    assert_eq!(
        (&budget["status"], &budget["reason"]),
        (&json!("Unknown"), &json!("NoData"))
    );
    let printed = kube
        .kubectl(&["get", SLO_CRD, "checkout-availability", "-n", &shop])
        .expect_ok("kubectl get");
    assert!(
        printed.contains("Unknown") && !printed.contains("Healthy"),
        "{printed}"
    );
    let types = kube
        .kubectl(&[
            "get",
            "events.events.k8s.io",
            "-n",
            &shop,
            "-o",
            "jsonpath={.items[*].type}",
        ])
        .expect_ok("kubectl get events");
    assert!(!types.contains("Warning"), "{types}");
    // The operator keeps running and healthy, and keeps trying: three more read rounds, and no
    // state change in any of them.
    replica.while_rounds_pass(3, Duration::from_secs(60), || {
        assert_eq!(status()["rollback"]["state"], before["rollback"]["state"]);
    });
    assert_eq!(replica.get("/healthz").map(|r| r.0), Some(200));
    assert!(replica.ready());
    let flagger = replica
        .get(&format!(
            "/flagger/rollback?slo={shop}/checkout-availability"
        ))
        .unwrap()
        .0;
    assert_eq!(flagger, 412, "no rollback signal without data");
    let (exit, log) = replica.terminate();
    assert_eq!(exit, Some(0), "{log}");
    assert!(!log.to_lowercase().contains("forbidden"), "{log}");
}

/// When the API server received the Lease reads made with the token `credential`.
fn lease_reads(credential: &str) -> Vec<Timestamp> {
    shared()
        .audit()
        .into_iter()
        .filter(|e| {
            e["user"]["extra"]["authentication.kubernetes.io/credential-id"][0] == credential
                && e["objectRef"]["resource"] == "leases"
                && e["verb"] == "get"
        })
        .map(|e| {
            e["requestReceivedTimestamp"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect()
}

#[test]
fn on_sigterm_the_leader_releases_the_lease_and_the_standby_takes_it_at_once() {
    let (release, shop) = release("handover");
    slo(&shop, "checkout-availability", json!({}));
    let lease = LeaseLog::start(&release.namespace, &release.env("PLIMSOLL_LEASE_NAME"));
    let a = replica(&release, "replica-a", &[]);
    wait_until("replica-a leads", Duration::from_secs(60), || {
        a.leading() && lease.holder().as_deref() == Some("replica-a")
    });
    let (b_kubeconfig, b_credential) = release.token(shared(), "kubeconfig-b");
    let b = Operator::start_with_env(&b_kubeconfig, &release.operator_env("replica-b"), &[]);
    wait_until(
        "replica-b stands by, ready",
        Duration::from_secs(60),
        || b.ready(),
    );
    // The worst moment for a standby that looks at the Lease only when it would expire: just
    // after it read replica-a's latest renewal, so that the next look is at that expiry.
    wait_until(
        "replica-b reads replica-a's latest renewal",
        Duration::from_secs(60),
        || {
            let renewed = lease.versions().last().and_then(|v| v.renewed);
            renewed.is_some_and(|r| lease_reads(&b_credential).iter().any(|at| *at > r))
        },
    );

    let (exit, log) = a.terminate();
    assert_eq!(exit, Some(0), "{log}");
    assert!(log.contains("released the leader lease"), "{log}");
    wait_until("replica-b takes over", Duration::from_secs(60), || {
        b.leading() && lease.holder().as_deref() == Some("replica-b")
    });
    let versions = lease.versions();
    assert_eq!(lease.holders(), ["replica-a", "replica-b"], "{versions:#?}");
    let last_of_a = versions
        .iter()
        .rev()
        .find(|v| v.holder.as_deref() == Some("replica-a"))
        .unwrap();
    let would_expire =
        last_of_a.renewed.unwrap() + SignedDuration::from_secs(last_of_a.duration.unwrap().into());
    let acquired = versions
        .iter()
        .find(|v| v.holder.as_deref() == Some("replica-b"))
        .unwrap()
        .acquired
        .unwrap();
    let released = writes(&release.credential, true).last().unwrap().0;
    eprintln!(
        "replica-b took the Lease {:?} after replica-a released it, {:?} before it would have \
         expired",
        acquired.duration_since(released),
        would_expire.duration_since(acquired)
    );
    // Released, the Lease is the standby's to take, not once replica-a's would have expired.
    assert!(
        acquired < would_expire,
        "replica-b took the Lease at {acquired}, only once replica-a's would have expired \
         ({would_expire}) had it not released it at {released}: {versions:#?}\n{}",
        b.log()
    );
    // The new leader writes.
    a_change_is_reconciled(&shop, "checkout-availability");
    let (exit, log) = b.terminate();
    assert_eq!(exit, Some(0), "{log}");
    // replica-a stopped writing before it released the Lease; replica-b started after taking it.
    one_writer_at_a_time(&release.credential, released, &b_credential, acquired);
}
