//! Watches after a list (kube's watcher and reflector), resumption, 410 for a compacted
//! resourceVersion, bookmarks, streaming lists, metadata-only requests, selectors, pagination.

use std::time::Duration;

use futures::{Stream, StreamExt, TryStreamExt};
use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams, WatchEvent,
    WatchParams,
};
use kube::core::PartialObjectMeta;
use kube::runtime::{reflector, watcher};
use serde_json::json;

use super::apiserver::{ApiServer, Config};
use super::{server, slo, slo_resource, slos};

/// The next watcher event, as `Kind name`.
async fn next<S>(events: &mut S) -> String
where
    S: Stream<Item = Result<watcher::Event<DynamicObject>, watcher::Error>> + Unpin,
{
    let event = tokio::time::timeout(Duration::from_secs(10), events.try_next())
        .await
        .expect("an event within 10 s")
        .unwrap()
        .unwrap();
    let name = |o: &DynamicObject| o.metadata.name.clone().unwrap();
    match event {
        watcher::Event::Init => "Init".into(),
        watcher::Event::InitApply(o) => format!("InitApply {}", name(&o)),
        watcher::Event::InitDone => "InitDone".into(),
        watcher::Event::Apply(o) => format!("Apply {}", name(&o)),
        watcher::Event::Delete(o) => format!("Delete {}", name(&o)),
    }
}

async fn create(api: &Api<DynamicObject>, name: &str) -> DynamicObject {
    let object = serde_json::from_value(slo(name)).unwrap();
    api.create(&PostParams::default(), &object).await.unwrap()
}

