//! Kafka brokers, topics and client settings (`[kafka]`), with the librdkafka
//! pass-through tables `[kafka.consumer]` and `[kafka.producer]`.

use super::ConfigError;
use crate::time::Millis;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Kafka brokers, topics and client settings.
///
/// Secrets never come from this file: the SASL password is read from the environment
/// variable named by `sasl_password_env` or from the file `sasl_password_file`, and the
/// librdkafka pass-through tables refuse keys that hold secrets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// `bootstrap.servers`: comma-separated `host:port` list.
    pub brokers: String,
    /// `client.id` prefix; a worker's consumer appends `-w<global worker index>`.
    pub client_id: String,
    /// Topic names.
    pub topics: KafkaTopics,
    /// Where a partition is read from at startup: `earliest` or `latest`.
    pub start_offset: StartOffset,
    /// If set, each worker also commits its consumed offsets to this consumer group on
    /// shutdown (for lag monitoring). Partitions are never assigned by the group: the
    /// assignment is static (docs/KAFKA.md).
    pub group_id: Option<String>,
    /// `security.protocol`: `plaintext`, `ssl`, `sasl_plaintext` or `sasl_ssl`.
    pub security_protocol: SecurityProtocol,
    /// `sasl.mechanism` (`PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512`) when SASL is used.
    pub sasl_mechanism: Option<String>,
    /// `sasl.username` when SASL is used (not a secret).
    pub sasl_username: Option<String>,
    /// Name of the environment variable holding the SASL password.
    pub sasl_password_env: String,
    /// A file holding the SASL password (first line); used when the variable is unset.
    pub sasl_password_file: Option<String>,
    /// `ssl.ca.location`: CA certificate file for `ssl` and `sasl_ssl`.
    pub ssl_ca_location: Option<String>,
    /// Producer `compression.type`: `none`, `gzip`, `lz4` or `snappy` (the codecs the
    /// bundled librdkafka has without extra system libraries).
    pub compression: Compression,
    /// Producer `linger.ms`: how long a batch waits to fill.
    pub linger: Millis,
    /// Producer `batch.size` in bytes.
    pub batch_size_bytes: u64,
    /// Producer `message.timeout.ms`: how long librdkafka retries a record before it
    /// reports it failed (a failure stops riskwatch).
    pub message_timeout: Millis,
    /// Consumer `fetch.wait.max.ms`: how long the broker may hold a fetch for data.
    pub fetch_wait_max: Millis,
    /// Extra librdkafka properties for consumers (e.g. `"fetch.max.bytes" = "52428800"`).
    pub consumer: std::collections::BTreeMap<String, String>,
    /// Extra librdkafka properties for producers.
    pub producer: std::collections::BTreeMap<String, String>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            brokers: "127.0.0.1:9092".into(),
            client_id: "riskwatch".into(),
            topics: KafkaTopics::default(),
            start_offset: StartOffset::Earliest,
            group_id: None,
            security_protocol: SecurityProtocol::Plaintext,
            sasl_mechanism: None,
            sasl_username: None,
            sasl_password_env: "RISKWATCH_KAFKA_PASSWORD".into(),
            sasl_password_file: None,
            ssl_ca_location: None,
            compression: Compression::Lz4,
            linger: Millis(5),
            batch_size_bytes: 1 << 20,
            message_timeout: Millis(120_000),
            fetch_wait_max: Millis(10),
            consumer: Default::default(),
            producer: Default::default(),
        }
    }
}

impl KafkaConfig {
    /// Checks topic names and pass-through keys; `used` also requires brokers.
    pub(super) fn validate(&self, used: bool) -> Result<(), ConfigError> {
        if used && self.brokers.trim().is_empty() {
            return Err(ConfigError::new(
                "kafka.brokers",
                "must name at least one broker",
            ));
        }
        let t = &self.topics;
        let all = [
            ("transactions", &t.transactions),
            ("behaviors", &t.behaviors),
            ("loans", &t.loans),
            ("customers", &t.customers),
            ("alerts", &t.alerts),
            ("decisions", &t.decisions),
            ("cases", &t.cases),
            ("dead_letter", &t.dead_letter),
        ];
        let mut seen = BTreeSet::new();
        for (key, name) in all {
            let valid = !name.is_empty()
                && name.len() <= 249
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
            if !valid {
                return Err(ConfigError::new(
                    format!("kafka.topics.{key}"),
                    format!("\"{name}\" is not a valid topic name ([a-zA-Z0-9._-], 1–249)"),
                ));
            }
            if !seen.insert(name.as_str()) {
                return Err(ConfigError::new(
                    format!("kafka.topics.{key}"),
                    format!("\"{name}\" is used for two streams"),
                ));
            }
        }
        for (table, props) in [("consumer", &self.consumer), ("producer", &self.producer)] {
            for k in props.keys() {
                let lower = k.to_ascii_lowercase();
                if lower.contains("password")
                    || lower.contains("secret")
                    || lower.contains("sasl.oauthbearer.config")
                    || lower == "ssl.key.pem"
                {
                    return Err(ConfigError::new(
                        format!("kafka.{table}.{k}"),
                        "secrets are read from the environment or a file, never the config \
                         (see kafka.sasl_password_env)",
                    ));
                }
            }
        }
        check_idempotence(&self.producer)?;
        if self.batch_size_bytes == 0 {
            return Err(ConfigError::new(
                "kafka.batch_size_bytes",
                "must be positive",
            ));
        }
        Ok(())
    }
}

