//! One SLO's page: the headline numbers, the burn-down over the window, the error ratio against
//! the alert thresholds, burn rates, alerts firing, the rollback policy and what it did, Events,
//! the spec and the generated rules.

use std::collections::BTreeMap;
use std::fmt::Write;

use k8s_openapi::jiff::Timestamp;

use super::chart::{self, Chart, Line, Unit};
use super::history::FiringAlert;
use super::html::{budget_bar, escape, page, state_badge};
use super::row::Detail;
use super::tables;
use crate::model::Slo;
use crate::rules::windows::{Tier, burn_windows};

/// Events as a source keeps them.
#[derive(Debug, Clone, PartialEq)]
pub enum Events {
    /// This mode keeps no Events; says why.
    NotKept(&'static str),
    Listed(Vec<EventLine>),
    Failed(String),
}

/// One Event about the SLO.
#[derive(Debug, Clone, PartialEq)]
pub struct EventLine {
    pub time: String,
    pub kind: String,
    pub reason: String,
    pub note: String,
}

/// A chart's span (unix seconds) and points.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plot {
    pub from: f64,
    pub to: f64,
    pub points: Vec<(f64, f64)>,
}

/// Each group's labels and budget left in percent, worst first.
pub type GroupBudgets = Vec<(BTreeMap<String, String>, f64)>;

/// Everything the page shows, read before it is drawn.
pub struct DetailView<'a> {
    pub detail: &'a Detail,
    pub now: Timestamp,
    /// The span the burn-down covers (unix seconds) and budget left at each bucket end.
    pub burn_down: Result<Plot, String>,
    /// The error ratio chart's span and points.
    pub ratios: Result<Plot, String>,
    /// The ratio chart's range as chosen (`1d`, `7d`, `window`).
    pub range: &'a str,
    pub alerts: Result<Vec<FiringAlert>, String>,
    /// Per group budget left, worst first (groupBy SLOs only).
    pub groups: Option<Result<GroupBudgets, String>>,
    pub events: Events,
    /// The rule file the SLO generates.
    pub rules: String,
}

pub fn render(view: &DetailView) -> String {
    let d = view.detail;
    let row = &d.row;
    let key = format!("{}/{}", row.namespace, row.name);
    let mut body = format!(
        "<p><a href=\"/ui\">All SLOs</a></p><h1>{} {}</h1><p class=\"muted\">service {} · {}% over \
         {} · from {}</p>",
        escape(&key),
        state_badge(row.state()),
        escape(&row.service),
        escape(&row.objective),
        escape(&row.window),
        escape(&d.source)
    );
    if let Some(problem) = &d.problem {
        let _ = write!(
            body,
            "<p class=\"problem\">This SLO is not valid: {}</p>",
            escape(problem)
        );
    }
    if let Some(text) = d.slo.as_ref().and_then(|s| s.description.as_deref()) {
        let _ = write!(body, "<p>{}</p>", escape(text));
    }
    body.push_str(&headline(view));
    body.push_str(&charts(view));
    body.push_str(&tables::burn_table(view));
    if let Some(groups) = &view.groups {
        body.push_str(&tables::group_table(groups));
    }
    body.push_str(&tables::alert_table(&view.alerts));
    body.push_str(&tables::rollback(view));
    body.push_str(&tables::event_table(&view.events));
    let _ = write!(
        body,
        "<h2 id=\"spec\">Spec</h2><pre>{}</pre><h2 id=\"rules\">Generated rules</h2><pre>{}</pre>",
        escape(&d.manifest),
        escape(&view.rules)
    );
    page(&key, &body)
}

fn headline(view: &DetailView) -> String {
    let row = &view.detail.row;
    let s = &row.status;
    let budget = s.error_budget.as_ref();
    let cell = |id: &str, value: String, label: &str| {
        format!("<div id=\"{id}\"><b>{value}</b><span>{label}</span></div>")
    };
    let mut out = String::from("<section class=\"headline\" aria-label=\"headline numbers\">");
    out.push_str(&cell(
        "sli",
        s.sli
            .as_deref()
            .map_or("–".into(), |v| format!("{}%", escape(v))),
        &format!("SLI (objective {}%)", escape(&row.objective)),
    ));
    out.push_str(&cell(
        "remaining",
        budget.map_or("–".into(), |b| format!("{}%", escape(&b.remaining))),
        "error budget left",
    ));
    out.push_str(&cell(
        "consumed",
        budget.map_or("–".into(), |b| {
            format!(
                "{} / {} min",
                escape(&b.consumed_minutes),
                escape(&b.total_minutes)
            )
        }),
        "budget spent, in minutes of full outage",
    ));
    out.push_str(&cell(
        "exhaustion",
        s.exhaustion.as_deref().map_or("–".into(), escape),
        "budget gone at the 6h burn rate",
    ));
    out.push_str(&cell("decision", row.decision().into(), "rollback signal"));
    out.push_str(&cell("freshness", escape(&row.freshness(view.now)), "data"));
    out.push_str("</section>");
    if let Some((start, end)) = view
        .detail
        .slo
        .as_ref()
        .and_then(|slo| slo.window.period(view.now))
    {
        let _ = write!(
            out,
            "<p id=\"period\">Current period: {} to {} (calendar window).</p>",
            start, end
        );
    }
    out.push_str(&budget_bar(row.remaining()));
    out
}

