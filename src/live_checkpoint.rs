//! Checkpoints of the live (Kafka) pipeline: how the workers agree on a quiescent frontier
//! while records keep arriving, and what each worker stores besides its operator state.
//!
//! A checkpoint is a round of three steps, carried by a small broadcast dataflow:
//!
//! 1. **Freeze.** Worker 0 starts a round every `--checkpoint-every` of wall time; every
//!    worker that hears of it stops polling and stops advancing its input, and broadcasts
//!    its input frontier `f_w`.
//! 2. **Quiesce and snapshot.** Once all frontiers are in, `c = min f_w` is the global
//!    input frontier, held still: every worker steps until its probe passes `c`, then
//!    snapshots its operator state (everything before `c`), its source position and
//!    watermarks, and the events it fed at or after `c` that the dataflow holds unprocessed
//!    ([`Unsettled`]). Nothing at or after `c` can have been processed: the global input
//!    frontier is `c`.
//! 3. **Barrier.** A worker resumes only when every worker has snapshotted; otherwise one
//!    that resumed first would move the global frontier past `c` under another's snapshot.
//!
//! A restart restores the operator state, seeks each partition to its stored position with
//! its watermark, and feeds the stored unsettled events again at their times: the input
//! after the restart is exactly the input the uninterrupted run had after `c`.

use crate::pipeline::CheckpointSink as _;
use riskwatch_connectors::kafka::{KafkaSink, KafkaSource, SourceCheckpoint};

/// How long a checkpoint waits for the brokers to acknowledge the outputs before it.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(30);
use riskwatch_dataflows::checkpoint::{self, Op, Part, Stored, WorkerState};
use riskwatch_model::event::Event;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use timely::dataflow::operators::vec::Broadcast;
use timely::dataflow::operators::{Inspect, Probe};
use timely::dataflow::{InputHandleVec, ProbeHandle};

/// What a worker stores of its source at a checkpoint.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SourceRecord {
    /// The checkpoint's frontier.
    pub frontier: u64,
    /// The source's positions and watermarks.
    pub source: SourceCheckpoint,
    /// Events fed at or after the frontier, not yet processed: fed again on restore.
    pub unsettled: Vec<(u64, Event)>,
}

/// The events a worker fed that the dataflow has not processed yet (times at or after the
/// processed frontier): kept so that a checkpoint can store them.
#[derive(Default)]
pub struct Unsettled {
    events: Vec<(u64, Event)>,
    pruned_at: u64,
}

impl Unsettled {
    /// Keeps a copy of a fed event.
    pub fn fed(&mut self, time: u64, event: &Event) {
        self.events.push((time, event.clone()));
    }

    /// Forgets events before `processed`, the frontier the whole dataflow has passed.
    pub fn prune(&mut self, processed: u64) {
        if processed > self.pruned_at {
            self.events.retain(|(t, _)| *t >= processed);
            self.pruned_at = processed;
        }
    }

    /// The events at or after `frontier`, in the order they were fed.
    pub fn at_or_after(&self, frontier: u64) -> Vec<(u64, Event)> {
        self.events
            .iter()
            .filter(|(t, _)| *t >= frontier)
            .cloned()
            .collect()
    }

    /// How many are held.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether none are held.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

/// Where a worker is in the checkpoint rounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Running normally.
    Idle,
    /// Frozen, waiting for every worker's frontier.
    Frozen,
    /// Every frontier is in: step until the probe passes this time, then snapshot.
    Quiesce(u64),
    /// Snapshotted, waiting for every worker to have snapshotted.
    Barrier,
}

/// The checkpoint rounds of one worker (see the module documentation).
pub struct Rounds {
    input: InputHandleVec<u64, (u64, u64, u64)>,
    probe: ProbeHandle<u64>,
    heard: Rc<RefCell<Vec<(u64, u64, u64)>>>,
    round: u64,
    phase: Phase,
    last: Instant,
    every: Duration,
    peers: usize,
    index: usize,
}

