//! Argo CD: the health checks in deploy/argocd/ run by a real Lua 5.1 interpreter (Debian's
//! lua5.1, the dialect of Argo CD's gopher-lua) against sample SLOs, the argocd-cm snippets carry
//! exactly those scripts, and the example Application renders with the chart.

#[path = "support/helm.rs"]
mod helm;

use std::io::Write;
use std::process::{Command, Stdio};

use helm::{documents, repo};
use serde_json::{Value, json};

/// A JSON value as a Lua expression (what Argo CD hands the script as `obj`).
fn lua(value: &Value) -> String {
    match value {
        Value::Null => "nil".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => {
            let mut out = String::from("\"");
            for c in s.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    c if (c as u32) < 0x20 => out.push_str(&format!("\\{:03}", c as u32)),
                    c => out.push(c),
                }
            }
            out.push('"');
            out
        }
        Value::Array(items) => format!(
            "{{{}}}",
            items.iter().map(lua).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(fields) => format!(
            "{{{}}}",
            fields
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| format!("[{}] = {}", lua(&json!(k)), lua(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn interpreter() -> String {
    std::env::var("LUA").unwrap_or_else(|_| "lua5.1".into())
}

/// Runs a health script on `object` as Argo CD does: `obj` is global, the script returns `hs`.
fn health(script: &str, object: &Value) -> (String, String) {
    let program = format!(
        "obj = {}\nlocal function check()\n{script}\nend\nlocal hs = check()\n\
         io.write(tostring(hs.status), \"\\n\", tostring(hs.message))\n",
        lua(object)
    );
    let mut child = Command::new(interpreter())
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} (make tools installs lua5.1): {e}",
                interpreter()
            )
        });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(program.as_bytes())
        .unwrap();
    // A tiny script: bounded all the same.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the health script ran for more than 10 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}\n{program}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let (status, message) = text.split_once('\n').unwrap();
    (status.to_string(), message.to_string())
}

fn script(name: &str) -> String {
    std::fs::read_to_string(repo().join("deploy/argocd").join(name)).unwrap()
}

fn condition(type_: &str, status: &str, reason: &str, message: &str) -> Value {
    json!({"type": type_, "status": status, "reason": reason, "message": message,
           "observedGeneration": 3, "lastTransitionTime": "2027-01-15T08:00:00Z"})
}

fn slo(status: Option<Value>) -> Value {
    let mut object = json!({
        "apiVersion": "plimsoll.dev/v1alpha1", "kind": "ServiceLevelObjective",
        "metadata": {"name": "checkout", "namespace": "shop", "generation": 3},
        "spec": {"service": "checkout", "objective": 99.9, "window": "30d",
                 "indicator": {"ratio": {"errors": "e_total", "total": "t_total"}}},
    });
    if let Some(s) = status {
        object["status"] = s;
    }
    object
}

fn ready() -> Value {
    slo(Some(
        json!({"observedGeneration": 3, "prometheusRule": "checkout", "conditions": [
            condition("Ready", "True", "RulesApplied", "PrometheusRule shop/checkout holds 2 rule groups"),
            condition("BudgetExhausted", "False", "WithinBudget", "41.2% of the error budget left"),
        ]}),
    ))
}

fn exhausted() -> Value {
    let mut object = ready();
    object["status"]["conditions"][1] = condition(
        "BudgetExhausted",
        "True",
        "BudgetExhausted",
        "-12.5% of the error budget left",
    );
    object
}

fn invalid() -> Value {
    slo(Some(json!({"observedGeneration": 3, "conditions": [
        condition("Ready", "False", "InvalidSpec", "spec.objective: must be a percentage strictly between 0 and 100"),
    ]})))
}

fn not_yet_observed() -> Value {
    let mut object = ready();
    object["status"]["observedGeneration"] = json!(2);
    object
}

#[test]
fn the_health_check_follows_ready_and_the_observed_generation() {
    let check = script("health.lua");
    let (status, message) = health(&check, &ready());
    assert_eq!(status, "Healthy");
    assert!(message.contains("holds 2 rule groups"), "{message}");
    let (status, message) = health(&check, &invalid());
    assert_eq!(status, "Degraded");
    assert_eq!(
        message,
        "InvalidSpec: spec.objective: must be a percentage strictly between 0 and 100"
    );
    let (status, message) = health(&check, &not_yet_observed());
    assert_eq!(status, "Progressing");
    assert!(message.contains("generation 3"), "{message}");
    assert_eq!(health(&check, &slo(None)).0, "Progressing", "no status yet");
    let no_ready = slo(Some(json!({"observedGeneration": 3, "conditions": []})));
    assert_eq!(health(&check, &no_ready).0, "Progressing");
    assert_eq!(
        health(&check, &exhausted()).0,
        "Healthy",
        "an exhausted budget is the service's state, not the SLO's"
    );
}

#[test]
fn the_opt_in_variant_reports_an_exhausted_budget_as_degraded() {
    let check = script("health-budget.lua");
    let (status, message) = health(&check, &exhausted());
    assert_eq!(status, "Degraded");
    assert_eq!(
        message,
        "Error budget exhausted: -12.5% of the error budget left"
    );
    assert_eq!(health(&check, &ready()).0, "Healthy");
    assert_eq!(health(&check, &invalid()).0, "Degraded");
    assert_eq!(health(&check, &not_yet_observed()).0, "Progressing");
    // The same script but for its switch.
    let plain = script("health.lua");
    let differing: Vec<(&str, &str)> = plain
        .lines()
        .zip(check.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(
        differing,
        [(
            "local budget_is_health = false",
            "local budget_is_health = true"
        )]
    );
}

#[test]
fn the_argocd_cm_snippets_carry_the_scripts() {
    for (file, lua_file) in [
        ("argocd-cm.yaml", "health.lua"),
        ("argocd-cm-budget.yaml", "health-budget.lua"),
    ] {
        let text = std::fs::read_to_string(repo().join("deploy/argocd").join(file)).unwrap();
        let cm = &documents(&text)[0];
        assert_eq!(cm["kind"], "ConfigMap");
        assert_eq!(cm["metadata"]["name"], "argocd-cm");
        let key = "resource.customizations.health.plimsoll.dev_ServiceLevelObjective";
        assert_eq!(
            cm["data"][key].as_str().unwrap(),
            script(lua_file),
            "{file}"
        );
        assert_eq!(cm["data"].as_object().unwrap().len(), 1, "{file}");
    }
}

#[test]
fn the_example_application_syncs_the_chart_with_server_side_apply() {
    let text = std::fs::read_to_string(repo().join("deploy/argocd/application.yaml")).unwrap();
    let app = &documents(&text)[0];
    assert_eq!(app["apiVersion"], "argoproj.io/v1alpha1");
    assert_eq!(app["kind"], "Application");
    let options: Vec<&str> = app["spec"]["syncPolicy"]["syncOptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_str().unwrap())
        .collect();
    assert!(options.contains(&"ServerSideApply=true"), "{options:?}");
    let source = &app["spec"]["source"];
    assert_eq!(source["path"], "charts/plimsoll");
    assert!(repo().join("charts/plimsoll/Chart.yaml").exists());
    let namespace = app["spec"]["destination"]["namespace"].as_str().unwrap();
    let release = source["helm"]["releaseName"].as_str().unwrap();
    // The values it gives are accepted by the chart's schema and templates.
    let rendered = helm::render_as(release, namespace, &source["helm"]["valuesObject"]);
    assert!(
        rendered
            .objects
            .iter()
            .any(|o| o["kind"] == "ServiceMonitor")
    );
}
