//! Kafka: the source of the four input topics (static partition assignment, watermarks,
//! frontier, backpressure, dead letters), a generic JSON sink for the output topics, and a
//! probe of the brokers and topics for `check-config --connect`.
//! Semantics and operations: docs/KAFKA.md.

pub mod config;
pub mod metrics;
pub mod probe;
pub mod sink;
pub mod source;
#[cfg(test)]
mod tests;

pub use config::validate;
pub use metrics::KafkaMetrics;
pub use probe::{describe_partitions, BrokerError, BrokerFailure, Probe};
/// The Kafka client library, re-exported so tools in the root package (produce, consume,
/// the Kafka bench) use the same version without depending on it directly.
pub use rdkafka;
pub use sink::{KafkaSink, TopicWriter};
pub use source::{
    assign_partitions, kafka_seq, partition_counts, EndOffsets, KafkaSource, PartitionCheckpoint,
    PartitionId, SourceCheckpoint, SourceSettings, SourceStats, END_OFFSETS_INTERVAL_MS,
};
