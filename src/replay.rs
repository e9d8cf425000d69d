//! `riskwatch replay`: the pipeline over the four input files, outputs to a directory.

use crate::pipeline::{run_fed, RunOptions, RunOutput};
use anyhow::Context;
use riskwatch_connectors::file::{find_inputs, write_json_atomic, MergeOptions, OutputSet};
use riskwatch_dataflows::plan::{compile, Compiled};
use riskwatch_model::config::Config;
use riskwatch_model::event::Stream;
use riskwatch_model::time::ceil_to;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Loads a config file (or the built-in defaults) with `RISKWATCH__…` overrides and
/// compiles it; errors name the key.
pub fn load_config(path: Option<&Path>) -> anyhow::Result<(Config, Compiled)> {
    let text = match path {
        Some(p) => std::fs::read_to_string(p).map_err(|e| crate::exit::ConfigFile {
            path: p.display().to_string(),
            source: e,
        })?,
        None => riskwatch_model::config::DEFAULT_CONFIG.to_string(),
    };
    let base = path.and_then(|p| p.parent()).map(Path::to_path_buf);
    let config = Config::from_toml_with_env(&text, std::env::vars())?;
    let compiled = compile(&config, |file| {
        let p = match &base {
            Some(b) => b.join(file),
            None => file.into(),
        };
        std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))
    })?;
    Ok((config, compiled))
}

/// Loads a config for a live strategy change: resolves imported scorecards into the
/// config, compiles it, and checks that windows and features are unchanged (they cannot
/// change while running). Returns the JSON carried through the dataflow.
pub fn load_strategy_change(path: &Path, current: &Compiled) -> anyhow::Result<String> {
    let (config, _) = read_strategy_change(path, current)?;
    Ok(serde_json::to_string(&config)?)
}

/// [`load_strategy_change`] before serializing: the config, imports resolved, and its
/// compiled form.
pub fn read_strategy_change(path: &Path, current: &Compiled) -> anyhow::Result<(Config, Compiled)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config {}", path.display()))?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut config = Config::from_toml_with_env(&text, std::env::vars())?;
    for (i, s) in config.strategies.iter_mut().enumerate() {
        if let Some(file) = s.scorecard.import_toad.take() {
            let p = base.join(&file);
            let text =
                std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
            let features = riskwatch_dataflows::strategy::import_toad(&text).map_err(|e| {
                anyhow::anyhow!("config key \"strategy[{i}].scorecard.import_toad\": {e}")
            })?;
            s.scorecard.features.extend(features);
        }
    }
    let compiled = compile(&config, |f| {
        Err(format!("\"{f}\" should have been resolved"))
    })?;
    if !compiled.layout.same_shape(&current.layout) {
        anyhow::bail!("config key \"window\": windows and features cannot change while running (restart to change them)");
    }
    Ok((config, compiled))
}

/// How long a replay waits at its end for the outbox to drain.
/// Events (over all workers) the reader deals between cuts.
const READ_CHUNK: usize = 65_536;

const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);

/// Options of a replay.
#[derive(Clone, Debug)]
pub struct ReplayArgs {
    /// Worker threads (also decode threads).
    pub workers: usize,
    /// Stop at this event time instead of the last input event.
    pub until: Option<u64>,
    /// Show progress on stderr.
    pub progress: bool,
    /// Run as one process of a timely cluster; only process 0 writes outputs.
    pub cluster: Option<crate::pipeline::ClusterSpec>,
    /// Live strategy changes: `(event time, JSON from [`load_strategy_change`])`.
    pub config_changes: Vec<(u64, String)>,
    /// The streams to read, when some are left out on purpose; all four when `None`.
    pub streams: Option<Vec<Stream>>,
    /// Set by a signal: stop early, keeping every complete output.
    pub stop: Option<Arc<AtomicBool>>,
    /// Checkpoint into (and resume from) a state directory.
    pub state: Option<crate::state::StateOptions>,
    /// Keep a copy of every output in the returned [`RunOutput`] (they are written to the
    /// files either way; without it memory holds only the outputs still in flight).
    pub keep: bool,
    /// The Prometheus metrics to feed as the run goes (`run --metrics-addr` in files mode):
    /// outputs as they are written, checkpoints and webhook deliveries.
    pub metrics: Option<crate::metrics::Metrics>,
    /// Book snapshots to write (`--snapshot-at`, `--snapshot-out`).
    pub snapshots: Option<SnapshotSpec>,
}

