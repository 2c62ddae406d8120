//! The web UI in a real browser: `plimsoll local` serving the demo's month from a real
//! Prometheus, and headless Chromium (Debian's chromium with chromium-driver, over WebDriver)
//! loading the list and an SLO's page as a person would. What is asserted is what a person sees:
//! the names, the numbers `/status` gives, charts with points, a filter that works from the
//! keyboard, readable contrast, and a console without errors. Screenshots of both pages are
//! written to `<target>/tmp/ui-screenshots/` (and to docs/ with PLIMSOLL_DOCS_SCREENSHOTS=1, which
//! is how the README's pictures are made).

mod support;

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use support::demo::{Local, demo_history, prometheus_with_rules};
use support::webdriver::Browser;

const TAB: &str = "\u{E004}";
const ENTER: &str = "\u{E007}";

/// Text elements whose contrast is below WCAG AA (4.5:1, or 3:1 for large text), with their
/// colors: the text's color (an SVG text's fill) against the first opaque background behind it.
const CONTRAST: &str = r#"
const rgb = c => { const m = /rgba?\(([^)]+)\)/.exec(c || ''); return m ? m[1].split(',').map(parseFloat) : null; };
const lin = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
const lum = p => 0.2126 * lin(p[0]) + 0.7152 * lin(p[1]) + 0.0722 * lin(p[2]);
const behind = el => {
  for (; el; el = el.parentElement) {
    const p = rgb(getComputedStyle(el).backgroundColor);
    if (p && (p.length < 4 || p[3] > 0)) return p;
  }
  return [255, 255, 255];
};
const bad = [];
let checked = 0;
for (const el of document.querySelectorAll('body *')) {
  const own = Array.from(el.childNodes).some(n => n.nodeType === 3 && n.textContent.trim());
  if (!own) continue;
  const s = getComputedStyle(el);
  const box = el.getBoundingClientRect();
  if (s.display === 'none' || s.visibility === 'hidden' || box.width === 0 || box.right < 0) continue;
  const fg = rgb(el instanceof SVGElement ? s.fill : s.color);
  if (!fg) continue;
  const [a, b] = [lum(fg), lum(behind(el))];
  const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  const size = parseFloat(s.fontSize), weight = parseInt(s.fontWeight, 10);
  const large = size >= 24 || (size >= 18.66 && weight >= 700);
  checked += 1;
  if (ratio < (large ? 3 : 4.5)) bad.push({text: el.textContent.trim().slice(0, 40), ratio, color: s.color});
}
return {checked, bad};
"#;

fn screenshots() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ui-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The page's console must hold no errors (and no warnings: CSP reports are warnings).
fn assert_quiet_console(browser: &Browser, page: &str) {
    let noisy: Vec<Value> = browser
        .console()
        .into_iter()
        .filter(|e| e["level"] == "SEVERE" || e["level"] == "WARNING")
        .collect();
    assert!(noisy.is_empty(), "{page}: console: {noisy:?}");
}

fn assert_readable(browser: &Browser, page: &str) {
    let result = browser.execute(CONTRAST, json!([]));
    assert!(result["checked"].as_u64().unwrap() > 30, "{page}: {result}");
    assert_eq!(result["bad"], json!([]), "{page}: low contrast");
}

fn save(browser: &Browser, name: &str) {
    let path = screenshots().join(name);
    browser.screenshot(&path, true);
    eprintln!("screenshot: {}", path.display());
    if std::env::var_os("PLIMSOLL_DOCS_SCREENSHOTS").is_some() {
        let docs = support::repo().join("docs");
        std::fs::create_dir_all(&docs).unwrap();
        std::fs::copy(&path, docs.join(name)).unwrap();
    }
}

fn status_of<'a>(status: &'a Value, key: &str) -> &'a Value {
    let entry = status["slos"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["slo"] == key)
        .unwrap_or_else(|| panic!("{key} in /status"));
    &entry["status"]
}

/// The list's rows as a person reads them: the row's key, and each cell's text.
fn rows(browser: &Browser) -> Vec<(String, Vec<String>)> {
    browser
        .find_all("#slos tbody tr")
        .iter()
        .map(|row| {
            let key = browser.attribute(row, "data-slo").unwrap();
            let cells = browser.execute(
                "return Array.from(arguments[0].cells).map(c => c.innerText.trim());",
                json!([row.as_argument()]),
            );
            let cells = cells
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap().to_string())
                .collect();
            (key, cells)
        })
        .collect()
}

