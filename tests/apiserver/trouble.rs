//! Injected faults, throttling, load counters, RBAC refusals and unserved resources.

use std::time::{Duration, Instant};

use kube::api::{Api, DynamicObject, ListParams, WatchParams};
use serde_json::json;

use super::apiserver::{ApiServer, Fault, Throttle, presets};
use super::{DEPLOY, api_error, apply, deployment_annotations, deployments, resource, rules};
use super::{server, slos};

fn web(server: &ApiServer) {
    server.put(json!({"apiVersion": DEPLOY.0, "kind": DEPLOY.1,
                      "metadata": {"name": "web", "namespace": "shop"}}));
}

fn without_retry(server: &ApiServer) -> Api<DynamicObject> {
    let ar = resource("apps", "v1", "Deployment", "deployments");
    Api::namespaced_with(server.client_without_retry(), "shop", &ar)
}

#[tokio::test]
async fn an_injected_429_is_answered_with_retry_after_and_retried() {
    let server = server();
    web(&server);
    let fault = Fault::new("get", "deployments")
        .named("web")
        .status(429)
        .retry_after(1);
    server.inject(fault);
    let started = Instant::now();
    deployments(&server).get("web").await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "kube waits Retry-After before retrying"
    );
    assert_eq!(server.stats().count("get", "deployments"), 2);
    assert_eq!(server.stats().injected, 1);

    server.inject(Fault::new("get", "deployments").status(429).retry_after(3));
    let status = api_error(without_retry(&server).get("web").await);
    assert_eq!(
        (status.code, status.reason.as_str()),
        (429, "TooManyRequests")
    );
    assert_eq!(status.details.unwrap().retry_after_seconds, 3);

    for (code, reason) in [
        (404, "NotFound"),
        (409, "Conflict"),
        (422, "Invalid"),
        (500, "InternalError"),
    ] {
        server.inject(Fault::new("*", "deployments").status(code));
        let status = api_error(without_retry(&server).get("web").await);
        assert_eq!((status.code, status.reason.as_str()), (code, reason));
    }
}

#[tokio::test]
async fn throttling_answers_429_beyond_the_requests_in_flight() {
    let server = server();
    web(&server);
    // The one admitted request stays in flight until all three have arrived, however far apart
    // a loaded machine sends them.
    server.hold_until_arrived(3);
    server.throttle(Some(Throttle {
        max_in_flight: Some(1),
        max_per_second: None,
    }));
    let api = without_retry(&server);
    let (a, b, c) = tokio::join!(api.get("web"), api.get("web"), api.get("web"));
    let refused: Vec<_> = [a, b, c].into_iter().filter_map(Result::err).collect();
    assert_eq!(refused.len(), 2, "{refused:?}");
    for error in refused {
        let status = api_error(Err::<(), _>(error));
        assert_eq!(
            (status.code, status.details.unwrap().retry_after_seconds),
            (429, 1)
        );
    }
    assert!(server.stats().throttled >= 1);

    server.throttle(Some(Throttle {
        max_in_flight: None,
        max_per_second: Some(2),
    }));
    // Four requests one after another, each with the instants it was sent and answered, which
    // bound when the server saw it. A request is admitted when fewer than two were admitted in
    // the second before it arrived. So, at any speed: one that two admitted requests certainly
    // precede by less than a second (answered less than a second after they were sent) is
    // refused; one that fewer than two admitted requests can precede by less than a second
    // (sent a second or more after the others were answered) is admitted. On a quick machine
    // the last two are refused; on one that needs a second a request, they pass.
    let mut answers = Vec::new();
    for _ in 0..4 {
        let sent = Instant::now();
        let ok = api.get("web").await.is_ok();
        answers.push((sent, Instant::now(), ok));
    }
    assert!(answers[0].2 && answers[1].2, "the first two pass");
    let second = Duration::from_secs(1);
    for (i, &(sent, answered, ok)) in answers.iter().enumerate().skip(2) {
        let admitted = answers[..i].iter().filter(|a| a.2);
        let surely_within = admitted
            .clone()
            .filter(|a| answered.duration_since(a.0) < second)
            .count();
        let maybe_within = admitted
            .filter(|a| sent.saturating_duration_since(a.1) < second)
            .count();
        if surely_within >= 2 {
            assert!(!ok, "request {i} passed within a second of two others");
        }
        if maybe_within < 2 {
            assert!(
                ok,
                "request {i} was refused with the second before it clear"
            );
        }
    }
}

