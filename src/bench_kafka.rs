//! `riskwatch bench --kafka --brokers B`: end-to-end throughput and latency through a Kafka
//! broker: producer → input topics → `riskwatch run` (in this process) → alerts topic →
//! consumer.
//!
//! Fixed rates: a producer writes a synthetic stream at the rate (event time = the
//! record's produce time, wall clock) while the pipeline runs live; latency is from the
//! input record's produce timestamp to the output record's produce timestamp (the Kafka
//! message timestamps), where the input side is the alert's `ts`: the triggering event's
//! time rounded up to the tick, so a figure can under-state by less than one tick (10 ms).
//! Measured are alerts after a 3 s warm-up and before the stream's last 2 s (its last
//! events wait for the partitions' idle timeout, 1 s here: a stream end, not steady state).
//! The pipeline runs with `allowed_lateness = 0` (one in-order producer) and
//! `idle_timeout = 1s`; `RISKWATCH__…` variables override any setting.
//! As fast as possible (`rate 0`): the stream is produced first, then the pipeline consumes
//! it to the end (`--until-idle`); throughput is records over the time to drain them.
//! Every run uses fresh topics (`rwbench-<pid>-<n>-…`), created with the admin API.

use crate::live::{run, LiveArgs};
use anyhow::Context;
use riskwatch_connectors::kafka::rdkafka::admin::{
    AdminClient, AdminOptions, NewTopic, TopicReplication,
};
use riskwatch_connectors::kafka::rdkafka::client::DefaultClientContext;
use riskwatch_connectors::kafka::rdkafka::consumer::{BaseConsumer, Consumer};
use riskwatch_connectors::kafka::rdkafka::message::Message;
use riskwatch_connectors::kafka::{config as kafka_config, KafkaSink};
use riskwatch_dataflows::operators::evaluate::wall_clock_ms;
use riskwatch_dataflows::plan::compile;
use riskwatch_model::config::{Config, KafkaConfig, KafkaTopics, RunMode};
use riskwatch_model::time::Millis;
use serde::Serialize;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Options of the Kafka benchmark.
#[derive(Clone, Debug)]
pub struct KafkaBenchArgs {
    /// Broker `host:port`.
    pub brokers: String,
    /// Input rates in events/s; 0 = as fast as possible.
    pub rates: Vec<u64>,
    /// Seconds of input per fixed-rate run (and 50,000 × seconds events for rate 0).
    pub seconds: u64,
    /// Customers in the synthetic stream.
    pub customers: u64,
    /// Worker threads of the pipeline.
    pub workers: usize,
    /// Partitions per input topic.
    pub partitions: i32,
    /// Working directory (offsets files).
    pub dir: PathBuf,
    /// Runs per rate; each figure is the median over them (fresh topics every run).
    pub runs: usize,
    /// Checkpoint into a fresh state directory at this wall-time interval (ms); none when
    /// `None`.
    pub checkpoint_every: Option<u64>,
}

/// One run.
#[derive(Clone, Debug, Serialize)]
pub struct KafkaFigure {
    /// Target input rate (0 = as fast as possible).
    pub rate: u64,
    /// Input records produced.
    pub events: u64,
    /// Achieved producer rate, records/s.
    pub produced_per_s: f64,
    /// Records the pipeline consumed per second: over the producing window for fixed
    /// rates, over the drain time for rate 0.
    pub consumed_per_s: f64,
    /// Alerts measured (after a 3 s warm-up, before the last 2 s of the stream).
    pub outputs: u64,
    /// Latency p50, ms (fixed rates only).
    pub p50_ms: f64,
    /// Latency p99, ms.
    pub p99_ms: f64,
    /// Latency max, ms.
    pub max_ms: f64,
    /// Times backpressure paused a worker.
    pub pauses: u64,
    /// Checkpoints committed (with `--checkpoint-every`; median over runs).
    pub checkpoints: u64,
    /// The state directory's size on disk at the end, bytes (median over runs).
    pub state_bytes: u64,
    /// Runs the figures are medians of.
    pub runs: usize,
}

