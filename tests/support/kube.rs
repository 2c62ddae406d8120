//! A real Kubernetes control plane for the tests: etcd, kube-apiserver, kube-controller-manager,
//! kube-scheduler and kwok (with one fake Node), built from the Go modules pinned in tests/kube
//! (tests/kube/build.sh, which this runs when a binary is missing), on free 127.0.0.1 ports, with
//! a PKI of its own (rcgen, ECDSA P-256) in a temporary folder.
//!
//! `ControlPlane::start()` waits until the apiserver answers /readyz, the controller-manager and
//! the scheduler /healthz, and the fake Node is Ready; dropping it stops everything, newest first
//! (so the apiserver before etcd: with etcd gone first it takes minutes to exit), SIGTERM then
//! SIGKILL after a bounded wait. `shared()` is one control plane per test process, stopped at exit.
//!
//! Every child is started from one thread that lives as long as the control plane, with
//! PR_SET_PDEATHSIG: should the test process die without running its exit handlers (SIGKILL, a
//! Ctrl-C), the kernel kills the children instead of leaving them running.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// The kubectl built with the control plane (of its version: kubectl supports one minor
/// version of skew), unless `KUBECTL` names another.
pub fn kubectl_path() -> PathBuf {
    if let Some(path) = std::env::var_os("KUBECTL").filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let go_mod = super::repo().join("tests/kube/go.mod");
    match required_version(&go_mod, "k8s.io/kubernetes") {
        Ok(kube) => tools_cache().join(format!("kube-{kube}/bin/kubectl")),
        Err(e) => panic!("kubectl: {e}"),
    }
}

pub use super::go_tools::{required_version, tools_cache};

/// The five binaries and kwok's stages file.
#[derive(Clone, Debug)]
pub struct Binaries {
    pub apiserver: PathBuf,
    pub controller_manager: PathBuf,
    pub scheduler: PathBuf,
    pub kubectl: PathBuf,
    pub etcd: PathBuf,
    pub kwok: PathBuf,
    pub kwok_stages: PathBuf,
}

impl Binaries {
    /// The binaries of the versions tests/kube pins, built by tests/kube/build.sh if any is
    /// missing (a cold build takes 20 minutes or more; its output goes to the terminal).
    pub fn ensure() -> Result<Binaries, String> {
        let kube_dir = super::repo().join("tests/kube");
        let cache = tools_cache();
        let kube = required_version(&kube_dir.join("go.mod"), "k8s.io/kubernetes")?;
        let etcd = required_version(&kube_dir.join("go.mod"), "go.etcd.io/etcd/server/v3")?;
        let kwok = required_version(&kube_dir.join("kwok/go.mod"), "sigs.k8s.io/kwok")?;
        let kube_bin = cache.join(format!("kube-{kube}/bin"));
        let kwok_home = cache.join(format!("kwok-{kwok}"));
        let binaries = Binaries {
            apiserver: kube_bin.join("kube-apiserver"),
            controller_manager: kube_bin.join("kube-controller-manager"),
            scheduler: kube_bin.join("kube-scheduler"),
            kubectl: kube_bin.join("kubectl"),
            etcd: cache.join(format!("etcd-{etcd}/bin/etcd")),
            kwok: kwok_home.join("bin/kwok"),
            kwok_stages: kwok_home.join("stages.yaml"),
        };
        if binaries.missing().is_empty() {
            return Ok(binaries);
        }
        let mut err = std::io::stderr();
        let _ = writeln!(
            err,
            "control plane: {:?} missing; running tests/kube/build.sh {} (20+ minutes cold)",
            binaries.missing(),
            cache.display()
        );
        let status = Command::new(kube_dir.join("build.sh"))
            .arg(&cache)
            .stdin(Stdio::null())
            .status()
            .map_err(|e| format!("cannot run tests/kube/build.sh: {e}"))?;
        if !status.success() {
            return Err(format!("tests/kube/build.sh failed ({status})"));
        }
        match binaries.missing() {
            missing if missing.is_empty() => Ok(binaries),
            missing => Err(format!(
                "still missing after tests/kube/build.sh: {missing:?}"
            )),
        }
    }