#[tokio::test]
async fn a_watcher_and_reflector_see_adds_changes_and_deletes_after_the_list() {
    let server = server();
    server.put(slo("before"));
    let api = slos(&server);
    let writer = reflector::store::Writer::<DynamicObject>::new(slo_resource());
    let reader = writer.as_reader();
    let mut events = reflector(writer, watcher(api.clone(), watcher::Config::default())).boxed();
    assert_eq!(next(&mut events).await, "Init");
    assert_eq!(next(&mut events).await, "InitApply before");
    assert_eq!(next(&mut events).await, "InitDone");
    create(&api, "after").await;
    assert_eq!(next(&mut events).await, "Apply after");
    let patch = json!({"spec": {"objective": 99.0}});
    api.patch("after", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    assert_eq!(next(&mut events).await, "Apply after");
    api.delete("before", &DeleteParams::default())
        .await
        .unwrap();
    assert_eq!(next(&mut events).await, "Delete before");
    let cached: Vec<_> = reader.state();
    assert_eq!(cached.len(), 1);
    assert_eq!(cached[0].data["spec"]["objective"], 99.0);
}

#[tokio::test]
async fn a_watch_from_a_compacted_version_gets_410_and_the_watcher_lists_again() {
    let server = ApiServer::start_with(Config {
        rbac: None,
        log_capacity: 3,
        ..Config::default()
    });
    let api = slos(&server);
    let start = server.resource_version().to_string();
    for i in 0..5 {
        create(&api, &format!("slo-{i}")).await;
    }
    let mut raw = api
        .watch(&WatchParams::default(), &start)
        .await
        .unwrap()
        .boxed();
    match raw.try_next().await.unwrap() {
        Some(WatchEvent::Error(e)) => {
            assert_eq!((e.code, e.reason.as_str()), (410, "Expired"));
            assert!(
                e.message.starts_with("too old resource version"),
                "{}",
                e.message
            );
        }
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }
    // From a current version the watch replays what came after it.
    let now = server.resource_version().to_string();
    let mut raw = api
        .watch(&WatchParams::default(), &now)
        .await
        .unwrap()
        .boxed();
    create(&api, "later").await;
    let patch = json!({"spec": {"objective": 99.0}});
    api.patch("later", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    api.delete("later", &DeleteParams::default()).await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 3 {
        match raw.try_next().await.unwrap().unwrap() {
            WatchEvent::Added(o) => seen.push(("ADDED", o.metadata.resource_version.unwrap())),
            WatchEvent::Modified(o) => {
                seen.push(("MODIFIED", o.metadata.resource_version.unwrap()))
            }
            WatchEvent::Deleted(o) => seen.push(("DELETED", o.metadata.resource_version.unwrap())),
            WatchEvent::Bookmark(_) => {}
            WatchEvent::Error(e) => panic!("{e:?}"),
        }
    }
    let kinds: Vec<&str> = seen.iter().map(|(k, _)| *k).collect();
    assert_eq!(kinds, ["ADDED", "MODIFIED", "DELETED"]);
    let versions: Vec<u64> = seen.iter().map(|(_, rv)| rv.parse().unwrap()).collect();
    assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");
    assert_eq!(
        versions[2],
        server.resource_version(),
        "DELETED carries the deletion's version"
    );
}

#[tokio::test]
async fn bookmarks_carry_the_current_resource_version_and_timeouts_end_watches() {
    let server = server();
    let api = slos(&server);
    create(&api, "a").await;
    let rv = server.resource_version();
    let params = WatchParams::default().timeout(2);
    let mut raw = api.watch(&params, &rv.to_string()).await.unwrap().boxed();
    server.put(json!({"apiVersion": "apps/v1", "kind": "Deployment",
                      "metadata": {"name": "other-kind", "namespace": "shop"}}));
    match raw.try_next().await.unwrap() {
        Some(WatchEvent::Bookmark(b)) => {
            assert_eq!(
                b.metadata.resource_version,
                (rv + 1).to_string(),
                "includes others' writes"
            )
        }
        other => panic!("expected a BOOKMARK, got {other:?}"),
    }
    let rest = tokio::time::timeout(Duration::from_secs(5), raw.try_collect::<Vec<_>>()).await;
    assert!(rest.is_ok(), "timeoutSeconds=2 ends the stream");
}

#[tokio::test]
async fn streaming_lists_send_initial_events_then_the_end_bookmark() {
    let server = server();
    server.put(slo("a"));
    server.put(slo("b"));
    let api = slos(&server);
    let config = watcher::Config::default().streaming_lists();
    let mut events = watcher(api.clone(), config).boxed();
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(next(&mut events).await);
    }
    assert_eq!(seen, ["Init", "InitApply a", "InitApply b", "InitDone"]);
    create(&api, "c").await;
    assert_eq!(next(&mut events).await, "Apply c");
}

#[tokio::test]
async fn metadata_requests_get_partial_object_metadata() {
    let server = server();
    let mut labelled = slo("checkout");
    labelled["metadata"]["labels"] = json!({"team": "shop"});
    server.put(labelled);
    let api = slos(&server);
    let meta = api.get_metadata("checkout").await.unwrap();
    assert_eq!(meta.types.as_ref().unwrap().kind, "PartialObjectMetadata");
    assert_eq!(meta.metadata.labels.unwrap()["team"], "shop");
    let list = api.list_metadata(&ListParams::default()).await.unwrap();
    assert_eq!(list.types.kind, "PartialObjectMetadataList");
    assert_eq!(list.items[0].metadata.name.as_deref(), Some("checkout"));

    // kube 5's metadata watcher: an Api of PartialObjectMeta sends the metadata Accept headers.
    let meta_api = Api::<PartialObjectMeta<DynamicObject>>::namespaced_with(
        server.client(),
        "shop",
        &slo_resource(),
    );
    let mut stream = kube::runtime::WatchStreamExt::applied_objects(watcher(
        meta_api,
        watcher::Config::default(),
    ))
    .boxed();
    let first = stream.try_next().await.unwrap().unwrap();
    assert_eq!(first.metadata.name.as_deref(), Some("checkout"));
    server.put(slo("payments"));
    let second = stream.try_next().await.unwrap().unwrap();
    assert_eq!(second.metadata.name.as_deref(), Some("payments"));
    let types = second.types.unwrap();
    assert_eq!(
        (types.api_version.as_str(), types.kind.as_str()),
        ("meta.k8s.io/v1", "PartialObjectMetadata")
    );
}

#[tokio::test]
async fn label_selectors_filter_lists_and_watches() {
    let server = server();
    for (name, labels) in [
        ("a", json!({"tier": "web", "env": "prod"})),
        ("b", json!({"tier": "db"})),
        ("c", json!({})),
    ] {
        let mut object = slo(name);
        object["metadata"]["labels"] = labels;
        server.put(object);
    }
    let api = slos(&server);
    let names = async |selector: &str| {
        let list = api
            .list(&ListParams::default().labels(selector))
            .await
            .unwrap();
        let names: Vec<String> = list
            .items
            .into_iter()
            .map(|o| o.metadata.name.unwrap())
            .collect();
        names
    };
    assert_eq!(names("tier=web").await, ["a"]);
    assert_eq!(names("tier==db").await, ["b"]);
    assert_eq!(names("tier!=web").await, ["b", "c"]);
    assert_eq!(names("tier in (web,db)").await, ["a", "b"]);
    assert_eq!(names("tier notin (web)").await, ["b", "c"]);
    assert_eq!(names("env").await, ["a"]);
    assert_eq!(names("!env").await, ["b", "c"]);
    assert_eq!(names("tier=web,env=prod").await, ["a"]);
    let by_name = api
        .list(&ListParams::default().fields("metadata.name=b"))
        .await
        .unwrap();
    assert_eq!(by_name.items.len(), 1);

    // An object that stops matching leaves a selected watch as DELETED, one that starts
    // matching enters it as ADDED.
    let rv = server.resource_version().to_string();
    let mut watch = api
        .watch(&WatchParams::default().labels("tier=web"), &rv)
        .await
        .unwrap()
        .boxed();
    for (name, tier) in [("a", "cache"), ("b", "web")] {
        let patch = json!({"metadata": {"labels": {"tier": tier}}});
        api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
    }
    match watch.try_next().await.unwrap().unwrap() {
        WatchEvent::Deleted(o) => {
            assert_eq!(
                o.metadata.labels.unwrap()["tier"],
                "web",
                "the last matching state"
            )
        }
        other => panic!("expected DELETED, got {other:?}"),
    }
    match watch.try_next().await.unwrap().unwrap() {
        WatchEvent::Added(o) => assert_eq!(o.metadata.name.as_deref(), Some("b")),
        other => panic!("expected ADDED, got {other:?}"),
    }
}

#[tokio::test]
async fn lists_page_through_a_consistent_snapshot_with_limit_and_continue() {
    let server = server();
    for i in 0..1200 {
        server.put(slo(&format!("slo-{i:04}")));
    }
    let api = slos(&server);
    let mut params = ListParams::default().limit(500);
    let mut seen = Vec::new();
    let mut versions = Vec::new();
    loop {
        let page = api.list(&params).await.unwrap();
        if seen.is_empty() {
            // Created after the first page: not in the snapshot the next pages come from.
            server.put(slo("slo-0600x"));
            assert_eq!(page.metadata.remaining_item_count, Some(700));
        }
        versions.push(page.metadata.resource_version.clone().unwrap());
        seen.extend(page.items.into_iter().map(|o| o.metadata.name.unwrap()));
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => break,
        }
    }
    assert_eq!(versions.len(), 3);
    assert!(versions.iter().all(|v| *v == versions[0]), "{versions:?}");
    assert_eq!(seen.len(), 1200);
    assert_eq!(
        (seen[0].as_str(), seen[1199].as_str()),
        ("slo-0000", "slo-1199")
    );
    let all = api.list(&ListParams::default()).await.unwrap();
    assert_eq!(all.items.len(), 1201);
    let stale = ListParams::default().limit(10).continue_token("1.999.10");
    assert_eq!(super::api_error(api.list(&stale).await).code, 410);
}
