use super::*;
use crate::api::RollbackState::{self, *};

fn status(data: &str, state: RollbackState) -> ServiceLevelObjectiveStatus {
    serde_json::from_value(serde_json::json!({
        "errorBudget": {"remaining": "-3.0", "consumedMinutes": "44.5", "totalMinutes": "43.2"},
        "rollback": {"state": state, "since": "2026-01-01T00:00:00Z"},
        "conditions": [{"type": "DataAvailable", "status": data,
                        "reason": if data == "True" { "SeriesPresent" } else { "SeriesMissing" },
                        "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}],
    }))
    .unwrap()
}

fn known(name: &str, targets: &[&str], status: Option<ServiceLevelObjectiveStatus>) -> Known {
    Known {
        name: name.to_string(),
        targets: targets.iter().map(|t| t.to_string()).collect(),
        status,
    }
}

/// Flagger's body for the canary `name` in `shop`, with the webhook's metadata.
fn flagger(name: &str, metadata: &[(&str, &str)]) -> Ask {
    let mut body = serde_json::json!({"name": name, "namespace": "shop", "phase": "Progressing",
                                      "checksum": "85d557f47b"});
    if !metadata.is_empty() {
        body["metadata"] = metadata.iter().map(|(k, v)| (*k, *v)).collect();
    }
    let payload = parse_payload(body.to_string().as_bytes()).unwrap();
    Ask { slo: None, payload }
}

fn slo(namespace: &str, name: &str) -> Result<Wanted, Refused> {
    Ok(Wanted::Slo {
        namespace: namespace.to_string(),
        name: name.to_string(),
    })
}

#[test]
fn a_rollback_holds_only_while_the_trigger_holds_on_fresh_data() {
    assert!(holds(Some(&status("True", Exhausted))));
    assert!(holds(Some(&status("True", Recovering))));
    assert!(!holds(Some(&status("True", Healthy))));
    assert!(!holds(Some(&status("True", Burning))));
    assert!(!holds(Some(&status("False", Exhausted))), "old data");
    assert!(!holds(None));
    assert_eq!(
        reason(Some(&status("True", Exhausted))),
        "rollback: the error budget policy's trigger holds (Exhausted since \
         2026-01-01T00:00:00Z), -3.0% of the error budget left"
    );
    assert_eq!(
        reason(Some(&status("True", Burning))),
        "no rollback: within the policy (Burning), -3.0% of the error budget left"
    );
    assert_eq!(
        reason(Some(&status("False", Exhausted))),
        "no rollback: no current budget data (SeriesMissing)"
    );
    assert_eq!(
        reason(None),
        "no rollback: no current budget data (no status yet)"
    );
}

#[test]
fn the_slo_comes_from_the_query_then_the_metadata_then_the_canary() {
    let mut ask = flagger("payments", &[("slo", "shop/checkout-availability")]);
    ask.slo = Some("pay/payments-availability".to_string());
    assert_eq!(wanted(&ask), slo("pay", "payments-availability"));
    let ask = flagger("payments", &[("slo", "other/checkout-availability")]);
    assert_eq!(wanted(&ask), slo("other", "checkout-availability"));
    let ask = flagger("payments", &[("slo", "checkout-availability"), ("x", "y")]);
    assert_eq!(wanted(&ask), slo("shop", "checkout-availability"));
    assert_eq!(
        wanted(&flagger("payments", &[("cmd", "hey")])),
        Ok(Wanted::Canary {
            namespace: "shop".to_string(),
            target: "payments".to_string()
        })
    );
    let by_hand = Ask {
        slo: Some("shop/checkout-availability".to_string()),
        payload: None,
    };
    assert_eq!(wanted(&by_hand), slo("shop", "checkout-availability"));
}

#[test]
fn a_request_that_names_no_slo_clearly_is_refused() {
    let bad = |ask: &Ask| match wanted(ask) {
        Err(Refused::BadRequest(text)) => text,
        other => panic!("{other:?}"),
    };
    assert!(bad(&Ask::default()).contains("give ?slo=<namespace>/<name>"));
    for query in ["pay", "", "a/b/c", "/x", "x/", "shop/Pay", "shop/pay\nx"] {
        let ask = Ask {
            slo: Some(query.to_string()),
            ..Ask::default()
        };
        assert!(
            bad(&ask).contains("?slo= must be <namespace>/<name>"),
            "{query}"
        );
    }
    let mut no_namespace = flagger("payments", &[("slo", "checkout-availability")]);
    if let Some(p) = no_namespace.payload.as_mut() {
        p.namespace = None;
    }
    assert!(bad(&no_namespace).contains("metadata.slo must be"));
    let mut no_name = flagger("", &[]);
    assert!(bad(&no_name).contains("needs the canary's name and namespace"));
    let odd = flagger("pod info", &[]);
    assert!(bad(&odd).contains("needs the canary's name and namespace"));
    no_name.payload = Some(Payload::default());
    assert!(bad(&no_name).contains("needs the canary's name and namespace"));
}

#[test]
fn the_body_must_be_flaggers_payload() {
    let exact = br#"{"name":"podinfo","namespace":"test","phase":"Progressing","checksum":"85d557f47b","metadata":{"test":"all","token":"16688eb5e9f289f1991c"}}"#;
    let payload = parse_payload(exact).unwrap().unwrap();
    assert_eq!(payload.name.as_deref(), Some("podinfo"));
    assert_eq!(payload.metadata.unwrap()["token"], "16688eb5e9f289f1991c");
    assert_eq!(
        parse_payload(b" \n").unwrap(),
        None,
        "an empty body is none"
    );
    for bad in [
        &b"{\"name\": \"podinfo\""[..],
        b"name=podinfo",
        b"[]",
        br#"{"name": 5, "namespace": "test"}"#,
        br#"{"name": "podinfo", "namespace": "test", "metadata": {"slo": 1}}"#,
        br#"{"name": "podinfo", "namespace": "test", "metadata": ["slo"]}"#,
    ] {
        let refused = parse_payload(bad).unwrap_err();
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
        assert!(
            refused
                .to_string()
                .contains("not Flagger's webhook payload")
        );
    }
}

#[test]
fn only_json_is_read() {
    let with = |value: &str| {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, value.parse().unwrap());
        json_content_type(&headers)
    };
    assert_eq!(json_content_type(&HeaderMap::new()), Ok(()));
    assert_eq!(with("application/json"), Ok(()));
    assert_eq!(with("Application/JSON; charset=utf-8"), Ok(()));
    assert_eq!(with("application/merge-patch+json"), Ok(()));
    let refused = with("application/x-www-form-urlencoded").unwrap_err();
    assert_eq!(refused.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(with("text/plain").unwrap_err().status(), refused.status());
}

#[test]
fn any_matched_slo_that_holds_rolls_the_canary_back() {
    let shop = || {
        Some(vec![
            known(
                "checkout-latency",
                &["checkout"],
                Some(status("True", Burning)),
            ),
            known(
                "checkout-availability",
                &["checkout"],
                Some(status("True", Exhausted)),
            ),
            known(
                "payments-availability",
                &["payments"],
                Some(status("True", Healthy)),
            ),
            known("search-availability", &["search"], None),
        ])
    };
    let canary = |target: &str| Wanted::Canary {
        namespace: "shop".to_string(),
        target: target.to_string(),
    };
    let (code, body) = answer(&canary("checkout"), shop());
    assert_eq!(code, StatusCode::OK);
    assert!(
        body.starts_with("shop/checkout-availability: rollback: the error budget policy's trigger")
    );
    assert!(body.ends_with("; shop/checkout-latency: no rollback: within the policy (Burning), -3.0% of the error budget left\n"));
    assert_eq!(body.lines().count(), 1);
    assert_eq!(
        answer(&canary("payments"), shop()).0,
        StatusCode::PRECONDITION_FAILED
    );
    assert_eq!(
        answer(&canary("search"), shop()),
        (
            StatusCode::PRECONDITION_FAILED,
            "shop/search-availability: no rollback: no current budget data (no status yet)\n"
                .to_string()
        ),
        "no status yet: no data, no rollback"
    );
    let (code, body) = answer(&canary("cart"), shop());
    assert_eq!(code, StatusCode::NOT_FOUND);
    assert!(body.starts_with("no SLO in namespace shop has a rollback target named cart"));
    let one = |name: &str| Wanted::Slo {
        namespace: "shop".to_string(),
        name: name.to_string(),
    };
    assert_eq!(
        answer(&one("checkout-availability"), shop()).0,
        StatusCode::OK
    );
    assert_eq!(
        answer(&one("cart"), shop()),
        (
            StatusCode::NOT_FOUND,
            "no SLO shop/cart is watched here\n".to_string()
        )
    );
    assert_eq!(
        answer(&one("cart"), None).0,
        StatusCode::SERVICE_UNAVAILABLE,
        "still listing"
    );
}

#[test]
fn targets_in_other_namespaces_are_not_the_canarys() {
    let slo: ServiceLevelObjective = serde_json::from_value(serde_json::json!({
        "apiVersion": "plimsoll.dev/v1alpha1", "kind": "ServiceLevelObjective",
        "metadata": {"name": "checkout-availability", "namespace": "shop"},
        "spec": {"service": "checkout", "objective": 99.9, "window": "30d",
                 "indicator": {"ratio": {"errors": "e_total", "total": "t_total"}},
                 "rollback": {"targets": [{"kind": "Rollout", "name": "checkout"},
                                          {"kind": "Deployment", "name": "cart", "namespace": "shop"},
                                          {"kind": "Deployment", "name": "pay", "namespace": "x"}]}},
    }))
    .unwrap();
    let known = Known::of(&slo);
    assert_eq!(known.name, "checkout-availability");
    assert_eq!(known.targets, ["checkout", "cart"]);
    assert_eq!(known.status, None);
}

#[tokio::test]
async fn bodies_are_bounded_and_get_requests_ignore_them() {
    let json = || {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        headers
    };
    let none = |_: &str| {
        Some(vec![known(
            "pay",
            &["pay"],
            Some(status("True", Exhausted)),
        )])
    };
    let big = format!("{{\"name\": \"{}\"}}", "x".repeat(BODY_LIMIT));
    let (code, _) = respond(&Method::POST, &json(), None, Body::from(big.clone()), none).await;
    assert_eq!(code, StatusCode::PAYLOAD_TOO_LARGE);
    let query = Some("shop/pay".to_string());
    let (code, _) = respond(&Method::GET, &json(), query, Body::from(big), none).await;
    assert_eq!(code, StatusCode::OK);
    let body = Body::from(r#"{"name":"pay","namespace":"shop","phase":"Waiting","checksum":"1"}"#);
    let (code, text) = respond(&Method::POST, &json(), None, body, none).await;
    assert_eq!(code, StatusCode::OK, "{text}");
}
