//! The admission webhook over real HTTPS on loopback, with the certificate it generates or reads.
//!
//! The real API server (tests/support/kube.rs) calls it as the chart registers it: `plimsoll run`
//! with the chart's environment and RBAC creates its Secret and sets the caBundle, and kubectl's
//! requests are refused or admitted (invalid SLOs, the deploy freeze, failurePolicy Ignore with
//! the operator hung or gone).
//!
//! A mocked API server, which checks every request against the operator's RBAC (src/access.rs),
//! stays for what the real one cannot be made to do on cue: races with another replica (Secret
//! 409 on create, Conflict on renewal), certificates due for renewal, an SLO watch that fails,
//! a caBundle blanked between two rounds; and AdmissionReviews the API server never sends
//! (malformed, other versions and content types).

#[path = "support/access.rs"]
mod access;
#[path = "support/operator.rs"]
mod operator;
#[path = "support/release.rs"]
mod release;
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
use support::cluster::SLO_CRD;
use support::kube::shared;
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
async fn malformed_and_unusual_reviews_are_answered_and_a_blanked_ca_bundle_is_set_again() {
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

    // What the API server does with it (the Secret, the caBundle, the verdicts of both webhooks
    // on kubectl's requests) is tested against the real one below; here, what it never sends.
    let bundle = stored_bundle(cluster.lock().unwrap().secret.as_ref().unwrap());
    let https = https(&bundle.ca_cert, running.addr);

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

// The real API server calls the webhooks: the chart's ValidatingWebhookConfiguration, RBAC and
// environment on the control plane of tests/support/kube.rs, `plimsoll run` on loopback with a
// token of the chart's ServiceAccount, the caBundle left to the operator; every request below is
// a kubectl command, and what is asserted is what kubectl says and what the server then holds.

/// The chart released with its webhook on the real control plane, `plimsoll run` serving it.
struct Hooked {
    release: release::Release,
    operator: Option<operator::Operator>,
    /// Where the SLOs and workloads are: the release's one watched namespace.
    watched: String,
    /// The ValidatingWebhookConfiguration.
    configuration: String,
    /// Where the webhook listens (127.0.0.1).
    port: u16,
    /// With the configuration created after the operator started: how long from its creation
    /// to every webhook's caBundle.
    ca_bundle_took: Option<Duration>,
}

impl Drop for Hooked {
    fn drop(&mut self) {
        // Cluster-wide: gone with the test, whatever its outcome.
        let _ = shared().kubectl(&[
            "delete",
            "validatingwebhookconfiguration",
            &self.configuration,
            "--ignore-not-found",
        ]);
    }
}

/// Polls `done` every 250 ms for at most `limit`.
fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// A JSON object as kubectl prints it, managedFields included.
fn kubectl_json(args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json", "--show-managed-fields"]);
    let text = shared().kubectl(&all).expect_ok("kubectl get");
    serde_json::from_str(&text).unwrap()
}

/// Releases the chart as `name` (in `<name>-system`, watching `<name>-shop`) with the webhook on,
/// starts `plimsoll run` with the chart's environment and waits until the operator has created
/// its certificate Secret and given every webhook of the configuration its CA.
///
/// The API server reaches the operator as it would the chart's Service: the clientConfig keeps
/// the Service's name, so the API server verifies the certificate for `<service>.<ns>.svc`,
/// but that Service is of type ExternalName, 127.0.0.1 (which the API server dials at the
/// clientConfig's port: k8s.io/apiserver's webhook client and proxy.ResolveCluster), standing in
/// for a ClusterIP and the pod network, which a control plane without nodes' networking lacks.
/// The port is the one thing of the configuration changed: the chart's 443 is the Service's.
/// The release's ValidatingWebhookConfiguration as rendered (no caBundle: the operator's or
/// cert-manager's to fill) with the webhook's `port`, and the ExternalName Service that takes
/// the API server there (see `hooked`).
fn routed(release: &release::Release, port: u16) -> (Value, Value) {
    let mut configuration = release.webhook_configuration();
    let mut services = Vec::new();
    for webhook in configuration["webhooks"].as_array_mut().unwrap() {
        let client = &mut webhook["clientConfig"];
        assert!(
            client.get("caBundle").is_none(),
            "the chart leaves the caBundle to the operator or cert-manager: {client}"
        );
        services.push(client["service"].clone());
        client["service"]["port"] = json!(port);
    }
    let service = &services[0];
    assert_eq!(service["port"], 443, "{service}");
    assert!(services.iter().all(|s| s["name"] == service["name"]));
    let external = json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": service["name"], "namespace": service["namespace"]},
        "spec": {"type": "ExternalName", "externalName": "127.0.0.1"}});
    (configuration, external)
}

