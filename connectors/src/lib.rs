//! Sources and sinks of riskwatch: NDJSON files, the built-in generator, Kafka and
//! webhooks, with their wire formats and dead-lettering.
//!
//! - [`error`]: the connectors' error type ([`error::ConnectorError`]), transient or
//!   permanent.
//! - [`file`]: NDJSON files (replay input, file outputs).
//! - [`generator`]: the synthetic loan book.
//! - [`kafka`]: Kafka source and sinks.
//! - [`webhook`]: signed webhook delivery through the outbox, and the receiver kit.
#![warn(missing_docs)]

pub mod error;
pub mod file;
pub mod generator;
pub mod kafka;
pub mod webhook;
