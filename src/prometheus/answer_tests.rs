use super::*;

#[test]
fn parses_prometheus_values() {
    assert_eq!(parse_value("0.25"), 0.25);
    assert!(parse_value("NaN").is_nan());
    assert_eq!(parse_value("+Inf"), f64::INFINITY);
}

#[test]
fn decodes_vectors_and_matrices_and_refuses_other_results() {
    fn data(json: &str) -> Data<'_> {
        serde_json::from_str::<Answer>(json).unwrap().data.unwrap()
    }
    let vector: Vec<VectorSample> = data(
        r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"a":"b"},"value":[1700000000.5,"0.25"]}]}}"#,
    )
    .decode("vector")
    .unwrap();
    assert_eq!(vector[0].value.1, "0.25");
    let matrix: Vec<MatrixSeries> = data(
        r#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{},"values":[[300,"1"],[600,"NaN"]]}]},"stats":{}}"#,
    )
    .decode("matrix")
    .unwrap();
    assert_eq!(matrix[0].values.len(), 2);
    let scalar = data(r#"{"status":"success","data":{"resultType":"scalar","result":[1,"2"]}}"#)
        .decode::<Vec<VectorSample>>("vector")
        .unwrap_err();
    assert_eq!(
        scalar.to_string(),
        "Prometheus answered something that is not a query result: expected a vector, got a scalar"
    );
}

#[test]
fn hands_over_a_vector_sample_by_sample_and_refuses_a_broken_one() {
    let body = |text: &str| Body {
        status: 200,
        text: format!(r#"{{"status":"success","data":{{"resultType":"vector","result":{text}}}}}"#),
    };
    let whole = body(r#"[{"metric":{"a":"1"},"value":[1,"0.5"]},{"metric":{},"value":[1,"NaN"]}]"#);
    let mut seen = Vec::new();
    data(&whole).unwrap().each_sample(|s| seen.push(s)).unwrap();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        (seen[0].labels.get("a").map(String::as_str), seen[0].value),
        (Some("1"), 0.5)
    );
    assert!(seen[1].value.is_nan());
    let broken = body(r#"[{"metric":{"a":"1"},"value":[1,"0.5"]},{"metric":7}]"#);
    let err = data(&broken).unwrap().each_sample(|_| {}).unwrap_err();
    assert!(
        err.to_string().contains("a vector that does not decode"),
        "{err}"
    );
}

/// Thanos Query's answer when a store failed and partial responses are allowed: a success
/// with the other stores' data and one warning per failure at the envelope's top level
/// (thanos-io/thanos pkg/api/api.go, `Respond`; the text as pkg/store/proxy_merge.go wraps a
/// store's error). The data are there, but are not used.
#[test]
fn an_answer_with_warnings_is_partial_and_not_used() {
    let partial = Body {
        status: 200,
        text: r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"a":"1"},"value":[1,"0.5"]}]},
            "warnings":["receive series from store-b:10901: rpc error: code = Unavailable"]}"#
            .into(),
    };
    let err = data(&partial).err().unwrap();
    assert!(matches!(err, Error::Partial { .. }), "{err}");
    assert!(err.to_string().contains("store-b:10901"), "{err}");
    // An empty list (as a Prometheus that omits nothing might write) is no warning.
    let whole = Body {
        status: 200,
        text: r#"{"status":"success","data":{"resultType":"vector","result":[]},"warnings":[]}"#
            .into(),
    };
    assert!(data(&whole).is_ok());
}