fn charts(view: &DetailView) -> String {
    let Some(slo) = &view.detail.slo else {
        return String::new();
    };
    let mut out = String::from("<h2 id=\"burn-down\">Error budget over the window</h2>");
    match &view.burn_down {
        Ok(Plot { from, to, points }) if !points.is_empty() => {
            // A calendar period's even spend reaches 0 at the period's end, not now.
            let end = slo
                .window
                .period(view.now)
                .map_or(*to, |(_, end)| end.as_second() as f64);
            let chart = Chart {
                id: "burn-down-chart".into(),
                title: "Error budget left".into(),
                description: format!(
                    "Budget left over the window, from 100% to {:.1}% now; the dashed line is an even spend.",
                    points.last().map_or(0.0, |p| p.1)
                ),
                from: *from,
                to: end,
                unit: Unit::Percent,
                include: vec![0.0, 100.0],
                lines: vec![
                    Line {
                        label: "budget left".into(),
                        points: points.clone(),
                        color: "#0b5cad",
                        dashed: false,
                    },
                    Line {
                        label: "even spend".into(),
                        points: vec![(*from, 100.0), (end, 0.0)],
                        color: "#5c6670",
                        dashed: true,
                    },
                ],
            };
            out.push_str(&chart::svg(&chart));
        }
        Ok(_) => out.push_str("<p class=\"muted\">No recorded counts in this window yet.</p>"),
        Err(e) => out.push_str(&not_read(e)),
    }
    let _ = write!(
        out,
        "<h2 id=\"error-ratio\">Error ratio</h2><p class=\"legend\">Over the last: {}</p>",
        ["1d", "7d", "window"]
            .iter()
            .map(|r| if *r == view.range {
                format!("<b>{r}</b>")
            } else {
                format!("<a href=\"?range={r}#error-ratio\">{r}</a>")
            })
            .collect::<Vec<_>>()
            .join(" · ")
    );
    match &view.ratios {
        Ok(Plot { from, to, points }) if !points.is_empty() => {
            out.push_str(&chart::svg(&ratio_chart(slo, *from, *to, points)))
        }
        Ok(_) => out.push_str("<p class=\"muted\">No traffic recorded in this range.</p>"),
        Err(e) => out.push_str(&not_read(e)),
    }
    out
}

/// The error ratio with one dashed line per alert threshold (burn factor times the budget).
fn ratio_chart(slo: &Slo, from: f64, to: f64, points: &[(f64, f64)]) -> Chart {
    let budget = slo.error_budget().as_f64() / 100.0;
    let mut lines = vec![Line {
        label: "error ratio".into(),
        points: points.to_vec(),
        color: "#0b5cad",
        dashed: false,
    }];
    let mut seen = Vec::new();
    for burn in burn_windows(&slo.window) {
        let (tier, enabled, color) = match burn.tier {
            Tier::Page => ("page", slo.alerting.page.is_some(), "#b3261e"),
            Tier::Ticket => ("ticket", slo.alerting.ticket.is_some(), "#8a4500"),
        };
        if !enabled || seen.contains(&burn.factor) {
            continue;
        }
        seen.push(burn.factor);
        let factor: f64 = burn.factor.parse().unwrap_or(1.0);
        lines.push(Line {
            label: format!("{tier}: {}x burn over {}", burn.factor, burn.long),
            points: vec![(from, factor * budget), (to, factor * budget)],
            color,
            dashed: true,
        });
    }
    Chart {
        id: "error-ratio-chart".into(),
        title: "Error ratio".into(),
        description: "The error ratio in each interval, and the burn-rate alert thresholds.".into(),
        from,
        to,
        unit: Unit::Ratio,
        include: vec![0.0],
        lines,
    }
}

/// The span of the ratio chart for a `?range=` value: `1d`, `7d` or the whole window (as the
/// burn-down counts it: a calendar window's period so far).
pub fn ratio_seconds(range: &str, window_seconds: u64) -> u64 {
    match range {
        "7d" => 7 * 86_400,
        "window" => window_seconds,
        _ => 86_400,
    }
}

/// A read that failed, as the page says it.
pub(super) fn not_read(error: &str) -> String {
    format!("<p class=\"problem\">Not read: {}</p>", escape(error))
}
