//! Runs the dataflow over an in-memory, merged event list on W timely worker threads.
//!
//! Used by `replay`, `demo`, `bench` and the tests. Events are dealt round-robin to the
//! workers (the ledger exchanges them by customer), fed through differential's
//! `InputSession` in chunks that span many ticks, and the run stops once the frontier has
//! passed the end time; outputs after the end are not emitted.

use crate::feed::Fed;
use crate::stop::Stop;
use crate::writer::{alert_order, case_order, decision_order, OutputBatch};
use riskwatch_dataflows::checkpoint::{Op, Stored, WorkerState};
use riskwatch_dataflows::evaluate::Output;
use riskwatch_dataflows::graph::{build_with_state, FeatureSnapshot};
use riskwatch_dataflows::operators::ledger::{AccountUpdate, Change};
use riskwatch_dataflows::plan::Compiled;
use riskwatch_dataflows::stats::Stats;
use riskwatch_model::event::Event;
use riskwatch_model::output::{Alert, Case, Decision};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::sync::{Arc, Mutex};
use timely::dataflow::operators::vec::Map;
use timely::dataflow::operators::Exchange as _;
use timely::dataflow::operators::{Inspect, Probe};
use timely::dataflow::ProbeHandle;

/// What a run produced.
#[derive(Debug, Default)]
pub struct RunOutput {
    /// Alerts with `ts <= end`, sorted by (ts, customer, strategy, rule).
    pub alerts: Vec<Alert>,
    /// Decisions with `ts <= end`, sorted by (ts, customer, strategy, id).
    pub decisions: Vec<Decision>,
    /// Case events with `ts <= end`, sorted by (ts, customer, strategy, case, seq).
    pub cases: Vec<Case>,
    /// Counters summed over workers.
    pub stats: Stats,
    /// Feature snapshots, when tracing was asked for (sorted by customer, time).
    pub trace: Vec<FeatureSnapshot>,
    /// When a stop was asked for: every output at a time up to this one was emitted, and
    /// nothing later.
    pub stopped_at: Option<u64>,
    /// Why the run could not restore or checkpoint its state, if it could not; its outputs
    /// are then not to be used.
    pub failure: Option<String>,
    /// Seconds the slowest worker took to restore its state (0 without a restore).
    pub restore_s: f64,
    /// The last time whose outputs were emitted.
    pub end: u64,
    /// What was written, by label (when the outputs went to a writer).
    pub counts: crate::writer::OutputCounts,
}

/// Outputs a worker keeps for its next checkpoint part (the outbox), with their times.
pub type KeptOutputs = Rc<RefCell<Vec<(u64, Output)>>>;

/// Where a run's checkpoints go: one part per local worker per checkpoint time, taken while
/// the dataflow is quiescent there (see [`riskwatch_dataflows::checkpoint`]).
pub trait CheckpointSink: Send + Sync {
    /// Local worker `worker`'s changes for the checkpoint at `frontier`, with the outputs
    /// it produced since its previous part (times before `frontier`).
    fn part(&self, worker: usize, frontier: u64, ops: Vec<Op>, outputs: Vec<(u64, Output)>);
    /// The first failure of a commit, if any; the run stops on it.
    fn failure(&self) -> Option<String>;
}

/// Checkpointing and restoring of a run.
pub struct Checkpointing {
    /// Also checkpoint at the end of the run (at `end + 1`).
    pub at_end: bool,
    /// Where the parts go.
    pub sink: Arc<dyn CheckpointSink>,
    /// The restored frontier and each local worker's stored records, when resuming.
    pub restore: Option<(u64, Mutex<Vec<Option<Stored>>>)>,
}

impl std::fmt::Debug for Checkpointing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpointing")
            .field("at_end", &self.at_end)
            .field("restore", &self.restore.as_ref().map(|r| r.0))
            .finish()
    }
}

pub use crate::progress::Progress;