/// Book snapshots of a replay: every customer's state under every strategy at each
/// observation time, written to `dir` as snapshots.ndjson and snapshots.parquet.
#[derive(Clone, Debug)]
pub struct SnapshotSpec {
    /// Observation times (epoch ms), in any order; one outside the book is an error.
    pub at: Vec<u64>,
    /// Periodic observation times `(first, period)` (`[snapshot] every` of `run`): those
    /// inside the book, none an error.
    pub every: Option<(u64, u64)>,
    /// The directory of the two files.
    pub dir: std::path::PathBuf,
}

impl ReplayArgs {
    /// A replay on `workers` threads to the last input event, all four streams, no
    /// progress, no stop flag.
    pub fn new(workers: usize) -> ReplayArgs {
        ReplayArgs {
            workers,
            until: None,
            progress: false,
            cluster: None,
            config_changes: Vec::new(),
            streams: None,
            stop: None,
            state: None,
            keep: true,
            metrics: None,
            snapshots: None,
        }
    }
}

/// The output files of a replay, in the order [`OutputSet`] opens them.
pub const OUTPUT_FILES: [&str; 4] = [
    "alerts.ndjson",
    "decisions.ndjson",
    "cases.ndjson",
    "rejected.ndjson",
];

/// The summary written to summary.json.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    /// Whether the replay ran to its end; false when a signal stopped it early.
    pub complete: bool,
    /// When stopped early: every output at an event time up to this one (ms) was
    /// written, and nothing later.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<u64>,
    /// The streams read.
    pub streams: Vec<String>,
    /// Records read per stream.
    pub read: BTreeMap<String, u64>,
    /// Events accepted (after duplicates) per stream.
    pub events: BTreeMap<String, u64>,
    /// Duplicates dropped per stream.
    pub duplicates: BTreeMap<String, u64>,
    /// Rejected records by reason.
    pub rejected: BTreeMap<String, u64>,
    /// Late events.
    pub late: u64,
    /// Window contributions expired on arrival.
    pub expired_on_arrival: u64,
    /// Customer evaluations (a customer whose state changed at a tick, per tick).
    pub evaluations: u64,
    /// Alerts by strategy, then rule.
    pub alerts_by_rule: BTreeMap<String, BTreeMap<String, u64>>,
    /// Decisions by strategy, then kind.
    pub decisions_by_kind: BTreeMap<String, BTreeMap<String, u64>>,
    /// Case events by strategy, then stage and event (`M1 opened`).
    pub cases_by_stage: BTreeMap<String, BTreeMap<String, u64>>,
    /// Alerts by strategy, then severity.
    pub alerts_by_severity: BTreeMap<String, BTreeMap<String, u64>>,
    /// Customers at each level 0–4 at the end, per strategy.
    pub levels: BTreeMap<String, [u64; 5]>,
    /// The end of the replay (ms, tick-aligned).
    pub end_ts: u64,
    /// Worker threads.
    pub workers: usize,
    /// Wall-clock figures (vary between runs).
    pub timing: Timing,
    /// With a state directory: the checkpoints this run took.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoints: Option<CheckpointSummary>,
    /// With `--snapshot-at`: the observation times and records written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshots: Option<crate::snapshot_writer::SnapshotsWritten>,
}

