use super::*;

fn ratio(sli: Sli) -> RatioIndicator {
    match sli {
        Sli::Ratio(r) => r,
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_window_placeholder_is_found_with_or_without_spaces() {
    assert_eq!(
        replace_window("x[{{.window}}] y[{{ .window }}]", "$w"),
        "x[$w] y[$w]"
    );
    assert_eq!(replace_window("{{.other}} {{", "$w"), "{{.other}} {{");
    assert!(!has_window("sum(x)"));
}

#[test]
fn sums_of_rates_over_the_window_are_counters_with_their_grouping() {
    let r = ratio(
        events(
            r#"sum by (route) (rate(x_total{code=~"5.."}[{{.window}}]))"#,
            "sum(rate(x_total[{{.window}}])) by (route)",
            Events::Bad,
            Form::Windowed,
        )
        .unwrap(),
    );
    assert_eq!(r.errors.as_deref(), Some(r#"x_total{code=~"5.."}"#));
    assert_eq!(r.total, "x_total");
    assert_eq!(r.group_by, ["route"]);
}

#[test]
fn a_fixed_range_or_different_groupings_are_refused() {
    let fixed = events(
        "sum(rate(e[5m]))",
        "sum(rate(t[{{.window}}]))",
        Events::Bad,
        Form::Windowed,
    );
    // A count over a fixed range is not measured per window: refused, not guessed.
    assert!(fixed.unwrap_err().contains("{{.window}}"));
    let grouped = events(
        "sum(rate(e[{{.window}}])) by (a)",
        "sum(rate(t[{{.window}}])) by (b)",
        Events::Bad,
        Form::Windowed,
    );
    // Sums by different labels match no common series: refused, not turned into a query.
    assert!(grouped.unwrap_err().contains("by (a) over a total by (b)"));
    // Without a window there is nothing to measure per window.
    assert!(events("count(up)", "count(up)", Events::Bad, Form::Windowed).is_err());
}

#[test]
fn count_minus_bucket_is_a_latency_with_matchers_in_any_order() {
    let sli = events(
        r#"sum(rate(h_count{a="1",b="2"}[{{.window}}])) - sum(rate(h_bucket{le="0.25", b="2", a="1"}[{{.window}}]))"#,
        r#"sum(rate(h_count{a="1",b="2"}[{{.window}}]))"#,
        Events::Bad,
        Form::Windowed,
    )
    .unwrap();
    let Sli::Latency {
        indicator,
        le_written,
    } = sli
    else {
        panic!("{sli:?}")
    };
    assert_eq!(indicator.histogram, r#"h{a="1",b="2"}"#);
    assert_eq!(indicator.threshold, 0.25);
    assert_eq!(le_written, None);
}

#[test]
fn a_bucket_with_other_matchers_than_the_total_is_no_latency() {
    let sli = events(
        r#"h_bucket{a="1",status=~"5..",le="1"}"#,
        r#"h_count{a="1"}"#,
        Events::Good,
        Form::Plain,
    )
    .unwrap();
    let r = ratio(sli);
    assert_eq!(
        r.good.as_deref(),
        Some(r#"h_bucket{a="1",status=~"5..",le="1"}"#)
    );
}

#[test]
fn le_written_with_a_decimal_point_is_reported() {
    let sli = events(
        r#"h_bucket{le="5.0"}"#,
        "h_count",
        Events::Good,
        Form::Plain,
    )
    .unwrap();
    assert!(matches!(sli, Sli::Latency { le_written: Some(ref le), .. } if le == "5.0"));
}

#[test]
fn plain_selectors_are_counters_and_otherwise_rated_over_the_window() {
    let r = ratio(events("sum(e_total)", "t_total", Events::Good, Form::Plain).unwrap());
    assert_eq!(
        (r.good.as_deref(), r.total.as_str()),
        (Some("e_total"), "t_total")
    );
    // Counters whose groupings differ match no common series: refused, not summed away.
    let q = events("sum(e_total) by (a)", "t_total", Events::Bad, Form::Plain);
    assert!(q.unwrap_err().contains("by (a)"));
}

#[test]
fn an_error_ratio_of_two_counters_is_a_ratio() {
    let r = ratio(
        error_ratio(
            "sum(rate(e[{{.window}}])) / sum(rate(t[{{.window}}]))",
            Form::Windowed,
        )
        .unwrap(),
    );
    assert_eq!((r.errors.as_deref(), r.total.as_str()), (Some("e"), "t"));
    let q = error_ratio("1 - avg_over_time(up[{{.window}}])", Form::Windowed).unwrap();
    assert_eq!(q, Sli::query("1 - avg_over_time(up[$window])".into()));
    assert!(error_ratio("histogram_share(0.2, x)", Form::Windowed).is_err());
}

/// The query fallback and its reason, or a panic.
fn as_written(sli: Sli) -> (String, String) {
    match sli {
        Sli::Query {
            error_ratio,
            as_written: Some(why),
        } => (error_ratio, why),
        other => panic!("{other:?}"),
    }
}

#[test]
fn increase_over_rate_is_kept_as_written_not_repaired() {
    // Sloth divides the two as written: counts over per-second rates, off by the window's
    // seconds. A ratio of counters would compute something the source does not.
    let (query, why) = as_written(
        events(
            "sum(increase(e[{{.window}}]))",
            "sum(rate(t[{{.window}}]))",
            Events::Bad,
            Form::Windowed,
        )
        .unwrap(),
    );
    assert_eq!(
        query,
        "(sum(increase(e[$window]))) / (sum(rate(t[$window])))"
    );
    assert!(
        why.starts_with("the error query uses increase and the total rate ("),
        "{why}"
    );
    assert!(why.contains("Sloth divides them as written, so the ratio is scaled by the window's seconds; kept as written in indicator.query"), "{why}");
    assert!(why.ends_with("fix the source"), "{why}");
    // Counted alike, increase is as good a count as rate.
    let r = ratio(
        events(
            "sum(increase(e[{{.window}}]))",
            "sum(increase(t[{{.window}}]))",
            Events::Bad,
            Form::Windowed,
        )
        .unwrap(),
    );
    assert_eq!((r.errors.as_deref(), r.total.as_str()), (Some("e"), "t"));
}

#[test]
fn a_raw_ratio_or_a_latency_counted_two_ways_is_kept_as_written() {
    let (query, why) = as_written(
        error_ratio(
            "sum(rate(e[{{.window}}])) / sum(increase(t[{{.window}}]))",
            Form::Windowed,
        )
        .unwrap(),
    );
    assert_eq!(query, "sum(rate(e[$window])) / sum(increase(t[$window]))");
    assert!(
        why.starts_with("the numerator uses rate and the denominator increase"),
        "{why}"
    );
    let (_, why) = as_written(
        events(
            r#"sum(rate(h_count[{{.window}}])) - sum(rate(h_bucket{le="1"}[{{.window}}]))"#,
            "sum(increase(h_count[{{.window}}]))",
            Events::Bad,
            Form::Windowed,
        )
        .unwrap(),
    );
    assert!(
        why.starts_with("the error query uses rate and the total increase"),
        "{why}"
    );
    let (_, why) = as_written(
        events(
            r#"sum(increase(h_bucket{le="1"}[{{.window}}]))"#,
            "sum(rate(h_count[{{.window}}]))",
            Events::Good,
            Form::Windowed,
        )
        .unwrap(),
    );
    assert!(
        why.starts_with("the good query uses increase and the total rate"),
        "{why}"
    );
}

#[test]
fn a_plain_selector_goes_with_a_windowed_count_as_before() {
    // Pyrra and OpenSLO count a plain selector themselves: only rate against increase is a
    // mismatch.
    let r = ratio(
        events(
            "e_total",
            "sum(increase(t_total[{{.window}}]))",
            Events::Good,
            Form::Plain,
        )
        .unwrap(),
    );
    assert_eq!(r.good.as_deref(), Some("e_total"));
}

#[test]
fn by_lists_are_compared_as_sets() {
    let r = ratio(
        events(
            "sum(rate(e[{{.window}}])) by (a, b)",
            "sum by (b, a) (rate(t[{{.window}}]))",
            Events::Bad,
            Form::Windowed,
        )
        .unwrap(),
    );
    assert_eq!(r.group_by, ["b", "a"]);
    let r = ratio(
        error_ratio(
            "sum(rate(e[{{.window}}])) by (a, b) / sum(rate(t[{{.window}}])) by (b, a)",
            Form::Windowed,
        )
        .unwrap(),
    );
    assert_eq!(r.group_by, ["b", "a"]);
    let sli = events(
        r#"sum(rate(h_count[{{.window}}])) by (x, y) - sum(rate(h_bucket{le="1"}[{{.window}}])) by (y, x)"#,
        "sum(rate(h_count[{{.window}}])) by (y, x)",
        Events::Bad,
        Form::Windowed,
    )
    .unwrap();
    assert!(
        matches!(&sli, Sli::Latency { indicator, .. } if indicator.group_by == ["y", "x"]),
        "{sli:?}"
    );
    // A set is still not a subset.
    let q = events(
        "sum(rate(e[{{.window}}])) by (a, b)",
        "sum(rate(t[{{.window}}])) by (a)",
        Events::Bad,
        Form::Windowed,
    );
    assert!(q.unwrap_err().contains("by (a, b) over a total by (a)"));
}

#[test]
fn a_bucket_spelled_as_prometheus_never_writes_it_stays_as_written() {
    // Prometheus writes 0.25; a selector on "0.250" matches what the source's exporter writes,
    // which Plimsoll's latency bucket (le="0.25") would not.
    let sli = events(
        r#"sum(rate(d_bucket{job="a",le="0.250"}[{{.window}}]))"#,
        r#"sum(rate(d_count{job="a"}[{{.window}}]))"#,
        Events::Good,
        Form::Windowed,
    )
    .unwrap();
    match sli {
        Sli::Ratio(ratio) => {
            assert_eq!(
                ratio.good.as_deref(),
                Some(r#"d_bucket{job="a",le="0.250"}"#)
            );
            assert_eq!(ratio.total, r#"d_count{job="a"}"#);
        }
        other => panic!("{other:?}"),
    }
    // Both spellings of an integer are Prometheus' own: a latency indicator.
    for le in ["5", "5.0"] {
        let sli = events(
            &format!(r#"sum(rate(d_bucket{{le="{le}"}}[{{{{.window}}}}]))"#),
            "sum(rate(d_count[{{.window}}]))",
            Events::Good,
            Form::Windowed,
        )
        .unwrap();
        assert!(matches!(sli, Sli::Latency { .. }), "{le}: {sli:?}");
    }
}
