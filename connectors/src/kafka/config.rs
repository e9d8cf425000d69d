//! librdkafka client configuration from riskwatch's `[kafka]` section: common connection
//! and security settings, the consumer of a worker, the idempotent producer, the SASL
//! password from the environment or a file (never from the config file), and [`validate`],
//! which has librdkafka check both configurations without reaching a broker.

use crate::error::ConnectorError;
use rdkafka::client::{Client, DefaultClientContext};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaType;
use rdkafka::ClientConfig;
use riskwatch_model::config::{KafkaConfig, SecurityProtocol, StartOffset};

/// Settings every client shares: brokers, client id, security, SASL, TLS.
///
/// The SASL password is read from the variable named by `sasl_password_env`, else from the
/// first line of `sasl_password_file`; SASL without a password is a config error.
pub fn common(kafka: &KafkaConfig, client_id: &str) -> Result<ClientConfig, ConnectorError> {
    common_with(kafka, client_id, sasl_password)
}

/// [`common`] with the SASL password from `password`.
fn common_with(
    kafka: &KafkaConfig,
    client_id: &str,
    password: fn(&KafkaConfig) -> Result<String, ConnectorError>,
) -> Result<ClientConfig, ConnectorError> {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &kafka.brokers)
        .set("client.id", client_id)
        .set("security.protocol", kafka.security_protocol.as_str());
    let sasl = matches!(
        kafka.security_protocol,
        SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
    );
    if sasl {
        if let Some(m) = &kafka.sasl_mechanism {
            c.set("sasl.mechanism", m);
        }
        if let Some(u) = &kafka.sasl_username {
            c.set("sasl.username", u);
        }
        c.set("sasl.password", password(kafka)?);
    }
    if let Some(ca) = &kafka.ssl_ca_location {
        c.set("ssl.ca.location", ca);
    }
    Ok(c)
}

fn sasl_password(kafka: &KafkaConfig) -> Result<String, ConnectorError> {
    if let Ok(p) = std::env::var(&kafka.sasl_password_env) {
        if !p.is_empty() {
            return Ok(p);
        }
    }
    if let Some(path) = &kafka.sasl_password_file {
        let text = std::fs::read_to_string(path).map_err(|source| ConnectorError::Io {
            path: path.clone(),
            source,
        })?;
        return Ok(text.lines().next().unwrap_or("").to_string());
    }
    Err(ConnectorError::Config(format!(
        "SASL needs a password: set the environment variable \"{}\" or kafka.sasl_password_file",
        kafka.sasl_password_env
    )))
}

/// The consumer of one worker: manual assignment, no auto-commit, no topic auto-creation.
///
/// riskwatch keeps positions itself ([`crate::kafka::KafkaSource::positions`]); the group
/// id, if configured, is only used to commit them on shutdown.
pub fn consumer(kafka: &KafkaConfig, client_id: &str) -> Result<ClientConfig, ConnectorError> {
    Ok(consumer_settings(common(kafka, client_id)?, kafka))
}

fn consumer_settings(mut c: ClientConfig, kafka: &KafkaConfig) -> ClientConfig {
    c.set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .set("allow.auto.create.topics", "false")
        .set(
            "auto.offset.reset",
            match kafka.start_offset {
                StartOffset::Earliest => "earliest",
                StartOffset::Latest => "latest",
            },
        )
        .set("fetch.wait.max.ms", kafka.fetch_wait_max.ms().to_string());
    c.set(
        "group.id",
        kafka.group_id.as_deref().unwrap_or("riskwatch-static"),
    );
    for (k, v) in &kafka.consumer {
        c.set(k, v);
    }
    c
}

/// The idempotent producer of outputs and dead letters: `enable.idempotence`, `acks=all`,
/// batching (`linger.ms`, `batch.size`) and compression from the config.
pub fn producer(kafka: &KafkaConfig, client_id: &str) -> Result<ClientConfig, ConnectorError> {
    Ok(producer_settings(common(kafka, client_id)?, kafka))
}

fn producer_settings(mut c: ClientConfig, kafka: &KafkaConfig) -> ClientConfig {
    c.set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", kafka.linger.ms().to_string())
        .set("batch.size", kafka.batch_size_bytes.to_string())
        .set("compression.type", kafka.compression.as_str())
        .set("message.timeout.ms", kafka.message_timeout.ms().to_string())
        .set("queue.buffering.max.messages", "1000000");
    for (k, v) in &kafka.producer {
        c.set(k, v);
    }
    c
}

