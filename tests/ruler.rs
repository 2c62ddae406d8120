//! `plimsoll generate --ruler-url` and `plimsoll local --ruler-url` against a loopback ruler that
//! answers as Mimir's and Cortex' rules configuration API do (tests/support/ruler.rs lists the
//! sources: grafana/mimir pkg/ruler/api.go and pkg/api/api.go, cortexproject/cortex
//! pkg/ruler/api.go and pkg/api/api.go, grafana/dskit middleware/http_auth.go). The requests
//! Plimsoll relies on:
//!
//! - `GET <api>` with `X-Scope-OrgID`: YAML `{namespace: [group]}`; `200 {}` (Mimir) or
//!   `404 no rule groups found` (Cortex) for a tenant without groups; `401 no org id` without the
//!   header.
//! - `POST <api>/<namespace>` with `Content-Type: application/yaml` and one group: `202`; `400`
//!   with a text body for a group the ruler refuses.
//! - `DELETE <api>/<namespace>/<group>`: `202`; `404 group does not exist` when already gone.
//!
//! The tests check the ruler's end state: what each tenant holds, and how many writes it took.

mod support;

#[path = "support/ruler.rs"]
mod ruler_api;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use ruler_api::Ruler;
use support::demo::{PLIMSOLL, copy_demo_slos, free_port};
use support::prometheus::http;

const TENANT: &str = "team-a";

/// A hand-written group of another tool, in the namespace Plimsoll uses.
const FOREIGN: &str = "name: shop-alerts\ninterval: 1m\nrules:\n  - alert: ShopDown\n    expr: up{job=\"shop\"} == 0\n    for: 5m\n    labels:\n      severity: page\n";

