//! Kafka: the source of the four input topics (static partition assignment, watermarks,
//! frontier, backpressure, dead letters) and a generic JSON sink for the output topics.
//! Semantics and operations: docs/KAFKA.md.

pub mod config;
pub mod metrics;
pub mod sink;
pub mod source;
#[cfg(test)]
mod tests;

pub use metrics::KafkaMetrics;
pub use sink::{KafkaSink, TopicWriter};
pub use source::{
    assign_partitions, kafka_seq, partition_counts, KafkaSource, PartitionId, SourceSettings,
    SourceStats,
};
