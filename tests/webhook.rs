//! The admission webhook over real HTTPS on loopback, with the certificate it generates or reads:
//! the self-managed certificate flow against a mocked API server that checks every request
//! (Secret 404 -> create, 409 -> read theirs, renewal guarded by resourceVersion, the caBundle
//! JSON patch), AdmissionReviews answered with the uid echoed, and `plimsoll run` serving it. The
//! mocked API server also holds every request to the operator's RBAC (src/access.rs).

#[path = "support/access.rs"]
mod access;
#[path = "support/operator.rs"]
mod operator;
mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{Request, Response};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Client;
use kube::client::Body;
use plimsoll::controller::Scope;
use plimsoll::slo_cache::SloCache;
use plimsoll::webhook::tls::{self, Bundle};
use plimsoll::webhook::{self, CertSource, Running, Settings};
use serde_json::{Value, json};
use tokio::sync::watch;
use tower_test::mock::SendResponse;

const NAMESPACE: &str = "plimsoll-system";
const SERVICE: &str = "plimsoll-webhook";
const HOST: &str = "plimsoll-webhook.plimsoll-system.svc";
const SECRET_NAME: &str = "plimsoll-webhook-tls";
const SECRETS: &str = "/api/v1/namespaces/plimsoll-system/secrets";
const SECRET: &str = "/api/v1/namespaces/plimsoll-system/secrets/plimsoll-webhook-tls";
const CONFIGURATION: &str =
    "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/plimsoll";
const SLOS: &str = "/apis/plimsoll.dev/v1alpha1/servicelevelobjectives";

#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    query: String,
    content_type: String,
    body: Value,
}

impl Seen {
    /// A query parameter (kube sends some queries with a leading `&`; the API server ignores it).
    fn param(&self, key: &str) -> Option<&str> {
        self.query
            .split('&')
            .find_map(|q| q.strip_prefix(key)?.strip_prefix('='))
    }
}

/// What the mocked API server holds, and every request it was sent.
#[derive(Default)]
struct Cluster {
    secret: Option<Value>,
    version: u64,
    configuration: Option<Value>,
    slos: Vec<Value>,
    /// Another replica's Secret, written just before our next create or update, which is then
    /// refused with 409 as the API server would.
    race: Option<Value>,
    seen: Vec<Seen>,
    unexpected: Vec<String>,
    /// Open watches: answered never, as an idle API server's.
    watches: Vec<SendResponse<Response<Body>>>,
    /// SLO lists are answered 503, as by an API server that is down.
    slos_down: bool,
}

type Shared = Arc<Mutex<Cluster>>;

fn status(code: u16, reason: &str, message: &str) -> (u16, Value) {
    (
        code,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "reason": reason, "message": message, "code": code}),
    )
}

impl Cluster {
    fn store_secret(&mut self, mut secret: Value) -> Value {
        self.version += 1;
        secret["metadata"]["namespace"] = json!(NAMESPACE);
        secret["metadata"]["uid"] = json!("secret-uid");
        secret["metadata"]["resourceVersion"] = json!(self.version.to_string());
        self.secret = Some(secret.clone());
        secret
    }

    /// The API server's answer; `None` holds the request open (a watch).
    fn answer(&mut self, seen: &Seen) -> Option<(u16, Value)> {
        let watch = seen.param("watch") == Some("true");
        Some(match (seen.method.as_str(), seen.path.as_str()) {
            ("GET", SECRET) => match &self.secret {
                Some(secret) => (200, secret.clone()),
                None => status(
                    404,
                    "NotFound",
                    "secrets \"plimsoll-webhook-tls\" not found",
                ),
            },
            ("POST", SECRETS) => {
                if let Some(theirs) = self.race.take() {
                    self.store_secret(theirs);
                }
                if self.secret.is_some() {
                    status(
                        409,
                        "AlreadyExists",
                        "secrets \"plimsoll-webhook-tls\" already exists",
                    )
                } else {
                    (201, self.store_secret(seen.body.clone()))
                }
            }
            ("PUT", SECRET) => {
                if let Some(theirs) = self.race.take() {
                    self.store_secret(theirs);
                }
                let current = self
                    .secret
                    .as_ref()
                    .map(|s| s["metadata"]["resourceVersion"].clone());
                if current != Some(seen.body["metadata"]["resourceVersion"].clone()) {
                    status(
                        409,
                        "Conflict",
                        "Operation cannot be fulfilled on secrets \"plimsoll-webhook-tls\": the \
                         object has been modified; please apply your changes to the latest \
                         version and try again",
                    )
                } else {
                    (200, self.store_secret(seen.body.clone()))
                }
            }
            ("GET", CONFIGURATION) => match &self.configuration {
                Some(c) => (200, c.clone()),
                None => status(404, "NotFound", "validatingwebhookconfigurations not found"),
            },
            ("PATCH", CONFIGURATION) => {
                if seen.content_type != "application/json-patch+json" {
                    return Some(status(415, "UnsupportedMediaType", &seen.content_type));
                }
                let Some(mut current) = self.configuration.clone() else {
                    return Some(status(404, "NotFound", "not found"));
                };
                let Ok(patch) = serde_json::from_value::<json_patch::Patch>(seen.body.clone())
                else {
                    return Some(status(400, "BadRequest", "not a JSON patch"));
                };
                if let Err(e) = json_patch::patch(&mut current, &patch) {
                    return Some(status(422, "Invalid", &e.to_string()));
                }
                self.configuration = Some(current.clone());
                (200, current)
            }
            ("GET", SLOS) if self.slos_down => status(503, "ServiceUnavailable", "down"),
            ("GET", SLOS) if watch => return None,
            ("GET", SLOS) => (
                200,
                json!({"kind": "ServiceLevelObjectiveList", "apiVersion": "plimsoll.dev/v1alpha1",
                       "metadata": {"resourceVersion": "5"}, "items": self.slos}),
            ),
            _ => {
                self.unexpected
                    .push(format!("{} {}?{}", seen.method, seen.path, seen.query));
                status(404, "NotFound", "not served by this mock")
            }
        })
    }

