//! A fault-injecting proxy on 127.0.0.1 in front of the real kube-apiserver: the client speaks
//! plain HTTP/1.1 to it, it forwards each request over TLS (trusting the control plane's CA) with
//! the client's own headers, so a bearer token passes through and the real authenticator and
//! RBAC authorizer apply. One request per connection: the forwarded request carries
//! `Connection: close`, so the server closes after its answer and the client opens a new
//! connection for the next request, whose head the proxy reads again.
//!
//! It records every request (method, path, query, Accept header, when its head arrived) with the
//! status the server (or a fault) answered, and answers requests matching an injected [`Fault`] itself, with a Kubernetes
//! `Status`, without contacting the server. Dropping it stops it (its runtime and every
//! connection with it).
#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Requests the proxy answers itself.
#[derive(Clone, Debug)]
pub struct Fault {
    method: String,
    /// The request's path ends with this.
    path_suffix: String,
    /// `Some(true)`: only watches (`watch=true` or `watch=1` in the query); `Some(false)`: only
    /// what is not a watch; `None`: both.
    watch: Option<bool>,
    status: u16,
    retry_after: Option<u32>,
    times: u32,
}

impl Fault {
    /// GET of a collection (list and watch alike) whose path ends with `/plural`.
    pub fn get(path_suffix: &str) -> Fault {
        Fault {
            method: "GET".into(),
            path_suffix: path_suffix.into(),
            watch: None,
            status: 503,
            retry_after: None,
            times: u32::MAX,
        }
    }

    /// Requests with this method (`PATCH`, `DELETE`, ...) whose path ends with `path_suffix`, such
    /// as one object's path.
    pub fn on(method: &str, path_suffix: &str) -> Fault {
        Fault {
            method: method.into(),
            ..Fault::get(path_suffix)
        }
    }

    /// Only lists (GETs that are not watches).
    pub fn lists_only(mut self) -> Fault {
        self.watch = Some(false);
        self
    }

    pub fn status(mut self, status: u16) -> Fault {
        self.status = status;
        self
    }

    pub fn retry_after(mut self, seconds: u32) -> Fault {
        self.retry_after = Some(seconds);
        self
    }

    pub fn times(mut self, times: u32) -> Fault {
        self.times = times;
        self
    }

    fn matches(&self, method: &str, path: &str, query: &str) -> bool {
        let watch = query
            .split('&')
            .any(|p| p == "watch=true" || p == "watch=1");
        self.times > 0
            && method == self.method
            && path.ends_with(&self.path_suffix)
            && self.watch.is_none_or(|w| w == watch)
    }
}

/// One request as the proxy saw it, and the status answered (0: no answer came).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: String,
    pub status: u16,
    /// Answered by an injected fault, not by the server.
    pub injected: bool,
    /// The request's `Accept` header (how a metadata-only request asks for
    /// `as=PartialObjectMetadata`), empty when it had none.
    pub accept: String,
    /// When its head arrived.
    pub at: Instant,
}

#[derive(Default)]
struct State {
    faults: Vec<Fault>,
    seen: Vec<Seen>,
}

pub struct FaultProxy {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    state: Arc<Mutex<State>>,
    runtime: Option<tokio::runtime::Runtime>,
}

/// Longest request head read before giving up on a connection.
const MAX_HEAD: usize = 64 * 1024;

impl FaultProxy {
    /// A proxy to `upstream` (`https://127.0.0.1:<port>`) whose serving certificate `ca` signed.
    pub fn start(upstream: &str, ca: &std::path::Path) -> FaultProxy {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let port: u16 = upstream
            .rsplit_once(':')
            .and_then(|(_, p)| p.trim_end_matches('/').parse().ok())
            .unwrap_or_else(|| panic!("no port in {upstream}"));
        let upstream = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let pem = std::fs::read(ca).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&pem) {
            roots.add(cert.unwrap()).unwrap();
        }
        let tls = Arc::new(
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
        );
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        runtime.spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (state, tls) = (shared.clone(), tls.clone());
                tokio::spawn(async move {
                    let _ = serve(client, upstream, tls, state).await;
                });
            }
        });
        FaultProxy {
            url,
            state,
            runtime: Some(runtime),
        }
    }

    pub fn inject(&self, fault: Fault) {
        self.lock().faults.push(fault);
    }

    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// Every request so far, in the order their heads arrived.
    pub fn seen(&self) -> Vec<Seen> {
        self.lock().seen.clone()
    }

    /// How many requests with this method and exactly this path came so far.
    pub fn count(&self, method: &str, path: &str) -> usize {
        self.lock()
            .seen
            .iter()
            .filter(|s| s.method == method && s.path == path)
            .count()
    }

    /// What the server refused as forbidden (403): `METHOD path?query` each.
    pub fn forbidden(&self) -> Vec<String> {
        self.lock()
            .seen
            .iter()
            .filter(|s| s.status == 403 && !s.injected)
            .map(|s| format!("{} {}?{}", s.method, s.path, s.query))
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(2));
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