/// Refuses producer pass-through keys that would undo the idempotent producer riskwatch
/// promises (docs/KAFKA.md): librdkafka would silently drop idempotence, or weaken the
/// acknowledgements it waits for, and duplicates or losses would follow a broker failover.
fn check_idempotence(
    producer: &std::collections::BTreeMap<String, String>,
) -> Result<(), ConfigError> {
    for (k, v) in producer {
        let value = v.trim().to_ascii_lowercase();
        let key = || format!("kafka.producer.{k}");
        let int = || value.parse::<i64>().ok();
        let reason = match k.as_str() {
            "enable.idempotence" if value != "true" => {
                "riskwatch's producers are idempotent; remove the key (it can only be \"true\")"
            }
            "acks" | "request.required.acks" if !matches!(value.as_str(), "all" | "-1") => {
                "the idempotent producer needs acks = all; remove the key"
            }
            "max.in.flight.requests.per.connection" | "max.in.flight"
                if !int().is_some_and(|n| (1..=5).contains(&n)) =>
            {
                "the idempotent producer needs 1–5 requests in flight per connection"
            }
            "retries" | "message.send.max.retries" if int().is_none_or(|n| n <= 0) => {
                "the idempotent producer needs retries above 0"
            }
            "queuing.strategy" if value != "fifo" => {
                "the idempotent producer keeps records in order (fifo); remove the key"
            }
            "transactional.id" => {
                "riskwatch's producers are idempotent, not transactional; remove the key"
            }
            _ => continue,
        };
        return Err(ConfigError::new(key(), reason));
    }
    Ok(())
}

/// Topic names of the four inputs, three outputs and the dead-letter topic.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaTopics {
    /// Input: transactions.
    pub transactions: String,
    /// Input: behaviour events.
    pub behaviors: String,
    /// Input: loan schedule events.
    pub loans: String,
    /// Input: customer reference records.
    pub customers: String,
    /// Output: alerts (alert.schema.json).
    pub alerts: String,
    /// Output: decisions (decision.schema.json).
    pub decisions: String,
    /// Output: collection cases (case.schema.json).
    pub cases: String,
    /// Undecodable or invalid input records (rejected.schema.json), with headers `reason`,
    /// `source`, `partition`, `offset`.
    pub dead_letter: String,
}

impl Default for KafkaTopics {
    fn default() -> Self {
        KafkaTopics {
            transactions: "riskwatch.transactions".into(),
            behaviors: "riskwatch.behaviors".into(),
            loans: "riskwatch.loans".into(),
            customers: "riskwatch.customers".into(),
            alerts: "riskwatch.alerts".into(),
            decisions: "riskwatch.decisions".into(),
            cases: "riskwatch.cases".into(),
            dead_letter: "riskwatch.rejected".into(),
        }
    }
}

impl KafkaTopics {
    /// The input topic of a stream (indexed like `Stream as usize`).
    pub fn inputs(&self) -> [&str; 4] {
        [
            &self.customers,
            &self.loans,
            &self.transactions,
            &self.behaviors,
        ]
    }
}

/// Where a partition is first read from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartOffset {
    /// The oldest retained record.
    #[default]
    Earliest,
    /// Only records produced after startup.
    Latest,
}

/// `security.protocol`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecurityProtocol {
    /// No TLS, no SASL.
    #[default]
    Plaintext,
    /// TLS.
    Ssl,
    /// SASL without TLS.
    SaslPlaintext,
    /// SASL over TLS.
    SaslSsl,
}

impl SecurityProtocol {
    /// The librdkafka value.
    pub fn as_str(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "plaintext",
            SecurityProtocol::Ssl => "ssl",
            SecurityProtocol::SaslPlaintext => "sasl_plaintext",
            SecurityProtocol::SaslSsl => "sasl_ssl",
        }
    }
}

/// Producer compression codec.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    /// No compression.
    None,
    /// gzip (through libz).
    Gzip,
    /// LZ4 (built into librdkafka): fast, the default.
    #[default]
    Lz4,
    /// Snappy (built into librdkafka).
    Snappy,
}

impl Compression {
    /// The librdkafka value.
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Lz4 => "lz4",
            Compression::Snappy => "snappy",
        }
    }
}
