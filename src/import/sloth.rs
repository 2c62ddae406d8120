//! Sloth: `prometheus/v1` spec files and `sloth.slok.dev/v1` PrometheusServiceLevel objects. The
//! two spell their keys differently (`error_query`, `errorQuery`) and mean the same.

use crate::api::{Alerting, ServiceLevelObjectiveSpec};
use crate::model::names::camel_case;
use crate::small_map::SmallMap;

use super::Draft;
use super::alerting::{Tier, same_severity_note, sanitised_alert_name, sloth_severity};
use super::fields::{Fields, join};
use super::finding::Findings;
use super::indicator::{self, from_sli};
use super::promql::{self, Events, Form};

/// Sloth's default and only period for these files (`--default-slo-period`).
const WINDOW: &str = "30d";

/// The keys of one spelling.
struct Keys {
    error_query: &'static str,
    total_query: &'static str,
    error_ratio_query: &'static str,
    page: &'static str,
    ticket: &'static str,
    format: &'static str,
}

const SPEC_FILE: Keys = Keys {
    error_query: "error_query",
    total_query: "total_query",
    error_ratio_query: "error_ratio_query",
    page: "page_alert",
    ticket: "ticket_alert",
    format: "Sloth prometheus/v1",
};

const OBJECT: Keys = Keys {
    error_query: "errorQuery",
    total_query: "totalQuery",
    error_ratio_query: "errorRatioQuery",
    page: "pageAlert",
    ticket: "ticketAlert",
    format: "Sloth sloth.slok.dev/v1",
};

/// A `version: prometheus/v1` file.
pub(super) fn spec_file(doc: &Fields) -> Vec<Draft> {
    doc.ignore(&["version"]);
    service_level(doc, None, &SPEC_FILE)
}

/// A PrometheusServiceLevel object.
pub(super) fn object(doc: &Fields) -> Vec<Draft> {
    doc.ignore(&["apiVersion", "kind", "status"]);
    let f = doc.findings();
    let mut namespace = None;
    if let Some(meta) = doc.object("metadata") {
        if let Some(name) = meta.text("name") {
            f.dropped(
                meta.path("name"),
                format!(
                    "{name:?} names Sloth's group of SLOs, not an SLO: each SLO is named \
                     <service>-<slo name>; the source is kept in the {} annotation",
                    super::SOURCE_ANNOTATION
                ),
            );
        }
        namespace = meta.text("namespace");
        for (k, v) in meta.string_map("labels") {
            f.dropped(
                join(&meta.path("labels"), &k),
                format!(
                    "{k}={v}: Sloth copies it onto the generated PrometheusRule; a Plimsoll SLO \
                     has no such field (`plimsoll generate --rule-label {k}={v}` does it)"
                ),
            );
        }
        for (k, _) in meta.string_map("annotations") {
            f.dropped(
                join(&meta.path("annotations"), &k),
                "an annotation of the Sloth object; not carried over",
            );
        }
        meta.ignore(&["creationTimestamp", "uid", "resourceVersion", "generation"]);
    }
    let Some(spec) = doc.object("spec") else {
        f.refused(
            "spec",
            "is missing: a PrometheusServiceLevel needs spec.service and spec.slos",
        );
        return Vec::new();
    };
    service_level(&spec, namespace, &OBJECT)
}

/// The body both spellings share: service, labels, plugins and the SLOs.
fn service_level(body: &Fields, namespace: Option<String>, keys: &Keys) -> Vec<Draft> {
    let f = body.findings();
    let Some(service) = body.text("service") else {
        f.refused(
            body.path("service"),
            "is missing: every Sloth SLO belongs to a service",
        );
        return Vec::new();
    };
    let labels = body.string_map("labels");
    recorded_labels_note(body, "labels", &labels);
    for key in ["slo_plugins", "sloPlugins"] {
        if body.take(key).is_some() {
            f.dropped(
                body.path(key),
                "Sloth's SLO plugin chain (it changes how Sloth writes rules): Plimsoll's rules \
                 are its own; the chain is not carried over",
            );
        }
    }
    let mut drafts = Vec::new();
    let items = body.list("slos");
    if items.is_empty() {
        f.dropped(body.path("slos"), "holds no SLO");
    }
    for (i, item) in items.into_iter().enumerate() {
        let path = join(&body.path("slos"), &format!("[{i}]"));
        let Some(slo) = Fields::of(item, path.clone(), f) else {
            f.refused(
                path,
                "is not a mapping; an SLO has name, objective, sli and alerting",
            );
            continue;
        };
        if let Some(mut draft) = one_slo(&slo, &service, &labels, keys) {
            draft.namespace = namespace.clone();
            drafts.push(draft);
        }
    }
    drafts
}

