//! A small client for Prometheus' HTTP API: instant and range queries and the reload endpoint,
//! with bearer token, basic auth and a custom CA, and errors that say what to check.

use crate::small_map::SmallMap;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::request::{ApplyError, Extras};

/// How to reach Prometheus.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Base URL, such as `http://prometheus-operated.monitoring:9090`.
    pub url: String,
    pub timeout: Duration,
    /// A file holding a bearer token, read on every request so rotated tokens work.
    pub bearer_token_file: Option<PathBuf>,
    pub basic_auth: Option<(String, String)>,
    /// PEM file with the CA that signed Prometheus' certificate.
    pub ca_file: Option<PathBuf>,
    /// Tenant, extra headers and Thanos' `partial_response`, for distributed stores.
    pub extras: Extras,
}

impl Settings {
    /// No authentication, system roots, the given timeout.
    pub fn new(url: impl Into<String>, timeout: Duration) -> Self {
        Settings {
            url: url.into(),
            timeout,
            bearer_token_file: None,
            basic_auth: None,
            ca_file: None,
            extras: Extras::default(),
        }
    }
}

/// What went wrong talking to Prometheus.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid Prometheus URL {url:?}: use http(s)://host:port")]
    Url { url: String },
    #[error("cannot read {what} {path}: {source}")]
    File {
        what: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the CA file {path} holds no usable PEM certificate")]
    Ca { path: String },
    #[error("cannot build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    #[error("Prometheus at {url} did not answer: {source}")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("Prometheus refused the query ({status}): {message}")]
    Refused { status: u16, message: String },
    #[error("Prometheus answered something that is not a query result: {0}")]
    Decode(String),
    #[error("Prometheus could not reload its configuration ({status}): {message}")]
    Reload { status: u16, message: String },
    #[error(
        "the answer carries warnings, so it may lack some stores' data (a partial response) and \
         is not used: {warnings}"
    )]
    Partial { warnings: String },
    #[error("{0}")]
    Extras(#[from] ApplyError),
    #[error("{0}")]
    Flag(#[from] super::request::RequestError),
    #[error("--prometheus-header {name} is also set by {flag}: give it once")]
    HeaderTwice { name: String, flag: &'static str },
}

impl Error {
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Url { .. } => "InvalidURL",
            Error::File { .. } => "FileUnreadable",
            Error::Ca { .. } => "InvalidCA",
            Error::Client(_) => "ClientSetup",
            Error::Unreachable { .. } => "PrometheusUnreachable",
            Error::Refused { .. } => "QueryRefused",
            Error::Decode(_) => "BadAnswer",
            Error::Reload { .. } => "ReloadFailed",
            Error::Partial { .. } => "PartialResponse",
            Error::Extras(_) => "HeaderUnreadable",
            Error::Flag(_) => "BadFlag",
            Error::HeaderTwice { .. } => "HeaderTwice",
        }
    }
}

/// One sample of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: SmallMap<String, String>,
    pub value: f64,
}

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    settings: Settings,
}

#[derive(Deserialize)]
struct Answer<'a> {
    status: String,
    #[serde(default, borrow)]
    data: Option<Data<'a>>,
    #[serde(default)]
    error: Option<String>,
    /// Thanos Query lists here every store that failed while partial responses are allowed
    /// (thanos-io/thanos pkg/api/api.go, `response.Warnings`); Prometheus, its storage's
    /// warnings.
    #[serde(default)]
    warnings: Vec<String>,
}

/// The `data` of an answer; `result` is decoded once its `resultType` is known, straight from
/// the answer's text (no intermediate JSON tree, no copy: a round's answer holds every SLO's
/// series).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Data<'a> {
    result_type: String,
    #[serde(borrow)]
    result: &'a serde_json::value::RawValue,
}