/// The report.
#[derive(Clone, Debug, Serialize)]
pub struct KafkaBenchReport {
    /// Machine.
    pub machine: String,
    /// Broker and pipeline settings.
    pub settings: String,
    /// Runs.
    pub figures: Vec<KafkaFigure>,
}

/// Formats the report as a table.
pub fn table(r: &KafkaBenchReport) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(s, "machine: {}\nsettings: {}", r.machine, r.settings);
    let _ = writeln!(
        s,
        "\n  {:>8} {:>9} {:>11} {:>11} {:>8} {:>8} {:>8} {:>8} {:>6} {:>6} {:>9} {:>4}",
        "rate",
        "events",
        "produced/s",
        "consumed/s",
        "outputs",
        "p50 ms",
        "p99 ms",
        "max ms",
        "pauses",
        "ckpts",
        "state MB",
        "runs"
    );
    for f in &r.figures {
        let rate = if f.rate == 0 {
            "max".to_string()
        } else {
            f.rate.to_string()
        };
        let _ = writeln!(
            s,
            "  {:>8} {:>9} {:>11.0} {:>11.0} {:>8} {:>8.1} {:>8.1} {:>8.1} {:>6} {:>6} {:>9.1} {:>4}",
            rate,
            f.events,
            f.produced_per_s,
            f.consumed_per_s,
            f.outputs,
            f.p50_ms,
            f.p99_ms,
            f.max_ms,
            f.pauses,
            f.checkpoints,
            f.state_bytes as f64 / 1e6,
            f.runs
        );
    }
    s
}

fn topics(prefix: &str) -> KafkaTopics {
    KafkaTopics {
        transactions: format!("{prefix}-transactions"),
        behaviors: format!("{prefix}-behaviors"),
        loans: format!("{prefix}-loans"),
        customers: format!("{prefix}-customers"),
        alerts: format!("{prefix}-alerts"),
        decisions: format!("{prefix}-decisions"),
        cases: format!("{prefix}-cases"),
        dead_letter: format!("{prefix}-rejected"),
    }
}

fn create_topics(kafka: &KafkaConfig, partitions: i32) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> =
        kafka_config::common(kafka, "riskwatch-bench-admin")?
            .create()
            .context("creating the admin client")?;
    let t = &kafka.topics;
    let mut new = Vec::new();
    for name in t.inputs() {
        new.push(NewTopic::new(name, partitions, TopicReplication::Fixed(1)));
    }
    for name in [&t.alerts, &t.decisions, &t.cases, &t.dead_letter] {
        new.push(NewTopic::new(name, 1, TopicReplication::Fixed(1)));
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let results = rt.block_on(admin.create_topics(&new, &AdminOptions::new()))?;
    for r in results {
        if let Err((topic, code)) = r {
            anyhow::bail!("creating topic {topic}: {code:?}");
        }
    }
    // Let the metadata settle before clients ask for it.
    std::thread::sleep(Duration::from_millis(500));
    Ok(())
}

