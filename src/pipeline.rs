//! Runs the dataflow over an in-memory, merged event list on W timely worker threads.
//!
//! Used by `replay`, `demo`, `bench` and the tests. Events are dealt round-robin to the
//! workers (the ledger exchanges them by customer), fed through differential's
//! `InputSession` in chunks that span many ticks, and the run stops once the frontier has
//! passed the end time; outputs after the end are not emitted.

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
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
    /// Checkpoint times, ascending (each a frontier: the state before it).
    pub times: Vec<u64>,
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
            .field("times", &self.times.len())
            .field("at_end", &self.at_end)
            .field("restore", &self.restore.as_ref().map(|r| r.0))
            .finish()
    }
}

/// A stop asked of a running replay (a signal), and the time the workers agree to stop
/// at.
///
/// Each worker publishes the time its input has reached after every chunk. The first worker
/// to see the flag picks the largest published time `T` as the stop time; every worker then
/// feeds what it has before `T` and no more, so every output at a time before `T` is complete
/// and the run ends at `T - 1` within about one chunk of work.
#[derive(Debug)]
struct Stop {
    flag: Arc<AtomicBool>,
    at: AtomicU64,
    fed: Vec<AtomicU64>,
}

/// What a worker publishes once it has fed its whole share.
const FINISHED: u64 = u64::MAX - 1;

