//! The promise of `plimsoll validate`: what it accepts, Prometheus accepts. Random specs with
//! adversarial text in every free field (braces and `{{`/`}}` anywhere, `#`, line breaks, quotes,
//! backslashes, unicode, very long values) over every indicator kind and option; whatever
//! validation accepts is rendered, and the rule file must pass `promtool check rules`. Many SLOs
//! go into one file, so one promtool run judges a whole batch.

mod support;

use std::process::Command;

use plimsoll::manifests::{self, Decoded};
use plimsoll::rules;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};

/// Text meant to break whatever it is spliced into.
fn nasty() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("{{{ x }}}".to_string()),
        Just("{ {{ $value }}}".to_string()),
        Just("a{".to_string()),
        Just("}}{{".to_string()),
        Just("{{- /* c */ -}}".to_string()),
        Just("# not a comment\n{{".to_string()),
        Just("\"quoted\" \\ back\\slash `tick` 'single'".to_string()),
        Just("ünïcødé ✓ 🚀 \u{202e}".to_string()),
        Just(format!("{}{{{{", "long ".repeat(2000))),
        "[{}#\"\\\\\n`'$ .a-z|()=~-]{0,30}",
        any::<String>(),
    ]
}

/// Alert text: users' templates that parse, and random text that mostly does not.
fn alert_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("{{ $value | humanizePercentage }}".to_string()),
        Just("{{ $labels.route }} at {{ $externalURL }}".to_string()),
        Just("{{ if gt $value 0.1 }}bad{{ else }}ok{{ end }}".to_string()),
        Just("{{ \"{{\" }} literal".to_string()),
        nasty(),
    ]
}

/// A label value inside a selector, quoted by us.
fn value() -> impl Strategy<Value = String> {
    nasty().prop_map(|v| {
        v.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    })
}

fn indicator() -> impl Strategy<Value = Value> {
    let group_by = prop_oneof![
        Just(json!([])),
        Just(json!(["route"])),
        Just(json!(["a", "b"]))
    ];
    prop_oneof![
        (value(), group_by.clone(), any::<bool>()).prop_map(|(v, g, good)| {
            let bad = if good { "good" } else { "errors" };
            json!({"ratio": {bad: format!("req_total{{code=~\"5..\",path=\"{v}\"}}"), "total": "req_total", "groupBy": g}})
        }),
        (value(), prop_oneof![Just(0.3), Just(1.0), Just(2.5e-3)], group_by.clone()).prop_map(
            |(v, t, g)| json!({"latency": {"histogram": format!("lat_seconds{{job=\"{v}\"}}"), "threshold": t, "groupBy": g}})
        ),
        (value(), group_by).prop_map(
            |(v, g)| json!({"gauge": {"metric": format!("probe_success{{target=\"{v}\"}}"), "groupBy": g}})
        ),
        (nasty(), value()).prop_map(|(comment, v)| json!({"query": {"errorRatio": format!(
            "sum(rate(e_total{{x=\"{v}\"}}[$window])) # {}\n/\n(sum(rate(t_total[$window])) > 0) # {}",
            comment.replace('\n', " "),
            comment.replace('\n', " ")
        )}})),
    ]
}

fn window() -> impl Strategy<Value = (String, Option<&'static str>)> {
    (
        random::window(),
        prop_oneof![Just(None), Just(Some("Europe/Berlin"))],
    )
        .prop_map(|(w, zone)| {
            let calendar = w == "month" || w == "week";
            (w, zone.filter(|_| calendar))
        })
}

prop_compose! {
    fn spec()(
        service in prop_oneof![4 => "[a-z]([a-z0-9._-]{0,20}[a-z0-9])?", 1 => nasty()],
        description in nasty(),
        objective in prop_oneof![Just(99.9), Just(99.95), Just(95.0), Just(99.999)],
        (window, zone) in window(),
        indicator in indicator(),
        timeslices in any::<bool>(),
        labels in prop::collection::btree_map("[a-z][a-z_]{0,6}", alert_text(), 0..3),
        annotations in prop::collection::btree_map("[a-z][a-z_]{0,6}", alert_text(), 0..3),
        page in alert_text(),
        disabled in any::<bool>(),
        rollback in any::<bool>(),
    ) -> Value {
        let mut spec = json!({
            "service": service, "description": description, "objective": objective,
            "window": window, "indicator": indicator,
            "alerting": {
                "labels": labels, "annotations": annotations,
                "page": {"annotations": {"runbook_url": page}},
                "ticket": {"disabled": disabled},
            },
        });
        if let Some(zone) = zone {
            spec["timeZone"] = json!(zone);
        }
        if timeslices {
            spec["budgetingMethod"] = json!("Timeslices");
            spec["timeslice"] = json!({"duration": "1m", "objective": 95});
        }
        if rollback {
            spec["rollback"] = json!({"trigger": {"burnRateAbove": {"window": "10m", "factor": 20}}});
        }
        spec
    }
}

