//! A small client for Prometheus' HTTP API: instant queries, with bearer token, basic auth and a
//! custom CA, and errors that say what to check.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

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
        }
    }
}

/// One sample of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    settings: Settings,
}

#[derive(Deserialize)]
struct Answer {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Data {
    result_type: String,
    result: Vec<VectorSample>,
}

#[derive(Deserialize)]
struct VectorSample {
    metric: BTreeMap<String, String>,
    value: (f64, String),
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
        let http = builder.build().map_err(Error::Client)?;
        Ok(Client { http, settings })
    }

    pub fn url(&self) -> &str {
        &self.settings.url
    }

    /// Runs an instant query and returns its vector.
    pub async fn query(&self, query: &str) -> Result<Vec<Sample>, Error> {
        let url = format!("{}/api/v1/query", self.settings.url.trim_end_matches('/'));
        let mut request = self.http.post(&url).form(&[("query", query)]);
        if let Some(path) = &self.settings.bearer_token_file {
            let token = std::fs::read_to_string(path).map_err(|source| Error::File {
                what: "bearer token file",
                path: path.display().to_string(),
                source,
            })?;
            request = request.bearer_auth(token.trim());
        }
        if let Some((user, password)) = &self.settings.basic_auth {
            request = request.basic_auth(user, Some(password));
        }
        let response = request.send().await.map_err(|source| Error::Unreachable {
            url: self.settings.url.clone(),
            source,
        })?;
        let status = response.status().as_u16();
        let body = response.text().await.map_err(|source| Error::Unreachable {
            url: self.settings.url.clone(),
            source,
        })?;
        let answer: Answer = serde_json::from_str(&body).map_err(|_| {
            if status >= 400 {
                Error::Refused {
                    status,
                    message: body.chars().take(200).collect(),
                }
            } else {
                Error::Decode(body.chars().take(200).collect())
            }
        })?;
        if answer.status != "success" {
            return Err(Error::Refused {
                status,
                message: answer.error.unwrap_or_default(),
            });
        }
        let data = answer
            .data
            .ok_or_else(|| Error::Decode("no data in a successful answer".into()))?;
        if data.result_type != "vector" {
            return Err(Error::Decode(format!(
                "expected a vector, got a {}",
                data.result_type
            )));
        }
        Ok(data
            .result
            .into_iter()
            .map(|s| Sample {
                labels: s.metric,
                value: parse_value(&s.value.1),
            })
            .collect())
    }
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
    fn refuses_urls_without_a_scheme() {
        let err = Client::new(Settings::new("prometheus:9090", Duration::from_secs(1)))
            .err()
            .unwrap();
        assert!(err.to_string().contains("http(s)://host:port"));
    }
}
