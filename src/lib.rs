//! Plimsoll: ServiceLevelObjectives in, Prometheus rules, live error budgets and rollback signals
//! out.
#![forbid(unsafe_code)]

pub mod api;
pub mod cli;
pub mod manifests;
pub mod model;
