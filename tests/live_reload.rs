//! A live strategy change in `riskwatch run` (Kafka mode, librdkafka's mock cluster): the
//! config file changes while the pipeline runs. A broken file is rejected and changes
//! nothing; a valid one takes effect at one event time `T` on every worker, without a
//! restart, and the outputs equal those of a replay given the same change at `T`.

use riskwatch::live::{run, LiveArgs};
use riskwatch::produce::{consume, produce};
use riskwatch::reload::{spawn, ReloadEvent, Reloader};
use riskwatch::replay::{load_config, load_strategy_change, replay, ReplayArgs};
use riskwatch_connectors::generator::{generate, GenConfig};
use riskwatch_connectors::kafka::rdkafka::consumer::{BaseConsumer, Consumer};
use riskwatch_connectors::kafka::rdkafka::message::Message;
use riskwatch_connectors::kafka::rdkafka::mocking::MockCluster;
use riskwatch_connectors::kafka::rdkafka::producer::DefaultProducerContext;
use riskwatch_connectors::kafka::rdkafka::{ClientConfig, Offset, TopicPartitionList};
use riskwatch_model::config::{KafkaConfig, DEFAULT_CONFIG};
use riskwatch_model::event::Stream;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const DAY: u64 = 86_400_000;

fn workdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("riskwatch-live-reload-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Splits each input file of `book` by event time into `first` (ts < mid) and `second`,
/// and appends sentinels: records of 16 extra customers at `mid - 1` to `first` and at
/// `last` to `second`, on every input topic. With them every partition has a record at the
/// end of each half, so no partition needs to go idle for the frontier to reach it: idle
/// detection is wall-clock timing, and a partition that resumes after an idle pause can find
/// the frontier already past its records (late events, which a replay cannot reproduce).
/// `all` gets both halves, the book the replays read.
fn split(book: &Path, mid: u64, last: u64, first: &Path, second: &Path, all: &Path) {
    for d in [first, second, all] {
        std::fs::create_dir_all(d).unwrap();
    }
    for s in Stream::ALL {
        let name = format!("{}.ndjson", s.name());
        let text = std::fs::read_to_string(book.join(&name)).unwrap();
        let (mut a, mut b) = (String::new(), String::new());
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let out = if v["ts"].as_u64().unwrap() < mid {
                &mut a
            } else {
                &mut b
            };
            out.push_str(line);
            out.push('\n');
        }
        for k in 0..16 {
            a.push_str(&sentinel(s, k, mid - 1, 1));
            b.push_str(&sentinel(s, k, last, 2));
        }
        std::fs::write(all.join(&name), format!("{a}{b}")).unwrap();
        std::fs::write(first.join(&name), a).unwrap();
        std::fs::write(second.join(&name), b).unwrap();
    }
}

/// A harmless record of extra customer `k` at `ts` on `stream` (`n` numbers the ids).
fn sentinel(stream: Stream, k: u32, ts: u64, n: u32) -> String {
    let c = format!("Z{k:07}");
    let line = match stream {
        Stream::Customers => {
            format!(r#"{{"customer_id":"{c}","ts":{ts},"credit_limit":100000,"apr_bps":1800}}"#)
        }
        Stream::Loans => format!(
            r#"{{"event_id":"ZL{k}-{n}","customer_id":"{c}","loan_id":"ZL{k}","ts":{ts},"type":"installment_due","installment_no":{n},"amount":1000,"due_ts":{}}}"#,
            ts + 365 * DAY
        ),
        Stream::Transactions => format!(
            r#"{{"event_id":"ZT{k}-{n}","customer_id":"{c}","ts":{ts},"type":"repayment","amount":100,"status":"approved"}}"#
        ),
        Stream::Behaviors => {
            format!(r#"{{"event_id":"ZB{k}-{n}","customer_id":"{c}","ts":{ts},"type":"login"}}"#)
        }
    };
    line + "\n"
}

/// Event times of the book, over all four files: (first, last).
fn span(book: &Path) -> (u64, u64) {
    let mut ts = Vec::new();
    for s in Stream::ALL {
        let text = std::fs::read_to_string(book.join(format!("{}.ndjson", s.name()))).unwrap();
        ts.extend(text.lines().map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["ts"]
                .as_u64()
                .unwrap()
        }));
    }
    (*ts.iter().min().unwrap(), *ts.iter().max().unwrap())
}