impl Rounds {
    /// Builds the rounds' dataflow on `worker`; worker 0 starts a round every `every`.
    pub fn new(worker: &mut timely::worker::Worker, every: Duration) -> Rounds {
        let mut input = InputHandleVec::new();
        let probe = ProbeHandle::new();
        let heard: Rc<RefCell<Vec<(u64, u64, u64)>>> = Rc::default();
        let sink = heard.clone();
        worker.dataflow::<u64, _, _>(|scope| {
            input
                .to_stream(scope)
                .broadcast()
                .inspect(move |m: &(u64, u64, u64)| sink.borrow_mut().push(*m))
                .probe_with(&probe);
        });
        Rounds {
            input,
            probe,
            heard,
            round: 0,
            phase: Phase::Idle,
            // The first round starts on the first step: a restarted run checkpoints at
            // once, before its loop has polled (what the crash test then always covers).
            last: Instant::now()
                .checked_sub(every)
                .unwrap_or_else(Instant::now),
            every,
            peers: worker.peers(),
            index: worker.index(),
        }
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Moves the rounds on; `frontier` is this worker's input frontier (used when it
    /// freezes). Returns the phase: the caller polls and advances its input only in
    /// [`Phase::Idle`], and snapshots in [`Phase::Quiesce`] once its probe has passed the
    /// time, then calls [`Rounds::snapshotted`].
    pub fn step(&mut self, frontier: u64) -> Phase {
        let round = self.round;
        match self.phase {
            Phase::Idle => {
                let started = self.index == 0 && self.last.elapsed() >= self.every;
                let heard = self.heard.borrow().iter().any(|m| m.0 == round);
                if started || heard {
                    self.input.send((round, self.index as u64, frontier));
                    self.input.advance_to(2 * round + 1);
                    self.phase = Phase::Frozen;
                    tracing::debug!(worker = self.index, round, frontier, "checkpoint: frozen");
                }
            }
            Phase::Frozen => {
                if !self.probe.less_than(&(2 * round + 1)) {
                    let heard = self.heard.borrow();
                    let frontiers: Vec<u64> =
                        heard.iter().filter(|m| m.0 == round).map(|m| m.2).collect();
                    debug_assert_eq!(frontiers.len(), self.peers);
                    let c = frontiers.into_iter().min().unwrap_or(0);
                    self.phase = Phase::Quiesce(c);
                    tracing::debug!(worker = self.index, round, c, "checkpoint: quiescing");
                }
            }
            Phase::Quiesce(_) => {}
            Phase::Barrier => {
                if !self.probe.less_than(&(2 * round + 2)) {
                    self.heard.borrow_mut().retain(|m| m.0 > round);
                    self.round += 1;
                    self.phase = Phase::Idle;
                    self.last = Instant::now();
                    tracing::debug!(worker = self.index, round, "checkpoint: resumed");
                }
            }
        }
        self.phase
    }

    /// This worker has taken its part of the round's checkpoint.
    pub fn snapshotted(&mut self) {
        if let Phase::Quiesce(_) = self.phase {
            self.input.advance_to(2 * self.round + 2);
            self.phase = Phase::Barrier;
        }
    }
}

/// Checkpointing of a live run, shared by its workers.
pub struct LiveCheckpoint {
    /// Where the parts go.
    pub committer: Arc<crate::state::Committer>,
    /// Wall time between checkpoints.
    pub every: Duration,
    /// Per local worker: the restored frontier and its stored records.
    pub restore: Mutex<Vec<Option<(u64, Stored)>>>,
    /// Keep the outputs for the checkpoints (webhooks stage them into the outbox).
    pub keep_outputs: bool,
}

/// A worker's side of live checkpoints: its rounds, its operator state and what it fed
/// ahead of the frontier.
pub struct WorkerCheckpoints {
    shared: Arc<LiveCheckpoint>,
    rounds: Rounds,
    /// The worker's operator state.
    pub state: WorkerState,
    /// Events fed ahead of the processed frontier.
    pub unsettled: Unsettled,
    /// Outputs since the last part, when kept.
    outputs: Option<crate::pipeline::KeptOutputs>,
    local: usize,
    global: u32,
}

impl WorkerCheckpoints {
    /// Sets up checkpoints for local worker `local` (global index `worker.index()`).
    pub fn new(
        worker: &mut timely::worker::Worker,
        shared: Arc<LiveCheckpoint>,
        state: WorkerState,
        local: usize,
    ) -> WorkerCheckpoints {
        let rounds = Rounds::new(worker, shared.every);
        let outputs = shared.keep_outputs.then(Rc::default);
        WorkerCheckpoints {
            outputs,
            global: worker.index() as u32,
            shared,
            rounds,
            state,
            unsettled: Unsettled::default(),
            local,
        }
    }