fn hooked(name: &str, deploy_freeze: bool, timeout_seconds: u32) -> Hooked {
    hooked_with(name, deploy_freeze, timeout_seconds, false)
}

/// As `hooked`; with `late`, the configuration is created only once the operator has looked for
/// it and not found it (Helm's install order creates it after the Deployment).
fn hooked_with(name: &str, deploy_freeze: bool, timeout_seconds: u32, late: bool) -> Hooked {
    let kube = shared();
    let watched = format!("{name}-shop");
    let values = json!({
        "webhook": {"enabled": true, "deployFreeze": deploy_freeze,
                    "timeoutSeconds": timeout_seconds},
        "watchNamespaces": [watched],
    });
    let release = release::Release::install(kube, name, &format!("{name}-system"), &values);
    let port = operator::free_port();
    let (configuration, external) = routed(&release, port);
    let configuration_name = configuration["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let webhooks = configuration["webhooks"].as_array().unwrap().len();
    let apply = |object: &Value| {
        kube.kubectl_stdin(&["apply", "--server-side", "-f", "-"], &object.to_string())
            .expect_ok("kubectl apply");
    };
    apply(&external);
    if !late {
        apply(&configuration);
    }
    let listen = format!("--webhook-listen=127.0.0.1:{port}");
    let operator = operator::Operator::start_with_env(
        &release.kubeconfig,
        &release.operator_env(&format!("{name}-0")),
        &[&listen],
    );
    let created = late.then(|| {
        wait_until(
            "the operator looks for the configuration",
            Duration::from_secs(60),
            || {
                operator
                    .log()
                    .contains("ValidatingWebhookConfiguration not found")
            },
        );
        apply(&configuration);
        Instant::now()
    });
    let secret_name = release.env("PLIMSOLL_WEBHOOK_SECRET");
    assert_eq!(
        release.env("PLIMSOLL_WEBHOOK_CONFIGURATION"),
        configuration_name
    );
    wait_until(
        "the operator's Secret and every webhook's caBundle",
        Duration::from_secs(120),
        || {
            let secret = kube.kubectl(&[
                "get",
                "secret",
                &secret_name,
                "-n",
                &release.namespace,
                "-o",
                "jsonpath={.data.ca\\.crt}",
            ]);
            let bundles = kube.kubectl(&[
                "get",
                "validatingwebhookconfiguration",
                &configuration_name,
                "-o",
                "jsonpath={.webhooks[*].clientConfig.caBundle}",
            ]);
            let ca = secret.stdout.trim();
            secret.ok()
                && !ca.is_empty()
                && bundles.stdout.split(' ').collect::<Vec<_>>() == vec![ca; webhooks]
        },
    );
    Hooked {
        release,
        operator: Some(operator),
        watched,
        configuration: configuration_name,
        port,
        ca_bundle_took: created.map(|c| c.elapsed()),
    }
}

impl Hooked {
    fn operator(&mut self) -> &mut operator::Operator {
        self.operator.as_mut().unwrap()
    }

    /// `kubectl apply --server-side` of `text` with `extra` flags.
    fn apply(&self, text: &str, extra: &[&str]) -> support::kube::Run {
        let mut args = vec!["apply", "--server-side", "-f", "-"];
        args.extend_from_slice(extra);
        shared().kubectl_stdin(&args, text)
    }

    /// A manifest of the repository, in the watched namespace.
    fn manifest(&self, file: &str) -> String {
        let text = std::fs::read_to_string(support::repo().join(file)).unwrap();
        support::cluster::in_namespace(&text, &self.watched)
    }

    /// `plimsoll validate`'s problems with `text`, joined as the webhook joins them.
    fn validate(&self, text: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("slo.yaml");
        std::fs::write(&file, text).unwrap();
        plimsoll_validate(&file).join("; ")
    }

    /// Waits until the API server's answer to `probe` (a server-side dry run) is a refusal by
    /// `webhook`: the configuration, its caBundle and what the operator knows are all in force.
    fn wait_for_refusal(&self, webhook: &str, probe: impl Fn() -> support::kube::Run) {
        let denied = format!("admission webhook \"{webhook}\" denied the request");
        wait_until(
            &format!("the API server calls {webhook}"),
            Duration::from_secs(60),
            || {
                let run = probe();
                !run.ok() && run.stderr.contains(&denied)
            },
        );
    }

    fn deployment(&self) {
        let object = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "checkout", "namespace": self.watched},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "checkout"}},
                     "template": {"metadata": {"labels": {"app": "checkout"}},
                                  "spec": {"containers": [{"name": "checkout",
                                                           "image": "example.invalid/checkout:1"}]}}}});
        self.apply(&object.to_string(), &[])
            .expect_ok("the Deployment");
    }

    /// The SLO `name` whose rollback targets the Deployment checkout.
    fn slo_targeting_the_deployment(&self, name: &str) {
        let mut slo: Value =
            serde_saphyr::from_str(&self.manifest("examples/checkout-availability.yaml")).unwrap();
        slo["metadata"]["name"] = json!(name);
        slo["spec"]["rollback"] = json!({"targets": [{"kind": "Deployment", "name": "checkout"}]});
        self.apply(&slo.to_string(), &[]).expect_ok("the SLO");
    }

    /// The budget as the evaluator writes it (BudgetExhausted and errorBudget in status), by a
    /// field manager of the test's: the operator runs without Prometheus here, so nothing else
    /// writes these fields (the evaluator's writes are tested with a real Prometheus elsewhere).
    fn budget(&self, slo: &str, exhausted: bool, remaining: &str) {
        let status = json!({
            "apiVersion": "plimsoll.dev/v1alpha1", "kind": "ServiceLevelObjective",
            "metadata": {"name": slo, "namespace": self.watched},
            "status": {
                "errorBudget": {"remaining": remaining, "consumedMinutes": "44.6",
                                "totalMinutes": "43.2"},
                "conditions": [{"type": "BudgetExhausted",
                                "status": if exhausted { "True" } else { "False" },
                                "reason": if exhausted { "BudgetExhausted" } else { "BudgetLeft" },
                                "message": "", "lastTransitionTime": "2027-01-15T08:00:00Z"}]}});
        self.apply(
            &status.to_string(),
            &["--subresource=status", "--field-manager=test-evaluator"],
        )
        .expect_ok("the SLO's budget");
    }

    /// `kubectl set image` of the Deployment checkout to `tag`.
    fn set_image(&self, tag: &str, extra: &[&str]) -> support::kube::Run {
        let image = format!("checkout=example.invalid/checkout:{tag}");
        let mut args = vec![
            "set",
            "image",
            "deployment/checkout",
            image.as_str(),
            "-n",
            &self.watched,
        ];
        args.extend_from_slice(extra);
        shared().kubectl(&args)
    }

    fn image(&self) -> String {
        shared()
            .kubectl(&[
                "get",
                "deployment",
                "checkout",
                "-n",
                &self.watched,
                "-o",
                "jsonpath={.spec.template.spec.containers[0].image}",
            ])
            .expect_ok("kubectl get deployment")
    }
}