/// Reads `topic` from the beginning until a record with `ts >= at` arrives.
fn wait_for_output_at(kafka: &KafkaConfig, topic: &str, at: u64) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &kafka.brokers)
        .set("group.id", "riskwatch-test-watch")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        assert!(
            Instant::now() < deadline,
            "no output at or after {at} on {topic} within 120 s"
        );
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            let v: serde_json::Value = serde_json::from_slice(m.payload().unwrap()).unwrap();
            if v["ts"].as_u64().unwrap() >= at {
                return;
            }
        }
    }
}

/// Records of an NDJSON file with `ts < before`, without the wall-clock `emitted_at`, sorted.
fn records(path: &Path, before: u64) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut out: Vec<String> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().remove("emitted_at");
            (v["ts"].as_u64().unwrap() < before).then(|| v.to_string())
        })
        .collect();
    out.sort();
    out
}

fn rule_counts(records: &[String]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for r in records {
        let v: serde_json::Value = serde_json::from_str(r).unwrap();
        *m.entry(v["rule_id"].as_str().unwrap_or("").to_string())
            .or_default() += 1;
    }
    m
}

#[test]
fn a_config_file_change_takes_effect_at_one_event_time_without_a_restart() {
    let dir = workdir();
    let book = dir.join("book");
    generate(
        &GenConfig {
            customers: 300,
            days: 60,
            seed: 7,
            ..GenConfig::default()
        },
        &book,
    )
    .unwrap();
    let (first_ts, last_ts) = span(&book);
    let mid = first_ts + 30 * DAY;
    let full = dir.join("full");
    split(
        &book,
        mid,
        last_ts,
        &dir.join("first"),
        &dir.join("second"),
        &full,
    );

    // The broker: librdkafka's mock cluster, topics created up front.
    let cluster = MockCluster::<DefaultProducerContext>::new(1).unwrap();
    let brokers = cluster.bootstrap_servers();
    let kafka_defaults = KafkaConfig::default();
    for t in kafka_defaults.topics.inputs() {
        cluster.create_topic(t, 2, 1).unwrap();
    }
    let t = &kafka_defaults.topics;
    for topic in [&t.alerts, &t.decisions, &t.cases, &t.dead_letter] {
        cluster.create_topic(topic, 1, 1).unwrap();
    }

    // The config in force at startup: the defaults, in Kafka mode on the mock cluster; one
    // in-order producer, so no lateness; no partition goes idle (see `split`).
    let base = DEFAULT_CONFIG
        .replacen("mode = \"files\"", "mode = \"kafka\"", 1)
        .replacen(
            "brokers = \"127.0.0.1:9092\"",
            &format!("brokers = \"{brokers}\""),
            1,
        )
        .replacen("allowed_lateness = \"5s\"", "allowed_lateness = \"0ms\"", 1)
        .replacen("idle_timeout = \"30s\"", "idle_timeout = \"1h\"", 1)
        .replacen("wall_clock_advance = true", "wall_clock_advance = false", 1)
        .replacen("linger = \"5ms\"", "linger = \"0ms\"", 1);
    let changed = base.replacen("distinct_lenders_30d >= 3", "distinct_lenders_30d >= 2", 1);
    assert_ne!(base, changed);
    let path = dir.join("riskwatch.toml");
    std::fs::write(&path, &base).unwrap();
    let (config, compiled) = load_config(Some(&path)).unwrap();
    let handle = spawn(Reloader::new(&path, &config, &compiled).unwrap()).unwrap();

    produce(&config.kafka, &dir.join("first"), None).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let live = {
        let (config, compiled) = (config.clone(), compiled.clone());
        let args = LiveArgs {
            workers: 2,
            cluster: None,
            until: None,
            until_idle: false,
            idle_check: Duration::from_secs(1),
            stop: stop.clone(),
            state: None,
            print_summary: false,
            reload: Some(handle.reloads.clone()),
            metrics: None,
        };
        std::thread::spawn(move || run(&config, &compiled, &args))
    };

    // The first half is through the dataflow up to a few days before its end.
    let q = mid - 3 * DAY;
    wait_for_output_at(&config.kafka, &t.alerts, q);

    // A broken file: rejected with the key, nothing applied.
    std::fs::write(
        &path,
        base.replacen("tick = \"10ms\"", "tick = \"7 parsecs\"", 1),
    )
    .unwrap();
    let events = handle.reloads.wait_for(1, Duration::from_secs(30));
    match &events[..] {
        [ReloadEvent::Rejected { reason }] => assert!(reason.contains("time.tick"), "{reason}"),
        other => panic!("expected one rejection, got {other:?}"),
    }
    // The threshold lowered: applied at one event time, worker 0's input time.
    std::fs::write(&path, &changed).unwrap();
    let events = handle.reloads.wait_for(2, Duration::from_secs(30));
    let change_ts = match &events[..] {
        [_, ReloadEvent::Applied { ts, .. }] => *ts,
        other => panic!("expected the change applied, got {other:?}"),
    };
    assert!(
        change_ts >= q,
        "the change landed at {change_ts}, before {q}"
    );
    assert!(
        change_ts < last_ts - 20 * DAY,
        "the change landed at {change_ts}"
    );

    produce(&config.kafka, &dir.join("second"), None).unwrap();
    wait_for_output_at(&config.kafka, &t.alerts, last_ts - 5 * DAY);
    stop.store(true, Ordering::SeqCst);
    let summary = live.join().unwrap().unwrap();
    let complete = summary.complete_before;
    assert!(complete > last_ts - 5 * DAY, "complete before {complete}");
    assert_eq!(summary.reloads, events);
    assert_eq!(
        summary.late, 0,
        "late events make the live run differ from a replay"
    );

    // What went out through Kafka...
    let got = dir.join("kafka");
    std::fs::create_dir_all(&got).unwrap();
    for (kind, topic) in [
        ("alerts", &t.alerts),
        ("decisions", &t.decisions),
        ("cases", &t.cases),
    ] {
        consume(
            &config.kafka,
            topic,
            &got.join(format!("{kind}.ndjson")),
            Duration::from_millis(500),
            false,
        )
        .unwrap();
    }
    // ...equals a replay given the same change at the same event time...
    let json = load_strategy_change(&path, &compiled).unwrap();
    let replay_args = |changes: Vec<(u64, String)>| ReplayArgs {
        workers: 2,
        until: None,
        progress: false,
        cluster: None,
        config_changes: changes,
        streams: None,
        stop: None,
        state: None,
        keep: true,
        metrics: None,
        snapshots: None,
    };
    replay(
        &compiled,
        &config,
        &full,
        &dir.join("with-change"),
        &replay_args(vec![(change_ts, json)]),
    )
    .unwrap();
    replay(
        &compiled,
        &config,
        &full,
        &dir.join("without-change"),
        &replay_args(Vec::new()),
    )
    .unwrap();
    for kind in ["alerts", "decisions", "cases"] {
        let live = records(&got.join(format!("{kind}.ndjson")), complete);
        let want = records(
            &dir.join("with-change").join(format!("{kind}.ndjson")),
            complete,
        );
        assert!(
            live == want,
            "{kind}: {} live, {} from the replay with the change at {change_ts}; live run: \
             records {:?}, fed {:?}, late {}, rejected {:?}, redelivered {}, pauses {}, \
             complete before {complete}",
            live.len(),
            want.len(),
            summary.records,
            summary.fed,
            summary.late,
            summary.rejected,
            summary.redelivered,
            summary.pauses,
        );
    }
    // ...and the change did something: more multi-lending alerts than without it, all of
    // the extra ones at or after the change.
    let live = records(&got.join("alerts.ndjson"), complete);
    let before = records(&dir.join("without-change").join("alerts.ndjson"), complete);
    let (a, b) = (rule_counts(&live), rule_counts(&before));
    assert!(
        a.get("multi_lending") > b.get("multi_lending"),
        "multi_lending alerts: {a:?} with the change, {b:?} without"
    );
    let early = |r: &Vec<String>| -> Vec<String> {
        r.iter()
            .filter(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["ts"]
                    .as_u64()
                    .unwrap()
                    < change_ts
            })
            .cloned()
            .collect()
    };
    assert_eq!(
        early(&live),
        early(&before),
        "outputs before the change differ"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
