//! Prometheus: the HTTP API client and the batched status query.

pub mod client;
pub mod readings;

pub use client::{Client, Error, Reload, Sample, Series, Settings};
pub use readings::{
    AGES_QUERY, RATIOS_QUERY, SeriesKey, newest, period_query, period_ratios, readings,
};