    /// This worker's restored frontier and source record, after restoring its operator
    /// state; `None` without a checkpoint.
    pub fn restore(
        &mut self,
        layout: &riskwatch_dataflows::layout::Layout,
    ) -> Result<Option<(u64, SourceRecord)>, String> {
        let taken = self
            .shared
            .restore
            .lock()
            .expect("no worker panicked holding the restore lock")
            .get_mut(self.local)
            .and_then(Option::take);
        let Some((frontier, stored)) = taken else {
            return Ok(None);
        };
        self.state
            .restore(frontier, &stored, layout)
            .map_err(|e| format!("restoring the state: {e}"))?;
        let record = match stored.parts.get(&Part::Sources).and_then(|v| v.first()) {
            Some((k, v)) => checkpoint::decode::<SourceRecord>(Part::Sources, k, v)
                .map_err(|e| format!("restoring the source: {e}"))?,
            None => SourceRecord {
                frontier,
                ..SourceRecord::default()
            },
        };
        Ok(Some((frontier, record)))
    }

    /// Services the rounds; returns whether the worker must hold its input (not poll, not
    /// advance). Takes this worker's part when the dataflow is quiescent.
    pub fn service(
        &mut self,
        input_frontier: u64,
        probe: &ProbeHandle<u64>,
        sink: &KafkaSink,
        source: Option<&KafkaSource>,
    ) -> Result<bool, String> {
        Ok(match self.rounds.step(input_frontier) {
            Phase::Idle => false,
            Phase::Quiesce(c) => {
                if !probe.less_than(&c) {
                    self.take(c, sink, source)?;
                    self.rounds.snapshotted();
                }
                true
            }
            Phase::Frozen | Phase::Barrier => true,
        })
    }

    /// Takes this worker's part of the checkpoint at `c` (the dataflow quiescent there).
    ///
    /// Every output before `c` has been handed to the producer; it is flushed first, so
    /// that a committed checkpoint never stands for an output the brokers do not have
    /// (outputs after `c` are recomputed, with the same ids, after a restart).
    pub fn take(
        &mut self,
        c: u64,
        sink: &KafkaSink,
        source: Option<&KafkaSource>,
    ) -> Result<(), String> {
        sink.flush(FLUSH_TIMEOUT)
            .map_err(|e| format!("checkpoint at {c}: flushing the outputs: {e}"))?;
        let mut ops = self.state.snapshot(self.global, c);
        let record = SourceRecord {
            frontier: c,
            source: source.map(KafkaSource::checkpoint).unwrap_or_default(),
            unsettled: self.unsettled.at_or_after(c),
        };
        ops.push(Op::Put(
            Part::Sources,
            checkpoint::key(self.global, &[]),
            checkpoint::encode(&record),
        ));
        let outputs = self
            .outputs
            .as_ref()
            .map(|o| std::mem::take(&mut *o.borrow_mut()))
            .unwrap_or_default();
        self.shared.committer.part(self.local, c, ops, outputs);
        Ok(())
    }

    /// Where the worker's output operators keep their outputs for the next part, if kept.
    pub fn keep_outputs(&self) -> Option<crate::pipeline::KeptOutputs> {
        self.outputs.clone()
    }

    /// The first commit failure, if any.
    pub fn failure(&self) -> Option<String> {
        self.shared.committer.failure()
    }
}
