//! The riskwatch computation: typed events in, typed alerts out, as timely + differential
//! dataflow. No sockets, files or brokers here; tests drive it with in-memory inputs.
//!
//! - [`graph`]: the dataflow graph and its [`graph::Plan`].
//! - [`operators`]: the custom operators (`Ledger`, `Evaluate`).
//! - [`ledger`]: per-customer balance, limit, schedule and repayment allocation.
//! - [`layout`], [`slots`]: window × measure slots and the vector difference type.
//! - [`rules`], [`strategy`], [`evaluate`]: CEL rules, scorecard, levels and alert semantics.
//! - [`plan`]: building a [`graph::Plan`] from a config.
//! - [`rings`]: fraud rings as connected components of shared identifiers, with hubs ignored.
//! - [`actions`]: the action policy: limit and pricing decisions under guardrails.
//! - [`cases`]: collection cases: open, escalate, update and close per episode.
//! - [`stats`]: per-worker counters.
//! - [`checkpoint`]: operator state as key-value records, and restoring from them.
#![warn(missing_docs)]

pub mod actions;
pub mod cases;
pub mod checkpoint;
pub mod evaluate;
pub mod graph;
pub mod layout;
pub mod ledger;
pub mod operators;
pub mod plan;
pub mod rings;
pub mod rules;
pub mod slots;
pub mod snapshot;
pub mod stats;
pub mod strategy;
