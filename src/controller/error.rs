//! Errors of one reconcile. Each has a fixed, low-cardinality reason for metrics and logs.

/// What made a reconcile fail; the error policy retries these with backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading PrometheusRule {name}: {source}")]
    ReadRule {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("applying PrometheusRule {name}: {source}")]
    ApplyRule {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("writing status of {name}: {source}")]
    WriteStatus {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("writing AnalysisTemplate {name}: {source}")]
    ApplyTemplate {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("updating the finalizer of {name}: {source}")]
    Finalizer {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("removing the rollback annotations of {name} from its targets: {source}")]
    ReleaseTargets {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("object has no {0}")]
    MissingMetadata(&'static str),
}

impl Error {
    /// Metric label and log field: never object names or error text.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::ReadRule { .. } => "ReadRule",
            Error::ApplyRule { .. } => "ApplyRule",
            Error::WriteStatus { .. } => "WriteStatus",
            Error::ApplyTemplate { .. } => "ApplyTemplate",
            Error::Finalizer { .. } => "Finalizer",
            Error::ReleaseTargets { .. } => "ReleaseTargets",
            Error::MissingMetadata(_) => "MissingMetadata",
        }
    }
}

/// The HTTP status of an API error, if the API server answered at all.
pub fn api_code(error: &kube::Error) -> Option<u16> {
    match error {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}
