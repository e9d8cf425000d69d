//! Probing the brokers before a deploy (`riskwatch check-config --connect`): cluster
//! metadata through the consumer configuration `run` builds ([`crate::kafka::config`], so
//! security and SASL settings pass through exactly as in `run`), whether a failure is the
//! network or the credentials, and each topic's partition count ([`topic_partitions`],
//! which `run` uses too, through [`crate::kafka::partition_counts`]).
//!
//! ```text
//!  Probe::new ─▶ BaseConsumer (run's consumer config) ─▶ cluster(): metadata of every topic
//!                      │ error events (connect refused, SASL, SSL)  ─▶ Unreachable | Credentials
//!                      └─▶ topic(t): metadata of t ─▶ partition count, or missing
//! ```
//!
//! Every call is bounded by the probe's timeout; nothing blocks longer.

use crate::error::ConnectorError;
use crate::kafka::config;
use crate::kafka::source::{PartitionId, MAX_PARTITIONS};
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use riskwatch_model::config::KafkaConfig;
use std::sync::Mutex;
use std::time::Duration;

/// Asks the brokers for the partition count of `topic`, waiting at most `timeout`. A
/// missing topic, or one with no partitions or more than [`MAX_PARTITIONS`], is a
/// permanent [`ConnectorError::Topic`] (topics are never auto-created); a failed metadata
/// request is a [`ConnectorError::Kafka`].
pub fn topic_partitions<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    topic: &str,
    timeout: Duration,
) -> Result<i32, ConnectorError> {
    let md = consumer
        .fetch_metadata(Some(topic), timeout)
        .map_err(|e| ConnectorError::kafka("fetch metadata", e))?;
    let t = md
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .ok_or_else(|| ConnectorError::Topic {
            topic: topic.to_string(),
            reason: "not in the metadata".into(),
        })?;
    if let Some(err) = t.error() {
        return Err(ConnectorError::Topic {
            topic: topic.to_string(),
            reason: format!("{err:?} (create it first; topics are not auto-created)"),
        });
    }
    let n = t.partitions().len() as i32;
    if n == 0 || n > MAX_PARTITIONS {
        return Err(ConnectorError::Topic {
            topic: topic.to_string(),
            reason: format!("has {n} partitions; riskwatch needs 1..={MAX_PARTITIONS}"),
        });
    }
    Ok(n)
}

/// One worker's partitions as one line, in assignment order: each input topic (`topics`
/// indexed like `Stream as usize`) with its partition numbers, e.g.
/// `riskwatch.customers[0,4] riskwatch.loans[2]`, or `no partitions`. `run` logs it per
/// worker at start and `check-config --connect` prints it, so the two can be compared.
pub fn describe_partitions(partitions: &[PartitionId], topics: [&str; 4]) -> String {
    if partitions.is_empty() {
        return "no partitions".into();
    }
    let mut out = String::new();
    let mut current = None;
    for p in partitions {
        if current != Some(p.stream) {
            if current.is_some() {
                out.push_str("] ");
            }
            out.push_str(topics[p.stream as usize]);
            out.push('[');
            current = Some(p.stream);
        } else {
            out.push(',');
        }
        out.push_str(&p.partition.to_string());
    }
    out.push(']');
    out
}

/// Why the brokers did not answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BrokerFailure {
    /// No connection: refused, unresolvable, timed out.
    Unreachable,
    /// A connection was made, but the brokers refused the credentials or the TLS handshake
    /// failed (librdkafka reported an authentication, SASL or SSL error).
    Credentials,
}

/// A failed cluster probe: the kind, and librdkafka's most telling reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerError {
    /// Unreachable or credentials.
    pub kind: BrokerFailure,
    /// librdkafka's error text (a broker address and the cause; never a secret).
    pub reason: String,
}

/// What librdkafka said while the probe ran: error events, and its error and warning log
/// lines (a refused connection or a failed SASL or SSL handshake is logged by the broker
/// thread at once, often before any error event is served), logged at debug only: the
/// probe reports them itself.
#[derive(Default)]
struct ProbeContext {
    errors: Mutex<Vec<(Option<RDKafkaErrorCode>, String)>>,
    /// (facility, message without librdkafka's `[thrd:…]: ` prefix).
    logs: Mutex<Vec<(String, String)>>,
}