fn run(args: &[&str]) -> Output {
    Command::new(PLIMSOLL).args(args).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `plimsoll generate -f <slos> --ruler-url <url> [--tenant T]`.
fn sync(slos: &Path, url: &str, tenant: Option<&str>) -> Output {
    let mut args = vec!["generate", "-f", slos.to_str().unwrap(), "--ruler-url", url];
    if let Some(t) = tenant {
        args.extend(["--tenant", t]);
    }
    run(&args)
}

/// The ruler names of the groups `plimsoll generate` renders for `slos`.
fn rendered_names(slos: &Path) -> Vec<String> {
    let out = run(&["generate", "-f", slos.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let file: serde_json::Value = serde_saphyr::from_str(&text(&out.stdout)).unwrap();
    let mut names: Vec<String> = file["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap().replace('/', ":"))
        .collect();
    names.sort();
    names
}

fn post(ruler: &Ruler, tenant: &str, namespace: &str, body: &str) {
    let response = http()
        .post(format!("{}/{namespace}", ruler.mimir_url()))
        .header("X-Scope-OrgID", tenant)
        .header("Content-Type", "application/yaml")
        .body(body.to_string())
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 202, "{:?}", response.text());
}

fn sorted(mut names: Vec<String>) -> Vec<String> {
    names.sort();
    names
}

/// The demo's SLOs synced to a ruler that holds a foreign group beside them (the directory is
/// returned to keep it).
fn synced_demo() -> (tempfile::TempDir, PathBuf, Ruler) {
    let dir = tempfile::tempdir().unwrap();
    let slos = copy_demo_slos(dir.path());
    let ruler = Ruler::start();
    post(&ruler, TENANT, "shop", FOREIGN);
    assert!(
        sync(&slos, &ruler.mimir_url(), Some(TENANT))
            .status
            .success()
    );
    (dir, slos, ruler)
}

#[test]
fn generate_syncs_our_groups_beside_foreign_ones_and_a_second_sync_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let slos = copy_demo_slos(dir.path());
    let ruler = Ruler::start();
    post(&ruler, TENANT, "shop", FOREIGN);
    let foreign = ruler.group(TENANT, "shop", "shop-alerts").unwrap();
    // Another tenant already holds a copy of our groups: a sync for team-a must not see them.
    let out = sync(&slos, &ruler.mimir_url(), Some("team-b"));
    assert!(out.status.success(), "{out:?}");
    let team_b = ruler.names("team-b");

    let writes = ruler.writes();
    let out = sync(&slos, &ruler.mimir_url(), Some(TENANT));
    assert!(out.status.success(), "{out:?}");
    let ours = rendered_names(&slos);
    assert_eq!(ours.len(), 6, "three SLOs, two groups each");
    let mut expected = ours.clone();
    expected.push("shop-alerts".into());
    let held = ruler.names(TENANT);
    assert_eq!(held.keys().collect::<Vec<_>>(), ["shop"]);
    assert_eq!(sorted(held["shop"].clone()), sorted(expected));
    assert_eq!(ruler.group(TENANT, "shop", "shop-alerts"), Some(foreign));
    assert_eq!(
        ruler.names("team-b"),
        team_b,
        "the other tenant is untouched"
    );
    assert_eq!(ruler.writes() - writes, 6);
    let stdout = text(&out.stdout);
    for name in &ours {
        assert!(
            stdout.contains(&format!("created shop/{name}\n")),
            "{stdout}"
        );
    }
    let posts: Vec<_> = ruler
        .seen()
        .into_iter()
        .filter(|s| s.method == "POST")
        .collect();
    assert!(
        posts
            .iter()
            .all(|s| s.content_type.as_deref() == Some("application/yaml"))
    );
    assert!(
        posts
            .iter()
            .all(|s| s.path == "/prometheus/config/v1/rules/shop")
    );

    let writes = ruler.writes();
    let again = sync(&slos, &ruler.mimir_url(), Some(TENANT));
    assert!(again.status.success(), "{again:?}");
    assert_eq!(ruler.writes(), writes, "nothing changed, nothing written");
    assert_eq!(text(&again.stdout).matches("unchanged ").count(), 6);
    assert!(text(&again.stderr).contains("created 0, updated 0, deleted 0, unchanged 6"));
}

#[test]
fn a_changed_slo_is_updated_and_a_removed_one_deleted_and_nothing_else() {
    let (_dir, slos, ruler) = synced_demo();
    let catalog = "plimsoll:shop:catalog-availability";
    let before_fast = ruler
        .group(TENANT, "shop", &format!("{catalog}:fast"))
        .unwrap();

    std::fs::remove_file(slos.join("payments.yaml")).unwrap();
    let manifest = std::fs::read_to_string(slos.join("catalog.yaml")).unwrap();
    assert!(manifest.contains("objective: 99.9\n"), "{manifest}");
    std::fs::write(
        slos.join("catalog.yaml"),
        manifest.replace("objective: 99.9\n", "objective: 99.95\n"),
    )
    .unwrap();
    let writes = ruler.writes();
    let out = sync(&slos, &ruler.mimir_url(), Some(TENANT));
    assert!(out.status.success(), "{out:?}");
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("deleted shop/plimsoll:shop:payments-availability:fast\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("updated shop/{catalog}:fast\n")),
        "{stdout}"
    );
    let mut expected = rendered_names(&slos);
    expected.push("shop-alerts".into());
    assert_eq!(
        sorted(ruler.names(TENANT)["shop"].clone()),
        sorted(expected)
    );
    let after_fast = ruler
        .group(TENANT, "shop", &format!("{catalog}:fast"))
        .unwrap();
    assert_ne!(after_fast, before_fast);
    assert!(
        serde_saphyr::to_string(&after_fast)
            .unwrap()
            .contains("vector(0.9995)")
    );
    // Two catalog groups replaced, two payments groups deleted; checkout untouched.
    assert_eq!(ruler.writes() - writes, 4);
}

/// A tenant at Mimir's group limit: the stale groups go before the new ones are set, so the
/// sync fits (creates first would hit `per-user rule groups limit`).
#[test]
fn a_full_tenant_makes_room_by_deleting_first() {
    let (_dir, slos, ruler) = synced_demo();
    let held = ruler.names(TENANT)["shop"].len();
    // One more than held: room for one set at a time, as Mimir counts it.
    ruler.limit_groups_per_tenant(held + 1);
    // payments goes, search comes: two deletes, two creates.
    let payments = std::fs::read_to_string(slos.join("payments.yaml")).unwrap();
    std::fs::remove_file(slos.join("payments.yaml")).unwrap();
    std::fs::write(
        slos.join("search.yaml"),
        payments.replace("payments", "search"),
    )
    .unwrap();
    let out = sync(&slos, &ruler.mimir_url(), Some(TENANT));
    assert!(out.status.success(), "{out:?}");
    let mut expected = rendered_names(&slos);
    expected.push("shop-alerts".into());
    assert_eq!(
        sorted(ruler.names(TENANT)["shop"].clone()),
        sorted(expected)
    );
    // The emulation holds Mimir's count: a set with the tenant full is refused.
    std::fs::write(
        slos.join("extra.yaml"),
        payments.replace("payments", "extra"),
    )
    .unwrap();
    let out = sync(&slos, &ruler.mimir_url(), Some(TENANT));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stdout).contains(&format!(
            "per-user rule groups limit (limit: {} actual: {}) exceeded",
            held + 1,
            held + 2
        )),
        "{out:?}"
    );
}

