//! `riskwatch run`: the live pipeline. Files mode replays the configured input directory;
//! Kafka mode consumes the four input topics on every worker of every process and produces
//! alerts, decisions and cases (and dead letters) until it is stopped or, in a bounded run, until the input is
//! exhausted.
//!
//! ```text
//!  worker w of P:  KafkaSource(partitions i ≡ w mod P) ─▶ InputSession ─▶ graph ─▶ outputs
//!                         │ watermarks → frontier → advance_to            │
//!                         └─ dead letters ─▶ KafkaSink ◀── TopicWriter ◀──┘ (key customer_id)
//!  control: each worker broadcasts one message (done / shutdown, frontier, max ts) so that
//!           every worker agrees on where to stop.
//! ```
//!
//! Each worker advances its own input to its own partitions' frontier; timely's progress
//! tracking takes the minimum over all workers. Stopping (docs/KAFKA.md):
//! - SIGTERM/SIGINT on any process: every worker stops consuming and announces its frontier;
//!   with `G` the smallest, every output at a time before `G` is emitted, the producer is
//!   flushed, offsets are recorded, exit 0.
//! - Bounded (`--until-idle`, `--until TS`): a worker is done once its partitions are at
//!   their end offsets (`--until-idle`) or its frontier has passed `TS`; once all are, the
//!   end is `TS` or the largest event time any worker saw, every input advances past it,
//!   and every output at a time ≤ the end is emitted (as `riskwatch replay` does).

use crate::live_checkpoint::{LiveCheckpoint, WorkerCheckpoints};
use crate::output_counts::{Counted, OutputCounts};
use crate::pipeline::ClusterSpec;
use crate::reload::{ReloadEvent, ReloadHandle, Reloads};
use crate::replay::{replay, ReplayArgs};
use anyhow::Context;
use differential_dataflow::collection::AsCollection;
use riskwatch_connectors::kafka::{
    assign_partitions, config as kafka_config, describe_partitions, partition_counts, KafkaMetrics,
    KafkaSink, KafkaSource, SourceSettings, SourceStats,
};
use riskwatch_dataflows::checkpoint::WorkerState;
use riskwatch_dataflows::evaluate::Output;
use riskwatch_dataflows::graph::build_with_state;
use riskwatch_dataflows::operators::evaluate::wall_clock_ms;
use riskwatch_dataflows::operators::ledger::{AccountUpdate, Change};
use riskwatch_dataflows::plan::Compiled;
use riskwatch_dataflows::stats::Stats;
use riskwatch_model::config::{Config, RunMode};
use riskwatch_model::event::Event;
use riskwatch_model::time::ceil_to;
use serde::Serialize;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::path::Path;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use timely::dataflow::operators::vec::{Broadcast, Map};
use timely::dataflow::operators::{Inspect, Probe};
use timely::dataflow::{InputHandleVec, ProbeHandle};

/// Process behaviour of `riskwatch run` (CLI flags; the pipeline's shape is in the config).
#[derive(Clone, Debug)]
pub struct LiveArgs {
    /// Worker threads of this process.
    pub workers: usize,
    /// This process's place in a timely cluster.
    pub cluster: Option<ClusterSpec>,
    /// Bounded run: events after this time are not fed and outputs after
    /// `ceil_tick(until)` are not emitted; a worker is done once its frontier passes it.
    pub until: Option<u64>,
    /// Bounded run: a worker is done once its partitions are at their end offsets.
    pub until_idle: bool,
    /// With `until_idle`: how long without records before end offsets are checked.
    pub idle_check: Duration,
    /// Set to stop gracefully (signals, or the Kafka bench).
    pub stop: Arc<AtomicBool>,
    /// Checkpoint into and resume from this state directory.
    pub state: Option<crate::state::StateOptions>,
    /// Print a one-line summary on stdout at the end.
    pub print_summary: bool,
    /// Live strategy changes (process 0 only; see [`crate::reload`]): worker 0 takes each
    /// accepted change and carries it through the dataflow.
    pub reload: Option<Arc<Reloads>>,
    /// Prometheus metrics to feed (`--metrics-addr`): files runs add their summary at the
    /// end, Kafka runs add the dataflow's counters about once a second per worker.
    pub metrics: Option<crate::metrics::Metrics>,
}

/// What a Kafka run did, summed over this process's workers.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LiveSummary {
    /// Records consumed per stream (customers, loans, transactions, behaviors).
    pub records: [u64; 4],
    /// Events fed per stream.
    pub fed: [u64; 4],
    /// Rejected records by reason.
    pub rejected: std::collections::BTreeMap<String, u64>,
    /// Events fed late (at the frontier).
    pub late: u64,
    /// Events after `--until`, consumed but not fed.
    pub beyond_until: u64,
    /// Times backpressure paused a worker.
    pub pauses: u64,
    /// Records received again at an already consumed offset, skipped.
    pub redelivered: u64,
    /// Alerts produced.
    pub alerts: u64,
    /// Decisions produced.
    pub decisions: u64,
    /// Case events produced.
    pub cases: u64,
    /// Duplicates dropped by the dataflow.
    pub duplicates: u64,
    /// Every output at a time before this was emitted (ms).
    pub complete_before: u64,
    /// `stopped` (signal) or `done` (bounded run).
    pub stop: String,
    /// `(topic, partition, next offset)` of every partition this process consumed.
    pub positions: Vec<(String, i32, i64)>,
    /// Live strategy changes: applied (at an event time) or rejected (with the reason).
    pub reloads: Vec<ReloadEvent>,
}

