//! `plimsoll generate --ruler-url` and `plimsoll local --ruler-url` against the real Grafana
//! Mimir (tests/mimir pins the version; tests/support/mimir.rs runs it monolithic, one process,
//! multi-tenant, on loopback, with filesystem storage in a temporary directory). The requests
//! Plimsoll relies on, and what this Mimir answers:
//!
//! - `GET <api>` with `X-Scope-OrgID`: YAML `{namespace: [group]}`; `200 {}` for a tenant without
//!   groups; `401 no org id` without the header.
//! - `POST <api>/<namespace>` with one group: `202`; `400` with a text body for a group the ruler
//!   refuses (its validation, its per-tenant limits).
//! - `DELETE <api>/<namespace>/<group>`: `202`; `404 group does not exist` when already gone.
//!
//! The tests check Mimir's end state through its own APIs: the groups each tenant holds (the
//! configuration API), the writes it took (its request counter), what its ruler evaluates (its
//! query API), and what Plimsoll reads back through its query path.
//!
//! Cortex answers two things Mimir does not: the configuration API at `/api/v1/rules` (Mimir
//! serves it only under its Prometheus prefix) and `404 no rule groups found` for a tenant
//! without groups. Cortex is not built here, so those two run against the loopback stand-in that
//! is left of the old emulation (tests/support/ruler.rs, which says where it reads them).

mod support;

#[path = "support/ruler.rs"]
mod cortex;
#[path = "support/mimir.rs"]
mod mimir;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use mimir::{Mimir, Options, Recorder};
use support::demo::{PLIMSOLL, copy_demo_slos, free_port};

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

/// The number of rules in each group `plimsoll generate` renders for `slos`, in its order.
fn rule_counts(slos: &Path) -> Vec<usize> {
    let file = text(&run(&["generate", "-f", slos.to_str().unwrap()]).stdout);
    let groups: serde_json::Value = serde_saphyr::from_str(&file).unwrap();
    groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["rules"].as_array().unwrap().len())
        .collect()
}

fn post(mimir: &Mimir, tenant: &str, namespace: &str, body: &str) {
    let (status, answer) = mimir.post(tenant, namespace, body);
    assert_eq!(status, 202, "{answer}");
}

fn sorted(mut names: Vec<String>) -> Vec<String> {
    names.sort();
    names
}

/// The demo's SLOs synced to Mimir beside a foreign group (the directory is returned to keep it).
fn synced_demo(mimir: &Mimir) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let slos = copy_demo_slos(dir.path());
    post(mimir, TENANT, "shop", FOREIGN);
    let out = sync(&slos, &mimir.ruler_url(), Some(TENANT));
    assert!(out.status.success(), "{out:?}");
    (dir, slos)
}

