//! The AdmissionReview envelope: reading what the API server sends, and answering it. Pure.

use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};
use serde_json::Value;

/// A request as the webhooks judge it: kube's typed request, plus the objects exactly as sent
/// (so validation sees every field the API server passed, as `plimsoll validate` sees a file).
#[derive(Debug, Clone)]
pub struct Review {
    pub request: AdmissionRequest<DynamicObject>,
    pub object: Option<Value>,
    pub old_object: Option<Value>,
}

/// A webhook's decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Admit, with warnings shown to the client (kubectl prints them).
    Allow { warnings: Vec<String> },
    /// Refuse with this message.
    Deny { message: String, refusal: Refusal },
}

/// The HTTP code and reason of a denial's status. The API server hands them to the client
/// (kubectl prints `admission webhook ... denied the request: ...` with them); a denial without a
/// code is turned into 400 Bad Request, which says the client sent garbage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// 422: the object is invalid (an SLO `plimsoll validate` refuses).
    Invalid,
    /// 403: a policy forbids the change (the deploy freeze).
    Forbidden,
    /// 400: the AdmissionReview itself cannot be read.
    BadRequest,
}

impl Refusal {
    pub fn code(self) -> u16 {
        match self {
            Refusal::Invalid => 422,
            Refusal::Forbidden => 403,
            Refusal::BadRequest => 400,
        }
    }

    /// As in `metav1.StatusReason`.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::Invalid => "Invalid",
            Refusal::Forbidden => "Forbidden",
            Refusal::BadRequest => "BadRequest",
        }
    }
}

impl Verdict {
    pub fn allow() -> Verdict {
        Verdict::Allow {
            warnings: Vec::new(),
        }
    }

    pub fn warn(warning: impl Into<String>) -> Verdict {
        Verdict::Allow {
            warnings: vec![warning.into()],
        }
    }

    pub fn deny(refusal: Refusal, message: impl Into<String>) -> Verdict {
        Verdict::Deny {
            message: message.into(),
            refusal,
        }
    }

    pub fn allowed(&self) -> bool {
        matches!(self, Verdict::Allow { .. })
    }
}

/// Why a body cannot be judged.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("the body is not JSON: {0}")]
    NotJson(serde_json::Error),
    #[error(
        "the body is not an AdmissionReview with a request (kind: AdmissionReview, request.uid)"
    )]
    NoRequest,
    /// A request with a uid whose other fields cannot be read: answered, with the uid, by the
    /// webhook's fallback verdict.
    #[error("cannot read the AdmissionReview request: {detail}")]
    Unreadable {
        uid: String,
        /// The review's apiVersion, which the answer must repeat.
        api_version: String,
        detail: String,
    },
}

impl ReviewError {
    pub fn reason(&self) -> &'static str {
        match self {
            ReviewError::NotJson(_) => "NotJson",
            ReviewError::NoRequest => "NoRequest",
            ReviewError::Unreadable { .. } => "Unreadable",
        }
    }
}

/// Reads an AdmissionReview body.
pub fn parse(body: &[u8]) -> Result<Review, ReviewError> {
    let value: Value = serde_json::from_slice(body).map_err(ReviewError::NotJson)?;
    let uid = value
        .get("request")
        .and_then(|r| r.get("uid"))
        .and_then(Value::as_str)
        .filter(|uid| !uid.is_empty())
        .ok_or(ReviewError::NoRequest)?
        .to_string();
    // The API server refuses an answer in another version than its request's.
    let api_version = match value.get("apiVersion").and_then(Value::as_str) {
        Some(v @ ("admission.k8s.io/v1" | "admission.k8s.io/v1beta1")) => v.to_string(),
        _ => "admission.k8s.io/v1".to_string(),
    };
    let request = &value["request"];
    let object = request.get("object").filter(|o| !o.is_null()).cloned();
    let old_object = request.get("oldObject").filter(|o| !o.is_null()).cloned();
    let review: AdmissionReview<DynamicObject> =
        serde_json::from_value(value).map_err(|e| ReviewError::Unreadable {
            uid: uid.clone(),
            api_version,
            detail: e.to_string(),
        })?;
    let request: AdmissionRequest<DynamicObject> =
        review.try_into().map_err(|_| ReviewError::NoRequest)?;
    Ok(Review {
        request,
        object,
        old_object,
    })
}

/// The AdmissionReview answering `request` with `verdict` (the uid is echoed).
pub fn respond(request: &AdmissionRequest<DynamicObject>, verdict: Verdict) -> Value {
    encode(answer(AdmissionResponse::from(request), verdict))
}

/// The answer to a request that has a uid but cannot be read.
pub fn respond_unreadable(uid: &str, api_version: &str, detail: &str, verdict: Verdict) -> Value {
    let mut response = AdmissionResponse::invalid(detail);
    response.uid = uid.to_string();
    response.types.api_version = api_version.to_string();
    response.allowed = true;
    encode(answer(response, verdict))
}

fn answer(mut response: AdmissionResponse, verdict: Verdict) -> AdmissionResponse {
    match verdict {
        Verdict::Allow { warnings } => {
            response.allowed = true;
            response.result = Default::default();
            if !warnings.is_empty() {
                response.warnings = Some(warnings);
            }
            response
        }
        Verdict::Deny { message, refusal } => {
            let mut response = response.deny(message);
            response.result.status = Some(kube::core::response::StatusSummary::Failure);
            response.result.code = refusal.code();
            response.result.reason = refusal.reason().to_string();
            response
        }
    }
}

