//! The list page: every SLO, filtered, sorted and paged on the server, so a page with 10,000
//! SLOs is as light as one with ten.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write;

use k8s_openapi::jiff::Timestamp;
use serde::Deserialize;

use super::chart;
use super::html::{budget_bar, escape, page, state_badge, url_part};
use super::row::Row;
use crate::api::BudgetState;

/// Rows per page.
pub const PAGE_SIZE: usize = 50;

/// The list's query string: `?namespace=&state=&q=&sort=&page=`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub state: String,
    /// Text in the namespace, name or service (case-insensitive).
    #[serde(default)]
    pub q: String,
    /// `budget` (least left first; the default), `name` or `burn` (fastest 1h burn first).
    #[serde(default)]
    pub sort: String,
    /// 1-based.
    #[serde(default)]
    pub page: Option<usize>,
}

/// The rows of one page, and how many matched.
pub struct Selection<'a> {
    pub rows: Vec<&'a Row>,
    pub matched: usize,
    pub page: usize,
    pub pages: usize,
}

/// Filters, sorts and cuts out the requested page.
pub fn select<'a>(rows: &'a [Row], query: &ListQuery) -> Selection<'a> {
    let needle = query.q.trim().to_lowercase();
    let mut matched: Vec<&Row> = rows
        .iter()
        .filter(|r| query.namespace.is_empty() || r.namespace == query.namespace)
        .filter(|r| query.state.is_empty() || r.state().eq_ignore_ascii_case(&query.state))
        .filter(|r| {
            needle.is_empty()
                || [&r.namespace, &r.name, &r.service]
                    .iter()
                    .any(|f| f.to_lowercase().contains(&needle))
        })
        .collect();
    // Keys parsed once per row, not once per comparison: 10,000 rows sort in about 140,000.
    let key = |r: &Row| (r.namespace.clone(), r.name.clone());
    match query.sort.as_str() {
        "name" => matched.sort_by_cached_key(|r| key(r)),
        "burn" => matched.sort_by_cached_key(|r| (std::cmp::Reverse(Ordered(burn_1h(r))), key(r))),
        // Least budget first; SLOs without numbers after those with.
        _ => matched
            .sort_by_cached_key(|r| (Ordered(r.remaining().unwrap_or(f64::INFINITY)), key(r))),
    }
    let pages = matched.len().div_ceil(PAGE_SIZE).max(1);
    let page = query.page.unwrap_or(1).clamp(1, pages);
    let total = matched.len();
    let rows = matched
        .into_iter()
        .skip((page - 1) * PAGE_SIZE)
        .take(PAGE_SIZE)
        .collect();
    Selection {
        rows,
        matched: total,
        page,
        pages,
    }
}

/// A number ordered by `total_cmp`, for sort keys.
struct Ordered(f64);

