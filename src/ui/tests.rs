//! The pages as a whole: what an SLO's page shows for calendar and groupBy SLOs, and that no
//! credential reaches a page.

use std::collections::BTreeMap;

use k8s_openapi::jiff::Timestamp;

use super::detail::{self, DetailView, Events, Plot};
use super::{Detail, Row, shown_url};
use crate::api::ServiceLevelObjectiveStatus;

fn detail(spec: serde_json::Value) -> Detail {
    let object = serde_json::from_value(serde_json::json!({
        "apiVersion": "plimsoll.dev/v1alpha1", "kind": "ServiceLevelObjective",
        "metadata": {"name": "api", "namespace": "shop"}, "spec": spec,
    }))
    .unwrap();
    let slo = crate::model::validate(&object).unwrap();
    Detail {
        row: Row {
            namespace: "shop".into(),
            name: "api".into(),
            service: "api".into(),
            objective: "99.9".into(),
            window: "month".into(),
            status: ServiceLevelObjectiveStatus::default(),
        },
        slo: Some(slo),
        problem: None,
        uid: None,
        source: "api.yaml".into(),
        manifest: String::new(),
    }
}

fn render(detail: &Detail, groups: Option<detail::GroupBudgets>, now: Timestamp) -> String {
    let plot = Plot {
        from: 0.0,
        to: 1.0,
        points: vec![(0.0, 100.0), (1.0, 90.0)],
    };
    detail::render(&DetailView {
        detail,
        now,
        burn_down: Ok(plot.clone()),
        ratios: Ok(plot),
        range: "1d",
        alerts: Ok(Vec::new()),
        groups: groups.map(Ok),
        events: Events::NotKept("none here"),
        rules: String::new(),
    })
}

#[test]
fn a_calendar_slo_shows_its_current_period_and_groups_come_worst_first() {
    let spec = serde_json::json!({
        "service": "api", "objective": 99.9, "window": "month", "timeZone": "Europe/Berlin",
        "indicator": {"ratio": {"errors": "e_total{code=\"500\"}", "total": "e_total",
                                "groupBy": ["route"]}},
    });
    let d = detail(spec);
    let now: Timestamp = "2026-03-15T12:00:00Z".parse().unwrap();
    // As history::groups hands them over: sorted, least budget left first.
    let groups = vec![
        (
            BTreeMap::from([("route".to_string(), "/pay".to_string())]),
            -12.0,
        ),
        (
            BTreeMap::from([("route".to_string(), "/list".to_string())]),
            80.0,
        ),
    ];
    let page = render(&d, Some(groups), now);
    assert!(
        page.contains("Current period: 2026-02-28T23:00:00Z to 2026-03-31T22:00:00Z"),
        "March in Berlin, across the DST change: {page}"
    );
    let (pay, list) = (
        page.find("route=/pay").unwrap(),
        page.find("route=/list").unwrap(),
    );
    assert!(pay < list, "worst first");
    assert!(page.contains("Groups, worst first"));
}

#[test]
fn a_rolling_slo_without_groups_has_no_period_and_no_group_table() {
    let spec = serde_json::json!({
        "service": "api", "objective": 99.9, "window": "28d",
        "indicator": {"ratio": {"errors": "e_total{code=\"500\"}", "total": "e_total"}},
    });
    let page = render(&detail(spec), None, Timestamp::UNIX_EPOCH);
    assert!(!page.contains("Current period"));
    assert!(!page.contains("Groups, worst first"));
    assert!(
        page.contains("page: 14.4x burn over"),
        "the page threshold is drawn"
    );
}

#[test]
fn urls_on_pages_carry_no_credentials() {
    assert_eq!(
        shown_url("https://admin:s3cret@prom.example.com:9090/prometheus?token=abc#x"),
        "https://prom.example.com:9090/prometheus"
    );
    assert_eq!(shown_url("http://127.0.0.1:9090"), "http://127.0.0.1:9090");
    assert_eq!(shown_url("http://u@h/"), "http://h/");
    // Passwords with characters a URL may not hold there: never shown, even in part.
    for odd in [
        "http://u:s3cr/et@h:9090",
        "http://u:s3c?ret@h",
        "http://u:s3c#ret@h",
        "http://u:s3cret@h:9090/x?token=s3c",
    ] {
        let shown = shown_url(odd);
        assert!(!shown.contains("s3c"), "{odd} -> {shown}");
    }
}