/// One entry of `slos`.
fn one_slo(
    slo: &Fields,
    service: &str,
    service_labels: &[(String, String)],
    keys: &Keys,
) -> Option<Draft> {
    let f = slo.findings();
    let Some(name) = slo.text("name") else {
        f.refused(
            slo.path("name"),
            "is missing: the SLO's id is <service>-<name>",
        );
        return None;
    };
    let objective = match slo.number("objective") {
        Some(Ok(o)) => o,
        Some(Err(e)) => {
            f.refused(slo.path("objective"), e);
            return None;
        }
        None => {
            f.refused(
                slo.path("objective"),
                "is missing: the target in percent, such as 99.9",
            );
            return None;
        }
    };
    let description = slo.text("description").filter(|d| !d.is_empty());
    let own = slo.string_map("labels");
    recorded_labels_note(slo, "labels", &own);
    let mut labels: Vec<(String, String)> = service_labels.to_vec();
    for (k, v) in own {
        labels.retain(|(old, _)| *old != k);
        labels.push((k, v));
    }
    if slo.take("plugins").is_some() {
        f.dropped(
            slo.path("plugins"),
            "Sloth's per-SLO plugin chain; not carried over",
        );
    }
    let indicator = sli(slo, keys);
    let alerting = alerting(slo, &format!("{service}-{name}"), &labels, keys);
    let indicator = indicator?;
    if let Some(labels) = [
        indicator.ratio.as_ref().map(|r| &r.group_by),
        indicator.latency.as_ref().map(|l| &l.group_by),
    ]
    .into_iter()
    .flatten()
    .find(|g| !g.is_empty())
    {
        f.changed(
            slo.path("sli"),
            format!(
                "`by ({})` in both queries becomes groupBy: Sloth alerts per {0}; Plimsoll keeps \
                 a budget and alerts per {0} too, and its status shows the worst one",
                labels.join(", ")
            ),
        );
    }
    Some(Draft {
        name: format!("{service}-{name}"),
        namespace: None,
        spec: ServiceLevelObjectiveSpec {
            service: service.to_string(),
            description,
            objective,
            window: WINDOW.to_string(),
            indicator,
            alerting: Some(alerting),
            ..ServiceLevelObjectiveSpec::default()
        },
        item: slo.here().to_string(),
        format: keys.format,
    })
}

fn recorded_labels_note(fields: &Fields, key: &str, labels: &[(String, String)]) {
    if labels.is_empty() {
        return;
    }
    let list: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    fields.findings().changed(
        fields.path(key),
        format!(
            "{} go to alerting.labels; Sloth also puts them on every recorded series, Plimsoll \
             only on the alerts",
            list.join(", ")
        ),
    );
}

/// The SLI: events, raw, or a plugin (refused).
fn sli(slo: &Fields, keys: &Keys) -> Option<crate::api::Indicator> {
    let f = slo.findings();
    let Some(sli) = slo.object("sli") else {
        f.refused(slo.path("sli"), "is missing: one of events, raw or plugin");
        return None;
    };
    if let Some(events) = sli.object("events") {
        let (Some(errors), Some(total)) =
            (events.text(keys.error_query), events.text(keys.total_query))
        else {
            f.refused(
                events.here(),
                format!("needs both {} and {}", keys.error_query, keys.total_query),
            );
            return None;
        };
        let converted = promql::events(&errors, &total, Events::Bad, Form::Windowed);
        return from_sli(converted, &events.path(keys.error_query), f);
    }
    if let Some(raw) = sli.object("raw") {
        let Some(query) = raw.text(keys.error_ratio_query) else {
            f.refused(raw.path(keys.error_ratio_query), "is missing");
            return None;
        };
        let converted = promql::error_ratio(&query, Form::Windowed);
        return from_sli(converted, &raw.path(keys.error_ratio_query), f);
    }
    if let Some(plugin) = sli.object("plugin") {
        let id = plugin.text("id").unwrap_or_default();
        plugin.ignore(&["options"]);
        f.refused(
            plugin.path("id"),
            format!(
                "the SLI is Sloth plugin {id:?}, Go code that writes the queries; Plimsoll has no \
                 plugins and the importer does not guess what it renders: write the queries as \
                 sli.events (or an indicator by hand)"
            ),
        );
        return None;
    }
    indicator::missing(&sli, "one of events, raw or plugin")
}

