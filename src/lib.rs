//! The `riskwatch` binary's library: the commands, wired from the workspace crates.
//!
//! - [`pipeline`]: runs the dataflow over in-memory events on W worker threads.
//! - [`replay`]: `riskwatch replay` (files in, files out) and config loading.
//! - [`reload`]: live strategy changes in `riskwatch run` (file change, SIGHUP).
//! - [`state`]: state directories: fingerprints, restoring, the checkpoint committer.
//! - [`exit`]: the exit codes of every command, and which error gets which.
//! - [`connect_check`]: `riskwatch check-config --connect` (brokers, topics, the partition
//!   assignment, webhook endpoints, files-mode directories).
//! - [`deliveries`]: webhook deliveries through the outbox of a state directory.
//! - [`demo`]: `riskwatch demo` (generate, replay, report).
//! - [`bench`]: `riskwatch bench` (replay throughput, open-loop latency).
//! - [`bench_restart`]: `riskwatch bench --restart` (checkpoint cost, state size, restart time).
//! - [`quality`]: detection quality against a generated book's truth.
//! - [`compare`]: `riskwatch compare` (two configs backtested side by side).
//! - [`metrics`]: the Prometheus registry and the `/metrics`, `/health`, `/ready` server.
//! - [`live_checkpoint`]: checkpoint rounds of the live pipeline.
//! - [`live`]: `riskwatch run` (files, or Kafka on a worker cluster).
//! - [`produce`]: `riskwatch produce` and `riskwatch consume` (a book into the input topics,
//!   a topic into a file).
//! - [`bench_kafka`]: `riskwatch bench --kafka` (end-to-end throughput and latency through a
//!   broker).
#![warn(missing_docs)]

pub mod bench;
pub mod bench_kafka;
pub mod bench_restart;
pub mod bench_scrape;
pub mod compare;
pub mod connect_check;
pub mod deliveries;
pub mod demo;
pub mod evaluation;
pub mod exit;
pub mod feed;
pub mod live;
pub mod live_checkpoint;
pub mod metrics;
pub mod output_counts;
pub mod pipeline;
pub mod produce;
pub mod progress;
pub mod quality;
pub mod reload;
pub mod replay;
pub mod report;
pub mod snapshot_writer;
pub mod state;
mod stop;
pub mod writer;