impl Data<'_> {
    fn expect(&self, expected: &str) -> Result<(), Error> {
        if self.result_type != expected {
            return Err(Error::Decode(format!(
                "expected a {expected}, got a {}",
                self.result_type
            )));
        }
        Ok(())
    }

    /// The result as `T` when it is of the `expected` type.
    fn decode<T: serde::de::DeserializeOwned>(&self, expected: &str) -> Result<T, Error> {
        self.expect(expected)?;
        serde_json::from_str(self.result.get())
            .map_err(|e| Error::Decode(format!("a {expected} that does not decode: {e}")))
    }

    /// Hands each sample of a vector result to `each` as it is decoded.
    fn each_sample(&self, each: impl FnMut(Sample)) -> Result<(), Error> {
        use serde::de::Deserializer as _;
        self.expect("vector")?;
        let mut decoder = serde_json::Deserializer::from_str(self.result.get());
        decoder
            .deserialize_seq(EachSample(each))
            .and_then(|()| decoder.end())
            .map_err(|e| Error::Decode(format!("a vector that does not decode: {e}")))
    }
}

/// Visits a vector's samples one by one.
struct EachSample<F>(F);

impl<'de, F: FnMut(Sample)> serde::de::Visitor<'de> for EachSample<F> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list of samples")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        while let Some(s) = seq.next_element::<VectorSample>()? {
            (self.0)(Sample {
                labels: s.metric,
                value: parse_value(&s.value.1),
            });
        }
        Ok(())
    }
}

#[derive(Debug, Deserialize)]
struct VectorSample {
    metric: SmallMap<String, String>,
    value: (f64, String),
}

#[derive(Debug, Deserialize)]
struct MatrixSeries {
    metric: BTreeMap<String, String>,
    values: Vec<(f64, String)>,
}

/// One series of a range query: its labels and its samples as (Unix seconds, value).
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: BTreeMap<String, String>,
    pub samples: Vec<(f64, f64)>,
}

impl From<MatrixSeries> for Series {
    fn from(s: MatrixSeries) -> Series {
        Series {
            labels: s.metric,
            samples: s
                .values
                .into_iter()
                .map(|(t, v)| (t, parse_value(&v)))
                .collect(),
        }
    }
}

/// What `POST /-/reload` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reload {
    Done,
    /// The lifecycle API is off (`--web.enable-lifecycle` not given): Prometheus reads rule
    /// files on its own restart or SIGHUP only.
    Disabled,
}