impl ClientContext for ProbeContext {
    fn error(&self, error: KafkaError, reason: &str) {
        tracing::debug!(error = %error, reason, "kafka probe: client error");
        self.errors
            .lock()
            .expect("no panic holding the probe's errors")
            .push((error.rdkafka_error_code(), reason.to_string()));
    }

    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        tracing::debug!(?level, fac, message, "kafka probe: librdkafka");
        use RDKafkaLogLevel as L;
        if matches!(
            level,
            L::Emerg | L::Alert | L::Critical | L::Error | L::Warning
        ) {
            let message = match message.split_once("]: ") {
                Some((thread, rest)) if thread.starts_with("[thrd:") => rest,
                _ => message,
            };
            self.logs
                .lock()
                .expect("no panic holding the probe's logs")
                .push((fac.to_string(), message.to_string()));
        }
    }
}

impl ConsumerContext for ProbeContext {}

/// A consumer built from `run`'s configuration, for probing the cluster. Every call waits
/// at most the timeout given to [`Probe::new`].
pub struct Probe {
    consumer: BaseConsumer<ProbeContext>,
    timeout: Duration,
}

impl Probe {
    /// Builds the consumer `run` would build (`config::consumer`); a missing SASL password
    /// or a property librdkafka refuses is an error here. Contacts no broker yet.
    pub fn new(kafka: &KafkaConfig, timeout: Duration) -> Result<Probe, ConnectorError> {
        let client_id = format!("{}-check", kafka.client_id);
        let consumer = config::consumer(kafka, &client_id)?
            .create_with_context(ProbeContext::default())
            .map_err(|e| ConnectorError::kafka("create consumer", e))?;
        Ok(Probe { consumer, timeout })
    }

    /// Fetches the cluster's metadata; returns the number of brokers in it. On a failure,
    /// says whether the brokers were unreachable or refused the credentials.
    pub fn cluster(&self) -> Result<usize, BrokerError> {
        match self.consumer.fetch_metadata(None, self.timeout) {
            Ok(md) => Ok(md.brokers().len()),
            Err(e) => {
                // Serve the error events queued so far, so the context has seen them.
                while self.consumer.poll(Duration::ZERO).is_some() {}
                let context = self.consumer.context();
                let errors = context
                    .errors
                    .lock()
                    .expect("no panic holding the probe's errors")
                    .clone();
                let logs = context
                    .logs
                    .lock()
                    .expect("no panic holding the probe's logs")
                    .clone();
                Err(classify(&errors, &logs, &e))
            }
        }
    }

    /// The partition count of `topic` ([`topic_partitions`]).
    pub fn topic(&self, topic: &str) -> Result<i32, ConnectorError> {
        topic_partitions(&self.consumer, topic, self.timeout)
    }
}

/// Whether librdkafka's error code means the credentials or the TLS handshake failed.
fn is_credentials(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::Authentication
            | RDKafkaErrorCode::SaslAuthenticationFailed
            | RDKafkaErrorCode::UnsupportedSASLMechanism
            | RDKafkaErrorCode::IllegalSASLState
            | RDKafkaErrorCode::SSL
    )
}

/// Whether a librdkafka log line reports a failed authentication or TLS handshake.
fn is_credentials_log(fac: &str, message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    matches!(fac, "SASL" | "SSL" | "AUTH" | "SASLAUTH")
        || m.contains("authentication")
        || m.contains("ssl handshake")
        || m.contains("sasl")
}

