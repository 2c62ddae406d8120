//! The web UI's view of local mode: the latest round's board, and the skipped manifests.

use super::{Shared, board, table};
use crate::ui::{self, detail::Events};

/// The UI's view of local mode: the latest round's board.
#[derive(Clone)]
pub(super) struct LocalSource(pub(super) Shared);

impl LocalSource {
    fn row(entry: &board::Entry) -> ui::Row {
        let namespace = entry.key.split_once('/').map_or("", |(ns, _)| ns);
        ui::Row {
            namespace: namespace.to_string(),
            name: entry.slo.name.clone(),
            service: entry.slo.service.clone(),
            objective: entry.slo.objective.to_string(),
            window: table::window_text(&entry.slo.window),
            status: entry.status.clone(),
        }
    }
}

impl ui::Source for LocalSource {
    fn rows(&self) -> Vec<ui::Row> {
        let view = self.0.read().unwrap_or_else(|p| p.into_inner());
        view.board.entries.iter().map(Self::row).collect()
    }

    fn detail(&self, namespace: &str, name: &str) -> Option<ui::Detail> {
        let view = self.0.read().unwrap_or_else(|p| p.into_inner());
        let key = format!("{namespace}/{name}");
        let entry = view.board.entries.iter().find(|e| e.key == key)?;
        Some(ui::Detail {
            row: Self::row(entry),
            slo: Some(entry.slo.clone()),
            problem: None,
            // A manifest's own `metadata.uid` is on its rules' series, as in the operator.
            uid: entry.slo.uid.clone(),
            source: entry.location.clone(),
            manifest: entry.manifest.to_string(),
        })
    }

    fn model(&self, namespace: &str, name: &str) -> Option<(crate::model::Slo, Option<String>)> {
        let view = self.0.read().unwrap_or_else(|p| p.into_inner());
        let key = format!("{namespace}/{name}");
        let entry = view.board.entries.iter().find(|e| e.key == key)?;
        Some((entry.slo.clone(), entry.slo.uid.clone()))
    }

    /// The skipped manifests' problems, as `plimsoll validate` words them.
    fn problems(&self) -> Vec<String> {
        let view = self.0.read().unwrap_or_else(|p| p.into_inner());
        view.problems.clone()
    }

    async fn events(&self, _namespace: &str, _name: &str) -> Events {
        Events::NotKept(
            "Local mode keeps no Kubernetes Events: what changed is printed on its terminal each round.",
        )
    }
}