    fn requests(&self, method: &str, path: &str) -> Vec<Seen> {
        self.seen
            .iter()
            .filter(|s| s.method == method && s.path == path)
            .cloned()
            .collect()
    }

    /// The verbs and paths of the certificate flow, in order (the SLO watch runs beside it).
    fn certificate_flow(&self) -> Vec<String> {
        self.seen
            .iter()
            .filter(|s| s.path != SLOS)
            .map(|s| format!("{} {}", s.method, s.path))
            .collect()
    }
}

/// A kube client whose API server is `cluster`.
fn client(cluster: Shared) -> Client {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    tokio::spawn(async move {
        while let Some((request, respond)) = handle.next_request().await {
            let content_type = request
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            let method = request.method().to_string();
            let path = request.uri().path().to_string();
            let query = request.uri().query().unwrap_or_default().to_string();
            access::check(&method, &path, &query);
            let bytes = request.into_body().collect_bytes().await.unwrap();
            let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let seen = Seen {
                method,
                path,
                query,
                content_type,
                body,
            };
            let mut cluster = cluster.lock().unwrap();
            let answer = cluster.answer(&seen);
            cluster.seen.push(seen);
            match answer {
                Some((code, body)) => respond.send_response(
                    Response::builder()
                        .status(code)
                        .body(Body::from(serde_json::to_vec(&body).unwrap()))
                        .unwrap(),
                ),
                None => cluster.watches.push(respond),
            }
        }
    });
    Client::new(service, "default")
}

fn names() -> Vec<String> {
    tls::service_names(SERVICE, NAMESPACE)
}

fn settings(certificates: CertSource, deploy_freeze: bool) -> Settings {
    Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        certificates,
        configuration: Some("plimsoll".into()),
        deploy_freeze,
        cache: None,
        scope: Scope::default(),
        recheck: Duration::from_millis(200),
    }
}

fn self_managed() -> CertSource {
    CertSource::Secret {
        name: SECRET_NAME.into(),
        namespace: NAMESPACE.into(),
        service: SERVICE.into(),
    }
}

/// A ValidatingWebhookConfiguration as the chart renders it: caBundle absent or blank.
fn configuration() -> Value {
    let webhook = |name: &str, path: &str| {
        json!({"name": name, "admissionReviewVersions": ["v1"], "sideEffects": "None",
               "failurePolicy": "Ignore", "timeoutSeconds": 5,
               "clientConfig": {"service": {"name": SERVICE, "namespace": NAMESPACE,
                                            "path": path, "port": 9443}}})
    };
    let mut freeze = webhook("freeze.plimsoll.dev", "/freeze");
    freeze["clientConfig"]["caBundle"] = json!("");
    json!({"apiVersion": "admissionregistration.k8s.io/v1",
           "kind": "ValidatingWebhookConfiguration",
           "metadata": {"name": "plimsoll", "resourceVersion": "3"},
           "webhooks": [webhook("slo.plimsoll.dev", "/validate-slo"), freeze]})
}

fn base64(pem: &str) -> Value {
    serde_json::to_value(ByteString(pem.as_bytes().to_vec())).unwrap()
}

/// The bundle in a Secret as the API server holds it.
fn stored_bundle(secret: &Value) -> Bundle {
    let secret: Secret = serde_json::from_value(secret.clone()).unwrap();
    webhook::secret::bundle(&secret).unwrap()
}