impl Client {
    pub fn new(settings: Settings) -> Result<Client, Error> {
        // kube already uses rustls with ring; make it the process default once.
        let _ = rustls::crypto::ring::default_provider().install_default();
        if !(settings.url.starts_with("http://") || settings.url.starts_with("https://")) {
            return Err(Error::Url {
                url: settings.url.clone(),
            });
        }
        let mut builder = reqwest::Client::builder().timeout(settings.timeout);
        if let Some(path) = &settings.ca_file {
            let pem = std::fs::read(path).map_err(|source| Error::File {
                what: "CA file",
                path: path.display().to_string(),
                source,
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|_| Error::Ca {
                path: path.display().to_string(),
            })?;
            if certs.is_empty() {
                return Err(Error::Ca {
                    path: path.display().to_string(),
                });
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let authorization = settings.bearer_token_file.is_some() || settings.basic_auth.is_some();
        if let Some((name, flag)) = settings.extras.conflict(authorization) {
            return Err(Error::HeaderTwice { name, flag });
        }
        let http = builder.build().map_err(Error::Client)?;
        Ok(Client { http, settings })
    }

    pub fn url(&self) -> &str {
        &self.settings.url
    }

    /// Runs an instant query and returns its vector.
    pub async fn query(&self, query: &str) -> Result<Vec<Sample>, Error> {
        let mut out = Vec::new();
        self.query_each(query, |s| out.push(s)).await?;
        Ok(out)
    }

    /// Runs an instant query and hands each sample of its vector to `each` as it is decoded, so
    /// an answer with every SLO's series is never held as samples all at once.
    pub async fn query_each(&self, query: &str, each: impl FnMut(Sample)) -> Result<(), Error> {
        self.fetch(query).await?.each_sample(each)
    }

    /// Runs an instant query and returns the answer undecoded, so the next query can run while
    /// this one's samples are decoded.
    pub async fn fetch(&self, query: &str) -> Result<Fetched, Error> {
        Ok(Fetched(self.api("query", &[("query", query)]).await?))
    }

    /// Runs an instant query of a range selector (`x[10m]`): each series with its raw samples.
    pub async fn query_samples(&self, query: &str) -> Result<Vec<Series>, Error> {
        let answer = self.api("query", &[("query", query)]).await?;
        let result: Vec<MatrixSeries> = data(&answer)?.decode("matrix")?;
        Ok(result.into_iter().map(Series::from).collect())
    }

    /// Runs a range query: the expression evaluated at `start`, `start + step`, ... up to `end`
    /// (Unix seconds), as rule evaluation at those instants would.
    pub async fn query_range(
        &self,
        query: &str,
        start: u64,
        end: u64,
        step: std::time::Duration,
    ) -> Result<Vec<Series>, Error> {
        let (start, end, step) = (
            start.to_string(),
            end.to_string(),
            format!("{}s", step.as_secs().max(1)),
        );
        let form = [
            ("query", query),
            ("start", start.as_str()),
            ("end", end.as_str()),
            ("step", step.as_str()),
        ];
        let answer = self.api("query_range", &form).await?;
        let result: Vec<MatrixSeries> = data(&answer)?.decode("matrix")?;
        Ok(result.into_iter().map(Series::from).collect())
    }

    /// GETs `/api/v1/<endpoint>` (for endpoints that take no query, such as `alerts`) and returns
    /// the `data` of a successful answer as JSON.
    pub async fn get_data(&self, endpoint: &str) -> Result<serde_json::Value, Error> {
        let url = self.endpoint(&format!("/api/v1/{endpoint}"));
        let response = self.send(self.http.get(url)).await?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(|source| Error::Unreachable {
            url: self.settings.url.clone(),
            source,
        })?;
        let answer: serde_json::Value =
            serde_json::from_str(&text).map_err(|_| Error::Refused {
                status,
                message: text.chars().take(200).collect(),
            })?;
        if answer.get("status").and_then(|s| s.as_str()) != Some("success") {
            return Err(Error::Refused {
                status,
                message: answer
                    .get("error")
                    .and_then(|e| e.as_str())
                    .unwrap_or_default()
                    .to_string(),
            });
        }
        answer
            .get("data")
            .cloned()
            .ok_or_else(|| Error::Decode("no data in a successful answer".into()))
    }

    /// Asks Prometheus to reload its configuration and rule files (`POST /-/reload`). Prometheus
    /// serves it only with `--web.enable-lifecycle`; without, it answers 403 (or 404 behind some
    /// proxies), which is [`Reload::Disabled`].
    pub async fn reload(&self) -> Result<Reload, Error> {
        let response = self
            .send(self.http.post(self.endpoint("/-/reload")))
            .await?;
        let status = response.status().as_u16();
        match status {
            200..=299 => Ok(Reload::Done),
            403..=405 => Ok(Reload::Disabled),
            _ => Err(Error::Reload {
                status,
                message: response
                    .text()
                    .await
                    .unwrap_or_default()
                    .chars()
                    .take(200)
                    .collect(),
            }),
        }
    }

    /// Whether Prometheus says it is ready to serve queries (`GET /-/ready`).
    pub async fn ready(&self) -> Result<bool, Error> {
        let response = self.send(self.http.get(self.endpoint("/-/ready"))).await?;
        Ok(response.status().is_success())
    }

    /// A path on the Prometheus server, such as `/-/ready`.
    fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.settings.url.trim_end_matches('/'))
    }

    /// Sends an authorized request; no answer at all is [`Error::Unreachable`].
    async fn send(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response, Error> {
        self.authorized(request)?
            .send()
            .await
            .map_err(|source| Error::Unreachable {
                url: self.settings.url.clone(),
                source,
            })
    }

    fn authorized(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::RequestBuilder, Error> {
        let request = with_credentials(
            request,
            self.settings.bearer_token_file.as_deref(),
            self.settings.basic_auth.as_ref(),
        )
        .map_err(|(path, source)| Error::File {
            what: "bearer token file",
            path,
            source,
        })?;
        Ok(self.settings.extras.apply(request)?)
    }

    /// POSTs a form to `/api/v1/<endpoint>` and returns the answer's HTTP status and text.
    async fn api(&self, endpoint: &str, form: &[(&str, &str)]) -> Result<Body, Error> {
        let url = self.endpoint(&format!("/api/v1/{endpoint}"));
        // Thanos Query reads it with FormValue, from the form as from the URL
        // (thanos-io/thanos pkg/api/query/v1.go, parsePartialResponseParam).
        let partial = self.settings.extras.partial_response.map(|p| p.to_string());
        let mut fields = form.to_vec();
        if let Some(p) = &partial {
            fields.push(("partial_response", p.as_str()));
        }
        let request = self.http.post(url).form(&fields);
        let response = self.send(request).await?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(|source| Error::Unreachable {
            url: self.settings.url.clone(),
            source,
        })?;
        Ok(Body { status, text })
    }
}

/// An instant query's answer as received, decoded by [`Fetched::each_sample`].
pub struct Fetched(Body);

impl Fetched {
    /// Hands each sample of the answer's vector to `each` as it is decoded.
    pub fn each_sample(&self, each: impl FnMut(Sample)) -> Result<(), Error> {
        data(&self.0)?.each_sample(each)
    }
}

/// An answer of the HTTP API as received.
struct Body {
    status: u16,
    text: String,
}

/// The data of a successful answer, borrowed from its text.
fn data(body: &Body) -> Result<Data<'_>, Error> {
    let (status, text) = (body.status, &body.text);
    let answer: Answer = serde_json::from_str(text).map_err(|_| {
        if status >= 400 {
            Error::Refused {
                status,
                message: text.chars().take(200).collect(),
            }
        } else {
            Error::Decode(text.chars().take(200).collect())
        }
    })?;
    if answer.status != "success" {
        return Err(Error::Refused {
            status,
            message: answer.error.unwrap_or_default(),
        });
    }
    if !answer.warnings.is_empty() {
        let mut warnings = answer.warnings.join("; ");
        if warnings.len() > 300 {
            let cut = (0..=300)
                .rev()
                .find(|i| warnings.is_char_boundary(*i))
                .unwrap_or(0);
            warnings.truncate(cut);
            warnings.push_str("...");
        }
        return Err(Error::Partial { warnings });
    }
    answer
        .data
        .ok_or_else(|| Error::Decode("no data in a successful answer".into()))
}

/// Prometheus writes values as strings, including `NaN`, `+Inf` and `-Inf`.
fn parse_value(text: &str) -> f64 {
    match text {
        "NaN" => f64::NAN,
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other.parse().unwrap_or(f64::NAN),
    }
}

/// A bearer token read from its file on every request (so a rotated token is picked up) and basic
/// auth, as the Prometheus and the ruler flags give them; the file's path and error when it
/// cannot be read.
pub fn with_credentials(
    mut request: reqwest::RequestBuilder,
    bearer_token_file: Option<&std::path::Path>,
    basic_auth: Option<&(String, String)>,
) -> Result<reqwest::RequestBuilder, (String, std::io::Error)> {
    if let Some(path) = bearer_token_file {
        let token = std::fs::read_to_string(path).map_err(|e| (path.display().to_string(), e))?;
        request = request.bearer_auth(token.trim());
    }
    if let Some((user, password)) = basic_auth {
        request = request.basic_auth(user, Some(password));
    }
    Ok(request)
}

#[cfg(test)]
mod tests {
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
        let scalar =
            data(r#"{"status":"success","data":{"resultType":"scalar","result":[1,"2"]}}"#)
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
            text: format!(
                r#"{{"status":"success","data":{{"resultType":"vector","result":{text}}}}}"#
            ),
        };
        let whole =
            body(r#"[{"metric":{"a":"1"},"value":[1,"0.5"]},{"metric":{},"value":[1,"NaN"]}]"#);
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
            text:
                r#"{"status":"success","data":{"resultType":"vector","result":[]},"warnings":[]}"#
                    .into(),
        };
        assert!(data(&whole).is_ok());
    }

    #[test]
    fn refuses_urls_without_a_scheme() {
        let err = Client::new(Settings::new("prometheus:9090", Duration::from_secs(1)))
            .err()
            .unwrap();
        assert!(err.to_string().contains("http(s)://host:port"));
    }
}