/// Sloth's alerting block: a name, labels and annotations for both alerts, and the two tiers.
fn alerting(slo: &Fields, slo_name: &str, labels: &[(String, String)], keys: &Keys) -> Alerting {
    let f = slo.findings();
    let block = slo.object("alerting");
    let mut alerting = Alerting {
        labels: labels.iter().cloned().collect(),
        ..Alerting::default()
    };
    let (mut page, mut ticket) = (Tier::default(), Tier::default());
    // The labels Sloth puts on the alert rules themselves; the SLO's labels reach its alerts
    // from the recorded series, under the rules' labels.
    let mut rule_labels = SmallMap::default();
    if let Some(block) = &block {
        if let Some(name) = block.text("name") {
            let prefix = sanitised_alert_name(&name, &block.path("name"), f);
            f.changed(
                block.path("name"),
                format!(
                    "Sloth names both burn alerts {name:?}; Plimsoll names them \
                     {prefix}ErrorBudgetBurn (page and ticket told apart by severity and sloth_severity)"
                ),
            );
            alerting.name = Some(prefix);
        }
        rule_labels = block.string_map("labels").into_iter().collect();
        for (k, v) in rule_labels.iter() {
            alerting.labels.insert(k.clone(), v.clone());
        }
        alerting.annotations = block.string_map("annotations").into_iter().collect();
        page = Tier::read(block, keys.page);
        ticket = Tier::read(block, keys.ticket);
    }
    if page.disabled && ticket.disabled {
        alerting.disabled = true;
        if !labels.is_empty() {
            f.dropped(
                slo.path("labels"),
                "with both alerts disabled, the labels went only to Sloth's recorded series; \
                 Plimsoll's recorded series carry none",
            );
        }
        return alerting;
    }
    let default_name = camel_case(slo_name);
    let path = slo.path("alerting");
    f.changed(
        &path,
        format!(
            "Sloth makes no alert for missing series; Plimsoll adds {}SLIAbsent (set \
             alerting.absent.disabled: true to do without). Sloth's default title/summary \
             annotations are not carried; Plimsoll's descriptions apply",
            alerting.name.clone().unwrap_or(default_name)
        ),
    );
    sloth_labels(&mut page, &mut ticket, &rule_labels, &path, f);
    if let Some(note) = same_severity_note(&page, &ticket, &alerting.labels) {
        f.changed(&path, note);
    }
    alerting.page = page.into_spec(&path, "page", "critical", &alerting.labels, f);
    alerting.ticket = ticket.into_spec(&path, "ticket", "warning", &alerting.labels, f);
    alerting
}

/// The labels Sloth's alerts carry of their own: `sloth_severity` is written into the tiers,
/// the series' `sloth_*` ids are reported with the labels Plimsoll's alerts have instead.
fn sloth_labels(
    page: &mut Tier,
    ticket: &mut Tier,
    rule_labels: &SmallMap<String, String>,
    path: &str,
    f: &Findings,
) {
    let labelled: Vec<String> = sloth_severity(page, ticket, rule_labels)
        .into_iter()
        .map(|tier| format!("alerting.{tier}.labels gets sloth_severity: {tier}"))
        .collect();
    if !labelled.is_empty() {
        f.changed(
            path,
            format!(
                "Sloth labels its page alert sloth_severity: page and its ticket alert \
                 sloth_severity: ticket; carried so Alertmanager routes on it keep matching: {}",
                labelled.join(", ")
            ),
        );
    }
    f.dropped(
        path,
        "sloth_id, sloth_service and sloth_slo, which Sloth's alerts carry from its recorded \
         series (max(...) without (sloth_window)): Plimsoll's alerts carry slo, slo_namespace \
         and slo_service instead; routes and silences on the sloth_* labels need rewriting",
    );
}
