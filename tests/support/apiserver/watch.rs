//! WATCH: a chunked stream of newline-delimited `{"type":...,"object":...}` events, read from the
//! resource's event log as the watch cache serves them.
//!
//! - resourceVersion unset or "0": synthetic ADDED events for every object first (with
//!   sendInitialEvents=true, then a BOOKMARK annotated `k8s.io/initial-events-end`); an
//!   explicit resourceVersion replays the log after it.
//! - A resourceVersion older than the log answers, like the cacher, an ERROR event with a 410
//!   Expired Status ("too old resource version") in a 200 stream: "once we have passed
//!   authn/authz/admission, and successfully parsed a resource version, other errors must fail
//!   with a watch event of type ERROR, rather than a directly returned error" (cacher.go). kube's
//!   watcher answers that by listing again.
//! - A selector is applied to both states of a change (cacheWatcher.convertToWatchEvent): an
//!   object that starts matching arrives as ADDED, one that stops matching leaves as DELETED
//!   (its previous state, at the event's resourceVersion).
//! - BOOKMARKs (allowWatchBookmarks=true) every `bookmark_interval`, with the resourceVersion up
//!   to which this watcher has seen everything; timeoutSeconds ends the stream.
//! - A watcher that falls behind the log is closed, as the API server closes slow watchers.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::response::Response;
use serde_json::json;
use tokio::sync::watch;
use tokio::time::{Instant, sleep_until};

use super::Shared;
use super::load::Guard;
use super::read::Scope;
use super::status::ApiError;
use super::store::{Event, EventType, Stored};

pub struct WatchRequest {
    pub ti: usize,
    pub scope: Scope,
    pub metadata_only: bool,
    pub bookmarks: bool,
    pub timeout: Duration,
    /// `None`: start now with the current objects as ADDED; else replay after this version.
    pub after: Option<u64>,
    pub send_initial_events: bool,
}

struct Watching {
    shared: Arc<Shared>,
    req: WatchRequest,
    _open: Guard,
    cursor: u64,
    initial: VecDeque<Arc<Stored>>,
    end_bookmark: Option<u64>,
    rx: watch::Receiver<u64>,
    deadline: Instant,
    next_bookmark: Instant,
    interval: Duration,
    kind: (String, String),
    done: bool,
}

/// Where a watch starts, read under the lock.
struct Start {
    cursor: u64,
    initial: VecDeque<Arc<Stored>>,
    rx: watch::Receiver<u64>,
    kind: (String, String),
    /// The ERROR event that ends a watch from a compacted resourceVersion.
    expired: Option<Bytes>,
}

fn start(shared: &Shared, req: &WatchRequest) -> Result<Start, ApiError> {
    let store = shared.store.lock().unwrap();
    let table = store.table(req.ti).ok_or_else(ApiError::no_resource)?;
    let kind = if req.metadata_only {
        (
            "meta.k8s.io/v1".to_string(),
            "PartialObjectMetadata".to_string(),
        )
    } else {
        (table.def.api_version(), table.def.kind.clone())
    };
    let mut expired = None;
    let (cursor, initial) = match req.after {
        None => (store.rv, req.scope.candidates(table).into_iter().collect()),
        Some(rv) if rv < table.floor => {
            let message = format!("too old resource version: {rv} ({})", table.floor);
            let status = ApiError::expired(message).to_json();
            expired = Some(line_of("ERROR", &Bytes::from(status.to_string())));
            (rv, VecDeque::new())
        }
        Some(rv) => (rv, VecDeque::new()),
    };
    Ok(Start {
        cursor,
        initial,
        rx: table.notify.subscribe(),
        kind,
        expired,
    })
}

pub fn respond(shared: Arc<Shared>, req: WatchRequest) -> Response {
    let start = match start(&shared, &req) {
        Ok(s) => s,
        Err(e) => return super::http::error_response(&e),
    };
    let interval = shared.settings.lock().unwrap().bookmark_interval;
    let now = Instant::now();
    let first = start.expired;
    let state = Watching {
        _open: shared.load.open_watch(),
        shared,
        done: first.is_some(),
        cursor: start.cursor,
        initial: start.initial,
        end_bookmark: (req.after.is_none() && req.send_initial_events).then_some(start.cursor),
        rx: start.rx,
        deadline: now + req.timeout,
        next_bookmark: now + interval,
        interval,
        kind: start.kind,
        req,
    };
    let head = futures::stream::iter(first.map(Ok::<Bytes, Infallible>));
    let rest = futures::stream::unfold(state, |mut s| async move {
        s.next_chunk().await.map(|c| (Ok(c), s))
    });
    let body = Body::from_stream(futures::StreamExt::chain(head, rest));
    Response::builder()
        .header("content-type", "application/json")
        .body(body)
        .expect("a response")
}