/// Checks that librdkafka accepts the consumer and the producer configuration riskwatch
/// builds from `kafka`, including the `[kafka.consumer]` and `[kafka.producer]`
/// pass-through keys: an unknown property, a malformed value or a combination librdkafka
/// refuses is an error naming the key (`key "kafka.consumer.fetch.max.byte": …`).
///
/// Each configuration is checked property by property, then a client of each kind is
/// created and destroyed at once. The clients are created without `bootstrap.servers`, so
/// nothing resolves a host name or opens a connection, and creation does not block (a few
/// milliseconds per client). The SASL password is not needed: a placeholder stands in for
/// it, and a missing one is reported when the real clients are built.
pub fn validate(kafka: &KafkaConfig) -> Result<(), ConnectorError> {
    let base = common_with(kafka, &kafka.client_id, |_| Ok("validate-only".into()))?;
    let clients = [
        (
            "consumer",
            consumer_settings(base.clone(), kafka),
            RDKafkaType::RD_KAFKA_CONSUMER,
        ),
        (
            "producer",
            producer_settings(base, kafka),
            RDKafkaType::RD_KAFKA_PRODUCER,
        ),
    ];
    for (table, mut config, kind) in clients {
        config.remove("bootstrap.servers");
        let error = |e: KafkaError| {
            let (key, reason) = match &e {
                KafkaError::ClientConfig(_, desc, key, _) => {
                    (config_key(kafka, table, key), desc.clone())
                }
                KafkaError::ClientCreation(reason) => (format!("kafka.{table}"), reason.clone()),
                other => (format!("kafka.{table}"), other.to_string()),
            };
            ConnectorError::Config(format!("key \"{key}\": {reason}"))
        };
        let native = config.create_native_config().map_err(error)?;
        Client::new(&config, native, kind, DefaultClientContext).map_err(error)?;
    }
    Ok(())
}

/// The config key behind librdkafka property `property` of the `table` client: the
/// pass-through key if it is one, else the typed key riskwatch sets it from.
fn config_key(kafka: &KafkaConfig, table: &str, property: &str) -> String {
    let passed = match table {
        "consumer" => &kafka.consumer,
        _ => &kafka.producer,
    };
    if passed.contains_key(property) {
        return format!("kafka.{table}.{property}");
    }
    let typed = match property {
        "client.id" => "client_id",
        "security.protocol" => "security_protocol",
        "sasl.mechanism" => "sasl_mechanism",
        "sasl.username" => "sasl_username",
        "ssl.ca.location" => "ssl_ca_location",
        "compression.type" => "compression",
        "linger.ms" => "linger",
        "batch.size" => "batch_size_bytes",
        "message.timeout.ms" => "message_timeout",
        "fetch.wait.max.ms" => "fetch_wait_max",
        "group.id" => "group_id",
        "auto.offset.reset" => "start_offset",
        _ => return format!("kafka.{table}"),
    };
    format!("kafka.{typed}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn with(table: &str, key: &str, value: &str) -> KafkaConfig {
        let mut kafka = KafkaConfig::default();
        let map = match table {
            "consumer" => &mut kafka.consumer,
            _ => &mut kafka.producer,
        };
        map.insert(key.to_string(), value.to_string());
        kafka
    }

    fn message(kafka: &KafkaConfig) -> String {
        validate(kafka).unwrap_err().to_string()
    }

    #[test]
    fn default_config_validates_without_a_broker_and_without_blocking() {
        let kafka = KafkaConfig {
            // An address nothing answers on: validation must not try it.
            brokers: "10.255.255.1:9092".into(),
            group_id: Some("riskwatch".into()),
            ..KafkaConfig::default()
        };
        let start = Instant::now();
        validate(&kafka).unwrap();
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
    }

    /// Issue 8: a misspelt librdkafka key passed check-config and failed only at run time.
    #[test]
    fn misspelt_consumer_key_is_rejected_with_its_key() {
        let err = message(&with("consumer", "fetch.max.byte", "52428800"));
        assert_eq!(
            err,
            "kafka config: key \"kafka.consumer.fetch.max.byte\": No such configuration \
             property: \"fetch.max.byte\""
        );
    }

    #[test]
    fn misspelt_producer_key_and_bad_values_are_rejected_with_their_key() {
        let err = message(&with("producer", "queue.buffering.max.kbyte", "1"));
        assert!(
            err.starts_with("kafka config: key \"kafka.producer.queue.buffering.max.kbyte\": "),
            "{err}"
        );
        let err = message(&with("consumer", "fetch.max.bytes", "lots"));
        assert!(
            err.starts_with("kafka config: key \"kafka.consumer.fetch.max.bytes\": "),
            "{err}"
        );
        // Combinations librdkafka refuses only when it creates the client.
        let err = message(&with("producer", "acks", "1"));
        assert!(
            err.starts_with("kafka config: key \"kafka.producer\": "),
            "{err}"
        );
        assert!(err.contains("acks"), "{err}");
    }

    #[test]
    fn known_pass_through_keys_and_sasl_without_the_secret_validate() {
        let mut kafka = with("consumer", "fetch.max.bytes", "52428800");
        kafka
            .producer
            .insert("queue.buffering.max.kbytes".into(), "1048576".into());
        kafka.security_protocol = SecurityProtocol::SaslPlaintext;
        kafka.sasl_mechanism = Some("PLAIN".into());
        kafka.sasl_username = Some("riskwatch".into());
        kafka.sasl_password_env = "RISKWATCH_TEST_NO_SUCH_VARIABLE".into();
        validate(&kafka).unwrap();
        // The real clients do need the secret.
        assert!(consumer(&kafka, "c").is_err());
    }
}
