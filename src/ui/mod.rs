//! The read-only web UI, served by `plimsoll run` (from the replica's SLO cache) and by
//! `plimsoll local` (from its latest round): a list of every SLO and a page per SLO, as
//! server-rendered HTML with inline SVG charts. No script, no assets from elsewhere: the browser
//! talks to nothing but these pages. Charts come from range queries over the SLOs' recorded 5m
//! counts, a fixed number of points whatever the window.
//!
//! Pure parts: [`row`] (what a status means), [`list`] and [`detail`] (pages), [`chart`] (SVG),
//! [`html`]. [`history`] reads Prometheus; this module wires them to a [`Source`] and to axum.

pub mod chart;
pub mod detail;
pub mod history;
pub mod html;
pub mod list;
pub mod row;
mod tables;

use std::collections::HashMap;
use std::future::Future;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use k8s_openapi::jiff::Timestamp;
use serde::Deserialize;

use crate::model::Slo;
use crate::prometheus::{Client, ReadingScope};
use detail::{DetailView, Events};
use history::{Owner, Span};
use list::{ListContext, ListQuery, Spark};
pub use row::{Detail, Row};

/// Points of the charts on an SLO's page, and of the list's sparklines.
const CHART_POINTS: u64 = 120;
const SPARK_POINTS: u64 = 24;

const NO_PROMETHEUS: &str = "no Prometheus to read from (--prometheus-url is unset)";

/// Where the pages' SLOs come from: the operator's SLO cache or local mode's latest round.
pub trait Source: Clone + Send + Sync + 'static {
    /// Every SLO, in any order.
    fn rows(&self) -> Vec<Row>;
    /// One SLO in full; `None` when there is no such SLO.
    fn detail(&self, namespace: &str, name: &str) -> Option<Detail>;
    /// What the list needs of the SLOs on its page: the model (for the window) and the UID.
    fn model(&self, namespace: &str, name: &str) -> Option<(Slo, Option<String>)>;
    /// The SLOs are known (the operator's watches have listed them once).
    fn ready(&self) -> bool {
        true
    }
    /// SLOs (or manifests) that could not be read, one line each, for the list.
    fn problems(&self) -> Vec<String> {
        Vec::new()
    }
    /// The SLO's recent Events, newest first.
    fn events(&self, namespace: &str, name: &str) -> impl Future<Output = Events> + Send;
}

/// What the pages need besides their source.
#[derive(Clone)]
pub struct Ui<S> {
    pub source: S,
    /// `None` when the operator runs without `--prometheus-url`: pages show the status only.
    pub prometheus: Option<Client>,
    pub scope: ReadingScope,
    /// The UI's address as people reach it (alert annotations link to it); `None` when unset.
    pub external_url: Option<String>,
    /// `--partial-response-strategy`, so an SLO's page shows its rules as they are written.
    pub partial_response_strategy: Option<crate::api::PartialResponseStrategy>,
}

/// `/ui` and `/ui/slo/<namespace>/<name>`; `/` leads to `/ui`.
pub fn router<S: Source>(ui: Ui<S>) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui") }))
        .route("/ui", get(list_page::<S>))
        .route("/ui/", get(|| async { Redirect::to("/ui") }))
        .route("/ui/slo/{namespace}/{name}", get(slo_page::<S>))
        .with_state(ui)
}

/// An SLO's rule groups, every alert linked to its page when the UI's address is known: what
/// the operator applies, local mode writes and the SLO's page shows.
pub fn linked_rules(
    slo: &Slo,
    namespace: &str,
    external_url: Option<&str>,
) -> Vec<crate::rules::RuleGroup> {
    let mut groups = crate::rules::render(slo, namespace);
    if let Some(url) = external_url {
        crate::rules::link_alerts(&mut groups, &slo_url(url, namespace, &slo.name));
    }
    groups
}

/// The address of an SLO's page under `external_url`, for alert annotations.
pub fn slo_url(external_url: &str, namespace: &str, name: &str) -> String {
    format!(
        "{}/ui/slo/{}/{}",
        external_url.trim_end_matches('/'),
        html::url_part(namespace),
        html::url_part(name)
    )
}

async fn list_page<S: Source>(State(ui): State<Ui<S>>, Query(query): Query<ListQuery>) -> Response {
    let now = Timestamp::now();
    let rows = ui.source.rows();
    let selection = list::select(&rows, &query);
    let models: Vec<(Owner, Slo)> = selection
        .rows
        .iter()
        .filter_map(|r| {
            let (slo, uid) = ui.source.model(&r.namespace, &r.name)?;
            let owner = Owner {
                namespace: r.namespace.clone(),
                name: r.name.clone(),
                uid,
            };
            Some((owner, slo))
        })
        .collect();
    let (sparks, history_error) = sparks(&ui, &models, now).await;
    let problems = ui.source.problems();
    let source = ui.prometheus.as_ref().map_or_else(
        || "no Prometheus (--prometheus-url is unset)".to_string(),
        |p| shown_url(p.url()),
    );
    let context = ListContext {
        all: &rows,
        now,
        history_error: history_error.map(|e| redact(&e, ui.prometheus.as_ref())),
        source: &source,
        problems: &problems,
    };
    html_response(list::render(&query, &selection, &sparks, &context))
}