/// The number of the signal that asked to stop (15 for SIGTERM, 2 for SIGINT), 0 before
/// one arrives: a batch command that stops early exits with 128 + it.
pub static STOP_SIGNAL: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// Stop signals closer than this to the first are one request delivered twice.
pub const SAME_SIGNAL: Duration = Duration::from_secs(1);

/// Installs SIGTERM/SIGINT handlers that set the returned flag; a second signal exits at
/// once with status 130. A repeat within [`SAME_SIGNAL`] of the first is the same request
/// delivered twice, not a second one: `timeout(1)` forwards a SIGTERM to its child and then
/// to its whole process group, and a group kill reaches a child that was also signalled
/// directly; exiting 130 on those would cut a graceful stop short. SIGHUP asks `reload` to
/// read the config again; without one (files mode, processes other than 0) it is ignored,
/// never fatal.
pub fn shutdown_flag(reload: Option<ReloadHandle>) -> anyhow::Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    let set = flag.clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .context("starting the signal thread")?;
    // Installed before returning, so no signal can find the default action after start.
    let (mut term, mut int, mut hup) = {
        use tokio::signal::unix::{signal, SignalKind};
        let _guard = runtime.enter();
        (
            signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
            signal(SignalKind::hangup()).context("installing the SIGHUP handler")?,
        )
    };
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            runtime.block_on(async move {
                let mut round = 0;
                let mut first: Option<std::time::Instant> = None;
                while round < 2 {
                    tokio::select! {
                        _ = term.recv() => STOP_SIGNAL.store(15, Ordering::SeqCst),
                        _ = int.recv() => STOP_SIGNAL.store(2, Ordering::SeqCst),
                        _ = hup.recv() => {
                            match &reload {
                                Some(r) => r.trigger(),
                                None => tracing::info!("SIGHUP ignored: no config file to read here"),
                            }
                            continue;
                        }
                    }
                    if first.is_some_and(|f| f.elapsed() < SAME_SIGNAL) {
                        tracing::info!("stop signal repeated at once: the same request");
                        continue;
                    }
                    if round == 0 {
                        first = Some(std::time::Instant::now());
                        tracing::info!("signal received: stopping gracefully");
                        set.store(true, Ordering::SeqCst);
                    } else {
                        tracing::error!("second signal: exiting now");
                        std::process::exit(130);
                    }
                    round += 1;
                }
            })
        })
        .context("starting the signal thread")?;
    Ok(flag)
}

/// Runs the pipeline selected by `config.run.mode`.
pub fn run(config: &Config, compiled: &Compiled, args: &LiveArgs) -> anyhow::Result<LiveSummary> {
    match config.run.mode {
        RunMode::Files => run_files(config, compiled, args),
        RunMode::Kafka => run_kafka(config, compiled, args),
    }
}

fn run_files(config: &Config, compiled: &Compiled, args: &LiveArgs) -> anyhow::Result<LiveSummary> {
    let input = Path::new(&config.run.input_dir);
    let output = Path::new(&config.run.output_dir);
    if let Some(m) = &args.metrics {
        m.ready.store(true, Ordering::SeqCst);
    }
    let (out, summary) = replay(
        compiled,
        config,
        input,
        output,
        &ReplayArgs {
            workers: args.workers,
            until: args.until,
            progress: args.print_summary,
            cluster: args.cluster.clone(),
            config_changes: Vec::new(),
            streams: None,
            stop: Some(args.stop.clone()),
            state: args.state.clone(),
            keep: false,
            metrics: args.metrics.clone(),
            snapshots: snapshot_spec(config)?,
        },
    )?;
    if let Some(m) = &args.metrics {
        m.add_run(&out, &summary);
    }
    let mut live = LiveSummary {
        alerts: out.counts.written[0],
        decisions: out.counts.written[1],
        cases: out.counts.written[2],
        rejected: summary.rejected.clone(),
        late: summary.late,
        complete_before: summary.stopped_at.unwrap_or(summary.end_ts) + 1,
        stop: if summary.complete { "done" } else { "stopped" }.into(),
        ..LiveSummary::default()
    };
    for (i, s) in riskwatch_model::event::Stream::ALL.iter().enumerate() {
        live.records[i] = summary.read.get(s.name()).copied().unwrap_or(0);
        live.fed[i] = summary.events.get(s.name()).copied().unwrap_or(0);
    }
    if args.print_summary {
        println!(
            "run (files): {} alerts, {} decisions, {} cases, {} rejected; outputs in {}",
            live.alerts,
            live.decisions,
            live.cases,
            live.rejected.values().sum::<u64>(),
            output.display()
        );
    }
    Ok(live)
}

