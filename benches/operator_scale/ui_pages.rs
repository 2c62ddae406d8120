//! The web UI at scale: pages of the running operator, timed as a browser would wait for them
//! (request sent to body read), with their sizes.

use std::time::{Duration, Instant};

use crate::processes::{Operator, Seeded};

/// One page: what was asked, its size in bytes, and the median and slowest of five loads (ms).
pub struct PageTiming {
    pub path: String,
    pub bytes: usize,
    pub median_ms: f64,
    pub max_ms: f64,
}

/// The list (first page, a deep page sorted by name, a text filter, a state filter) and one SLO's
/// page.
pub fn measure(operator: &Operator, seeded: &[Seeded]) -> Vec<PageTiming> {
    let some = &seeded[seeded.len() / 2];
    let paths = [
        "/ui".to_string(),
        format!("/ui?sort=name&page={}", (seeded.len() / 50 / 2).max(1)),
        format!("/ui?q={}", some.name),
        "/ui?state=Healthy&sort=burn".to_string(),
        format!("/ui/slo/{}/{}", some.namespace, some.name),
    ];
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .no_proxy()
        .build()
        .unwrap();
    paths
        .into_iter()
        .map(|path| {
            let mut times = Vec::new();
            let mut bytes = 0;
            for _ in 0..5 {
                let started = Instant::now();
                let response = http
                    .get(format!("http://127.0.0.1:{}{path}", operator.port))
                    .send()
                    .unwrap();
                assert!(
                    response.status().is_success(),
                    "{path}: {}",
                    response.status()
                );
                bytes = response.bytes().unwrap().len();
                times.push(started.elapsed().as_secs_f64() * 1000.0);
            }
            times.sort_by(f64::total_cmp);
            PageTiming {
                path,
                bytes,
                median_ms: times[2],
                max_ms: times[4],
            }
        })
        .collect()
}