    fn missing(&self) -> Vec<PathBuf> {
        [
            &self.apiserver,
            &self.controller_manager,
            &self.scheduler,
            &self.kubectl,
            &self.etcd,
            &self.kwok,
            &self.kwok_stages,
        ]
        .into_iter()
        .filter(|p| !p.exists())
        .cloned()
        .collect()
    }
}

/// What a command printed, and how it ended.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }

    /// Stdout, or a panic with everything when the command failed.
    pub fn expect_ok(self, what: &str) -> String {
        assert!(self.ok(), "{what}: {self:?}");
        self.stdout
    }
}

/// Runs a command with `input` on stdin, killed after `limit` (a panic then).
pub fn run_bounded(mut command: Command, input: Option<&str>, limit: Duration) -> Run {
    let mut child = command
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    let reader = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = reader(Box::new(child.stdout.take().unwrap()));
    let stderr = reader(Box::new(child.stderr.take().unwrap()));
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        // A command that exits without reading it all closes the pipe: not our failure.
        let _ = stdin.write_all(input.as_bytes());
    }
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{command:?} took more than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Run {
        code: status.code(),
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

/// How a test reaches the control plane.
#[derive(Clone, Debug)]
pub struct Access {
    /// The temporary folder with the PKI, the logs and the data.
    pub dir: PathBuf,
    /// A kubeconfig for `admin` (O=system:masters), with client certificate files.
    pub kubeconfig: PathBuf,
    /// `https://127.0.0.1:<port>`.
    pub server: String,
    /// The CA of the apiserver's serving certificate (and of the client certificates).
    pub ca: PathBuf,
    /// From the first process started to the fake Node being Ready.
    pub started_in: Duration,
    /// The API server's audit log (JSON lines): every write by a ServiceAccount ([`AUDIT_POLICY`]),
    /// or what the policy given to [`ControlPlane::try_start_with`] logs.
    pub audit_log: PathBuf,
}

impl Access {
    /// kubectl as admin, with a cache folder of its own, at most 2 minutes.
    pub fn kubectl(&self, args: &[&str]) -> Run {
        self.kubectl_with(&self.kubeconfig, args, None)
    }

    /// kubectl as admin with `input` on stdin.
    pub fn kubectl_stdin(&self, args: &[&str], input: &str) -> Run {
        self.kubectl_with(&self.kubeconfig, args, Some(input))
    }

    /// kubectl with another kubeconfig.
    pub fn kubectl_with(&self, kubeconfig: &Path, args: &[&str], input: Option<&str>) -> Run {
        let mut command = Command::new(kubectl_path());
        command
            .arg(format!("--kubeconfig={}", kubeconfig.display()))
            .arg(format!(
                "--cache-dir={}",
                self.dir.join("kubectl-cache").display()
            ))
            .args(args)
            .env_remove("KUBECONFIG");
        run_bounded(command, input, Duration::from_secs(120))
    }

    /// Creates a namespace and returns its name.
    pub fn namespace(&self, name: &str) -> String {
        self.kubectl(&["create", "namespace", name])
            .expect_ok("kubectl create namespace");
        name.to_string()
    }

    /// A kube client as admin, on the caller's tokio runtime.
    pub async fn client(&self) -> ::kube::Client {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let kubeconfig = ::kube::config::Kubeconfig::read_from(&self.kubeconfig).unwrap();
        let config = ::kube::Config::from_custom_kubeconfig(
            kubeconfig,
            &::kube::config::KubeConfigOptions::default(),
        )
        .await
        .unwrap();
        ::kube::Client::try_from(config).unwrap()
    }

    /// The audit log's events so far (a line being written is left out).
    pub fn audit(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.audit_log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Writes a kubeconfig that authenticates with a bearer token, in `namespace`.
    pub fn token_kubeconfig(&self, file: &Path, token: &str, namespace: &str) {
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: real\n  cluster:\n    server: {}\n    \
             certificate-authority: {}\nusers:\n- name: token\n  user:\n    token: {}\n\
             contexts:\n- name: real\n  context: {{cluster: real, user: token, namespace: {namespace}}}\n\
             current-context: real\n",
            self.server,
            self.ca.display(),
            token.trim()
        );
        std::fs::write(file, text).unwrap();
    }
}

/// One child process and its log file.
struct Process {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Process {
    fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// SIGTERM, then SIGKILL once `grace` has passed.
    fn stop(&mut self, grace: Duration) {
        if !self.running() {
            return;
        }
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: signals our own child, which has not been waited for (still running).
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if !self.running() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The thread every child is started from: PR_SET_PDEATHSIG fires when the thread that started a
/// child ends, so that thread must live exactly as long as the control plane.
struct Spawner {
    requests: Option<mpsc::Sender<(Command, mpsc::Sender<std::io::Result<Child>>)>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Spawner {
    fn new() -> Spawner {
        let (requests, incoming) =
            mpsc::channel::<(Command, mpsc::Sender<std::io::Result<Child>>)>();
        let thread = std::thread::spawn(move || {
            for (mut command, reply) in incoming {
                // SAFETY: prctl is async-signal-safe and touches only the new process.
                unsafe {
                    command.pre_exec(|| {
                        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                            return Err(std::io::Error::last_os_error());
                        }
                        Ok(())
                    });
                }
                let _ = reply.send(command.spawn());
            }
        });
        Spawner {
            requests: Some(requests),
            thread: Some(thread),
        }
    }

    fn spawn(&self, command: Command) -> Result<Child, String> {
        let (reply, answer) = mpsc::channel();
        let program = command.get_program().to_string_lossy().into_owned();
        self.requests
            .as_ref()
            .ok_or("spawner stopped")?
            .send((command, reply))
            .map_err(|_| "spawner thread gone".to_string())?;
        answer
            .recv()
            .map_err(|_| "spawner thread gone".to_string())?
            .map_err(|e| format!("cannot start {program}: {e}"))
    }
}

impl Drop for Spawner {
    fn drop(&mut self) {
        self.requests.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The running control plane; dropping it stops everything.
pub struct ControlPlane {
    access: Access,
    processes: Vec<Process>,
    spawner: Spawner,
    dir: Option<tempfile::TempDir>,
}

impl std::ops::Deref for ControlPlane {
    type Target = Access;
    fn deref(&self) -> &Access {
        &self.access
    }
}

/// Free loopback ports, all distinct (each listener is held until all are chosen).
fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    std::array::from_fn(|i| listeners[i].local_addr().unwrap().port())
}

/// The PKI, as files in `dir`: CA, serving certificate (127.0.0.1, localhost and the
/// in-cluster names), admin client certificate (O=system:masters) and the service-account key
/// pair.
struct Pki {
    ca: PathBuf,
    serving_cert: PathBuf,
    serving_key: PathBuf,
    admin_cert: PathBuf,
    admin_key: PathBuf,
    sa_key: PathBuf,
    sa_pub: PathBuf,
    /// For the readiness checks: trusts the CA, authenticates as admin.
    tls: Arc<rustls::ClientConfig>,
}

impl Pki {
    fn write(dir: &Path) -> Result<Pki, String> {
        use rcgen::{
            BasicConstraints, CertificateParams, DistinguishedName, DnType,
            ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
        };
        let e = |e: rcgen::Error| e.to_string();
        let write = |name: &str, text: &str| -> Result<PathBuf, String> {
            let path = dir.join(name);
            std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(path)
        };
        let name = |common: &str, organization: Option<&str>| {
            let mut dn = DistinguishedName::new();
            dn.push(DnType::CommonName, common);
            if let Some(o) = organization {
                dn.push(DnType::OrganizationName, o);
            }
            dn
        };

        let ca_key = KeyPair::generate().map_err(e)?;
        let mut ca_params = CertificateParams::new(Vec::new()).map_err(e)?;
        ca_params.distinguished_name = name("plimsoll-test-ca", None);
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params.self_signed(&ca_key).map_err(e)?;
        let issuer = Issuer::new(ca_params, &ca_key);

        let serving_key = KeyPair::generate().map_err(e)?;
        let mut serving = CertificateParams::new(vec![
            "localhost".to_string(),
            "kubernetes".to_string(),
            "kubernetes.default".to_string(),
            "kubernetes.default.svc".to_string(),
        ])
        .map_err(e)?;
        serving
            .subject_alt_names
            .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        serving.distinguished_name = name("kube-apiserver", None);
        serving.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        serving.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let serving_cert = serving.signed_by(&serving_key, &issuer).map_err(e)?;

        let admin_key = KeyPair::generate().map_err(e)?;
        let mut admin = CertificateParams::new(Vec::new()).map_err(e)?;
        admin.distinguished_name = name("admin", Some("system:masters"));
        admin.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        admin.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let admin_cert = admin.signed_by(&admin_key, &issuer).map_err(e)?;

        let sa_key = KeyPair::generate().map_err(e)?;

        let tls = tls_config(
            &ca_cert.pem(),
            &admin_cert.pem(),
            &admin_key.serialize_pem(),
        )?;
        Ok(Pki {
            ca: write("ca.crt", &ca_cert.pem())?,
            serving_cert: write("apiserver.crt", &serving_cert.pem())?,
            serving_key: write("apiserver.key", &serving_key.serialize_pem())?,
            admin_cert: write("admin.crt", &admin_cert.pem())?,
            admin_key: write("admin.key", &admin_key.serialize_pem())?,
            sa_key: write("sa.key", &sa_key.serialize_pem())?,
            sa_pub: write("sa.pub", &sa_key.public_key_pem())?,
            tls,
        })
    }
}

fn tls_config(ca: &str, cert: &str, key: &str) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca.as_bytes()) {
        roots
            .add(c.map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    let chain = CertificateDer::pem_slice_iter(cert.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).map_err(|e| e.to_string())?;
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_client_auth_cert(chain, key)
    .map_err(|e| e.to_string())?;
    Ok(Arc::new(config))
}

/// The status code of a GET on 127.0.0.1:`port`, over TLS when `tls` is given.
fn get_status(port: u16, path: &str, tls: Option<&Arc<rustls::ClientConfig>>) -> Option<u16> {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let socket = TcpStream::connect_timeout(&address, Duration::from_secs(2)).ok()?;
    socket.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    socket
        .set_write_timeout(Some(Duration::from_secs(5)))
        .ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    let mut answer = Vec::new();
    match tls {
        Some(config) => {
            let name = ServerName::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST).into());
            let connection = rustls::ClientConnection::new(config.clone(), name).ok()?;
            let mut stream = rustls::StreamOwned::new(connection, socket);
            stream.write_all(request.as_bytes()).ok()?;
            // Enough for the status line; a missing close_notify is not our concern.
            let _ = stream.read_to_end(&mut answer);
        }
        None => {
            let mut socket = socket;
            socket.write_all(request.as_bytes()).ok()?;
            let _ = socket.read_to_end(&mut answer);
        }
    }
    let head = String::from_utf8_lossy(&answer);
    head.lines().next()?.split_whitespace().nth(1)?.parse().ok()
}

impl ControlPlane {
    /// Starts everything (building the binaries first if any is missing); panics on failure.
    pub fn start() -> ControlPlane {
        ControlPlane::try_start().unwrap_or_else(|e| panic!("control plane: {e}"))
    }

    pub fn try_start() -> Result<ControlPlane, String> {
        ControlPlane::try_start_with(AUDIT_POLICY)
    }

    /// [`ControlPlane::try_start`] with an audit policy of the caller's (YAML) in place of
    /// [`AUDIT_POLICY`], such as one that logs every request of one user at level Metadata.
    pub fn try_start_with(audit_policy: &str) -> Result<ControlPlane, String> {
        let bin = Binaries::ensure()?;
        let dir = tempfile::Builder::new()
            .prefix("plimsoll-kube-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let path = dir.path().to_path_buf();
        let begun = Instant::now();
        let pki = Pki::write(&path)?;
        let [etcd_client, etcd_peer, api, cm, scheduler, kwok] = free_ports::<6>();
        let server = format!("https://127.0.0.1:{api}");
        let kubeconfig = path.join("kubeconfig");
        let mut plane = ControlPlane {
            access: Access {
                dir: path.clone(),
                kubeconfig: kubeconfig.clone(),
                server: server.clone(),
                ca: pki.ca.clone(),
                started_in: Duration::ZERO,
                audit_log: path.join("audit.log"),
            },
            processes: Vec::new(),
            spawner: Spawner::new(),
            dir: Some(dir),
        };
        let mut steps = Vec::new();
        let lap = |steps: &mut Vec<String>, what: &str| {
            steps.push(format!("{what} {:.1} s", begun.elapsed().as_secs_f64()));
        };

        let etcd_url = format!("http://127.0.0.1:{etcd_client}");
        let peer_url = format!("http://127.0.0.1:{etcd_peer}");
        plane.spawn(
            "etcd",
            &bin.etcd,
            &[
                "--name=test".to_string(),
                format!("--data-dir={}", path.join("etcd").display()),
                format!("--listen-client-urls={etcd_url}"),
                format!("--advertise-client-urls={etcd_url}"),
                format!("--listen-peer-urls={peer_url}"),
                format!("--initial-advertise-peer-urls={peer_url}"),
                format!("--initial-cluster=test={peer_url}"),
                // Throwaway data: no fsync, which is slow on a busy disk.
                "--unsafe-no-fsync=true".to_string(),
                "--log-level=warn".to_string(),
            ],
            &[],
        )?;
        plane.wait_for("etcd /health", Duration::from_secs(30), |_| {
            get_status(etcd_client, "/health", None) == Some(200)
        })?;
        lap(&mut steps, "etcd healthy");

        let file = |p: &Path| p.display().to_string();
        let audit_policy_text = audit_policy;
        let audit_policy = path.join("audit-policy.yaml");
        std::fs::write(&audit_policy, audit_policy_text).map_err(|e| e.to_string())?;
        plane.spawn(
            "kube-apiserver",
            &bin.apiserver,
            &[
                "--advertise-address=127.0.0.1".to_string(),
                "--bind-address=127.0.0.1".to_string(),
                format!("--secure-port={api}"),
                format!("--etcd-servers={etcd_url}"),
                "--endpoint-reconciler-type=none".to_string(),
                "--service-cluster-ip-range=10.0.0.0/24".to_string(),
                "--service-account-issuer=https://kubernetes.default.svc".to_string(),
                format!("--service-account-key-file={}", file(&pki.sa_pub)),
                format!("--service-account-signing-key-file={}", file(&pki.sa_key)),
                format!("--client-ca-file={}", file(&pki.ca)),
                format!("--tls-cert-file={}", file(&pki.serving_cert)),
                format!("--tls-private-key-file={}", file(&pki.serving_key)),
                "--authorization-mode=Node,RBAC".to_string(),
                "--profiling=false".to_string(),
                format!("--audit-policy-file={}", file(&audit_policy)),
                format!("--audit-log-path={}", file(&plane.access.audit_log)),
                "--audit-log-format=json".to_string(),
                "--audit-log-mode=blocking".to_string(),
                "--audit-log-maxsize=0".to_string(),
            ],
            &[],
        )?;
        let tls = pki.tls.clone();
        plane.wait_for("kube-apiserver /readyz", Duration::from_secs(120), |_| {
            get_status(api, "/readyz", Some(&tls)) == Some(200)
        })?;
        lap(&mut steps, "apiserver ready");

        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: real\n  cluster:\n    server: {server}\n    \
                 certificate-authority: {}\nusers:\n- name: admin\n  user:\n    client-certificate: {}\n    \
                 client-key: {}\ncontexts:\n- name: real\n  context: {{cluster: real, user: admin}}\n\
                 current-context: real\n",
                file(&pki.ca),
                file(&pki.admin_cert),
                file(&pki.admin_key)
            ),
        )
        .map_err(|e| e.to_string())?;

        // Both serve /healthz with our serving certificate, so the same TLS check applies.
        let serving = [
            format!("--tls-cert-file={}", file(&pki.serving_cert)),
            format!("--tls-private-key-file={}", file(&pki.serving_key)),
        ];
        let common = |port: u16| {
            let mut args = vec![
                format!("--kubeconfig={}", file(&kubeconfig)),
                "--bind-address=127.0.0.1".to_string(),
                format!("--secure-port={port}"),
                "--leader-elect=false".to_string(),
                "--profiling=false".to_string(),
            ];
            args.extend(serving.iter().cloned());
            args
        };
        let mut cm_args = common(cm);
        cm_args.extend([
            format!("--service-account-private-key-file={}", file(&pki.sa_key)),
            format!("--root-ca-file={}", file(&pki.ca)),
            "--use-service-account-credentials=true".to_string(),
        ]);
        plane.spawn(
            "kube-controller-manager",
            &bin.controller_manager,
            &cm_args,
            &[],
        )?;
        plane.spawn("kube-scheduler", &bin.scheduler, &common(scheduler), &[])?;
        plane.spawn(
            "kwok",
            &bin.kwok,
            &[
                format!("--kubeconfig={}", file(&kubeconfig)),
                format!("--config={}", file(&bin.kwok_stages)),
                "--manage-all-nodes=true".to_string(),
                "--node-lease-duration-seconds=40".to_string(),
                format!("--server-address=127.0.0.1:{kwok}"),
                "--node-ip=127.0.0.1".to_string(),
            ],
            // kwok reads ~/.kwok: keep it in the temporary folder.
            &[("HOME", path.as_os_str())],
        )?;
        for (what, port) in [
            ("kube-controller-manager /healthz", cm),
            ("kube-scheduler /healthz", scheduler),
        ] {
            plane.wait_for(what, Duration::from_secs(60), |_| {
                get_status(port, "/healthz", Some(&tls)) == Some(200)
            })?;
        }
        lap(&mut steps, "controller-manager and scheduler healthy");

        let node = plane.kubectl_stdin(&["apply", "--server-side", "-f", "-"], FAKE_NODE);
        if !node.ok() {
            return Err(format!("creating the fake Node: {node:?}"));
        }
        let access = plane.access.clone();
        plane.wait_for("the fake Node Ready", Duration::from_secs(60), |_| {
            access
                .kubectl(&[
                    "get",
                    "node",
                    FAKE_NODE_NAME,
                    "-o",
                    "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
                ])
                .stdout
                == "True"
        })?;
        lap(&mut steps, "node Ready");
        plane.access.started_in = begun.elapsed();
        // Straight to stderr, past the test harness' capture: the start time is worth seeing.
        let _ = writeln!(
            std::io::stderr(),
            "control plane started in {:.1} s ({}) at {server}, in {}",
            plane.access.started_in.as_secs_f64(),
            steps.join(", "),
            path.display()
        );
        Ok(plane)
    }

    fn spawn(
        &mut self,
        name: &'static str,
        program: &Path,
        args: &[String],
        env: &[(&str, &std::ffi::OsStr)],
    ) -> Result<(), String> {
        let log = self.access.dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).map_err(|e| e.to_string())?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let mut command = Command::new(program);
        command
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let child = self.spawner.spawn(command)?;
        self.processes.push(Process { name, child, log });
        Ok(())
    }

    /// Polls `ready` until it holds; fails early when a process has exited.
    fn wait_for(
        &mut self,
        what: &str,
        limit: Duration,
        mut ready: impl FnMut(&mut Self) -> bool,
    ) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        loop {
            if ready(self) {
                return Ok(());
            }
            if let Some(dead) = self
                .processes
                .iter_mut()
                .find_map(|p| (!p.running()).then_some(p))
            {
                return Err(format!(
                    "{} exited while waiting for {what}; its log ({}) ends:\n{}",
                    dead.name,
                    dead.log.display(),
                    dead.log_tail()
                ));
            }
            if Instant::now() > deadline {
                let logs: Vec<String> = self
                    .processes
                    .iter()
                    .map(|p| format!("--- {}:\n{}", p.name, p.log_tail()))
                    .collect();
                return Err(format!("{what}: not within {limit:?}\n{}", logs.join("\n")));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The process ID of a component (`etcd`, `kube-apiserver`, `kube-controller-manager`,
    /// `kube-scheduler`, `kwok`), for reading its memory in /proc.
    pub fn pid(&self, name: &str) -> Option<u32> {
        self.processes
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.child.id())
    }

    /// How a test reaches it.
    pub fn access(&self) -> &Access {
        &self.access
    }

    /// Keeps the temporary folder (logs, data) after the drop, for a look after a failure.
    pub fn keep_dir(&mut self) -> Option<PathBuf> {
        self.dir.take().map(|d| d.keep())
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        // Newest first: kwok, the scheduler and the controller-manager, the apiserver, etcd.
        let begun = Instant::now();
        while let Some(mut process) = self.processes.pop() {
            process.stop(Duration::from_secs(15));
        }
        let _ = writeln!(
            std::io::stderr(),
            "control plane stopped in {:.1} s",
            begun.elapsed().as_secs_f64()
        );
    }
}

/// What the API server audits: the writes of ServiceAccounts (the operator's, and the
/// controller-manager's, which runs its controllers with their own) and their reads of Leases and
/// of the objects the operator keeps per SLO (PrometheusRules, AnalysisTemplates), once each when
/// answered, with who (`user`, whose `extra` names the token's ID), what (`verb`, `objectRef`),
/// when (`requestReceivedTimestamp`) and the answer's code; nothing else.
pub const AUDIT_POLICY: &str = "apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived, ResponseStarted]
rules:
- level: Metadata
  userGroups: [\"system:serviceaccounts\"]
  verbs: [create, update, patch, delete, deletecollection]
- level: Metadata
  userGroups: [\"system:serviceaccounts\"]
  verbs: [get]
  resources:
  - {group: coordination.k8s.io, resources: [leases]}
  - {group: monitoring.coreos.com, resources: [prometheusrules]}
  - {group: argoproj.io, resources: [analysistemplates]}
- level: None
";

pub const FAKE_NODE_NAME: &str = "kwok-node-0";

/// The Node kwok plays (kwok's own example node, trimmed).
const FAKE_NODE: &str = r#"
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-0
  annotations:
    node.alpha.kubernetes.io/ttl: "0"
    kwok.x-k8s.io/node: fake
  labels:
    kubernetes.io/hostname: kwok-node-0
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    type: kwok
spec: {}
"#;

/// The one control plane of this test process: started on first use, stopped when the process
/// exits (an `atexit` handler: statics are never dropped).
pub fn shared() -> &'static Access {
    static SHARED: OnceLock<Result<Access, String>> = OnceLock::new();
    let started = SHARED.get_or_init(|| {
        let plane = ControlPlane::try_start()?;
        let access = plane.access.clone();
        *RUNNING.lock().unwrap_or_else(|e| e.into_inner()) = Some(plane);
        // SAFETY: registers a plain function, once.
        unsafe { libc::atexit(stop_shared) };
        Ok(access)
    });
    match started {
        Ok(access) => access,
        Err(e) => panic!("control plane: {e}"),
    }
}

static RUNNING: Mutex<Option<ControlPlane>> = Mutex::new(None);

extern "C" fn stop_shared() {
    let plane = RUNNING.lock().unwrap_or_else(|e| e.into_inner()).take();
    drop(plane);
}