#[test]
fn generate_syncs_our_groups_beside_foreign_ones_and_a_second_sync_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let slos = copy_demo_slos(dir.path());
    let mimir = Mimir::start();
    post(&mimir, TENANT, "shop", FOREIGN);
    let foreign = mimir.group(TENANT, "shop", "shop-alerts").unwrap();
    // Another tenant already holds a copy of our groups: a sync for team-a must not see them.
    let out = sync(&slos, &mimir.ruler_url(), Some("team-b"));
    assert!(out.status.success(), "{out:?}");
    let team_b = mimir.groups("team-b");
    assert_eq!(team_b["shop"].len(), 6);

    let writes = mimir.writes();
    let out = sync(&slos, &mimir.ruler_url(), Some(TENANT));
    assert!(out.status.success(), "{out:?}");
    let ours = rendered_names(&slos);
    assert_eq!(ours.len(), 6, "three SLOs, two groups each");
    let mut expected = ours.clone();
    expected.push("shop-alerts".into());
    let held = mimir.names(TENANT);
    assert_eq!(held.keys().collect::<Vec<_>>(), ["shop"]);
    assert_eq!(sorted(held["shop"].clone()), sorted(expected));
    assert_eq!(mimir.group(TENANT, "shop", "shop-alerts"), Some(foreign));
    assert_eq!(
        mimir.groups("team-b"),
        team_b,
        "the other tenant is untouched"
    );
    assert_eq!(mimir.writes() - writes, 6);
    let stdout = text(&out.stdout);
    for name in &ours {
        assert!(
            stdout.contains(&format!("created shop/{name}\n")),
            "{stdout}"
        );
    }
    // Every write went to the namespace's route, and each was taken.
    let requests = mimir.requests();
    let sets: u64 = requests
        .iter()
        .filter(|r| r.method == "POST")
        .map(|r| r.count)
        .sum();
    assert_eq!(sets, 1 + 6 + 6, "{requests:?}");
    assert!(
        requests
            .iter()
            .filter(|r| r.method == "POST")
            .all(|r| r.route == "prometheus_config_v1_rules_namespace" && r.status == "202"),
        "{requests:?}"
    );

    let writes = mimir.writes();
    let again = sync(&slos, &mimir.ruler_url(), Some(TENANT));
    assert!(again.status.success(), "{again:?}");
    assert_eq!(mimir.writes(), writes, "nothing changed, nothing written");
    assert_eq!(text(&again.stdout).matches("unchanged ").count(), 6);
    assert!(text(&again.stderr).contains("created 0, updated 0, deleted 0, unchanged 6"));
}

#[test]
fn a_changed_slo_is_updated_and_a_removed_one_deleted_and_nothing_else() {
    let mimir = Mimir::start();
    let (_dir, slos) = synced_demo(&mimir);
    let catalog = "plimsoll:shop:catalog-availability";
    let before_fast = mimir
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
    let writes = mimir.writes();
    let out = sync(&slos, &mimir.ruler_url(), Some(TENANT));
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
        sorted(mimir.names(TENANT)["shop"].clone()),
        sorted(expected)
    );
    let after_fast = mimir
        .group(TENANT, "shop", &format!("{catalog}:fast"))
        .unwrap();
    assert_ne!(after_fast, before_fast);
    assert!(
        after_fast.to_string().contains("vector(0.9995)"),
        "{after_fast}"
    );
    // Two catalog groups replaced, two payments groups deleted; checkout untouched.
    assert_eq!(mimir.writes() - writes, 4);
}

