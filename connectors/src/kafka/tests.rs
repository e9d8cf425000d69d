//! Tests of the Kafka source and sink against librdkafka's in-process mock cluster: static
//! assignment, decoding, watermarks, frontier, idleness, late events, dead letters,
//! backpressure, positions and the JSON sink. Clocks are passed in, so every check is exact.

use super::config;
use super::metrics::KafkaMetrics;
use super::sink::KafkaSink;
use super::source::{assign_partitions, kafka_seq, KafkaSource, PartitionId, SourceSettings};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};
use riskwatch_model::config::{KafkaConfig, StartOffset};
use riskwatch_model::event::{Event, Stream};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const DLQ: &str = "riskwatch.rejected";

struct Mock {
    _cluster: MockCluster<'static, DefaultProducerContext>,
    kafka: KafkaConfig,
    producer: ThreadedProducer<DefaultProducerContext>,
}

/// A mock cluster with the four input topics of `partitions` partitions each and the
/// dead-letter and alerts topics of one.
fn mock(partitions: i32) -> Mock {
    let cluster = MockCluster::new(1).expect("mock cluster");
    let mut kafka = KafkaConfig {
        brokers: cluster.bootstrap_servers(),
        ..KafkaConfig::default()
    };
    kafka.linger = riskwatch_model::time::Millis(0);
    for t in kafka.topics.inputs() {
        cluster
            .create_topic(t, partitions, 1)
            .expect("create topic");
    }
    cluster.create_topic(DLQ, 1, 1).expect("create topic");
    cluster
        .create_topic(&kafka.topics.alerts, 1, 1)
        .expect("create topic");
    let producer = config::producer(&kafka, "test-producer")
        .expect("producer config")
        .create()
        .expect("producer");
    Mock {
        _cluster: cluster,
        kafka,
        producer,
    }
}

impl Mock {
    fn produce(&self, stream: Stream, partition: i32, payload: &str) {
        let topic = self.kafka.topics.inputs()[stream as usize];
        self.producer
            .send(
                BaseRecord::to(topic)
                    .partition(partition)
                    .key("k")
                    .payload(payload),
            )
            .expect("enqueue");
        self.producer
            .flush(Duration::from_secs(10))
            .expect("delivered");
    }

    fn source(
        &self,
        assignment: Vec<PartitionId>,
        settings: SourceSettings,
        now: u64,
    ) -> KafkaSource {
        let consumer = config::consumer(&self.kafka, "test-consumer").expect("consumer config");
        let sink = KafkaSink::new(
            &config::producer(&self.kafka, "test-dlq").expect("producer config"),
            None,
        )
        .expect("sink");
        KafkaSource::new(
            &consumer,
            self.kafka.topics.inputs(),
            assignment,
            settings,
            Some(sink.topic(DLQ)),
            None,
            now,
            None,
        )
        .expect("source")
    }

    /// Reads every record of `topic` partition 0 until `n` arrived.
    fn read(&self, topic: &str, n: usize) -> Vec<rdkafka::message::OwnedMessage> {
        let consumer: BaseConsumer = config::consumer(&self.kafka, "test-reader")
            .expect("config")
            .create()
            .expect("consumer");
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, 0, Offset::Beginning)
            .expect("tpl");
        consumer.assign(&tpl).expect("assign");
        let mut out = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while out.len() < n && Instant::now() < deadline {
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
                out.push(m.detach());
            }
        }
        out
    }
}

fn settings() -> SourceSettings {
    SourceSettings {
        tick: 10,
        allowed_lateness: 1_000,
        idle_timeout: 5_000,
        wall_clock_advance: false,
        max_future_skew: 86_400_000,
        until: None,
        start: StartOffset::Earliest,
    }
}

fn txn(id: &str, customer: &str, ts: u64) -> String {
    format!(
        r#"{{"event_id":"{id}","customer_id":"{customer}","ts":{ts},"type":"purchase","amount":1000}}"#
    )
}

