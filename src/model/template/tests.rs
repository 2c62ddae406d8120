//! What Prometheus 2.42 accepts and refuses, as `promtool check rules` answered
//! (tests/alert-templates.json; tests/promtool.rs runs the same cases through promtool).

use super::*;

/// The cases, shared with the test that runs them through promtool.
fn cases() -> serde_json::Value {
    serde_json::from_str(include_str!("../../../tests/alert-templates.json")).unwrap()
}

#[test]
fn what_prometheus_parses_passes() {
    let cases = cases();
    let accepted = cases["accepted"].as_array().unwrap();
    assert!(accepted.len() > 20);
    for text in accepted {
        let text = text.as_str().unwrap();
        assert_eq!(check(text), Ok(()), "{text:?}");
    }
}

#[test]
fn what_prometheus_refuses_is_refused_with_the_part_named() {
    let cases = cases();
    let refused = cases["refused"].as_array().unwrap();
    assert!(refused.len() > 50);
    for case in refused {
        let (text, reason) = (
            case["text"].as_str().unwrap(),
            case["reason"].as_str().unwrap(),
        );
        let error = check(text).expect_err(text);
        assert!(
            error.to_string().contains(reason),
            "{text:?}: {error} lacks {reason:?}"
        );
        assert!(error.at.starts_with("{{"), "{text:?}: {error}");
    }
}

#[test]
fn literal_text_parses_and_closes_before_what_follows() {
    for text in ["{{ x }}", "{{{", "a{", "{", "}}{{-", "{{/*", "{{{{{"] {
        let escaped = literal(text);
        assert_eq!(check(&escaped), Ok(()), "{escaped}");
        // Joined to an action of ours, the text still closes before it.
        assert_eq!(
            check(&format!("{escaped}{{{{ $value }}}}")),
            Ok(()),
            "{escaped}"
        );
    }
    assert_eq!(literal("a{{b"), r#"a{{"{{"}}b"#);
    assert_eq!(literal("a{"), r#"a{{"{"}}"#);
}
