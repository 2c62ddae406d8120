use super::*;
use crate::prometheus::period::{Member, period_query, period_ratios};

fn sample(labels: &[(&str, &str)], value: f64) -> Sample {
    Sample {
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        value,
    }
}

/// A series of the checkout SLO (UID u-1): its labels, the part and extra labels.
fn own_series(part: &str, extra: &[(&str, &str)], value: f64) -> Sample {
    let mut labels = vec![
        ("slo", "checkout"),
        ("slo_namespace", "shop"),
        ("slo_service", "checkout"),
        ("slo_uid", "u-1"),
        ("plimsoll_part", part),
    ];
    labels.extend_from_slice(extra);
    sample(&labels, value)
}

const GROUP_BY: [String; 0] = [];

fn checkout<'a>(group_by: &'a [String]) -> Identity<'a> {
    Identity {
        namespace: "shop",
        name: "checkout",
        service: "checkout",
        uid: Some("u-1"),
        group_by,
    }
}

#[test]
fn every_query_parses() {
    let scope = ReadingScope::parse(r#"cluster="a""#).unwrap();
    let queries = [
        names_query(&scope),
        record_query("slo:sli_error:ratio_window", &scope),
        period_query(&members(), at(START), at(START + 3607.123), &scope).unwrap(),
    ];
    for q in &queries {
        assert!(promql_parser::parser::parse(q).is_ok(), "{q}");
        assert!(
            q.contains(r#"cluster="a""#),
            "the scope is in every query: {q}"
        );
    }
    assert!(queries[2].contains(r#"slo=~"api|checkout\\.v2""#));
}

/// 2026-12-07T00:00:00Z, a Monday: a week's and no month's start.
const START: f64 = 1_796_601_600.0;

fn at(seconds: f64) -> k8s_openapi::jiff::Timestamp {
    k8s_openapi::jiff::Timestamp::from_millisecond((seconds * 1000.0).round() as i64).unwrap()
}

fn members() -> Vec<Member<'static>> {
    vec![
        Member {
            namespace: "shop",
            name: "checkout.v2",
            slice: None,
        },
        Member {
            namespace: "pay",
            name: "api",
            slice: None,
        },
        Member {
            namespace: "pay",
            name: "sliced",
            slice: Some(crate::model::Duration::from_minutes(1)),
        },
    ]
}

#[test]
fn a_period_sum_runs_from_its_first_interval_to_a_step_after_now() {
    let scope = ReadingScope::default();
    let q = period_query(&members(), at(START), at(START + 3607.123), &scope).unwrap();
    // 5m counts: from 7m30s after the start (steps from 10m: the interval (0, 5m]) to now + 5m.
    let counts = "[5m] offset 1ms)[3457123ms:5m] @ 1796605507.123)";
    assert_eq!(q.matches(counts).count(), 2, "{q}");
    // 1m slices: from 1m30s after the start to now + 1m, and only the sliced SLO's series.
    let slices = r#"1 - avg_over_time(last_over_time(slo:sli_slice_good:bool{slo=~"sliced",slo_namespace=~"pay"}[1m] offset 1ms)[3577123ms:1m] @ 1796605267.123)"#;
    assert!(q.contains(slices), "{q}");
    assert!(!q.contains(r#"sli_errors:increase5m{slo=~"api|checkout\\.v2|sliced""#));
    // Before half a step has passed, no count of the period can exist: no query.
    assert!(period_query(&members()[..2], at(START), at(START + 149.0), &scope).is_none());
    let young = period_query(&members(), at(START), at(START + 149.0), &scope).unwrap();
    assert!(
        young.contains("[119000ms:1m]") && !young.contains("increase5m"),
        "{young}"
    );
}

#[test]
fn record_names_keep_only_ratio_records() {
    let names = record_names(&[
        sample(&[("__name__", "slo:sli_error:ratio_rate5m")], 3.0),
        sample(&[("__name__", "slo:sli_error:ratio_window")], 3.0),
        sample(&[("__name__", "slo:sli_error:ratio_rate5m")], 1.0),
        sample(&[("__name__", "evil\"}) or vector(1")], 1.0),
    ]);
    assert_eq!(
        names,
        ["slo:sli_error:ratio_rate5m", "slo:sli_error:ratio_window"]
    );
}

#[test]
fn values_and_ages_fold_into_one_reading_per_label_set() {
    let mut r = Readings::new(&ReadingScope::default());
    r.add_record(
        "slo:sli_error:ratio_window",
        &[
            own_series("value", &[], 0.0005),
            own_series("written", &[], 1_800_000_000.5),
        ],
    );
    r.add_record(
        "slo:sli_error:ratio_rate5h35m",
        &[
            own_series("value", &[], 0.001),
            own_series("written", &[], 1_799_999_000.0),
        ],
    );
    let (mine, foreign) = own(&r, &checkout(&GROUP_BY));
    assert!(foreign.is_empty());
    assert_eq!(mine.len(), 1);
    let reading = mine[0].1;
    assert_eq!(reading.window_error_ratio, Some(0.0005));
    assert_eq!(
        reading.newest_sample,
        Some(Timestamp::from_millisecond(1_800_000_000_500).unwrap())
    );
    let w = Duration::from_minutes(335);
    assert_eq!(reading.error_ratios[&w], 0.001);
    assert_eq!(
        reading.ratios_written[&w],
        Timestamp::from_second(1_799_999_000).unwrap()
    );
}

#[test]
fn a_burn_window_whose_answer_broke_off_is_taken_out_whole() {
    let mut r = Readings::new(&ReadingScope::default());
    let (five, hour) = (
        Record::of("slo:sli_error:ratio_rate5m"),
        Record::of("slo:sli_error:ratio_rate1h"),
    );
    assert_eq!(five, Record::Burn(Duration::from_minutes(5)));
    assert_eq!(Record::of("slo:sli_error:ratio_window"), Record::Window);
    assert_eq!(Record::of("slo:sli_error:ratio_rateX"), Record::Other);
    r.add_sample(&five, &own_series("value", &[], 0.5));
    r.add_sample(&five, &own_series("written", &[], 1_800_000_000.0));
    r.add_sample(&hour, &own_series("value", &[], 0.1));
    r.drop_record(&five);
    let (mine, _) = own(&r, &checkout(&GROUP_BY));
    let reading = mine[0].1;
    assert!(reading.error_ratios.keys().eq([&Duration::from_hours(1)]));
    assert!(reading.ratios_written.is_empty());
}

#[test]
fn only_exact_label_sets_are_the_slos_own() {
    let route = ["route".to_string()];
    let mut r = Readings::new(&ReadingScope::parse(r#"cluster="a""#).unwrap());
    let forged = sample(
        &[
            ("slo", "checkout"),
            ("slo_namespace", "shop"),
            ("plimsoll_part", "value"),
            ("job", "evil"),
            ("instance", "x:1"),
        ],
        1.0,
    );
    let predecessor = sample(
        &[
            ("slo", "checkout"),
            ("slo_namespace", "shop"),
            ("slo_service", "checkout"),
            ("slo_uid", "u-0"),
            ("plimsoll_part", "value"),
        ],
        1.0,
    );
    let other_cluster = own_series("value", &[("cluster", "b"), ("replica", "1")], 1.0);
    r.add_record(
        "slo:sli_error:ratio_window",
        &[
            own_series("value", &[("route", "/pay"), ("cluster", "a")], 0.1),
            own_series("value", &[], 0.2),
            forged,
            predecessor,
            other_cluster,
        ],
    );
    let (mine, foreign) = own(&r, &checkout(&route));
    let groups: Vec<_> = mine
        .iter()
        .map(|(g, r)| (g.clone(), r.window_error_ratio))
        .collect();
    assert_eq!(
        groups,
        [
            (BTreeMap::from([("route".into(), "/pay".into())]), Some(0.1)),
            (BTreeMap::new(), Some(0.2)),
        ],
        "a group label may be absent (an empty label value), the scope's labels are allowed"
    );
    let reasons: Vec<&str> = foreign.iter().map(Foreign::reason).collect();
    assert_eq!(
        reasons,
        ["other_uid", "unexpected_labels", "unexpected_labels"]
    );
    // A UID-less SLO (local mode) refuses series that carry one.
    let local = Identity {
        uid: None,
        ..checkout(&route)
    };
    let (mine, _) = own(&r, &local);
    assert!(mine.is_empty());
}

#[test]
fn period_sums_become_ratios_per_label_set() {
    let amount = |amount: &str, group: &str, value: f64| {
        sample(
            &[
                ("slo", "checkout"),
                ("slo_namespace", "shop"),
                ("route", group),
                ("plimsoll_amount", amount),
            ],
            value,
        )
    };
    let ratios = period_ratios(&[
        amount("errors", "/pay", 3.0),
        amount("total", "/pay", 1000.0),
        amount("errors", "/cart", 0.0),
        amount("total", "/cart", 0.0),
        amount("errors", "/gone", 1.0),
        amount("bad_share", "/slices", 0.25),
    ]);
    let by_route = |r: &str| {
        ratios
            .iter()
            .find(|(k, _)| k.get("route").map(String::as_str) == Some(r))
            .map(|(k, v)| (k.len(), *v))
    };
    assert_eq!(
        by_route("/pay"),
        Some((3, 0.003)),
        "the amount label is dropped"
    );
    assert_eq!(by_route("/cart"), Some((3, 0.0)), "no traffic, no errors");
    assert_eq!(
        by_route("/gone"),
        None,
        "errors without a total are no ratio"
    );
    assert_eq!(by_route("/slices"), Some((3, 0.25)));
}

#[test]
fn failures_keep_their_own_reason() {
    let refused = super::super::Error::Refused {
        status: 503,
        message: "overloaded".into(),
    };
    assert_eq!(Failure::from(&refused).reason, "PrometheusRefused");
    let html = super::super::Error::Decode("<html>".into());
    assert_eq!(Failure::from(&html).reason, "PrometheusBadAnswer");
}
