//! `riskwatch check-config --connect`: checks the environment a config will run in, the
//! way Vector's `validate` does, one line per check.
//!
//! - Kafka mode: the brokers answer with cluster metadata, through the consumer
//!   configuration `run` builds (a failure says whether they were unreachable or refused the
//!   credentials); every input and output topic and the dead-letter topic exists, with its
//!   partition count; and the static partition assignment `run` would make for
//!   `processes` × `workers` ([`assign_partitions`], the function `run` calls).
//! - Files mode: `run.input_dir` is a readable directory and `run.output_dir` is writable
//!   or can be created; the Kafka checks do not apply.
//! - Both: each `[[webhook]]` endpoint's host resolves and accepts a TCP connection, and its
//!   signing secret is present (as `Endpoint::from_config` reads it).
//!
//! Every network step (a metadata request, a DNS lookup, a connect) waits at most the
//! timeout, so the whole check is bounded. Endpoints are named by their configured name and
//! host, never by their full URL (a query string may carry a token).

use riskwatch_connectors::error::ConnectorError;
use riskwatch_connectors::kafka::{assign_partitions, describe_partitions, BrokerFailure, Probe};
use riskwatch_connectors::webhook::Endpoint;
use riskwatch_model::config::{Config, KafkaConfig, RunMode, SecurityProtocol, WebhookConfig};
use riskwatch_model::event::Stream;
use std::fmt;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What the checks run against.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Worker threads per process, for the partition assignment.
    pub workers: usize,
    /// Processes in the cluster, for the partition assignment.
    pub processes: usize,
    /// The longest any one network step may take.
    pub timeout: Duration,
}

/// The outcome of one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// It passed (`ok:`).
    Ok,
    /// It failed (`FAIL:`); the command exits 69.
    Fail,
    /// It was not run: it does not apply, or what it needs failed (`skip:`).
    Skip,
    /// A detail of the check before it (indented).
    Detail,
}

/// One printed line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    /// The outcome.
    pub status: Status,
    /// What was checked and what was found.
    pub text: String,
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefix = match self.status {
            Status::Ok => "ok: ",
            Status::Fail => "FAIL: ",
            Status::Skip => "skip: ",
            Status::Detail => "  ",
        };
        write!(f, "{prefix}{}", self.text)
    }
}

/// Runs every check that applies to `config`, handing each line to `report` as soon as it
/// is known. Returns whether none failed.
pub fn check(config: &Config, opts: &Options, report: &mut dyn FnMut(&Check)) -> bool {
    let mut ok = true;
    let mut emit = |status: Status, text: String| {
        ok &= status != Status::Fail;
        report(&Check { status, text });
    };
    match config.run.mode {
        RunMode::Kafka => kafka(&config.kafka, opts, &mut emit),
        RunMode::Files => {
            emit(
                Status::Skip,
                "kafka checks do not apply in files mode (run.mode = \"files\")".into(),
            );
            files(&config.run.input_dir, &config.run.output_dir, &mut emit);
        }
    }
    if config.webhooks.is_empty() {
        emit(Status::Skip, "webhooks: none configured".into());
    }
    for endpoint in &config.webhooks {
        webhook(endpoint, opts.timeout, &mut emit);
    }
    ok
}

type Emit<'a> = dyn FnMut(Status, String) + 'a;

