//! Serving a parsed resource request: resolve the resource, then read, watch or write.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use serde_json::json;

use super::access;
use super::apply::{apply, parse_body};
use super::delete::{DeleteOptions, Deleted, delete};
use super::http::{Req, Target};
use super::read::{ListRequest, Scope, get, list};
use super::select::{FieldSelector, LabelSelector};
use super::status::ApiError;
use super::store::Stored;
use super::verbs::{Call, create, patch, replace};
use super::watch::WatchRequest;
use super::{Shared, Store};

pub enum Served {
    Now(u16, Bytes),
    Watch(WatchRequest),
}

/// The served resource's index, or 404 as for a path the server does not serve.
fn resolve(store: &Store, t: &Target, verb: &str) -> Result<usize, ApiError> {
    let ti = store
        .find(&t.group, &t.version, &t.plural)
        .ok_or_else(ApiError::no_resource)?;
    let def = &store.table(ti).expect("served").def;
    let sub_ok = match t.sub.as_deref() {
        None => true,
        Some(sub) => sub == "status" && def.status,
    };
    let scope_ok = match (def.namespaced, &t.namespace) {
        (false, Some(_)) => false,
        (true, None) => matches!(verb, "list" | "watch"),
        _ => true,
    };
    if !sub_ok || !scope_ok {
        return Err(if verb == "create" && sub_ok {
            ApiError::method_not_allowed()
        } else {
            ApiError::no_resource()
        });
    }
    Ok(ti)
}

fn scope(req: &Req, t: &Target) -> Result<Scope, ApiError> {
    Ok(Scope {
        namespace: t.namespace.clone(),
        labels: LabelSelector::parse(req.param("labelSelector").unwrap_or_default())
            .map_err(ApiError::bad_request)?,
        fields: FieldSelector::parse_for(req.param("fieldSelector").unwrap_or_default(), &t.plural)
            .map_err(ApiError::bad_request)?,
    })
}

pub fn serve(shared: &Arc<Shared>, req: &Req, t: &Target, verb: &str) -> Result<Served, ApiError> {
    let ti = resolve(&shared.store.lock().unwrap(), t, verb)?;
    let metadata_only = req.accept.contains("as=PartialObjectMetadata");
    let key = (
        t.namespace.clone().unwrap_or_default(),
        t.name.clone().unwrap_or_default(),
    );
    match verb {
        "get" => Ok(Served::Now(
            200,
            get(&shared.store, ti, &key, metadata_only)?,
        )),
        "list" => {
            let request = ListRequest {
                ti,
                scope: scope(req, t)?,
                limit: req.param("limit").and_then(|l| l.parse().ok()),
                continue_token: req.param("continue").map(str::to_string),
                metadata_only,
            };
            Ok(Served::Now(200, list(&shared.store, &request)?))
        }
        "watch" => {
            let after = match req.param("resourceVersion") {
                None | Some("0") => None,
                Some(rv) => Some(rv.parse().map_err(|_| {
                    ApiError::bad_request(format!("invalid resourceVersion {rv:?}"))
                })?),
            };
            let timeout = req
                .param("timeoutSeconds")
                .and_then(|s| s.parse().ok())
                .unwrap_or(1800);
            Ok(Served::Watch(WatchRequest {
                ti,
                scope: scope(req, t)?,
                metadata_only,
                bookmarks: req.flag("allowWatchBookmarks"),
                timeout: Duration::from_secs(timeout),
                after,
                send_initial_events: req.flag("sendInitialEvents"),
            }))
        }
        _ => write(shared, req, t, ti, verb).map(|(code, body)| Served::Now(code, body)),
    }
}

fn call(shared: &Shared, req: &Req, t: &Target, ti: usize) -> Call {
    let features = shared.settings.lock().unwrap().rbac;
    Call {
        ti,
        namespace: t.namespace.clone().unwrap_or_default(),
        name: t.name.clone().unwrap_or_default(),
        status: t.sub.is_some(),
        field_manager: req.param("fieldManager").map(str::to_string),
        user_agent: req.user_agent.clone(),
        force: req.flag("force"),
        dry_run: req.param("dryRun") == Some("All"),
        keep_status: false,
        create_refused: features
            .and_then(|f| access::refusal("POST", &req.path, &req.raw_query, f)),
    }
}

