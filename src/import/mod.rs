//! `plimsoll import`: SLOs written for Sloth, Pyrra and OpenSLO turned into Plimsoll SLOs, with
//! every source field either carried over or reported ([`Finding`]). A converted SLO is emitted
//! only when it passes the same checks as `plimsoll validate`.

mod alerting;
mod fields;
mod finding;
mod indicator;
mod openslo;
mod promql;
mod pyrra;
mod sloth;

use std::collections::BTreeMap;

use kube::api::ObjectMeta;
use serde_json::Value;

use crate::api::{ServiceLevelObjective, ServiceLevelObjectiveSpec};
use crate::manifests::{self, Decoded, Definitions, Document};
use crate::model::names::is_dns_subdomain;

pub use finding::{Finding, Findings, Severity};

use fields::Fields;

/// The annotation that says where an imported SLO came from.
pub const SOURCE_ANNOTATION: &str = "plimsoll.dev/imported-from";

/// One converted SLO.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The source document, `file`, `file#2` or `file[0]`.
    pub location: String,
    pub object: ServiceLevelObjective,
    /// The findings about this SLO's source fields (and its document's).
    pub findings: Vec<Finding>,
}

/// Everything an import produced.
#[derive(Debug, Default)]
pub struct Import {
    pub slos: Vec<Imported>,
    /// Every finding, in the order of the sources.
    pub findings: Vec<Finding>,
}

impl Import {
    /// True when some source SLO was not converted.
    pub fn refused_any(&self) -> bool {
        self.findings
            .iter()
            .any(|f| f.severity == Severity::Refused)
    }
}

/// A source SLO converted, before its name, namespace and validity are settled.
#[derive(Debug)]
struct Draft {
    name: String,
    namespace: Option<String>,
    spec: ServiceLevelObjectiveSpec,
    /// The source item, such as `slos[1]`: the findings under it belong to this SLO.
    item: String,
    /// The source format, such as `Sloth prometheus/v1`.
    format: &'static str,
}

/// The source formats' item lists, whose entries' findings belong to one SLO each.
const ITEM_LISTS: [&str; 3] = ["slos[", "spec.slos[", "spec.objectives["];

/// Converts the documents; `namespace` applies to SLOs whose source names none.
pub fn import(documents: &[Document], namespace: Option<&str>) -> Import {
    let mut units = Vec::new();
    for doc in documents {
        match &doc.value {
            // OpenSLO's SDKs write a file as one YAML list of objects.
            Value::Array(items) => units.extend(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (format!("{}[{i}]", doc.location()), v)),
            ),
            value => units.push((doc.location(), value)),
        }
    }
    let refs = openslo::Index::of(&units);
    let mut import = Import::default();
    let mut definitions = Definitions::default();
    for (location, value) in &units {
        let findings = Findings::new(location.clone());
        let drafts = convert(value, &findings, &refs);
        let mut all = findings.into_vec();
        for draft in drafts {
            let item = draft.item.clone();
            let settling = Findings::new(location.clone());
            let object = settle(draft, namespace, location, &settling, &mut definitions);
            let settled = settling.into_vec();
            if let Some(object) = object {
                let mut findings: Vec<Finding> =
                    all.iter().filter(|f| belongs(f, &item)).cloned().collect();
                findings.extend(settled.iter().cloned());
                import.slos.push(Imported {
                    location: location.clone(),
                    object,
                    findings,
                });
            }
            all.extend(settled);
        }
        import.findings.extend(all);
    }
    shared_alert_names(&mut import);
    import
}

/// Alert names several imported SLOs share: their alerts are told apart only by their slo labels.
fn shared_alert_names(import: &mut Import) {
    let mut by_name: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, slo) in import.slos.iter().enumerate() {
        if let Some(name) = slo
            .object
            .spec
            .alerting
            .as_ref()
            .and_then(|a| a.name.clone())
        {
            by_name.entry(name).or_default().push(i);
        }
    }
    for (name, slos) in by_name.into_iter().filter(|(_, s)| s.len() > 1) {
        let names: Vec<&str> = slos
            .iter()
            .filter_map(|&i| import.slos[i].object.metadata.name.as_deref())
            .collect();
        let message = format!(
            "alerting.name {name:?} is shared by the SLOs {}: their alerts have the same names \
             and differ only in their slo labels",
            names.join(", ")
        );
        for &i in &slos {
            let slo = &mut import.slos[i];
            let finding = Finding {
                location: slo.location.clone(),
                field: "alerting.name".to_string(),
                severity: Severity::Changed,
                message: message.clone(),
            };
            slo.findings.push(finding.clone());
            if i == slos[0] {
                import.findings.push(finding);
            }
        }
    }
}

/// A finding about the SLO of `item`, or about its whole document.
fn belongs(finding: &Finding, item: &str) -> bool {
    finding.field.starts_with(item)
        || !ITEM_LISTS
            .iter()
            .any(|list| finding.field.starts_with(list))
}