#[test]
fn the_ui_shows_the_demo_in_a_real_browser() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    demo_history(dir);
    let (prometheus, rules) = prometheus_with_rules(dir);
    let local = Local::start(
        dir,
        &support::repo().join("demo/slos"),
        &rules,
        &prometheus.url,
    );
    let status = local.wait_for("three SLOs with data", |s| {
        let slos = s["slos"].as_array().unwrap();
        slos.len() == 3 && slos.iter().all(|e| e["decision"] != "NoData")
    });
    let ui = format!("http://127.0.0.1:{}", local.port);
    let browser = Browser::start(&dir.join("chromedriver.log"));

    // The list: every SLO with the numbers of /status, worst budget first.
    browser.goto(&format!("{ui}/ui"));
    browser.find("#slos tbody tr");
    let seen = rows(&browser);
    let keys: Vec<&str> = seen.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "shop/payments-availability",
            "shop/checkout-availability",
            "shop/catalog-availability"
        ],
        "least budget left first"
    );
    for (key, cells) in &seen {
        let s = status_of(&status, key);
        let (namespace, name) = key.split_once('/').unwrap();
        assert_eq!(cells[0], namespace);
        assert_eq!(cells[1], name);
        assert_eq!(cells[3], "99.9% / 30d");
        assert_eq!(
            cells[4],
            format!("{}%", s["sli"].as_str().unwrap()),
            "{key}"
        );
        assert_eq!(
            cells[5],
            format!("{}%", s["errorBudget"]["remaining"].as_str().unwrap()),
            "{key}"
        );
        let state = s["rollback"]["state"].as_str().unwrap();
        assert_eq!(cells[7], state, "{key}");
        assert!(cells[9].starts_with("read "), "{key}: {}", cells[9]);
    }
    assert_eq!(seen[0].1[8], "ROLL BACK");
    let burn = &seen[0].1[6];
    assert!(
        burn.starts_with("5m ")
            && burn.contains(" · 6h ")
            && burn.ends_with(&format!(
                "3d {}",
                status_of(&status, "shop/payments-availability")["burnRates"]["3d"]
                    .as_str()
                    .unwrap()
            )),
        "burn rates shortest window first: {burn}"
    );
    let sparks = browser.find_all("#slos svg.spark polyline");
    assert_eq!(sparks.len(), 3, "a sparkline per SLO");
    for spark in &sparks {
        let points: u64 = browser
            .attribute(spark, "data-points")
            .unwrap()
            .parse()
            .unwrap();
        assert!(points >= 20, "{points} points");
    }
    assert_quiet_console(&browser, "list");
    assert_readable(&browser, "list");
    save(&browser, "ui-list.png");

    // From the keyboard: the skip link first, then the brand, then the search box; typing and
    // Enter filters.
    browser.goto(&format!("{ui}/ui"));
    browser.find("#slos");
    browser.keys(TAB);
    let focused = browser.focused();
    assert_eq!(focused["text"], "Skip to content", "{focused}");
    assert_ne!(focused["outline"], "none", "focus is visible");
    browser.keys(&TAB.repeat(2));
    assert_eq!(browser.focused()["id"], "q", "{}", browser.focused());
    browser.keys(&format!("checkout{ENTER}"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !browser.current_url().contains("q=checkout") {
        assert!(std::time::Instant::now() < deadline, "the filter submitted");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    browser.find("#slos");
    let filtered = rows(&browser);
    assert_eq!(filtered.len(), 1);
    assert_eq!(filtered[0].0, "shop/checkout-availability");
    assert_eq!(browser.text(&browser.find("#matched")), "1 matching SLO(s)");
    browser.goto(&format!("{ui}/ui?state=Healthy"));
    browser.find("#slos");
    let healthy = rows(&browser);
    assert_eq!(healthy.len(), 1);
    assert_eq!(healthy[0].0, "shop/catalog-availability");

    // One SLO: reached by its link; the headline numbers are the status', the charts have points.
    browser.goto(&format!("{ui}/ui"));
    let link = browser.find("#slos a[href='/ui/slo/shop/payments-availability']");
    browser.click(&link);
    browser.find("#burn-down-chart");
    let s = status_of(&status, "shop/payments-availability");
    let headline = |id: &str| browser.text(&browser.find(&format!("#{id} b")));
    assert_eq!(headline("sli"), format!("{}%", s["sli"].as_str().unwrap()));
    assert_eq!(
        headline("remaining"),
        format!("{}%", s["errorBudget"]["remaining"].as_str().unwrap())
    );
    assert_eq!(
        headline("consumed"),
        format!(
            "{} / {} min",
            s["errorBudget"]["consumedMinutes"].as_str().unwrap(),
            s["errorBudget"]["totalMinutes"].as_str().unwrap()
        )
    );
    assert_eq!(headline("decision"), "ROLL BACK");
    let line = |chart: &str, label: &str| -> u64 {
        let css = format!("#{chart} polyline[data-label='{label}']");
        browser
            .attribute(&browser.find(&css), "data-points")
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(line("burn-down-chart", "budget left") >= 100);
    assert_eq!(line("burn-down-chart", "even spend"), 2);
    assert!(line("error-ratio-chart", "error ratio") >= 50);
    let thresholds = browser.find_all("#error-ratio-chart polyline[data-label^='page']");
    assert_eq!(thresholds.len(), 2, "14.4x and 6x page thresholds");
    // The burn-down ends where the status says the budget is.
    let ends = browser.execute(
        "return document.getElementById('burn-down-chart-desc').textContent;",
        json!([]),
    );
    let remaining = s["errorBudget"]["remaining"].as_str().unwrap();
    assert!(
        ends.as_str()
            .unwrap()
            .contains(&format!("to {remaining}% now")),
        "{ends}"
    );
    let page = browser.text(&browser.find("main"));
    for expected in [
        "Burn rates",
        "Alerts now",
        "Triggers on budget left below 0%, or a 1h burn rate above 14.4",
        "Deployment",
        "Recent Events",
        "plimsoll/shop/payments-availability/fast",
        "kind: ServiceLevelObjective",
    ] {
        assert!(page.contains(expected), "{expected:?} on the SLO's page");
    }
    assert_quiet_console(&browser, "slo");
    assert_readable(&browser, "slo");
    save(&browser, "ui-slo.png");

    // An SLO that does not exist is a page that says so, not an error in the console.
    browser.goto(&format!("{ui}/ui/slo/shop/nope"));
    assert_eq!(browser.text(&browser.find("h1")), "No such SLO");
}
