//! Prometheus metrics of the Kafka source and sink: every name in one place.
//!
//! Registered once per process ([`KafkaMetrics::register`]); sources and sinks bind their
//! label handles once at construction and add per batch (`inc_by`), never per record.
//! Labels come from small bounded sets: `source` (the four input streams), `partition`
//! (a topic's partitions), `reason` (the fixed reject codes), `worker`, `topic` (the
//! configured output topics).

use prometheus::{GaugeVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry};

/// The Kafka connectors' metrics. Cloning shares the same series.
#[derive(Clone, Debug)]
pub struct KafkaMetrics {
    /// `riskwatch_kafka_source_records_total{source, partition}`: records consumed, valid
    /// or not.
    pub records: IntCounterVec,
    /// `riskwatch_kafka_source_bytes_total{source}`: record payload bytes consumed.
    pub bytes: IntCounterVec,
    /// `riskwatch_kafka_source_rejected_records_total{source, reason}`: records sent to the
    /// dead-letter topic, by reject reason (`json`, `missing:amount`, `future_ts` …).
    pub rejected: IntCounterVec,
    /// `riskwatch_kafka_source_late_records_total{source}`: events older than the frontier,
    /// fed at the frontier.
    pub late: IntCounterVec,
    /// `riskwatch_kafka_source_watermark_seconds{source, partition}`: largest event time
    /// seen minus the allowed lateness.
    pub watermark: GaugeVec,
    /// `riskwatch_kafka_source_next_offset{source, partition}`: the next offset to consume.
    pub next_offset: IntGaugeVec,
    /// `riskwatch_kafka_source_frontier_seconds{worker}`: the event time up to which the
    /// worker's input is complete.
    pub frontier: GaugeVec,
    /// `riskwatch_kafka_source_idle_partitions{worker}`: partitions not holding the
    /// frontier back because no record arrived within the idle timeout.
    pub idle: IntGaugeVec,
    /// `riskwatch_kafka_source_paused{worker}`: 1 while backpressure pauses the worker's
    /// partitions.
    pub paused: IntGaugeVec,
    /// `riskwatch_kafka_source_pauses_total{worker}`: times backpressure paused the worker.
    pub pauses: IntCounterVec,
    /// `riskwatch_kafka_sink_records_total{topic}`: records handed to the producer.
    pub sink_records: IntCounterVec,
    /// `riskwatch_kafka_sink_bytes_total{topic}`: payload bytes handed to the producer.
    pub sink_bytes: IntCounterVec,
    /// `riskwatch_kafka_sink_delivery_failures_total{topic}`: records librdkafka gave up on
    /// (each one stops riskwatch).
    pub sink_failures: IntCounterVec,
}

impl KafkaMetrics {
    /// Creates the metrics and registers them in `registry`. Call once per process.
    pub fn register(registry: &Registry) -> Result<KafkaMetrics, prometheus::Error> {
        let m = KafkaMetrics::unregistered()?;
        registry.register(Box::new(m.records.clone()))?;
        registry.register(Box::new(m.bytes.clone()))?;
        registry.register(Box::new(m.rejected.clone()))?;
        registry.register(Box::new(m.late.clone()))?;
        registry.register(Box::new(m.watermark.clone()))?;
        registry.register(Box::new(m.next_offset.clone()))?;
        registry.register(Box::new(m.frontier.clone()))?;
        registry.register(Box::new(m.idle.clone()))?;
        registry.register(Box::new(m.paused.clone()))?;
        registry.register(Box::new(m.pauses.clone()))?;
        registry.register(Box::new(m.sink_records.clone()))?;
        registry.register(Box::new(m.sink_bytes.clone()))?;
        registry.register(Box::new(m.sink_failures.clone()))?;
        Ok(m)
    }

