//! The reconciler's promises on the real control plane (tests/support/kube.rs: kube-apiserver
//! with etcd, v1.37): the real `plimsoll run` with the chart's RBAC and a token of its
//! ServiceAccount, one namespace per test, reaching the API server through the fault proxy
//! (tests/support/fault_proxy.rs), which records every request and injects the faults a real
//! server sends only now and then (409, 500). The tests assert end states: the objects, their
//! conditions, Events and field managers, and what the API server's audit log says the operator
//! wrote (or read). Never a script of requests.
//!
//! Two cases need a cluster without a consumer's CRD (prometheus-operator's PrometheusRule, Argo
//! Rollouts' AnalysisTemplate): they run on a control plane of their own. Nothing here is mocked;
//! this file replaced a tower-test mock that scripted every request, and what the mock got wrong
//! is said where it matters (an invalid spec the real server never admits, the reconcile its own
//! status write wakes).

#[path = "support/operator.rs"]
mod operator;
mod support;

use std::time::{Duration, Instant};

use jiff::Timestamp;
use operator::Operator;
use serde_json::{Value, json};
use support::cluster::{
    Namespace, RULE_CRD, SLO_CRD, apply_chart_rbac_with, apply_crds, http_token_kubeconfig,
    scoped_operator_flags, service_account_token, shared_schema, wait_for,
};
use support::fault_proxy::{Fault, FaultProxy};
use support::kube::{Access, ControlPlane};

const SLO: (&str, &str) = ("plimsoll.dev/v1alpha1", "ServiceLevelObjective");
const RULE: (&str, &str) = ("monitoring.coreos.com/v1", "PrometheusRule");
const TEMPLATE: (&str, &str) = ("argoproj.io/v1alpha1", "AnalysisTemplate");
/// The address the operator writes into AnalysisTemplates (`--analysis-prometheus-url`).
const ANALYSIS_URL: &str = "http://prometheus-operated.monitoring:9090";
const FINALIZER: &str = "plimsoll.dev/cleanup";

/// A ratio SLO named `name`, labelled `team: shop` (a label the rule must not copy).
fn slo(name: &str) -> Value {
    json!({
        "apiVersion": SLO.0, "kind": SLO.1,
        "metadata": {"name": name, "labels": {"team": "shop"}},
        "spec": {"service": name, "objective": 99.9, "window": "30d",
                 "indicator": {"ratio": {"errors": "http_requests_total{code=~\"5..\"}",
                                         "total": "http_requests_total"}}},
    })
}

/// One request the operator made, as the API server's audit log has it.
#[derive(Debug, Clone)]
struct Audited {
    at: Timestamp,
    verb: String,
    /// `resource/name`, with `/subresource` when there is one.
    what: String,
}

impl Audited {
    fn write(&self) -> bool {
        self.verb != "get"
    }
}

/// A namespace with the chart's RBAC, and `plimsoll run` watching only it through a fault proxy.
struct Operated {
    /// First, so that it stops before what it talks to.
    operator: Option<Operator>,
    proxy: FaultProxy,
    ns: Namespace,
    lease: String,
    token: String,
    dir: tempfile::TempDir,
}

impl Operated {
    /// A namespace of the process' control plane, with the chart's RBAC of the default values.
    fn new(prefix: &str) -> Operated {
        Operated::on(Namespace::new(prefix), json!({}))
    }