/// Classifies a failed metadata fetch from what librdkafka said meanwhile: an
/// authentication, SASL or SSL error event or log line makes it
/// [`BrokerFailure::Credentials`] with that reason; otherwise it is
/// [`BrokerFailure::Unreachable`], with the last connection failure logged (it names the
/// broker and the cause, e.g. `Connection refused`), else the last error event that is not
/// librdkafka's summary "all brokers down", else the fetch's own error.
fn classify(
    errors: &[(Option<RDKafkaErrorCode>, String)],
    logs: &[(String, String)],
    fetch: &KafkaError,
) -> BrokerError {
    let credentials = errors
        .iter()
        .rev()
        .find(|(code, _)| code.is_some_and(is_credentials))
        .map(|(_, reason)| reason)
        .or_else(|| {
            logs.iter()
                .rev()
                .find(|(fac, m)| is_credentials_log(fac, m))
                .map(|(_, m)| m)
        });
    if let Some(reason) = credentials {
        return BrokerError {
            kind: BrokerFailure::Credentials,
            reason: reason.clone(),
        };
    }
    let logged = logs
        .iter()
        .rev()
        .find(|(fac, _)| fac == "FAIL")
        .map(|(_, m)| m);
    let event = errors
        .iter()
        .rev()
        .find(|(code, _)| *code != Some(RDKafkaErrorCode::AllBrokersDown))
        .or(errors.last())
        .map(|(_, r)| r);
    BrokerError {
        kind: BrokerFailure::Unreachable,
        reason: match logged.or(event) {
            Some(reason) => reason.clone(),
            None => fetch.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(list: &[(RDKafkaErrorCode, &str)]) -> Vec<(Option<RDKafkaErrorCode>, String)> {
        list.iter()
            .map(|(c, r)| (Some(*c), r.to_string()))
            .collect()
    }

    #[test]
    fn partitions_are_described_per_topic_in_assignment_order() {
        use crate::kafka::source::assign_partitions;
        let topics = ["c", "l", "t", "b"];
        // 2 partitions per topic over 3 workers: c0 c1 l0 l1 t0 t1 b0 b1 dealt round-robin.
        let counts = [2, 2, 2, 2];
        let lines: Vec<String> = (0..3)
            .map(|w| describe_partitions(&assign_partitions(&counts, w, 3), topics))
            .collect();
        assert_eq!(lines, ["c[0] l[1] b[0]", "c[1] t[0] b[1]", "l[0] t[1]"]);
        assert_eq!(
            describe_partitions(&assign_partitions(&[1, 0, 0, 0], 1, 2), topics),
            "no partitions"
        );
    }

    fn logged(fac: &str, message: &str) -> Vec<(String, String)> {
        vec![(fac.to_string(), message.to_string())]
    }

    #[test]
    fn an_authentication_error_is_credentials_whatever_came_after() {
        let fetch = KafkaError::MetadataFetch(RDKafkaErrorCode::OperationTimedOut);
        let e = classify(
            &errors(&[
                (
                    RDKafkaErrorCode::Authentication,
                    "SASL authentication error: bad",
                ),
                (RDKafkaErrorCode::AllBrokersDown, "1/1 brokers are down"),
            ]),
            &[],
            &fetch,
        );
        assert_eq!(
            e,
            BrokerError {
                kind: BrokerFailure::Credentials,
                reason: "SASL authentication error: bad".into()
            }
        );
        let ssl = errors(&[(RDKafkaErrorCode::SSL, "SSL handshake failed")]);
        assert_eq!(classify(&ssl, &[], &fetch).kind, BrokerFailure::Credentials);
        // Only logged, as librdkafka's broker thread does before any event is served.
        let logs = logged("FAIL", "h:9092/bootstrap: SASL authentication error: bad");
        assert_eq!(
            classify(&[], &logs, &fetch),
            BrokerError {
                kind: BrokerFailure::Credentials,
                reason: logs[0].1.clone()
            }
        );
    }

    #[test]
    fn a_transport_error_is_unreachable_with_the_connect_reason() {
        let fetch = KafkaError::MetadataFetch(RDKafkaErrorCode::OperationTimedOut);
        let down = errors(&[
            (RDKafkaErrorCode::BrokerTransportFailure, "connect refused"),
            (RDKafkaErrorCode::AllBrokersDown, "1/1 brokers are down"),
        ]);
        assert_eq!(
            classify(&down, &[], &fetch),
            BrokerError {
                kind: BrokerFailure::Unreachable,
                reason: "connect refused".into()
            }
        );
        assert_eq!(
            classify(&[], &[], &fetch),
            BrokerError {
                kind: BrokerFailure::Unreachable,
                reason: fetch.to_string()
            }
        );
        // A logged connection failure names the broker and the cause: it wins.
        let logs = logged(
            "FAIL",
            "127.0.0.1:1/bootstrap: Connect to ipv4#127.0.0.1:1 failed: Connection refused",
        );
        assert_eq!(
            classify(&down, &logs, &fetch),
            BrokerError {
                kind: BrokerFailure::Unreachable,
                reason: logs[0].1.clone()
            }
        );
    }
}