/// The `[snapshot]` section as a replay's snapshot spec, if it asks for any.
fn snapshot_spec(config: &Config) -> anyhow::Result<Option<crate::replay::SnapshotSpec>> {
    let times = config.snapshot.times()?;
    if times.is_empty() {
        return Ok(None);
    }
    Ok(Some(crate::replay::SnapshotSpec {
        at: times.at,
        every: times.every,
        dir: snapshot_dir(config),
    }))
}

/// Where `run` writes its snapshots: `[snapshot] dir`, or `snapshots` in the output dir.
pub fn snapshot_dir(config: &Config) -> std::path::PathBuf {
    if config.snapshot.dir.is_empty() {
        Path::new(&config.run.output_dir).join("snapshots")
    } else {
        std::path::PathBuf::from(&config.snapshot.dir)
    }
}

/// A control message: one per worker, broadcast to all.
type Control = (u8, u64, u64, u64);
const DONE: u8 = 0;
const SHUTDOWN: u8 = 1;

struct WorkerOut {
    stats: SourceStats,
    dataflow: Stats,
    /// Alerts, decisions, cases produced.
    sent: [u64; 3],
    complete_before: u64,
    stop: &'static str,
    positions: Vec<(String, i32, i64)>,
}

fn run_kafka(config: &Config, compiled: &Compiled, args: &LiveArgs) -> anyhow::Result<LiveSummary> {
    if !config.snapshot.times()?.is_empty() {
        return Err(crate::exit::Usage(
            "config key \"snapshot\": book snapshots are taken by `run` in files mode \
             (run.mode = \"files\") and by `riskwatch replay --snapshot-at`; Kafka mode does \
             not take them yet, so remove [snapshot] at/every from this config"
                .into(),
        )
        .into());
    }
    let kafka = config.kafka.clone();
    let (process, processes) = match &args.cluster {
        Some(c) => (c.process, c.hosts.len().max(1)),
        None => (0, 1),
    };
    let metrics = match &args.metrics {
        Some(m) => m.kafka.clone(),
        None => KafkaMetrics::register(&prometheus::Registry::new())?,
    };
    let meta_config = kafka_config::consumer(&kafka, &format!("{}-p{process}", kafka.client_id))?;
    let counts = partition_counts(&meta_config, kafka.topics.inputs(), Duration::from_secs(30))?;
    let t = &kafka.topics;
    // Fail fast on a missing output topic (librdkafka would only give up on the first
    // record, after its metadata timeout).
    partition_counts(
        &meta_config,
        [&t.alerts, &t.decisions, &t.cases, &t.dead_letter].map(String::as_str),
        Duration::from_secs(30),
    )?;
    tracing::info!(
        process,
        processes,
        workers = args.workers,
        partitions = ?counts,
        "kafka source: static assignment over {} workers",
        args.workers * processes
    );
    let sink = KafkaSink::new(
        &kafka_config::producer(&kafka, &format!("{}-p{process}", kafka.client_id))?,
        Some(metrics.clone()),
    )?;
    if let Some(m) = &args.metrics {
        m.ready.store(true, Ordering::SeqCst);
    }
    let timely_config = match &args.cluster {
        Some(c) => c.timely_config(args.workers),
        None => timely::Config::process(args.workers),
    };
    let settings = SourceSettings::new(&config.time, args.until, kafka.start_offset);
    let run = config.run.clone();
    let compiled = Arc::new(compiled.clone());
    let abort = Arc::new(AtomicBool::new(false));
    let (live_ckpt, deliveries) = open_state(config, &compiled, args, process, processes)?;
    let committer = live_ckpt.as_ref().map(|c| c.committer.clone());
    let shared = (sink.clone(), metrics.clone(), abort.clone(), args.clone());
    let guards = timely::execute(timely_config, move |worker| {
        let (sink, metrics, abort, args) = &shared;
        let result = worker_loop(
            worker,
            &kafka,
            &run,
            settings,
            &compiled,
            counts,
            sink,
            metrics,
            abort,
            args,
            live_ckpt.as_ref(),
        );
        if let Err(e) = &result {
            tracing::error!(worker = worker.index(), error = %e, "worker failed");
            abort.store(true, Ordering::SeqCst);
        }
        // Drop the dataflows: otherwise timely keeps stepping them after this closure
        // returns and, with the inputs closed, would run them to completion past the stop.
        for id in worker.installed_dataflows() {
            worker.drop_dataflow(id);
        }
        result
    })
    .map_err(|e| anyhow::anyhow!("starting timely workers: {e}"))?;
    let mut summary = LiveSummary {
        complete_before: u64::MAX,
        ..LiveSummary::default()
    };
    let mut first_error = None;
    for r in guards.join() {
        match r {
            Ok(Ok(w)) => {
                let mut s = SourceStats::default();
                s.merge(&w.stats);
                for i in 0..4 {
                    summary.records[i] += s.records[i];
                    summary.fed[i] += s.fed[i];
                }
                for (k, v) in s.rejected {
                    *summary.rejected.entry(k).or_default() += v;
                }
                summary.late += s.late;
                summary.beyond_until += s.beyond_until;
                summary.pauses += s.pauses;
                summary.redelivered += s.redelivered;
                summary.alerts += w.sent[0];
                summary.decisions += w.sent[1];
                summary.cases += w.sent[2];
                summary.duplicates += w.dataflow.duplicates.iter().sum::<u64>();
                summary.complete_before = summary.complete_before.min(w.complete_before);
                summary.stop = w.stop.to_string();
                summary.positions.extend(w.positions);
            }
            Ok(Err(e)) => {
                first_error.get_or_insert(anyhow::anyhow!(e));
            }
            Err(panic) => {
                first_error.get_or_insert(anyhow::anyhow!("a worker panicked: {panic}"));
            }
        }
    }
    // Deliver what the workers handed over before reporting success.
    sink.flush(Duration::from_secs(60))
        .context("flushing the Kafka producer")?;
    if let Some(c) = committer {
        let dir = c.finish()?;
        if let Some(last) = dir.last() {
            tracing::info!(seq = last.seq, frontier = last.frontier, "last checkpoint");
        }
    }
    if let Some(d) = deliveries {
        // A graceful stop gives the receivers a while; what is left is sent on restart.
        let left = d.drain(&args.stop, Duration::from_secs(30))?;
        if left > 0 {
            tracing::warn!(
                left,
                "webhook deliveries still pending; sent after the restart"
            );
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    summary.positions.sort();
    if let Some(r) = &args.reload {
        summary.reloads = r.events();
    }
    if args.print_summary {
        let changes = Reloads::counts(&summary.reloads);
        println!(
            "run (kafka, process {process}): {} records, {} alerts, {} decisions, {} cases, \
             {} rejected, {} late, {} backpressure pauses, {} redelivered, {} strategy changes \
             applied, {} rejected; complete before ts {}{}",
            summary.records.iter().sum::<u64>(),
            summary.alerts,
            summary.decisions,
            summary.cases,
            summary.rejected.values().sum::<u64>(),
            summary.late,
            summary.pauses,
            summary.redelivered,
            changes.0,
            changes.1,
            summary.complete_before,
            match &args.state {
                Some(s) => format!("; state in {}", s.dir.display()),
                None => String::new(),
            }
        );
    }
    Ok(summary)
}

/// Opens the state directory of a live run and loads this process's workers' records.
fn open_state(
    config: &Config,
    compiled: &Compiled,
    args: &LiveArgs,
    process: usize,
    processes: usize,
) -> anyhow::Result<(
    Option<Arc<LiveCheckpoint>>,
    Option<crate::deliveries::Deliveries>,
)> {
    let Some(opts) = &args.state else {
        if !config.webhooks.is_empty() {
            return Err(crate::exit::Usage(
                "[[webhook]] needs a state directory (--state or run.state_dir): deliveries \
                 go through its outbox"
                    .into(),
            )
            .into());
        }
        return Ok((None, None));
    };
    let expected = crate::state::fingerprint(compiled, args.workers, processes);
    let dir = Arc::new(crate::state::open(opts, &expected)?);
    let restore = match dir.last() {
        Some(last) => {
            let stored = crate::state::load(&dir, process * args.workers, args.workers)?;
            tracing::info!(
                dir = %opts.dir.display(),
                seq = last.seq,
                frontier = last.frontier,
                "restoring the last checkpoint"
            );
            stored
                .into_iter()
                .map(|s| Some((last.frontier, s)))
                .collect()
        }
        None => vec![None; args.workers],
    };
    let deliveries =
        crate::deliveries::Deliveries::start(&dir, &config.webhooks, args.metrics.clone())?;
    let mut extras: Box<dyn crate::state::CheckpointExtras> = Box::new(crate::state::LiveExtras);
    if let Some(d) = &deliveries {
        extras = d.extras(extras);
    }
    let committer = crate::state::Committer::start(
        dir,
        args.workers,
        crate::state::config_version(compiled),
        extras,
        args.metrics.clone(),
    );
    Ok((
        Some(Arc::new(LiveCheckpoint {
            committer,
            every: Duration::from_millis(opts.every),
            restore: std::sync::Mutex::new(restore),
            keep_outputs: deliveries.is_some(),
        })),
        deliveries,
    ))
}

/// Writes the graph's output streams to their topics.
struct Outputs {
    /// Outputs at later times are dropped (bounded runs).
    end: Rc<Cell<u64>>,
    /// The first send error; the worker loop stops on it.
    failure: Rc<RefCell<Option<String>>>,
    /// Passes a time once every output up to it has been handed to the producer.
    probe: ProbeHandle<u64>,
    /// What was handed to the producer since the last metrics report, by label.
    counts: Rc<RefCell<OutputCounts>>,
}

impl Outputs {
    /// Sends each record of `stream` to `writer`'s topic: key `customer_id`, value the
    /// contract JSON, headers `strategy` and `strategy_version` (`parts` names the three),
    /// counting them in `sent` and, by label, in the outputs' counts.
    fn write<'scope, R: serde::Serialize + Clone + Into<Output> + Counted + 'static>(
        &self,
        stream: timely::dataflow::StreamVec<'scope, u64, (R, u64, isize)>,
        mut writer: riskwatch_connectors::kafka::TopicWriter,
        sent: Rc<Cell<u64>>,
        keep: Option<crate::pipeline::KeptOutputs>,
        parts: impl Fn(&R) -> [&String; 3] + 'static,
    ) {
        let (end, failure, counts) = (self.end.clone(), self.failure.clone(), self.counts.clone());
        stream
            .flat_map(move |(record, time, _diff)| {
                if time <= end.get() {
                    let [key, strategy, version] = parts(&record);
                    let headers: [(&str, &[u8]); 2] = [
                        ("strategy", strategy.as_bytes()),
                        ("strategy_version", version.as_bytes()),
                    ];
                    match writer.send_json(key.as_bytes(), &record, &headers) {
                        Ok(()) => {
                            sent.set(sent.get() + 1);
                            record.count_in(&mut counts.borrow_mut());
                        }
                        Err(e) => {
                            failure.borrow_mut().get_or_insert(e.to_string());
                        }
                    }
                    if let Some(keep) = &keep {
                        keep.borrow_mut().push((time, record.clone().into()));
                    }
                }
                None::<()>
            })
            .probe_with(&self.probe);
    }
}

/// Backpressure bookkeeping: each advance of this worker's input, with the events fed
/// before it.
///
/// An advance counts as backlog only once every worker's input has passed it (the global
/// input frontier, read from a probe right after the input): its events then wait for
/// the dataflow's work alone and drain without more input. Events still waiting for a
/// watermark, here or on another worker, do not count: pausing on them could wait forever
/// for the records that would release them (a deadlock, e.g. with a worker that has
/// finished its partitions in a bounded run).
#[derive(Default)]
struct InFlight {
    /// `(input frontier after the advance, events fed before it, wall ms at which the
    /// global input frontier passed it, wall ms of the advance)`, in advance order.
    advances: VecDeque<(u64, u64, Option<u64>, u64)>,
    /// Events fed since the last advance.
    unreleased: u64,
    /// Event-to-output latencies (ms) of the advances the output passed since the last
    /// drain: from the advance to the output frontier passing it. At most
    /// [`InFlight::MAX_PASSED`] are kept.
    passed: Vec<u64>,
}

impl InFlight {
    /// Latencies kept between two drains.
    const MAX_PASSED: usize = 4096;

    /// Records an advance of this worker's input to `frontier` at wall ms `now`.
    fn advance(&mut self, frontier: u64, now: u64) {
        let n = std::mem::take(&mut self.unreleased);
        self.advances.push_back((frontier, n, None, now));
    }

    /// Drops advances the output has passed and marks those the global input frontier has
    /// passed; returns (their events not through the dataflow yet, ms since the oldest of
    /// them became ready).
    fn update(&mut self, input_frontier: u64, output_frontier: u64, now: u64) -> (u64, u64) {
        while self
            .advances
            .front()
            .is_some_and(|&(f, _, _, _)| output_frontier >= f)
        {
            if let Some((_, n, _, at)) = self.advances.pop_front() {
                if n > 0 && self.passed.len() < Self::MAX_PASSED {
                    self.passed.push(now.saturating_sub(at));
                }
            }
        }
        let mut pending = 0;
        for (f, n, ready, _) in self.advances.iter_mut() {
            if input_frontier < *f {
                break;
            }
            ready.get_or_insert(now);
            pending += *n;
        }
        let lag = match self.advances.front() {
            Some(&(_, _, Some(at), _)) => now.saturating_sub(at),
            _ => 0,
        };
        (pending, lag)
    }
}

/// What a worker last added to the metrics, so that each report adds the difference.
#[derive(Default)]
struct Reported {
    /// Wall ms of the last report.
    at: u64,
    /// The dataflow's counters as last added.
    stats: Stats,
}

impl Reported {
    /// Adds this worker's counters since the last report and sets its gauges: called about
    /// once a second, never per record.
    #[allow(clippy::too_many_arguments)]
    fn report(
        &mut self,
        m: &crate::metrics::Metrics,
        worker: usize,
        source: &KafkaSource,
        stats: &Stats,
        counts: &RefCell<OutputCounts>,
        global_frontier: u64,
        now: u64,
    ) {
        self.at = now;
        m.add_stats(&mut self.stats, stats);
        m.add_counts(&std::mem::take(&mut *counts.borrow_mut()));
        let frontier = source.frontier();
        if frontier != u64::MAX && frontier > 0 {
            m.watermark_delay
                .with_label_values(&[&worker.to_string()])
                .set(now.saturating_sub(frontier) as f64 / 1000.0);
        }
        if global_frontier != u64::MAX && global_frontier > 0 {
            m.frontier.set(global_frontier as f64 / 1000.0);
        }
        let mut behind = false;
        for (stream, partition, lag) in source.lags() {
            m.lag
                .with_label_values(&[stream.name(), partition.to_string().as_str()])
                .set(lag);
            behind |= lag > crate::metrics::READY_MAX_LAG;
        }
        let bit = 1u64 << (worker % 64);
        if behind {
            m.behind.fetch_or(bit, Ordering::Relaxed);
        } else {
            m.behind.fetch_and(!bit, Ordering::Relaxed);
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn worker_loop(
    worker: &mut timely::worker::Worker,
    kafka: &riskwatch_model::config::KafkaConfig,
    run: &riskwatch_model::config::RunConfig,
    settings: SourceSettings,
    compiled: &Compiled,
    counts: [i32; 4],
    sink: &KafkaSink,
    metrics: &KafkaMetrics,
    abort: &AtomicBool,
    args: &LiveArgs,
    ckpt: Option<&Arc<LiveCheckpoint>>,
) -> Result<WorkerOut, String> {
    let index = worker.index();
    let peers = worker.peers();
    let tick = compiled.tick;
    let assignment = assign_partitions(&counts, index, peers);
    // The same line as `check-config --connect` prints for this worker.
    tracing::info!(
        "kafka source: process {} worker {}: {}",
        index / args.workers,
        index % args.workers,
        describe_partitions(&assignment, kafka.topics.inputs())
    );
    let plan = compiled.plan();
    let state = WorkerState::new(plan.strategies.clone());
    if ckpt.is_some() {
        state.track_changes();
    }
    let mut checkpoints = ckpt
        .map(|c| WorkerCheckpoints::new(worker, c.clone(), state.clone(), index % args.workers));
    let restored = match checkpoints.as_mut() {
        Some(c) => c.restore(&plan.layout)?,
        None => None,
    };
    let mut source = if assignment.is_empty() {
        None
    } else {
        let consumer = kafka_config::consumer(kafka, &format!("{}-w{index}", kafka.client_id))
            .map_err(|e| e.to_string())?;
        Some(
            KafkaSource::new(
                &consumer,
                kafka.topics.inputs(),
                assignment,
                settings,
                Some(sink.topic(&kafka.topics.dead_letter)),
                Some((metrics, index)),
                wall_clock_ms(),
                restored.as_ref().map(|(_, r)| &r.source),
            )
            .map_err(|e| e.to_string())?,
        )
    };

    if index == 0 && source.is_none() && args.reload.is_some() {
        tracing::warn!("worker 0 has no partitions: live strategy changes cannot be applied");
    }
    // The operators count changes only: a restored worker's gauges start from its state.
    let stats = Rc::new(RefCell::new(match &restored {
        Some(_) => state.evaluate.borrow().gauges(),
        None => Stats::default(),
    }));
    let end = Rc::new(Cell::new(args.until.map_or(u64::MAX, |u| ceil_to(u, tick))));
    let sent: [Rc<Cell<u64>>; 3] = Default::default();
    let counts: Rc<RefCell<OutputCounts>> = Rc::default();
    let failure: Rc<RefCell<Option<String>>> = Rc::new(RefCell::new(None));
    let probe = ProbeHandle::new();
    let mut input = differential_dataflow::input::InputSession::<u64, Event, isize>::new();
    let mut control =
        differential_dataflow::input::InputSession::<u64, AccountUpdate, isize>::new();
    let input_probe = ProbeHandle::new();
    worker.dataflow::<u64, _, _>(|scope| {
        let events = input
            .to_collection(scope)
            .inner
            .probe_with(&input_probe)
            .as_collection();
        let outputs = build_with_state(
            events,
            control.to_collection(scope),
            &plan,
            stats.clone(),
            &state,
        );
        let t = &kafka.topics;
        let out = Outputs {
            end: end.clone(),
            failure: failure.clone(),
            probe: probe.clone(),
            counts: counts.clone(),
        };
        let keep = checkpoints.as_ref().and_then(|c| c.keep_outputs());
        out.write(
            outputs.alerts,
            sink.topic(&t.alerts),
            sent[0].clone(),
            keep.clone(),
            |a| [&a.customer_id, &a.strategy, &a.strategy_version],
        );
        out.write(
            outputs.decisions,
            sink.topic(&t.decisions),
            sent[1].clone(),
            keep.clone(),
            |d| [&d.customer_id, &d.strategy, &d.strategy_version],
        );
        out.write(
            outputs.cases,
            sink.topic(&t.cases),
            sent[2].clone(),
            keep,
            |c| [&c.customer_id, &c.strategy, &c.strategy_version],
        );
    });

    // Control: one message per worker, broadcast, so all agree on how to stop.
    let mut ctl = InputHandleVec::<u64, Control>::new();
    let ctl_probe = ProbeHandle::new();
    let received: Rc<RefCell<Vec<Control>>> = Rc::new(RefCell::new(Vec::new()));
    worker.dataflow::<u64, _, _>(|scope| {
        let sink = received.clone();
        ctl.to_stream(scope)
            .broadcast()
            .inspect(move |m| sink.borrow_mut().push(*m))
            .probe_with(&ctl_probe);
    });

    let mut batch: Vec<(u64, Event)> = Vec::with_capacity(run.poll_batch);
    let mut inflight = InFlight::default();
    let max_lag = run.max_lag.ms();
    let max_pending = run.max_pending_events;
    let mut last_record = wall_clock_ms();
    let mut last_check = 0u64;
    let mut announced = false;
    let mut reported = Reported::default();
    // A restored worker starts at the checkpoint's frontier, with the events it had fed
    // beyond it.
    if let Some((frontier, record)) = &restored {
        input.advance_to(*frontier);
        control.advance_to(*frontier);
        for (time, event) in &record.unsettled {
            if let Some(c) = checkpoints.as_mut() {
                c.unsettled.fed(*time, event);
            }
            input.update_at(event.clone(), *time, 1);
        }
        // Flushed now: a checkpoint round can start before the loop below first flushes,
        // and its quiesce waits for the dataflow to pass this frontier (it hung there).
        input.flush();
        control.flush();
        tracing::info!(
            worker = index,
            frontier,
            unsettled = record.unsettled.len(),
            "resumed from the last checkpoint"
        );
    }
    // With no partitions, this worker's input must not hold the frontier back.
    let mut input = if source.is_none() {
        input.close();
        control.close();
        None
    } else {
        Some((input, control))
    };
    loop {
        if abort.load(Ordering::Relaxed) {
            return Err("stopping: another worker failed".into());
        }
        if let Some(e) = failure.borrow().as_ref() {
            return Err(e.clone());
        }
        sink.health().map_err(|e| e.to_string())?;
        let now = wall_clock_ms();
        if let Some(c) = checkpoints.as_mut() {
            if let Some(e) = c.failure() {
                return Err(e);
            }
            let at = input.as_ref().map_or(u64::MAX, |(i, _)| *i.time());
            if c.service(at, &probe, sink, source.as_ref())? {
                worker.step_or_park(Some(Duration::from_millis(1)));
                continue;
            }
            c.unsettled
                .prune(probe.with_frontier(|f| f.first().copied().unwrap_or(u64::MAX)));
        }
        if !announced {
            let shutdown = args.stop.load(Ordering::Relaxed)
                || received.borrow().iter().any(|m| m.0 == SHUTDOWN);
            let done = match &mut source {
                None => args.until_idle || args.until.is_some(),
                Some(s) => {
                    let past_until = args.until.is_some_and(|u| s.frontier() > ceil_to(u, tick));
                    let idle_long = now.saturating_sub(last_record)
                        >= args.idle_check.as_millis() as u64
                        && now.saturating_sub(last_check) >= args.idle_check.as_millis() as u64;
                    let caught_up = args.until_idle && idle_long && {
                        last_check = now;
                        s.caught_up()
                    };
                    past_until || caught_up
                }
            };
            if shutdown || done {
                let kind = if shutdown { SHUTDOWN } else { DONE };
                let (frontier, max_ts) = match &source {
                    Some(s) => (s.frontier(), s.max_ts().unwrap_or(0)),
                    None => (u64::MAX, 0),
                };
                ctl.send((kind, index as u64, frontier, max_ts));
                ctl.advance_to(1);
                announced = true;
                tracing::info!(
                    worker = index,
                    frontier,
                    max_ts,
                    shutdown,
                    "worker stops consuming"
                );
            }
        }
        if announced {
            if !ctl_probe.less_than(&1) {
                break;
            }
            worker.step_or_park(Some(Duration::from_millis(1)));
            continue;
        }
        let (Some(s), Some((input, control))) = (&mut source, &mut input) else {
            worker.step_or_park(Some(Duration::from_millis(1)));
            continue;
        };
        // Backpressure.
        let frontier_of =
            |p: &ProbeHandle<u64>| p.with_frontier(|f| f.first().copied().unwrap_or(u64::MAX));
        let (pending, lag) = inflight.update(frontier_of(&input_probe), frontier_of(&probe), now);
        if s.is_paused() {
            if lag <= max_lag / 2 && pending <= max_pending / 2 {
                tracing::debug!(worker = index, lag, pending, "backpressure: resuming");
                s.resume(now);
            }
        } else if lag > max_lag || pending > max_pending {
            tracing::debug!(
                worker = index,
                lag,
                pending,
                "backpressure: pausing partitions"
            );
            s.pause(now);
        }
        let taken = s
            .poll(now, Duration::ZERO, run.poll_batch, &mut batch)
            .map_err(|e| e.to_string())?;
        // The end-of-input clock runs only while records could arrive: not while paused.
        if taken > 0 || s.is_paused() {
            last_record = now;
        }
        inflight.unreleased += batch.len() as u64;
        if let Some(c) = checkpoints.as_mut() {
            for (time, event) in batch.iter() {
                c.unsettled.fed(*time, event);
            }
        }
        for (time, event) in batch.drain(..) {
            input.update_at(event, time, 1);
        }
        // A live strategy change enters at worker 0's input time: no worker has passed it
        // (the global frontier is at most this worker's), so every worker switches there.
        if let Some(reload) = args.reload.as_ref().filter(|_| index == 0) {
            if let Some(change) = reload.take() {
                let ts = *control.time();
                for w in 0..peers as u64 {
                    control.update_at((w, Change::Config(change.json.clone())), ts, 1);
                }
                reload.record(ReloadEvent::Applied {
                    ts,
                    versions: change.versions,
                });
            }
        }
        let frontier = s.advance(now);
        if frontier > *input.time() {
            input.advance_to(frontier);
            control.advance_to(frontier);
            inflight.advance(frontier, now);
        }
        input.flush();
        control.flush();
        if let Some(m) = &args.metrics {
            if now.saturating_sub(reported.at) >= 1000 {
                let global = frontier_of(&input_probe);
                reported.report(m, index, s, &stats.borrow(), &counts, global, now);
                for ms in inflight.passed.drain(..) {
                    m.latency.observe(ms as f64 / 1000.0);
                }
            }
        }
        // Parks (at most 1 ms, so Kafka is polled again soon) only when the dataflow has
        // nothing to do; timely wakes it when data arrives from other workers.
        worker.step_or_park(Some(Duration::from_millis(1)));
    }

    // Every worker has announced: agree on where to stop.
    let messages = received.borrow().clone();
    let shutdown = messages.iter().any(|m| m.0 == SHUTDOWN);
    let (target, stop) = if shutdown {
        let g = messages.iter().map(|m| m.2).min().unwrap_or(u64::MAX);
        (g, "stopped")
    } else {
        let last = messages.iter().map(|m| m.3).max().unwrap_or(0);
        let stop_at = ceil_to(args.until.unwrap_or(last), tick);
        end.set(end.get().min(stop_at));
        if let Some((input, control)) = &mut input {
            let to = (stop_at + 1).max(*input.time());
            input.advance_to(to);
            control.advance_to(to);
            input.flush();
            control.flush();
        }
        (stop_at + 1, "done")
    };
    tracing::info!(worker = index, target, stop, "draining the dataflow");
    while target != u64::MAX && probe.less_than(&target) {
        if abort.load(Ordering::Relaxed) {
            return Err("stopping: another worker failed".into());
        }
        if let Some(e) = failure.borrow().as_ref() {
            return Err(e.clone());
        }
        if let Some(c) = checkpoints.as_mut() {
            // A round started before the stop completes (the inputs no longer move).
            let at = input.as_ref().map_or(u64::MAX, |(i, _)| *i.time());
            c.service(at, &probe, sink, source.as_ref())?;
        }
        worker.step_or_park(Some(Duration::from_millis(1)));
    }
    // Quiescent at the target: the last checkpoint of the run.
    if let Some(c) = checkpoints.as_mut() {
        if target != u64::MAX {
            c.take(target, sink, source.as_ref())?;
        }
    }
    // Second round: nobody leaves before everybody has drained.
    ctl.advance_to(2);
    while ctl_probe.less_than(&2) {
        worker.step_or_park(Some(Duration::from_millis(1)));
    }
    if let Some(e) = failure.borrow().as_ref() {
        return Err(e.clone());
    }
    let (source_stats, positions) = match &source {
        Some(s) => {
            if kafka.group_id.is_some() {
                if let Err(e) = s.commit() {
                    tracing::warn!(worker = index, error = %e, "committing offsets to the group failed");
                }
            }
            (s.stats().clone(), s.positions())
        }
        None => (SourceStats::default(), Vec::new()),
    };
    let dataflow = stats.borrow().clone();
    if let (Some(m), Some(s)) = (&args.metrics, &source) {
        reported.report(m, index, s, &dataflow, &counts, target, wall_clock_ms());
    }
    Ok(WorkerOut {
        stats: source_stats,
        dataflow,
        sent: sent.each_ref().map(|c| c.get()),
        complete_before: target,
        stop,
        positions,
    })
}

#[cfg(test)]
mod tests {
    use super::InFlight;

    #[test]
    fn backpressure_counts_only_events_every_worker_has_released() {
        // 100 events fed, then an advance to 50; 30 more, an advance to 90; 7 more fed.
        let mut f = InFlight {
            unreleased: 100,
            ..InFlight::default()
        };
        f.advance(50, 900);
        f.unreleased = 30;
        f.advance(90, 950);
        f.unreleased = 7;
        // Another worker holds the global input frontier at 40: nothing is backlog yet.
        assert_eq!(f.update(40, 40, 1_000), (0, 0));
        // Every input passed 60: the first advance is backlog from now on.
        assert_eq!(f.update(60, 40, 1_500), (100, 0));
        assert_eq!(f.update(95, 40, 1_800), (130, 300));
        // The output passed 50: the first advance is through.
        assert_eq!(f.update(95, 50, 2_000), (30, 200));
        // Unreleased events never count: only more input can release them.
        assert_eq!(f.update(u64::MAX, u64::MAX, 2_100), (0, 0));
        assert_eq!(f.unreleased, 7);
        // Both advances were passed, 1100 and 1150 ms after they were fed.
        assert_eq!(f.passed, vec![1_100, 1_150]);
    }
}