/// Options of a run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Worker threads.
    pub workers: usize,
    /// Last time (tick) whose outputs are emitted.
    pub end: u64,
    /// Events fed per chunk before the worker steps.
    pub chunk: usize,
    /// Record feature snapshots of every evaluation.
    pub trace: bool,
    /// Report fed events here.
    pub progress: Option<Progress>,
    /// Run as one process of a timely cluster instead of a single process.
    pub cluster: Option<ClusterSpec>,
    /// Live strategy changes: `(time, JSON of a validated Config)`, in time order.
    pub config_changes: Vec<(u64, String)>,
    /// Set (by a signal) to stop early; the run then ends at a time every worker agrees
    /// on, with every output before it complete (single process only).
    pub stop: Option<Arc<AtomicBool>>,
    /// Checkpoints, and the state to start from.
    pub checkpoint: Option<Arc<Checkpointing>>,
    /// Send the outputs here as they are produced instead of collecting them.
    pub output: Option<Sender<OutputBatch>>,
    /// Send each worker's book snapshot here at the pieces marked `snapshot`.
    pub snapshots: Option<Sender<crate::snapshot_writer::SnapshotBatch>>,
}

/// This process's place in a timely cluster (timely's own cluster mode over TCP).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterSpec {
    /// Index of this process, `0..hosts.len()`.
    pub process: usize,
    /// `host:port` of every process, in process order.
    pub hosts: Vec<String>,
}

impl ClusterSpec {
    /// The timely configuration of this process with `workers` threads.
    pub fn timely_config(&self, workers: usize) -> timely::Config {
        timely::Config {
            communication: timely::CommunicationConfig::Cluster {
                threads: workers,
                process: self.process,
                addresses: self.hosts.clone(),
                report: false,
                zerocopy: false,
            },
            worker: timely::WorkerConfig::default(),
        }
    }
}

impl RunOptions {
    /// Defaults for `workers` and `end`.
    pub fn new(workers: usize, end: u64) -> RunOptions {
        RunOptions {
            workers,
            end,
            chunk: 50_000,
            trace: false,
            progress: None,
            cluster: None,
            config_changes: Vec::new(),
            stop: None,
            checkpoint: None,
            output: None,
            snapshots: None,
        }
    }
}

/// Runs `events` (`(time, event)` in non-decreasing time order) through the graph.
///
/// In a cluster every process passes the same events; global worker `w` of `peers` takes
/// events `i` with `i % peers == w`, and all alerts are gathered at global worker 0, so only
/// process 0 returns them (other processes return their own counters and no alerts).
pub fn run(compiled: &Compiled, events: Vec<(u64, Event)>, opts: RunOptions) -> RunOutput {
    let workers = opts.workers.max(1);
    let (process, processes) = match &opts.cluster {
        Some(c) => (c.process, c.hosts.len().max(1)),
        None => (0, 1),
    };
    let fed = crate::feed::from_memory(
        events,
        opts.end,
        opts.chunk,
        (process * workers, workers, workers * processes),
    );
    run_fed(compiled, fed, opts)
}

