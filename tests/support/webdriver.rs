//! A real browser for tests: Debian's `chromedriver` driving headless `chromium` over the W3C
//! WebDriver protocol (https://www.w3.org/TR/webdriver2/), on 127.0.0.1, stopped on drop.
//!
//! The requests are the protocol's own: `POST /session` with `capabilities.alwaysMatch`
//! (`goog:chromeOptions` for the binary and flags, `goog:loggingPrefs` so the console can be
//! read), then `/session/{id}/url`, `/element`, `/element/{e}/text`, `/execute/sync`,
//! `/actions`, `/screenshot`; every POST carries a JSON body, and errors come back as
//! `{"value": {"error", "message"}}`. Chromium's console is read from chromedriver's
//! `POST /session/{id}/se/log` with `{"type": "browser"}` (each read drains it).
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The key WebDriver names element references by.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: reqwest::blocking::Client,
}

/// A reference to an element of the current page.
#[derive(Debug, Clone)]
pub struct Element(String);

impl Element {
    /// The element as a script argument (WebDriver's element reference object).
    pub fn as_argument(&self) -> Value {
        json!({ ELEMENT: self.0 })
    }
}

impl Browser {
    /// Starts chromedriver on a free loopback port and a headless Chromium session.
    pub fn start(log: &Path) -> Browser {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver is installed (make test installs Debian's chromium-driver)");
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::blocking::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(90))
            .build()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let mut browser = Browser {
            driver,
            base,
            session: String::new(),
            http,
        };
        browser.wait_ready();
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                         "--disable-gpu", "--window-size=1360,1000", "--no-first-run",
                         "--disable-extensions", "--disable-background-networking"],
            },
            "goog:loggingPrefs": {"browser": "ALL"},
            "timeouts": {"pageLoad": 30000, "script": 30000, "implicit": 0},
        }}});
        let answer = browser.call("POST", "/session", Some(capabilities));
        browser.session = answer["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {answer}"))
            .to_string();
        browser
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let ready = self
                .http
                .get(format!("{}/status", self.base))
                .timeout(Duration::from_secs(2))
                .send()
                .ok()
                .and_then(|r| r.json::<Value>().ok())
                .is_some_and(|v| v["value"]["ready"] == true);
            if ready {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("chromedriver did not become ready within 30 s");
    }

    /// One protocol call; returns `value`, panicking with the driver's error.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let request = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url).json(&body.unwrap_or_else(|| json!({}))),
        };
        let response = request
            .send()
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = response.status();
        let answer: Value = response.json().unwrap();
        assert!(
            status.is_success(),
            "{method} {path}: {status}: {}",
            answer["value"]
        );
        answer["value"].clone()
    }

    fn session_call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.call(method, &format!("/session/{}{path}", self.session), body)
    }

    pub fn goto(&self, url: &str) {
        self.session_call("POST", "/url", Some(json!({"url": url})));
    }

    pub fn current_url(&self) -> String {
        self.session_call("GET", "/url", None)
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Every element matching a CSS selector, now (no waiting).
    pub fn find_all(&self, css: &str) -> Vec<Element> {
        let found = self.session_call(
            "POST",
            "/elements",
            Some(json!({"using": "css selector", "value": css})),
        );
        found
            .as_array()
            .unwrap()
            .iter()
            .map(|e| Element(e[ELEMENT].as_str().unwrap().to_string()))
            .collect()
    }

    /// The first element matching `css`, waiting up to 30 s for it (a bound for a loaded
    /// machine; a page that has it answers at once).
    pub fn find(&self, css: &str) -> Element {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(e) = self.find_all(css).into_iter().next() {
                return e;
            }
            assert!(Instant::now() < deadline, "no element {css:?} within 30 s");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The text of an element as it is rendered (what a person reads).
    pub fn text(&self, element: &Element) -> String {
        self.session_call("GET", &format!("/element/{}/text", element.0), None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub fn attribute(&self, element: &Element, name: &str) -> Option<String> {
        self.session_call(
            "GET",
            &format!("/element/{}/attribute/{name}", element.0),
            None,
        )
        .as_str()
        .map(str::to_string)
    }

    pub fn click(&self, element: &Element) {
        self.session_call("POST", &format!("/element/{}/click", element.0), None);
    }

    /// Runs a script in the page and returns its result.
    pub fn execute(&self, script: &str, args: Value) -> Value {
        self.session_call(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
    }

    /// Presses keys as a keyboard would: each string is typed, `"\u{E004}"` is Tab,
    /// `"\u{E007}"` is Enter.
    pub fn keys(&self, text: &str) {
        let mut actions = Vec::new();
        for c in text.chars() {
            actions.push(json!({"type": "keyDown", "value": c.to_string()}));
            actions.push(json!({"type": "keyUp", "value": c.to_string()}));
        }
        self.session_call(
            "POST",
            "/actions",
            Some(json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]})),
        );
        self.session_call("DELETE", "/actions", None);
    }

    /// The focused element's id, tag and text, as a script sees it.
    pub fn focused(&self) -> Value {
        self.execute(
            "const e = document.activeElement; return {id: e.id, tag: e.tagName, text: \
             (e.innerText || '').trim(), outline: getComputedStyle(e).outlineStyle};",
            json!([]),
        )
    }

    /// The browser console since the last read.
    pub fn console(&self) -> Vec<Value> {
        self.session_call("POST", "/se/log", Some(json!({"type": "browser"})))
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// A PNG of the viewport, or of the whole page when `full` (the window grows to fit).
    pub fn screenshot(&self, path: &Path, full: bool) {
        let rect = if full {
            let height = self.execute(
                "return Math.ceil(document.documentElement.scrollHeight);",
                json!([]),
            );
            let height = height.as_u64().unwrap_or(1000).clamp(600, 6000);
            Some(self.session_call(
                "POST",
                "/window/rect",
                Some(json!({"width": 1360, "height": height})),
            ))
        } else {
            None
        };
        let png = self.session_call("GET", "/screenshot", None);
        let bytes = decode_base64(png.as_str().unwrap());
        assert!(bytes.starts_with(b"\x89PNG"), "a PNG");
        std::fs::write(path, bytes).unwrap();
        if rect.is_some() {
            self.session_call(
                "POST",
                "/window/rect",
                Some(json!({"width": 1360, "height": 1000})),
            );
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self
                .http
                .delete(format!("{}/session/{}", self.base, self.session))
                .send();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Standard base64 (RFC 4648), as WebDriver sends screenshots.
fn decode_base64(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut buffer, mut bits) = (0u32, 0);
    for v in text.bytes().filter_map(value) {
        buffer = (buffer << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    out
}