fn customer(customer: &str, ts: u64) -> String {
    format!(r#"{{"customer_id":"{customer}","ts":{ts},"credit_limit":100000,"apr_bps":1800}}"#)
}

/// Polls at `now` until `n` records were taken (valid or not); panics after 20 s.
fn take(source: &mut KafkaSource, now: u64, n: usize) -> Vec<(u64, Event)> {
    let mut out = Vec::new();
    let mut taken = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    while taken < n {
        assert!(
            Instant::now() < deadline,
            "only {taken} of {n} records arrived"
        );
        taken += source
            .poll(now, Duration::from_millis(50), 1000, &mut out)
            .expect("poll");
    }
    assert_eq!(taken, n, "more records than expected");
    out
}

fn all(partitions: i32) -> Vec<PartitionId> {
    assign_partitions(&[partitions; 4], 0, 1)
}

fn id(stream: Stream, partition: i32) -> PartitionId {
    PartitionId { stream, partition }
}

#[test]
fn assignment_deals_partitions_round_robin_in_stream_then_partition_order() {
    let counts = [2, 1, 3, 2];
    let lists: Vec<Vec<PartitionId>> = (0..3).map(|w| assign_partitions(&counts, w, 3)).collect();
    assert_eq!(
        lists[0],
        vec![
            id(Stream::Customers, 0),
            id(Stream::Transactions, 0),
            id(Stream::Behaviors, 0)
        ]
    );
    assert_eq!(
        lists[1],
        vec![
            id(Stream::Customers, 1),
            id(Stream::Transactions, 1),
            id(Stream::Behaviors, 1)
        ]
    );
    assert_eq!(
        lists[2],
        vec![id(Stream::Loans, 0), id(Stream::Transactions, 2)]
    );
    // Every partition exactly once, for any number of workers.
    for peers in 1..10 {
        let mut seen: Vec<PartitionId> = (0..peers)
            .flat_map(|w| assign_partitions(&counts, w, peers))
            .collect();
        seen.sort();
        assert_eq!(seen, assign_partitions(&counts, 0, 1), "{peers} workers");
    }
}

#[test]
fn seq_orders_by_stream_then_partition_then_offset() {
    let a = kafka_seq(Stream::Customers, 5, 1_000_000);
    let b = kafka_seq(Stream::Loans, 0, 0);
    let c = kafka_seq(Stream::Loans, 0, 1);
    let d = kafka_seq(Stream::Loans, 1, 0);
    assert!(a < b && b < c && c < d);
    assert_eq!(kafka_seq(Stream::Behaviors, 65_535, (1 << 40) - 1) >> 56, 3);
}

#[test]
fn events_enter_at_their_tick_with_partition_offset_seq() {
    let m = mock(1);
    m.produce(Stream::Transactions, 0, &txn("T1", "C1", 10_001));
    m.produce(Stream::Transactions, 0, &txn("T2", "C1", 10_010));
    m.produce(Stream::Customers, 0, &customer("C1", 9_000));
    let mut s = m.source(all(1), settings(), 100_000);
    let mut got = take(&mut s, 100_000, 3);
    got.sort_by_key(|(_, e)| e.seq);
    let summary: Vec<(u64, u64, u64)> = got.iter().map(|(t, e)| (*t, e.ts, e.seq)).collect();
    assert_eq!(
        summary,
        vec![
            (9_000, 9_000, kafka_seq(Stream::Customers, 0, 0)),
            (10_010, 10_001, kafka_seq(Stream::Transactions, 0, 0)),
            (10_010, 10_010, kafka_seq(Stream::Transactions, 0, 1)),
        ]
    );
    assert_eq!(s.stats().records, [1, 0, 2, 0]);
    assert_eq!(s.stats().fed, [1, 0, 2, 0]);
    let positions = s.positions();
    assert!(positions.contains(&(m.kafka.topics.transactions.clone(), 0, 2)));
    assert!(positions.contains(&(m.kafka.topics.customers.clone(), 0, 1)));
    assert!(positions.contains(&(m.kafka.topics.loans.clone(), 0, -1)));
}

#[test]
fn frontier_is_the_min_watermark_of_active_partitions_and_skips_idle_ones() {
    let m = mock(2);
    let t0 = 100_000;
    let mut s = m.source(all(2), settings(), t0);
    // Stage 1 at t0: customers/0 and transactions/1.
    m.produce(Stream::Customers, 0, &customer("C1", 10_000));
    m.produce(Stream::Transactions, 1, &txn("T1", "C2", 15_000));
    take(&mut s, t0, 2);
    // Stage 2 at t0 + 3 s: transactions/0 twice, transactions/1 once.
    m.produce(Stream::Transactions, 0, &txn("T2", "C1", 20_000));
    m.produce(Stream::Transactions, 0, &txn("T3", "C1", 25_000));
    m.produce(Stream::Transactions, 1, &txn("T4", "C2", 16_000));
    take(&mut s, t0 + 3_000, 3);
    assert_eq!(s.watermark(id(Stream::Customers, 0)), Some(9_000));
    assert_eq!(s.watermark(id(Stream::Transactions, 0)), Some(24_000));
    assert_eq!(s.watermark(id(Stream::Transactions, 1)), Some(15_000));
    assert_eq!(s.watermark(id(Stream::Loans, 0)), None);
    // Partitions that never had a record hold the frontier until the idle timeout.
    assert_eq!(s.advance(t0 + 3_000), 0);
    assert!(!s.is_idle(id(Stream::Loans, 0), t0 + 4_999));
    // At t0 + 5 s the empty partitions and customers/0 are idle: min of the two active.
    assert!(s.is_idle(id(Stream::Loans, 0), t0 + 5_000));
    assert!(s.is_idle(id(Stream::Customers, 0), t0 + 5_000));
    assert!(!s.is_idle(id(Stream::Transactions, 0), t0 + 5_000));
    assert_eq!(s.advance(t0 + 5_000), 15_000);
    // All idle, wall clock off: the largest watermark.
    assert_eq!(s.advance(t0 + 8_000), 24_000);
    assert_eq!(s.frontier(), 24_000);
    // A late event enters at the frontier and is counted; the frontier never goes back.
    m.produce(Stream::Transactions, 1, &txn("T5", "C2", 12_000));
    let late = take(&mut s, t0 + 8_500, 1);
    assert_eq!(late[0].0, 24_000);
    assert_eq!(late[0].1.ts, 12_000);
    assert_eq!(s.stats().late, 1);
    assert_eq!(s.advance(t0 + 8_500), 24_000);
}

#[test]
fn all_idle_partitions_follow_the_wall_clock_when_enabled() {
    let m = mock(1);
    let t0 = 1_000_000;
    let mut s = m.source(
        all(1),
        SourceSettings {
            wall_clock_advance: true,
            ..settings()
        },
        t0,
    );
    m.produce(Stream::Transactions, 0, &txn("T1", "C1", 500_000));
    take(&mut s, t0, 1);
    assert_eq!(
        s.advance(t0 + 1_000),
        0,
        "empty partitions are not idle yet"
    );
    assert_eq!(s.advance(t0 + 5_005), ceil10(t0 + 5_005 - 1_000));
    assert_eq!(s.advance(t0 + 9_000), t0 + 8_000);
}

fn ceil10(t: u64) -> u64 {
    t.div_ceil(10) * 10
}

#[test]
fn rejected_records_go_to_the_dead_letter_topic_with_reason_and_position() {
    let m = mock(1);
    let now = 100_000;
    let future = now + 86_400_000 + 1;
    m.produce(Stream::Transactions, 0, "{not json");
    m.produce(
        Stream::Transactions,
        0,
        r#"{"event_id":"T1","customer_id":"C1","ts":5000,"type":"purchase"}"#,
    );
    m.produce(Stream::Transactions, 0, &txn("T2", "C1", future));
    m.produce(Stream::Transactions, 0, &txn("T3", "C1", 6_000));
    let mut s = m.source(all(1), settings(), now);
    let got = take(&mut s, now, 4);
    assert_eq!(got.len(), 1, "the valid record still flows");
    assert_eq!(got[0].1.ts, 6_000);
    let expected: BTreeMap<String, u64> = [("json", 1), ("missing:amount", 1), ("future_ts", 1)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    assert_eq!(s.stats().rejected, expected);
    // A future record does not move the watermark.
    assert_eq!(s.watermark(id(Stream::Transactions, 0)), Some(5_000));
    drop(s);
    let dead = m.read(DLQ, 3);
    assert_eq!(dead.len(), 3);
    let mut rows = Vec::new();
    for msg in &dead {
        let headers = msg.headers().expect("headers");
        let h: BTreeMap<String, String> = headers
            .iter()
            .map(|h| {
                (
                    h.key.to_string(),
                    String::from_utf8(h.value.unwrap_or_default().to_vec()).expect("utf8"),
                )
            })
            .collect();
        let value: serde_json::Value =
            serde_json::from_slice(msg.payload().expect("payload")).expect("rejected json");
        assert_eq!(value["reason"].as_str(), Some(h["reason"].as_str()));
        assert_eq!(value["source"], "transactions");
        assert_eq!(value["partition"], 0);
        assert_eq!(value["offset"].to_string(), h["offset"]);
        assert_eq!(msg.key(), Some(&b"k"[..]));
        rows.push((
            h["reason"].clone(),
            h["source"].clone(),
            h["partition"].clone(),
            h["offset"].clone(),
        ));
    }
    assert_eq!(
        rows,
        vec![
            ("json".into(), "transactions".into(), "0".into(), "0".into()),
            (
                "missing:amount".into(),
                "transactions".into(),
                "0".into(),
                "1".into()
            ),
            (
                "future_ts".into(),
                "transactions".into(),
                "0".into(),
                "2".into()
            ),
        ]
    );
    let line: serde_json::Value =
        serde_json::from_slice(dead[0].payload().expect("payload")).expect("json");
    assert_eq!(line["line"], "{not json");
}

#[test]
fn events_after_until_move_the_watermark_but_are_not_fed() {
    let m = mock(1);
    m.produce(Stream::Transactions, 0, &txn("T1", "C1", 10_000));
    m.produce(Stream::Transactions, 0, &txn("T2", "C1", 30_000));
    let mut s = m.source(
        all(1),
        SourceSettings {
            until: Some(20_000),
            ..settings()
        },
        100_000,
    );
    let got = take(&mut s, 100_000, 2);
    assert_eq!(got.len(), 1);
    assert_eq!(s.stats().beyond_until, 1);
    assert_eq!(s.watermark(id(Stream::Transactions, 0)), Some(29_000));
}

#[test]
fn two_workers_consume_disjoint_partitions() {
    let m = mock(2);
    for p in 0..2 {
        m.produce(
            Stream::Transactions,
            p,
            &txn(&format!("T{p}"), "C1", 1_000 + p as u64),
        );
        m.produce(Stream::Behaviors, p, &txn(&format!("B{p}"), "C1", 2_000));
    }
    let counts = [2; 4];
    let mut w0 = m.source(assign_partitions(&counts, 0, 2), settings(), 100_000);
    let mut w1 = m.source(assign_partitions(&counts, 1, 2), settings(), 100_000);
    // Worker 0 has partition 0 of each topic, worker 1 partition 1 (4 partitions each).
    let a = take(&mut w0, 100_000, 2);
    let b = take(&mut w1, 100_000, 2);
    assert!(a.iter().all(|(_, e)| (e.seq >> 40) & 0xFFFF == 0));
    assert!(b.iter().all(|(_, e)| (e.seq >> 40) & 0xFFFF == 1));
    // Behaviour records lack behaviour fields: rejected, counted on the right worker.
    assert_eq!(w0.stats().rejected.values().sum::<u64>(), 1);
    assert_eq!(w1.stats().rejected.values().sum::<u64>(), 1);
}

#[test]
fn pause_takes_nothing_and_resume_continues_from_the_position() {
    let m = mock(1);
    let mut s = m.source(all(1), settings(), 100_000);
    m.produce(Stream::Transactions, 0, &txn("T1", "C1", 1_000));
    take(&mut s, 100_000, 1);
    s.pause(100_000);
    assert!(s.is_paused());
    m.produce(Stream::Transactions, 0, &txn("T2", "C1", 2_000));
    m.produce(Stream::Transactions, 0, &txn("T3", "C1", 3_000));
    let mut out = Vec::new();
    let until = Instant::now() + Duration::from_millis(1_500);
    while Instant::now() < until {
        s.poll(100_000, Duration::from_millis(50), 100, &mut out)
            .expect("poll");
    }
    assert!(out.is_empty(), "nothing arrives while paused: {out:?}");
    // Paused time does not make partitions idle.
    assert!(!s.is_idle(id(Stream::Transactions, 0), 190_000));
    s.resume(190_000);
    assert!(!s.is_idle(id(Stream::Transactions, 0), 190_000));
    let got = take(&mut s, 190_000, 2);
    let ts: Vec<u64> = got.iter().map(|(_, e)| e.ts).collect();
    assert_eq!(ts, vec![2_000, 3_000]);
    assert!(s
        .positions()
        .contains(&(m.kafka.topics.transactions.clone(), 0, 3)));
}

#[test]
fn caught_up_compares_positions_with_fetched_end_offsets() {
    let m = mock(1);
    m.produce(Stream::Transactions, 0, &txn("T1", "C1", 1_000));
    m.produce(Stream::Transactions, 0, &txn("T2", "C1", 2_000));
    let mut s = m.source(all(1), settings(), 100_000);
    assert!(!s.caught_up(), "nothing consumed yet");
    let mut out = Vec::new();
    while out.is_empty() {
        s.poll(100_000, Duration::from_millis(50), 1, &mut out)
            .expect("poll");
    }
    // The end offsets come with the consumer's statistics (every 250 ms, served by poll):
    // one record of two consumed is never the end.
    std::thread::sleep(Duration::from_millis(400));
    s.poll(100_000, Duration::from_millis(10), 0, &mut out)
        .expect("poll");
    assert!(!s.caught_up(), "one record left");
    take(&mut s, 100_000, 1);
    out.clear();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !s.caught_up() {
        assert!(Instant::now() < deadline, "never caught up");
        s.poll(100_000, Duration::from_millis(50), 10, &mut out)
            .expect("poll");
    }
    assert!(out.is_empty());
}

#[test]
fn sink_writes_json_with_key_and_headers_and_counts() {
    let m = mock(1);
    let metrics = KafkaMetrics::unregistered().expect("metrics");
    let sink = KafkaSink::new(
        &config::producer(&m.kafka, "test-sink").expect("config"),
        Some(metrics.clone()),
    )
    .expect("sink");
    let topic = m.kafka.topics.alerts.clone();
    let mut w = sink.topic(&topic);
    for i in 0..3 {
        let value = serde_json::json!({"customer_id": format!("C{i}"), "n": i});
        w.send_json(
            format!("C{i}").as_bytes(),
            &value,
            &[("strategy", b"baseline"), ("strategy_version", b"v1")],
        )
        .expect("send");
    }
    w.sync_metrics();
    sink.flush(Duration::from_secs(10)).expect("flush");
    assert_eq!(sink.delivered(), 3);
    assert_eq!(metrics.sink_records.with_label_values(&[&topic]).get(), 3);
    let got = m.read(&topic, 3);
    assert_eq!(got.len(), 3);
    for (i, msg) in got.iter().enumerate() {
        assert_eq!(msg.key(), Some(format!("C{i}").as_bytes()));
        let v: serde_json::Value =
            serde_json::from_slice(msg.payload().expect("payload")).expect("json");
        assert_eq!(v["n"], i);
        let h = msg.headers().expect("headers");
        assert_eq!(h.count(), 2);
        assert_eq!(h.get(0).key, "strategy");
        assert_eq!(h.get(0).value, Some(&b"baseline"[..]));
        assert_eq!(h.get(1).key, "strategy_version");
    }
    sink.health().expect("healthy");
}

#[test]
fn pausing_with_records_in_flight_loses_and_repeats_none() {
    let m = mock(1);
    for i in 0..3_000u64 {
        let topic = m.kafka.topics.inputs()[Stream::Transactions as usize];
        m.producer
            .send(BaseRecord::to(topic).partition(0).key("k").payload(&txn(
                &format!("T{i}"),
                "C1",
                1_000 + i,
            )))
            .expect("enqueue");
    }
    m.producer.flush(Duration::from_secs(10)).expect("flush");
    let mut s = m.source(all(1), settings(), 100_000);
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut round = 0;
    while out.len() < 3_000 && Instant::now() < deadline {
        s.poll(100_000, Duration::from_millis(20), 50, &mut out)
            .expect("poll");
        round += 1;
        if round % 2 == 0 {
            s.pause(100_000);
            s.poll(100_000, Duration::from_millis(5), 50, &mut out)
                .expect("poll");
            s.resume(100_000);
        }
    }
    let offsets: Vec<u64> = out.iter().map(|(_, e)| e.seq & ((1 << 40) - 1)).collect();
    assert_eq!(offsets, (0..3_000).collect::<Vec<u64>>(), "{round} rounds");
}