fn kafka(kafka: &KafkaConfig, opts: &Options, emit: &mut Emit<'_>) {
    let brokers = &kafka.brokers;
    let ms = opts.timeout.as_millis();
    let probe = match Probe::new(kafka, opts.timeout) {
        Ok(p) => p,
        Err(e) => {
            emit(
                Status::Fail,
                format!("kafka client for brokers \"{brokers}\": {e}"),
            );
            emit(
                Status::Skip,
                "brokers, credentials, topics and the partition assignment not checked: no \
                 kafka client"
                    .into(),
            );
            return;
        }
    };
    match probe.cluster() {
        Ok(n) => {
            emit(
                Status::Ok,
                format!(
                    "brokers \"{brokers}\" reachable: the cluster metadata lists {n} broker(s)"
                ),
            );
            emit(
                Status::Ok,
                format!("credentials accepted ({})", security(kafka)),
            );
        }
        Err(e) if e.kind == BrokerFailure::Credentials => {
            emit(
                Status::Ok,
                format!("brokers \"{brokers}\" reachable: a connection was made"),
            );
            emit(
                Status::Fail,
                format!(
                    "credentials rejected by brokers \"{brokers}\" ({}): {}",
                    security(kafka),
                    e.reason
                ),
            );
            emit(
                Status::Skip,
                "topics and the partition assignment not checked: the brokers refused the \
                 credentials"
                    .into(),
            );
            return;
        }
        Err(e) => {
            emit(
                Status::Fail,
                format!(
                    "brokers \"{brokers}\" unreachable within {ms} ms: {}",
                    e.reason
                ),
            );
            emit(
                Status::Skip,
                "credentials, topics and the partition assignment not checked: no broker \
                 answered"
                    .into(),
            );
            return;
        }
    }
    let t = &kafka.topics;
    let inputs = t.inputs();
    let mut counts = [0i32; 4];
    let mut inputs_ok = true;
    for stream in Stream::ALL {
        let topic = inputs[stream as usize];
        match topic_line(&probe, topic) {
            Ok((n, line)) => {
                counts[stream as usize] = n;
                emit(
                    Status::Ok,
                    format!("input topic \"{topic}\" ({}): {line}", stream.name()),
                );
            }
            Err(reason) => {
                inputs_ok = false;
                emit(
                    Status::Fail,
                    format!("input topic \"{topic}\" ({}): {reason}", stream.name()),
                );
            }
        }
    }
    for (role, topic) in [
        ("alerts", &t.alerts),
        ("decisions", &t.decisions),
        ("cases", &t.cases),
    ] {
        match topic_line(&probe, topic) {
            Ok((_, line)) => emit(
                Status::Ok,
                format!("output topic \"{topic}\" ({role}): {line}"),
            ),
            Err(reason) => emit(
                Status::Fail,
                format!("output topic \"{topic}\" ({role}): {reason}"),
            ),
        }
    }
    let topic = &t.dead_letter;
    match topic_line(&probe, topic) {
        Ok((_, line)) => emit(Status::Ok, format!("dead-letter topic \"{topic}\": {line}")),
        Err(reason) => emit(
            Status::Fail,
            format!("dead-letter topic \"{topic}\": {reason}"),
        ),
    }
    if !inputs_ok {
        emit(
            Status::Skip,
            "partition assignment not computed: an input topic is missing".into(),
        );
        return;
    }
    let peers = opts.processes * opts.workers;
    emit(
        Status::Ok,
        format!(
            "partition assignment: {} input partitions over {} process(es) x {} worker(s)",
            counts.iter().sum::<i32>(),
            opts.processes,
            opts.workers
        ),
    );
    for global in 0..peers {
        let (process, worker) = (global / opts.workers, global % opts.workers);
        let partitions = assign_partitions(&counts, global, peers);
        emit(
            Status::Detail,
            format!(
                "process {process} worker {worker}: {}",
                describe_partitions(&partitions, inputs)
            ),
        );
    }
}

/// A topic's partition count and its line, or why it is unusable.
fn topic_line(probe: &Probe, topic: &str) -> Result<(i32, String), String> {
    match probe.topic(topic) {
        Ok(1) => Ok((1, "1 partition".into())),
        Ok(n) => Ok((n, format!("{n} partitions"))),
        Err(ConnectorError::Topic { reason, .. }) => Err(format!("missing or unusable: {reason}")),
        Err(e) => Err(e.to_string()),
    }
}

/// The security settings the clients use, without any secret.
fn security(kafka: &KafkaConfig) -> String {
    let protocol = kafka.security_protocol.as_str();
    match kafka.security_protocol {
        SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl => format!(
            "security_protocol {protocol}, sasl_mechanism {}",
            kafka
                .sasl_mechanism
                .as_deref()
                .unwrap_or("(librdkafka's default)")
        ),
        SecurityProtocol::Ssl => format!("security_protocol {protocol}"),
        SecurityProtocol::Plaintext => format!("security_protocol {protocol}: none sent"),
    }
}