fn secret_value(bundle: &Bundle) -> Value {
    serde_json::to_value(webhook::secret::secret(SECRET_NAME, bundle)).unwrap()
}

/// Waits for `done`; 30 s is a bound for a loaded machine (an idle one takes milliseconds).
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within 30 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Starts the webhook against the cluster and waits until it serves a certificate; the sender
/// shuts it down.
async fn serving(cluster: &Shared, settings: Settings) -> (Running, watch::Sender<bool>) {
    let (shutdown_tx, shutdown) = watch::channel(false);
    let running = webhook::start(client(cluster.clone()), settings, shutdown)
        .await
        .unwrap();
    eventually("a certificate is served", || {
        running.certificates.cert().is_some()
    })
    .await;
    (running, shutdown_tx)
}

async fn stop(running: Running, shutdown: watch::Sender<bool>) {
    shutdown.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), running.done)
        .await
        .expect("the webhook stops within 10 s of shutdown")
        .unwrap();
}

/// An HTTPS client that trusts only `ca` and reaches the Service name at `addr`.
fn https(ca: &str, addr: SocketAddr) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).unwrap())
        .resolve(HOST, addr)
        .https_only(true)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

async fn post(
    client: &reqwest::Client,
    addr: SocketAddr,
    path: &str,
    body: Vec<u8>,
) -> (u16, String) {
    post_as(client, addr, path, "application/json", body).await
}