    /// Binds the sink's handles of output topic `topic`: records and bytes handed to the
    /// producer. Its delivery failures series is created too, at 0, so that a healthy run
    /// exports it (a rate or an alert on it has data, not an absent series).
    pub fn sink_topic(&self, topic: &str) -> (IntCounter, IntCounter) {
        self.sink_failures.with_label_values(&[topic]);
        (
            self.sink_records.with_label_values(&[topic]),
            self.sink_bytes.with_label_values(&[topic]),
        )
    }

    /// Creates the metrics without registering them (tests, tools).
    pub fn unregistered() -> Result<KafkaMetrics, prometheus::Error> {
        let counter = |name: &str, help: &str, labels: &[&str]| {
            IntCounterVec::new(Opts::new(name, help), labels)
        };
        let gauge =
            |name: &str, help: &str, labels: &[&str]| GaugeVec::new(Opts::new(name, help), labels);
        let int_gauge = |name: &str, help: &str, labels: &[&str]| {
            IntGaugeVec::new(Opts::new(name, help), labels)
        };
        Ok(KafkaMetrics {
            records: counter(
                "riskwatch_kafka_source_records_total",
                "Records consumed from the input topics, valid or not.",
                &["source", "partition"],
            )?,
            bytes: counter(
                "riskwatch_kafka_source_bytes_total",
                "Record payload bytes consumed.",
                &["source"],
            )?,
            rejected: counter(
                "riskwatch_kafka_source_rejected_records_total",
                "Input records sent to the dead-letter topic, by reason.",
                &["source", "reason"],
            )?,
            late: counter(
                "riskwatch_kafka_source_late_records_total",
                "Events older than the frontier, fed at the frontier.",
                &["source"],
            )?,
            watermark: gauge(
                "riskwatch_kafka_source_watermark_seconds",
                "Largest event time seen in the partition minus the allowed lateness.",
                &["source", "partition"],
            )?,
            next_offset: int_gauge(
                "riskwatch_kafka_source_next_offset",
                "Next offset to consume from the partition.",
                &["source", "partition"],
            )?,
            frontier: gauge(
                "riskwatch_kafka_source_frontier_seconds",
                "Event time up to which the worker's input is complete.",
                &["worker"],
            )?,
            idle: int_gauge(
                "riskwatch_kafka_source_idle_partitions",
                "Partitions not holding the frontier back because they are idle.",
                &["worker"],
            )?,
            paused: int_gauge(
                "riskwatch_kafka_source_paused",
                "1 while backpressure pauses the worker's partitions.",
                &["worker"],
            )?,
            pauses: counter(
                "riskwatch_kafka_source_pauses_total",
                "Times backpressure paused the worker's partitions.",
                &["worker"],
            )?,
            sink_records: counter(
                "riskwatch_kafka_sink_records_total",
                "Records handed to the producer.",
                &["topic"],
            )?,
            sink_bytes: counter(
                "riskwatch_kafka_sink_bytes_total",
                "Payload bytes handed to the producer.",
                &["topic"],
            )?,
            sink_failures: counter(
                "riskwatch_kafka_sink_delivery_failures_total",
                "Records the producer could not deliver after its retries.",
                &["topic"],
            )?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 11: a healthy Kafka run exported no delivery failures series, so the
    /// dashboard's "Delivery failures" query and its alert had no data.
    #[test]
    fn binding_a_sink_topic_exports_its_delivery_failures_at_zero() {
        let registry = Registry::new();
        let m = KafkaMetrics::register(&registry).expect("register");
        let (records, _) = m.sink_topic("riskwatch.alerts");
        records.inc_by(2);
        let mut text = String::new();
        prometheus::TextEncoder::new()
            .encode_utf8(&registry.gather(), &mut text)
            .expect("encode");
        let failures: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("riskwatch_kafka_sink_delivery_failures_total"))
            .collect();
        assert_eq!(
            failures,
            ["riskwatch_kafka_sink_delivery_failures_total{topic=\"riskwatch.alerts\"} 0"]
        );
        assert_eq!(
            m.sink_records
                .with_label_values(&["riskwatch.alerts"])
                .get(),
            2
        );
    }
}