fn files(input_dir: &str, output_dir: &str, emit: &mut Emit<'_>) {
    match std::fs::read_dir(input_dir) {
        Ok(_) => emit(
            Status::Ok,
            format!("run.input_dir \"{input_dir}\" exists and is readable"),
        ),
        Err(e) => emit(Status::Fail, format!("run.input_dir \"{input_dir}\": {e}")),
    }
    let out = Path::new(output_dir);
    if out.is_dir() {
        match probe_write(out) {
            Ok(()) => emit(
                Status::Ok,
                format!("run.output_dir \"{output_dir}\" is writable"),
            ),
            Err((path, e)) => emit(
                Status::Fail,
                format!(
                    "run.output_dir \"{output_dir}\" is not writable: {}: {e}",
                    path.display()
                ),
            ),
        }
        return;
    }
    if out.exists() {
        emit(
            Status::Fail,
            format!("run.output_dir \"{output_dir}\": exists and is not a directory"),
        );
        return;
    }
    // It does not exist: `run` creates it, so its nearest existing ancestor must be a
    // writable directory.
    let mut ancestor = out.parent();
    while let Some(a) = ancestor {
        let dir = if a.as_os_str().is_empty() {
            Path::new(".")
        } else {
            a
        };
        if dir.exists() {
            let verdict = if !dir.is_dir() {
                Err(format!("{} is not a directory", dir.display()))
            } else {
                probe_write(dir).map_err(|(path, e)| format!("{}: {e}", path.display()))
            };
            match verdict {
                Ok(()) => emit(
                    Status::Ok,
                    format!(
                        "run.output_dir \"{output_dir}\" does not exist and can be created in \
                         \"{}\"",
                        dir.display()
                    ),
                ),
                Err(reason) => emit(
                    Status::Fail,
                    format!("run.output_dir \"{output_dir}\" cannot be created: {reason}"),
                ),
            }
            return;
        }
        ancestor = a.parent();
    }
    emit(
        Status::Fail,
        format!("run.output_dir \"{output_dir}\": no existing ancestor directory"),
    );
}

