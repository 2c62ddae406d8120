//! A Warning Event on each SLO this version cannot read (`kubectl describe` shows why it has no
//! rules), published by the leader once per resourceVersion; the cache left the SLO out.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;

use super::Context;
use crate::slo_cache::{SloCache, Unreadable};

/// Looks for newly unreadable SLOs every few seconds until the task is aborted.
pub async fn report(cache: Arc<SloCache>, ctx: Arc<Context>) {
    let mut ticker = tokio::time::interval(Duration::from_secs(5));
    loop {
        ticker.tick().await;
        for unreadable in cache.take_unreported() {
            publish(&ctx, &unreadable).await;
        }
    }
}

async fn publish(ctx: &Context, unreadable: &Unreadable) {
    let regarding = ObjectReference {
        api_version: Some(crate::api::API_VERSION.to_string()),
        kind: Some(crate::api::KIND.to_string()),
        name: Some(unreadable.name.clone()),
        namespace: Some(unreadable.namespace.clone()),
        uid: Some(unreadable.uid.clone()).filter(|u| !u.is_empty()),
        resource_version: Some(unreadable.resource_version.clone()),
        ..ObjectReference::default()
    };
    let note = format!(
        "This version of plimsoll cannot read this ServiceLevelObjective ({}), so it is left out: \
         no rules, status or actions until the field is fixed or a version that knows it runs.",
        unreadable.problem
    );
    ctx.recorder
        .warn("Unreadable", "Read", &note, &regarding)
        .await;
}