    /// The chart's RBAC, rendered with `values`, in `ns`.
    fn on(ns: Namespace, values: Value) -> Operated {
        let lease = apply_chart_rbac_with(ns.kube, &ns.name, values);
        let token = service_account_token(ns.kube, &ns.name);
        let proxy = FaultProxy::start(&ns.kube.server, &ns.kube.ca);
        Operated {
            operator: None,
            proxy,
            ns,
            lease,
            token,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// Starts `plimsoll run` as the chart's ServiceAccount, with the chart's Lease and a rule
    /// label, and `extra` flags.
    fn start(&mut self, extra: &[&str]) {
        let kubeconfig = self.dir.path().join("kubeconfig");
        http_token_kubeconfig(&kubeconfig, &self.proxy.url, &self.token, &self.ns.name);
        let mut flags = scoped_operator_flags(&self.ns.name, &self.lease, "controller-test");
        flags.push("--rule-label=release=kube-prometheus-stack".to_string());
        let mut flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        flags.extend_from_slice(extra);
        self.operator = Some(Operator::start(&kubeconfig, &flags));
    }

    fn create(&self, object: Value) -> Value {
        self.ns.create_as("kubectl-create", object)
    }

    fn get(&self, (api_version, kind): (&str, &str), name: &str) -> Option<Value> {
        self.ns.get(api_version, kind, name)
    }

    /// A merge patch as a person's `kubectl edit`.
    fn edit(&self, kind: (&str, &str), name: &str, patch: Value) {
        self.ns
            .merge_as("kubectl-edit", kind, name, patch, false)
            .unwrap_or_else(|e| panic!("editing {} {name}: {e}", kind.1));
    }

    /// The path of one of this namespace's objects, as the proxy sees requests for it.
    fn path(&self, (api_version, _): (&str, &str), plural: &str, name: &str) -> String {
        format!(
            "/apis/{api_version}/namespaces/{}/{plural}/{name}",
            self.ns.name
        )
    }

    /// Waits for `done` (polled every 100 ms), failing with the operator's log after `seconds`.
    fn wait(&mut self, seconds: u64, what: &str, mut done: impl FnMut(&Operated) -> bool) {
        let ok = {
            let me = &*self;
            wait_for(Duration::from_secs(seconds), || done(me))
        };
        if !ok {
            let log = self.operator.take().map(|o| o.terminate().1);
            panic!(
                "{what}: not within {seconds} s\nrequests: {:#?}\noperator log:\n{}",
                self.proxy
                    .seen()
                    .iter()
                    .map(|s| format!("{} {}?{} -> {}", s.method, s.path, s.query, s.status))
                    .collect::<Vec<_>>(),
                log.unwrap_or_default()
            );
        }
    }

    /// The Events regarding the object `name` with this reason.
    fn events(&self, name: &str, reason: &str) -> Vec<Value> {
        self.ns
            .list("events.k8s.io/v1", "Event")
            .into_iter()
            .filter(|e| e["regarding"]["name"] == name && e["reason"] == reason)
            .collect()
    }

    /// How often the operator published that happening: repeats are counted into the first
    /// Event's `series`.
    fn occurrences(&self, name: &str, reason: &str) -> u64 {
        self.events(name, reason)
            .iter()
            .map(|e| e["series"]["count"].as_u64().unwrap_or(1))
            .sum()
    }

    /// The operator's requests the audit log has (its writes, and its reads of PrometheusRules
    /// and AnalysisTemplates) that the server received at or after `since`, oldest first. Lease
    /// renewals, leader election's heartbeat, are left out.
    fn audited(&self, since: Timestamp) -> Vec<Audited> {
        let user = format!("system:serviceaccount:{}:plimsoll", self.ns.name);
        let mut seen: Vec<Audited> = self
            .ns
            .kube
            .audit()
            .into_iter()
            .filter(|e| e["user"]["username"] == user.as_str())
            .filter(|e| e["objectRef"]["resource"] != "leases")
            .map(|e| Audited {
                at: e["requestReceivedTimestamp"]
                    .as_str()
                    .unwrap()
                    .parse()
                    .unwrap(),
                verb: e["verb"].as_str().unwrap_or_default().to_string(),
                what: format!(
                    "{}/{}{}",
                    e["objectRef"]["resource"].as_str().unwrap_or_default(),
                    e["objectRef"]["name"].as_str().unwrap_or_default(),
                    e["objectRef"]["subresource"]
                        .as_str()
                        .map(|s| format!("/{s}"))
                        .unwrap_or_default()
                ),
            })
            .filter(|a| a.at >= since)
            .collect();
        seen.sort_by_key(|a| a.at);
        seen
    }

    /// The operator's writes since `since`, as `verb resource/name[/subresource]`.
    fn writes(&self, since: Timestamp) -> Vec<String> {
        self.audited(since)
            .into_iter()
            .filter(Audited::write)
            .map(|a| format!("{} {}", a.verb, a.what))
            .collect()
    }

    /// The operator's GETs of `resource/name` since `since`.
    fn reads(&self, since: Timestamp, what: &str) -> usize {
        self.audited(since)
            .iter()
            .filter(|a| a.verb == "get" && a.what == what)
            .count()
    }

    /// A counter or gauge of the operator's /metrics, 0 when absent.
    fn metric(&self, series: &str) -> f64 {
        let (_, text) = self
            .operator
            .as_ref()
            .expect("running")
            .get("/metrics")
            .expect("/metrics answers");
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .map_or(0.0, |v| v.parse().unwrap())
    }

    /// When the proxy saw each request with this method and exactly this path, and the status
    /// answered.
    fn requests(&self, method: &str, path: &str) -> Vec<(Instant, u16)> {
        self.proxy
            .seen()
            .into_iter()
            .filter(|s| s.method == method && s.path == path)
            .map(|s| (s.at, s.status))
            .collect()
    }

    /// Stops the operator: it exits cleanly, the real RBAC authorizer refused it nothing, and
    /// the server took every Event it published.
    fn finish(mut self) -> String {
        let forbidden = self.proxy.forbidden();
        self.operator
            .take()
            .expect("running")
            .finish_clean(forbidden)
    }
}

fn condition(slo: &Value, type_: &str) -> Option<Value> {
    slo["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
        .cloned()
}

/// The (status, reason) of a condition of the SLO `name`.
fn verdict(o: &Operated, name: &str, type_: &str) -> Option<(String, String)> {
    let c = condition(&o.get(SLO, name)?, type_)?;
    Some((
        c["status"].as_str()?.to_string(),
        c["reason"].as_str()?.to_string(),
    ))
}

fn is(status: &str, reason: &str) -> Option<(String, String)> {
    Some((status.to_string(), reason.to_string()))
}

/// The time a condition last changed, to the second as the server keeps it.
fn transition(condition: &Value) -> Timestamp {
    condition["lastTransitionTime"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// `at` cut to the second, as the API server stores condition times.
fn to_second(at: Timestamp) -> Timestamp {
    Timestamp::from_second(at.as_second()).unwrap()
}

#[test]
fn the_create_path_applies_the_rule_then_writes_the_status() {
    let mut o = Operated::new("create");
    let begun = Timestamp::now();
    let uid = o.create(slo("checkout"))["metadata"]["uid"].clone();
    o.start(&[]);
    o.wait(60, "Ready", |o| {
        verdict(o, "checkout", "Ready") == is("True", "RulesApplied")
    });

    // The rule: our labels and the configured one, none of the SLO's, owned by the SLO.
    let rule = o.get(RULE, "checkout").expect("the rule");
    let labels = &rule["metadata"]["labels"];
    assert_eq!(labels["app.kubernetes.io/managed-by"], "plimsoll");
    assert_eq!(labels["plimsoll.dev/slo"], "checkout");
    assert_eq!(labels["release"], "kube-prometheus-stack");
    assert!(labels.get("team").is_none(), "{labels}");
    let owners = rule["metadata"]["ownerReferences"].as_array().unwrap();
    assert_eq!(owners.len(), 1, "{owners:?}");
    assert_eq!(owners[0]["uid"], uid);
    assert_eq!(owners[0]["kind"], "ServiceLevelObjective");
    assert_eq!(owners[0]["controller"], true);
    assert_eq!(rule["spec"]["groups"].as_array().unwrap().len(), 2);
    assert!(rule["metadata"].get("finalizers").is_none());
    let appliers: Vec<(String, String)> =
        o.ns.managers(RULE.0, RULE.1, "checkout")
            .into_iter()
            .map(|m| (m.manager, m.operation))
            .collect();
    assert_eq!(appliers, [("plimsoll".to_string(), "Apply".to_string())]);

    // The status, written by the reconciler's field manager through the status subresource.
    let object = o.get(SLO, "checkout").unwrap();
    let status = &object["status"];
    assert_eq!(status["observedGeneration"], 1);
    assert_eq!(status["prometheusRule"], "checkout");
    let ready = condition(&object, "Ready").unwrap();
    assert_eq!(ready["observedGeneration"], 1);
    let message = ready["message"].as_str().unwrap();
    assert!(message.contains("2 rule groups"), "{message}");
    let changed = transition(&ready);
    assert!(
        changed >= to_second(begun) && changed <= Timestamp::now(),
        "{changed}"
    );
    let status_managers: Vec<(String, String)> =
        o.ns.managers(SLO.0, SLO.1, "checkout")
            .into_iter()
            .filter(|m| m.subresource == "status")
            .map(|m| (m.manager, m.operation))
            .collect();
    assert_eq!(
        status_managers,
        [("plimsoll-reconciler".to_string(), "Apply".to_string())]
    );

    // The rule first, then the status, as the server received them.
    let writes = o.writes(begun);
    let rule_at = writes
        .iter()
        .position(|w| w == "patch prometheusrules/checkout");
    let status_at = writes
        .iter()
        .position(|w| w == "patch servicelevelobjectives/checkout/status");
    assert!(
        matches!((rule_at, status_at), (Some(r), Some(s)) if r < s),
        "{writes:#?}"
    );
    let created = o.events("checkout", "RulesCreated");
    assert_eq!(created.len(), 1, "{created:#?}");
    assert_eq!(created[0]["type"], "Normal");
    assert_eq!(created[0]["regarding"]["uid"], uid);
    o.finish();
}

/// After settling, every resync reads the rule again and finds it right: one GET a look, and
/// not a single write (the audit log has every write the operator's user makes).
#[test]
fn an_unchanged_healthy_slo_makes_no_writes() {
    let mut o = Operated::new("unchanged");
    o.create(slo("checkout"));
    o.start(&["--resync=2s"]);
    o.wait(60, "Ready and its Event", |o| {
        verdict(o, "checkout", "Ready") == is("True", "RulesApplied")
            && o.occurrences("checkout", "RulesCreated") == 1
    });
    let settled = Timestamp::now();
    o.wait(60, "three resyncs reading the rule again", |o| {
        o.reads(settled, "prometheusrules/checkout") >= 3
    });
    assert_eq!(o.writes(settled), Vec::<String>::new());
    assert_eq!(o.occurrences("checkout", "RulesCreated"), 1);
    o.finish();
}

/// The operator watches its PrometheusRules as metadata only (`as=PartialObjectMetadata`), and
/// the real server's metadata watch is what tells it of a hand edit or a deletion: the resync is
/// an hour away.
#[test]
fn a_rule_edited_or_deleted_by_hand_is_repaired_through_the_metadata_watch() {
    let mut o = Operated::new("repair");
    o.create(slo("checkout"));
    o.start(&[]);
    o.wait(60, "Ready", |o| {
        verdict(o, "checkout", "Ready") == is("True", "RulesApplied")
    });
    let rules_path = format!("/apis/{}/namespaces/{}/prometheusrules", RULE.0, o.ns.name);
    let collection: Vec<_> = o
        .proxy
        .seen()
        .into_iter()
        .filter(|s| s.method == "GET" && s.path == rules_path)
        .collect();
    let watch = |q: &str| q.split('&').any(|p| p == "watch=true" || p == "watch=1");
    assert!(
        collection
            .iter()
            .any(|s| watch(&s.query) && s.status == 200),
        "a watch of the rules: {collection:#?}"
    );
    assert!(
        collection
            .iter()
            .all(|s| s.accept.contains("as=PartialObjectMetadata")),
        "every list and watch of the rules asks for metadata only: {collection:#?}"
    );

    let rule = o.get(RULE, "checkout").unwrap();
    let expr = |rule: &Value| rule["spec"]["groups"][0]["rules"][0]["expr"].clone();
    let original = expr(&rule);
    let mut groups = rule["spec"]["groups"].clone();
    groups[0]["rules"][0]["expr"] = json!("vector(0)");
    let edited = Timestamp::now();
    o.ns.merge_as(
        "kubectl-edit",
        RULE,
        "checkout",
        json!({"spec": {"groups": groups}}),
        false,
    )
    .unwrap();
    o.wait(60, "the edit undone", |o| {
        o.get(RULE, "checkout")
            .is_some_and(|r| expr(&r) == original)
    });
    o.wait(30, "a RulesUpdated Event", |o| {
        o.occurrences("checkout", "RulesUpdated") == 1
    });
    // The status was right all along: it is not written again.
    let writes = o.writes(edited);
    assert!(
        writes.contains(&"patch prometheusrules/checkout".to_string()),
        "{writes:#?}"
    );
    assert!(
        !writes.iter().any(|w| w.contains("servicelevelobjectives")),
        "{writes:#?}"
    );

    let first_uid = rule["metadata"]["uid"].clone();
    assert!(o.ns.delete(RULE.0, RULE.1, "checkout"));
    o.wait(60, "the rule created again", |o| {
        o.get(RULE, "checkout")
            .is_some_and(|r| r["metadata"]["uid"] != first_uid && expr(&r) == original)
    });
    o.wait(30, "a second RulesCreated", |o| {
        o.occurrences("checkout", "RulesCreated") == 2
    });
    o.finish();
}

#[test]
fn a_changed_spec_is_applied_and_observed() {
    let mut o = Operated::new("changed");
    o.create(slo("checkout"));
    o.start(&[]);
    o.wait(60, "Ready", |o| {
        verdict(o, "checkout", "Ready") == is("True", "RulesApplied")
    });
    let first = condition(&o.get(SLO, "checkout").unwrap(), "Ready").unwrap();
    o.edit(SLO, "checkout", json!({"spec": {"objective": 99.5}}));
    assert_eq!(o.get(SLO, "checkout").unwrap()["metadata"]["generation"], 2);
    o.wait(60, "generation 2 observed", |o| {
        let slo = o.get(SLO, "checkout").unwrap();
        slo["status"]["observedGeneration"] == 2
            && condition(&slo, "Ready").is_some_and(|c| c["observedGeneration"] == 2)
    });
    let rule = o.get(RULE, "checkout").unwrap();
    assert!(
        rule["spec"].to_string().contains("vector(0.005)"),
        "the new budget rendered: {}",
        rule["spec"]
    );
    let ready = condition(&o.get(SLO, "checkout").unwrap(), "Ready").unwrap();
    assert_eq!(ready["status"], "True");
    // Still True: the transition time stays.
    assert_eq!(ready["lastTransitionTime"], first["lastTransitionTime"]);
    o.wait(30, "a RulesUpdated Event", |o| {
        o.occurrences("checkout", "RulesUpdated") == 1
    });
    o.finish();
}

/// The old mock's invalid spec (objective 100) never reaches a real operator: the CRD's own
/// validation refuses it. A spec only the operator's model refuses (a window of 0 days) does.
#[test]
fn an_invalid_spec_sets_the_condition_makes_no_rule_and_again_writes_nothing() {
    let mut o = Operated::new("invalid");
    let mut refused = slo("hundred");
    refused["spec"]["objective"] = json!(100.0);
    match o.ns.try_create_as("kubectl-create", refused) {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 422, "{status:?}");
            assert!(status.message.contains("spec"), "{status:?}");
        }
        other => panic!("the API server took objective 100: {other:?}"),
    }
    let mut invalid = slo("checkout");
    invalid["spec"]["window"] = json!("0d");
    o.create(invalid);
    o.start(&["--resync=2s"]);
    o.wait(60, "InvalidSpec and its Warning", |o| {
        verdict(o, "checkout", "Ready") == is("False", "InvalidSpec")
            && o.occurrences("checkout", "InvalidSpec") == 1
    });
    let object = o.get(SLO, "checkout").unwrap();
    let message = condition(&object, "Ready").unwrap()["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.starts_with("spec.window:") && message.contains("from 1d to 90d"),
        "{message}"
    );
    assert!(object["status"].get("prometheusRule").is_none());
    assert!(o.get(RULE, "checkout").is_none());
    let warning = &o.events("checkout", "InvalidSpec")[0];
    assert_eq!(warning["type"], "Warning");
    assert!(
        warning["note"].as_str().unwrap().contains("spec.window"),
        "{warning}"
    );

    // The same spec looked at again, by resyncs and by a label change (a new resourceVersion,
    // the same generation): nothing written, no second Warning.
    let settled = Timestamp::now();
    let looked = o.metric("plimsoll_reconciles_total{result=\"ok\"}");
    o.edit(
        SLO,
        "checkout",
        json!({"metadata": {"labels": {"touched": "yes"}}}),
    );
    o.wait(60, "three more reconciles", |o| {
        o.metric("plimsoll_reconciles_total{result=\"ok\"}") >= looked + 3.0
    });
    assert_eq!(o.writes(settled), Vec::<String>::new());
    assert_eq!(o.occurrences("checkout", "InvalidSpec"), 1);
    assert!(o.get(RULE, "checkout").is_none());
    o.finish();
}

/// Requests with this method and path in the `window` after the first; fails when there was
/// none within a minute.
fn attempts_after_the_first(o: &mut Operated, method: &str, path: &str, window: Duration) -> usize {
    o.wait(60, &format!("a first {method} {path}"), |o| {
        !o.requests(method, path).is_empty()
    });
    let first = o.requests(method, path)[0].0;
    std::thread::sleep(window.saturating_sub(first.elapsed()));
    o.requests(method, path)
        .iter()
        .filter(|(at, _)| at.duration_since(first) <= window)
        .count()
}

/// A failure the operator cannot heal waits minutes (5 for a missing CRD, 15 for a refusal)
/// instead of the error backoff's 5 s, 10 s, ...: within 10 s of the first attempt there are at
/// most two, the first and the one its own status write wakes (the SLO's watch sees the new
/// status; the mock, which had no watch, never showed that second look). The error backoff would
/// have tried a third time within 7.5 s. A loaded machine only delays attempts, so it cannot
/// make this fail.
const SLOW_RETRY_WINDOW: Duration = Duration::from_secs(10);

/// A cluster without prometheus-operator's CRD, and without Argo Rollouts': a control plane of
/// this test's own, where only the SLO CRD is installed (the process' shared one has them all).
#[test]
fn without_the_consumers_crds_the_conditions_say_so_and_the_rule_comes_once_installed() {
    let plane = ControlPlane::start();
    let kube: &'static Access = Box::leak(Box::new(plane.access().clone()));
    apply_crds(kube, &[support::repo().join("crds")], &[], &[SLO_CRD]);
    let mut o = Operated::on(Namespace::on(kube, "bare"), json!({}));
    o.create(slo("checkout"));
    o.start(&[&format!("--analysis-prometheus-url={ANALYSIS_URL}")]);
    o.wait(60, "PrometheusOperatorMissing and its Warning", |o| {
        verdict(o, "checkout", "Ready") == is("False", "PrometheusOperatorMissing")
            && o.occurrences("checkout", "PrometheusOperatorMissing") == 1
    });
    let object = o.get(SLO, "checkout").unwrap();
    let message = condition(&object, "Ready").unwrap()["message"].clone();
    assert!(
        message
            .as_str()
            .unwrap()
            .contains("install prometheus-operator"),
        "{message}"
    );
    assert!(object["status"].get("prometheusRule").is_none());
    let rule_path = o.path(RULE, "prometheusrules", "checkout");
    let attempts = attempts_after_the_first(&mut o, "PATCH", &rule_path, SLOW_RETRY_WINDOW);
    assert!(
        (1..=2).contains(&attempts),
        "{attempts} applies within {SLOW_RETRY_WINDOW:?}"
    );
    // What the real server answers for a kind it does not serve.
    assert!(
        o.requests("PATCH", &rule_path)
            .iter()
            .all(|(_, status)| *status == 404)
    );
    assert_eq!(o.occurrences("checkout", "PrometheusOperatorMissing"), 1);

    // prometheus-operator installed: the next look (a label change here; else in 5 minutes)
    // makes the rule.
    apply_crds(
        kube,
        &[shared_schema("prometheusrules-crd.yaml")],
        &[],
        &[RULE_CRD],
    );
    o.edit(
        SLO,
        "checkout",
        json!({"metadata": {"labels": {"touched": "yes"}}}),
    );
    o.wait(60, "Ready once the CRD is there", |o| {
        verdict(o, "checkout", "Ready") == is("True", "RulesApplied")
    });
    assert!(o.get(RULE, "checkout").is_some());

    // Argo Rollouts is missing, and with it the whole argoproj.io group, whose paths the real
    // server answers with a plain-text `404 page not found`, not a Status (the old mock answered
    // a Status with reason NotFound, which kube's `get_opt` reads as absent; this it did not).
    // An SLO signalling a Rollout gets the finalizer, and once deleted still goes: there is no
    // Rollout to clean.
    let mut rolling = slo("rolling");
    rolling["spec"]["rollback"] = json!({"targets": [{"kind": "Rollout", "name": "canary"}]});
    o.create(rolling);
    o.wait(60, "rolling Ready, with the finalizer", |o| {
        verdict(o, "rolling", "Ready") == is("True", "RulesApplied")
            && o.get(SLO, "rolling")
                .is_some_and(|s| s["metadata"]["finalizers"] == json!([FINALIZER]))
    });
    assert!(o.ns.delete(SLO.0, SLO.1, "rolling"));
    o.wait(60, "the deleted SLO gone", |o| {
        o.get(SLO, "rolling").is_none()
    });

    // The template's condition says Argo Rollouts is missing, and Ready stays True.
    let mut canary = slo("canary");
    canary["spec"]["rollback"] = json!({"analysisTemplate": true});
    o.create(canary);
    o.wait(60, "ArgoRolloutsMissing and its Warning", |o| {
        verdict(o, "canary", "AnalysisTemplateReady") == is("False", "ArgoRolloutsMissing")
            && o.occurrences("canary", "ArgoRolloutsMissing") == 1
    });
    assert_eq!(verdict(&o, "canary", "Ready"), is("True", "RulesApplied"));
    let template = condition(&o.get(SLO, "canary").unwrap(), "AnalysisTemplateReady").unwrap();
    assert!(
        template["message"]
            .as_str()
            .unwrap()
            .contains("install Argo Rollouts"),
        "{template}"
    );
    assert!(o.get(RULE, "canary").is_some());
    o.finish();
    drop(plane);
}

/// The API server's own refusal, from a ValidatingAdmissionPolicy (CEL, evaluated inside
/// kube-apiserver) that wants a team label on every PrometheusRule of the namespace: the
/// condition and the Warning carry the server's message, and the apply is not retried soon.
#[test]
fn an_invalid_object_answer_is_reported_with_the_servers_message() {
    let mut o = Operated::new("refused");
    let policy = format!("plimsoll-test-{}", o.ns.name);
    let objects = json!({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
         "metadata": {"name": policy},
         "spec": {"failurePolicy": "Fail",
                  "matchConstraints": {"resourceRules": [{
                      "apiGroups": ["monitoring.coreos.com"], "apiVersions": ["v1"],
                      "operations": ["CREATE", "UPDATE"], "resources": ["prometheusrules"]}]},
                  "validations": [{
                      "expression": "has(object.metadata.labels) && 'team' in object.metadata.labels",
                      "message": "every PrometheusRule needs a team label",
                      "reason": "Invalid"}]}},
        {"apiVersion": "admissionregistration.k8s.io/v1",
         "kind": "ValidatingAdmissionPolicyBinding",
         "metadata": {"name": policy},
         "spec": {"policyName": policy, "validationActions": ["Deny"],
                  "matchResources": {"namespaceSelector": {"matchLabels": {
                      "kubernetes.io/metadata.name": o.ns.name}}}}},
    ]});
    o.ns.kube
        .kubectl_stdin(&["apply", "--server-side", "-f", "-"], &objects.to_string())
        .expect_ok("the admission policy");
    // In force once the server has loaded it: a dry run of a rule without the label is refused.
    let probe = json!({"apiVersion": RULE.0, "kind": RULE.1,
        "metadata": {"name": "probe", "namespace": o.ns.name},
        "spec": {"groups": []}});
    let enforced = wait_for(Duration::from_secs(60), || {
        let run = o.ns.kube.kubectl_stdin(
            &["create", "--dry-run=server", "-f", "-"],
            &probe.to_string(),
        );
        !run.ok() && run.stderr.contains("needs a team label")
    });
    assert!(enforced, "the admission policy is not enforced");

    o.create(slo("checkout"));
    o.start(&[]);
    o.wait(60, "ApplyFailed and its Warning", |o| {
        verdict(o, "checkout", "Ready") == is("False", "ApplyFailed")
            && o.occurrences("checkout", "ApplyFailed") == 1
    });
    let message = condition(&o.get(SLO, "checkout").unwrap(), "Ready").unwrap()["message"]
        .as_str()
        .unwrap()
        .to_string();
    // The code the real server answered (the proxy saw it), and its message.
    let rule_path = o.path(RULE, "prometheusrules", "checkout");
    let code = o.requests("PATCH", &rule_path)[0].1;
    assert_eq!(code, 422, "a policy failing with reason Invalid");
    let prefix = format!(
        "The API server refused PrometheusRule {}/checkout ({code}): ",
        o.ns.name
    );
    assert!(message.starts_with(&prefix), "{message}");
    assert!(
        message.contains(&format!("ValidatingAdmissionPolicy '{policy}'"))
            && message.contains("every PrometheusRule needs a team label"),
        "{message}"
    );
    let warning = &o.events("checkout", "ApplyFailed")[0];
    assert_eq!(warning["type"], "Warning");
    assert_eq!(warning["note"], json!(message));
    assert!(o.get(RULE, "checkout").is_none());
    let attempts = attempts_after_the_first(&mut o, "PATCH", &rule_path, SLOW_RETRY_WINDOW);
    assert!(
        (1..=2).contains(&attempts),
        "{attempts} applies within {SLOW_RETRY_WINDOW:?}"
    );
    assert_eq!(o.occurrences("checkout", "ApplyFailed"), 1);
    let kube = o.ns.kube;
    o.finish();
    for kind in [
        "validatingadmissionpolicybinding",
        "validatingadmissionpolicy",
    ] {
        kube.kubectl(&["delete", kind, &policy, "--ignore-not-found"])
            .expect_ok("deleting the admission policy");
    }
}

/// The gaps between consecutive requests.
fn gaps(requests: &[(Instant, u16)]) -> Vec<Duration> {
    requests.windows(2).map(|w| w[1].0 - w[0].0).collect()
}

/// The error backoff's lower bounds: attempt n waits 5 s * 2^(n-1) times a factor from 0.5 to
/// 1.5 (src/controller/backoff.rs). Only the lower bounds are asserted: a loaded machine delays a
/// retry, never hastens it. The third wait's lower bound (10 s) is above the first's upper bound
/// (7.5 s), so passing means the waits grow.
fn assert_backoff(gaps: &[Duration]) {
    for (i, gap) in gaps.iter().enumerate() {
        let least = Duration::from_secs_f64(2.5 * 2f64.powi(i as i32));
        assert!(*gap >= least, "retry {} after {gap:?}: {gaps:?}", i + 1);
    }
}

/// 409 on the rule's apply (injected: a forced server-side apply never conflicts on a real
/// server), twice: the reconcile fails, is retried with backoff, and then succeeds.
#[test]
fn a_conflict_is_retried_with_backoff() {
    let mut o = Operated::new("conflict");
    o.create(slo("checkout"));
    let rule_path = o.path(RULE, "prometheusrules", "checkout");
    o.proxy
        .inject(Fault::on("PATCH", &rule_path).status(409).times(2));
    o.start(&[]);
    o.wait(90, "Ready after two conflicts", |o| {
        verdict(o, "checkout", "Ready") == is("True", "RulesApplied")
    });
    let applies = o.requests("PATCH", &rule_path);
    let statuses: Vec<u16> = applies.iter().map(|(_, s)| *s).collect();
    assert_eq!(statuses, [409, 409, 201], "{applies:?}");
    assert_backoff(&gaps(&applies));
    assert_eq!(
        o.metric("plimsoll_reconcile_errors_total{reason=\"ApplyRule\"}"),
        2.0
    );
    // A conflict is the operator's business, not people's: no Warning.
    assert_eq!(o.occurrences("checkout", "RulesCreated"), 1);
    let warnings: Vec<Value> =
        o.ns.list("events.k8s.io/v1", "Event")
            .into_iter()
            .filter(|e| e["type"] == "Warning")
            .collect();
    assert!(warnings.is_empty(), "{warnings:#?}");
    o.finish();
}

/// 500 on reading the rule, three times: the retries wait longer each time.
#[test]
fn server_errors_back_off_exponentially() {
    let mut o = Operated::new("errors");
    o.create(slo("checkout"));
    let rule_path = o.path(RULE, "prometheusrules", "checkout");
    o.proxy.inject(Fault::get(&rule_path).status(500).times(3));
    o.start(&[]);
    o.wait(120, "Ready after three server errors", |o| {
        verdict(o, "checkout", "Ready") == is("True", "RulesApplied")
    });
    let reads = o.requests("GET", &rule_path);
    let statuses: Vec<u16> = reads.iter().map(|(_, s)| *s).collect();
    assert_eq!(&statuses[..4], [500, 500, 500, 404], "{reads:?}");
    assert_backoff(&gaps(&reads[..4]));
    assert_eq!(
        o.metric("plimsoll_reconcile_errors_total{reason=\"ReadRule\"}"),
        3.0
    );
    o.finish();
}

/// An SLO that may annotate its targets gets the cleanup finalizer before anything else is
/// written, after everyone else's.
#[test]
fn an_slo_that_acts_on_targets_gets_the_finalizer_first() {
    let mut o = Operated::new("finalizer");
    let mut object = slo("checkout");
    object["metadata"]["finalizers"] = json!(["other.io/keep"]);
    object["spec"]["rollback"] = json!({"targets": [{"kind": "Deployment", "name": "checkout"}]});
    o.create(object);
    let begun = Timestamp::now();
    o.start(&[]);
    o.wait(60, "Ready", |o| {
        verdict(o, "checkout", "Ready") == is("True", "RulesApplied")
    });
    let object = o.get(SLO, "checkout").unwrap();
    assert_eq!(
        object["metadata"]["finalizers"],
        json!(["other.io/keep", FINALIZER])
    );
    let writes = o.writes(begun);
    assert_eq!(
        writes.first().map(String::as_str),
        Some("patch servicelevelobjectives/checkout"),
        "{writes:#?}"
    );
    assert!(
        writes.contains(&"patch prometheusrules/checkout".to_string()),
        "{writes:#?}"
    );
    o.finish();
}

/// With `--rollback-actions=false` and the chart's RBAC for it (no rights on workloads): no
/// finalizer is added, ours is taken off (from a deleted SLO too, which then goes), and no
/// target is read or written.
#[test]
fn with_rollback_actions_off_no_finalizer_and_no_target_calls() {
    let ns = Namespace::new("actions-off");
    let mut o = Operated::on(ns, json!({"rollback": {"actions": {"enabled": false}}}));
    let deployment = |name: &str, annotations: Value| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": name, "annotations": annotations},
               "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                        "template": {"metadata": {"labels": {"app": name}},
                                     "spec": {"containers": [{"name": "app", "image": "app:1"}]}}}})
    };
    o.ns.create_as("seed", deployment("checkout", json!({})));
    // Left from when actions were on.
    o.ns.create_as(
        "seed",
        deployment("old-checkout", json!({"plimsoll.dev/rollback": "true"})),
    );
    let acting = |name: &str, finalizers: Value| {
        let mut object = slo(name);
        object["metadata"]["finalizers"] = finalizers;
        object["spec"]["rollback"] =
            json!({"targets": [{"kind": "Deployment", "name": "checkout"}]});
        object
    };
    o.create(acting("keep", json!(["other.io/keep"])));
    o.create(acting("ours", json!([FINALIZER, "other.io/keep"])));
    o.create(acting("leaving", json!([FINALIZER])));
    // Acted on in an episode, then dropped from the spec: a cleanup would visit it.
    o.ns.merge_as(
        "plimsoll-evaluator",
        SLO,
        "leaving",
        json!({"status": {"rollback": {"state": "Exhausted", "targets": [
            {"kind": "Deployment", "name": "old-checkout", "action": "Annotated"}]}}}),
        true,
    )
    .unwrap();
    assert!(o.ns.delete(SLO.0, SLO.1, "leaving"));
    assert!(
        o.get(SLO, "leaving").unwrap()["metadata"]["deletionTimestamp"].is_string(),
        "held by the finalizer"
    );

    o.start(&["--rollback-actions=false"]);
    o.wait(60, "both live SLOs Ready, the deleted one gone", |o| {
        verdict(o, "keep", "Ready") == is("True", "RulesApplied")
            && verdict(o, "ours", "Ready") == is("True", "RulesApplied")
            && o.get(SLO, "leaving").is_none()
    });
    for name in ["keep", "ours"] {
        assert_eq!(
            o.get(SLO, name).unwrap()["metadata"]["finalizers"],
            json!(["other.io/keep"]),
            "{name}"
        );
    }
    let touched: Vec<String> = o
        .proxy
        .seen()
        .into_iter()
        .filter(|s| s.path.contains("/deployments") || s.path.contains("/rollouts"))
        .map(|s| format!("{} {}", s.method, s.path))
        .collect();
    assert!(touched.is_empty(), "{touched:#?}");
    let leaving_rule = o.path(RULE, "prometheusrules", "leaving");
    assert!(o.requests("PATCH", &leaving_rule).is_empty());
    let old = o.ns.get("apps/v1", "Deployment", "old-checkout").unwrap();
    assert_eq!(
        old["metadata"]["annotations"]["plimsoll.dev/rollback"],
        "true"
    );
    for name in ["checkout", "old-checkout"] {
        let managers: Vec<String> =
            o.ns.managers("apps/v1", "Deployment", name)
                .into_iter()
                .map(|m| m.manager)
                .filter(|m| m.starts_with("plimsoll"))
                .collect();
        assert!(managers.is_empty(), "{name}: {managers:?}");
    }
    o.finish();
}