/// Converts one source object into drafts, reporting what it is when it is no SLO source.
fn convert(value: &Value, findings: &Findings, refs: &openslo::Index) -> Vec<Draft> {
    let Some(doc) = Fields::of(value, "", findings) else {
        findings.refused(
            "(document)",
            format!(
                "is {}, not a mapping: not a Sloth, Pyrra or OpenSLO document",
                fields::kind_of(value)
            ),
        );
        return Vec::new();
    };
    let text = |key: &str| value.get(key).and_then(Value::as_str).unwrap_or_default();
    let (version, api_version, kind) = (text("version"), text("apiVersion"), text("kind"));
    match (version, api_version, kind) {
        ("prometheus/v1", _, _) => sloth::spec_file(&doc),
        (_, "sloth.slok.dev/v1", "PrometheusServiceLevel") => sloth::object(&doc),
        (_, "pyrra.dev/v1alpha1" | "v1alpha1", "ServiceLevelObjective") => pyrra::object(&doc),
        (_, "openslo/v1" | "openslo/v1alpha", _) => openslo::object(&doc, refs),
        (_, v, "ServiceLevelObjective") if v.starts_with(crate::api::GROUP) => {
            doc.ignore(&["apiVersion", "kind", "metadata", "spec", "status"]);
            findings.dropped(
                "apiVersion",
                "is already a Plimsoll SLO; apply it as it is (`plimsoll validate` checks it)",
            );
            Vec::new()
        }
        _ => {
            doc.ignore(&[
                "apiVersion",
                "kind",
                "metadata",
                "spec",
                "status",
                "version",
            ]);
            let what = if version.is_empty() {
                format!("apiVersion {api_version:?}, kind {kind:?}")
            } else {
                format!("version {version:?}")
            };
            findings.refused(
                "(document)",
                format!(
                    "{what} is not a format the importer reads: Sloth (prometheus/v1, \
                     sloth.slok.dev/v1 PrometheusServiceLevel), Pyrra (pyrra.dev/v1alpha1 \
                     ServiceLevelObjective) or OpenSLO (openslo/v1, openslo/v1alpha)"
                ),
            );
            Vec::new()
        }
    }
}

/// Names, places and checks a draft: the SLO, or None with the reasons reported.
fn settle(
    draft: Draft,
    namespace: Option<&str>,
    location: &str,
    findings: &Findings,
    definitions: &mut Definitions,
) -> Option<ServiceLevelObjective> {
    let name = object_name(&draft.name);
    if name != draft.name {
        findings.changed(
            draft.item.as_str(),
            format!(
                "the name {:?} is not a Kubernetes object name; the SLO is named {name:?}",
                draft.name
            ),
        );
    }
    let namespace = draft.namespace.clone().or(namespace.map(str::to_string));
    let source = format!("{} {location} {}", draft.format, draft.item)
        .trim_end()
        .to_string();
    let mut spec = draft.spec;
    if spec.alerting.as_ref() == Some(&crate::api::Alerting::default()) {
        spec.alerting = None;
    }
    let object = ServiceLevelObjective {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: namespace.clone(),
            annotations: Some(BTreeMap::from([(SOURCE_ANNOTATION.to_string(), source)])),
            ..ObjectMeta::default()
        },
        spec,
        status: None,
    };
    let value = serde_json::to_value(&object).unwrap_or(Value::Null);
    match manifests::decode(&value) {
        Decoded::Valid(_) => {}
        Decoded::Invalid(errors) => {
            for e in errors.iter() {
                findings.refused(
                    draft.item.as_str(),
                    format!("the converted SLO {name:?} is not valid: {e}"),
                );
            }
            return None;
        }
        Decoded::Other { .. } => return None,
    }
    let place = namespace.as_deref().unwrap_or("(no namespace)");
    if let Err(twice) = definitions.claim(place, &name, &format!("{location} {}", draft.item)) {
        findings.refused(draft.item.as_str(), twice.to_string());
        return None;
    }
    Some(object)
}

/// A Kubernetes object name from a source name: lower case, other characters as `-`, at most 63
/// characters (the SLO's name is a label value).
fn object_name(name: &str) -> String {
    if is_dns_subdomain(name) && name.len() <= 63 {
        return name.to_string();
    }
    let mut out = String::new();
    for c in name.to_ascii_lowercase().chars() {
        match c.is_ascii_alphanumeric() {
            true => out.push(c),
            false if !out.ends_with('-') => out.push('-'),
            false => {}
        }
    }
    out.truncate(63);
    let trimmed = out.trim_matches('-');
    if trimmed.is_empty() {
        "imported-slo".to_string()
    } else {
        trimmed.to_string()
    }
}

#[cfg(test)]
mod tests;