/// What the checkpoints of a run cost, and the state they left.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CheckpointSummary {
    /// The frontier the run resumed from, if it resumed.
    pub resumed_from: Option<u64>,
    /// Seconds to open the state directory and load this process's records.
    pub load_s: f64,
    /// Seconds the slowest worker took to decode and restore its records.
    pub restore_s: f64,
    /// Checkpoints committed.
    pub count: u64,
    /// Bytes written by them.
    pub bytes: u64,
    /// Keys written by them.
    pub keys: u64,
    /// Seconds spent committing, in all.
    pub commit_s: f64,
    /// The longest commit, seconds.
    pub max_commit_s: f64,
    /// The state directory's size on disk at the end.
    pub state_bytes: u64,
}

/// Wall-clock figures of a replay.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Timing {
    /// Reading, decoding and merging the files.
    pub read_s: f64,
    /// The dataflow.
    pub dataflow_s: f64,
    /// Everything.
    pub total_s: f64,
    /// Input records per second over `total_s`.
    pub events_per_s: f64,
}

/// Runs a replay from `input` into `output`; returns the run and its summary.
pub fn replay(
    compiled: &Compiled,
    config: &Config,
    input: &Path,
    output: &Path,
    args: &ReplayArgs,
) -> anyhow::Result<(RunOutput, Summary)> {
    let start = Instant::now();
    let inputs = find_inputs(input, args.streams.as_deref())?;
    for path in &inputs.ignored {
        tracing::info!(path = %path.display(), "not read: --streams leaves it out");
    }
    // Process 0 gathers and writes every output; opening them now fails fast on an
    // unwritable directory, and removes the previous run's outputs.
    let writes = args.cluster.as_ref().is_none_or(|c| c.process == 0);
    let mut outputs = if writes {
        Some(OutputSet::create(output, &OUTPUT_FILES, &["summary.json"])?)
    } else {
        None
    };
    let tick = compiled.tick;
    let merger = inputs.open(MergeOptions {
        tick,
        max_future_skew: config.time.max_future_skew.ms(),
        until: args.until,
        threads: args.workers,
    })?;
    let stop = args.stop.clone().unwrap_or_default();
    // With a state directory: resume after its last checkpoint (events before its frontier
    // are in the state), and checkpoint as the replay goes.
    let (process, processes) = match &args.cluster {
        Some(c) => (c.process, c.hosts.len().max(1)),
        None => (0, 1),
    };
    let mut resumed_from: Option<u64> = None;
    let mut committer = None;
    let mut checkpointing = None;
    let mut load_s = 0.0;
    let mut deliveries = None;
    let mut reported = 0u64;
    let found = Arc::new(std::sync::atomic::AtomicU64::new(0));
    if !config.webhooks.is_empty() && args.state.is_none() {
        return Err(crate::exit::Usage(
            "[[webhook]] needs a state directory (--state): deliveries go through its outbox"
                .into(),
        )
        .into());
    }
    if let Some(state_opts) = &args.state {
        let load_start = Instant::now();
        let expected = crate::state::fingerprint(compiled, args.workers, processes);
        let dir = Arc::new(crate::state::open(state_opts, &expected)?);
        let mut restore = None;
        if let Some(last) = dir.last() {
            let stored = crate::state::load(&dir, process * args.workers, args.workers)?;
            reported = crate::state::replay_source(&dir)?.map_or(0, |s| s.rejected_reported);
            resumed_from = Some(last.frontier);
            restore = Some((
                last.frontier,
                std::sync::Mutex::new(stored.into_iter().map(Some).collect()),
            ));
            tracing::info!(
                dir = %state_opts.dir.display(),
                frontier = last.frontier,
                seq = last.seq,
                "resuming from the last checkpoint"
            );
        }
        load_s = load_start.elapsed().as_secs_f64();
        let mut extras: Box<dyn crate::state::CheckpointExtras> =
            Box::new(crate::state::ReplayExtras {
                reported,
                found: found.clone(),
            });
        // Webhooks: only process 0 gathers the outputs, so only it delivers.
        if process == 0 {
            deliveries =
                crate::deliveries::Deliveries::start(&dir, &config.webhooks, args.metrics.clone())?;
            if let Some(d) = &deliveries {
                extras = d.extras(extras);
            }
        }
        let c = crate::state::Committer::start(
            dir,
            args.workers,
            crate::state::config_version(compiled),
            extras,
            args.metrics.clone(),
        );
        checkpointing = Some(Arc::new(crate::pipeline::Checkpointing {
            at_end: true,
            sink: c.clone(),
            restore,
        }));
        committer = Some(c);
    }
    let every = args.state.as_ref().map(|s| s.every);
    // Snapshot cuts: each observation time rounded up to a tick, plus one (the worker is
    // quiescent there with every event at or before the time applied).
    let mut snapshot_cuts: Vec<u64> = args
        .snapshots
        .iter()
        .flat_map(|s| s.at.iter().map(|t| ceil_to(*t, tick) + 1))
        .collect();
    snapshot_cuts.sort_unstable();
    snapshot_cuts.dedup();
    let snapshot_writer = match &args.snapshots {
        Some(_) if args.cluster.is_some() => {
            return Err(crate::exit::Usage(
                "--snapshot-at works in a single-process replay: a cluster's customers are \
                 spread over its processes"
                    .into(),
            )
            .into())
        }
        Some(spec) => Some(crate::snapshot_writer::SnapshotWriter::start(
            &spec.dir,
            &compiled.layout.names,
            args.workers,
        )?),
        None => None,
    };
    let progress = args.progress.then(|| {
        let total: u64 = inputs
            .paths
            .iter()
            .flatten()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum();
        crate::progress::Progress::start(total)
    });
    let mut feed = crate::feed::FileFeed::start(
        merger,
        found,
        Stream::ALL.map(|s| inputs.path(s)),
        crate::feed::ReadOptions {
            chunk: READ_CHUNK,
            depth: 2,
            every,
            from: resumed_from.unwrap_or(0),
            until: args.until,
            tick,
            workers: (
                process * args.workers,
                args.workers,
                args.workers * processes,
            ),
            reported,
            bytes_read: progress.as_ref().map(|p| p.bytes_read()),
            snapshots: snapshot_cuts,
            periodic: args
                .snapshots
                .as_ref()
                .and_then(|s| s.every)
                .map(|(first, period)| (ceil_to(first, tick) + 1, period)),
        },
    )?;
    let dataflow_start = Instant::now();
    let mut opts = RunOptions::new(args.workers, u64::MAX);
    opts.progress = progress.clone();
    opts.cluster = args.cluster.clone();
    // In a cluster the stop time would have to be agreed between processes: a signalled
    // cluster process stops without outputs instead (see `run` in docs/ARCHITECTURE.md).
    if args.cluster.is_none() {
        opts.stop = Some(stop.clone());
    }
    opts.config_changes = args
        .config_changes
        .iter()
        .map(|(t, json)| (ceil_to(*t, tick), json.clone()))
        .collect();
    opts.config_changes.sort_by_key(|(t, _)| *t);
    if let Some(from) = resumed_from {
        opts.config_changes.retain(|(t, _)| *t >= from);
    }
    opts.checkpoint = checkpointing;
    let snapshot_writer = snapshot_writer.map(|(w, tx)| {
        opts.snapshots = Some(tx);
        w
    });
    // Process 0 gathers and writes every output, as the dataflow produces them.
    let writer = match outputs.take() {
        Some(files) => {
            let (w, tx) = crate::writer::OutputWriter::start(
                files,
                args.workers,
                args.keep,
                args.metrics.clone(),
            )
            .context("starting the output writer")?;
            opts.output = Some(tx);
            Some(w)
        }
        None => None,
    };
    let mut out = run_fed(compiled, feed.take_receivers(), opts);
    let read = feed.finish();
    if let Some(p) = &progress {
        p.finish();
    }
    let mut checkpoints = None;
    if let Some(c) = committer {
        let figures = c.figures();
        let dir = c.finish()?;
        let f = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        checkpoints = Some(CheckpointSummary {
            resumed_from,
            load_s,
            restore_s: out.restore_s,
            count: f(&figures.checkpoints),
            bytes: f(&figures.bytes),
            keys: f(&figures.keys),
            commit_s: f(&figures.micros) as f64 / 1e6,
            max_commit_s: f(&figures.max_micros) as f64 / 1e6,
            state_bytes: dir.size_on_disk(),
        });
    }
    let written = writer
        .map(crate::writer::OutputWriter::finish)
        .transpose()?;
    // Joined now: an error below drops them, which removes their partial files.
    let snapshots_done = snapshot_writer
        .map(crate::snapshot_writer::SnapshotWriter::join)
        .transpose()?;
    if let Some(e) = read.error {
        return Err(e.into());
    }
    if !read.snapshots_outside.is_empty() {
        let times: Vec<String> = read
            .snapshots_outside
            .iter()
            .map(|c| (c - 1).to_string())
            .collect();
        return Err(crate::exit::Usage(format!(
            "--snapshot-at {}: outside the book, which runs from its first event to {} \
             (epoch ms{})",
            times.join(","),
            read.end.map_or("its end".to_string(), |e| e.to_string()),
            resumed_from.map_or(String::new(), |f| format!(
                "; this run resumes its state directory at {f}"
            ))
        ))
        .into());
    }
    let snapshots = snapshots_done
        .map(crate::snapshot_writer::SnapshotsDone::commit)
        .transpose()?;
    if let Some(e) = &out.failure {
        anyhow::bail!("{e}");
    }
    if let Some(d) = deliveries {
        let left = d.drain(&stop, DRAIN_TIMEOUT)?;
        if left > 0 {
            tracing::warn!(
                left,
                "webhook deliveries still pending; the next run with this state sends them"
            );
        }
    }
    let dataflow_s = dataflow_start.elapsed().as_secs_f64();
    let read_s = read.read_s;
    let stats = read.stats;
    let rejected = read.rejected;
    let end = out.end;
    let stopped_at = out.stopped_at;
    let Some(written) = written else {
        // Process 0 gathers the alerts and writes every output.
        return Ok((out, Summary::default()));
    };
    let mut files = written.files;
    for r in &rejected {
        files.file(3).write_line(r)?;
    }
    files.commit()?;
    if let Some((alerts, decisions, cases)) = written.kept {
        out.alerts = alerts;
        out.decisions = decisions;
        out.cases = cases;
    }
    out.counts = written.counts;
    let total_read: u64 = stats.read.iter().sum();
    if args.progress {
        eprintln!(
            "read {} records ({:.1} MB) in {:.2}s; {} rejected; {} workers to ts {}",
            total_read,
            read.bytes as f64 / 1e6,
            read_s,
            rejected.len(),
            args.workers,
            end
        );
    }

    let names = Stream::ALL;
    for reason in &out.stats.config_rejected {
        eprintln!("strategy change rejected: {reason}");
    }
    let mut summary = Summary {
        complete: stopped_at.is_none(),
        stopped_at,
        streams: Stream::ALL
            .into_iter()
            .filter(|s| inputs.paths[*s as usize].is_some())
            .map(|s| s.name().to_string())
            .collect(),
        late: stats.late,
        expired_on_arrival: out.stats.expired_on_arrival,
        evaluations: out.stats.evaluations,
        levels: out.stats.levels.clone(),
        end_ts: end,
        workers: args.workers,
        rejected: stats.rejected_by_reason.clone(),
        checkpoints,
        snapshots,
        ..Summary::default()
    };
    for s in names {
        summary.read.insert(s.name().into(), stats.read[s as usize]);
        summary
            .events
            .insert(s.name().into(), out.stats.events[s as usize]);
        summary
            .duplicates
            .insert(s.name().into(), out.stats.duplicates[s as usize]);
    }
    out.counts.add_to(&mut summary);

    let total_s = start.elapsed().as_secs_f64();
    summary.timing = Timing {
        read_s,
        dataflow_s,
        total_s,
        events_per_s: total_read as f64 / total_s.max(1e-9),
    };
    write_json_atomic(&output.join("summary.json"), &summary)?;
    Ok((out, summary))
}
