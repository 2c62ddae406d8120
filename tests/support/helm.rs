//! The Helm chart through Helm's own engine: tests/support/helm.py (PyPI helm-python-sdk) as a
//! child process with a time limit, and the rendered objects as JSON.
#![allow(dead_code)]

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const RELEASE: &str = "plimsoll";
pub const NAMESPACE: &str = "plimsoll";

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn chart() -> PathBuf {
    repo().join("charts/plimsoll")
}

/// Runs the helper; `Err` carries what Helm said on stderr.
pub fn helper(args: &[&str]) -> Result<String, String> {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let mut child = Command::new(&python)
        .arg(repo().join("tests/support/helm.py"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {python} (make tools installs it): {e}"));
    let (mut stdout, mut stderr) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        stdout.read_to_string(&mut s).unwrap();
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        stderr.read_to_string(&mut s).unwrap();
        s
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("tests/support/helm.py {args:?} took more than 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    match status.code() {
        Some(0) => Ok(out),
        Some(1) => Err(err),
        _ => panic!("tests/support/helm.py {args:?} failed ({status}):\n{err}"),
    }
}

/// What a dry-run install produced.
pub struct Rendered {
    pub manifest: String,
    pub notes: String,
    pub objects: Vec<Value>,
}

impl Rendered {
    /// The one object of this kind and name.
    pub fn get(&self, kind: &str, name: &str) -> &Value {
        let found: Vec<&Value> = self
            .objects
            .iter()
            .filter(|o| o["kind"] == kind && o["metadata"]["name"] == name)
            .collect();
        assert_eq!(found.len(), 1, "{kind}/{name}: {} found", found.len());
        found[0]
    }

    pub fn of_kind(&self, kind: &str) -> Vec<&Value> {
        self.objects.iter().filter(|o| o["kind"] == kind).collect()
    }

    /// `kind/name` (with `namespace/` for namespaced objects) of every object, in order.
    pub fn inventory(&self) -> Vec<String> {
        self.objects
            .iter()
            .map(|o| {
                let ns = o["metadata"]["namespace"]
                    .as_str()
                    .map(|n| format!("{n}/"))
                    .unwrap_or_default();
                format!(
                    "{}/{ns}{}",
                    o["kind"].as_str().unwrap(),
                    o["metadata"]["name"].as_str().unwrap()
                )
            })
            .collect()
    }

    /// The operator's Deployment.
    pub fn deployment(&self) -> &Value {
        let all = self.of_kind("Deployment");
        assert_eq!(all.len(), 1);
        all[0]
    }

    /// The operator container's environment as (name, value or `valueFrom`) pairs.
    pub fn env(&self) -> Vec<(String, Value)> {
        self.deployment()["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let value = e
                    .get("value")
                    .cloned()
                    .unwrap_or_else(|| e["valueFrom"].clone());
                (e["name"].as_str().unwrap().to_string(), value)
            })
            .collect()
    }

    /// The plain value of one environment variable.
    pub fn env_value(&self, name: &str) -> Option<String> {
        self.env()
            .into_iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.as_str().map(str::to_string))
    }
}

/// The documents of a multi-document YAML text, without empty ones.
pub fn documents(text: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(text)
        .unwrap_or_else(|e| panic!("not YAML: {e}\n{text}"))
        .into_iter()
        .filter(|d| !d.is_null())
        .collect()
}

/// Renders the chart as release `plimsoll` in namespace `plimsoll`.
pub fn render(values: &Value) -> Rendered {
    render_as(RELEASE, NAMESPACE, values)
}

pub fn render_as(release: &str, namespace: &str, values: &Value) -> Rendered {
    match try_render(release, namespace, values) {
        Ok(r) => r,
        Err(e) => panic!("Helm refused {values}:\n{e}"),
    }
}

/// What Helm said when it refused the values.
pub fn refusal(values: &Value) -> String {
    match try_render(RELEASE, NAMESPACE, values) {
        Ok(_) => panic!("Helm accepted {values}"),
        Err(e) => e,
    }
}

fn try_render(release: &str, namespace: &str, values: &Value) -> Result<Rendered, String> {
    let chart = chart();
    let out = helper(&[
        "render",
        chart.to_str().unwrap(),
        release,
        namespace,
        &values.to_string(),
    ])?;
    let result: Value = serde_json::from_str(&out).unwrap();
    let manifest = result["manifest"].as_str().unwrap().to_string();
    Ok(Rendered {
        objects: documents(&manifest),
        notes: result["notes"].as_str().unwrap_or_default().to_string(),
        manifest,
    })
}

/// `helm lint --strict` with these values: Helm's report.
pub fn lint(values: &Value) -> Value {
    let chart = chart();
    let out = helper(&["lint", chart.to_str().unwrap(), &values.to_string()])
        .unwrap_or_else(|e| panic!("lint failed: {e}"));
    serde_json::from_str(&out).unwrap()
}

/// What `make deploy` writes to deploy/plimsoll.yaml.
pub fn deploy() -> String {
    let chart = chart();
    helper(&["deploy", chart.to_str().unwrap()]).unwrap_or_else(|e| panic!("deploy failed: {e}"))
}
