//! The tables of an SLO's page: burn rates, groups, alerts now, the rollback policy and its
//! targets, Events. Each says when its read failed rather than leave the section out.

use std::fmt::Write;

use super::detail::{DetailView, Events, GroupBudgets, not_read};
use super::history::FiringAlert;
use super::html::{budget_bar, escape, state_badge};

pub(super) fn burn_table(view: &DetailView) -> String {
    let rates = view.detail.row.burn_rates();
    if rates.is_empty() {
        return "<h2>Burn rates</h2><p class=\"muted\">None read yet.</p>".into();
    }
    let mut out = String::from(
        "<h2>Burn rates</h2><table id=\"burn-rates\"><thead><tr><th scope=\"col\">Window</th>\
         <th scope=\"col\" class=\"num\">Burn rate</th></tr></thead><tbody>",
    );
    for (window, rate) in rates {
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=\"num\">{}</td></tr>",
            escape(window),
            escape(rate)
        );
    }
    out.push_str("</tbody></table><p class=\"legend\">1 spends exactly the whole budget over the window.</p>");
    out
}

pub(super) fn group_table(groups: &Result<GroupBudgets, String>) -> String {
    let mut out = String::from("<h2 id=\"groups\">Groups, worst first</h2>");
    match groups {
        Ok(list) if !list.is_empty() => {
            out.push_str("<table><thead><tr><th scope=\"col\">Group</th><th scope=\"col\">Budget left</th></tr></thead><tbody>");
            for (labels, left) in list {
                let text: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let _ = write!(
                    out,
                    "<tr><td>{}</td><td>{}</td></tr>",
                    escape(&text.join(", ")),
                    budget_bar(Some(*left))
                );
            }
            out.push_str("</tbody></table>");
        }
        Ok(_) => out.push_str("<p class=\"muted\">No group has data yet.</p>"),
        Err(e) => out.push_str(&not_read(e)),
    }
    out
}

pub(super) fn alert_table(alerts: &Result<Vec<FiringAlert>, String>) -> String {
    let mut out = String::from("<h2 id=\"alerts\">Alerts now</h2>");
    match alerts {
        Ok(list) if list.is_empty() => out.push_str("<p>No alert is pending or firing.</p>"),
        Ok(list) => {
            out.push_str(
                "<table><thead><tr><th scope=\"col\">Alert</th><th scope=\"col\">State</th>\
                 <th scope=\"col\">Since</th><th scope=\"col\">Labels</th><th scope=\"col\">Summary</th></tr></thead><tbody>",
            );
            for a in list {
                let labels: Vec<String> = ["severity", "long", "short", "burn_rate"]
                    .iter()
                    .filter_map(|k| a.labels.get(*k).map(|v| format!("{k}={v}")))
                    .collect();
                let _ = write!(
                    out,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    escape(a.labels.get("alertname").map_or("", |s| s)),
                    escape(&a.state),
                    escape(a.active_at.as_deref().unwrap_or("")),
                    escape(&labels.join(", ")),
                    escape(a.annotations.get("summary").map_or("", |s| s))
                );
            }
            out.push_str("</tbody></table>");
        }
        Err(e) => out.push_str(&not_read(e)),
    }
    out
}

pub(super) fn rollback(view: &DetailView) -> String {
    let mut out = String::from("<h2 id=\"rollback\">Rollback</h2>");
    let Some(slo) = &view.detail.slo else {
        return out;
    };
    let status = view.detail.row.status.rollback.as_ref();
    match &slo.rollback {
        None => out.push_str("<p>No rollback policy: the SLO only observes.</p>"),
        Some(policy) => {
            let mut trigger = format!(
                "budget left below {}%",
                escape(&policy.budget_remaining_below.to_string())
            );
            if let Some(burn) = &policy.burn_rate_above {
                let _ = write!(
                    trigger,
                    ", or a {} burn rate above {}",
                    burn.window, burn.factor
                );
            }
            let _ = write!(
                out,
                "<p>Triggers on {trigger}; clears at {}% left{}{}.</p>",
                escape(&policy.recover_above.to_string()),
                if policy.dry_run { "; dry run" } else { "" },
                if policy.abort_rollouts {
                    "; aborts Argo Rollouts"
                } else {
                    ""
                }
            );
        }
    }
    let since = |r: &crate::api::RollbackStatus| {
        r.since
            .as_deref()
            .map(|s| format!(" since {}", escape(s)))
            .unwrap_or_default()
    };
    let shown = view.detail.row.state();
    let _ = match (view.detail.row.fresh(), status) {
        (true, _) => write!(
            out,
            "<p>State {}{}.</p>",
            state_badge(shown),
            status.map(since).unwrap_or_default()
        ),
        // The policy's memory is not the budget's state now: say what was last measured.
        (false, Some(r)) => write!(
            out,
            "<p>State {} (no fresh data); the policy last measured {:?}{}, and missing data \
             changes nothing.</p>",
            state_badge(shown),
            r.state,
            since(r)
        ),
        (false, None) => write!(
            out,
            "<p>State {}: not measured yet.</p>",
            state_badge(shown)
        ),
    };
    let targets = slo.rollback.iter().flat_map(|r| &r.targets);
    let mut rows = String::new();
    for target in targets {
        let done = status
            .into_iter()
            .flat_map(|r| &r.targets)
            .find(|t| t.name == target.name && t.kind == target.kind);
        let _ = write!(
            rows,
            "<tr><td>{:?}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            target.kind,
            escape(&target.name),
            escape(done.map_or("nothing yet", |t| t.action.as_str())),
            escape(done.and_then(|t| t.revision.as_deref()).unwrap_or("")),
            escape(done.and_then(|t| t.message.as_deref()).unwrap_or(""))
        );
    }
    if !rows.is_empty() {
        let _ = write!(
            out,
            "<table id=\"targets\"><thead><tr><th scope=\"col\">Kind</th><th scope=\"col\">Target</th>\
             <th scope=\"col\">Done in this episode</th><th scope=\"col\">Revision</th>\
             <th scope=\"col\">Details</th></tr></thead><tbody>{rows}</tbody></table>"
        );
    }
    out
}

pub(super) fn event_table(events: &Events) -> String {
    let mut out = String::from("<h2 id=\"events\">Recent Events</h2>");
    match events {
        Events::NotKept(why) => {
            let _ = write!(out, "<p class=\"muted\">{}</p>", escape(why));
        }
        Events::Failed(e) => out.push_str(&not_read(e)),
        Events::Listed(list) if list.is_empty() => out.push_str("<p>None.</p>"),
        Events::Listed(list) => {
            out.push_str("<table><thead><tr><th scope=\"col\">Time</th><th scope=\"col\">Type</th><th scope=\"col\">Reason</th><th scope=\"col\">Message</th></tr></thead><tbody>");
            for e in list {
                let _ = write!(
                    out,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    escape(&e.time),
                    escape(&e.kind),
                    escape(&e.reason),
                    escape(&e.note)
                );
            }
            out.push_str("</tbody></table>");
        }
    }
    out
}
