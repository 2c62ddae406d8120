//! OpenSLO `openslo/v1` and `openslo/v1alpha`: one Plimsoll SLO per objective of each SLO; SLIs,
//! alert policies and conditions are resolved by reference, and objects that make no SLO on their
//! own are reported.

mod alerts;
mod comparison;
mod index;
mod sli;
mod window;

use serde_json::Value;

use crate::api::{Alerting, ServiceLevelObjectiveSpec};

use super::Draft;
use super::fields::{Fields, join};
use super::finding::{Finding, Findings, Severity};
use comparison::comparison;
use sli::Measure;
use window::Window;

pub use index::Index;

/// A target in (0, 1) as Plimsoll's percent, without the float noise of `0.999 * 100`.
fn percent(target: f64) -> f64 {
    (target * 100.0 * 1e9).round() / 1e9
}

/// One OpenSLO object.
pub(super) fn object(doc: &Fields, index: &Index) -> Vec<Draft> {
    let kind = doc.text("kind").unwrap_or_default();
    let version = doc.text("apiVersion").unwrap_or_default();
    match kind.as_str() {
        "SLO" => slo(doc, index, &version),
        _ => {
            standalone(doc, &kind, index);
            Vec::new()
        }
    }
}

/// What the SLO's metadata and spec give every objective.
struct Common {
    name: String,
    service: String,
    description: Option<String>,
    window: Window,
    method: Option<String>,
    alerting: Alerting,
    measure: Option<Measure>,
    /// Whether the SLO names an indicator at all (a refused one was reported already).
    has_indicator: bool,
    format: &'static str,
}

fn slo(doc: &Fields, index: &Index, version: &str) -> Vec<Draft> {
    let f = doc.findings();
    let meta = doc.object("metadata");
    let namespace = meta.as_ref().and_then(|m| m.text("namespace"));
    let name = meta.and_then(|m| metadata(&m));
    let Some(spec) = doc.object("spec") else {
        f.refused("spec", "is missing");
        return Vec::new();
    };
    let service = spec.text("service");
    if service.is_none() {
        f.refused(
            spec.path("service"),
            "is missing: the Service the SLO belongs to",
        );
    }
    let description = spec.text("description").filter(|d| !d.is_empty());
    let window = window::time_window(&spec);
    let method = spec.text("budgetingMethod");
    let has_indicator = spec
        .rest()
        .iter()
        .any(|(k, _)| *k == "indicator" || *k == "indicatorRef");
    let measure = slo_indicator(&spec, index);
    let alerting = alerts::alerting(&spec, index);
    let (Some(name), Some(service), Some(window), Some(alerting)) =
        (name, service, window, alerting)
    else {
        spec.ignore(&["objectives"]);
        return Vec::new();
    };
    let common = Common {
        name,
        service,
        description,
        window,
        method,
        alerting,
        measure,
        has_indicator,
        format: if version == "openslo/v1alpha" {
            "OpenSLO v1alpha"
        } else {
            "OpenSLO v1"
        },
    };
    let objectives = spec.list("objectives");
    if objectives.is_empty() {
        f.refused(
            spec.path("objectives"),
            "is missing: an SLO needs at least one objective",
        );
    }
    let several = objectives.len() > 1;
    let mut drafts = Vec::new();
    for (i, value) in objectives.into_iter().enumerate() {
        let path = join(&spec.path("objectives"), &format!("[{i}]"));
        let Some(objective) = Fields::of(value, path.clone(), f) else {
            f.refused(path, "is not a mapping");
            continue;
        };
        let name = if several {
            f.changed(
                path.as_str(),
                format!(
                    "one of several objectives: this one is the SLO {}-{i}",
                    common.name
                ),
            );
            format!("{}-{i}", common.name)
        } else {
            common.name.clone()
        };
        if let Some(mut draft) =
            one_objective(&objective, &common, name, &spec.path("budgetingMethod"))
        {
            draft.namespace = namespace.clone();
            drafts.push(draft);
        }
    }
    drafts
}

/// metadata.name, and reports for displayName, labels and annotations.
fn metadata(meta: &Fields) -> Option<String> {
    let f = meta.findings();
    let name = meta.text("name");
    if name.is_none() {
        f.refused(meta.path("name"), "is missing");
    }
    if let Some(display) = meta.text("displayName") {
        f.dropped(
            meta.path("displayName"),
            format!("{display:?}: a Plimsoll SLO has no display name"),
        );
    }
    if let Some(labels) = meta.take("labels") {
        let shape = match labels.as_object() {
            Some(m) if m.values().any(Value::is_array) => {
                "lists of values (OpenSLO v1), which a Kubernetes label cannot hold and are not \
                 joined"
            }
            _ => "OpenSLO metadata, not alert labels",
        };
        f.dropped(meta.path("labels"), format!("{shape}; not carried"));
    }
    if meta.take("annotations").is_some() {
        f.dropped(meta.path("annotations"), "OpenSLO annotations; not carried");
    }
    name
}

