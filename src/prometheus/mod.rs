//! Prometheus: the HTTP API client, the reading scope, and the batched status read.

pub mod answer;
pub mod client;
pub mod period;
pub mod read;
pub mod readings;
pub mod request;
pub mod scope;
pub mod series_check;
pub mod version;

pub use answer::{Fetched, Sample, Series};
pub use client::{Client, Error, Reload, Settings};
pub use read::{CalendarSlo, loaded_rule_groups, read, read_for};
pub use readings::{Failure, Foreign, Identity, LoadedRules, Readings, own};
pub use request::{Extras, Header, Tenant};
pub use scope::{ReadingScope, ScopeError};
