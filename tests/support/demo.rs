//! The demo's month in a real Prometheus, as `make demo` builds it: `plimsoll demo-data` writes
//! the traffic and the backfill plan, promtool imports it, and each stage of the rules' history
//! is recorded and imported in turn. Shared by the tests that need the demo's data.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use plimsoll::demo::{LEAD_IN, WINDOW};

use super::prometheus::{Prometheus, Version, http, import_openmetrics_on};

pub const PLIMSOLL: &str = env!("CARGO_BIN_EXE_plimsoll");

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn plimsoll(args: &[&str]) -> Output {
    let out = Command::new(PLIMSOLL).args(args).output().unwrap();
    assert!(out.status.success(), "plimsoll {args:?}: {out:?}");
    out
}

/// `KEY=value` lines as `demo-data write` prints them.
fn value(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key} in {text}"))
        .parse()
        .unwrap()
}

/// The demo's month and its rules' history in `<dir>/data`, as `make demo` builds it. Returns the
/// end of the data.
pub fn demo_history(dir: &Path) -> u64 {
    demo_history_of(dir, &super::repo().join("demo/slos"), None)
}

/// [`demo_history`] for the SLOs in `slos` (over the demo's services' traffic), ending at `end`
/// (Unix seconds; default: ten minutes from now, as the demo does). Data that ends in the past
/// lets Prometheus evaluate rules live at once: its head takes no sample older than the
/// imported blocks' end.
pub fn demo_history_of(dir: &Path, slos: &Path, end: Option<u64>) -> u64 {
    demo_history_on(Version::chosen(), dir, slos, end)
}

/// [`demo_history_of`] with the promtool and Prometheus of `version`.
pub fn demo_history_on(version: Version, dir: &Path, slos: &Path, end: Option<u64>) -> u64 {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let mut args = vec![
        "demo-data".to_string(),
        "write".into(),
        "--slos".into(),
        slos.display().to_string(),
        "--out".into(),
        dir.display().to_string(),
    ];
    args.extend(end.map(|e| format!("--end={e}")));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let printed = plimsoll(&args);
    let printed = String::from_utf8(printed.stdout).unwrap();
    let (start, end, count_stages, stages) = (
        value(&printed, "START"),
        value(&printed, "END"),
        value(&printed, "COUNT_STAGES"),
        value(&printed, "STAGES"),
    );
    assert_eq!(end - start, WINDOW + LEAD_IN);
    import_openmetrics_on(version, &dir.join("traffic.om"), &data);
    let bare = dir.join("bare.yml");
    std::fs::write(&bare, "global: {evaluation_interval: 30s}\n").unwrap();
    // The counts over the month, total first; the rest over the last hour.
    let steps = (1..=count_stages)
        .map(|n| (format!("counts-{n}.yaml"), start))
        .chain((1..=stages).map(|n| (format!("stage-{n}.yaml"), end - 3600)));
    for (rules, from) in steps {
        let recorded = dir.join(format!("{rules}.om"));
        {
            let history = Prometheus::start_on(version, &data, &bare, &[]);
            plimsoll(&[
                "demo-data",
                "record",
                "--prometheus",
                &history.url,
                "--rules",
                dir.join(&rules).to_str().unwrap(),
                "--start",
                &from.to_string(),
                "--end",
                &end.to_string(),
                "--out",
                recorded.to_str().unwrap(),
            ]);
        }
        import_openmetrics_on(version, &recorded, &data);
    }
    end
}

/// `<dir>/slos` with a copy of the demo's three SLO manifests, to add to or break.
pub fn copy_demo_slos(dir: &Path) -> PathBuf {
    let slos = dir.join("slos");
    std::fs::create_dir_all(&slos).unwrap();
    for name in ["catalog", "checkout", "payments"] {
        let file = format!("{name}.yaml");
        std::fs::copy(
            super::repo().join("demo/slos").join(&file),
            slos.join(&file),
        )
        .unwrap();
    }
    slos
}

/// Prometheus on `<dir>/data`, reading the rule files of `<dir>/rules` (returned), with the
/// lifecycle API so local mode can have it reload them.
pub fn prometheus_with_rules(dir: &Path) -> (Prometheus, PathBuf) {
    let rules = dir.join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    let prometheus = Prometheus::start_with(
        &dir.join("data"),
        &config(dir, &rules),
        &["--web.enable-lifecycle"],
    );
    (prometheus, rules)
}

/// A Prometheus config that reads every rule file in `rules`.
pub fn config(dir: &Path, rules: &Path) -> PathBuf {
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global: {{evaluation_interval: 30s}}\nrule_files: [\"{}/*.yaml\"]\n",
            rules.display()
        ),
    )
    .unwrap();
    config
}

/// `plimsoll local` in the background, output to files, killed on drop.
pub struct Local {
    child: Child,
    pub port: u16,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Local {
    pub fn start(dir: &Path, slos: &Path, rules: &Path, prometheus: &str) -> Local {
        let rules = format!("--rules-out={}", rules.display());
        Local::spawn(dir, slos, &[&rules], prometheus)
    }

    /// Local mode writing its rule groups to a ruler (`--ruler-url`) for `tenant`.
    pub fn start_with_ruler(
        dir: &Path,
        slos: &Path,
        ruler: &str,
        tenant: &str,
        prometheus: &str,
    ) -> Local {
        let (url, tenant) = (format!("--ruler-url={ruler}"), format!("--tenant={tenant}"));
        Local::spawn(dir, slos, &[&url, &tenant], prometheus)
    }

    fn spawn(dir: &Path, slos: &Path, rules: &[&str], prometheus: &str) -> Local {
        let port = free_port();
        let (stdout, stderr) = (dir.join("local.out"), dir.join("local.err"));
        let child = Command::new(PLIMSOLL)
            .args(["local", "--interval", "1s"])
            .arg("--slos")
            .arg(slos)
            .args(rules)
            .arg(format!("--prometheus={prometheus}"))
            .arg(format!("--listen=127.0.0.1:{port}"))
            .stdout(Stdio::from(std::fs::File::create(&stdout).unwrap()))
            .stderr(Stdio::from(std::fs::File::create(&stderr).unwrap()))
            .spawn()
            .unwrap();
        Local {
            child,
            port,
            stdout,
            stderr,
        }
    }

    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        let response = http()
            .get(format!("http://127.0.0.1:{}{path}", self.port))
            .timeout(Duration::from_secs(5))
            .send()
            .ok()?;
        let code = response.status().as_u16();
        Some((code, response.text().unwrap_or_default()))
    }

    pub fn status(&self) -> Option<Value> {
        let (code, body) = self.get("/status")?;
        (code == 200).then(|| serde_json::from_str(&body).unwrap())
    }

    pub fn flagger(&self, slo: &str) -> (u16, String) {
        self.get(&format!("/flagger/rollback?slo={slo}")).unwrap()
    }

    /// Waits (at most 60 s) until /status satisfies `done`, and returns it.
    pub fn wait_for(&self, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.status()
                && done(&status)
            {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not within 60 s; last /status: {:?}\nstderr:\n{}",
                self.status(),
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap()
    }

    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap()
    }

    /// SIGTERM, and the exit code.
    pub fn terminate(mut self) -> Option<i32> {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(exit) = self.child.try_wait().unwrap() {
                return exit.code();
            }
            assert!(
                Instant::now() < deadline,
                "still running 10 s after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