fn promtool_accepts(file: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let path = dir.path().join("rules.yaml");
    std::fs::write(&path, file).map_err(|e| e.to_string())?;
    let out = Command::new("promtool")
        .arg("check")
        .arg("rules")
        .arg(&path)
        .output()
        .map_err(|e| format!("promtool is missing ({e}): `make test` installs it"))?;
    match out.status.success() {
        true => Ok(()),
        false => {
            let kept = std::env::temp_dir().join("plimsoll-refused-rules.yaml");
            let _ = std::fs::copy(&path, &kept);
            Err(format!(
                "{} (the file is kept as {})",
                String::from_utf8_lossy(&out.stderr),
                kept.display()
            ))
        }
    }
}

/// Renders the specs validation accepts into one rule file; returns it and how many were in it.
fn rendered(specs: &[Value]) -> (String, usize) {
    let mut groups = Vec::new();
    let mut valid = 0;
    for (i, spec) in specs.iter().enumerate() {
        let document = json!({
            "apiVersion": "plimsoll.dev/v1alpha1", "kind": "ServiceLevelObjective",
            "metadata": {"name": format!("slo-{i}"), "namespace": "ns"}, "spec": spec,
        });
        match manifests::decode(&document) {
            Decoded::Valid(valid_slo) => {
                valid += 1;
                groups.extend(rules::render(&valid_slo.1, "ns"));
            }
            other if std::env::var_os("SHOW_REFUSED").is_some() => eprintln!("{other:?}"),
            _ => {}
        }
    }
    (rules::rule_file(&groups).unwrap(), valid)
}

/// Specs with ordinary text and every window length, slice and alert option.
mod random {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    fn selector() -> impl Strategy<Value = String> {
        (
            "[a-z_]{1,12}",
            // A Vec, not a map: matchers come in any order, as users write them.
            prop::collection::vec(
                (
                    "[a-z_]{1,8}",
                    prop_oneof![
                        "[a-zA-Z0-9 /._-]{0,10}".prop_map(|v| format!("={v:?}")),
                        "[a-z0-9.|]{1,8}".prop_map(|v| format!("=~{v:?}")),
                        "[a-z0-9]{1,6}".prop_map(|v| format!("!={v:?}")),
                    ],
                ),
                0..3,
            ),
        )
            .prop_map(|(name, matchers)| {
                let inner: Vec<String> = matchers
                    .into_iter()
                    .map(|(k, m)| format!("{k}{m}"))
                    .collect();
                if inner.is_empty() {
                    name
                } else {
                    format!("{name}{{{}}}", inner.join(","))
                }
            })
    }

    fn group_by() -> impl Strategy<Value = Vec<String>> {
        prop::collection::btree_set("[a-z][a-z_]{0,6}", 0..3).prop_map(|s| {
            s.into_iter()
                .filter(|l| !["le", "slo", "long", "short"].contains(&l.as_str()))
                .collect()
        })
    }

    fn indicator() -> impl Strategy<Value = Value> {
        prop_oneof![
            (selector(), selector(), any::<bool>(), group_by()).prop_map(
                |(bad, total, good, g)| {
                    let key = if good { "good" } else { "errors" };
                    json!({"ratio": {key: bad, "total": total, "groupBy": g}})
                }
            ),
            (
                selector(),
                prop_oneof![Just(0.1), Just(0.25), Just(1.0), Just(2.5), Just(10.0)],
                group_by()
            )
                .prop_map(
                    |(h, t, g)| json!({"latency": {"histogram": h, "threshold": t, "groupBy": g}})
                ),
            (selector(), group_by())
                .prop_map(|(m, g)| json!({"gauge": {"metric": m, "groupBy": g}})),
            (selector(), selector()).prop_map(|(a, b)| json!({"query": {"errorRatio":
                format!("sum(rate({a}[$window])) / sum(rate({b}[$window]))")}})),
        ]
    }

    pub fn window() -> impl Strategy<Value = String> {
        prop_oneof![
            (1u64..=90).prop_map(|d| format!("{d}d")),
            (1u64..=12).prop_map(|w| format!("{w}w")),
            Just("month".to_string()),
            Just("week".to_string()),
        ]
    }

    pub fn spec() -> impl Strategy<Value = Value> {
        (
            indicator(),
            prop_oneof![Just(90.0), Just(99.0), Just(99.5), Just(99.9), Just(99.95), Just(99.999)],
            window(),
            prop::option::of((prop_oneof![Just("1m"), Just("5m"), Just("10m"), Just("1h")], 50.0f64..100.0)),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(indicator, objective, window, slice, page_off, absent_off)| {
                let mut spec = json!({
                    "service": "svc", "objective": objective, "window": window,
                    "indicator": indicator,
                    "alerting": {"page": {"disabled": page_off}, "absent": {"disabled": absent_off},
                                 "labels": {"team": "a"}, "annotations": {"runbook_url": "https://r.example/x"}},
                });
                if let Some((duration, objective)) = slice {
                    spec["budgetingMethod"] = json!("Timeslices");
                    spec["timeslice"] = json!({"duration": duration, "objective": objective.round()});
                }
                spec
            })
    }
}