fn line_of(kind: &str, object: &Bytes) -> Bytes {
    let mut out = Vec::with_capacity(object.len() + 32);
    out.extend_from_slice(br#"{"type":""#);
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(br#"","object":"#);
    out.extend_from_slice(object);
    out.extend_from_slice(b"}\n");
    Bytes::from(out)
}

impl Watching {
    async fn next_chunk(&mut self) -> Option<Bytes> {
        loop {
            // timeoutSeconds ends the watch even while events keep coming.
            if self.done || Instant::now() >= self.deadline {
                return None;
            }
            if let Some(chunk) = self.initial_chunk() {
                return Some(chunk);
            }
            if let Some(rv) = self.end_bookmark.take() {
                return Some(self.bookmark(rv, true));
            }
            self.rx.borrow_and_update();
            match self.poll_log() {
                Some(Some(chunk)) => return Some(chunk),
                Some(None) => continue,
                None => {}
            }
            if self.done {
                return None;
            }
            if let Some(chunk) = self.wait().await {
                return Some(chunk);
            }
        }
    }

    fn object<'a>(&self, stored: &'a Stored) -> &'a Bytes {
        if self.req.metadata_only {
            stored.meta_json()
        } else {
            stored.json()
        }
    }

    fn initial_chunk(&mut self) -> Option<Bytes> {
        let mut out = Vec::new();
        while out.len() < 256 * 1024 {
            let Some(object) = self.initial.pop_front() else {
                break;
            };
            if self.req.scope.matches(&object) {
                out.extend_from_slice(&line_of("ADDED", self.object(&object)));
            }
        }
        (!out.is_empty()).then(|| Bytes::from(out))
    }

    /// `None`: nothing new; `Some(None)`: events that this watcher filters out; `Some(chunk)`.
    fn poll_log(&mut self) -> Option<Option<Bytes>> {
        let events: Vec<Arc<Event>> = {
            let store = self.shared.store.lock().unwrap();
            let Some(table) = store.table(self.req.ti) else {
                self.done = true;
                return None;
            };
            let start = table.log.partition_point(|e| e.rv <= self.cursor);
            if start == 0 && table.floor > self.cursor {
                // Fell behind the log: closed, like a watcher too slow to keep up.
                self.done = true;
                return None;
            }
            if start == table.log.len() {
                self.cursor = self.cursor.max(store.rv);
                return None;
            }
            table.log.range(start..).take(512).cloned().collect()
        };
        self.cursor = events.last().map_or(self.cursor, |e| e.rv);
        let mut out = Vec::new();
        for event in &events {
            if let Some(line) = self.convert(event) {
                out.extend_from_slice(&line);
            }
        }
        Some((!out.is_empty()).then(|| Bytes::from(out)))
    }

    fn convert(&self, event: &Event) -> Option<Bytes> {
        let now = event.kind != EventType::Deleted && self.req.scope.matches(&event.object);
        let before = event
            .prev
            .as_ref()
            .is_some_and(|p| self.req.scope.matches(p));
        match (now, before) {
            (true, false) => Some(line_of("ADDED", self.object(&event.object))),
            (true, true) => Some(line_of("MODIFIED", self.object(&event.object))),
            (false, true) if event.kind == EventType::Deleted => {
                Some(line_of("DELETED", self.object(&event.object)))
            }
            (false, true) => Some(line_of("DELETED", self.object(&event.prev_as_deleted()))),
            (false, false) => None,
        }
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Bytes {
        let mut object = json!({"kind": self.kind.1, "apiVersion": self.kind.0,
                                "metadata": {"resourceVersion": rv.to_string()}});
        if initial_end {
            object["metadata"]["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        line_of("BOOKMARK", &Bytes::from(object.to_string()))
    }

    /// Moves the cursor to the current resourceVersion when this resource has no events after
    /// it, so bookmarks carry other resources' writes too; false when events are pending.
    fn caught_up(&mut self) -> bool {
        let store = self.shared.store.lock().unwrap();
        let Some(table) = store.table(self.req.ti) else {
            return false;
        };
        if table.log.back().is_some_and(|e| e.rv > self.cursor) {
            return false;
        }
        self.cursor = self.cursor.max(store.rv);
        true
    }

    /// Waits for an event, a bookmark or the end; returns a bookmark when one is due.
    async fn wait(&mut self) -> Option<Bytes> {
        if Instant::now() >= self.deadline {
            self.done = true;
            return None;
        }
        let bookmarks = self.req.bookmarks;
        tokio::select! {
            changed = self.rx.changed() => {
                if changed.is_err() {
                    self.done = true;
                }
                None
            }
            _ = sleep_until(self.next_bookmark), if bookmarks => {
                self.next_bookmark = Instant::now() + self.interval;
                self.caught_up().then(|| self.bookmark(self.cursor, false))
            }
            _ = sleep_until(self.deadline) => {
                self.done = true;
                None
            }
        }
    }
}