/// A tenant at its group limit (Mimir's `ruler_max_rule_groups_per_tenant`, here for team-a in
/// the runtime configuration): the stale groups go before the new ones are set, so the sync fits
/// (creates first would hit it); a sync that cannot fit is reported with Mimir's own message and
/// the setting to raise.
#[test]
fn a_full_tenant_makes_room_by_deleting_first() {
    // Six of ours and the foreign group held: one more than held, room for one set at a time, as
    // Mimir counts (the tenant's groups plus the one being set, even when it replaces one).
    let limit = 6 + 1 + 1;
    let mimir = Mimir::start_with(Options {
        runtime_config: Some(format!(
            "overrides:\n  {TENANT}:\n    ruler_max_rule_groups_per_tenant: {limit}\n"
        )),
        ..Options::default()
    });
    let (_dir, slos) = synced_demo(&mimir);
    assert_eq!(mimir.names(TENANT)["shop"].len(), limit - 1);
    // payments goes, search comes: two deletes, two creates.
    let payments = std::fs::read_to_string(slos.join("payments.yaml")).unwrap();
    std::fs::remove_file(slos.join("payments.yaml")).unwrap();
    std::fs::write(
        slos.join("search.yaml"),
        payments.replace("payments", "search"),
    )
    .unwrap();
    let out = sync(&slos, &mimir.ruler_url(), Some(TENANT));
    assert!(out.status.success(), "{out:?}");
    let mut expected = rendered_names(&slos);
    expected.push("shop-alerts".into());
    assert_eq!(
        sorted(mimir.names(TENANT)["shop"].clone()),
        sorted(expected)
    );
    // One SLO more does not fit: its first group is the tenant's last, its second is refused.
    std::fs::write(
        slos.join("extra.yaml"),
        payments.replace("payments", "extra"),
    )
    .unwrap();
    let out = sync(&slos, &mimir.ruler_url(), Some(TENANT));
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stdout = text(&out.stdout);
    let refused = stdout
        .lines()
        .find(|l| l.starts_with("failed shop/plimsoll:shop:extra-availability:"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        refused.contains(&format!(
            "(400): per-user rule groups limit (limit: {limit} actual: {}) exceeded; the \
             tenant's limit is Mimir's ruler_max_rule_groups_per_tenant (flag \
             -ruler.max-rule-groups-per-tenant",
            limit + 1
        )),
        "{stdout}"
    );
    assert_eq!(mimir.names(TENANT)["shop"].len(), limit);
}

#[test]
fn a_foreign_group_with_our_name_is_reported_and_left_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let slos = copy_demo_slos(dir.path());
    let mimir = Mimir::start();
    let name = "plimsoll:shop:checkout-availability:fast";
    post(
        &mimir,
        TENANT,
        "shop",
        &format!("name: {name}\nrules:\n  - record: job:up:sum\n    expr: sum(up)\n"),
    );
    let squatter = mimir.group(TENANT, "shop", name).unwrap();
    let out = sync(&slos, &mimir.ruler_url(), Some(TENANT));
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(text(&out.stdout).contains(&format!(
        "conflict shop/{name}: a group that Plimsoll did not write"
    )));
    assert_eq!(mimir.group(TENANT, "shop", name), Some(squatter));
    assert_eq!(
        mimir.names(TENANT)["shop"].len(),
        6,
        "the other five are written"
    );
    // And a stale-looking group under our name form with foreign rules is never deleted.
    std::fs::remove_file(slos.join("checkout.yaml")).unwrap();
    let out = sync(&slos, &mimir.ruler_url(), Some(TENANT));
    assert!(out.status.success(), "{out:?}");
    assert!(mimir.group(TENANT, "shop", name).is_some());
}

/// Cortex only (the stand-in): its route, and its 404 for a tenant without groups.
#[test]
fn cortex_routes_an_empty_tenant_and_removing_every_slo() {
    let dir = tempfile::tempdir().unwrap();
    let slos = copy_demo_slos(dir.path());
    let ruler = cortex::Cortex::start();
    let out = sync(&slos, &ruler.url(), Some(TENANT));
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
    let out = sync(&slos, &ruler.url(), Some(TENANT));
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

/// Mimir's `ruler_max_rules_per_rule_group` (here its flag): the group with more rules is refused,
/// and the report names the group, the limit's setting and flag, and Mimir's own message.
#[test]
fn ruler_refusals_name_the_group_the_flag_and_the_rulers_message() {
    let dir = tempfile::tempdir().unwrap();
    let slos = copy_demo_slos(dir.path());
    std::fs::remove_file(slos.join("catalog.yaml")).unwrap();
    std::fs::remove_file(slos.join("payments.yaml")).unwrap();
    // The limit lets the fast group in and refuses the slow one, which has more rules.
    let counts = rule_counts(&slos);
    assert!(
        counts[0] < counts[1],
        "fast {} slow {}",
        counts[0],
        counts[1]
    );
    let mimir = Mimir::start_with(Options {
        flags: vec![format!("-ruler.max-rules-per-rule-group={}", counts[0])],
        ..Options::default()
    });
    let out = sync(&slos, &mimir.ruler_url(), Some(TENANT));
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stdout = text(&out.stdout);
    let slow = "plimsoll:shop:checkout-availability:slow";
    assert!(
        stdout.contains(&format!(
            "failed shop/{slow}: the ruler refused rule group {slow} in namespace shop (400): \
             per-user rules per rule group limit (limit: {} actual: {}) exceeded; the tenant's \
             limit is Mimir's ruler_max_rules_per_rule_group (flag \
             -ruler.max-rules-per-rule-group, or per tenant in the runtime configuration's \
             overrides)\n",
            counts[0], counts[1]
        )),
        "{stdout}"
    );
    assert_eq!(
        mimir.names(TENANT)["shop"],
        ["plimsoll:shop:checkout-availability:fast"]
    );

    let out = sync(&slos, &mimir.ruler_url(), None);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("(401: no org id)") && stderr.contains("--tenant"),
        "{stderr}"
    );
    assert!(stderr.contains("nothing written"), "{stderr}");

    let wrong = format!("{}/prometheus/api/v1/rulez", mimir.url);
    let out = sync(&slos, &wrong, Some(TENANT));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("(404: 404 page not found); check --ruler-url"),
        "{out:?}"
    );
}

