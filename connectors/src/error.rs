//! The connectors' one error type, and whether an error is worth retrying.

use std::fmt;

/// Whether retrying can help (ARR `RetryHint`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// A broker or network hiccup: retry with backoff; librdkafka already does for Kafka.
    Transient,
    /// Misconfiguration, a missing topic, a fatal client state: retrying will not help;
    /// riskwatch stops with a non-zero exit code.
    Permanent,
}

impl fmt::Display for Retry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Retry::Transient => "transient",
            Retry::Permanent => "permanent",
        })
    }
}

/// An error of a source or sink.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    /// The connector's configuration is unusable (a bad property, a missing secret).
    #[error("kafka config: {0}")]
    Config(String),
    /// An input topic does not exist or has no partitions (topics are never auto-created).
    #[error("kafka topic \"{topic}\": {reason}")]
    Topic {
        /// The topic.
        topic: String,
        /// What is wrong.
        reason: String,
    },
    /// A client call failed; `retry` says whether it may succeed later.
    #[error("kafka {op} ({retry}): {source}")]
    Kafka {
        /// What was being done (`"fetch metadata"`, `"assign"`, `"produce"` …).
        op: &'static str,
        /// Whether retrying may help.
        retry: Retry,
        /// The client error.
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// A produced record could not be delivered after librdkafka's own retries, or the
    /// client entered a fatal state (e.g. the idempotent producer lost its sequence).
    #[error("kafka delivery to \"{topic}\" failed permanently: {reason}")]
    Delivery {
        /// The topic.
        topic: String,
        /// librdkafka's error text.
        reason: String,
    },
    /// An input path is missing or unusable (a missing directory, an absent stream, a
    /// dangling symlink): nothing was read.
    #[error("{path}: {reason}")]
    Input {
        /// The path.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A webhook endpoint cannot be set up: its secret is missing or malformed, its CA
    /// file unreadable. The message never contains a secret.
    #[error("webhook \"{endpoint}\": {reason}")]
    Webhook {
        /// The endpoint's configured name.
        endpoint: String,
        /// What is wrong.
        reason: String,
    },
    /// The state directory holding the webhook outbox failed.
    #[error(transparent)]
    State(#[from] riskwatch_state::StateError),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl ConnectorError {
    /// Whether retrying may help.
    pub fn retry(&self) -> Retry {
        match self {
            ConnectorError::Kafka { retry, .. } => *retry,
            ConnectorError::Io { source, .. }
                if matches!(
                    source.kind(),
                    std::io::ErrorKind::Interrupted | std::io::ErrorKind::TimedOut
                ) =>
            {
                Retry::Transient
            }
            _ => Retry::Permanent,
        }
    }

    /// Wraps a client error of `op`, classifying it: fatal client states, bad
    /// configuration and unknown topics are permanent; timeouts, transport failures and
    /// full queues are transient.
    pub fn kafka(op: &'static str, source: rdkafka::error::KafkaError) -> ConnectorError {
        use rdkafka::error::{KafkaError as K, RDKafkaErrorCode as C};
        let retry = match &source {
            K::ClientConfig(..) | K::ClientCreation(..) | K::Nul(..) => Retry::Permanent,
            K::MessageConsumptionFatal(..) => Retry::Permanent,
            _ => match source.rdkafka_error_code() {
                Some(
                    C::Fatal
                    | C::UnknownTopic
                    | C::UnknownTopicOrPartition
                    | C::UnknownPartition
                    | C::TopicAuthorizationFailed
                    | C::ClusterAuthorizationFailed
                    | C::Authentication
                    | C::SaslAuthenticationFailed
                    | C::InvalidArgument
                    | C::InvalidConfig
                    | C::UnsupportedFeature
                    | C::InvalidProducerEpoch
                    | C::ProducerFenced
                    | C::OutOfOrderSequenceNumber,
                ) => Retry::Permanent,
                _ => Retry::Transient,
            },
        };
        ConnectorError::Kafka { op, retry, source }
    }
}