#[test]
fn a_foreign_group_with_our_name_is_reported_and_left_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let slos = copy_demo_slos(dir.path());
    let ruler = Ruler::start();
    let name = "plimsoll:shop:checkout-availability:fast";
    post(
        &ruler,
        TENANT,
        "shop",
        &format!("name: {name}\nrules:\n  - record: job:up:sum\n    expr: sum(up)\n"),
    );
    let squatter = ruler.group(TENANT, "shop", name).unwrap();
    let out = sync(&slos, &ruler.mimir_url(), Some(TENANT));
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(text(&out.stdout).contains(&format!(
        "conflict shop/{name}: a group that Plimsoll did not write"
    )));
    assert_eq!(ruler.group(TENANT, "shop", name), Some(squatter));
    assert_eq!(
        ruler.names(TENANT)["shop"].len(),
        6,
        "the other five are written"
    );
    // And a stale-looking group under our name form with foreign rules is never deleted.
    std::fs::remove_file(slos.join("checkout.yaml")).unwrap();
    let out = sync(&slos, &ruler.mimir_url(), Some(TENANT));
    assert!(out.status.success(), "{out:?}");
    assert!(ruler.group(TENANT, "shop", name).is_some());
}

#[test]
fn cortex_routes_an_empty_tenant_and_removing_every_slo() {
    let dir = tempfile::tempdir().unwrap();
    let slos = copy_demo_slos(dir.path());
    let ruler = Ruler::start();
    let out = sync(&slos, &ruler.cortex_url(), Some(TENANT));
    assert!(out.status.success(), "{out:?}");
    assert_eq!(ruler.names(TENANT)["shop"].len(), 6);
    let first = &ruler.seen()[0];
    assert_eq!(
        (first.method.as_str(), first.path.as_str()),
        ("GET", "/api/v1/rules")
    );
    for file in ["catalog.yaml", "checkout.yaml", "payments.yaml"] {
        std::fs::remove_file(slos.join(file)).unwrap();
    }
    std::fs::write(
        slos.join("readme.yaml"),
        "# no SLOs here\nkind: ConfigMap\napiVersion: v1\nmetadata: {name: x}\n",
    )
    .unwrap();
    let out = sync(&slos, &ruler.cortex_url(), Some(TENANT));
    assert!(out.status.success(), "{out:?}");
    assert!(ruler.names(TENANT).is_empty(), "{:?}", ruler.names(TENANT));
    let deletes: Vec<_> = ruler
        .seen()
        .into_iter()
        .filter(|s| s.method == "DELETE")
        .collect();
    assert_eq!(deletes.len(), 6);
    assert!(
        deletes
            .iter()
            .all(|d| d.path.starts_with("/api/v1/rules/shop/plimsoll%3Ashop%3A"))
    );
}

#[test]
fn ruler_refusals_name_the_group_the_flag_and_the_rulers_message() {
    let dir = tempfile::tempdir().unwrap();
    let slos = copy_demo_slos(dir.path());
    std::fs::remove_file(slos.join("catalog.yaml")).unwrap();
    std::fs::remove_file(slos.join("payments.yaml")).unwrap();
    let ruler = Ruler::start();
    // The limit lets the fast group in and refuses the slow one, which has more rules.
    let file = text(&run(&["generate", "-f", slos.to_str().unwrap()]).stdout);
    let groups: serde_json::Value = serde_saphyr::from_str(&file).unwrap();
    let count = |i: usize| groups["groups"][i]["rules"].as_array().unwrap().len();
    assert!(count(0) < count(1), "fast {} slow {}", count(0), count(1));
    ruler.limit_rules_per_group(count(0));
    let out = sync(&slos, &ruler.mimir_url(), Some(TENANT));
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stdout = text(&out.stdout);
    let slow = "plimsoll:shop:checkout-availability:slow";
    assert!(
        stdout.contains(&format!(
            "failed shop/{slow}: the ruler refused rule group {slow} in namespace shop (400): \
             per-user rules per rule group limit (limit: {} actual: {}) exceeded",
            count(0),
            count(1)
        )),
        "{stdout}"
    );
    assert_eq!(
        ruler.names(TENANT)["shop"],
        ["plimsoll:shop:checkout-availability:fast"]
    );

    let out = sync(&slos, &ruler.mimir_url(), None);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("(401: no org id)") && stderr.contains("--tenant"),
        "{stderr}"
    );
    assert!(stderr.contains("nothing written"), "{stderr}");

    let wrong = format!("http://127.0.0.1:{}/prometheus/api/v1/rules", ruler.port);
    let out = sync(&slos, &wrong, Some(TENANT));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("(404: 404 page not found); check --ruler-url"),
        "{out:?}"
    );
}