impl Stop {
    fn new(flag: Arc<AtomicBool>, workers: usize) -> Stop {
        Stop {
            flag,
            at: AtomicU64::new(u64::MAX),
            fed: (0..workers).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// The agreed stop time, once a stop was asked for; `u64::MAX` before.
    fn time(&self) -> u64 {
        if self.flag.load(Ordering::Relaxed) && self.at.load(Ordering::SeqCst) == u64::MAX {
            // Workers that fed their whole share need no cut.
            let t = self
                .fed
                .iter()
                .map(|f| f.load(Ordering::SeqCst))
                .filter(|&f| f != FINISHED)
                .max()
                .unwrap_or(FINISHED)
                .max(1);
            let _ = self
                .at
                .compare_exchange(u64::MAX, t, Ordering::SeqCst, Ordering::SeqCst);
        }
        self.at.load(Ordering::SeqCst)
    }
}

/// A progress line on stderr while a run feeds its events.
#[derive(Clone, Debug)]
pub struct Progress {
    fed: Arc<AtomicU64>,
    done: Arc<AtomicBool>,
}

impl Progress {
    /// Starts a thread that prints `fed/total` twice a second until [`Progress::finish`].
    pub fn start(total: u64) -> Progress {
        let p = Progress {
            fed: Arc::new(AtomicU64::new(0)),
            done: Arc::new(AtomicBool::new(false)),
        };
        let (fed, done) = (p.fed.clone(), p.done.clone());
        std::thread::spawn(move || {
            let start = std::time::Instant::now();
            while !done.load(Ordering::Relaxed) {
                std::thread::sleep(std::time::Duration::from_millis(500));
                let n = fed.load(Ordering::Relaxed);
                let pct = if total == 0 {
                    100.0
                } else {
                    100.0 * n as f64 / total as f64
                };
                eprint!(
                    "\r  dataflow: {n}/{total} events ({pct:.0}%), {:.0} events/s   ",
                    n as f64 / start.elapsed().as_secs_f64()
                );
            }
            eprintln!();
        });
        p
    }

    fn add(&self, n: u64) {
        self.fed.fetch_add(n, Ordering::Relaxed);
    }

    /// Stops the progress line.
    pub fn finish(&self) {
        self.done.store(true, Ordering::Relaxed);
    }
}

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
    let peers = workers * processes;
    let first = process * workers;
    let mut shares: Vec<Vec<(u64, Event)>> = (0..workers).map(|_| Vec::new()).collect();
    for (i, e) in events.into_iter().enumerate() {
        let w = i % peers;
        if w >= first && w < first + workers {
            shares[w - first].push(e);
        }
    }
    let timely_config = match &opts.cluster {
        Some(c) => c.timely_config(workers),
        None => timely::Config::process(workers),
    };
    let gather = opts.cluster.is_some();
    type Shares = Vec<Option<Vec<(u64, Event)>>>;
    let shares: Arc<Mutex<Shares>> = Arc::new(Mutex::new(shares.into_iter().map(Some).collect()));
    let compiled = Arc::new(compiled.clone());
    let progress = opts.progress.clone();
    let stop = Arc::new(Stop::new(opts.stop.clone().unwrap_or_default(), workers));
    let stopper = stop.clone();
    let guards = timely::execute(timely_config, move |worker| {
        let index = worker.index() - first;
        let mine = shares
            .lock()
            .expect("no worker panicked holding the input lock")[index]
            .take()
            .unwrap_or_default();
        let mut plan = compiled.plan();
        let trace = opts.trace.then(|| Rc::new(RefCell::new(Vec::new())));
        plan.trace = trace.clone();
        let stats = Rc::new(RefCell::new(Stats::default()));
        let collected: Rc<RefCell<Vec<(u64, Alert)>>> = Rc::new(RefCell::new(Vec::new()));
        let decisions: Rc<RefCell<Vec<(u64, Decision)>>> = Rc::new(RefCell::new(Vec::new()));
        let cases: Rc<RefCell<Vec<(u64, Case)>>> = Rc::new(RefCell::new(Vec::new()));
        let probe = ProbeHandle::new();
        let mut end = opts.end;
        let stop = stopper.clone();
        let progress = opts.progress.clone();
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
                Ok(()) => restored_at = *at,
                Err(e) => failure = Some(format!("restoring the state: {e}")),
            }
            restore_s = started.elapsed().as_secs_f64();
        }
        let mut ckpt_times: std::collections::VecDeque<u64> = checkpoint
            .as_ref()
            .map(|c| {
                c.times
                    .iter()
                    .copied()
                    .filter(|t| *t > restored_at)
                    .collect()
            })
            .unwrap_or_default();
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
                end,
                gather,
                collected.clone(),
                keep.clone(),
                &probe,
            );
            capture(
                outputs.decisions,
                end,
                gather,
                decisions.clone(),
                keep.clone(),
                &probe,
            );
            capture(outputs.cases, end, gather, cases.clone(), keep, &probe);
        });
        if restored_at > 0 {
            input.advance_to(restored_at);
            control.advance_to(restored_at);
        }
        let mut iter = mine.into_iter().peekable();
        if failure.is_some() {
            iter = Vec::new().into_iter().peekable();
        }
        let mut lag: Vec<u64> = Vec::new();
        // Takes a checkpoint part at `at`: the input has been advanced there and nothing at
        // or after it fed; once the probe has passed it, the dataflow is quiescent.
        let take_checkpoint = |worker: &mut timely::worker::Worker, at: u64| {
            worker.step_while(|| probe.less_than(&at));
            let ops = state.snapshot(global, at);
            let outputs = std::mem::take(&mut *recent.borrow_mut());
            if let Some(c) = checkpoint.as_ref() {
                c.sink.part(index, at, ops, outputs);
            }
        };
        while iter.peek().is_some() {
            let stop_at = stop.time();
            if stop_at != u64::MAX {
                end = end.min(stop_at - 1);
            }
            if let Some(e) = checkpoint.as_ref().and_then(|c| c.sink.failure()) {
                failure = Some(e);
                break;
            }
            let ckpt = ckpt_times.front().copied().unwrap_or(u64::MAX);
            let mut n = 0;
            while let Some((time, event)) = iter.next_if(|(t, _)| *t <= end && *t < ckpt) {
                input.update_at(event, time, 1);
                n += 1;
                if n >= opts.chunk {
                    break;
                }
            }
            let next = iter.peek().map(|(t, _)| *t).filter(|t| *t <= end);
            let upto = next.unwrap_or(end + 1).min(ckpt);
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
            stop.fed[index].fetch_max(upto, Ordering::SeqCst);
            if let Some(p) = &progress {
                p.add(n as u64);
            }
            if upto == ckpt && ckpt <= end {
                ckpt_times.pop_front();
                take_checkpoint(worker, ckpt);
                lag.clear();
                continue;
            }
            // Keep at most two chunks in flight.
            lag.push(upto);
            if lag.len() > 2 {
                let wait = lag.remove(0);
                worker.step_while(|| probe.less_than(&wait));
            }
            if next.is_none() {
                break;
            }
        }
        // Every worker has fed its share: a stop asked for now has nothing left to cut.
        stop.fed[index].store(FINISHED, Ordering::SeqCst);
        let stop_at = stop.time();
        if stop_at != u64::MAX {
            end = end.min(stop_at - 1);
        }
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
        if failure.is_none() && checkpoint.as_ref().is_some_and(|c| c.at_end) && close == end + 1 {
            take_checkpoint(worker, end + 1);
        }
        worker.drop_dataflow(dataflow);
        let alerts = within(&mut collected.borrow_mut(), end);
        let decisions = within(&mut decisions.borrow_mut(), end);
        let cases = within(&mut cases.borrow_mut(), end);
        let stats = stats.borrow().clone();
        let trace = trace
            .map(|t| std::mem::take(&mut *t.borrow_mut()))
            .unwrap_or_default();
        (
            alerts, decisions, cases, stats, trace, end, failure, restore_s,
        )
    })
    .expect("timely workers start");
    if let Some(p) = &progress {
        p.finish();
    }
    let mut out = RunOutput::default();
    for result in guards.join() {
        let (alerts, decisions, cases, stats, trace, end, failure, restore_s) =
            result.expect("a worker panicked");
        out.restore_s = out.restore_s.max(restore_s);
        if out.failure.is_none() {
            out.failure = failure;
        }
        if end < opts.end {
            out.stopped_at = Some(out.stopped_at.map_or(end, |s: u64| s.min(end)));
        }
        out.alerts.extend(alerts);
        out.decisions.extend(decisions);
        out.cases.extend(cases);
        out.stats.merge(&stats);
        out.trace.extend(trace);
    }
    out.alerts.sort_by(|a, b| {
        (a.ts, &a.customer_id, &a.strategy, &a.rule_id).cmp(&(
            b.ts,
            &b.customer_id,
            &b.strategy,
            &b.rule_id,
        ))
    });
    out.decisions.sort_by(|a, b| {
        (a.ts, &a.customer_id, &a.strategy, &a.decision_id).cmp(&(
            b.ts,
            &b.customer_id,
            &b.strategy,
            &b.decision_id,
        ))
    });
    out.cases.sort_by(|a, b| {
        (a.ts, &a.customer_id, &a.strategy, &a.case_id, a.seq).cmp(&(
            b.ts,
            &b.customer_id,
            &b.strategy,
            &b.case_id,
            b.seq,
        ))
    });
    out.trace
        .sort_by(|a, b| (&a.customer_id, a.time).cmp(&(&b.customer_id, b.time)));
    out
}

/// Takes the records of `v` at a time up to `end`, dropping their times.
fn within<T>(v: &mut Vec<(u64, T)>, end: u64) -> Vec<T> {
    std::mem::take(v)
        .into_iter()
        .filter(|(t, _)| *t <= end)
        .map(|(_, r)| r)
        .collect()
}

/// Collects an output stream's records with time ≤ `end` into `sink`; in a cluster, first
/// gathers them at global worker 0 as JSON (the contract form, independent of the bincode
/// layout timely uses between processes).
fn capture<'scope, T>(
    stream: timely::dataflow::StreamVec<'scope, u64, (T, u64, isize)>,
    end: u64,
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
            if *time <= end {
                keep.borrow_mut().push((*time, record.clone().into()));
            }
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
                if time <= end {
                    let record: T = serde_json::from_str(&json).expect("outputs round-trip");
                    sink.borrow_mut().push((time, record));
                }
                None::<()>
            })
            .probe_with(probe);
    } else {
        stream
            .flat_map(move |(record, time, _diff)| {
                if time <= end {
                    sink.borrow_mut().push((time, record));
                }
                None::<()>
            })
            .probe_with(probe);
    }
}
