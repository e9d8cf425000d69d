//! `riskwatch produce`: loads a book's four NDJSON files into the input topics in
//! event-time order, keyed by `customer_id`, through an idempotent producer; and
//! `riskwatch consume`: copies a topic into an NDJSON file (tests and operations).
//!
//! Order: the files are merged like replay merges them, by `ts`, then stream (customers,
//! loans, transactions, behaviors), then line. A line that does not decode keeps its place
//! in its file (it sorts at the `ts` of the valid line before it) and is produced as is, so
//! it reaches the dead-letter topic through the pipeline. Each customer's records of one
//! stream land in one partition in file order, which is what makes `riskwatch run` give
//! exactly the replay output (docs/KAFKA.md).

use anyhow::Context;
use compact_str::CompactString;
use riskwatch_connectors::kafka::{
    config as kafka_config, EndOffsets, KafkaSink, END_OFFSETS_INTERVAL_MS,
};
use riskwatch_model::config::KafkaConfig;
use riskwatch_model::decode::decode;
use riskwatch_model::event::Stream;
use serde::Serialize;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

/// What `produce` did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ProduceSummary {
    /// Records produced per stream (customers, loans, transactions, behaviors).
    pub records: [u64; 4],
    /// Lines that did not decode (produced anyway, without a key if none was found).
    pub undecodable: u64,
    /// Seconds from the first record to the last acknowledgement.
    pub seconds: f64,
    /// Records per second.
    pub records_per_s: f64,
}

struct Line {
    ts: u64,
    start: usize,
    end: usize,
    key: CompactString,
}

fn lines_of(stream: Stream, text: &[u8], undecodable: &mut u64) -> Vec<Line> {
    let mut out = Vec::new();
    let mut last_ts = 0;
    let mut start = 0;
    while start < text.len() {
        let end = memchr(text, start);
        let mut e = end;
        if e > start && text[e - 1] == b'\r' {
            e -= 1;
        }
        let line = &text[start..e];
        if line.iter().any(|b| !b.is_ascii_whitespace()) {
            let (ts, key) = match decode(stream, line, 0) {
                Ok(ev) => (ev.ts, ev.customer_id),
                Err(_) => {
                    *undecodable += 1;
                    let key = serde_json::from_slice::<serde_json::Value>(line)
                        .ok()
                        .and_then(|v| v.get("customer_id")?.as_str().map(CompactString::from))
                        .unwrap_or_default();
                    (last_ts, key)
                }
            };
            last_ts = ts;
            out.push(Line {
                ts,
                start,
                end: e,
                key,
            });
        }
        start = end + 1;
    }
    out
}