#[test]
fn credentials_go_with_every_request() {
    let dir = tempfile::tempdir().unwrap();
    let slos = copy_demo_slos(dir.path());
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret\n").unwrap();
    let ruler = Ruler::start();
    let args = |extra: &[&str]| {
        let mut all = vec!["generate", "-f", slos.to_str().unwrap()];
        all.extend(extra);
        all.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let url = ruler.mimir_url();
    let bearer = args(&["--ruler-url", &url, "--tenant", TENANT]);
    let out = Command::new(PLIMSOLL)
        .args(&bearer)
        .arg("--ruler-bearer-token-file")
        .arg(&token)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let seen = ruler.seen();
    assert_eq!(seen.len(), 7, "one list, six sets");
    assert!(
        seen.iter()
            .all(|s| s.authorization.as_deref() == Some("Bearer s3cret"))
    );
    assert!(seen.iter().all(|s| s.tenant.as_deref() == Some(TENANT)));

    std::fs::remove_file(slos.join("payments.yaml")).unwrap();
    let basic = args(&[
        "--ruler-url",
        &url,
        "--tenant",
        TENANT,
        "--ruler-user",
        "plimsoll",
    ]);
    let out = Command::new(PLIMSOLL)
        .args(&basic)
        .env("PLIMSOLL_RULER_PASSWORD", "pw")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let later = &ruler.seen()[7..];
    assert_eq!(later.len(), 3, "one list, two deletes");
    // base64("plimsoll:pw")
    assert!(
        later
            .iter()
            .all(|s| s.authorization.as_deref() == Some("Basic cGxpbXNvbGw6cHc="))
    );
}

#[tokio::test]
async fn the_client_reads_each_answer_of_the_ruler() {
    use plimsoll::ruler::{Client, Deleted, RulerError, Settings};
    let ruler = Ruler::start();
    let client = |url: String, tenant: Option<&str>| {
        Client::new(Settings {
            tenant: tenant.map(String::from),
            ..Settings::new(url, Duration::from_secs(5))
        })
        .unwrap()
    };
    let mimir = client(ruler.mimir_url(), Some(TENANT));
    let cortex = client(ruler.cortex_url(), Some(TENANT));
    // An empty tenant: Mimir's 200 {} and Cortex' 404 are both no groups.
    assert!(mimir.list().await.unwrap().is_empty());
    assert!(cortex.list().await.unwrap().is_empty());
    assert_eq!(mimir.delete("shop", "gone").await.unwrap(), Deleted::Absent);
    let refused = mimir
        .set("shop", "g", "name: g\n".into())
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, RulerError::Group { namespace, group, status: 400, message }
            if namespace == "shop" && group == "g"
                && message == "invalid rules configuration: rule group 'g' has no rules"),
        "{refused:?}"
    );
    let body = "name: g\ninterval: 300s\nrules:\n  - record: slo:x\n    expr: vector(1)\n";
    mimir.set("shop", "g", body.into()).await.unwrap();
    let listed = cortex.list().await.unwrap();
    assert_eq!(listed["shop"][0].interval.as_deref(), Some("5m"));
    assert_eq!(mimir.delete("shop", "g").await.unwrap(), Deleted::Done);
    let anonymous = client(ruler.mimir_url(), None).list().await.unwrap_err();
    assert!(
        matches!(anonymous, RulerError::Denied { status: 401, .. }),
        "{anonymous:?}"
    );
}