/// Plain specs (ordinary text) over every window length and slice: the breadth of options.
#[test]
fn rules_of_random_plain_slos_pass_promtool_check() {
    use proptest::strategy::{Strategy, ValueTree};
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]);
    let mut runner = TestRunner::new_with_rng(Config::default(), rng);
    let mut groups = Vec::new();
    let mut rendered = 0;
    for i in 0..300 {
        let spec = random::spec().new_tree(&mut runner).unwrap().current();
        let document = serde_json::json!({
            "apiVersion": "plimsoll.dev/v1alpha1",
            "kind": "ServiceLevelObjective",
            "metadata": {"name": format!("slo-{i}"), "namespace": "ns"},
            "spec": spec,
        });
        if let Decoded::Valid(valid) = manifests::decode(&document) {
            groups.extend(rules::render(&valid.1, "ns"));
            rendered += 1;
        }
    }
    assert!(
        rendered >= 200,
        "only {rendered} of 300 random SLOs were valid"
    );
    promtool_accepts(&rules::rule_file(&groups).unwrap()).unwrap();
}

#[test]
fn whatever_validate_accepts_promtool_accepts() {
    let mut runner = TestRunner::new(Config {
        cases: 12,
        ..Config::default()
    });
    let accepted = std::cell::Cell::new(0);
    runner
        .run(&prop::collection::vec(spec(), 60), |specs| {
            let (file, valid) = rendered(&specs);
            accepted.set(accepted.get() + valid);
            promtool_accepts(&file).map_err(TestCaseError::fail)
        })
        .unwrap();
    // The generator must reach the renderer, or this proves nothing.
    let accepted = accepted.get();
    eprintln!("{accepted} valid specs rendered and checked");
    assert!(accepted >= 150, "only {accepted} specs were valid");
}

/// The three inputs that once passed validate and broke the rule file.
#[test]
fn the_inputs_that_once_broke_the_rule_file_now_render_cleanly() {
    let spec = json!({
        "service": "checkout", "description": "{{{ x }}}", "objective": 99.9, "window": "30d",
        "indicator": {"query": {"errorRatio":
            "sum(rate(e_total[$window])) / sum(rate(t_total[$window])) # ratio"}},
    });
    let (file, valid) = rendered(&[spec]);
    assert_eq!(valid, 1);
    promtool_accepts(&file).unwrap();
    assert!(file.contains(r#"SLO: {{\"{{\"}}{ x }}}"#), "{file}");
}

/// Pieces of template syntax; random sequences of them reach the corners of the template checker.
const PIECES: &[&str] = &[
    "{{",
    "}}",
    "{{- ",
    " -}}",
    " ",
    "\n",
    "$value",
    "$labels.job",
    "$x",
    "$",
    ".",
    ".Labels",
    "|",
    "humanize",
    "printf",
    "(",
    ")",
    "\"s\"",
    "\"{{\"",
    "`r`",
    "'a'",
    "if",
    "else",
    "end",
    "range",
    "with",
    "break",
    ":=",
    "=",
    ",",
    "1",
    "-1",
    "1.5e3",
    "0x1F",
    "nil",
    "true",
    "/*",
    "*/",
    "x",
    "{",
    "}",
    "#",
];

/// A differential test of the template checker: every token soup it accepts, promtool accepts.
#[test]
fn alert_templates_the_checker_accepts_promtool_accepts() {
    let mut runner = TestRunner::new(Config {
        cases: 8,
        ..Config::default()
    });
    let soup = prop::collection::vec(prop::sample::select(PIECES), 1..14).prop_map(|p| p.concat());
    let accepted = std::cell::Cell::new(0);
    runner
        .run(&prop::collection::vec(soup, 600), |texts| {
            let kept: Vec<&String> = texts
                .iter()
                .filter(|t| plimsoll::model::template::check(t).is_ok())
                .collect();
            accepted.set(accepted.get() + kept.len());
            let rules: Vec<Value> = kept
                .iter()
                .enumerate()
                .map(|(i, t)| json!({"alert": format!("A{i}"), "expr": "vector(1)", "labels": {"l": t}, "annotations": {"d": t}}))
                .collect();
            let file = serde_json::to_string(&json!({"groups": [{"name": "g", "rules": rules}]})).unwrap();
            promtool_accepts(&file).map_err(TestCaseError::fail)
        })
        .unwrap();
    assert!(accepted.get() >= 400, "only {} accepted", accepted.get());
}