fn memchr(text: &[u8], from: usize) -> usize {
    text[from..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(text.len(), |i| from + i)
}

/// Produces the book in `input` to the input topics of `kafka`, at `rate` records/s if
/// given (else as fast as the producer goes). Every record is acknowledged before this
/// returns; a record that cannot be delivered is an error.
pub fn produce(
    kafka: &KafkaConfig,
    input: &Path,
    rate: Option<u64>,
) -> anyhow::Result<ProduceSummary> {
    // The same check as replay: a missing directory or stream fails before anything is sent.
    let inputs = riskwatch_connectors::file::find_inputs(input, None)?;
    let mut texts = Vec::new();
    for path in inputs.paths.iter().flatten() {
        texts.push(std::fs::read(path).map_err(|e| {
            riskwatch_connectors::error::ConnectorError::Io {
                path: path.display().to_string(),
                source: e,
            }
        })?);
    }
    let mut summary = ProduceSummary::default();
    let lines: Vec<Vec<Line>> = Stream::ALL
        .iter()
        .map(|&s| lines_of(s, &texts[s as usize], &mut summary.undecodable))
        .collect();
    let sink = KafkaSink::new(
        &kafka_config::producer(kafka, &format!("{}-produce", kafka.client_id))?,
        None,
    )?;
    let topics = kafka.topics.inputs();
    let mut writers: Vec<_> = topics.iter().map(|t| sink.topic(t)).collect();
    let mut heads = [0usize; 4];
    let start = Instant::now();
    let mut n: u64 = 0;
    loop {
        // The next line by (ts, stream, line), as replay merges.
        let mut best: Option<(u64, usize)> = None;
        for (si, l) in lines.iter().enumerate() {
            if let Some(line) = l.get(heads[si]) {
                if best.is_none_or(|(ts, _)| line.ts < ts) {
                    best = Some((line.ts, si));
                }
            }
        }
        let Some((_, si)) = best else { break };
        let line = &lines[si][heads[si]];
        heads[si] += 1;
        writers[si].send(line.key.as_bytes(), &texts[si][line.start..line.end], &[])?;
        summary.records[si] += 1;
        n += 1;
        if let Some(rate) = rate.filter(|r| *r > 0) {
            if n.is_multiple_of(64) {
                let due = Duration::from_secs_f64(n as f64 / rate as f64);
                let elapsed = start.elapsed();
                if due > elapsed {
                    std::thread::sleep(due - elapsed);
                }
            }
        }
    }
    drop(writers);
    sink.flush(Duration::from_secs(120))
        .context("waiting for the brokers to acknowledge every record")?;
    summary.seconds = start.elapsed().as_secs_f64();
    summary.records_per_s = n as f64 / summary.seconds.max(1e-9);
    Ok(summary)
}

/// Copies every record of `topic` (all partitions, from the beginning) into `out` as
/// NDJSON, until no record arrived for `idle` and every partition is at its end offset.
/// With `meta`, each line is `{"partition","offset","timestamp","key","headers","value"}`
/// (value parsed as JSON when it is JSON); otherwise the raw value. Returns the count.
pub fn consume(
    kafka: &KafkaConfig,
    topic: &str,
    out: &Path,
    idle: Duration,
    meta: bool,
) -> anyhow::Result<u64> {
    use riskwatch_connectors::kafka::rdkafka::consumer::{BaseConsumer, Consumer};
    use riskwatch_connectors::kafka::rdkafka::message::{Headers, Message};
    let mut config = kafka_config::consumer(kafka, &format!("{}-consume", kafka.client_id))?;
    config.set(
        "statistics.interval.ms",
        END_OFFSETS_INTERVAL_MS.to_string(),
    );
    let consumer: BaseConsumer<EndOffsets> = config
        .create_with_context(EndOffsets::default())
        .context("creating the consumer")?;
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(30))
        .context("fetching metadata")?;
    let partitions: Vec<i32> = md
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .map(|t| t.partitions().iter().map(|p| p.id()).collect())
        .unwrap_or_default();
    anyhow::ensure!(
        !partitions.is_empty(),
        "topic \"{topic}\" has no partitions"
    );
    let mut tpl = riskwatch_connectors::kafka::rdkafka::TopicPartitionList::new();
    for p in &partitions {
        tpl.add_partition_offset(
            topic,
            *p,
            riskwatch_connectors::kafka::rdkafka::Offset::Beginning,
        )?;
    }
    consumer.assign(&tpl)?;
    let mut next = vec![0i64; partitions.iter().max().map_or(0, |m| *m as usize + 1)];
    let mut file = std::io::BufWriter::new(
        std::fs::File::create(out).with_context(|| format!("creating {}", out.display()))?,
    );
    let mut n = 0;
    let mut last = Instant::now();
    loop {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                last = Instant::now();
                next[m.partition() as usize] = m.offset() + 1;
                let value = m.payload().unwrap_or(&[]);
                if meta {
                    let mut headers = serde_json::Map::new();
                    if let Some(h) = m.headers() {
                        for h in h.iter() {
                            headers.insert(
                                h.key.to_string(),
                                String::from_utf8_lossy(h.value.unwrap_or_default()).into(),
                            );
                        }
                    }
                    let line = serde_json::json!({
                        "partition": m.partition(),
                        "offset": m.offset(),
                        "timestamp": m.timestamp().to_millis(),
                        "key": m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                        "headers": headers,
                        "value": serde_json::from_slice::<serde_json::Value>(value)
                            .unwrap_or_else(|_| String::from_utf8_lossy(value).into()),
                    });
                    serde_json::to_writer(&mut file, &line)?;
                } else {
                    file.write_all(value)?;
                }
                file.write_all(b"\n")?;
                n += 1;
            }
            Some(Err(e)) => tracing::warn!(error = %e, "consumer error"),
            None => {}
        }
        if last.elapsed() >= idle {
            let mut at_end = true;
            for p in &partitions {
                // The high watermark of the latest fetch (brokers' ListOffsets answers are
                // not reliable everywhere); a partition not described yet is not at its end.
                at_end &= consumer
                    .context()
                    .get(topic, *p)
                    .is_some_and(|(low, high)| next[*p as usize].max(low) >= high);
            }
            if at_end {
                break;
            }
            last = Instant::now();
        }
    }
    file.flush()?;
    Ok(n)
}
