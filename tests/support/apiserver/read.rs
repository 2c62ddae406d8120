//! GET and LIST. Lists are consistent snapshots: the first page of a paginated list keeps the
//! objects it was taken from, and `continue` pages through that snapshot, as etcd serves later
//! pages at the first page's resourceVersion. Snapshots expire after five minutes (etcd's default
//! compaction interval); an expired token answers 410 Expired. Objects are serialized once per
//! version and shared, and the lock is held only to collect pointers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use serde_json::Value;

use super::select::{FieldSelector, LabelSelector};
use super::status::ApiError;
use super::store::{Key, Snapshot, Store, Stored, Table};

/// The objects a list pages through.
type Items = Arc<Vec<Arc<Stored>>>;

const SNAPSHOT_TTL: Duration = Duration::from_secs(300);
const MAX_SNAPSHOTS: usize = 256;

pub fn get(
    store: &Mutex<Store>,
    ti: usize,
    key: &Key,
    metadata_only: bool,
) -> Result<Bytes, ApiError> {
    let object = {
        let store = store.lock().unwrap();
        let table = store.table(ti).ok_or_else(ApiError::no_resource)?;
        match table.objects.get(key) {
            Some(o) => o.clone(),
            None => return Err(ApiError::not_found(&table.def, &key.1)),
        }
    };
    Ok(if metadata_only {
        object.meta_json().clone()
    } else {
        object.json().clone()
    })
}

/// What a list (or a watch) selects.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    /// `None`: all namespaces (or a cluster-scoped resource).
    pub namespace: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
}

