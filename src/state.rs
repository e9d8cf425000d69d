//! The runtime's side of durable state: what a state directory must agree with, loading a
//! worker's records for a restore, and the committer that turns the workers' checkpoint
//! parts into one atomic RocksDB batch per checkpoint.
//!
//! ```text
//!  worker 0 ─ part(c, ops, outputs) ─┐
//!  worker 1 ─ part(c, ops, outputs) ─┼─▶ Committer (collects W parts) ─▶ commit thread ─▶ StateDir
//!  …                                 ┘         one WriteBatch per c: ops + outbox + meta(c, sources)
//! ```
//!
//! Workers never wait for a commit: they hand their part over and go on; the commit
//! thread writes checkpoints in order. A failed commit (disk full) is kept and reported by
//! [`CheckpointSink::failure`], and the run stops with it; the previous checkpoint is intact.

use crate::pipeline::CheckpointSink;
use riskwatch_dataflows::checkpoint::{worker_prefix, Op, Part, Stored};
use riskwatch_dataflows::evaluate::Output;
use riskwatch_dataflows::plan::Compiled;
use riskwatch_state::{Checkpoint, CheckpointMeta, Fingerprint, OpenMode, SourcePosition};
use riskwatch_state::{StateDir, StateError, Table};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The table of a dataflow part.
pub fn table(part: Part) -> Table {
    match part {
        Part::Ledger => Table::Ledger,
        Part::Windows => Table::Windows,
        Part::Dedupe => Table::Dedupe,
        Part::Evaluate => Table::Evaluate,
        Part::Sources => Table::Sources,
    }
}

/// Everything a state directory depends on: the time model, the windows and features (the
/// slot layout), the duplicate horizon, the link window, how customers are spread over
/// workers, and the format of the operator-state records. A directory written under another value of any of these is refused at start.
pub fn fingerprint(compiled: &Compiled, workers: usize, processes: usize) -> Fingerprint {
    let mut f = Fingerprint::new();
    f.insert("tick".into(), format!("{}ms", compiled.tick));
    f.insert(
        "dedupe_horizon".into(),
        format!("{}ms", compiled.dedupe_horizon),
    );
    f.insert(
        "rings.link_window".into(),
        format!(
            "{}ms/{}ms",
            compiled.rings.link_window.ms(),
            compiled.rings.link_granularity.ms()
        ),
    );
    for w in &compiled.layout.windows {
        let measures: Vec<String> = w
            .sums
            .iter()
            .chain(w.distincts.iter())
            .map(|(m, slot)| format!("{}@{slot}", m.name()))
            .collect();
        f.insert(
            format!("window.{}", w.name),
            format!(
                "{}ms/{}ms [{}]",
                w.length,
                w.granularity,
                measures.join(",")
            ),
        );
    }
    f.insert("features".into(), compiled.layout.names.join(","));
    f.insert(
        "record_format".into(),
        riskwatch_dataflows::checkpoint::RECORD_FORMAT.to_string(),
    );
    f.insert("workers".into(), workers.to_string());
    f.insert("processes".into(), processes.to_string());
    f
}

/// The version string of the strategies in force: `name@version` of each, in order.
pub fn config_version(compiled: &Compiled) -> String {
    compiled
        .strategies
        .list
        .iter()
        .map(|s| format!("{}@{}", s.name, s.version))
        .collect::<Vec<_>>()
        .join(",")
}

/// How `--state` opens its directory.
#[derive(Clone, Debug)]
pub struct StateOptions {
    /// The state directory.
    pub dir: PathBuf,
    /// Existing (the default), create if missing (`--init-state`), or wipe (`--fresh-state`).
    pub mode: OpenMode,
    /// Checkpoint interval: event time in replay, wall time live (ms).
    pub every: u64,
}

/// Opens the state directory of `opts` for this run.
pub fn open(opts: &StateOptions, expected: &Fingerprint) -> Result<StateDir, StateError> {
    StateDir::open(&opts.dir, opts.mode, expected)
}

/// The stored records of the workers `first..first + workers` (global indices), in key
/// order per part.
pub fn load(dir: &StateDir, first: usize, workers: usize) -> Result<Vec<Stored>, StateError> {
    let mut out = Vec::with_capacity(workers);
    for w in first..first + workers {
        let prefix = worker_prefix(w as u32);
        let mut stored = Stored::default();
        for part in Part::ALL {
            let mut entries = Vec::new();
            for item in dir.scan(table(part), &prefix) {
                let (k, v) = item?;
                entries.push((k.into_vec(), v.into_vec()));
            }
            stored.parts.insert(part, entries);
        }
        out.push(stored);
    }
    Ok(out)
}

/// Key of the files-mode source record in [`Table::Sources`].
pub const REPLAY_SOURCE_KEY: &[u8] = b"replay";

/// What files-mode replay records of its sources at a checkpoint.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ReplaySource {
    /// Rejected records already written to an earlier run's rejected output.
    pub rejected_reported: u64,
}

