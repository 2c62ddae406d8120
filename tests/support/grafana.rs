//! Running a Grafana dashboard's queries as Grafana's Prometheus data source does: template
//! variables through the label values API, multi-value variables as regex alternations, tables
//! as instant queries and time series as range queries.
#![allow(dead_code)]

use std::time::Duration;

use serde_json::Value;

use super::prometheus::{Prometheus, http};

/// The dashboard Plimsoll ships.
pub fn dashboard() -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(super::repo().join("charts/plimsoll/dashboards/slos.json"))
            .unwrap(),
    )
    .unwrap()
}

/// A successful answer's `data` to a GET of the Prometheus API.
pub fn get(prometheus: &Prometheus, path: &str, params: &[(&str, String)]) -> Value {
    let encode = plimsoll::ui::html::url_part;
    let query: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    let answer: Value = http()
        .get(format!("{}{path}?{}", prometheus.url, query.join("&")))
        .timeout(Duration::from_secs(60))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(answer["status"], "success", "{path} {params:?}: {answer}");
    answer["data"].clone()
}

/// `label_values(<selector>, <label>)`, as Grafana's Prometheus data source asks for it.
pub fn label_values(prometheus: &Prometheus, query: &str) -> Vec<String> {
    let inner = query
        .strip_prefix("label_values(")
        .and_then(|q| q.strip_suffix(')'))
        .unwrap_or_else(|| panic!("a label_values query: {query}"));
    let (selector, label) = inner.rsplit_once(',').unwrap();
    let data = get(
        prometheus,
        &format!("/api/v1/label/{}/values", label.trim()),
        &[("match[]", selector.trim().to_string())],
    );
    data.as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// A multi-value variable as Grafana's Prometheus data source writes it into a regex matcher:
/// `(host1|host2|host3)`, every value regex-escaped (grafana/grafana,
/// docs/sources/variables/formatting-multi-value-variables.md).
pub fn regex_value(values: &[String]) -> String {
    let escaped: Vec<String> = values
        .iter()
        .map(|v| plimsoll::prometheus::period::regex_escape(v))
        .collect();
    format!("({})", escaped.join("|"))
}

/// One query of a panel.
#[derive(Debug, Clone)]
pub struct Target {
    pub panel: String,
    pub ref_id: String,
    pub expr: String,
    pub instant: bool,
}

/// Every target of every panel (and of panels inside rows).
pub fn targets(dashboard: &Value) -> Vec<Target> {
    fn walk(panels: &Value, out: &mut Vec<Target>) {
        for panel in panels.as_array().into_iter().flatten() {
            for target in panel["targets"].as_array().into_iter().flatten() {
                out.push(Target {
                    panel: panel["title"].as_str().unwrap_or_default().to_string(),
                    ref_id: target["refId"].as_str().unwrap_or_default().to_string(),
                    expr: target["expr"].as_str().unwrap().to_string(),
                    instant: target["instant"] == true,
                });
            }
            walk(&panel["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

/// The query of a template variable.
pub fn variable_query(dashboard: &Value, name: &str) -> String {
    dashboard["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == name)
        .unwrap()["query"]["query"]
        .as_str()
        .unwrap()
        .to_string()
}
