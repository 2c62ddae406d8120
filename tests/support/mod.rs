//! Shared helpers for the integration tests.
#![allow(dead_code)]

pub mod cluster;
pub mod consumers;
pub mod counts;
pub mod crd_schema;
pub mod demo;
pub mod fault_proxy;
pub mod go_tools;
pub mod grafana;
pub mod helm;
pub mod kube;
pub mod loopback;
pub mod month;
pub mod prometheus;
pub mod thanos;
pub mod victoria_metrics;
pub mod webdriver;

use std::path::{Path, PathBuf};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The YAML files of a folder of the repository, in name order.
pub fn yaml_files(folder: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join(folder))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

/// What a file in tests/bad-input/ says about itself in its header comments.
pub struct BadInput {
    pub file: PathBuf,
    pub path: String,
    pub message: String,
    /// Layers that reject it: decode, schema, cel, model.
    pub layers: Vec<String>,
}

pub fn bad_inputs() -> Vec<BadInput> {
    yaml_files("tests/bad-input")
        .into_iter()
        .map(|file| {
            let text = std::fs::read_to_string(&file).unwrap();
            let header = |key: &str| {
                text.lines()
                    .find_map(|l| l.strip_prefix(&format!("# {key}: ")))
                    .unwrap_or_else(|| panic!("{} lacks `# {key}:`", file.display()))
                    .to_string()
            };
            let layers = header("layers")
                .split(',')
                .map(|l| l.trim().to_string())
                .collect();
            BadInput {
                path: header("expect-path"),
                message: header("expect-message"),
                layers,
                file,
            }
        })
        .collect()
}

/// The one document of a YAML file, as JSON.
pub fn document(file: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(file).unwrap();
    serde_saphyr::from_str(&text).unwrap()
}