/// Reads the files-mode source record, if any.
pub fn replay_source(dir: &StateDir) -> Result<Option<ReplaySource>, StateError> {
    let Some(bytes) = dir.get(Table::Sources, REPLAY_SOURCE_KEY)? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| StateError::Corrupt {
            path: dir.path().to_path_buf(),
            file: None,
            detail: format!("the replay source record does not decode: {e}"),
        })
}

/// Figures of the commits so far.
#[derive(Debug, Default)]
pub struct CommitFigures {
    /// Checkpoints committed.
    pub checkpoints: AtomicU64,
    /// Bytes written, over all checkpoints.
    pub bytes: AtomicU64,
    /// Keys written, over all checkpoints.
    pub keys: AtomicU64,
    /// Microseconds spent committing, over all checkpoints.
    pub micros: AtomicU64,
    /// The longest commit, microseconds.
    pub max_micros: AtomicU64,
    /// The frontier of the last committed checkpoint.
    pub frontier: AtomicU64,
}

/// Extra content of each checkpoint besides the operator state: the source positions and
/// source records, and the outbox entries for the outputs.
pub trait CheckpointExtras: Send {
    /// Adds to `batch` whatever belongs with the checkpoint at `frontier`; returns the
    /// source positions it matches.
    fn extend(
        &mut self,
        dir: &StateDir,
        frontier: u64,
        outputs: &[(u64, Output)],
        batch: &mut Checkpoint,
    ) -> Result<Vec<SourcePosition>, StateError>;

    /// The checkpoint was committed (the outbox may send what it staged).
    fn committed(&mut self) {}
}

struct Pending {
    parts: usize,
    batch: Checkpoint,
    outputs: Vec<(u64, Output)>,
}

/// Collects the local workers' parts and commits each checkpoint whole on its own thread.
pub struct Committer {
    workers: usize,
    pending: Mutex<BTreeMap<u64, Pending>>,
    tx: Mutex<Option<mpsc::SyncSender<(u64, Pending)>>>,
    failure: Arc<Mutex<Option<String>>>,
    error: Arc<Mutex<Option<StateError>>>,
    figures: Arc<CommitFigures>,
    thread: Mutex<Option<std::thread::JoinHandle<Arc<StateDir>>>>,
}