fn encode(response: AdmissionResponse) -> Value {
    serde_json::to_value(response.into_review()).unwrap_or_else(|e| {
        // Serializing these plain types cannot fail; answer something the API server reads.
        serde_json::json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                           "response": {"uid": "", "allowed": false,
                                        "status": {"message": e.to_string()}}})
    })
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use serde_json::json;

    /// An AdmissionReview as the API server sends it.
    pub fn body(
        operation: &str,
        kind: (&str, &str, &str),
        object: Option<Value>,
        old: Option<Value>,
    ) -> Value {
        let (group, version, kind) = kind;
        json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {
                "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
                "kind": {"group": group, "version": version, "kind": kind},
                "resource": {"group": group, "version": version, "resource": "things"},
                "name": object.as_ref().or(old.as_ref())
                    .and_then(|o| o["metadata"]["name"].as_str()).unwrap_or(""),
                "namespace": "shop",
                "operation": operation,
                "userInfo": {"username": "admin", "groups": ["system:masters"]},
                "object": object, "oldObject": old, "dryRun": false,
            }
        })
    }

    pub fn review(body: &Value) -> Review {
        parse(&serde_json::to_vec(body).unwrap()).unwrap()
    }

    #[test]
    fn the_answer_echoes_the_uid_and_carries_the_verdict() {
        let slo = json!({"apiVersion": "plimsoll.dev/v1alpha1", "kind": "ServiceLevelObjective",
                         "metadata": {"name": "a", "namespace": "shop"}, "spec": {"x": 1}});
        let r = review(&body(
            "CREATE",
            ("plimsoll.dev", "v1alpha1", "ServiceLevelObjective"),
            Some(slo.clone()),
            None,
        ));
        assert_eq!(r.object, Some(slo), "the object exactly as sent");
        assert_eq!(r.old_object, None);
        let denied = respond(&r.request, Verdict::deny(Refusal::Invalid, "spec.x: no"));
        assert_eq!(denied["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(denied["kind"], "AdmissionReview");
        assert_eq!(
            denied["response"]["uid"],
            "705ab4f5-6393-11e8-b7cc-42010a800002"
        );
        assert_eq!(denied["response"]["allowed"], false);
        assert_eq!(denied["response"]["status"]["message"], "spec.x: no");
        assert_eq!(denied["response"]["status"]["code"], 422);
        assert_eq!(denied["response"]["status"]["reason"], "Invalid");
        assert_eq!(denied["response"]["status"]["status"], "Failure");
        let allowed = respond(&r.request, Verdict::warn("careful"));
        assert_eq!(allowed["response"]["allowed"], true);
        assert_eq!(allowed["response"]["warnings"], json!(["careful"]));
        let plain = respond(&r.request, Verdict::allow());
        assert!(plain["response"].get("warnings").is_none());
    }

    #[test]
    fn malformed_bodies_are_errors_never_panics() {
        for (text, reason) in [
            ("", "NotJson"),
            ("{", "NotJson"),
            ("\u{0}\u{1}", "NotJson"),
            ("[]", "NoRequest"),
            ("null", "NoRequest"),
            ("{}", "NoRequest"),
            (r#"{"kind":"AdmissionReview","request":null}"#, "NoRequest"),
            (
                r#"{"kind":"AdmissionReview","request":{"uid":""}}"#,
                "NoRequest",
            ),
            (
                r#"{"kind":"AdmissionReview","request":{"uid":7}}"#,
                "NoRequest",
            ),
            (
                r#"{"kind":"AdmissionReview","request":{"uid":"u1"}}"#,
                "Unreadable",
            ),
            (
                r#"{"kind":"AdmissionReview","request":{"uid":"u1","kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},"name":"p","operation":"EXPLODE","userInfo":{}}}"#,
                "Unreadable",
            ),
        ] {
            let e = parse(text.as_bytes()).unwrap_err();
            assert_eq!(e.reason(), reason, "{text:?}: {e}");
        }
        let Err(ReviewError::Unreadable { uid, .. }) =
            parse(br#"{"request":{"uid":"u1","object":5}}"#)
        else {
            panic!("a request with a uid but the wrong shape is Unreadable");
        };
        assert_eq!(uid, "u1");
    }

    #[test]
    fn an_unreadable_request_is_answered_with_its_uid() {
        let denied = respond_unreadable(
            "u1",
            "admission.k8s.io/v1",
            "bad",
            Verdict::deny(Refusal::BadRequest, "cannot read: bad"),
        );
        assert_eq!(denied["response"]["uid"], "u1");
        assert_eq!(denied["response"]["allowed"], false);
        assert_eq!(denied["response"]["status"]["message"], "cannot read: bad");
        assert_eq!(denied["response"]["status"]["code"], 400);
        let allowed = respond_unreadable(
            "u1",
            "admission.k8s.io/v1beta1",
            "bad",
            Verdict::warn("not checked"),
        );
        assert_eq!(
            allowed["apiVersion"], "admission.k8s.io/v1beta1",
            "the request's version"
        );
        assert_eq!(allowed["response"]["allowed"], true);
        assert_eq!(allowed["response"]["warnings"], json!(["not checked"]));
    }
}