#[tokio::test]
async fn counters_measure_requests_in_flight_open_watches_and_the_rate() {
    let server = server();
    web(&server);
    server.reset_stats();
    // Each of the three stays in flight until all three have arrived.
    server.hold_until_arrived(3);
    let api = deployments(&server);
    let (a, b, c) = tokio::join!(api.get("web"), api.get("web"), api.get("web"));
    assert!(a.is_ok() && b.is_ok() && c.is_ok());
    let stats = server.stats();
    assert_eq!(stats.count("get", "deployments"), 3);
    assert!(
        stats.peak_in_flight >= 3 && stats.peak_rps >= 3,
        "{stats:?}"
    );

    let watch = api.watch(&WatchParams::default(), "0").await.unwrap();
    let idle = server.wait_for_async(Duration::from_secs(5), || {
        let s = server.stats();
        s.open_watches == 1 && s.in_flight == 0
    });
    assert!(
        idle.await,
        "a watch counts as open, not in flight: {:?}",
        server.stats()
    );
    drop(watch);
    let closed = server.wait_for_async(Duration::from_secs(5), || server.stats().open_watches == 0);
    assert!(closed.await);
    apply(
        &api,
        "m",
        deployment_annotations("web", json!({"a": "b"})),
        false,
    )
    .await
    .unwrap();
    let stats = server.stats();
    assert_eq!(
        (
            stats.writes,
            stats.count("patch", "deployments"),
            stats.peak_open_watches
        ),
        (1, 1, 1)
    );
    server.reset_stats();
    assert_eq!(server.stats().total, 0);
}

#[tokio::test]
async fn rbac_refuses_and_records_what_src_access_does_not_permit() {
    let server = ApiServer::start(presets::all());
    slos(&server).list(&ListParams::default()).await.unwrap();
    let status = api_error(slos(&server).get("checkout").await);
    assert_eq!((status.code, status.reason.as_str()), (403, "Forbidden"));
    // Apply may patch a Deployment but not create one: targets only get `patch`.
    let status = api_error(
        apply(
            &deployments(&server),
            "plimsoll",
            deployment_annotations("web", json!({})),
            true,
        )
        .await,
    );
    assert_eq!(status.code, 403);
    assert!(server.get(DEPLOY.0, DEPLOY.1, "shop", "web").is_none());
    let rule = json!({"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
                      "metadata": {"name": "checkout"}, "spec": {"groups": []}});
    apply(&rules(&server), "plimsoll", rule, true)
        .await
        .unwrap();
    let refused = server.refused();
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert!(
        refused[0].contains("get servicelevelobjectives"),
        "{}",
        refused[0]
    );
    assert!(refused[1].contains("create deployments"), "{}", refused[1]);
}

#[tokio::test]
async fn a_kubeconfig_points_kube_at_the_server_with_a_default_namespace() {
    let server = server();
    server.put(super::slo("checkout"));
    let dir = tempfile::tempdir().unwrap();
    let file = server.kubeconfig_in(dir.path(), "shop");
    let kubeconfig = kube::config::Kubeconfig::read_from(&file).unwrap();
    let options = kube::config::KubeConfigOptions::default();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .unwrap();
    assert_eq!(config.default_namespace, "shop");
    let client = kube::Client::try_from(config).unwrap();
    let api: Api<DynamicObject> = Api::default_namespaced_with(client, &super::slo_resource());
    assert_eq!(
        api.list(&ListParams::default()).await.unwrap().items.len(),
        1
    );
}

#[tokio::test]
async fn an_unserved_resource_answers_404() {
    let server = server();
    assert!(server.unregister("monitoring.coreos.com", "prometheusrules"));
    let status = api_error(rules(&server).list(&ListParams::default()).await);
    assert_eq!((status.code, status.reason.as_str()), (404, "NotFound"));
    assert_eq!(
        status.message,
        "the server could not find the requested resource"
    );
    let ar = resource("example.com", "v1", "Widget", "widgets");
    let unknown = Api::<DynamicObject>::namespaced_with(server.client(), "shop", &ar);
    assert_eq!(api_error(unknown.get("w").await).code, 404);
}
