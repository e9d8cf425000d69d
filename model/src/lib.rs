//! riskwatch's shared vocabulary: the wire contracts (input events and output records),
//! the configuration tree, and the error enums. Serde only; every other crate depends on
//! this one and it depends on none of them.
//!
//! - [`event`]: decoded input events as they flow through the dataflow.
//! - [`decode`]: NDJSON/JSON record → [`event::Event`] with contract validation and a fixed
//!   reject reason code for every failure.
//! - [`output`]: alerts, decisions, cases, rejected records and their JSON form.
//! - [`config`]: the configuration tree (features, windows, rules, scorecard, levels).
//! - [`metrics`]: the catalogue of every Prometheus metric (names, types, labels).
#![warn(missing_docs)]

pub mod config;
pub mod decode;
pub mod event;
pub mod metrics;
pub mod output;
pub mod snapshot;
pub mod time;
