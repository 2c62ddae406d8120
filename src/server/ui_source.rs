//! The web UI's view of the cluster: this replica's SLO cache for the SLOs and their status
//! (every replica serves the same pages), and the API server for an SLO's recent Events.

use std::sync::Arc;

use k8s_openapi::api::events::v1::Event;
use kube::api::ListParams;
use kube::{Api, Client, ResourceExt};

use crate::api::ServiceLevelObjective;
use crate::slo_cache::SloCache;
use crate::ui::detail::{EventLine, Events};
use crate::ui::{Detail, Row, Source};

/// Events shown on an SLO's page.
const EVENTS_SHOWN: usize = 20;

#[derive(Clone)]
pub struct ClusterSource {
    pub slos: Arc<SloCache>,
    pub client: Client,
}

fn row(slo: &ServiceLevelObjective) -> Row {
    Row {
        namespace: slo.namespace().unwrap_or_default(),
        name: slo.name_any(),
        service: slo.spec.service.clone(),
        objective: slo.spec.objective.to_string(),
        window: slo.spec.window.clone(),
        status: slo.status.clone().unwrap_or_default(),
    }
}

/// The object as applied: what the user wrote, without the server's bookkeeping.
fn manifest(slo: &ServiceLevelObjective) -> String {
    let mut shown = ServiceLevelObjective::new(&slo.name_any(), slo.spec.clone());
    shown.metadata.namespace = slo.namespace();
    shown.metadata.labels = slo.metadata.labels.clone();
    shown.metadata.annotations = slo.metadata.annotations.clone().map(|mut a| {
        // The last-applied copy repeats the spec, and may hold what the user never meant to show.
        a.remove("kubectl.kubernetes.io/last-applied-configuration");
        a
    });
    serde_saphyr::to_string(&shown).unwrap_or_default()
}

impl Source for ClusterSource {
    fn rows(&self) -> Vec<Row> {
        self.slos.all().iter().map(|s| row(s)).collect()
    }

    fn detail(&self, namespace: &str, name: &str) -> Option<Detail> {
        let slo = self.slos.find(namespace, name).flatten()?;
        let (model, problem) = match crate::model::validate(&slo) {
            Ok(model) => (Some(model), None),
            Err(errors) => (None, Some(errors.to_string())),
        };
        Some(Detail {
            row: row(&slo),
            slo: model,
            problem,
            uid: slo.uid(),
            source: "this cluster".to_string(),
            manifest: manifest(&slo),
        })
    }

    fn model(&self, namespace: &str, name: &str) -> Option<(crate::model::Slo, Option<String>)> {
        let slo = self.slos.find(namespace, name).flatten()?;
        let model = crate::model::validate(&slo).ok()?;
        Some((model, slo.uid()))
    }

    fn ready(&self) -> bool {
        self.slos.synced()
    }

    /// SLOs the operator cannot decode, with why (they have no row of their own).
    fn problems(&self) -> Vec<String> {
        self.slos
            .unreadable()
            .iter()
            .map(|u| format!("{}/{}: {}", u.namespace, u.name, u.problem))
            .collect()
    }

    async fn events(&self, namespace: &str, name: &str) -> Events {
        let Some(uid) = self
            .slos
            .find(namespace, name)
            .flatten()
            .and_then(|s| s.uid())
        else {
            return Events::Listed(Vec::new());
        };
        let api: Api<Event> = Api::namespaced(self.client.clone(), namespace);
        // kube-apiserver selects events.k8s.io Events by `regarding.*`.
        let params = ListParams::default().fields(&format!("regarding.uid={uid}"));
        match api.list(&params).await {
            Ok(list) => Events::Listed(lines(list.items)),
            Err(e) => Events::Failed(e.to_string()),
        }
    }
}

/// Newest first, at most [`EVENTS_SHOWN`].
fn lines(mut events: Vec<Event>) -> Vec<EventLine> {
    let when = |e: &Event| {
        e.series
            .as_ref()
            .map(|s| s.last_observed_time.0)
            .or(e.event_time.as_ref().map(|t| t.0))
            .or(e.deprecated_last_timestamp.as_ref().map(|t| t.0))
            .or(e.metadata.creation_timestamp.as_ref().map(|t| t.0))
    };
    events.sort_by_key(|e| std::cmp::Reverse(when(e)));
    events
        .iter()
        .take(EVENTS_SHOWN)
        .map(|e| EventLine {
            time: when(e).map(|t| t.to_string()).unwrap_or_default(),
            kind: e.type_.clone().unwrap_or_default(),
            reason: e.reason.clone().unwrap_or_default(),
            note: format!(
                "{}{}",
                e.note.clone().unwrap_or_default(),
                e.series
                    .as_ref()
                    .map(|s| format!(" (x{})", s.count))
                    .unwrap_or_default()
            ),
        })
        .collect()
}