/// A write's answer: the object (serialized once the store is unlocked) or a Status.
enum Answer {
    Object(u16, Arc<Stored>),
    Raw(u16, Bytes),
}

/// A write's body, parsed before the store is locked.
enum Body {
    None,
    Object(serde_json::Value),
}

fn parse(req: &Req, verb: &str) -> Result<Body, ApiError> {
    let json =
        || serde_json::from_slice(&req.body).map_err(|e| ApiError::bad_request(e.to_string()));
    Ok(match verb {
        "create" | "update" => Body::Object(json()?),
        "patch" if req.content_type.starts_with("application/apply-patch") => {
            Body::Object(parse_body(&req.body)?)
        }
        _ => Body::None,
    })
}

fn write(
    shared: &Arc<Shared>,
    req: &Req,
    t: &Target,
    ti: usize,
    verb: &str,
) -> Result<(u16, Bytes), ApiError> {
    let call = call(shared, req, t, ti);
    let body = parse(req, verb)?;
    let answer = {
        let mut store = shared.store.lock().unwrap();
        write_locked(&mut store, req, t, &call, verb, body)?
    };
    // A client asking for metadata only (Api<PartialObjectMeta<K>>) gets it for writes too.
    let metadata_only = req.accept.contains("as=PartialObjectMetadata");
    Ok(match answer {
        Answer::Object(code, o) if metadata_only => (code, o.meta_json().clone()),
        Answer::Object(code, o) => (code, o.json().clone()),
        Answer::Raw(code, body) => (code, body),
    })
}

fn write_locked(
    store: &mut Store,
    req: &Req,
    t: &Target,
    call: &Call,
    verb: &str,
    body: Body,
) -> Result<Answer, ApiError> {
    let written = match (verb, body) {
        ("create", Body::Object(object)) => create(store, call, object)?,
        ("update", Body::Object(object)) => replace(store, call, object)?,
        ("patch", Body::Object(config)) => apply(store, call, config)?,
        ("patch", Body::None) => patch(store, call, &req.content_type, &req.body)?,
        ("delete", _) => {
            let opts =
                DeleteOptions::parse(&req.body, req.param("propagationPolicy"), call.dry_run)?;
            return Ok(match delete(store, call.ti, &call.key(), &opts)? {
                Deleted::Pending(object) => Answer::Object(200, object),
                Deleted::Gone(object) => Answer::Raw(200, success(store, call.ti, &object.value)),
            });
        }
        ("deletecollection", _) => {
            let (code, body) = delete_collection(store, req, t, call.ti, call.dry_run)?;
            return Ok(Answer::Raw(code, body));
        }
        _ => return Err(ApiError::method_not_allowed()),
    };
    let created = written.created && matches!(verb, "create" | "patch");
    Ok(Answer::Object(
        if created { 201 } else { 200 },
        written.object,
    ))
}

/// The Status a DELETE answers when the object is gone at once.
fn success(store: &Store, ti: usize, object: &serde_json::Value) -> Bytes {
    let def = &store.table(ti).expect("served").def;
    let details = json!({"name": object["metadata"]["name"], "group": def.group, "kind": def.plural,
                         "uid": object["metadata"]["uid"]});
    let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                        "details": details});
    Bytes::from(status.to_string())
}

fn delete_collection(
    store: &mut Store,
    req: &Req,
    t: &Target,
    ti: usize,
    dry_run: bool,
) -> Result<(u16, Bytes), ApiError> {
    let scope = scope(req, t)?;
    let table = store.table(ti).ok_or_else(ApiError::no_resource)?;
    let keys: Vec<_> = scope
        .candidates(table)
        .iter()
        .filter(|o| scope.matches(o))
        .map(|o| {
            let m = &o.value["metadata"];
            (
                m["namespace"].as_str().unwrap_or_default().to_string(),
                m["name"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let opts = DeleteOptions {
        dry_run,
        ..DeleteOptions::default()
    };
    for key in keys {
        let _ = delete(store, ti, &key, &opts);
    }
    let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"});
    Ok((200, Bytes::from(status.to_string())))
}