/// Mimir checks no credentials here; a pass-through in front of it shows what each request
/// carried, and Mimir's answers show the requests were taken.
#[test]
fn credentials_go_with_every_request() {
    let dir = tempfile::tempdir().unwrap();
    let slos = copy_demo_slos(dir.path());
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret\n").unwrap();
    let mimir = Mimir::start();
    let recorder = Recorder::start(&mimir.url);
    let url = format!(
        "{}{}/config/v1/rules",
        recorder.url,
        mimir::PROMETHEUS_PREFIX
    );
    let args = |extra: &[&str]| {
        let mut all = vec!["generate", "-f", slos.to_str().unwrap()];
        all.extend(extra);
        all.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let bearer = args(&["--ruler-url", &url, "--tenant", TENANT]);
    let out = Command::new(PLIMSOLL)
        .args(&bearer)
        .arg("--ruler-bearer-token-file")
        .arg(&token)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let seen = recorder.seen();
    assert_eq!(seen.len(), 7, "one list, six sets");
    assert!(
        seen.iter()
            .all(|s| s.authorization.as_deref() == Some("Bearer s3cret"))
    );
    assert!(seen.iter().all(|s| s.tenant.as_deref() == Some(TENANT)));
    let sets: Vec<_> = seen.iter().filter(|s| s.method == "POST").collect();
    assert!(sets.iter().all(|s| {
        s.content_type.as_deref() == Some("application/yaml")
            && s.path == "/prometheus/config/v1/rules/shop"
            && s.status == 202
    }));
    assert_eq!(mimir.names(TENANT)["shop"].len(), 6);

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
    let later = &recorder.seen()[7..];
    assert_eq!(later.len(), 3, "one list, two deletes");
    // base64("plimsoll:pw")
    assert!(
        later
            .iter()
            .all(|s| s.authorization.as_deref() == Some("Basic cGxpbXNvbGw6cHc="))
    );
    assert_eq!(mimir.names(TENANT)["shop"].len(), 4);
}

/// Runs one of the async client's calls to its end.
fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

#[test]
fn the_client_reads_each_answer_of_the_ruler() {
    use plimsoll::ruler::{Client, Deleted, RulerError, Settings};
    let mimir = Mimir::start();
    let cortex = cortex::Cortex::start();
    let client = |url: String, tenant: Option<&str>| {
        Client::new(Settings {
            tenant: tenant.map(String::from),
            ..Settings::new(url, Duration::from_secs(5))
        })
        .unwrap()
    };
    let real = client(mimir.ruler_url(), Some(TENANT));
    // An empty tenant: Mimir's 200 {} and Cortex' 404 are both no groups.
    assert!(block_on(real.list()).unwrap().is_empty());
    let cortex_client = client(cortex.url(), Some(TENANT));
    assert!(block_on(cortex_client.list()).unwrap().is_empty());
    // A group that is not there: Mimir answers 404 "group does not exist" only when its object
    // store reports the object missing (pkg/ruler/rulestore/bucketclient: GCS, Azure); the
    // filesystem store, like S3, deletes idempotently, so the real Mimir here says 202. Both are
    // "nothing left to delete" to the client.
    assert_eq!(
        block_on(real.delete("shop", "gone")).unwrap(),
        Deleted::Done
    );
    assert_eq!(
        block_on(cortex_client.delete("shop", "gone")).unwrap(),
        Deleted::Absent
    );
    let refused = block_on(real.set("shop", "g", "name: g\n".into())).unwrap_err();
    assert!(
        matches!(&refused, RulerError::Group { namespace, group, status: 400, message }
            if namespace == "shop" && group == "g"
                && message == "invalid rules configuration: rule group 'g' has no rules"),
        "{refused:?}"
    );
    // Mimir keeps durations as Prometheus does, and lists them in its form: 300s is 5m.
    let body = "name: g\ninterval: 300s\nrules:\n  - record: slo:x\n    expr: vector(1)\n";
    block_on(real.set("shop", "g", body.into())).unwrap();
    let listed = block_on(real.list()).unwrap();
    assert_eq!(listed["shop"][0].interval.as_deref(), Some("5m"));
    assert_eq!(block_on(real.delete("shop", "g")).unwrap(), Deleted::Done);
    assert!(block_on(real.list()).unwrap().is_empty());
    let anonymous = block_on(client(mimir.ruler_url(), None).list()).unwrap_err();
    assert!(
        matches!(anonymous, RulerError::Denied { status: 401, .. }),
        "{anonymous:?}"
    );
    // Mimir's buildinfo names its application beside its own version: not a Prometheus 2, so
    // SLOs over native histograms are not refused for it.
    let build: serde_json::Value = support::prometheus::http()
        .get(format!(
            "{}/api/v1/status/buildinfo",
            mimir.prometheus_url()
        ))
        .header("X-Scope-OrgID", TENANT)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(build["data"]["application"], "Grafana Mimir", "{build}");
    let reads = plimsoll::prometheus::Client::new(plimsoll::prometheus::Settings {
        extras: plimsoll::prometheus::Extras {
            tenant: Some(plimsoll::prometheus::Tenant::parse(TENANT).unwrap()),
            ..Default::default()
        },
        ..plimsoll::prometheus::Settings::new(mimir.prometheus_url(), Duration::from_secs(5))
    })
    .unwrap();
    assert_eq!(block_on(reads.version()).unwrap(), None, "{build}");
    assert_eq!(
        block_on(plimsoll::prometheus::version::check_native_histograms(
            &reads
        ))
        .unwrap(),
        Ok(())
    );
}

/// What Mimir answers for groups it refuses, as Plimsoll's client reports them.
#[test]
fn mimir_refuses_bad_groups_with_its_own_message() {
    use plimsoll::ruler::{Client, RulerError, Settings};
    let mimir = Mimir::start();
    let client = Client::new(Settings {
        tenant: Some(TENANT.into()),
        ..Settings::new(mimir.ruler_url(), Duration::from_secs(5))
    })
    .unwrap();
    let refusal = |body: &str| match block_on(client.set("shop", "g", body.into())).unwrap_err() {
        RulerError::Group {
            status, message, ..
        } => (status, message),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        refusal("name: [unclosed"),
        (400, "unable to decode rule group".into())
    );
    let (status, message) = refusal("name: g\nrules:\n  - record: a b\n    expr: sum(\n");
    assert_eq!(status, 400);
    assert!(message.contains("could not parse expression"), "{message}");
    assert!(
        message.contains("invalid recording rule name: a b"),
        "{message}"
    );
    assert_eq!(mimir.writes(), 0);
    assert!(mimir.groups(TENANT).is_empty());
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

    let mimir = Mimir::start_with(Options {
        http_port: Some(ruler_port),
        ..Options::default()
    });
    wait_until("the groups reach the ruler", || {
        mimir
            .names(TENANT)
            .get("shop")
            .is_some_and(|g| g.len() == 6)
    });
    wait_until("it says so", || {
        local.stderr().contains("every rule group in place again")
    });
    // Two more rounds, each listing once, write nothing: counted by the lists Mimir answered
    // rather than by a fixed sleep, in which a loaded machine may run no round at all.
    let settled = mimir.writes();
    let lists = || {
        mimir
            .requests()
            .iter()
            .filter(|r| r.method == "GET" && r.route == "prometheus_config_v1_rules")
            .map(|r| r.count)
            .sum::<u64>()
    };
    let listed = lists();
    wait_until("two more rounds list the groups", || lists() >= listed + 2);
    assert_eq!(
        mimir.writes(),
        settled,
        "unchanged groups are not written again"
    );

    std::fs::remove_file(slos.join("payments.yaml")).unwrap();
    wait_until("the removed SLO's groups are deleted", || {
        mimir
            .names(TENANT)
            .get("shop")
            .is_some_and(|g| g.len() == 4)
    });
    assert!(
        !mimir.names(TENANT)["shop"]
            .iter()
            .any(|g| g.contains("payments"))
    );
    assert_eq!(local.terminate(), Some(0));
}

/// Traffic for checkout, the demo's first SLO: recording rules of a Prometheus make
/// `http_requests_total` counters that grow every second, 0.05% of them 500s (half the error
/// budget of its 99.9%), and it remote-writes them to Mimir for the tenant.
///
/// Prometheus 3, not Debian's 2.42: the tenant travels in the remote write's `headers`, and
/// Debian's 2.42 sends none of them (its pushes lack `X-Scope-OrgID`, and Mimir answers each
/// `401 no org id`), where 3.x sends them as configured.
fn traffic_into(mimir: &Mimir, dir: &Path) -> support::prometheus::Prometheus {
    let rules = dir.join("traffic.yaml");
    std::fs::write(
        &rules,
        "groups:\n  - name: traffic\n    interval: 1s\n    rules:\n\
         \x20     - record: http_requests_total\n        expr: vector(time() * 19.99)\n\
         \x20       labels: {job: checkout, code: \"200\"}\n\
         \x20     - record: http_requests_total\n        expr: vector(time() * 0.01)\n\
         \x20       labels: {job: checkout, code: \"500\"}\n",
    )
    .unwrap();
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global: {{evaluation_interval: 1s}}\nrule_files: [{}]\nremote_write:\n  - url: {}\n    \
             headers: {{X-Scope-OrgID: {TENANT}}}\n    queue_config: {{batch_send_deadline: 1s}}\n",
            rules.display(),
            mimir.push_url()
        ),
    )
    .unwrap();
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    support::prometheus::Prometheus::start_on(
        support::prometheus::Version::Three,
        &data,
        &config,
        &[],
    )
}