/// Budget left over each SLO's window, two range queries per distinct window length.
async fn sparks(
    ui: &Ui<impl Source>,
    models: &[(Owner, Slo)],
    now: Timestamp,
) -> (HashMap<(String, String), Spark>, Option<String>) {
    let mut by_span: HashMap<Span, Vec<(Owner, f64)>> = HashMap::new();
    for (owner, slo) in models {
        by_span
            .entry(window_span(slo, now, SPARK_POINTS))
            .or_default()
            .push((owner.clone(), slo.error_budget().as_f64() / 100.0));
    }
    let reads = by_span.into_iter().map(|(span, owners)| async move {
        let list: Vec<Owner> = owners.iter().map(|o| o.0.clone()).collect();
        let read = match &ui.prometheus {
            Some(client) => history::spend(client, &ui.scope, &list, span)
                .await
                .map_err(|e| e.to_string()),
            None => Err(NO_PROMETHEUS.to_string()),
        };
        (span.seconds, owners, read)
    });
    let mut out = HashMap::new();
    let mut error = None;
    for (seconds, owners, read) in futures::future::join_all(reads).await {
        match read {
            Ok(spends) => {
                for (owner, budget) in owners {
                    let Some(spend) = spends.get(&owner) else {
                        continue;
                    };
                    let to = now.as_second() as f64;
                    let spark = Spark {
                        points: spend.burn_down(budget),
                        from: to - seconds as f64,
                        to,
                    };
                    out.insert((owner.namespace, owner.name), spark);
                }
            }
            Err(e) => error = Some(e),
        }
    }
    (out, error)
}

/// [`window_seconds`] before `now` in about `points` buckets; a calendar period's span holds its
/// first instant ([`Span::including_start`]).
pub fn window_span(slo: &Slo, now: Timestamp, points: u64) -> Span {
    let span = Span::over(
        window_seconds(slo, now),
        now.as_second().max(0) as u64,
        points,
    );
    if slo.window.period(now).is_some() {
        span.including_start()
    } else {
        span
    }
}

/// Seconds the budget is counted over now: the rolling window, or the calendar period so far
/// from a step (5 minutes, or a slice) after its start. Counts and slices lie on their grid
/// (`rules::windows::on_grid`) and the one for the period's first step is written at or after
/// that point (on it, at a group offset of 0), while the one for the step before the start is
/// written before it; the charts pick counts by when they were written, so the span starts on
/// that point, including it ([`window_span`]).
pub fn window_seconds(slo: &Slo, now: Timestamp) -> u64 {
    match slo.window.period(now) {
        Some((start, _)) => {
            let step = crate::budget::period_grid(slo).as_secs() as i64;
            (now.as_second() - start.as_second() - step).max(1) as u64
        }
        None => slo.window.rolling_equivalent().as_secs(),
    }
}

fn owner(d: &Detail) -> Owner {
    Owner {
        namespace: d.row.namespace.clone(),
        name: d.row.name.clone(),
        uid: d.uid.clone(),
    }
}

/// A URL as a page may show it: scheme, host, port and path; never `user:password@`, a query
/// or a fragment (where tokens are sometimes passed).
pub fn shown_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) => {
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.set_query(None);
            parsed.set_fragment(None);
            let mut shown = parsed.to_string();
            // As configured: `http://p:9090`, not `http://p:9090/`.
            if !url.ends_with('/') && shown.ends_with('/') {
                shown.pop();
            }
            shown
        }
        Err(_) => "(a Prometheus URL that does not parse)".to_string(),
    }
}

/// A message as a page may show it: the URL `url` in it as [`shown_url`] shows it.
pub fn redact_url(message: &str, url: &str) -> String {
    let shown = shown_url(url);
    if shown == url {
        message.to_string()
    } else {
        message.replace(url, &shown)
    }
}

fn redact(message: &str, prometheus: Option<&Client>) -> String {
    prometheus.map_or_else(|| message.to_string(), |p| redact_url(message, p.url()))
}

fn redacted<T>(read: Result<T, String>, prometheus: Option<&Client>) -> Result<T, String> {
    read.map_err(|e| redact(&e, prometheus))
}

#[derive(Debug, Deserialize)]
struct SloQuery {
    #[serde(default)]
    range: String,
}

