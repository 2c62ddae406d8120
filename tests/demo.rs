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

    // Everything it started is gone: its directory and any process that used it.
    let leftovers: Vec<_> = std::fs::read_dir(scratch.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let scratch_path = scratch.path().to_string_lossy().into_owned();
    let running: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(&scratch_path))
        .collect();
    assert!(running.is_empty(), "still running: {running:?}");
}