/// One instant query through Mimir's query path for the tenant: the values of the vector.
fn query(mimir: &Mimir, expr: &str) -> Vec<f64> {
    let body: serde_json::Value = support::prometheus::http()
        .post(format!("{}/api/v1/query", mimir.prometheus_url()))
        .header("X-Scope-OrgID", TENANT)
        .form(&[("query", expr)])
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(body["status"], "success", "{expr}: {body}");
    body["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["value"][1].as_str().unwrap().parse().unwrap())
        .collect()
}

/// The whole path through the real Mimir: samples pushed to its distributor, our groups synced
/// into its ruler by `plimsoll local`, evaluated by that ruler into the tenant's series, and the
/// budget read back by `plimsoll local` through Mimir's query path. The slow group runs every
/// 5m at an offset of its own, and its 5m counts need traffic on their grid, so this waits
/// minutes (deadline 12).
#[test]
fn mimir_evaluates_our_rules_and_local_reads_the_budget_back() {
    let dir = tempfile::tempdir().unwrap();
    let slos = dir.path().join("slos");
    std::fs::create_dir_all(&slos).unwrap();
    std::fs::copy(
        support::repo().join("demo/slos/checkout.yaml"),
        slos.join("checkout.yaml"),
    )
    .unwrap();
    let mimir = Mimir::start();
    let _traffic = traffic_into(&mimir, dir.path());
    let once = || {
        Command::new(PLIMSOLL)
            .args(["local", "--once", "-f", slos.to_str().unwrap()])
            .arg(format!("--ruler-url={}", mimir.ruler_url()))
            .arg(format!("--tenant={TENANT}"))
            .arg(format!("--prometheus-url={}", mimir.prometheus_url()))
            .arg(format!("--prometheus-tenant={TENANT}"))
            .output()
            .unwrap()
    };
    let first = once();
    assert_eq!(
        text(&first.stderr)
            .matches(": created shop/plimsoll:shop:checkout-availability:")
            .count(),
        2,
        "the first round syncs both groups: {first:?}"
    );
    assert_eq!(mimir.names(TENANT)["shop"].len(), 2);
    let writes = mimir.writes();

    // The tenant's samples arrive through Mimir's distributor.
    wait_until_within("Mimir answers the tenant's http_requests_total", 60, || {
        query(&mimir, r#"http_requests_total{job="checkout"}"#).len() == 2
    });

    // The ruler evaluates the fast group every 30s, at Mimir's default evaluation delay of 1m
    // (`-ruler.evaluation-delay-duration`): the 5m error ratio, as Mimir answers it.
    let ratio = r#"slo:sli_error:ratio_rate5m{slo="checkout-availability"}"#;
    wait_until_within("the ruler records the 5m error ratio", 180, || {
        query(&mimir, ratio)
            .first()
            .is_some_and(|v| (v - 0.0005).abs() < 0.00005)
    });

    // Each round syncs (writing nothing) and reads; the first with the slow group's records in
    // Mimir measures the budget: half of it spent.
    let started = Instant::now();
    let deadline = started + Duration::from_secs(720);
    let table = loop {
        let out = once();
        if out.status.success() {
            break text(&out.stdout);
        }
        assert!(
            Instant::now() < deadline,
            "no budget within 12 minutes: {out:?}\nmimir:\n{}",
            mimir.log()
        );
        std::thread::sleep(Duration::from_secs(10));
    };
    eprintln!(
        "budget read after {:.0} s of rounds",
        started.elapsed().as_secs_f64()
    );
    let row = table
        .lines()
        .find(|l| l.starts_with("shop/checkout-availability"))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(row.contains("50%") || row.contains("50.0%"), "{table}");
    assert_eq!(mimir.writes(), writes, "later rounds write nothing");
}

fn wait_until(what: &str, done: impl Fn() -> bool) {
    wait_until_within(what, 30, done)
}

fn wait_until_within(what: &str, seconds: u64, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {seconds} s");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `cargo nextest run --test ruler --run-ignored only measure`: the time of a first sync of
/// 1,000 SLOs (2,000 groups) and of a second one that finds nothing to do, against the real
/// Mimir (its group and rule limits off: by default a tenant may hold 70 groups).
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
    let mimir = Mimir::start_with(Options {
        flags: vec![
            "-ruler.max-rule-groups-per-tenant=0".into(),
            "-ruler.max-rules-per-rule-group=0".into(),
        ],
        ..Options::default()
    });
    for round in ["first", "second"] {
        let started = Instant::now();
        let out = sync(&slos, &mimir.ruler_url(), Some(TENANT));
        assert!(out.status.success(), "{out:?}");
        println!(
            "{round} sync: {:.2} s, {} writes so far; {}",
            started.elapsed().as_secs_f64(),
            mimir.writes(),
            text(&out.stderr).trim()
        );
    }
    assert_eq!(mimir.writes(), 2000);
}
