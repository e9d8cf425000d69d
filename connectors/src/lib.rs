//! Sources and sinks of riskwatch: NDJSON files, the built-in generator, Kafka and
//! webhooks, with their wire formats and dead-lettering.
#![warn(missing_docs)]

pub mod file;
pub mod generator;