/// Writes synthetic records: customers first, then transactions and behaviours at `rate`
/// (0 = as fast as possible) until `events` are written. Event time = wall clock.
fn produce_stream(
    kafka: &KafkaConfig,
    customers: u64,
    events: u64,
    rate: u64,
) -> anyhow::Result<(u64, f64)> {
    let sink = KafkaSink::new(
        &kafka_config::producer(kafka, "riskwatch-bench-producer")?,
        None,
    )?;
    let mut cust = sink.topic(&kafka.topics.customers);
    let mut txn = sink.topic(&kafka.topics.transactions);
    let mut beh = sink.topic(&kafka.topics.behaviors);
    let mut buf: Vec<u8> = Vec::with_capacity(512);
    let mut key: Vec<u8> = Vec::with_capacity(16);
    let now = wall_clock_ms();
    for c in 0..customers {
        buf.clear();
        key.clear();
        write!(key, "B{c:07}")?;
        write!(
            buf,
            r#"{{"customer_id":"B{c:07}","ts":{now},"credit_limit":1000000,"apr_bps":1800,"balance":0}}"#
        )?;
        cust.send(&key, &buf, &[])?;
    }
    sink.flush(Duration::from_secs(60))?;
    std::thread::sleep(Duration::from_millis(1_500));
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let start = Instant::now();
    let mut n = 0u64;
    // Fixed rates: one wake-up per millisecond's worth of records, which are then sent
    // together (a wake-up per record cost this thread most of a core at 50k/s, taken from
    // the broker and the pipeline sharing the machine).
    let per_wake = (rate / 1_000).max(1);
    while n < events {
        let target = if rate > 0 {
            let due = ((start.elapsed().as_secs_f64() * rate as f64) as u64).min(events);
            if due <= n {
                let next = (n + per_wake) as f64 / rate as f64;
                let wait = next - start.elapsed().as_secs_f64();
                if wait > 0.0 {
                    std::thread::sleep(Duration::from_secs_f64(wait));
                }
                continue;
            }
            due
        } else {
            (n + 256).min(events)
        };
        while n < target {
            let ts = wall_clock_ms();
            let c = next() % customers;
            let r = next() % 100;
            buf.clear();
            key.clear();
            write!(key, "B{c:07}")?;
            if r < 80 {
                let kind = match r {
                    0..=64 => "purchase",
                    65..=74 => "cash_withdrawal",
                    _ => "repayment",
                };
                let status = if next().is_multiple_of(50) {
                    "declined"
                } else {
                    "approved"
                };
                write!(
                    buf,
                    r#"{{"event_id":"E{n}","customer_id":"B{c:07}","ts":{ts},"type":"{kind}","amount":{},"status":"{status}","merchant_id":"M{}"}}"#,
                    1_000 + next() % 40_000,
                    next() % 200
                )?;
                txn.send(&key, &buf, &[])?;
            } else {
                let kind = match r {
                    80..=92 => "login",
                    93..=97 => "login_failed",
                    _ => "credit_inquiry",
                };
                write!(
                    buf,
                    r#"{{"event_id":"E{n}","customer_id":"B{c:07}","ts":{ts},"type":"{kind}","lender_id":"L{}"}}"#,
                    next() % 20
                )?;
                beh.send(&key, &buf, &[])?;
            }
            n += 1;
        }
    }
    drop((cust, txn, beh));
    // Acknowledged, not just queued in the client: the rate the broker took them at.
    sink.flush(Duration::from_secs(120))?;
    let elapsed = start.elapsed().as_secs_f64();
    Ok((n, n as f64 / elapsed.max(1e-9)))
}