impl Scope {
    pub fn matches(&self, object: &Stored) -> bool {
        let ns = object.value["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default();
        self.namespace.as_deref().is_none_or(|n| n == ns)
            && self.labels.matches(object.labels())
            && self.fields.matches(&object.value)
    }

    /// The objects of the namespace (all when none), by key order: namespace, then name.
    pub fn candidates(&self, table: &Table) -> Vec<Arc<Stored>> {
        match &self.namespace {
            Some(ns) => {
                if let Some(name) = self.fields.pinned_name() {
                    return table
                        .objects
                        .get(&(ns.clone(), name.to_string()))
                        .cloned()
                        .into_iter()
                        .collect();
                }
                let start = (ns.clone(), String::new());
                table
                    .objects
                    .range(start..)
                    .take_while(|((n, _), _)| n == ns)
                    .map(|(_, o)| o.clone())
                    .collect()
            }
            None => table.objects.values().cloned().collect(),
        }
    }
}

pub struct ListRequest {
    pub ti: usize,
    pub scope: Scope,
    pub limit: Option<usize>,
    pub continue_token: Option<String>,
    pub metadata_only: bool,
}

/// One page of a list, collected under the lock.
struct Page {
    items: Vec<Arc<Stored>>,
    rv: u64,
    next: Option<String>,
    remaining: Option<usize>,
    kind: String,
    api_version: String,
}

pub fn list(store: &Mutex<Store>, req: &ListRequest) -> Result<Bytes, ApiError> {
    let page = {
        let mut store = store.lock().unwrap();
        page(&mut store, req)?
    };
    Ok(render(&page, req.metadata_only))
}

fn page(store: &mut Store, req: &ListRequest) -> Result<Page, ApiError> {
    expire(&mut store.snapshots);
    let def = store
        .table(req.ti)
        .ok_or_else(ApiError::no_resource)?
        .def
        .clone();
    let (items, rv, start) = source(store, req)?;
    let limit = req.limit.filter(|l| *l > 0).unwrap_or(usize::MAX);
    let mut page = Vec::new();
    let mut at = start;
    while at < items.len() && page.len() < limit {
        if req.scope.matches(&items[at]) {
            page.push(items[at].clone());
        }
        at += 1;
    }
    let more = items[at..].iter().any(|o| req.scope.matches(o));
    let next = more.then(|| token(store, req, &items, rv, at));
    // remainingItemCount is only known without selectors, as on a real API server.
    let plain = req.scope.labels.is_empty() && req.scope.fields.is_empty();
    let (kind, api_version) = if req.metadata_only {
        (
            "PartialObjectMetadataList".to_string(),
            "meta.k8s.io/v1".to_string(),
        )
    } else {
        (format!("{}List", def.kind), def.api_version())
    };
    Ok(Page {
        items: page,
        rv,
        next,
        remaining: (more && plain).then(|| items.len() - at),
        kind,
        api_version,
    })
}

/// The list's JSON, from the objects' shared serializations.
fn render(page: &Page, metadata_only: bool) -> Bytes {
    let mut meta = serde_json::json!({"resourceVersion": page.rv.to_string()});
    if let Some(next) = &page.next {
        meta["continue"] = Value::String(next.clone());
    }
    if let Some(n) = page.remaining {
        meta["remainingItemCount"] = n.into();
    }
    let object = |o: &Arc<Stored>| {
        if metadata_only {
            o.meta_json().clone()
        } else {
            o.json().clone()
        }
    };
    let items: Vec<Bytes> = page.items.iter().map(object).collect();
    let mut out = Vec::with_capacity(128 + items.iter().map(|b| b.len() + 1).sum::<usize>());
    let (kind, api_version) = (&page.kind, &page.api_version);
    let head =
        format!(r#"{{"kind":"{kind}","apiVersion":"{api_version}","metadata":{meta},"items":["#);
    out.extend_from_slice(head.as_bytes());
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(item);
    }
    out.extend_from_slice(b"]}");
    Bytes::from(out)
}

/// The objects to page through, their resourceVersion and where this page starts.
fn source(store: &Store, req: &ListRequest) -> Result<(Items, u64, usize), ApiError> {
    let Some(token) = &req.continue_token else {
        let table = store.table(req.ti).ok_or_else(ApiError::no_resource)?;
        return Ok((Arc::new(req.scope.candidates(table)), store.rv, 0));
    };
    let parsed: Option<(u64, u64, usize)> = (|| {
        let mut parts = token.split('.');
        let rv = parts.next()?.parse().ok()?;
        let id = parts.next()?.parse().ok()?;
        let at = parts.next()?.parse().ok()?;
        Some((rv, id, at))
    })();
    let Some((rv, id, at)) = parsed else {
        return Err(ApiError::bad_request(format!(
            "invalid continue token {token:?}"
        )));
    };
    match store.snapshots.get(&id) {
        Some(s) if s.ti == req.ti && s.rv == rv => Ok((s.items.clone(), rv, at)),
        _ => Err(ApiError::expired(
            "The provided continue parameter is too old to display a consistent list result. You \
             can start a new list without the continue parameter.",
        )),
    }
}

/// A continue token `rv.snapshot.offset`, keeping the snapshot for the next pages.
fn token(
    store: &mut Store,
    req: &ListRequest,
    items: &Arc<Vec<Arc<Stored>>>,
    rv: u64,
    at: usize,
) -> String {
    let existing = store
        .snapshots
        .iter()
        .find(|(_, s)| Arc::ptr_eq(&s.items, items))
        .map(|(id, _)| *id);
    let id = existing.unwrap_or_else(|| {
        let id = store.next_snapshot;
        store.next_snapshot += 1;
        let snapshot = Snapshot {
            ti: req.ti,
            rv,
            items: items.clone(),
            taken: Instant::now(),
        };
        store.snapshots.insert(id, snapshot);
        id
    });
    format!("{rv}.{id}.{at}")
}

fn expire(snapshots: &mut HashMap<u64, Snapshot>) {
    snapshots.retain(|_, s| s.taken.elapsed() < SNAPSHOT_TTL);
    while snapshots.len() > MAX_SNAPSHOTS {
        let oldest = snapshots
            .iter()
            .min_by_key(|(_, s)| s.taken)
            .map(|(id, _)| *id);
        match oldest {
            Some(id) => snapshots.remove(&id),
            None => break,
        };
    }
}
