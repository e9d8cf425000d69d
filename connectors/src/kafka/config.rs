//! librdkafka client configuration from riskwatch's `[kafka]` section: common connection
//! and security settings, the consumer of a worker, the idempotent producer, and the SASL
//! password from the environment or a file (never from the config file).

use crate::error::ConnectorError;
use rdkafka::ClientConfig;
use riskwatch_model::config::{KafkaConfig, SecurityProtocol, StartOffset};

/// Settings every client shares: brokers, client id, security, SASL, TLS.
///
/// The SASL password is read from the variable named by `sasl_password_env`, else from the
/// first line of `sasl_password_file`; SASL without a password is a config error.
pub fn common(kafka: &KafkaConfig, client_id: &str) -> Result<ClientConfig, ConnectorError> {
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
        c.set("sasl.password", sasl_password(kafka)?);
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
    let mut c = common(kafka, client_id)?;
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
    Ok(c)
}

/// The idempotent producer of outputs and dead letters: `enable.idempotence`, `acks=all`,
/// batching (`linger.ms`, `batch.size`) and compression from the config.
pub fn producer(kafka: &KafkaConfig, client_id: &str) -> Result<ClientConfig, ConnectorError> {
    let mut c = common(kafka, client_id)?;
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
    Ok(c)
}
