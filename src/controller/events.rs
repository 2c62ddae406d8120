//! Kubernetes Events (events.k8s.io/v1) about SLOs and rollback targets.
//!
//! kube's `Recorder` keeps a copy of every Event it published, about 2.7 KiB each, and drops
//! old ones only when it publishes again: a replica that starts with 10,000 SLOs and then stays
//! quiet keeps 10,000 `RulesCreated` Events (26 MiB) for good. This one remembers only what it
//! needs to count a repeat into the first Event's `series` (as kube-apiserver clients do): the
//! Event's name, the count and when it was last seen, for at most `REMEMBERED` recent Events.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event as KubeEvent, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType};
use kube::{Api, Client};
use serde_json::json;

/// A repeat within this time is counted into the first Event (kube's Recorder uses 6 minutes).
const REPEAT_WITHIN: Duration = Duration::from_secs(6 * 60);
/// Recent Events remembered for counting repeats; the oldest is forgotten first.
const REMEMBERED: usize = 1024;

/// The longest note kube-apiserver accepts, in bytes of UTF-8 (not characters).
pub const NOTE_LIMIT: usize = 1024;

/// A note cut to [`NOTE_LIMIT`] bytes, at a character boundary.
pub fn cut_note(note: &str) -> String {
    let mut end = note.len().min(NOTE_LIMIT);
    while !note.is_char_boundary(end) {
        end -= 1;
    }
    note[..end].to_string()
}

/// What makes two Events the same happening: the object, and type, reason and action.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Happening {
    namespace: String,
    kind: String,
    name: String,
    uid: String,
    warning: bool,
    reason: String,
    action: String,
}

#[derive(Debug)]
struct Published {
    name: String,
    count: i32,
    last: Instant,
}

/// Publishes Events under one reporting controller and instance.
pub struct Publisher {
    client: Client,
    controller: String,
    instance: String,
    recent: Mutex<HashMap<Happening, Published>>,
}

impl Publisher {
    pub fn new(client: Client, controller: &str, instance: Option<String>) -> Publisher {
        Publisher {
            client,
            controller: controller.to_string(),
            instance: instance.unwrap_or_else(|| controller.to_string()),
            recent: Mutex::default(),
        }
    }

    /// Creates the Event, or counts a repeat of one published lately into its series.
    pub async fn publish(
        &self,
        ev: &Event,
        regarding: &ObjectReference,
    ) -> Result<(), kube::Error> {
        let namespace = regarding
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let api: Api<KubeEvent> = Api::namespaced(self.client.clone(), &namespace);
        let happening = Happening {
            namespace,
            kind: regarding.kind.clone().unwrap_or_default(),
            name: regarding.name.clone().unwrap_or_default(),
            uid: regarding.uid.clone().unwrap_or_default(),
            warning: matches!(ev.type_, EventType::Warning),
            reason: ev.reason.clone(),
            action: ev.action.clone(),
        };
        let now = Timestamp::now();
        if let Some((name, count)) = self.repeat(&happening) {
            let series = EventSeries {
                count,
                last_observed_time: MicroTime(now),
            };
            // Only the series: kube-apiserver refuses any change to an Event's note (`message`
            // is immutable through events.k8s.io/v1), so the first note stays, as with
            // client-go's recorder.
            let patch = json!({"series": series});
            api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
            return Ok(());
        }
        let event = self.event(ev, regarding, now);
        let created = api.create(&PostParams::default(), &event).await?;
        self.remember(happening, created.metadata.name.unwrap_or_default());
        Ok(())
    }

    /// A repeat of a recent Event: its name and the count it has now.
    fn repeat(&self, happening: &Happening) -> Option<(String, i32)> {
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        let seen = recent.get_mut(happening)?;
        if seen.last.elapsed() > REPEAT_WITHIN {
            recent.remove(happening);
            return None;
        }
        seen.count += 1;
        seen.last = Instant::now();
        Some((seen.name.clone(), seen.count))
    }

    fn remember(&self, happening: Happening, name: String) {
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        if recent.len() >= REMEMBERED {
            recent.retain(|_, p| p.last.elapsed() <= REPEAT_WITHIN);
        }
        if recent.len() >= REMEMBERED {
            let oldest = recent
                .iter()
                .min_by_key(|(_, p)| p.last)
                .map(|(h, _)| h.clone());
            if let Some(oldest) = oldest {
                recent.remove(&oldest);
            }
        }
        let published = Published {
            name,
            count: 1,
            last: Instant::now(),
        };
        recent.insert(happening, published);
    }

    /// Publishes a Warning with this reason, action and note (cut to the 1 KiB the API allows);
    /// a failure to publish is logged, never an error of the caller's.
    pub async fn warn(&self, reason: &str, action: &str, note: &str, regarding: &ObjectReference) {
        let event = Event {
            type_: EventType::Warning,
            reason: reason.to_string(),
            note: Some(note.to_string()),
            action: action.to_string(),
            secondary: None,
        };
        if let Err(e) = self.publish(&event, regarding).await {
            tracing::warn!(
                reason,
                name = regarding.name.as_deref().unwrap_or_default(),
                error = %e,
                "could not publish event"
            );
        }
    }

    /// How many Events are remembered for counting repeats.
    pub fn remembered(&self) -> usize {
        self.recent.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    fn event(&self, ev: &Event, regarding: &ObjectReference, now: Timestamp) -> KubeEvent {
        let base = regarding.name.as_deref().unwrap_or(&self.controller);
        KubeEvent {
            metadata: ObjectMeta {
                namespace: regarding.namespace.clone(),
                name: Some(format!("{base}.{:x}", now.as_nanosecond())),
                ..ObjectMeta::default()
            },
            action: Some(ev.action.clone()),
            reason: Some(ev.reason.clone()),
            note: ev.note.as_deref().map(cut_note),
            type_: Some(
                if matches!(ev.type_, EventType::Warning) {
                    "Warning"
                } else {
                    "Normal"
                }
                .into(),
            ),
            event_time: Some(MicroTime(now)),
            regarding: Some(regarding.clone()),
            related: ev.secondary.clone(),
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.clone()),
            ..KubeEvent::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_note_is_cut_to_the_byte_limit_at_a_character_boundary() {
        assert_eq!(cut_note("short"), "short");
        let ascii = "x".repeat(2000);
        assert_eq!(cut_note(&ascii).len(), NOTE_LIMIT);
        // Two bytes each: 512 whole characters fit.
        let accented = "é".repeat(1000);
        assert_eq!(cut_note(&accented), "é".repeat(512));
        // Three bytes each: 341 characters (1,023 bytes), never half of one.
        let cjk = "語".repeat(1000);
        assert_eq!(cut_note(&cjk), "語".repeat(341));
    }
}
