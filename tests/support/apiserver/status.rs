//! Errors as the API server returns them: metav1.Status bodies with the reason, message, code and
//! details that k8s.io/apimachinery/pkg/api/errors builds.

use serde_json::{Value, json};

use super::resources::Resource;

#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    pub code: u16,
    pub reason: String,
    pub message: String,
    pub details: Value,
    /// Sent as the Retry-After header and details.retryAfterSeconds.
    pub retry_after: Option<u64>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.code, self.reason, self.message)
    }
}

impl std::error::Error for ApiError {}

fn details(def: &Resource, name: &str) -> Value {
    json!({"name": name, "group": def.group, "kind": def.plural})
}

impl ApiError {
    pub fn new(code: u16, reason: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            reason: reason.to_string(),
            message: message.into(),
            details: Value::Null,
            retry_after: None,
        }
    }

    fn with_details(mut self, details: Value) -> ApiError {
        self.details = details;
        self
    }

    /// A path the server does not serve (an unregistered resource, a CRD not installed).
    pub fn no_resource() -> ApiError {
        ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
        .with_details(json!({}))
    }

    pub fn not_found(def: &Resource, name: &str) -> ApiError {
        let message = format!("{} {name:?} not found", def.group_resource());
        ApiError::new(404, "NotFound", message).with_details(details(def, name))
    }

    pub fn already_exists(def: &Resource, name: &str) -> ApiError {
        let message = format!("{} {name:?} already exists", def.group_resource());
        ApiError::new(409, "AlreadyExists", message).with_details(details(def, name))
    }

    /// A stale resourceVersion (or uid) precondition.
    pub fn conflict(def: &Resource, name: &str) -> ApiError {
        let message = format!(
            "Operation cannot be fulfilled on {} {name:?}: the object has been modified; please \
             apply your changes to the latest version and try again",
            def.group_resource()
        );
        ApiError::new(409, "Conflict", message).with_details(details(def, name))
    }

    pub fn apply_conflict(
        def: &Resource,
        name: &str,
        message: String,
        causes: Vec<Value>,
    ) -> ApiError {
        let mut d = details(def, name);
        d["causes"] = Value::Array(causes);
        ApiError::new(409, "Conflict", message).with_details(d)
    }

    /// A 422 on one field, worded as field.Error: `field: Reason: detail`.
    pub fn invalid(
        def: &Resource,
        name: &str,
        field: &str,
        reason: &str,
        detail: &str,
    ) -> ApiError {
        let kind = if def.group.is_empty() {
            def.kind.clone()
        } else {
            format!("{}.{}", def.kind, def.group)
        };
        let cause = format!("{field}: {reason}: {detail}");
        let message = format!("{kind} {name:?} is invalid: {cause}");
        let reason_type = format!("Field{}", reason.replace(' ', ""));
        ApiError::new(422, "Invalid", message).with_details(json!({
            "name": name, "group": def.group, "kind": def.kind,
            "causes": [{"reason": reason_type, "message": format!("{reason}: {detail}"), "field": field}]}))
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "BadRequest", message)
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(403, "Forbidden", message)
    }

    pub fn method_not_allowed() -> ApiError {
        ApiError::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
    }

    /// 410 Expired, as for a continue token or a watch resourceVersion that is too old.
    pub fn expired(message: impl Into<String>) -> ApiError {
        ApiError::new(410, "Expired", message)
    }

    /// A patch type the resource does not accept; custom resources take no strategic merge patch
    /// (kubernetes/kubernetes#97423 shows this message).
    pub fn unsupported_media_type(builtin: bool) -> ApiError {
        let strategic = if builtin {
            ", application/strategic-merge-patch+json"
        } else {
            ""
        };
        let message = format!(
            "the body of the request was in an unknown format - accepted media types include: \
             application/json-patch+json, application/merge-patch+json, \
             application/apply-patch+yaml{strategic}"
        );
        ApiError::new(415, "UnsupportedMediaType", message)
    }

    /// 429 as API Priority and Fairness sends it, with Retry-After.
    pub fn too_many_requests(retry_after: u64) -> ApiError {
        let mut e = ApiError::new(
            429,
            "TooManyRequests",
            "Too many requests, please try again later.",
        );
        e.details = json!({"retryAfterSeconds": retry_after});
        e.retry_after = Some(retry_after);
        e
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(500, "InternalError", message)
    }

    /// The reason a status code has when a test injects it.
    pub fn injected(code: u16, retry_after: Option<u64>, message: Option<&str>) -> ApiError {
        if code == 429 {
            let mut e = ApiError::too_many_requests(retry_after.unwrap_or(1));
            if let Some(m) = message {
                e.message = m.to_string();
            }
            return e;
        }
        let (reason, default) = match code {
            400 => ("BadRequest", "bad request"),
            401 => ("Unauthorized", "Unauthorized"),
            403 => ("Forbidden", "forbidden"),
            404 => (
                "NotFound",
                "the server could not find the requested resource",
            ),
            409 => (
                "Conflict",
                "Operation cannot be fulfilled: the object has been modified; please apply your changes to the latest version and try again",
            ),
            410 => ("Expired", "too old resource version"),
            422 => ("Invalid", "the object is invalid"),
            503 => (
                "ServiceUnavailable",
                "the server is currently unable to handle the request",
            ),
            504 => (
                "Timeout",
                "the server was unable to return a response in the time allotted",
            ),
            _ => ("InternalError", "Internal error occurred: injected fault"),
        };
        let mut e = ApiError::new(code, reason, message.unwrap_or(default));
        e.retry_after = retry_after;
        if let Some(secs) = retry_after {
            e.details = json!({"retryAfterSeconds": secs});
        }
        e
    }

    /// The metav1.Status body.
    pub fn to_json(&self) -> Value {
        let mut out = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                             "message": self.message, "reason": self.reason, "code": self.code});
        if !self.details.is_null() {
            out["details"] = self.details.clone();
        }
        out
    }
}