/// The SLO-level indicator: inline (v1 `indicator.spec`, v1alpha `indicator.thresholdMetric`) or
/// `indicatorRef`. None here may still be completed by a v1alpha objective's ratioMetrics.
fn slo_indicator(spec: &Fields, index: &Index) -> Option<Measure> {
    let f = spec.findings();
    if let Some(name) = spec.text("indicatorRef") {
        let Some(found) = index.get("SLI", &name) else {
            f.refused(
                spec.path("indicatorRef"),
                format!("SLI {name:?} is not among the imported objects"),
            );
            return None;
        };
        let path = format!("{}({name}).spec", spec.path("indicatorRef"));
        let sli = Fields::of(found.get("spec").unwrap_or(&Value::Null), path.clone(), f);
        return match sli {
            Some(sli) => sli::v1_spec(&sli),
            None => {
                f.refused(path, "the SLI has no spec");
                None
            }
        };
    }
    let indicator = spec.object("indicator")?;
    if let Some(meta) = indicator.object("metadata") {
        meta.ignore(&["name", "displayName"]);
        f.dropped(
            indicator.path("metadata"),
            "the inline SLI's name; not carried",
        );
    }
    if let Some(inner) = indicator.object("spec") {
        return sli::v1_spec(&inner);
    }
    // v1alpha: the SLI sits in the indicator itself.
    sli::v1_spec(&indicator)
}

fn one_objective(
    objective: &Fields,
    common: &Common,
    name: String,
    method_path: &str,
) -> Option<Draft> {
    let f = objective.findings();
    if let Some(display) = objective.take("displayName").and_then(Value::as_str) {
        f.dropped(
            objective.path("displayName"),
            format!("{display:?}: no counterpart"),
        );
    }
    let target = match (
        objective.number("target"),
        objective.number("targetPercent"),
    ) {
        (Some(Ok(t)), Some(Ok(p))) if (percent(t) - p).abs() > 1e-9 => {
            f.refused(
                objective.path("targetPercent"),
                format!("{p} disagrees with target {t}: give one of them"),
            );
            None
        }
        (Some(Ok(t)), _) => Some(percent(t)),
        (None, Some(Ok(p))) => Some(p),
        (Some(Err(e)), _) | (_, Some(Err(e))) => {
            f.refused(objective.path("target"), e);
            None
        }
        (None, None) => {
            f.refused(
                objective.path("target"),
                "is missing: the share of good events, such as 0.999",
            );
            None
        }
    };
    let measure = objective_measure(objective, common);
    let threshold = comparison(objective, measure.as_ref());
    if objective.take("compositeWeight").is_some() {
        f.dropped(
            objective.path("compositeWeight"),
            "composite SLOs have no counterpart",
        );
    }
    let budgeting = window::budgeting(common.method.as_deref(), method_path, objective);
    let indicator = sli::indicator(measure.as_ref()?, threshold, objective.here(), f);
    let (budgeting_method, timeslice) = budgeting?;
    Some(Draft {
        name,
        namespace: None,
        spec: ServiceLevelObjectiveSpec {
            service: common.service.clone(),
            description: common.description.clone(),
            objective: target?,
            window: common.window.window.clone(),
            time_zone: common.window.time_zone.clone(),
            budgeting_method,
            timeslice,
            indicator: indicator?,
            alerting: Some(common.alerting.clone()),
            ..ServiceLevelObjectiveSpec::default()
        },
        item: objective.here().to_string(),
        format: common.format,
    })
}

