//! The Grafana dashboards in charts/plimsoll/dashboards/ read only series our rules record: every
//! PromQL expression (panel targets and template variable queries) is parsed, and each metric it
//! selects must be recorded by `plimsoll generate -f examples/` (or be Prometheus' own `ALERTS`),
//! with label matchers only on labels those series carry.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;

use promql_parser::parser::{self, Expr, VectorSelector};
use serde_json::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Prometheus' own alert series, and the labels they have besides the alerts' labels.
const ALERT_SERIES: [&str; 2] = ["ALERTS", "ALERTS_FOR_STATE"];

/// Every series the example SLOs' rules record or alert on: name -> label names.
fn recorded() -> BTreeMap<String, BTreeSet<String>> {
    let out = Command::new(env!("CARGO_BIN_EXE_plimsoll"))
        .args(["generate", "-f"])
        .arg(repo().join("examples"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let file: Value = serde_saphyr::from_str(&text).unwrap();
    let mut series: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for group in file["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            let labels = rule["labels"]
                .as_object()
                .map(|l| l.keys().cloned().collect::<Vec<_>>())
                .unwrap_or_default();
            if let Some(record) = rule["record"].as_str() {
                // groupBy labels come from the expression, not the rule's labels.
                let mut names: BTreeSet<String> = labels.into_iter().collect();
                names.extend(group_by_labels(rule["expr"].as_str().unwrap()));
                series.entry(record.to_string()).or_default().extend(names);
            } else {
                let alerts = series.entry("ALERTS".into()).or_default();
                alerts.extend(labels);
                alerts.extend(
                    [
                        "alertname",
                        "alertstate",
                        "slo",
                        "slo_namespace",
                        "slo_service",
                    ]
                    .map(String::from),
                );
            }
        }
    }
    let alerts = series["ALERTS"].clone();
    series.insert("ALERTS_FOR_STATE".into(), alerts);
    series
}

/// Label names of `by (...)` clauses in an expression.
fn group_by_labels(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(i) = rest.find("by (") {
        let after = &rest[i + 4..];
        let end = after.find(')').unwrap();
        out.extend(after[..end].split(',').map(|l| l.trim().to_string()));
        rest = &after[end..];
    }
    out
}

/// Grafana's variables, replaced by values that keep the expression's shape.
fn without_variables(expr: &str) -> String {
    expr.replace("$__rate_interval", "5m")
        .replace("$__interval", "1m")
        .replace("$__range", "1h")
}

fn selectors(expr: &Expr, out: &mut Vec<VectorSelector>) {
    match expr {
        Expr::Aggregate(a) => {
            selectors(&a.expr, out);
            if let Some(p) = &a.param {
                selectors(p, out);
            }
        }
        Expr::Unary(u) => selectors(&u.expr, out),
        Expr::Binary(b) => {
            selectors(&b.lhs, out);
            selectors(&b.rhs, out);
        }
        Expr::Paren(p) => selectors(&p.expr, out),
        Expr::Subquery(s) => selectors(&s.expr, out),
        Expr::VectorSelector(v) => out.push(v.clone()),
        Expr::MatrixSelector(m) => out.push(m.vs.clone()),
        Expr::Call(c) => c.args.args.iter().for_each(|a| selectors(a, out)),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

/// Every PromQL expression of a dashboard: panel targets, and `label_values(<expr>, label)`
/// template queries.
fn expressions(dashboard: &Value) -> Vec<String> {
    fn walk(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(fields) => {
                for (key, v) in fields {
                    match (key.as_str(), v) {
                        ("expr", Value::String(e)) => out.push(e.clone()),
                        ("query" | "definition", Value::String(q))
                            if q.starts_with("label_values(") =>
                        {
                            let inner = &q["label_values(".len()..q.rfind(',').unwrap()];
                            out.push(inner.to_string());
                        }
                        _ => walk(v, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(dashboard, &mut out);
    out
}

fn dashboards() -> Vec<(PathBuf, Value)> {
    let dir = repo().join("charts/plimsoll/dashboards");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|f| {
            let json = serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
            (f, json)
        })
        .collect()
}

/// The problems of one expression: unknown metrics, selectors without a name, unknown labels.
fn problems(expr: &str, recorded: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let parsed = match parser::parse(&without_variables(expr)) {
        Ok(p) => p,
        Err(e) => return vec![format!("{expr}: does not parse: {e}")],
    };
    let mut found = Vec::new();
    selectors(&parsed, &mut found);
    let mut out = Vec::new();
    for selector in found {
        let Some(name) = &selector.name else {
            out.push(format!("{expr}: a selector without a metric name"));
            continue;
        };
        let Some(labels) = recorded.get(name) else {
            out.push(format!("{expr}: {name} is not recorded by our rules"));
            continue;
        };
        for matcher in &selector.matchers.matchers {
            if matcher.name != "__name__" && !labels.contains(&matcher.name) {
                out.push(format!("{expr}: {name} has no label {}", matcher.name));
            }
        }
    }
    out
}

#[test]
fn dashboards_read_only_series_our_rules_record() {
    let recorded = recorded();
    assert!(recorded.contains_key("slo:error_budget_remaining:ratio"));
    let mut used = BTreeSet::new();
    for (file, dashboard) in dashboards() {
        let exprs = expressions(&dashboard);
        assert!(exprs.len() >= 5, "{}: {exprs:?}", file.display());
        for expr in &exprs {
            let found = problems(expr, &recorded);
            assert!(found.is_empty(), "{}: {found:#?}", file.display());
            let mut sel = Vec::new();
            selectors(&parser::parse(&without_variables(expr)).unwrap(), &mut sel);
            used.extend(sel.into_iter().filter_map(|s| s.name));
        }
    }
    for needed in [
        "slo:info",
        "slo:sli_error:ratio_window",
        "slo:error_budget_remaining:ratio",
        "slo:burn_rate:page_fast",
        "slo:burn_rate:page_slow",
        "slo:burn_rate:ticket_fast",
        "slo:burn_rate:ticket_slow",
        "slo:sli_errors:increase5m",
        "slo:sli_total:increase5m",
        "ALERTS",
    ] {
        assert!(used.contains(needed), "no panel shows {needed}: {used:?}");
    }
    assert!(
        used.iter()
            .all(|u| recorded.contains_key(u) || ALERT_SERIES.contains(&u.as_str()))
    );
    // Nothing that only some windows record: `ratio_rate1h` is a 30-day SLO's, a 7-day SLO
    // records `ratio_rate14m` instead.
    let windowed: Vec<&String> = used
        .iter()
        .filter(|u| u.starts_with("slo:sli_error:ratio_rate"))
        .collect();
    assert!(windowed.is_empty(), "{windowed:?}");
}

#[test]
fn the_check_catches_a_series_we_do_not_record() {
    let recorded = recorded();
    assert!(problems("slo:error_budget_remaining:ratio{slo=\"a\"}", &recorded).is_empty());
    let unknown = problems(
        "sum(rate(http_requests_total[$__rate_interval]))",
        &recorded,
    );
    assert_eq!(
        unknown,
        [
            "sum(rate(http_requests_total[$__rate_interval])): http_requests_total is not recorded by our rules"
        ]
    );
    let label = problems("slo:info{namespace=\"shop\"}", &recorded);
    assert_eq!(
        label,
        ["slo:info{namespace=\"shop\"}: slo:info has no label namespace"]
    );
    assert_eq!(problems("{__name__=~\"slo:.*\"}", &recorded).len(), 1);
}

fn panels(dashboard: &Value) -> &Vec<Value> {
    dashboard["panels"].as_array().unwrap()
}

#[test]
fn the_dashboard_has_the_promised_panels() {
    let (_, dashboard) = &dashboards()[0];
    let titles: Vec<&str> = panels(dashboard)
        .iter()
        .map(|p| p["title"].as_str().unwrap())
        .collect();
    assert_eq!(
        titles,
        [
            "Service level objectives",
            "Error budget left now",
            "Error budget left: $slo",
            "Burn rate (alert windows)",
            "SLI and traffic (5m)",
            "Errors spent against the budget (events in the rolling window)",
            "Per group (groupBy)",
            "Alerts firing",
        ]
    );
    let variables: Vec<&str> = dashboard["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        variables,
        ["datasource", "namespace", "slo", "plimsoll_url"]
    );
    // Every panel and target reads from the chosen Prometheus.
    for panel in panels(dashboard) {
        assert_eq!(panel["datasource"]["uid"], "${datasource}");
        for target in panel["targets"].as_array().unwrap() {
            assert_eq!(target["datasource"]["uid"], "${datasource}");
        }
    }
}

/// Every link of the dashboard with Grafana's variables replaced: the UI's base address and an
/// SLO's namespace and name.
fn links(dashboard: &Value, base: &str) -> Vec<String> {
    fn walk(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(fields) => {
                for (key, v) in fields {
                    match (key.as_str(), v) {
                        ("url", Value::String(u)) => out.push(u.clone()),
                        _ => walk(v, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(dashboard, &mut out);
    out.iter()
        .map(|u| {
            u.replace("${plimsoll_url}", base)
                .replace("${__data.fields.slo_namespace}", "shop")
                .replace("${__data.fields.slo}", "checkout")
                .replace("${__field.labels.slo_namespace}", "shop")
                .replace("${__field.labels.slo}", "checkout")
        })
        .collect()
}

#[test]
fn slos_link_to_their_page_in_the_ui_at_the_configured_address() {
    let (_, dashboard) = &dashboards()[0];
    let base = "https://slo.example.com";
    let page = plimsoll::ui::slo_url(base, "shop", "checkout");
    let links = links(dashboard, base);
    // The SLO column of both tables and each budget stat open the SLO's page; the dashboard's
    // own link opens the list.
    assert_eq!(links.iter().filter(|l| **l == page).count(), 3, "{links:?}");
    assert!(links.contains(&format!("{base}/ui")), "{links:?}");
    assert!(links.iter().all(|l| l.starts_with(base)), "{links:?}");
    let variable = dashboard["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "plimsoll_url")
        .unwrap();
    assert_eq!(variable["type"], "textbox");
    // `plimsoll local` serves its UI there by default.
    assert_eq!(variable["query"], "http://localhost:8080");
}

#[test]
fn nothing_measured_shows_no_data_in_grey_never_a_healthy_colour() {
    let (_, dashboard) = &dashboards()[0];
    for title in ["Service level objectives", "Error budget left now"] {
        let panel = panels(dashboard)
            .iter()
            .find(|p| p["title"] == title)
            .unwrap();
        let defaults = &panel["fieldConfig"]["defaults"];
        let special = &defaults["mappings"][0];
        assert_eq!(special["type"], "special", "{title}");
        assert_eq!(special["options"]["match"], "null+nan", "{title}");
        assert_eq!(special["options"]["result"]["text"], "No data", "{title}");
        assert_eq!(special["options"]["result"]["color"], "#808080", "{title}");
        // An SLO without a budget series still has a row: NaN, which the mapping shows grey.
        let budget = panel["targets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["expr"].as_str().unwrap())
            .find(|e| e.contains("slo:error_budget_remaining:ratio"))
            .unwrap();
        assert!(budget.contains(" or on(slo_namespace, slo) ("), "{budget}");
        assert!(budget.ends_with(" * NaN)"), "{budget}");
    }
    let stat = panels(dashboard)
        .iter()
        .find(|p| p["type"] == "stat")
        .unwrap();
    assert_eq!(stat["fieldConfig"]["defaults"]["noValue"], "No data");
}
