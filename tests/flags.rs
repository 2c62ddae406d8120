//! One spelling per flag: every command's flags for the same thing, as one table read from the
//! command line `plimsoll` parses, and the old spellings still accepted (hidden) for a release.

use std::process::Command;

use clap::Arg;

/// What a user means, and the spelling each command takes for it (empty: the command has none).
const TABLE: &str = "
what                      | validate                       | generate       | import         | gate                           | local                          | run
SLO manifests             | -f/--filename                  | -f/--filename  | -f/--filename  | -f/--filename                  | -f/--filename                  |
namespace of manifests    | -n/--namespace                 | -n/--namespace | -n/--namespace |                                | -n/--namespace                 |
namespaces to watch       |                                |                |                |                                |                                | --watch-namespace
Prometheus URL            | --prometheus-url               |                |                | --prometheus-url               | --prometheus-url               | --prometheus-url
query timeout             | --prometheus-timeout           |                |                | --prometheus-timeout           | --prometheus-timeout           | --prometheus-timeout
bearer token file         | --prometheus-bearer-token-file |                |                | --prometheus-bearer-token-file | --prometheus-bearer-token-file | --prometheus-bearer-token-file
basic auth user           | --prometheus-user              |                |                | --prometheus-user              | --prometheus-user              | --prometheus-user
basic auth password       | --prometheus-password          |                |                | --prometheus-password          | --prometheus-password          | --prometheus-password
CA file                   | --prometheus-ca-file           |                |                | --prometheus-ca-file           | --prometheus-ca-file           | --prometheus-ca-file
tenant                    | --prometheus-tenant            |                |                | --prometheus-tenant            | --prometheus-tenant            | --prometheus-tenant
extra header              | --prometheus-header            |                |                | --prometheus-header            | --prometheus-header            | --prometheus-header
Thanos partial response   | --prometheus-partial-response  |                |                | --prometheus-partial-response  | --prometheus-partial-response  | --prometheus-partial-response
reading selector          |                                |                |                | --reading-selector             | --reading-selector             | --reading-selector
";

/// The argument id behind each row.
const IDS: &[(&str, &str)] = &[
    ("SLO manifests", "filenames"),
    ("namespace of manifests", "namespace"),
    ("namespaces to watch", "namespaces"),
    ("Prometheus URL", "prometheus_url"),
    ("query timeout", "prometheus_timeout"),
    ("bearer token file", "prometheus_bearer_token_file"),
    ("basic auth user", "prometheus_user"),
    ("basic auth password", "prometheus_password"),
    ("CA file", "prometheus_ca_file"),
    ("tenant", "prometheus_tenant"),
    ("extra header", "prometheus_headers"),
    ("Thanos partial response", "prometheus_partial_response"),
    ("reading selector", "reading_selector"),
];

fn spelling(arg: &Arg) -> String {
    let long = arg.get_long().map(|l| format!("--{l}")).unwrap_or_default();
    match arg.get_short() {
        Some(short) => format!("-{short}/{long}"),
        None => long,
    }
}

fn cells(line: &str) -> Vec<String> {
    line.split('|').map(|c| c.trim().to_string()).collect()
}

#[test]
fn each_thing_has_one_spelling_in_every_command() {
    let command = plimsoll::cli::command();
    let mut lines = TABLE.trim().lines();
    let header = cells(lines.next().unwrap());
    let commands = &header[1..];
    let mut actual = vec![header.join(" | ")];
    for line in lines {
        let row = cells(line);
        let id = IDS.iter().find(|(what, _)| *what == row[0]).unwrap().1;
        let mut got = vec![row[0].clone()];
        for name in commands {
            let sub = command.find_subcommand(name).unwrap();
            got.push(
                sub.get_arguments()
                    .find(|a| a.get_id() == id)
                    .map(spelling)
                    .unwrap_or_default(),
            );
        }
        actual.push(got.join(" | "));
    }
    let expected: Vec<String> = TABLE.trim().lines().map(|l| cells(l).join(" | ")).collect();
    assert_eq!(actual, expected, "\n{}", actual.join("\n"));
}

#[test]
fn no_command_shows_the_old_spellings_and_every_command_still_takes_them() {
    let command = plimsoll::cli::command();
    let old = ["prometheus", "timeout", "bearer-token-file", "slos"];
    for sub in command.get_subcommands() {
        for arg in sub.get_arguments() {
            let long = arg.get_long().unwrap_or_default();
            assert!(
                !old.contains(&long),
                "plimsoll {} shows --{long}",
                sub.get_name()
            );
        }
    }
    let parses = |args: &[&str]| {
        let mut all = vec!["plimsoll"];
        all.extend_from_slice(args);
        plimsoll::cli::try_parse_from(all).map(|_| ())
    };
    for args in [
        &[
            "local",
            "--slos",
            "slos/",
            "--prometheus",
            "http://p:9090",
            "--timeout=5s",
            "--bearer-token-file=/t",
            "--rules-out=r/",
        ][..],
        &[
            "gate",
            "--slo=shop/a",
            "--min-budget=10",
            "--prometheus-url=http://p:9090",
            "--timeout=5s",
            "--bearer-token-file=/t",
        ],
        &["run", "--namespace=shop,team"],
    ] {
        assert!(parses(args).is_ok(), "{args:?}: {:?}", parses(args));
    }
}

fn plimsoll(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_plimsoll"));
    command.args(args).env_remove("PLIMSOLL_PROMETHEUS_URL");
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().unwrap()
}

#[test]
fn validate_stays_offline_with_the_operators_environment() {
    let example = format!(
        "{}/examples/checkout-availability.yaml",
        env!("CARGO_MANIFEST_DIR")
    );
    // Nothing listens on port 9: an online check would fail with exit 2.
    let unreachable = [("PLIMSOLL_PROMETHEUS_URL", "http://127.0.0.1:9")];
    let out = plimsoll(&["validate", &example], &unreachable);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let out = plimsoll(
        &["validate", &example, "--prometheus-url=http://127.0.0.1:9"],
        &[],
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "asked for, it is online: {out:?}"
    );
    // --strict offline fails on the offline warnings (tests/cli.rs); this example has none, and
    // the environment's URL still does not make it ask Prometheus.
    let out = plimsoll(&["validate", &example, "--strict"], &unreachable);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

#[test]
fn local_and_gate_without_prometheus_say_which_flag() {
    let out = plimsoll(&["local", "-f", "slos/", "--rules-out=r/", "--once"], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        stderr.contains("--prometheus-url URL (or PLIMSOLL_PROMETHEUS_URL)"),
        "{stderr}"
    );
    let out = plimsoll(&["gate", "--slo=shop/a", "--min-budget=10"], &[]);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(said.contains("--prometheus-url URL"), "{said}");
}