/// Creates and removes a file in `dir`; on an error, the file's path and the error.
fn probe_write(dir: &Path) -> Result<(), (PathBuf, std::io::Error)> {
    let path = dir.join(format!(".riskwatch-check-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| (path.clone(), e))?;
    std::fs::remove_file(&path).map_err(|e| (path.clone(), e))
}

fn webhook(endpoint: &WebhookConfig, timeout: Duration, emit: &mut Emit<'_>) {
    let name = &endpoint.name;
    let ms = timeout.as_millis();
    match host_port(&endpoint.url) {
        None => emit(
            Status::Fail,
            format!("webhook \"{name}\": its url has no host (http:// or https:// URL)"),
        ),
        Some((host, port)) => {
            let shown = if host.contains(':') {
                format!("[{host}]:{port}")
            } else {
                format!("{host}:{port}")
            };
            match resolve(&host, port, timeout) {
                Err(reason) => {
                    emit(
                        Status::Fail,
                        format!("webhook \"{name}\": host {shown} does not resolve: {reason}"),
                    );
                    emit(
                        Status::Skip,
                        format!(
                            "webhook \"{name}\": connection not tried: the host does not resolve"
                        ),
                    );
                }
                Ok(addrs) => {
                    emit(
                        Status::Ok,
                        format!(
                            "webhook \"{name}\": host {shown} resolves ({} address(es))",
                            addrs.len()
                        ),
                    );
                    match connect(&addrs, timeout) {
                        Ok(addr) => emit(
                            Status::Ok,
                            format!(
                                "webhook \"{name}\": {shown} accepts a TCP connection ({addr})"
                            ),
                        ),
                        Err(reason) => emit(
                            Status::Fail,
                            format!(
                                "webhook \"{name}\": no TCP connection to {shown} within {ms} ms: \
                                 {reason}"
                            ),
                        ),
                    }
                }
            }
        }
    }
    let source = match (&endpoint.secret_env, &endpoint.secret_file) {
        (Some(var), _) => format!("environment variable {var}"),
        (None, Some(file)) => format!("secret_file \"{file}\""),
        (None, None) => "none configured".into(),
    };
    match Endpoint::from_config(endpoint, |v| std::env::var(v).ok()) {
        Ok(_) => emit(
            Status::Ok,
            format!("webhook \"{name}\": signing secret present ({source})"),
        ),
        Err(ConnectorError::Webhook { reason, .. }) => emit(
            Status::Fail,
            format!("webhook \"{name}\": signing secret or client settings: {reason}"),
        ),
        Err(e) => emit(Status::Fail, format!("webhook \"{name}\": {e}")),
    }
}

/// The host and port of an `http://` or `https://` URL (the port defaults to 80 or 443);
/// user info, path, query and fragment are dropped. An IPv6 host is returned without its
/// brackets. `None` when there is no host.
fn host_port(url: &str) -> Option<(String, u16)> {
    let (rest, default_port) = if let Some(r) = url.strip_prefix("https://") {
        (r, 443)
    } else if let Some(r) = url.strip_prefix("http://") {
        (r, 80)
    } else {
        return None;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return None;
    }
    let port = match port {
        Some(p) => p.parse().ok()?,
        None => default_port,
    };
    Some((host.to_string(), port))
}

/// Resolves `host:port`, waiting at most `timeout` (the system resolver has no timeout of
/// its own, so it runs on a thread that is left behind if it does not answer in time).
fn resolve(host: &str, port: u16, timeout: Duration) -> Result<Vec<SocketAddr>, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let target = (host.to_string(), port);
    std::thread::Builder::new()
        .name("check-dns".into())
        .spawn(move || {
            let result = (target.0.as_str(), target.1)
                .to_socket_addrs()
                .map(|addrs| addrs.collect::<Vec<_>>());
            // The receiver may have given up already.
            let _ = tx.send(result);
        })
        .map_err(|e| format!("cannot start the lookup: {e}"))?;
    match rx.recv_timeout(timeout) {
        Ok(Ok(addrs)) if !addrs.is_empty() => Ok(addrs),
        Ok(Ok(_)) => Err("no address".into()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
    }
}

/// Connects to the first of `addrs` that accepts within what is left of `timeout`.
fn connect(addrs: &[SocketAddr], timeout: Duration) -> Result<SocketAddr, String> {
    let start = Instant::now();
    let mut last = String::from("no address tried");
    for addr in addrs {
        let left = timeout.saturating_sub(start.elapsed());
        if left.is_zero() {
            break;
        }
        match TcpStream::connect_timeout(addr, left) {
            Ok(_) => return Ok(*addr),
            Err(e) => last = format!("{addr}: {e}"),
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port_come_from_the_authority_only() {
        let hp = |u: &str| host_port(u);
        assert_eq!(
            hp("https://collect.example.com/hook?token=s3cret"),
            Some(("collect.example.com".into(), 443))
        );
        assert_eq!(
            hp("http://127.0.0.1:8080/x"),
            Some(("127.0.0.1".into(), 8080))
        );
        assert_eq!(
            hp("http://user:pw@h.example:81#f"),
            Some(("h.example".into(), 81))
        );
        assert_eq!(hp("https://[::1]:8443/p"), Some(("::1".into(), 8443)));
        assert_eq!(hp("https://[::1]/p"), Some(("::1".into(), 443)));
        assert_eq!(hp("http://h.example?x=1"), Some(("h.example".into(), 80)));
        assert_eq!(hp("http:///path"), None);
        assert_eq!(hp("ftp://h.example"), None);
        assert_eq!(hp("http://h.example:port"), None);
    }

    #[test]
    fn a_missing_output_dir_is_creatable_under_a_writable_ancestor() {
        let dir = std::env::temp_dir().join(format!("rw-connect-check-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut lines = Vec::new();
        let input = dir.join("in");
        let out = dir.join("a/b/out");
        files(
            input.to_str().unwrap(),
            out.to_str().unwrap(),
            &mut |s, t| lines.push(Check { status: s, text: t }.to_string()),
        );
        assert_eq!(
            lines,
            [
                format!(
                    "FAIL: run.input_dir \"{}\": No such file or directory (os error 2)",
                    input.display()
                ),
                format!(
                    "ok: run.output_dir \"{}\" does not exist and can be created in \"{}\"",
                    out.display(),
                    dir.display()
                ),
            ]
        );
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            0,
            "nothing is left behind"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