#[test]
fn the_emulation_refuses_bad_groups_as_mimir_does() {
    let ruler = Ruler::start();
    let send = |body: &str| {
        let r = http()
            .post(format!("{}/shop", ruler.mimir_url()))
            .header("X-Scope-OrgID", TENANT)
            .body(body.to_string())
            .send()
            .unwrap();
        (r.status().as_u16(), r.text().unwrap())
    };
    assert_eq!(
        send("name: [unclosed"),
        (400, "unable to decode rule group\n".into())
    );
    assert_eq!(
        send("name: g\n"),
        (
            400,
            "invalid rules configuration: rule group 'g' has no rules\n".into()
        )
    );
    let (status, message) = send("name: g\nrules:\n  - record: a b\n    expr: sum(\n");
    assert_eq!(status, 400);
    assert!(
        message.starts_with("group \"g\", rule 0, \"a b\": could not parse expression: "),
        "{message}"
    );
    assert!(
        message.contains(", group \"g\", rule 0, \"a b\": invalid recording rule name: a b"),
        "{message}"
    );
    assert_eq!(ruler.writes(), 0);
    assert!(ruler.names(TENANT).is_empty());
}

#[test]
fn local_mode_syncs_each_round_and_goes_on_while_the_ruler_is_down() {
    let dir = tempfile::tempdir().unwrap();
    let slos = copy_demo_slos(dir.path());
    let data = dir.path().join("data");
    let config = dir.path().join("prometheus.yml");
    std::fs::write(&config, "global: {evaluation_interval: 30s}\n").unwrap();
    let prometheus = support::prometheus::Prometheus::start(&data, &config);
    let ruler_port = free_port();
    let url = format!("http://127.0.0.1:{ruler_port}/prometheus/config/v1/rules");
    let local =
        support::demo::Local::start_with_ruler(dir.path(), &slos, &url, TENANT, &prometheus.url);

    // Rounds go on without the ruler: the table is served, and the ruler's error said once.
    let rounds = std::cell::RefCell::new(std::collections::BTreeSet::new());
    let later = local.wait_for("four rounds", |s| {
        if let Some(at) = s["evaluatedAt"].as_str() {
            rounds.borrow_mut().insert(at.to_string());
        }
        rounds.borrow().len() >= 4
    });
    assert_eq!(later["slos"].as_array().unwrap().len(), 3);
    let stderr = local.stderr();
    assert_eq!(stderr.matches("did not answer").count(), 1, "{stderr}");

    let ruler = Ruler::start_on(ruler_port);
    wait_until("the groups reach the ruler", || {
        ruler
            .names(TENANT)
            .get("shop")
            .is_some_and(|g| g.len() == 6)
    });
    wait_until("it says so", || {
        local.stderr().contains("every rule group in place again")
    });
    // Two more rounds, each listing once, write nothing: counted by the lists the ruler sees
    // rather than by a fixed sleep, in which a loaded machine may run no round at all.
    let settled = ruler.writes();
    let lists = || ruler.seen().iter().filter(|s| s.method == "GET").count();
    let listed = lists();
    wait_until("two more rounds list the groups", || lists() >= listed + 2);
    assert_eq!(
        ruler.writes(),
        settled,
        "unchanged groups are not written again"
    );

    std::fs::remove_file(slos.join("payments.yaml")).unwrap();
    wait_until("the removed SLO's groups are deleted", || {
        ruler
            .names(TENANT)
            .get("shop")
            .is_some_and(|g| g.len() == 4)
    });
    assert!(
        !ruler.names(TENANT)["shop"]
            .iter()
            .any(|g| g.contains("payments"))
    );
    assert_eq!(local.terminate(), Some(0));
}

fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `cargo nextest run --test ruler --run-ignored only measure`: the time of a first sync of
/// 1,000 SLOs (2,000 groups) and of a second one that finds nothing to do, against the loopback
/// ruler.
#[test]
#[ignore]
fn measure_syncs_of_a_thousand_slos() {
    let dir = tempfile::tempdir().unwrap();
    let slos = dir.path().join("slos");
    std::fs::create_dir_all(&slos).unwrap();
    let template = std::fs::read_to_string(support::repo().join("demo/slos/catalog.yaml")).unwrap();
    for i in 0..1000 {
        let name = format!("catalog-{i}");
        let manifest = template
            .replace("name: catalog-availability", &format!("name: {name}"))
            .replace("namespace: shop", &format!("namespace: team-{}", i % 10));
        std::fs::write(slos.join(format!("{name}.yaml")), manifest).unwrap();
    }
    let ruler = Ruler::start();
    for round in ["first", "second"] {
        let started = Instant::now();
        let out = sync(&slos, &ruler.mimir_url(), Some(TENANT));
        assert!(out.status.success(), "{out:?}");
        println!(
            "{round} sync: {:.2} s, {} writes so far; {}",
            started.elapsed().as_secs_f64(),
            ruler.writes(),
            text(&out.stderr).trim()
        );
    }
    assert_eq!(ruler.writes(), 2000);
}