const VALIDATE: &str = "slo.validate.plimsoll.dev";
const FREEZE: &str = "freeze.plimsoll.dev";

/// Bad inputs whose `# layers:` name the model (what only `plimsoll validate`, and so the
/// webhook, refuses) yet never reach the webhook, and who refuses them first.
const REFUSED_BEFORE_THE_WEBHOOK: &[(&str, &str)] =
    &[("08-missing-name.yaml", "kubectl: name is required")];

#[test]
fn the_api_server_refuses_every_invalid_slo_through_the_webhook_with_the_operators_ca_bundle() {
    let kube = shared();
    let mut hooked = hooked("validate", false, 5);
    // (mut: the operator is taken out at the end)
    let watched = hooked.watched.clone();

    // The certificate Secret, as the operator created it with the chart's RBAC.
    let secret = kubectl_json(&[
        "get",
        "secret",
        &hooked.release.env("PLIMSOLL_WEBHOOK_SECRET"),
        "-n",
        &hooked.release.namespace,
    ]);
    assert_eq!(secret["type"], "kubernetes.io/tls");
    assert_eq!(
        secret["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "plimsoll"
    );
    let mut keys: Vec<&String> = secret["data"].as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["ca.crt", "ca.key", "tls.crt", "tls.key"]);
    let managers = |object: &Value| -> Vec<String> {
        object["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["manager"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(managers(&secret), ["plimsoll-webhook"]);
    let configuration = kubectl_json(&[
        "get",
        "validatingwebhookconfiguration",
        &hooked.configuration,
    ]);
    assert!(
        managers(&configuration).contains(&"plimsoll-webhook".to_string()),
        "{configuration:#}"
    );
    // Without the freeze, the chart registers the SLO webhook alone.
    assert_eq!(configuration["webhooks"].as_array().unwrap().len(), 1);

    let probe = hooked.manifest("tests/bad-input/27-promql-syntax-error.yaml");
    hooked.wait_for_refusal(VALIDATE, || hooked.apply(&probe, &["--dry-run=server"]));

    // Every bad input is refused, and none is stored; those the schema and CEL let through are
    // refused by the webhook with `plimsoll validate`'s messages, naming the header's field.
    let denied = format!("admission webhook \"{VALIDATE}\" denied the request: ");
    let mut table = Vec::new();
    let mut wrong = Vec::new();
    let mut before_the_webhook = Vec::new();
    for case in support::bad_inputs() {
        let name = case
            .file
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let text =
            support::cluster::in_namespace(&std::fs::read_to_string(&case.file).unwrap(), &watched);
        let run = hooked.apply(&text, &[]);
        let said = run.stderr.trim().replace('\n', " | ");
        table.push(format!("{name} [{}]: {said}", case.layers.join(",")));
        if run.ok() {
            wrong.push(format!("{name}: accepted"));
            kube.kubectl_stdin(&["delete", "--wait=true", "-f", "-"], &text)
                .expect_ok("kubectl delete");
            continue;
        }
        let model_only = case.layers.iter().any(|l| l == "model")
            && !case.layers.iter().any(|l| l == "schema" || l == "cel");
        match (model_only, said.find(&denied)) {
            (true, Some(at)) => {
                let message = &said[at + denied.len()..];
                if message != hooked.validate(&text) || !message.contains(&case.path) {
                    wrong.push(format!("{name}: {message}"));
                }
            }
            (true, None) => before_the_webhook.push(name),
            (false, Some(_)) => wrong.push(format!("{name}: the webhook, not the server: {said}")),
            (false, None) => {}
        }
    }
    eprintln!("{}", table.join("\n"));
    assert!(wrong.is_empty(), "{wrong:#?}");
    let pinned: Vec<&str> = REFUSED_BEFORE_THE_WEBHOOK.iter().map(|(n, _)| *n).collect();
    assert_eq!(before_the_webhook, pinned, "{table:#?}");
    let stored = kube
        .kubectl(&["get", SLO_CRD, "-n", &watched, "-o", "name"])
        .expect_ok("kubectl get");
    assert_eq!(stored, "", "nothing invalid is stored");

    // A valid SLO is admitted; an update that breaks it is refused, and the valid one stays.
    let good = hooked.manifest("examples/checkout-availability.yaml");
    let run = hooked.apply(&good, &[]);
    assert!(run.ok() && run.stderr.is_empty(), "{run:?}");
    let broken = good.replace(
        r#"total: 'http_requests_total{job="checkout"}'"#,
        r#"total: 'http_requests_total{job="checkout"'"#,
    );
    assert_ne!(broken, good);
    for dry_run in [true, false] {
        let run = hooked.apply(&broken, if dry_run { &["--dry-run=server"] } else { &[] });
        assert!(!run.ok(), "{run:?}");
        assert!(
            run.stderr
                .contains(&format!("{denied}{}", hooked.validate(&broken))),
            "{run:?}"
        );
        assert!(run.stderr.contains("spec.indicator.ratio.total"), "{run:?}");
    }
    let stored = kubectl_json(&["get", SLO_CRD, "checkout-availability", "-n", &watched]);
    assert_eq!(
        stored["spec"]["indicator"]["ratio"]["total"],
        r#"http_requests_total{job="checkout"}"#
    );
    assert_eq!(stored["metadata"]["generation"], 1);

    // A second replica stands by (the first holds the Lease) and serves the webhook too, with
    // the certificate in the Secret: the API server, sent to it instead, trusts it with the
    // caBundle as it is.
    let port = operator::free_port();
    let standby = operator::Operator::start_with_env(
        &hooked.release.kubeconfig,
        &hooked.release.operator_env("validate-1"),
        &[&format!("--webhook-listen=127.0.0.1:{port}")],
    );
    wait_until(
        "the second replica stands by",
        Duration::from_secs(60),
        || standby.ready(),
    );
    let bundle = kubectl_json(&[
        "get",
        "validatingwebhookconfiguration",
        &hooked.configuration,
    ])["webhooks"][0]["clientConfig"]["caBundle"]
        .clone();
    let to_the_standby = json!([
        {"op": "test", "path": "/webhooks/0/name", "value": VALIDATE},
        {"op": "replace", "path": "/webhooks/0/clientConfig/service/port", "value": port}]);
    kube.kubectl(&[
        "patch",
        "validatingwebhookconfiguration",
        &hooked.configuration,
        "--type=json",
        "-p",
        &to_the_standby.to_string(),
    ])
    .expect_ok("kubectl patch");
    // Refused, and by the standby (it logs what it denies), once the API server has the change.
    wait_until(
        "the API server calls the standby",
        Duration::from_secs(60),
        || {
            let run = hooked.apply(&probe, &["--dry-run=server"]);
            !run.ok() && standby.log().contains("admission denied")
        },
    );
    assert!(!standby.leading());
    let after = kubectl_json(&[
        "get",
        "validatingwebhookconfiguration",
        &hooked.configuration,
    ]);
    assert_eq!(after["webhooks"][0]["clientConfig"]["caBundle"], bundle);
    let (exit, log) = standby.terminate();
    assert_eq!(exit, Some(0), "{log}");
    assert!(log.contains("webhook certificate loaded"), "{log}");

    let (exit, log) = hooked.operator.take().unwrap().terminate();
    assert_eq!(exit, Some(0), "{log}");
    assert!(!log.to_lowercase().contains("forbidden"), "{log}");
}

#[test]
fn the_api_server_refuses_pod_template_changes_during_a_deploy_freeze_and_allows_them_otherwise() {
    let kube = shared();
    let mut hooked = hooked("freeze", true, 5);
    let watched = hooked.watched.clone();
    hooked.deployment();
    hooked.slo_targeting_the_deployment("checkout-availability");
    hooked.budget("checkout-availability", true, "-3.2");
    hooked.wait_for_refusal(FREEZE, || hooked.set_image("probe", &["--dry-run=server"]));

    let run = hooked.set_image("2", &[]);
    assert!(!run.ok(), "{run:?}");
    let refused = format!(
        "admission webhook \"{FREEZE}\" denied the request: deploy freeze: the error budget of \
         SLO {watched}/checkout-availability (-3.2% left) is exhausted, so the pod template of \
         Deployment {watched}/checkout may not change until the budget recovers."
    );
    assert!(run.stderr.contains(&refused), "{run:?}");
    assert_eq!(hooked.image(), "example.invalid/checkout:1");

    // Scaling is no pod template change: through the scale subresource, which the configuration
    // does not register, or as a change of the Deployment itself, which its matchConditions keep
    // from the webhook; either goes through.
    kube.kubectl(&[
        "scale",
        "deployment/checkout",
        "--replicas=2",
        "-n",
        &watched,
    ])
    .expect_ok("kubectl scale");
    kube.kubectl(&[
        "patch",
        "deployment/checkout",
        "-n",
        &watched,
        "-p",
        r#"{"spec": {"replicas": 3}}"#,
    ])
    .expect_ok("kubectl patch spec.replicas");
    let replicas = kube
        .kubectl(&[
            "get",
            "deployment/checkout",
            "-n",
            &watched,
            "-o",
            "jsonpath={.spec.replicas}",
        ])
        .expect_ok("kubectl get");
    assert_eq!(replicas, "3");

    // The override annotation with a reason lets a change through, with a warning kubectl shows;
    // a blank one does not.
    let change = |tag: &str, reason: &str| {
        let patch = json!({
            "metadata": {"annotations": {"plimsoll.dev/freeze-override": reason}},
            "spec": {"template": {"spec": {"containers": [
                {"name": "checkout", "image": format!("example.invalid/checkout:{tag}")}]}}}});
        kube.kubectl(&[
            "patch",
            "deployment/checkout",
            "-n",
            &watched,
            "-p",
            &patch.to_string(),
        ])
    };
    let run = change("3", "INC-42 hotfix");
    assert!(run.ok(), "{run:?}");
    assert!(
        run.stderr.contains(
            "Warning: deploy freeze overridden by plimsoll.dev/freeze-override (\"INC-42 hotfix\")"
        ),
        "{run:?}"
    );
    assert_eq!(hooked.image(), "example.invalid/checkout:3");
    let run = change("4", " ");
    assert!(!run.ok(), "{run:?}");
    assert!(
        run.stderr
            .contains("(plimsoll.dev/freeze-override is set but empty: give a reason.)"),
        "{run:?}"
    );
    assert_eq!(hooked.image(), "example.invalid/checkout:3");

    // The annotation removed (no template change: not the webhook's business), a rollback is a
    // pod template change like any other and is refused too.
    kube.kubectl(&[
        "annotate",
        "deployment/checkout",
        "plimsoll.dev/freeze-override-",
        "-n",
        &watched,
    ])
    .expect_ok("kubectl annotate");
    let run = kube.kubectl(&["rollout", "undo", "deployment/checkout", "-n", &watched]);
    assert!(!run.ok(), "{run:?}");
    assert!(run.stderr.contains(&refused), "{run:?}");
    assert_eq!(hooked.image(), "example.invalid/checkout:3");

    // The operator's own update of the SLO (its finalizer, the rollback target existing) went
    // through its webhook: the spec did not change.
    wait_until("the operator's finalizer", Duration::from_secs(60), || {
        kube.kubectl(&[
            "get",
            SLO_CRD,
            "checkout-availability",
            "-n",
            &watched,
            "-o",
            "jsonpath={.metadata.finalizers}",
        ])
        .stdout
            == r#"["plimsoll.dev/cleanup"]"#
    });

    // The budget back: a change goes through as if there had been no freeze.
    hooked.budget("checkout-availability", false, "12.5");
    wait_until("the freeze lifted", Duration::from_secs(60), || {
        hooked.set_image("probe", &["--dry-run=server"]).ok()
    });
    let run = hooked.set_image("5", &[]);
    assert!(run.ok() && !run.stderr.contains("Warning"), "{run:?}");
    assert_eq!(hooked.image(), "example.invalid/checkout:5");

    let (exit, log) = hooked.operator.take().unwrap().terminate();
    assert_eq!(exit, Some(0), "{log}");
    assert!(!log.to_lowercase().contains("forbidden"), "{log}");
}

/// What the chart promises (templates/webhook.yaml): the webhook never blocks the cluster; with
/// the operator down, requests pass (failurePolicy Ignore) after at most timeoutSeconds.
#[test]
fn with_the_operator_hung_or_gone_the_api_server_admits_after_at_most_the_timeout() {
    let timeout = Duration::from_secs(2);
    let mut hooked = hooked("down", true, timeout.as_secs() as u32);
    hooked.deployment();
    hooked.slo_targeting_the_deployment("checkout-frozen");
    hooked.budget("checkout-frozen", true, "-3.2");
    hooked.wait_for_refusal(FREEZE, || hooked.set_image("probe", &["--dry-run=server"]));
    let invalid = hooked.manifest("tests/bad-input/27-promql-syntax-error.yaml");
    let bad =
        |name: &str| invalid.replace("  name: checkout-availability", &format!("  name: {name}"));
    hooked.wait_for_refusal(VALIDATE, || {
        hooked.apply(&bad("probe"), &["--dry-run=server"])
    });

    // Hung (SIGSTOP): connections are still accepted by the kernel, nothing answers. The API
    // server gives up after timeoutSeconds and admits; had it not, the request would have run
    // into its own deadline (60 s) and failed instead.
    hooked.operator().signal(libc::SIGSTOP);
    for (what, change) in [
        (
            "an invalid SLO",
            Box::new(|| hooked.apply(&bad("while-hung"), &[]))
                as Box<dyn Fn() -> support::kube::Run>,
        ),
        (
            "a frozen pod template change",
            Box::new(|| hooked.set_image("hung", &[])),
        ),
    ] {
        let begun = Instant::now();
        let run = change();
        let took = begun.elapsed();
        assert!(run.ok(), "{what}: {run:?}");
        assert!(
            took >= timeout,
            "{what}: admitted after {took:?}, before the timeout"
        );
        eprintln!("with the operator hung, {what} was admitted after {took:?}");
    }
    assert_eq!(hooked.image(), "example.invalid/checkout:hung");
    hooked.operator().signal(libc::SIGCONT);

    // Gone: refused connections, admitted at once.
    let (exit, log) = hooked.operator.take().unwrap().terminate();
    assert_eq!(exit, Some(0), "{log}");
    hooked
        .apply(&bad("while-gone"), &[])
        .expect_ok("an invalid SLO");
    hooked
        .set_image("gone", &[])
        .expect_ok("a frozen pod template change");
    assert_eq!(hooked.image(), "example.invalid/checkout:gone");
    let stored = shared()
        .kubectl(&["get", SLO_CRD, "-n", &hooked.watched, "-o", "name"])
        .expect_ok("kubectl get");
    let mut stored: Vec<&str> = stored.lines().collect();
    stored.sort();
    assert_eq!(
        stored,
        [
            "servicelevelobjective.plimsoll.dev/checkout-frozen",
            "servicelevelobjective.plimsoll.dev/while-gone",
            "servicelevelobjective.plimsoll.dev/while-hung",
        ]
    );

    // Back (another replica, the same Secret and so the same CA): what was stored meanwhile can
    // still be relabelled and deleted, updates that leave the spec as it is; a spec change that
    // is still invalid is refused.
    let listen = format!("--webhook-listen=127.0.0.1:{}", hooked.port);
    let back = operator::Operator::start_with_env(
        &hooked.release.kubeconfig,
        &hooked.release.operator_env("down-1"),
        &[&listen],
    );
    hooked.wait_for_refusal(VALIDATE, || {
        hooked.apply(&bad("probe"), &["--dry-run=server"])
    });
    let kube = shared();
    kube.kubectl(&[
        "label",
        SLO_CRD,
        "while-gone",
        "team=shop",
        "-n",
        &hooked.watched,
    ])
    .expect_ok("relabelling an invalid SLO stored while the webhook was down");
    let run = kube.kubectl(&[
        "patch",
        SLO_CRD,
        "while-gone",
        "-n",
        &hooked.watched,
        "--type=merge",
        "-p",
        r#"{"spec": {"objective": 99.5}}"#,
    ]);
    assert!(!run.ok(), "{run:?}");
    assert!(
        run.stderr.contains(&format!(
            "admission webhook \"{VALIDATE}\" denied the request: spec.indicator.ratio.total"
        )),
        "{run:?}"
    );
    kube.kubectl(&[
        "delete",
        SLO_CRD,
        "while-hung",
        "-n",
        &hooked.watched,
        "--wait=true",
    ])
    .expect_ok("deleting an invalid SLO stored while the webhook was down");
    let (exit, log) = back.terminate();
    assert_eq!(exit, Some(0), "{log}");
}

/// Helm creates the ValidatingWebhookConfiguration after the Deployment, so the operator may look
/// for it before it exists: it looks again every few seconds until it does, not a minute later
/// (webhook::RECHECK, the pace once everything is in place), for until then the API server
/// cannot call the webhook and admits everything.
#[test]
fn a_configuration_created_after_the_operator_gets_its_ca_bundle_before_the_next_minute() {
    let hooked = hooked_with("late", false, 5, true);
    let took = hooked.ca_bundle_took.unwrap();
    eprintln!("the caBundle was set {took:?} after the configuration was created");
    assert!(
        took < webhook::RECHECK / 2,
        "the caBundle was set {took:?} after the configuration was created:\n{}",
        hooked.operator.as_ref().unwrap().log()
    );
    let probe = hooked.manifest("tests/bad-input/27-promql-syntax-error.yaml");
    hooked.wait_for_refusal(VALIDATE, || hooked.apply(&probe, &["--dry-run=server"]));
}

/// With `webhook.certManager.enabled` the operator serves the certificate cert-manager keeps in
/// a Secret (mounted at --webhook-cert-dir) and leaves the caBundle to cert-manager's CA
/// injector; the test plays both (cert-manager is not part of the control plane).
#[test]
fn with_cert_managers_certificate_the_api_server_calls_the_webhook_with_the_injected_ca() {
    let kube = shared();
    let values = json!({"webhook": {"enabled": true, "certManager": {"enabled": true}},
                        "watchNamespaces": ["certs-shop"]});
    let release = release::Release::install(kube, "certs", "certs-system", &values);
    assert!(
        release
            .rendered
            .env_value("PLIMSOLL_WEBHOOK_CONFIGURATION")
            .is_none()
    );
    assert!(
        release
            .rendered
            .env_value("PLIMSOLL_WEBHOOK_SECRET")
            .is_none()
    );
    let port = operator::free_port();
    let (mut configuration, external) = routed(&release, port);
    assert_eq!(
        configuration["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
        "certs-system/certs-plimsoll-webhook"
    );
    let service = external["metadata"]["name"].as_str().unwrap();
    let bundle = tls::generate(
        &tls::service_names(service, &release.namespace),
        Timestamp::now(),
    )
    .unwrap();
    for webhook in configuration["webhooks"].as_array_mut().unwrap() {
        webhook["clientConfig"]["caBundle"] = base64(&bundle.ca_cert);
    }
    for object in [&external, &configuration] {
        kube.kubectl_stdin(&["apply", "--server-side", "-f", "-"], &object.to_string())
            .expect_ok("kubectl apply");
    }
    let dir = tempfile::tempdir().unwrap();
    write_bundle(dir.path(), &bundle);
    // The chart mounts the Secret at /etc/plimsoll/webhook; here it is a folder of the test's.
    assert_eq!(
        release.env("PLIMSOLL_WEBHOOK_CERT_DIR"),
        "/etc/plimsoll/webhook"
    );
    let listen = format!("--webhook-listen=127.0.0.1:{port}");
    let cert_dir = format!("--webhook-cert-dir={}", dir.path().display());
    let operator = operator::Operator::start_with_env(
        &release.kubeconfig,
        &release.operator_env("certs-0"),
        &[&listen, &cert_dir],
    );
    let configuration_name = configuration["metadata"]["name"].as_str().unwrap();
    let hooked = Hooked {
        release,
        operator: Some(operator),
        watched: "certs-shop".to_string(),
        configuration: configuration_name.to_string(),
        port,
        ca_bundle_took: None,
    };
    let probe = hooked.manifest("tests/bad-input/27-promql-syntax-error.yaml");
    hooked.wait_for_refusal(VALIDATE, || hooked.apply(&probe, &["--dry-run=server"]));
    let good = hooked.manifest("examples/checkout-availability.yaml");
    hooked.apply(&good, &[]).expect_ok("a valid SLO");
    // The caBundle is the injector's alone; the operator wrote no Secret.
    let stored = kubectl_json(&["get", "validatingwebhookconfiguration", configuration_name]);
    assert_eq!(
        stored["webhooks"][0]["clientConfig"]["caBundle"],
        base64(&bundle.ca_cert)
    );
    let managers: Vec<&str> = stored["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["manager"].as_str())
        .collect();
    assert!(!managers.contains(&"plimsoll-webhook"), "{managers:?}");
    let secrets = kube
        .kubectl(&["get", "secrets", "-n", "certs-system", "-o", "name"])
        .expect_ok("kubectl get secrets");
    assert_eq!(secrets, "");
    let mut hooked = hooked;
    let (exit, log) = hooked.operator.take().unwrap().terminate();
    assert_eq!(exit, Some(0), "{log}");
    assert!(!log.to_lowercase().contains("forbidden"), "{log}");
}