/// POSTs with this Content-Type. kube-apiserver's webhook client sends `application/json` (and
/// Accept: application/json, */*).
async fn post_as(
    client: &reqwest::Client,
    addr: SocketAddr,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, String) {
    let response = client
        .post(format!("https://{HOST}:{}{path}", addr.port()))
        .header("content-type", content_type)
        .header("accept", "application/json, */*")
        .body(body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// POSTs an AdmissionReview and returns its response object.
async fn admit(client: &reqwest::Client, addr: SocketAddr, path: &str, review: &Value) -> Value {
    let (code, text) = post(client, addr, path, serde_json::to_vec(review).unwrap()).await;
    assert_eq!(code, 200, "{text}");
    let answer: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(answer["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(answer["kind"], "AdmissionReview");
    assert_eq!(
        answer["response"]["uid"], review["request"]["uid"],
        "uid echoed"
    );
    answer["response"].clone()
}

fn review(
    uid: &str,
    operation: &str,
    kind: (&str, &str, &str),
    object: Value,
    old: Option<Value>,
) -> Value {
    let (group, version, kind) = kind;
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
           "request": {"uid": uid,
                       "kind": {"group": group, "version": version, "kind": kind},
                       "resource": {"group": group, "version": version, "resource": "x"},
                       "name": object["metadata"]["name"], "namespace": "shop",
                       "operation": operation,
                       "userInfo": {"username": "alice", "groups": ["developers"]},
                       "object": object, "oldObject": old, "dryRun": false}})
}

const SLO_KIND: (&str, &str, &str) = ("plimsoll.dev", "v1alpha1", "ServiceLevelObjective");
const DEPLOYMENT_KIND: (&str, &str, &str) = ("apps", "v1", "Deployment");

fn deployment(image: &str, annotations: Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": "checkout", "namespace": "shop", "annotations": annotations},
           "spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}})
}

/// An SLO that targets Deployment shop/checkout and has run out of budget.
fn exhausted_slo() -> Value {
    json!({"apiVersion": "plimsoll.dev/v1alpha1", "kind": "ServiceLevelObjective",
           "metadata": {"name": "checkout-availability", "namespace": "shop",
                        "resourceVersion": "4", "uid": "slo-uid"},
           "spec": {"service": "checkout", "objective": 99.9, "window": "30d",
                    "indicator": {"ratio": {"errors": "e_total", "total": "t_total"}},
                    "rollback": {"targets": [{"kind": "Deployment", "name": "checkout"}]}},
           "status": {"errorBudget": {"remaining": "-3.2", "consumedMinutes": "44.6",
                                      "totalMinutes": "43.2"},
                      "conditions": [{"type": "BudgetExhausted", "status": "True",
                                      "reason": "BudgetExhausted", "message": "",
                                      "lastTransitionTime": "2026-01-01T00:00:00Z"}]}})
}

/// What `plimsoll validate` prints for a file, without the file name: one problem per line.
fn plimsoll_validate(file: &Path) -> Vec<String> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_plimsoll"))
        .args(["validate", "--quiet"])
        .arg(file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let prefix = format!("{}: ", file.display());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.strip_prefix(&prefix).unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn the_first_replica_creates_the_certificate_serves_it_and_sets_the_ca_bundle() {
    let cluster = Arc::new(Mutex::new(Cluster {
        configuration: Some(configuration()),
        slos: vec![exhausted_slo()],
        ..Cluster::default()
    }));
    let (shutdown_tx, shutdown) = watch::channel(false);
    let running = webhook::start(
        client(cluster.clone()),
        settings(self_managed(), true),
        shutdown,
    )
    .await
    .unwrap();
    let patched = || {
        cluster.lock().unwrap().configuration.as_ref().unwrap()["webhooks"][1]["clientConfig"]
            .get("caBundle")
            .is_some_and(|b| b != "")
    };
    eventually("the caBundle is set", patched).await;

    let (flow, secret, patch) = {
        let c = cluster.lock().unwrap();
        (
            c.certificate_flow(),
            c.requests("POST", SECRETS)[0].clone(),
            c.requests("PATCH", CONFIGURATION)[0].clone(),
        )
    };
    assert_eq!(
        flow[..4],
        [
            format!("GET {SECRET}"),
            format!("POST {SECRETS}"),
            format!("GET {CONFIGURATION}"),
            format!("PATCH {CONFIGURATION}"),
        ]
    );
    // The Secret: kubernetes.io/tls with the four entries, labelled, under our field manager.
    assert_eq!(secret.param("fieldManager"), Some("plimsoll-webhook"));
    assert_eq!(secret.body["type"], "kubernetes.io/tls");
    assert_eq!(secret.body["metadata"]["name"], SECRET_NAME);
    assert_eq!(
        secret.body["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "plimsoll"
    );
    let mut keys: Vec<&String> = secret.body["data"].as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["ca.crt", "ca.key", "tls.crt", "tls.key"]);
    let bundle = stored_bundle(&secret.body);
    assert_eq!(
        running.certificates.cert().as_deref(),
        Some(bundle.cert.as_str())
    );
    // The caBundle: a JSON patch, each webhook's name tested at its index.
    assert_eq!(patch.content_type, "application/json-patch+json");
    assert_eq!(patch.param("fieldManager"), Some("plimsoll-webhook"));
    let ca = base64(&bundle.ca_cert);
    assert_eq!(
        patch.body,
        json!([
            {"op": "test", "path": "/webhooks/0/name", "value": "slo.plimsoll.dev"},
            {"op": "add", "path": "/webhooks/0/clientConfig/caBundle", "value": ca},
            {"op": "test", "path": "/webhooks/1/name", "value": "freeze.plimsoll.dev"},
            {"op": "add", "path": "/webhooks/1/clientConfig/caBundle", "value": ca},
        ])
    );

    // Served over HTTPS to a client that trusts only the generated CA, for the Service's name.
    let https = https(&bundle.ca_cert, running.addr);
    let valid = support::document(&support::repo().join("examples/checkout-availability.yaml"));
    let response = admit(
        &https,
        running.addr,
        "/validate-slo",
        &review("uid-valid", "CREATE", SLO_KIND, valid, None),
    )
    .await;
    assert_eq!(response["allowed"], true, "{response}");
    for bad in [
        "14-objective-150.yaml",
        "27-promql-syntax-error.yaml",
        "46-cross-namespace-target.yaml",
        "52-unknown-field-typo.yaml",
    ] {
        let file = support::repo().join("tests/bad-input").join(bad);
        let response = admit(
            &https,
            running.addr,
            "/validate-slo",
            &review(bad, "CREATE", SLO_KIND, support::document(&file), None),
        )
        .await;
        assert_eq!(response["allowed"], false, "{bad}: {response}");
        assert_eq!(
            (&response["status"]["code"], &response["status"]["reason"]),
            (&json!(422), &json!("Invalid")),
            "{bad}: a denial says why in its code, or the API server makes it a 400"
        );
        assert_eq!(
            response["status"]["message"],
            plimsoll_validate(&file).join("; "),
            "{bad}: the message of plimsoll validate"
        );
    }

    // The freeze, over the SLOs the cache listed.
    let old = deployment("shop:1", json!({}));
    eventually("the freeze has listed the SLOs", || {
        !cluster.lock().unwrap().requests("GET", SLOS).is_empty()
    })
    .await;
    // Admitted (with a warning) until the cache has listed: 30 s is a bound for a loaded
    // machine, not a count of tries.
    let deadline = Instant::now() + Duration::from_secs(30);
    let denied = loop {
        let response = admit(
            &https,
            running.addr,
            "/freeze",
            &review(
                "uid-freeze",
                "UPDATE",
                DEPLOYMENT_KIND,
                deployment("shop:2", json!({})),
                Some(old.clone()),
            ),
        )
        .await;
        if response["allowed"] == false {
            break response;
        }
        assert_eq!(
            response["warnings"][0],
            "deploy freeze not checked: the operator has not loaded the SLOs yet"
        );
        assert!(
            Instant::now() < deadline,
            "the freeze never judged within 30 s: {response}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(denied["status"]["code"], 403, "{denied}");
    assert_eq!(denied["status"]["reason"], "Forbidden");
    let message = denied["status"]["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "deploy freeze: the error budget of SLO shop/checkout-availability (-3.2% left) is \
             exhausted, so the pod template of Deployment shop/checkout may not change"
        ),
        "{message}"
    );
    assert!(
        message.contains("plimsoll.dev/freeze-override"),
        "{message}"
    );
    let overridden = admit(
        &https,
        running.addr,
        "/freeze",
        &review(
            "uid-override",
            "UPDATE",
            DEPLOYMENT_KIND,
            deployment(
                "shop:2",
                json!({"plimsoll.dev/freeze-override": "INC-42 hotfix"}),
            ),
            Some(old.clone()),
        ),
    )
    .await;
    assert_eq!(overridden["allowed"], true);
    assert!(
        overridden["warnings"][0]
            .as_str()
            .unwrap()
            .contains("\"INC-42 hotfix\""),
        "{overridden}"
    );
    let mut scaled = old.clone();
    scaled["spec"]["replicas"] = json!(3);
    let response = admit(
        &https,
        running.addr,
        "/freeze",
        &review("uid-scale", "UPDATE", DEPLOYMENT_KIND, scaled, Some(old)),
    )
    .await;
    assert_eq!(
        response["allowed"], true,
        "scaling is not a pod template change"
    );
    assert!(response.get("warnings").is_none());

    // Malformed bodies: 400, and the server keeps serving.
    assert_eq!(
        post(&https, running.addr, "/freeze", b"{not json".to_vec())
            .await
            .0,
        400
    );
    assert_eq!(
        post(&https, running.addr, "/validate-slo", b"{}".to_vec())
            .await
            .0,
        400
    );
    for content_type in [
        "text/plain",
        "application/yaml",
        "application/x-www-form-urlencoded",
    ] {
        let valid = review("uid-ct", "DELETE", SLO_KIND, json!({}), None);
        let (code, text) = post_as(
            &https,
            running.addr,
            "/validate-slo",
            content_type,
            serde_json::to_vec(&valid).unwrap(),
        )
        .await;
        assert_eq!(code, 415, "{content_type}: {text}");
    }
    let charset = "application/json; charset=utf-8";
    let delete = serde_json::to_vec(&review("uid-cs", "DELETE", SLO_KIND, json!({}), None));
    let (code, _) = post_as(&https, running.addr, "/freeze", charset, delete.unwrap()).await;
    assert_eq!(code, 200, "a charset parameter is still JSON");
    // admission.k8s.io/v1beta1, well-formed and not: the answer is in the request's version
    // (the API server rejects any other, and failurePolicy Ignore would then admit).
    let mut beta = review("uid-beta", "CREATE", SLO_KIND, json!({"kind": "x"}), None);
    beta["apiVersion"] = json!("admission.k8s.io/v1beta1");
    let broken_beta = json!({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview",
                             "request": {"uid": "uid-beta-bad", "operation": 17}});
    for (sent, uid) in [(beta, "uid-beta"), (broken_beta, "uid-beta-bad")] {
        for path in ["/validate-slo", "/freeze"] {
            let (code, text) = post(
                &https,
                running.addr,
                path,
                serde_json::to_vec(&sent).unwrap(),
            )
            .await;
            assert_eq!(code, 200, "{text}");
            let answer: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(
                answer["apiVersion"], "admission.k8s.io/v1beta1",
                "{path}: {answer}"
            );
            assert_eq!(answer["response"]["uid"], uid, "{path}: {answer}");
        }
    }
    // Shapes kube-apiserver sends besides CREATE and UPDATE (from its admission attributes):
    // CONNECT carries the connect options as the object and the subresource; DELETE carries the
    // old object and DeleteOptions; dryRun runs admission as usual and must be judged the same.
    let connect = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "uid-connect",
                    "kind": {"group": "", "version": "v1", "kind": "PodExecOptions"},
                    "resource": {"group": "", "version": "v1", "resource": "pods"},
                    "subResource": "exec",
                    "requestKind": {"group": "", "version": "v1", "kind": "PodExecOptions"},
                    "requestResource": {"group": "", "version": "v1", "resource": "pods"},
                    "requestSubResource": "exec",
                    "name": "web-0", "namespace": "shop", "operation": "CONNECT",
                    "userInfo": {"username": "alice", "groups": ["developers"]},
                    "object": {"kind": "PodExecOptions", "apiVersion": "v1", "stdin": true,
                               "command": ["sh"]},
                    "oldObject": null, "dryRun": false,
                    "options": null}});
    let mut delete = review(
        "uid-delete",
        "DELETE",
        SLO_KIND,
        json!(null),
        Some(exhausted_slo()),
    );
    delete["request"]["name"] = json!("checkout-availability");
    delete["request"]["options"] = json!({"kind": "DeleteOptions", "apiVersion": "meta.k8s.io/v1", "propagationPolicy": "Background"});
    for path in ["/validate-slo", "/freeze"] {
        for (sent, what) in [(&connect, "CONNECT"), (&delete, "DELETE")] {
            let response = admit(&https, running.addr, path, sent).await;
            assert_eq!(response["allowed"], true, "{path} {what}: {response}");
        }
    }
    let file = support::repo().join("tests/bad-input/14-objective-150.yaml");
    let mut dry = review(
        "uid-dry",
        "CREATE",
        SLO_KIND,
        support::document(&file),
        None,
    );
    dry["request"]["dryRun"] = json!(true);
    let response = admit(&https, running.addr, "/validate-slo", &dry).await;
    assert_eq!(
        response["allowed"], false,
        "a dry run is judged as a real one"
    );
    assert_eq!(response["status"]["code"], 422);
    assert_eq!(
        response["status"]["message"],
        plimsoll_validate(&file).join("; ")
    );
    let unreadable = json!({"request": {"uid": "uid-bad", "operation": 17}});
    let response = admit(&https, running.addr, "/validate-slo", &unreadable).await;
    assert_eq!(response["allowed"], false);
    assert_eq!(response["status"]["code"], 400, "{response}");
    let response = admit(&https, running.addr, "/freeze", &unreadable).await;
    assert_eq!(
        response["allowed"], true,
        "the freeze never blocks on what it cannot read"
    );

    // A re-applied chart blanks the caBundle: the next round puts it back; the Secret is only read.
    cluster.lock().unwrap().configuration = Some(configuration());
    eventually("the blanked caBundle is set again", patched).await;
    {
        let c = cluster.lock().unwrap();
        assert_eq!(c.requests("PATCH", CONFIGURATION).len(), 2);
        assert_eq!(c.requests("POST", SECRETS).len(), 1);
        assert!(c.requests("PUT", SECRET).is_empty());
        assert!(c.requests("GET", SECRET).len() >= 2, "checked every round");
        assert!(c.unexpected.is_empty(), "{:?}", c.unexpected);
    }
    stop(running, shutdown_tx).await;
}

#[tokio::test]
async fn a_409_on_create_means_another_replica_won_and_its_certificate_is_served() {
    let theirs = tls::generate(&names(), Timestamp::now()).unwrap();
    let cluster = Arc::new(Mutex::new(Cluster {
        race: Some(secret_value(&theirs)),
        ..Cluster::default()
    }));
    let mut settings = settings(self_managed(), false);
    settings.configuration = None;
    let (running, shutdown_tx) = serving(&cluster, settings).await;
    assert_eq!(running.certificates.cert(), Some(theirs.cert.clone()));
    {
        let c = cluster.lock().unwrap();
        assert_eq!(
            c.certificate_flow()[..3],
            [
                format!("GET {SECRET}"),
                format!("POST {SECRETS}"),
                format!("GET {SECRET}")
            ]
        );
        assert_eq!(c.requests("POST", SECRETS).len(), 1, "no second create");
        assert!(
            c.requests("PUT", SECRET).is_empty(),
            "theirs is used as it is"
        );
        assert!(c.unexpected.is_empty(), "{:?}", c.unexpected);
    }
    // Their CA is the one clients trust.
    let https = https(&theirs.ca_cert, running.addr);
    let (code, _) = post(&https, running.addr, "/validate-slo", b"{}".to_vec()).await;
    assert_eq!(code, 400);
    stop(running, shutdown_tx).await;
}

/// A bundle made `days` ago: its serving certificate expires in 365 - `days` days.
fn aged_bundle(days: i64) -> Bundle {
    let then = Timestamp::now() - SignedDuration::from_hours(24 * days);
    tls::generate(&names(), then).unwrap()
}

#[tokio::test]
async fn a_certificate_due_for_renewal_is_replaced_under_the_same_ca() {
    let old = aged_bundle(340);
    let mut configured = configuration();
    for webhook in configured["webhooks"].as_array_mut().unwrap() {
        webhook["clientConfig"]["caBundle"] = base64(&old.ca_cert);
    }
    let mut cluster = Cluster {
        configuration: Some(configured),
        ..Cluster::default()
    };
    cluster.store_secret(secret_value(&old));
    let cluster = Arc::new(Mutex::new(cluster));
    let (running, shutdown_tx) = serving(&cluster, settings(self_managed(), false)).await;
    eventually("the configuration was checked", || {
        !cluster
            .lock()
            .unwrap()
            .requests("GET", CONFIGURATION)
            .is_empty()
    })
    .await;
    {
        let c = cluster.lock().unwrap();
        let put = &c.requests("PUT", SECRET)[0];
        assert_eq!(put.param("fieldManager"), Some("plimsoll-webhook"));
        assert_eq!(
            put.body["metadata"]["resourceVersion"], "1",
            "the update is guarded by the version read"
        );
        let renewed = stored_bundle(&put.body);
        assert_eq!(renewed.ca_cert, old.ca_cert, "same CA");
        assert_eq!(renewed.ca_key, old.ca_key);
        assert_ne!(renewed.cert, old.cert);
        assert_eq!(
            tls::assess(&renewed, &names(), Timestamp::now()),
            tls::Renewal::None
        );
        assert_eq!(running.certificates.cert(), Some(renewed.cert));
        assert!(
            c.requests("PATCH", CONFIGURATION).is_empty(),
            "the caBundle already holds the CA"
        );
        assert!(c.unexpected.is_empty(), "{:?}", c.unexpected);
    }
    stop(running, shutdown_tx).await;
}

#[tokio::test]
async fn a_conflict_on_renewal_means_another_replica_renewed_and_theirs_is_served() {
    let old = aged_bundle(340);
    let (cert, key) = tls::issue(&old, &names(), Timestamp::now()).unwrap();
    let theirs = Bundle {
        cert,
        key,
        ..old.clone()
    };
    let mut cluster = Cluster {
        race: Some(secret_value(&theirs)),
        ..Cluster::default()
    };
    cluster.store_secret(secret_value(&old));
    let cluster = Arc::new(Mutex::new(cluster));
    let mut settings = settings(self_managed(), false);
    settings.configuration = None;
    let (running, shutdown_tx) = serving(&cluster, settings).await;
    assert_eq!(running.certificates.cert(), Some(theirs.cert.clone()));
    {
        let c = cluster.lock().unwrap();
        assert_eq!(
            c.certificate_flow()[..3],
            [
                format!("GET {SECRET}"),
                format!("PUT {SECRET}"),
                format!("GET {SECRET}")
            ]
        );
        assert_eq!(
            c.requests("PUT", SECRET).len(),
            1,
            "theirs is fresh: no second write"
        );
    }
    stop(running, shutdown_tx).await;
}

fn write_bundle(dir: &Path, bundle: &Bundle) {
    // As the kubelet does: the new files appear at once.
    let staging = dir.join("..staging");
    std::fs::create_dir_all(&staging).unwrap();
    std::fs::write(staging.join("tls.crt"), &bundle.cert).unwrap();
    std::fs::write(staging.join("tls.key"), &bundle.key).unwrap();
    std::fs::write(staging.join("ca.crt"), &bundle.ca_cert).unwrap();
    for file in ["tls.crt", "tls.key", "ca.crt"] {
        std::fs::rename(staging.join(file), dir.join(file)).unwrap();
    }
}

#[tokio::test]
async fn certificates_from_a_directory_are_reloaded_when_they_change() {
    let dir = tempfile::tempdir().unwrap();
    let first = tls::generate(&names(), Timestamp::now()).unwrap();
    let second = tls::generate(&names(), Timestamp::now()).unwrap();
    write_bundle(dir.path(), &first);
    let cluster = Arc::new(Mutex::new(Cluster::default()));
    let (shutdown_tx, shutdown) = watch::channel(false);
    let mut settings = settings(CertSource::Dir(dir.path().to_path_buf()), false);
    settings.configuration = None;
    let running = webhook::start(client(cluster.clone()), settings, shutdown)
        .await
        .unwrap();
    eventually("the first certificate is served", || {
        running.certificates.cert() == Some(first.cert.clone())
    })
    .await;
    // Without --deploy-freeze, /freeze admits everything.
    let response = admit(
        &https(&first.ca_cert, running.addr),
        running.addr,
        "/freeze",
        &review(
            "uid-1",
            "UPDATE",
            DEPLOYMENT_KIND,
            deployment("shop:2", json!({})),
            Some(deployment("shop:1", json!({}))),
        ),
    )
    .await;
    assert_eq!(response["allowed"], true);
    assert!(response.get("warnings").is_none());

    write_bundle(dir.path(), &second);
    eventually("the rotated certificate is served", || {
        running.certificates.cert() == Some(second.cert.clone())
    })
    .await;
    let (code, _) = post(
        &https(&second.ca_cert, running.addr),
        running.addr,
        "/freeze",
        b"[]".to_vec(),
    )
    .await;
    assert_eq!(code, 400);
    let old_ca = https(&first.ca_cert, running.addr)
        .post(format!("https://{HOST}:{}/freeze", running.addr.port()))
        .send()
        .await;
    assert!(old_ca.is_err(), "the old certificate is no longer served");
    assert!(
        cluster.lock().unwrap().seen.is_empty(),
        "a certificate directory needs no API calls"
    );
    stop(running, shutdown_tx).await;
}

#[test]
fn plimsoll_run_serves_the_webhook_on_a_replica_that_is_not_the_leader() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    std::fs::create_dir(&certs).unwrap();
    let bundle = tls::generate(&names(), Timestamp::now()).unwrap();
    write_bundle(&certs, &bundle);
    let port = operator::free_port();
    let listen = format!("--webhook-listen=127.0.0.1:{port}");
    let cert_dir = format!("--webhook-cert-dir={}", certs.display());
    let operator = operator::Operator::start(
        &operator::unreachable_kubeconfig(dir.path()),
        &[&listen, &cert_dir, "--deploy-freeze"],
    );
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::blocking::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(bundle.ca_cert.as_bytes()).unwrap())
        .resolve(HOST, SocketAddr::from(([127, 0, 0, 1], port)))
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let mut bad = support::document(&support::repo().join("examples/checkout-availability.yaml"));
    bad["spec"]["objective"] = json!(100);
    let body = serde_json::to_vec(&review("uid-run", "CREATE", SLO_KIND, bad, None)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let answer: Value = loop {
        let sent = client
            .post(format!("https://{HOST}:{port}/validate-slo"))
            .header("content-type", "application/json")
            .body(body.clone())
            .send();
        if let Ok(response) = sent {
            assert_eq!(response.status().as_u16(), 200);
            break response.json().unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "the webhook did not answer within 30 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(answer["response"]["uid"], "uid-run");
    assert_eq!(answer["response"]["allowed"], false);
    assert!(
        answer["response"]["status"]["message"]
            .as_str()
            .unwrap()
            .starts_with("spec.objective: must be a percentage strictly between 0 and 100")
    );
    // Not the leader (the Lease is unreachable) and not ready, yet the webhook answers.
    assert!(!operator.leading());
    assert!(!operator.ready());
    let (exit, log) = operator.terminate();
    assert_eq!(exit, Some(0), "{log}");
    assert!(log.contains("serving the admission webhook"), "{log}");
}

#[test]
fn plimsoll_run_refuses_a_webhook_without_a_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_plimsoll"))
        .args([
            "run",
            "--listen=127.0.0.1:0",
            "--webhook-listen=127.0.0.1:0",
        ])
        .env("KUBECONFIG", operator::unreachable_kubeconfig(dir.path()))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--webhook-listen needs a certificate"),
        "{stderr}"
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_plimsoll"))
        .args(["run", "--webhook-listen=127.0.0.1:0", "--webhook-secret=s"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--webhook-service"), "{stderr}");
}

/// The freeze never judges from a stale copy: while the SLO watch fails past the bound, a pod
/// template change is admitted with a warning that says so; once the API server answers, the
/// exhausted SLO freezes the Deployment again.
#[tokio::test]
async fn a_stale_slo_copy_makes_the_freeze_admit_with_a_warning() {
    let ours = tls::generate(&names(), Timestamp::now()).unwrap();
    let cluster = Arc::new(Mutex::new(Cluster {
        race: Some(secret_value(&ours)),
        slos: vec![exhausted_slo()],
        slos_down: true,
        ..Cluster::default()
    }));
    let (cache, _feeding) = SloCache::start(&client(cluster.clone()), &Scope::default());
    cache.set_stale_after(Duration::from_millis(500));
    let mut settings = settings(self_managed(), true);
    settings.configuration = None;
    settings.cache = Some(cache);
    let (running, shutdown_tx) = serving(&cluster, settings).await;
    let https = https(&ours.ca_cert, running.addr);
    let old = deployment("shop:1", json!({}));
    let change = review(
        "uid-stale",
        "UPDATE",
        DEPLOYMENT_KIND,
        deployment("shop:2", json!({})),
        Some(old),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let stale = loop {
        let response = admit(&https, running.addr, "/freeze", &change).await;
        assert_eq!(response["allowed"], true, "{response}");
        let warning = response["warnings"][0]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if warning.contains("SLO watch has failed") {
            break warning;
        }
        assert!(Instant::now() < deadline, "never said stale: {response}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(stale.starts_with("deploy freeze not checked"), "{stale}");
    cluster.lock().unwrap().slos_down = false;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let response = admit(&https, running.addr, "/freeze", &change).await;
        if response["allowed"] == false {
            assert_eq!(response["status"]["code"], 403);
            break;
        }
        assert!(Instant::now() < deadline, "never judged again: {response}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop(running, shutdown_tx).await;
}