async fn slo_page<S: Source>(
    State(ui): State<Ui<S>>,
    Path((namespace, name)): Path<(String, String)>,
    Query(query): Query<SloQuery>,
) -> Response {
    let Some(detail) = ui.source.detail(&namespace, &name) else {
        let body = format!(
            "<h1>No such SLO</h1><p>There is no SLO {}/{} here. <a href=\"/ui\">All SLOs</a></p>",
            html::escape(&namespace),
            html::escape(&name)
        );
        let (code, title) = if ui.source.ready() {
            (StatusCode::NOT_FOUND, "Not found")
        } else {
            (StatusCode::SERVICE_UNAVAILABLE, "Not yet")
        };
        let body = if ui.source.ready() {
            body
        } else {
            "<h1>Not yet</h1><p>This replica is still reading the SLOs; try again in a moment.</p>"
                .to_string()
        };
        return page_response(code, html::page(title, &body));
    };
    let now = Timestamp::now();
    let range = match query.range.as_str() {
        "7d" | "window" => query.range.as_str(),
        _ => "1d",
    };
    let owner = owner(&detail);
    let window = detail
        .slo
        .as_ref()
        .map_or(0, |slo| window_seconds(slo, now));
    let calendar = detail
        .slo
        .as_ref()
        .is_some_and(|slo| slo.window.period(now).is_some());
    let ratio_range = detail::ratio_seconds(range, window);
    let (burn_down, ratios, alerts, groups, events) = futures::join!(
        plot(&ui, &detail, (window, calendar), now, Shape::BurnDown),
        plot(
            &ui,
            &detail,
            (ratio_range, calendar && range == "window"),
            now,
            Shape::ErrorRatio
        ),
        alerts(&ui, &owner),
        groups(&ui, &detail),
        ui.source.events(&namespace, &name),
    );
    let rules = detail.slo.as_ref().map_or_else(String::new, |slo| {
        let mut groups = linked_rules(slo, &namespace, ui.external_url.as_deref());
        crate::rules::default_partial_response(&mut groups, ui.partial_response_strategy);
        crate::rules::rule_file(&groups).unwrap_or_else(|e| format!("# cannot print: {e}"))
    });
    let p = ui.prometheus.as_ref();
    let view = DetailView {
        detail: &detail,
        now,
        burn_down: redacted(burn_down, p),
        ratios: redacted(ratios, p),
        range,
        alerts: redacted(alerts, p),
        groups: groups.map(|g| redacted(g, p)),
        events,
        rules,
    };
    html_response(detail::render(&view))
}

/// What a chart draws from an SLO's spend.
#[derive(Clone, Copy)]
enum Shape {
    /// Budget left at each bucket's end.
    BurnDown,
    /// The error ratio within each bucket.
    ErrorRatio,
}

/// One chart's points over the `seconds` before now (the calendar period so far, with its first
/// instant, when `period`), from the SLO's own 5m counts.
async fn plot(
    ui: &Ui<impl Source>,
    detail: &Detail,
    (seconds, period): (u64, bool),
    now: Timestamp,
    shape: Shape,
) -> Result<detail::Plot, String> {
    let Some(slo) = &detail.slo else {
        return Ok(detail::Plot::default());
    };
    let client = ui.prometheus.as_ref().ok_or(NO_PROMETHEUS)?;
    let span = Span::over(seconds, now.as_second().max(0) as u64, CHART_POINTS);
    let span = if period { span.including_start() } else { span };
    let owner = owner(detail);
    let spends = history::spend(client, &ui.scope, std::slice::from_ref(&owner), span)
        .await
        .map_err(|e| e.to_string())?;
    let points = spends
        .get(&owner)
        .map(|s| match shape {
            Shape::BurnDown => s.burn_down(slo.error_budget().as_f64() / 100.0),
            Shape::ErrorRatio => s.error_ratios(),
        })
        .unwrap_or_default();
    let to = now.as_second() as f64;
    Ok(detail::Plot {
        from: to - seconds as f64,
        to,
        points,
    })
}

async fn groups(
    ui: &Ui<impl Source>,
    detail: &Detail,
) -> Option<Result<detail::GroupBudgets, String>> {
    let group_by = detail.slo.as_ref()?.indicator.group_by();
    if group_by.is_empty() {
        return None;
    }
    let Some(client) = &ui.prometheus else {
        return Some(Err(NO_PROMETHEUS.to_string()));
    };
    let read = history::groups(client, &ui.scope, &owner(detail), group_by).await;
    Some(read.map_err(|e| e.to_string()))
}

async fn alerts(ui: &Ui<impl Source>, owner: &Owner) -> Result<Vec<history::FiringAlert>, String> {
    let client = ui.prometheus.as_ref().ok_or(NO_PROMETHEUS)?;
    history::alerts(client, &ui.scope, owner)
        .await
        .map_err(|e| e.to_string())
}

fn html_response(body: String) -> Response {
    page_response(StatusCode::OK, body)
}

fn page_response(code: StatusCode, body: String) -> Response {
    (
        code,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // Nothing but this server: no scripts at all, images and styles inline.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
            ),
            (header::CACHE_CONTROL, "no-store"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests;