impl Committer {
    /// Starts the commit thread over `dir`, expecting `workers` parts per checkpoint.
    pub fn start(
        dir: Arc<StateDir>,
        workers: usize,
        config_version: String,
        mut extras: Box<dyn CheckpointExtras>,
        metrics: Option<crate::metrics::Metrics>,
    ) -> Arc<Committer> {
        // Two checkpoints may wait: a worker blocks only if commits fall that far behind.
        let (tx, rx) = mpsc::sync_channel::<(u64, Pending)>(2);
        let failure: Arc<Mutex<Option<String>>> = Arc::default();
        let error: Arc<Mutex<Option<StateError>>> = Arc::default();
        let figures: Arc<CommitFigures> = Arc::default();
        let (fail, figs, err) = (failure.clone(), figures.clone(), error.clone());
        let thread = std::thread::Builder::new()
            .name("checkpoint".into())
            .spawn(move || {
                for (frontier, mut p) in rx {
                    if fail.lock().expect("no panic holding the failure").is_some() {
                        continue;
                    }
                    let result = extras
                        .extend(&dir, frontier, &p.outputs, &mut p.batch)
                        .and_then(|sources| {
                            let meta = CheckpointMeta {
                                format: 0,
                                seq: 0,
                                frontier,
                                written_at_ms:
                                    riskwatch_dataflows::operators::evaluate::wall_clock_ms(),
                                fingerprint: Fingerprint::new(),
                                config_version: config_version.clone(),
                                sources,
                            };
                            dir.commit(p.batch, meta)
                        });
                    match result {
                        Ok((_, stats)) => {
                            extras.committed();
                            if let Some(m) = &metrics {
                                m.checkpoint_commits.inc();
                                m.checkpoint_duration.observe(stats.duration.as_secs_f64());
                                m.checkpoint_bytes.inc_by(stats.bytes);
                                m.state_bytes.set(dir.size_on_disk() as i64);
                            }
                            let us = stats.duration.as_micros() as u64;
                            figs.checkpoints.fetch_add(1, Ordering::Relaxed);
                            figs.bytes.fetch_add(stats.bytes, Ordering::Relaxed);
                            figs.keys.fetch_add(stats.keys, Ordering::Relaxed);
                            figs.micros.fetch_add(us, Ordering::Relaxed);
                            figs.max_micros.fetch_max(us, Ordering::Relaxed);
                            figs.frontier.store(frontier, Ordering::Relaxed);
                        }
                        Err(e) => {
                            if let Some(m) = &metrics {
                                m.checkpoint_failures.inc();
                            }
                            tracing::error!(error = %e, frontier, "checkpoint failed");
                            *fail.lock().expect("no panic holding the failure") =
                                Some(format!("checkpoint at {frontier} failed: {e}"));
                            *err.lock().expect("no panic holding the error") = Some(e);
                        }
                    }
                }
                dir
            })
            .expect("the checkpoint thread starts");
        Arc::new(Committer {
            workers,
            pending: Mutex::default(),
            tx: Mutex::new(Some(tx)),
            failure,
            error,
            figures,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// The commit figures so far.
    pub fn figures(&self) -> Arc<CommitFigures> {
        self.figures.clone()
    }

    /// Waits for every handed-over checkpoint to be committed; returns the directory, or
    /// the first failure (a [`StateError`] when a commit failed).
    pub fn finish(&self) -> anyhow::Result<Arc<StateDir>> {
        self.tx.lock().expect("no panic holding the sender").take();
        let dir = self
            .thread
            .lock()
            .expect("no panic holding the thread")
            .take()
            .ok_or_else(|| anyhow::anyhow!("the committer was already finished"))?
            .join()
            .map_err(|_| anyhow::anyhow!("the checkpoint thread panicked"))?;
        if let Some(e) = self
            .error
            .lock()
            .expect("no panic holding the error")
            .take()
        {
            let frontier = self.figures.frontier.load(Ordering::Relaxed);
            return Err(anyhow::Error::new(e).context(format!(
                "checkpointing stopped the run; the last complete checkpoint is before event \
                 time {frontier}"
            )));
        }
        Ok(dir)
    }
}

impl CheckpointSink for Committer {
    fn part(&self, _worker: usize, frontier: u64, ops: Vec<Op>, outputs: Vec<(u64, Output)>) {
        let complete = {
            let mut pending = self.pending.lock().expect("no panic holding the parts");
            let p = pending.entry(frontier).or_insert_with(|| Pending {
                parts: 0,
                batch: Checkpoint::default(),
                outputs: Vec::new(),
            });
            for op in ops {
                match op {
                    Op::Put(part, k, v) => p.batch.put(table(part), &k, &v),
                    Op::DeleteRange(part, from, to) => {
                        p.batch.delete_range(table(part), &from, &to)
                    }
                }
            }
            p.outputs.extend(outputs);
            p.parts += 1;
            if p.parts == self.workers {
                pending.remove(&frontier)
            } else {
                None
            }
        };
        if let Some(mut p) = complete {
            p.outputs.sort_by_key(|(t, _)| *t);
            let tx = self.tx.lock().expect("no panic holding the sender").clone();
            if let Some(tx) = tx {
                // Blocks only when two checkpoints already wait for the disk.
                let _ = tx.send((frontier, p));
            }
        }
    }

    fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .expect("no panic holding the failure")
            .clone()
    }
}

/// The checkpoint extras of files-mode replay: the count of rejected records written.
pub struct ReplayExtras {
    /// Rejected records earlier runs of this directory wrote.
    pub reported: u64,
    /// Rejected records this run's reader has found so far (from the start of the files,
    /// so those earlier runs wrote included); they are written as they are found.
    pub found: Arc<std::sync::atomic::AtomicU64>,
}

impl CheckpointExtras for ReplayExtras {
    fn extend(
        &mut self,
        _dir: &StateDir,
        _frontier: u64,
        _outputs: &[(u64, Output)],
        batch: &mut Checkpoint,
    ) -> Result<Vec<SourcePosition>, StateError> {
        let found = self.found.load(std::sync::atomic::Ordering::Relaxed);
        let record = ReplaySource {
            rejected_reported: self.reported.max(found),
        };
        batch.put(
            Table::Sources,
            REPLAY_SOURCE_KEY,
            &serde_json::to_vec(&record).expect("the source record serializes"),
        );
        Ok(Vec::new())
    }
}

/// The checkpoint extras of a live run: the source positions travel in each worker's
/// [`Part::Sources`] record, so nothing is added.
pub struct LiveExtras;

impl CheckpointExtras for LiveExtras {
    fn extend(
        &mut self,
        _dir: &StateDir,
        _frontier: u64,
        _outputs: &[(u64, Output)],
        _batch: &mut Checkpoint,
    ) -> Result<Vec<SourcePosition>, StateError> {
        Ok(Vec::new())
    }
}

/// The checkpoint times of a replay: the first multiple of `every` after each event time,
/// up to `end`, after `from`, ascending and distinct. Empty stretches of event time get no
/// checkpoint.
pub fn replay_checkpoint_times(
    times: impl Iterator<Item = u64>,
    every: u64,
    from: u64,
    end: u64,
) -> Vec<u64> {
    let every = every.max(1);
    let mut out: Vec<u64> = Vec::new();
    for t in times {
        let b = (t / every + 1).saturating_mul(every);
        if b > from && b <= end && out.last() != Some(&b) {
            out.push(b);
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Parses a checkpoint interval (`30s`, `1d`, …) for a flag.
pub fn parse_every(s: &str) -> Result<u64, String> {
    let ms = riskwatch_model::time::Millis::parse(s).map_err(|e| e.to_string())?;
    if ms.ms() == 0 {
        return Err("must be more than 0".into());
    }
    Ok(ms.ms())
}

/// The default checkpoint interval: a day of event time in replay.
pub const DEFAULT_REPLAY_EVERY: u64 = riskwatch_model::time::MS_PER_DAY;

/// The default checkpoint interval live: 5 s of wall time.
pub const DEFAULT_LIVE_EVERY: Duration = Duration::from_secs(5);