/// An SLO asking for an AnalysisTemplate, with the operator started as `extra` says.
fn template_world(prefix: &str, extra: &[&str]) -> Operated {
    let mut o = Operated::new(prefix);
    let mut object = slo("checkout");
    object["spec"]["rollback"] = json!({"analysisTemplate": true});
    o.create(object);
    let url = format!("--analysis-prometheus-url={ANALYSIS_URL}");
    let mut flags = vec![url.as_str()];
    flags.extend_from_slice(extra);
    o.start(&flags);
    o.wait(60, "the template applied", |o| {
        verdict(o, "checkout", "Ready") == is("True", "RulesApplied")
            && verdict(o, "checkout", "AnalysisTemplateReady") == is("True", "TemplateApplied")
    });
    o
}

/// The template is applied owned by the SLO (the real AnalysisTemplate CRD's schema takes it),
/// and afterwards each look at the unchanged SLO reads it once and writes nothing.
#[test]
fn an_analysis_template_is_applied_owned_by_the_slo_and_costs_one_get_a_look() {
    let mut o = template_world("template", &["--resync=2s"]);
    let uid = o.get(SLO, "checkout").unwrap()["metadata"]["uid"].clone();
    let template = o.get(TEMPLATE, "checkout").expect("the template");
    let owner = &template["metadata"]["ownerReferences"][0];
    assert_eq!((&owner["uid"], &owner["controller"]), (&uid, &json!(true)));
    let labels = &template["metadata"]["labels"];
    assert_eq!(labels["app.kubernetes.io/managed-by"], "plimsoll");
    assert!(labels.get("team").is_none(), "{labels}");
    let metrics = template["spec"]["metrics"].as_array().unwrap();
    assert_eq!(metrics.len(), 1, "no burnRateAbove: the budget metric only");
    assert_eq!(
        metrics[0]["provider"]["prometheus"]["address"],
        ANALYSIS_URL
    );
    let appliers: Vec<(String, String)> =
        o.ns.managers(TEMPLATE.0, TEMPLATE.1, "checkout")
            .into_iter()
            .map(|m| (m.manager, m.operation))
            .collect();
    assert_eq!(appliers, [("plimsoll".to_string(), "Apply".to_string())]);

    // Each resync reads the rule, then the template, once each; nothing is written.
    let settled = Timestamp::now();
    let rule = "prometheusrules/checkout";
    let looks = |o: &Operated| -> Vec<String> {
        let reads: Vec<String> = o
            .audited(settled)
            .into_iter()
            .filter(|a| !a.write())
            .map(|a| a.what)
            .collect();
        // From the first look begun after `settled`.
        let from = reads.iter().position(|r| r == rule).unwrap_or(reads.len());
        reads[from..].to_vec()
    };
    o.wait(60, "three whole looks", |o| {
        let reads = looks(o);
        reads.iter().filter(|r| *r == rule).count() >= 3 && reads.last().is_some_and(|r| r != rule)
    });
    let reads = looks(&o);
    let each: Vec<&str> = reads.iter().map(String::as_str).collect();
    let expected: Vec<&str> = each
        .chunks(2)
        .flat_map(|_| [rule, "analysistemplates/checkout"])
        .collect();
    assert_eq!(each, expected);
    assert_eq!(o.writes(settled), Vec::<String>::new());
    o.finish();
}

#[test]
fn turning_the_template_off_deletes_it_and_its_condition() {
    let mut o = template_world("template-off", &[]);
    let since = Timestamp::now();
    o.edit(SLO, "checkout", json!({"spec": {"rollback": null}}));
    o.wait(60, "the template and its condition gone", |o| {
        let slo = o.get(SLO, "checkout").unwrap();
        o.get(TEMPLATE, "checkout").is_none()
            && condition(&slo, "AnalysisTemplateReady").is_none()
            && slo["status"]["observedGeneration"] == 2
    });
    assert_eq!(verdict(&o, "checkout", "Ready"), is("True", "RulesApplied"));
    let writes = o.writes(since);
    assert!(
        writes.contains(&"delete analysistemplates/checkout".to_string()),
        "{writes:#?}"
    );
    o.finish();
}