/// The objective's own indicator (v1alpha `ratioMetrics`, v1 `indicator`/`indicatorRef` are
/// not in objectives) or the SLO's.
fn objective_measure(objective: &Fields, common: &Common) -> Option<Measure> {
    let f = objective.findings();
    if let Some(ratio) = objective.object("ratioMetrics") {
        // v1alpha's name for v1's `counter` (OpenSLO renamed it).
        let counter = ratio.flag("incremental").unwrap_or(true);
        let (good, bad) = (ratio.object("good"), ratio.object("bad"));
        let total = ratio.object("total");
        let (first, events) = match (good, bad) {
            (Some(g), None) => (sli::source_query(&g), promql_events(true)),
            (None, Some(b)) => (sli::source_query(&b), promql_events(false)),
            _ => {
                f.refused(ratio.here(), "needs exactly one of good and bad");
                return None;
            }
        };
        let total = total.and_then(|t| sli::source_query(&t));
        return Some(Measure::Ratio {
            first: first?,
            total: total?,
            events,
            counter,
        });
    }
    if !common.has_indicator {
        f.refused(
            objective.here(),
            "has no indicator: the SLO has neither indicator nor indicatorRef, and the objective no \
             ratioMetrics",
        );
    }
    common.measure.clone()
}

fn promql_events(good: bool) -> super::promql::Events {
    if good {
        super::promql::Events::Good
    } else {
        super::promql::Events::Bad
    }
}

/// SLI, Service, DataSource, AlertPolicy, AlertCondition, AlertNotificationTarget: no SLO.
fn standalone(doc: &Fields, kind: &str, index: &Index) {
    let f = doc.findings();
    doc.ignore(&["apiVersion", "kind", "metadata", "spec"]);
    let meta = doc.take("metadata");
    let name = meta
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("(unnamed)")
        .to_string();
    if let Some(keys) = meta
        .and_then(|m| m.get("annotations"))
        .and_then(Value::as_object)
        .filter(|a| !a.is_empty())
    {
        let keys: Vec<&str> = keys.keys().map(String::as_str).collect();
        f.dropped(
            "metadata.annotations",
            format!("OpenSLO annotations ({})", keys.join(", ")),
        );
    }
    let why = match kind {
        "SLI" => {
            let spec = doc.take("spec");
            let scratch = Findings::new(f.location());
            if let Some(read) = spec.and_then(|s| Fields::of(s, "spec", &scratch)) {
                let _ = sli::v1_spec(&read).map(|m| sli::indicator(&m, None, "spec", &scratch));
            }
            // Everything an SLO using it would meet is said, refusals and changes alike; only
            // a spec OpenSLO's own schema rejects is refused here.
            let broken = spec.is_some_and(sli::breaks_schema);
            for finding in scratch.into_vec() {
                if broken && finding.severity == Severity::Refused {
                    f.refused(finding.field, finding.message);
                } else {
                    relay(finding, f);
                }
            }
            "an SLI without an SLO makes none; SLOs in this import refer to it by indicatorRef"
        }
        "AlertPolicy" => {
            let scratch = Findings::new(f.location());
            if let Some(read) = doc
                .take("spec")
                .and_then(|s| Fields::of(s, "spec", &scratch))
            {
                let _ = alerts::policy_spec(&read, index, &mut Alerting::default());
            }
            scratch
                .into_vec()
                .into_iter()
                .for_each(|finding| relay(finding, f));
            "used when an SLO in this import refers to it; on its own it makes no SLO"
        }
        "DataSource" => {
            let spec = doc.take("spec");
            let url = spec
                .and_then(|s| {
                    s.pointer("/connectionDetails/url")
                        .or(s.pointer("/connectionDetails/0/url"))
                })
                .and_then(Value::as_str);
            let source = spec
                .and_then(|s| s.get("type"))
                .and_then(Value::as_str)
                .unwrap_or("?");
            f.dropped(
                "spec",
                format!(
                    "a {source} data source{}: Plimsoll reads the Prometheus it is given \
                     (--prometheus-url); credentials in it are not read",
                    url.map(|u| format!(" at {}", crate::ui::shown_url(u)))
                        .unwrap_or_default()
                ),
            );
            return;
        }
        "Service" if index.count("Service", &name) > 1 => {
            "a Service is what spec.service names; its description has no counterpart; the \
             name is given more than once in this import"
        }
        "Service" => "a Service is what spec.service names; its description has no counterpart",
        "AlertCondition" | "AlertNotificationTarget" => {
            "used when an SLO in this import refers to it; on its own it makes no SLO"
        }
        _ => {
            f.refused(
                "kind",
                format!("{kind:?} is not an OpenSLO kind the importer knows"),
            );
            return;
        }
    };
    f.dropped("(document)", format!("{kind} {name:?}: {why}"));
}

/// What reading an object on its own found, reported as what an SLO that used it would meet:
/// nothing is refused, since no SLO is made from it.
fn relay(finding: Finding, f: &Findings) {
    f.dropped(
        finding.field,
        format!("if an SLO used it: {}", finding.message),
    );
}
