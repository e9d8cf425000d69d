//! Kafka sink: one idempotent producer per process, shared by every worker, writing JSON
//! records with a key and headers to a topic ([`TopicWriter`]).
//!
//! librdkafka batches (`linger.ms`, `batch.size`), compresses and retries transient errors
//! itself; a record it gives up on, or a fatal client error (e.g. the idempotent producer
//! losing its sequence), marks the sink failed: [`KafkaSink::health`] then returns the
//! error and riskwatch stops with a non-zero exit code rather than lose outputs silently.

use crate::error::ConnectorError;
use crate::kafka::metrics::KafkaMetrics;
use rdkafka::client::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientConfig;
use serde::Serialize;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Delivery reports and client errors, shared with librdkafka's polling thread.
#[derive(Debug)]
pub struct SinkContext {
    failed: AtomicBool,
    first_failure: Mutex<Option<(String, String)>>,
    delivered: AtomicU64,
    failures: AtomicU64,
    metrics: Option<KafkaMetrics>,
}

impl SinkContext {
    fn fail(&self, topic: &str, reason: String) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        if !self.failed.swap(true, Ordering::AcqRel) {
            tracing::error!(topic, reason = %reason, "kafka sink failed permanently");
            *self
                .first_failure
                .lock()
                .expect("no panic holding the failure") = Some((topic.to_string(), reason));
        }
    }
}

impl ClientContext for SinkContext {
    fn error(&self, error: KafkaError, reason: &str) {
        let fatal = matches!(error.rdkafka_error_code(), Some(RDKafkaErrorCode::Fatal));
        if fatal {
            self.fail("(client)", format!("{error}: {reason}"));
        } else {
            tracing::warn!(error = %error, reason, "kafka producer error (librdkafka retries)");
        }
    }
}

impl ProducerContext for SinkContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, msg)) => {
                if let Some(m) = &self.metrics {
                    m.sink_failures.with_label_values(&[msg.topic()]).inc();
                }
                self.fail(msg.topic(), e.to_string());
            }
        }
    }
}

/// The process's producer. Cloning shares it (librdkafka producers are thread-safe).
#[derive(Clone)]
pub struct KafkaSink {
    producer: ThreadedProducer<SinkContext>,
    metrics: Option<KafkaMetrics>,
}

impl KafkaSink {
    /// Creates the producer from a client config (see [`crate::kafka::config::producer`]).
    pub fn new(
        config: &ClientConfig,
        metrics: Option<KafkaMetrics>,
    ) -> Result<Self, ConnectorError> {
        let context = SinkContext {
            failed: AtomicBool::new(false),
            first_failure: Mutex::new(None),
            delivered: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            metrics: metrics.clone(),
        };
        let producer = config
            .create_with_context(context)
            .map_err(|e| ConnectorError::kafka("create producer", e))?;
        Ok(KafkaSink { producer, metrics })
    }

    /// A writer for `topic`, with its own reusable buffer (one per worker and topic).
    pub fn topic(&self, topic: &str) -> TopicWriter {
        let (records, bytes) = match &self.metrics {
            Some(m) => {
                let (records, bytes) = m.sink_topic(topic);
                (Some(records), Some(bytes))
            }
            None => (None, None),
        };
        TopicWriter {
            sink: self.clone(),
            topic: topic.to_string(),
            buf: Vec::with_capacity(4096),
            records,
            bytes,
            pending: (0, 0),
            sent: 0,
        }
    }

    /// Ok while no record has failed permanently and the client is not in a fatal state;
    /// otherwise the first failure. Cheap (one atomic load): call it every iteration.
    pub fn health(&self) -> Result<(), ConnectorError> {
        let ctx = self.producer.context();
        if !ctx.failed.load(Ordering::Acquire) {
            return Ok(());
        }
        let (topic, reason) = ctx
            .first_failure
            .lock()
            .expect("no panic holding the failure")
            .clone()
            .unwrap_or_default();
        Err(ConnectorError::Delivery { topic, reason })
    }

    /// Waits until every record handed over so far is acknowledged (or failed), at most
    /// `timeout`; then reports [`KafkaSink::health`].
    pub fn flush(&self, timeout: Duration) -> Result<(), ConnectorError> {
        self.producer
            .flush(timeout)
            .map_err(|e| ConnectorError::kafka("flush", e))?;
        self.health()
    }

    /// Records acknowledged by the brokers so far.
    pub fn delivered(&self) -> u64 {
        self.producer.context().delivered.load(Ordering::Relaxed)
    }

    /// Records handed over but not yet acknowledged.
    pub fn in_flight(&self) -> i32 {
        self.producer.in_flight_count()
    }
}

/// Writes records to one topic through the shared producer.
///
/// Each record is copied into librdkafka's queue, so one buffer serves every record; a
/// full queue is waited out (backpressure), never dropped. Metrics are added every 1,024
/// records and on [`TopicWriter::sync_metrics`].
pub struct TopicWriter {
    sink: KafkaSink,
    topic: String,
    buf: Vec<u8>,
    records: Option<prometheus::IntCounter>,
    bytes: Option<prometheus::IntCounter>,
    pending: (u64, u64),
    sent: u64,
}

impl TopicWriter {
    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Records handed to the producer by this writer.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// The shared producer.
    pub fn sink(&self) -> &KafkaSink {
        &self.sink
    }

    /// Serializes `value` as JSON into the writer's buffer and sends it with `key` and
    /// `headers` (name, value).
    pub fn send_json<T: Serialize>(
        &mut self,
        key: &[u8],
        value: &T,
        headers: &[(&str, &[u8])],
    ) -> Result<(), ConnectorError> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        serde_json::to_writer(&mut buf, value).map_err(|e| {
            ConnectorError::Config(format!("serializing a record for \"{}\": {e}", self.topic))
        })?;
        let result = self.send(key, &buf, headers);
        self.buf = buf;
        result
    }

    /// Sends one record. Blocks while librdkafka's queue is full; fails only when the sink
    /// has failed permanently.
    pub fn send(
        &mut self,
        key: &[u8],
        payload: &[u8],
        headers: &[(&str, &[u8])],
    ) -> Result<(), ConnectorError> {
        let mut record = BaseRecord::to(&self.topic).key(key).payload(payload);
        if !headers.is_empty() {
            let mut h = OwnedHeaders::new_with_capacity(headers.len());
            for (name, value) in headers {
                h = h.insert(Header {
                    key: name,
                    value: Some(*value),
                });
            }
            record = record.headers(h);
        }
        loop {
            match self.sink.producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    self.sink.health()?;
                    self.sink.producer.poll(Duration::from_millis(5));
                    record = back;
                }
                Err((e, _)) => return Err(ConnectorError::kafka("produce", e)),
            }
        }
        self.sent += 1;
        self.pending.0 += 1;
        self.pending.1 += payload.len() as u64;
        if self.pending.0 >= 1024 {
            self.sync_metrics();
        }
        Ok(())
    }

    /// Adds the records and bytes sent since the last call to the metrics.
    pub fn sync_metrics(&mut self) {
        let (n, b) = std::mem::take(&mut self.pending);
        if let Some(c) = &self.records {
            c.inc_by(n);
        }
        if let Some(c) = &self.bytes {
            c.inc_by(b);
        }
    }
}

impl Drop for TopicWriter {
    fn drop(&mut self) {
        self.sync_metrics();
    }
}
