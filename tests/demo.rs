//! `make demo` end to end: runs scripts/demo.sh (what `make demo` runs after building) with this
//! build of plimsoll, and checks that the three services end in their states, that the payments
//! rollback is decided, and that the script leaves no Prometheus and no files behind.

mod support;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What `make demo` promises; the test fails well before the test runner would give up.
const LIMIT: Duration = Duration::from_secs(180);

#[test]
fn the_demo_ends_healthy_burning_and_exhausted_and_cleans_up() {
    let scratch = tempfile::tempdir().unwrap();
    let mut child = Command::new("bash")
        .arg(support::repo().join("scripts/demo.sh"))
        .env("PLIMSOLL", env!("CARGO_BIN_EXE_plimsoll"))
        .env("TMPDIR", scratch.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > LIMIT {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
            panic!("the demo did not finish within {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let (mut stdout, mut stderr) = (String::new(), String::new());
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    eprintln!("{stderr}{stdout}");
    eprintln!("demo took {:?}", started.elapsed());
    assert!(status.success(), "{status:?}");

    let row = |slo: &str| -> Vec<String> {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("{slo}  ")))
            .unwrap_or_else(|| panic!("no row for {slo}"));
        line.split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(String::from)
            .collect()
    };
    let tail = |slo: &str| -> Vec<String> { row(slo).split_off(row(slo).len() - 2) };
    assert_eq!(tail("shop/catalog-availability"), ["Healthy", "none"]);
    assert_eq!(tail("shop/checkout-availability"), ["Burning", "none"]);
    assert_eq!(
        tail("shop/payments-availability"),
        ["Exhausted", "ROLL BACK"]
    );
    let budget = |slo: &str| -> f64 { row(slo)[3].trim_end_matches('%').parse().unwrap() };
    assert!(budget("shop/catalog-availability") > 50.0);
    assert!((0.0..60.0).contains(&budget("shop/checkout-availability")));
    assert!(budget("shop/payments-availability") < 0.0);
    assert!(stdout.contains(
        "3 SLO(s): 1 Healthy, 1 Burning, 1 Exhausted. Roll back: shop/payments-availability."
    ));
    assert!(
        stderr.contains("Prometheus reloaded its rule files"),
        "{stderr}"
    );

    assert_cleaned_up(scratch.path());
}

/// Everything the demo started is gone: its directory and any process that used it.
fn assert_cleaned_up(scratch: &std::path::Path) {
    let leftovers: Vec<_> = std::fs::read_dir(scratch)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let scratch_path = scratch.to_string_lossy().into_owned();
    let running: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(&scratch_path))
        .collect();
    assert!(running.is_empty(), "still running: {running:?}");
}

/// `make demo-ui`: after the table the demo serves the UI at the address it prints, until
/// Ctrl-C (SIGINT to its process group, as a terminal sends it), and then cleans up as before.
#[test]
fn demo_ui_serves_the_pages_until_ctrl_c_and_cleans_up() {
    use std::os::unix::process::CommandExt;
    let scratch = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log = scratch.path().join("demo.log");
    std::fs::create_dir_all(scratch.path().join("work")).unwrap();
    let mut child = Command::new("bash")
        .arg(support::repo().join("scripts/demo.sh"))
        .env("PLIMSOLL", env!("CARGO_BIN_EXE_plimsoll"))
        .env("TMPDIR", scratch.path().join("work"))
        .env("DEMO_UI", "1")
        .env("DEMO_UI_LISTEN", format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
        .process_group(0)
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/ui");
    let said = format!("serving the UI at {url}");
    let started = Instant::now();
    let page = loop {
        let printed = std::fs::read_to_string(&log).unwrap_or_default();
        if printed.contains(&said)
            && let Ok(page) = support::prometheus::http()
                .get(&url)
                .timeout(Duration::from_secs(5))
                .send()
                .and_then(|r| r.text())
            && page.contains("payments-availability")
            && page.contains("read ")
        {
            break page;
        }
        assert!(
            started.elapsed() < LIMIT && child.try_wait().unwrap().is_none(),
            "no UI at {url}: {printed}"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    for slo in ["catalog", "checkout", "payments"] {
        assert!(
            page.contains(&format!("/ui/slo/shop/{slo}-availability")),
            "{page}"
        );
    }
    let group = format!("-{}", child.id());
    assert!(
        Command::new("kill")
            .args(["-INT", "--", &group])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "still running 20 s after Ctrl-C");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_cleaned_up(&scratch.path().join("work"));
}