/// Runs the dataflow over what each local worker is fed (see [`crate::feed`]): worker `i`
/// reads `fed[i]`. With `opts.output` the outputs go there as they are produced (and
/// [`RunOutput`]'s lists stay empty); otherwise they are collected and sorted at the end.
pub fn run_fed(compiled: &Compiled, fed: Vec<Receiver<Fed>>, opts: RunOptions) -> RunOutput {
    let workers = opts.workers.max(1);
    let process = opts.cluster.as_ref().map_or(0, |c| c.process);
    let first = process * workers;
    let timely_config = match &opts.cluster {
        Some(c) => c.timely_config(workers),
        None => timely::Config::process(workers),
    };
    let gather = opts.cluster.is_some();
    let fed: Arc<Mutex<Vec<Option<Receiver<Fed>>>>> =
        Arc::new(Mutex::new(fed.into_iter().map(Some).collect()));
    let compiled = Arc::new(compiled.clone());
    let stop = Arc::new(Stop::new(opts.stop.clone().unwrap_or_default(), workers));
    let stopper = stop.clone();
    let guards = timely::execute(timely_config, move |worker| {
        let index = worker.index() - first;
        let rx = fed
            .lock()
            .expect("no worker panicked holding the feed lock")[index]
            .take()
            .expect("one feed per local worker");
        let mut plan = compiled.plan();
        let trace = opts.trace.then(|| Rc::new(RefCell::new(Vec::new())));
        plan.trace = trace.clone();
        let stats = Rc::new(RefCell::new(Stats::default()));
        let collected: Rc<RefCell<Vec<(u64, Alert)>>> = Rc::new(RefCell::new(Vec::new()));
        let decisions: Rc<RefCell<Vec<(u64, Decision)>>> = Rc::new(RefCell::new(Vec::new()));
        let cases: Rc<RefCell<Vec<(u64, Case)>>> = Rc::new(RefCell::new(Vec::new()));
        let probe = ProbeHandle::new();
        let stop = stopper.clone();
        let progress = opts.progress.clone();
        let output = opts.output.clone();
        let snapshots = opts.snapshots.clone();
        let mut input = differential_dataflow::input::InputSession::<u64, Event, isize>::new();
        let mut control =
            differential_dataflow::input::InputSession::<u64, AccountUpdate, isize>::new();
        let dataflow = worker.next_dataflow_index();
        let peers = worker.peers();
        let global = worker.index() as u32;
        let checkpoint = opts.checkpoint.clone();
        let state = WorkerState::new(plan.strategies.clone());
        if checkpoint.is_some() {
            state.track_changes();
        }
        let mut failure: Option<String> = None;
        let mut restored_at = 0u64;
        let mut restore_s = 0.0f64;
        if let Some((at, stored)) = checkpoint.as_ref().and_then(|c| c.restore.as_ref()) {
            let mine = stored
                .lock()
                .expect("no worker panicked holding the restore lock")[index]
                .take()
                .unwrap_or_default();
            let started = std::time::Instant::now();
            match state.restore(*at, &mine, &plan.layout) {
                Ok(()) => {
                    restored_at = *at;
                    // The operators count changes only; the gauges start from the state.
                    *stats.borrow_mut() = state.evaluate.borrow().gauges();
                }
                Err(e) => failure = Some(format!("restoring the state: {e}")),
            }
            restore_s = started.elapsed().as_secs_f64();
        }
        // Outputs since the last checkpoint part, for the sink (the outbox).
        let recent: KeptOutputs = Rc::new(RefCell::new(Vec::new()));
        // Global worker 0 sends each strategy change once per worker, keyed by its index.
        let mut changes: std::collections::VecDeque<(u64, String)> = if worker.index() == 0 {
            opts.config_changes.iter().cloned().collect()
        } else {
            Default::default()
        };
        let keep = checkpoint.as_ref().map(|_| recent.clone());
        worker.dataflow::<u64, _, _>(|scope| {
            let events = input.to_collection(scope);
            let outputs = build_with_state(
                events,
                control.to_collection(scope),
                &plan,
                stats.clone(),
                &state,
            );
            capture(
                outputs.alerts,
                gather,
                collected.clone(),
                keep.clone(),
                &probe,
            );
            capture(
                outputs.decisions,
                gather,
                decisions.clone(),
                keep.clone(),
                &probe,
            );
            capture(outputs.cases, gather, cases.clone(), keep, &probe);
        });
        if restored_at > 0 {
            stop.advance(index, restored_at);
            input.advance_to(restored_at);
            control.advance_to(restored_at);
        }
        // Sends the outputs at times before the probe's frontier to the writer.
        let mut sent_below = 0u64;
        let mut send = |probe: &ProbeHandle<u64>, end: Option<u64>| {
            let Some(tx) = &output else { return };
            let mark = match end {
                Some(_) => u64::MAX,
                None => probe.with_frontier(|f| f.first().copied().unwrap_or(u64::MAX)),
            };
            if mark <= sent_below && end.is_none() {
                return;
            }
            sent_below = mark;
            let batch = OutputBatch {
                worker: index,
                watermark: mark,
                end,
                alerts: take_below(&mut collected.borrow_mut(), mark),
                decisions: take_below(&mut decisions.borrow_mut(), mark),
                cases: take_below(&mut cases.borrow_mut(), mark),
            };
            let _ = tx.send(batch);
        };
        let mut lag: Vec<u64> = Vec::new();
        // Takes a checkpoint part at `at`: the input has been advanced there and nothing at
        // or after it fed; once the probe has passed it, the dataflow is quiescent.
        let take_checkpoint = |worker: &mut timely::worker::Worker, at: u64| {
            worker.step_while(|| probe.less_than(&at));
            let ops = state.snapshot(global, at);
            let outputs = take_below(&mut recent.borrow_mut(), at);
            if let Some(c) = checkpoint.as_ref() {
                c.sink.part(index, at, ops, outputs);
            }
        };
        // The run's end: the feed's, or one before the agreed stop time.
        let mut end: Option<u64> = None;
        let mut cut = u64::MAX;
        let fresh_cut = |cut: &mut u64| {
            let at = stop.time();
            if at != u64::MAX {
                *cut = at - 1;
            }
        };
        while failure.is_none() {
            fresh_cut(&mut cut);
            if *input.time() > cut {
                break;
            }
            if let Some(e) = checkpoint.as_ref().and_then(|c| c.sink.failure()) {
                failure = Some(e);
                break;
            }
            let piece = match rx.try_recv() {
                Ok(Fed::Piece(p)) => p,
                Ok(Fed::End { end: e }) => {
                    end = Some(e);
                    break;
                }
                Err(TryRecvError::Empty) => {
                    // Keep the dataflow moving while the reader catches up.
                    worker.step_or_park(Some(std::time::Duration::from_millis(1)));
                    send(&probe, None);
                    continue;
                }
                Err(TryRecvError::Disconnected) => {
                    failure = Some("the input reader stopped before the end".into());
                    break;
                }
            };
            let mut n = 0u64;
            for (time, event) in piece.events {
                if time <= cut {
                    input.update_at(event, time, 1);
                    n += 1;
                }
            }
            let upto = stop.advance(index, piece.upto);
            fresh_cut(&mut cut);
            while let Some((t, _)) = changes.front() {
                if *t >= upto {
                    break;
                }
                let (t, json) = changes.pop_front().expect("peeked");
                let t = t.max(*control.time());
                for w in 0..peers as u64 {
                    control.update_at((w, Change::Config(json.clone())), t, 1);
                }
            }
            control.advance_to(upto);
            control.flush();
            input.advance_to(upto);
            input.flush();
            if let Some(p) = &progress {
                p.add(n);
            }
            let at_cut = upto == piece.upto && upto <= cut;
            if at_cut && (piece.checkpoint || piece.snapshot) {
                if piece.checkpoint {
                    take_checkpoint(worker, upto);
                }
                if let (true, Some(tx)) = (piece.snapshot, &snapshots) {
                    // Quiescent at `upto`: every event at or before the observation time
                    // has been applied, and nothing after.
                    worker.step_while(|| probe.less_than(&upto));
                    let mut records = Vec::new();
                    riskwatch_dataflows::snapshot::snapshot_customers(
                        &state.evaluate.borrow(),
                        &plan.layout,
                        upto - 1,
                        &mut records,
                    );
                    let _ = tx.send(crate::snapshot_writer::SnapshotBatch {
                        worker: index,
                        at: upto - 1,
                        records,
                    });
                }
                send(&probe, None);
                lag.clear();
                continue;
            }
            // Keep at most two pieces in flight.
            lag.push(upto);
            if lag.len() > 2 {
                let wait = lag.remove(0);
                worker.step_while(|| probe.less_than(&wait));
            }
            send(&probe, None);
        }
        // Every worker has fed its share: a stop asked for now has nothing left to cut.
        stop.finish(index);
        fresh_cut(&mut cut);
        let (end, stopped) = match end {
            Some(e) => (e.min(cut), cut < e),
            // Stopped, or failed: the end is where the input got to.
            None => (cut.min(input.time().saturating_sub(1)), true),
        };
        for (t, json) in changes.drain(..).filter(|(t, _)| *t <= end) {
            let t = t.max(*control.time());
            for w in 0..peers as u64 {
                control.update_at((w, Change::Config(json.clone())), t, 1);
            }
        }
        let close = (end + 1).max(*input.time()).max(*control.time());
        control.advance_to(close);
        control.flush();
        input.advance_to(close);
        input.flush();
        worker.step_while(|| probe.less_than(&(end + 1)));
        if failure.is_none()
            && checkpoint.as_ref().is_some_and(|c| c.at_end)
            && close == end + 1
            && close > restored_at
        {
            take_checkpoint(worker, end + 1);
        }
        send(&probe, Some(end));
        // A failed worker leaves its dataflow to finish on its own: dropping it here could
        // leave another worker waiting for this one's progress (at a checkpoint) forever.
        if failure.is_none() {
            worker.drop_dataflow(dataflow);
        }
        let alerts = within(&mut collected.borrow_mut(), end);
        let decisions = within(&mut decisions.borrow_mut(), end);
        let cases = within(&mut cases.borrow_mut(), end);
        let stats = stats.borrow().clone();
        let trace = trace
            .map(|t| std::mem::take(&mut *t.borrow_mut()))
            .unwrap_or_default();
        let figures = (stats, trace, end, stopped, failure, restore_s);
        (alerts, decisions, cases, figures)
    })
    .expect("timely workers start");
    let mut out = RunOutput::default();
    for result in guards.join() {
        let (alerts, decisions, cases, (stats, trace, end, stopped, failure, restore_s)) =
            result.expect("a worker panicked");
        out.restore_s = out.restore_s.max(restore_s);
        if out.failure.is_none() {
            out.failure = failure;
        }
        if stopped {
            out.stopped_at = Some(out.stopped_at.map_or(end, |s: u64| s.min(end)));
        }
        out.end = out.end.max(end);
        out.alerts.extend(alerts);
        out.decisions.extend(decisions);
        out.cases.extend(cases);
        out.stats.merge(&stats);
        out.trace.extend(trace);
    }
    out.alerts.sort_by(alert_order);
    out.decisions.sort_by(decision_order);
    out.cases.sort_by(case_order);
    out.trace
        .sort_by(|a, b| (&a.customer_id, a.time).cmp(&(&b.customer_id, b.time)));
    out
}

