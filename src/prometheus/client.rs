//! A small client for Prometheus' HTTP API: instant and range queries and the reload endpoint,
//! with bearer token, basic auth and a custom CA, and errors that say what to check.

use std::path::PathBuf;
use std::time::Duration;

use super::answer::{Body, Fetched, HistogramSample, Sample, Series, histograms, matrix};
use super::request::{ApplyError, Extras, with_credentials};

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

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    settings: Settings,
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

    /// [`Client::fetch`] evaluated at `at` rather than at the server's now: a round's queries
    /// then all see the same instant, the one its decisions are made at.
    pub async fn fetch_at(
        &self,
        query: &str,
        at: k8s_openapi::jiff::Timestamp,
    ) -> Result<Fetched, Error> {
        let ms = at.as_millisecond();
        let time = format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000));
        let form = [("query", query), ("time", time.as_str())];
        Ok(Fetched(self.api("query", &form).await?))
    }

    /// [`Client::query`] evaluated at `at` (see [`Client::fetch_at`]).
    pub async fn query_at(
        &self,
        query: &str,
        at: k8s_openapi::jiff::Timestamp,
    ) -> Result<Vec<Sample>, Error> {
        let mut out = Vec::new();
        self.fetch_at(query, at)
            .await?
            .each_sample(|s| out.push(s))?;
        Ok(out)
    }

    /// Runs an instant query and returns the native histograms of its vector (floats skipped).
    pub async fn query_histograms(&self, query: &str) -> Result<Vec<HistogramSample>, Error> {
        histograms(&self.api("query", &[("query", query)]).await?)
    }

    /// The Prometheus version of the server from `/api/v1/status/buildinfo`, such as `3.16.0`;
    /// `None` when the server does not serve it (some stores in front of Prometheus do not),
    /// names none, or is another program answering Prometheus' API: Mimir's buildinfo says
    /// `"application": "Grafana Mimir"` beside Mimir's own version (2.x evaluates native
    /// histograms), while Prometheus' names no application.
    pub async fn version(&self) -> Result<Option<String>, Error> {
        match self.get_data("status/buildinfo").await {
            Ok(data) => Ok(prometheus_version(&data)),
            Err(Error::Refused { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Runs an instant query of a range selector (`x[10m]`): each series with its raw samples.
    pub async fn query_samples(&self, query: &str) -> Result<Vec<Series>, Error> {
        let answer = self.api("query", &[("query", query)]).await?;
        matrix(&answer)
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
        self.query_range_ms(query, start * 1000, end * 1000, step)
            .await
    }

    /// [`Client::query_range`] from and to instants in milliseconds.
    pub async fn query_range_ms(
        &self,
        query: &str,
        start_ms: u64,
        end_ms: u64,
        step: std::time::Duration,
    ) -> Result<Vec<Series>, Error> {
        let ms = |t: u64| format!("{}.{:03}", t / 1000, t % 1000);
        let (start, end, step) = (
            ms(start_ms),
            ms(end_ms),
            format!("{}s", step.as_secs().max(1)),
        );
        let form = [
            ("query", query),
            ("start", start.as_str()),
            ("end", end.as_str()),
            ("step", step.as_str()),
        ];
        let answer = self.api("query_range", &form).await?;
        matrix(&answer)
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

/// [`Client::version`] of a buildinfo answer's `data`.
fn prometheus_version(data: &serde_json::Value) -> Option<String> {
    if data.get("application").is_some() {
        return None;
    }
    data.get("version")
        .and_then(|v| v.as_str())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_prometheus_names_a_prometheus_version() {
        let prometheus = serde_json::json!({"version": "2.42.0", "revision": "225c611"});
        assert_eq!(prometheus_version(&prometheus).as_deref(), Some("2.42.0"));
        // Mimir's buildinfo (pkg/api), beside its own version.
        let mimir = serde_json::json!({"application": "Grafana Mimir", "version": "2.17.0",
                                       "features": {"ruler_config_api": "true"}});
        assert_eq!(prometheus_version(&mimir), None);
        assert_eq!(prometheus_version(&serde_json::json!({})), None);
    }

    #[test]
    fn refuses_urls_without_a_scheme() {
        let err = Client::new(Settings::new("prometheus:9090", Duration::from_secs(1)))
            .err()
            .unwrap();
        assert!(err.to_string().contains("http(s)://host:port"));
    }
}
