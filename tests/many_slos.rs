//! More SLOs than one list page: kube lists 500 objects a page, and a list's objects reach the
//! reflector store only when the list ends. Without leader election the controller subscribes
//! before that, and once heard of none of them (fixed in slo_cache: every SLO is handed over when
//! a list ends). Here the real `plimsoll run`, with the chart's cluster-wide RBAC and a token of
//! its ServiceAccount, against the real kube-apiserver (tests/support/kube.rs) with 600 SLOs in
//! seven namespaces, through the fault proxy (tests/support/fault_proxy.rs), which shows how the
//! server paged the operator's list: every SLO gets its PrometheusRule, and SIGTERM with work
//! still queued stops the operator promptly. (An earlier run of this test seemed to hang: the
//! harness did not read the operator's stderr, and a full pipe blocks every log write;
//! tests/support/operator.rs now reads it all along.)

#[path = "support/operator.rs"]
mod operator;
#[path = "support/release.rs"]
mod release;
mod support;

use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use operator::Operator;
use release::Release;
use serde_json::{Value, json};
use support::cluster::{http_token_kubeconfig, resource, wait_for};
use support::fault_proxy::FaultProxy;
use support::kube::shared;

const SLOS: usize = 600;
const NAMESPACES: usize = 7;
/// `--shutdown-timeout`, passed explicitly: how long the operator lets in-flight reconciles
/// finish after SIGTERM before it gives up on them and logs so (src/cli/run.rs, `term`).
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(20);
const SLO_API: &str = "plimsoll.dev/v1alpha1";
const SLO_KIND: &str = "ServiceLevelObjective";

fn namespace(i: usize) -> String {
    format!("many-team-{}", i % NAMESPACES)
}

fn slo(i: usize, objective: f64) -> Value {
    json!({
        "apiVersion": SLO_API, "kind": SLO_KIND,
        "metadata": {"name": format!("svc-{i}"), "namespace": namespace(i)},
        "spec": {"service": format!("svc-{i}"), "objective": objective, "window": "30d",
                 "indicator": {"ratio": {"errors": "http_requests_total{code=~\"5..\"}",
                                         "total": "http_requests_total"}}},
    })
}

/// Every SLO created (or, with `edit`, its objective changed) as the admin, 16 requests at once.
async fn write_all(client: &kube::Client, edit: bool) {
    let kind = resource(SLO_API, SLO_KIND);
    futures::stream::iter(0..SLOS)
        .map(|i| {
            let api: Api<DynamicObject> =
                Api::namespaced_with(client.clone(), &namespace(i), &kind);
            async move {
                if edit {
                    let patch = json!({"spec": {"objective": 99.5}});
                    let params = PatchParams::default();
                    api.patch(&format!("svc-{i}"), &params, &Patch::Merge(&patch))
                        .await
                } else {
                    let object: DynamicObject = serde_json::from_value(slo(i, 99.9)).unwrap();
                    api.create(&PostParams::default(), &object).await
                }
            }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
}

/// Our PrometheusRules in the SLOs' namespaces.
async fn rules(client: &kube::Client) -> usize {
    let api: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &resource("monitoring.coreos.com/v1", "PrometheusRule"),
    );
    let ours = ListParams::default().labels("app.kubernetes.io/managed-by=plimsoll");
    api.list_metadata(&ours)
        .await
        .unwrap()
        .items
        .iter()
        .filter(|r| {
            r.metadata
                .namespace
                .as_deref()
                .is_some_and(|n| n.starts_with("many-team-"))
        })
        .count()
}

#[test]
fn every_slo_of_a_list_longer_than_a_page_gets_its_rule_and_sigterm_stops_promptly() {
    let kube = shared();
    // The chart's default: every namespace watched, with a ClusterRole.
    let release = Release::install(kube, "many", "many-system", &json!({}));
    for k in 0..NAMESPACES {
        kube.namespace(&namespace(k));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let admin = runtime.block_on(kube.client());
    runtime.block_on(write_all(&admin, false));

    let proxy = FaultProxy::start(&kube.server, &kube.ca);
    let token = release.service_account_token(kube);
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    http_token_kubeconfig(&kubeconfig, &proxy.url, &token, &release.namespace);
    let operator = Operator::start_with_env(
        &kubeconfig,
        &release.operator_env("many-0"),
        &[
            "--leader-election=false",
            "--api-qps=2000",
            "--api-burst=2000",
            &format!("--shutdown-timeout={}s", SHUTDOWN_TIMEOUT.as_secs()),
        ],
    );
    let begun = Instant::now();
    let all = wait_for(Duration::from_secs(180), || {
        runtime.block_on(rules(&admin)) == SLOS
    });
    assert!(
        all,
        "{} of {SLOS} rules after 180 s:\n{}",
        runtime.block_on(rules(&admin)),
        operator.log()
    );
    eprintln!(
        "{SLOS} rules within {:.1} s of the operator's start",
        begun.elapsed().as_secs_f64()
    );
    // How the real server answered the operator's list of the SLOs: in pages of 500 with a
    // continue token, or whole.
    let lists: Vec<String> = proxy
        .seen()
        .into_iter()
        .filter(|s| {
            s.method == "GET"
                && s.path == format!("/apis/{SLO_API}/servicelevelobjectives")
                && !s
                    .query
                    .split('&')
                    .any(|p| p == "watch=true" || p == "watch=1")
        })
        .map(|s| format!("{}?{} -> {}", s.path, s.query, s.status))
        .collect();
    assert!(
        lists.iter().any(|l| l.contains("continue=")),
        "the list came in one page: {lists:#?}"
    );
    eprintln!("the operator's lists of the SLOs: {lists:#?}");

    // Stop while work is queued: edit every SLO so each has a reconcile pending.
    runtime.block_on(write_all(&admin, true));
    // Promptly, by the operator's own measure: the queued reconciles are dropped and the
    // in-flight ones finish within its shutdown timeout, so it never reaches that timeout and
    // exits within it. (The harness allows twice that before it gives up, so an overrun is
    // measured and reported here rather than cut off.)
    let asked = Instant::now();
    let (code, log) = operator.terminate_within(SHUTDOWN_TIMEOUT * 2);
    let took = asked.elapsed();
    assert_eq!(code, Some(0), "{log}");
    assert!(
        !log.contains("reconciles did not finish in time"),
        "the in-flight reconciles outlasted --shutdown-timeout: {log}"
    );
    assert!(
        took < SHUTDOWN_TIMEOUT,
        "stopped {took:?} after SIGTERM with work queued, past --shutdown-timeout"
    );
    assert!(proxy.forbidden().is_empty(), "{:?}", proxy.forbidden());
}