impl PartialEq for Ordered {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for Ordered {}

impl PartialOrd for Ordered {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Ordered {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

fn burn_1h(row: &Row) -> f64 {
    row.status
        .burn_rates
        .iter()
        .find(|(w, _)| w.as_str() == "1h")
        .and_then(|(_, r)| r.parse().ok())
        .unwrap_or(f64::NEG_INFINITY)
}

/// A row's sparkline: budget left at each bucket end, and the span it covers (unix seconds).
pub struct Spark {
    pub points: Vec<(f64, f64)>,
    pub from: f64,
    pub to: f64,
}

/// What the page says besides the rows.
pub struct ListContext<'a> {
    pub all: &'a [Row],
    pub now: Timestamp,
    /// Why the sparklines could not be read, if they could not.
    pub history_error: Option<String>,
    /// Where the numbers come from, such as the Prometheus URL (never credentials).
    pub source: &'a str,
    /// SLOs or manifests that could not be read.
    pub problems: &'a [String],
}

/// The whole list page.
pub fn render(
    query: &ListQuery,
    selection: &Selection,
    sparks: &HashMap<(String, String), Spark>,
    context: &ListContext,
) -> String {
    let mut body = String::from("<h1>Service level objectives</h1>");
    let _ = write!(
        body,
        "<p class=\"muted\">{} SLO(s) · {} · numbers from {}</p>",
        context.all.len(),
        state_counts(context.all),
        escape(context.source)
    );
    if !context.problems.is_empty() {
        let _ = write!(
            body,
            "<section id=\"problems\"><h2>Not read ({})</h2><ul>",
            context.problems.len()
        );
        for problem in context.problems {
            let _ = write!(body, "<li class=\"problem\">{}</li>", escape(problem));
        }
        body.push_str("</ul></section>");
    }
    body.push_str(&filter_form(query, context.all));
    if let Some(error) = &context.history_error {
        let _ = write!(
            body,
            "<p class=\"problem\">Budget history unavailable: {}</p>",
            escape(error)
        );
    }
    let _ = write!(
        body,
        "<p id=\"matched\">{} matching SLO(s)</p>",
        selection.matched
    );
    body.push_str(
        "<table id=\"slos\"><thead><tr><th scope=\"col\">Namespace</th><th scope=\"col\">Name</th>\
         <th scope=\"col\">Service</th><th scope=\"col\">Objective</th><th scope=\"col\" \
         class=\"num\">SLI</th><th scope=\"col\">Budget left</th><th scope=\"col\">Burn rates</th>\
         <th scope=\"col\">State</th><th scope=\"col\">Decision</th><th scope=\"col\">Data</th>\
         <th scope=\"col\">Budget over the window</th></tr></thead><tbody>",
    );
    for row in &selection.rows {
        body.push_str(&table_row(row, sparks, context.now));
    }
    body.push_str("</tbody></table>");
    body.push_str(&pager(query, selection));
    page("SLOs", &body)
}

fn table_row(row: &Row, sparks: &HashMap<(String, String), Spark>, now: Timestamp) -> String {
    let href = format!(
        "/ui/slo/{}/{}",
        url_part(&row.namespace),
        url_part(&row.name)
    );
    let burn: Vec<String> = row
        .burn_rates()
        .iter()
        .map(|(w, r)| format!("{} {}", escape(w), escape(r)))
        .collect();
    let spark = sparks
        .get(&(row.namespace.clone(), row.name.clone()))
        .map_or_else(
            || chart::sparkline(&[], 0.0, 1.0),
            |s| chart::sparkline(&s.points, s.from, s.to),
        );
    format!(
        "<tr data-slo=\"{key}\"><td>{ns}</td><td><a href=\"{href}\">{name}</a></td><td>{service}</td>\
         <td>{objective}% / {window}</td><td class=\"num sli\">{sli}</td><td class=\"budget\">{bar}</td>\
         <td class=\"burn\">{burn}</td><td>{state}</td><td class=\"decision\">{decision}</td>\
         <td class=\"fresh\">{fresh}</td><td>{spark}</td></tr>",
        key = escape(&format!("{}/{}", row.namespace, row.name)),
        ns = escape(&row.namespace),
        name = escape(&row.name),
        service = escape(&row.service),
        objective = escape(&row.objective),
        window = escape(&row.window),
        sli = row
            .status
            .sli
            .as_deref()
            .map_or_else(|| "–".to_string(), |s| format!("{}%", escape(s))),
        bar = budget_bar(row.remaining()),
        burn = if burn.is_empty() {
            "–".to_string()
        } else {
            burn.join(" · ")
        },
        state = state_badge(row.state()),
        decision = row.decision(),
        fresh = escape(&row.freshness(now)),
    )
}

fn state_counts(rows: &[Row]) -> String {
    let counts: Vec<String> = BudgetState::ALL
        .iter()
        .map(|s| s.as_str())
        .filter_map(|s| {
            let n = rows.iter().filter(|r| r.state() == s).count();
            (n > 0).then(|| format!("{n} {s}"))
        })
        .collect();
    if counts.is_empty() {
        "none yet".to_string()
    } else {
        counts.join(", ")
    }
}

fn filter_form(query: &ListQuery, all: &[Row]) -> String {
    let namespaces: BTreeSet<&str> = all.iter().map(|r| r.namespace.as_str()).collect();
    let option = |value: &str, label: &str, current: &str| {
        format!(
            "<option value=\"{}\"{}>{}</option>",
            escape(value),
            if value == current { " selected" } else { "" },
            escape(label)
        )
    };
    let mut ns = option("", "all", &query.namespace);
    for n in namespaces {
        ns.push_str(&option(n, n, &query.namespace));
    }
    let mut states = option("", "all", &query.state);
    for s in BudgetState::ALL.map(BudgetState::as_str) {
        states.push_str(&option(s, s, &query.state));
    }
    let mut sorts = String::new();
    for (value, label) in [
        ("budget", "least budget left"),
        ("burn", "fastest 1h burn"),
        ("name", "namespace and name"),
    ] {
        let current = if query.sort.is_empty() {
            "budget"
        } else {
            &query.sort
        };
        sorts.push_str(&option(value, label, current));
    }
    format!(
        "<form class=\"filter\" method=\"get\" action=\"/ui\" role=\"search\">\
         <label for=\"q\">Search<input id=\"q\" name=\"q\" type=\"search\" value=\"{}\" \
         placeholder=\"name, service or namespace\"></label>\
         <label for=\"namespace\">Namespace<select id=\"namespace\" name=\"namespace\">{ns}</select></label>\
         <label for=\"state\">State<select id=\"state\" name=\"state\">{states}</select></label>\
         <label for=\"sort\">Sort by<select id=\"sort\" name=\"sort\">{sorts}</select></label>\
         <button type=\"submit\">Filter</button> <a href=\"/ui\">Clear</a></form>",
        escape(&query.q)
    )
}

fn pager(query: &ListQuery, selection: &Selection) -> String {
    let link = |page: usize, text: &str, rel: &str| {
        format!(
            "<a rel=\"{rel}\" href=\"/ui?namespace={}&amp;state={}&amp;q={}&amp;sort={}&amp;page={page}\">{text}</a>",
            url_part(&query.namespace),
            url_part(&query.state),
            url_part(&query.q),
            url_part(&query.sort),
        )
    };
    let mut out = format!(
        "<nav class=\"pages\" aria-label=\"pages\"><span>Page {} of {}</span>",
        selection.page, selection.pages
    );
    if selection.page > 1 {
        out.push_str(&link(selection.page - 1, "Previous", "prev"));
    }
    if selection.page < selection.pages {
        out.push_str(&link(selection.page + 1, "Next", "next"));
    }
    out.push_str("</nav>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ErrorBudgetStatus, ServiceLevelObjectiveStatus};

    fn row(ns: &str, name: &str, remaining: Option<&str>) -> Row {
        Row {
            namespace: ns.into(),
            name: name.into(),
            service: format!("svc-{name}"),
            objective: "99.9".into(),
            window: "30d".into(),
            status: ServiceLevelObjectiveStatus {
                error_budget: remaining.map(|r| ErrorBudgetStatus {
                    remaining: r.into(),
                    ..ErrorBudgetStatus::default()
                }),
                ..ServiceLevelObjectiveStatus::default()
            },
        }
    }

    #[test]
    fn least_budget_first_and_no_numbers_last() {
        let rows = vec![
            row("a", "x", Some("50.0")),
            row("a", "y", None),
            row("b", "z", Some("-3.0")),
        ];
        let s = select(&rows, &ListQuery::default());
        let names: Vec<&str> = s.rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["z", "x", "y"]);
        let q = ListQuery {
            q: "SVC-Y".into(),
            ..ListQuery::default()
        };
        assert_eq!(select(&rows, &q).matched, 1);
        let q = ListQuery {
            namespace: "b".into(),
            ..ListQuery::default()
        };
        assert_eq!(select(&rows, &q).rows[0].name, "z");
    }

    #[test]
    fn pages_are_cut_and_clamped() {
        let rows: Vec<Row> = (0..120)
            .map(|i| row("a", &format!("s{i:03}"), Some("10.0")))
            .collect();
        let q = |page| ListQuery {
            sort: "name".into(),
            page: Some(page),
            ..ListQuery::default()
        };
        let last = select(&rows, &q(3));
        assert_eq!((last.rows.len(), last.pages, last.page), (20, 3, 3));
        assert_eq!(select(&rows, &q(99)).page, 3);
        assert_eq!(select(&rows, &q(0)).rows[0].name, "s000");
    }

    #[test]
    fn names_are_escaped_in_the_page() {
        let rows = vec![row("a", "<img src=x>", Some("1.0"))];
        let selection = select(&rows, &ListQuery::default());
        let context = ListContext {
            all: &rows,
            now: Timestamp::UNIX_EPOCH,
            history_error: None,
            source: "http://p",
            problems: &["x.yaml: <b>spec.objective</b>: bad".to_string()],
        };
        let html = render(&ListQuery::default(), &selection, &HashMap::new(), &context);
        assert!(!html.contains("<img"), "{html}");
        assert!(html.contains("&lt;img src=x&gt;"));
        assert!(html.contains("x.yaml: &lt;b&gt;spec.objective&lt;/b&gt;: bad"));
    }
}