async fn serve(
    mut client: TcpStream,
    upstream: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
    state: Arc<Mutex<State>>,
) -> std::io::Result<()> {
    // The request head, and whatever of the body came with it.
    let mut buffer = Vec::new();
    let head_end = loop {
        if let Some(end) = find(&buffer, b"\r\n\r\n") {
            break end + 4;
        }
        if buffer.len() > MAX_HEAD {
            return Ok(());
        }
        let mut chunk = [0u8; 8192];
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default().to_string();
    let mut words = request_line.split(' ');
    let method = words.next().unwrap_or_default().to_string();
    let target = words.next().unwrap_or_default();
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let (path, query) = (path.to_string(), query.to_string());
    let accept = lines
        .clone()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("accept")
                .then(|| value.trim().to_string())
        })
        .unwrap_or_default();

    let (fault, index) = {
        let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
        let fault = state
            .faults
            .iter_mut()
            .find(|f| f.matches(&method, &path, &query))
            .map(|f| {
                f.times -= 1;
                f.clone()
            });
        state.seen.push(Seen {
            method: method.clone(),
            path: path.clone(),
            query: query.clone(),
            status: fault.as_ref().map_or(0, |f| f.status),
            injected: fault.is_some(),
            accept,
            at: Instant::now(),
        });
        (fault, state.seen.len() - 1)
    };
    if let Some(fault) = fault {
        // The reason a real server gives with the status code.
        let reason = match fault.status {
            409 => "Conflict",
            429 => "TooManyRequests",
            500 => "InternalError",
            504 => "Timeout",
            _ => "ServiceUnavailable",
        };
        let body = serde_json::json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "injected by the test's fault proxy", "reason": reason,
            "code": fault.status,
        })
        .to_string();
        let retry = fault
            .retry_after
            .map(|s| format!("Retry-After: {s}\r\n"))
            .unwrap_or_default();
        let answer = format!(
            "HTTP/1.1 {} Injected\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
             {retry}Connection: close\r\n\r\n{body}",
            fault.status,
            body.len()
        );
        client.write_all(answer.as_bytes()).await?;
        client.shutdown().await?;
        return Ok(());
    }

    // The head again, with `Connection: close` instead of whatever the client said.
    let mut forwarded = request_line.clone() + "\r\n";
    for line in lines.filter(|l| !l.is_empty()) {
        if !line.to_ascii_lowercase().starts_with("connection:") {
            forwarded.push_str(line);
            forwarded.push_str("\r\n");
        }
    }
    forwarded.push_str("Connection: close\r\n\r\n");

    let server = TcpStream::connect(upstream).await?;
    let name = ServerName::IpAddress(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST).into());
    let server = tokio_rustls::TlsConnector::from(tls)
        .connect(name, server)
        .await?;
    let (mut server_read, mut server_write) = tokio::io::split(server);
    let (mut client_read, mut client_write) = client.into_split();
    server_write.write_all(forwarded.as_bytes()).await?;
    server_write.write_all(&buffer[head_end..]).await?;
    // The rest of the body, if any, while the answer comes back.
    let upload = async move {
        let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
        let _ = server_write.shutdown().await;
    };
    let download = async move {
        let mut first = Vec::new();
        let mut chunk = [0u8; 8192];
        // The status line, recorded before anything goes on.
        while !first.windows(2).any(|w| w == b"\r\n") {
            let n = server_read.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            first.extend_from_slice(&chunk[..n]);
        }
        let status = String::from_utf8_lossy(&first)
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        if let Some(seen) = state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .seen
            .get_mut(index)
        {
            seen.status = status;
        }
        client_write.write_all(&first).await?;
        tokio::io::copy(&mut server_read, &mut client_write).await?;
        client_write.shutdown().await
    };
    tokio::pin!(download);
    tokio::pin!(upload);
    // The answer done, the exchange is over (the server closes its side after it); the client
    // gone (a watch it stopped), so is the exchange.
    tokio::select! {
        result = &mut download => result,
        () = &mut upload => Ok(()),
    }
}
