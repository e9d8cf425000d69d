//! The `riskwatch` binary's library: the commands, wired from the workspace crates.
//!
//! - [`pipeline`]: runs the dataflow over in-memory events on W worker threads.
//! - [`replay`]: `riskwatch replay` (files in, files out) and config loading.
//! - [`demo`]: `riskwatch demo` (generate, replay, report).
//! - [`bench`]: `riskwatch bench` (replay throughput, open-loop latency).
//! - [`quality`]: detection quality against a generated book's truth.
#![warn(missing_docs)]

pub mod bench;
pub mod demo;
pub mod pipeline;
pub mod quality;
pub mod replay;
