//! Plimsoll: ServiceLevelObjectives in, Prometheus rules, live error budgets and rollback signals
//! out.
#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod access;
pub mod actions;
pub mod api;
pub mod budget;
pub mod cli;
pub mod controller;
pub mod demo;
pub mod evaluator;
pub mod import;
pub mod kube_client;
pub mod local;
pub mod manifests;
pub mod metrics;
pub mod model;
pub mod prometheus;
pub mod ruler;
pub mod rules;
pub mod server;
pub mod slo_cache;
pub mod small_map;
pub mod synthetic;
pub mod telemetry;
pub mod ui;
pub mod webhook;