/// Reads the alerts topic until `stop` is set and nothing arrived for 2 s; returns
/// `(output produce timestamp, alert ts)` pairs.
fn read_outputs(kafka: &KafkaConfig, stop: &AtomicBool) -> anyhow::Result<Vec<(u64, u64)>> {
    #[derive(serde::Deserialize)]
    struct Ts {
        ts: u64,
    }
    let consumer: BaseConsumer =
        kafka_config::consumer(kafka, "riskwatch-bench-reader")?.create()?;
    let mut tpl = riskwatch_connectors::kafka::rdkafka::TopicPartitionList::new();
    tpl.add_partition_offset(
        &kafka.topics.alerts,
        0,
        riskwatch_connectors::kafka::rdkafka::Offset::Beginning,
    )?;
    consumer.assign(&tpl)?;
    let mut out = Vec::new();
    let mut last = Instant::now();
    loop {
        match consumer.poll(Duration::from_millis(50)) {
            Some(Ok(m)) => {
                last = Instant::now();
                let produced = m.timestamp().to_millis().unwrap_or(0).max(0) as u64;
                if let Some(Ok(t)) = m.payload().map(serde_json::from_slice::<Ts>) {
                    out.push((produced, t.ts));
                }
            }
            Some(Err(e)) => tracing::warn!(error = %e, "bench reader"),
            None => {}
        }
        if stop.load(Ordering::Relaxed) && last.elapsed() > Duration::from_secs(2) {
            return Ok(out);
        }
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[(((sorted.len() - 1) as f64) * p).round() as usize]
}

/// Runs the benchmark.
pub fn bench_kafka(args: &KafkaBenchArgs) -> anyhow::Result<KafkaBenchReport> {
    // Defaults with RISKWATCH__… overrides (e.g. RISKWATCH__KAFKA__LINGER='"1ms"').
    let mut base = Config::from_toml_with_env("", std::env::vars())?;
    base.run.mode = RunMode::Kafka;
    base.kafka.brokers = args.brokers.clone();
    base.time.allowed_lateness = Millis(0);
    base.time.idle_timeout = Millis(1_000);
    base.time.wall_clock_advance = true;
    let settings = format!(
        "{} partitions per input topic, {} workers, {} customers, allowed_lateness 0ms, \
         idle_timeout 1s, linger {}, compression {:?}, fetch_wait_max {}",
        args.partitions,
        args.workers,
        args.customers,
        base.kafka.linger,
        base.kafka.compression,
        base.kafka.fetch_wait_max
    );
    let mut report = KafkaBenchReport {
        machine: crate::bench::machine(),
        settings,
        figures: Vec::new(),
    };
    for (i, &rate) in args.rates.iter().enumerate() {
        let mut runs = Vec::new();
        for run_index in 0..args.runs.max(1) {
            let mut config = base.clone();
            config.kafka.topics =
                topics(&format!("rwbench-{}-{i}-{run_index}", std::process::id()));
            create_topics(&config.kafka, args.partitions)?;
            let compiled = compile(&config, |f| Err(format!("{f}: no files in the bench")))?;
            let events = if rate == 0 {
                50_000 * args.seconds
            } else {
                rate * args.seconds
            };
            let stop = Arc::new(AtomicBool::new(false));
            let state_dir = args.dir.join(format!("state-{i}-{run_index}"));
            let live_args = LiveArgs {
                workers: args.workers,
                cluster: None,
                until: None,
                until_idle: rate == 0,
                idle_check: Duration::from_millis(500),
                stop: stop.clone(),
                state: args
                    .checkpoint_every
                    .map(|every| crate::state::StateOptions {
                        dir: state_dir.clone(),
                        mode: riskwatch_state::OpenMode::Fresh,
                        every,
                    }),
                print_summary: false,
                reload: None,
                metrics: None,
            };
            let reader_stop = Arc::new(AtomicBool::new(false));
            let reader = {
                let kafka = config.kafka.clone();
                let stop = reader_stop.clone();
                std::thread::spawn(move || read_outputs(&kafka, &stop))
            };
            eprintln!(
                "  kafka bench: rate {} events/s, {events} events",
                if rate == 0 {
                    "max".into()
                } else {
                    rate.to_string()
                }
            );
            let (figure_events, produced_per_s, consumed_per_s, pauses, measure_from, measure_to);
            if rate == 0 {
                let (n, p) = produce_stream(&config.kafka, args.customers, events, 0)?;
                let start = Instant::now();
                let summary = run(&config, &compiled, &live_args)?;
                let secs = (start.elapsed().as_secs_f64() - 0.5).max(1e-9);
                let consumed: u64 = summary.records.iter().sum();
                figure_events = n;
                produced_per_s = p;
                consumed_per_s = consumed as f64 / secs;
                pauses = summary.pauses;
                measure_from = u64::MAX;
                measure_to = 0;
            } else {
                let pipeline = {
                    let (config, compiled, live_args) =
                        (config.clone(), compiled.clone(), live_args.clone());
                    std::thread::spawn(move || run(&config, &compiled, &live_args))
                };
                std::thread::sleep(Duration::from_secs(2));
                measure_from = wall_clock_ms() + 1_500 + 3_000;
                let (n, p) = produce_stream(&config.kafka, args.customers, events, rate)?;
                // The stream's last events wait for its partitions to go idle (1 s): a stream
                // end, not steady state; leave the last 2 s out.
                measure_to = wall_clock_ms().saturating_sub(2_000);
                std::thread::sleep(Duration::from_secs(3));
                stop.store(true, Ordering::SeqCst);
                let summary = pipeline
                    .join()
                    .map_err(|_| anyhow::anyhow!("the pipeline thread panicked"))??;
                let consumed: u64 = summary.records.iter().sum::<u64>() - args.customers;
                figure_events = n;
                produced_per_s = p;
                // Everything produced was consumed while the stream ran (the run stops 3 s
                // after it): the sustained rate is the stream's, if the latency stayed bounded.
                consumed_per_s = consumed as f64 * p / n.max(1) as f64;
                pauses = summary.pauses;
            }
            reader_stop.store(true, Ordering::SeqCst);
            let outputs = reader
                .join()
                .map_err(|_| anyhow::anyhow!("the reader thread panicked"))??;
            if let Ok(path) = std::env::var("RISKWATCH_BENCH_SAMPLES") {
                // Every (output produce time, alert ts) pair, for looking at the shape of
                // the latency over the run.
                let mut f = std::io::BufWriter::new(std::fs::File::create(format!(
                    "{path}-{rate}-{run_index}.tsv"
                ))?);
                for (out, ts) in &outputs {
                    writeln!(f, "{ts}\t{out}")?;
                }
            }
            let mut lat: Vec<f64> = outputs
                .iter()
                .filter(|(_, ts)| *ts >= measure_from && *ts < measure_to)
                .map(|(out, ts)| out.saturating_sub(*ts) as f64)
                .collect();
            lat.sort_by(f64::total_cmp);
            let (checkpoints, state_bytes) = match &live_args.state {
                Some(opts) => {
                    let expected = crate::state::fingerprint(&compiled, args.workers, 1);
                    let dir = crate::state::open(
                        &crate::state::StateOptions {
                            mode: riskwatch_state::OpenMode::Existing,
                            ..opts.clone()
                        },
                        &expected,
                    )?;
                    (dir.last().map_or(0, |m| m.seq), dir.size_on_disk())
                }
                None => (0, 0),
            };
            let fig = KafkaFigure {
                rate,
                events: figure_events,
                produced_per_s,
                consumed_per_s,
                outputs: if rate == 0 {
                    outputs.len() as u64
                } else {
                    lat.len() as u64
                },
                p50_ms: percentile(&lat, 0.5),
                p99_ms: percentile(&lat, 0.99),
                max_ms: lat.last().copied().unwrap_or(0.0),
                pauses,
                checkpoints,
                state_bytes,
                runs: 1,
            };
            eprintln!(
                "  → produced {:.0}/s, consumed {:.0}/s, {} outputs, p50 {:.1} ms, p99 {:.1} ms",
                fig.produced_per_s, fig.consumed_per_s, fig.outputs, fig.p50_ms, fig.p99_ms
            );
            runs.push(fig);
        }
        report.figures.push(median(runs));
    }
    Ok(report)
}

/// The median of each field over the runs of one rate (the upper median for an even count).
fn median(runs: Vec<KafkaFigure>) -> KafkaFigure {
    fn mid<T: Copy + PartialOrd>(runs: &[KafkaFigure], f: impl Fn(&KafkaFigure) -> T) -> T {
        let mut v: Vec<T> = runs.iter().map(f).collect();
        v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        v[v.len() / 2]
    }
    KafkaFigure {
        rate: runs[0].rate,
        events: mid(&runs, |f| f.events),
        produced_per_s: mid(&runs, |f| f.produced_per_s),
        consumed_per_s: mid(&runs, |f| f.consumed_per_s),
        outputs: mid(&runs, |f| f.outputs),
        p50_ms: mid(&runs, |f| f.p50_ms),
        p99_ms: mid(&runs, |f| f.p99_ms),
        max_ms: mid(&runs, |f| f.max_ms),
        pauses: mid(&runs, |f| f.pauses),
        checkpoints: mid(&runs, |f| f.checkpoints),
        state_bytes: mid(&runs, |f| f.state_bytes),
        runs: runs.len(),
    }
}