/// Takes the records of `v` at a time before `below`, keeping their times.
fn take_below<T>(v: &mut Vec<(u64, T)>, below: u64) -> Vec<(u64, T)> {
    if v.iter().all(|(t, _)| *t < below) {
        return std::mem::take(v);
    }
    let (take, keep): (Vec<_>, Vec<_>) =
        std::mem::take(v).into_iter().partition(|(t, _)| *t < below);
    *v = keep;
    take
}

/// Takes the records of `v` at a time up to `end`, dropping their times.
fn within<T>(v: &mut Vec<(u64, T)>, end: u64) -> Vec<T> {
    std::mem::take(v)
        .into_iter()
        .filter(|(t, _)| *t <= end)
        .map(|(_, r)| r)
        .collect()
}

/// Collects an output stream's records into `sink`; in a cluster, first gathers them at
/// global worker 0 as JSON (the contract form, independent of the bincode layout timely
/// uses between processes).
fn capture<'scope, T>(
    stream: timely::dataflow::StreamVec<'scope, u64, (T, u64, isize)>,
    gather: bool,
    sink: Rc<RefCell<Vec<(u64, T)>>>,
    keep: Option<KeptOutputs>,
    probe: &ProbeHandle<u64>,
) where
    T: serde::Serialize + serde::de::DeserializeOwned + Clone + Into<Output> + 'static,
{
    let stream = match keep {
        // The owning worker keeps each output for its next checkpoint part (the outbox).
        Some(keep) => stream.inspect(move |(record, time, _)| {
            keep.borrow_mut().push((*time, record.clone().into()));
        }),
        None => stream,
    };
    if gather {
        stream
            .map(|(record, time, _)| {
                (
                    serde_json::to_string(&record).expect("outputs serialize"),
                    time,
                )
            })
            .exchange(|_| 0)
            .flat_map(move |(json, time)| {
                let record: T = serde_json::from_str(&json).expect("outputs round-trip");
                sink.borrow_mut().push((time, record));
                None::<()>
            })
            .probe_with(probe);
    } else {
        stream
            .flat_map(move |(record, time, _diff)| {
                sink.borrow_mut().push((time, record));
                None::<()>
            })
            .probe_with(probe);
    }
}
