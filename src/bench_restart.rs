//! `riskwatch bench --restart`: what checkpoints cost a replay, how big the state is, and
//! how long a restart takes to be back at work.
//!
//! On a generated book: a replay to 90% of its span without a state directory, the same
//! with checkpoints (the difference is the checkpoints' cost), then a restart from that
//! state to the end. The restart's figures: opening the state directory and loading this
//! process's records (`load`), decoding them into the operators (`restore`), and, because
//! files mode re-reads its inputs and skips what the checkpoint holds, the re-read.

use crate::replay::{load_config, replay, CheckpointSummary, ReplayArgs};
use crate::state::StateOptions;
use serde::Serialize;
use std::path::PathBuf;

/// Options of the restart bench.
#[derive(Clone, Debug)]
pub struct RestartBenchArgs {
    /// Customers in the book.
    pub customers: u64,
    /// Days in the book.
    pub days: u64,
    /// Runs (medians reported).
    pub runs: usize,
    /// Worker threads.
    pub workers: usize,
    /// Working directory (book cache, state directories).
    pub dir: PathBuf,
    /// Checkpoint interval of event time, ms.
    pub every: u64,
}

/// The restart bench's figures (medians over the runs).
#[derive(Clone, Debug, Default, Serialize)]
pub struct RestartReport {
    /// The machine.
    pub machine: String,
    /// Customers in the book.
    pub customers: u64,
    /// Days in the book.
    pub days: u64,
    /// Records in the book.
    pub records: u64,
    /// Checkpoint interval, event-time ms.
    pub every_ms: u64,
    /// Seconds of the replay to 90% without a state directory.
    pub replay_plain_s: f64,
    /// Seconds of the same replay with checkpoints.
    pub replay_checkpointed_s: f64,
    /// Throughput lost to checkpoints, percent.
    pub checkpoint_cost_percent: f64,
    /// The checkpoints of the checkpointed replay.
    pub checkpoints: CheckpointSummary,
    /// State bytes on disk per customer.
    pub state_bytes_per_customer: f64,
    /// Restart: opening the directory and loading the records, seconds.
    pub restart_load_s: f64,
    /// Restart: decoding them into the operators, seconds (slowest worker).
    pub restart_restore_s: f64,
    /// Restart: re-reading the input files, seconds (files mode only; Kafka seeks).
    pub restart_reread_s: f64,
    /// Restart: from the start of the run to the dataflow running again (load + restore +
    /// re-read), seconds: the time to the first new output, but for the first tick's work.
    pub restart_to_running_s: f64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// Runs the restart bench.
pub fn bench_restart(args: &RestartBenchArgs) -> anyhow::Result<RestartReport> {
    let (config, compiled) = load_config(None)?;
    let book = crate::bench::bench_book(&args.dir, args.customers, args.days)?;
    // 90% of the book's span (generated books start on 2026-01-01).
    let start = 1_767_225_600_000u64;
    let until = start + args.days * riskwatch_model::time::MS_PER_DAY * 9 / 10;
    let out = args.dir.join("restart-out");
    let state = args.dir.join("restart-state");
    let mut report = RestartReport {
        machine: crate::bench::machine(),
        customers: args.customers,
        days: args.days,
        every_ms: args.every,
        ..RestartReport::default()
    };
    let (mut plain, mut ckpt, mut load, mut restore, mut reread, mut running) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for run in 0..args.runs.max(1) {
        let mut a = ReplayArgs::new(args.workers);
        a.until = Some(until);
        let (_, s) = replay(&compiled, &config, &book, &out, &a)?;
        plain.push(s.timing.total_s);
        report.records = s.read.values().sum();
        a.state = Some(StateOptions {
            dir: state.clone(),
            mode: riskwatch_state::OpenMode::Fresh,
            every: args.every,
        });
        let (_, s) = replay(&compiled, &config, &book, &out, &a)?;
        ckpt.push(s.timing.total_s);
        if let Some(c) = s.checkpoints {
            report.checkpoints = c;
        }
        let mut r = ReplayArgs::new(args.workers);
        r.state = Some(StateOptions {
            dir: state.clone(),
            mode: riskwatch_state::OpenMode::Existing,
            every: args.every,
        });
        let (_, s) = replay(&compiled, &config, &book, &out, &r)?;
        let c = s.checkpoints.unwrap_or_default();
        load.push(c.load_s);
        restore.push(c.restore_s);
        reread.push(s.timing.read_s);
        running.push(s.timing.read_s + c.load_s + c.restore_s);
        eprintln!(
            "  restart run {}/{}: load {:.2}s, restore {:.2}s, re-read {:.2}s",
            run + 1,
            args.runs,
            c.load_s,
            c.restore_s,
            s.timing.read_s
        );
    }
    report.replay_plain_s = median(plain);
    report.replay_checkpointed_s = median(ckpt);
    report.checkpoint_cost_percent = 100.0 * (report.replay_checkpointed_s - report.replay_plain_s)
        / report.replay_plain_s.max(1e-9);
    report.state_bytes_per_customer =
        report.checkpoints.state_bytes as f64 / args.customers.max(1) as f64;
    report.restart_load_s = median(load);
    report.restart_restore_s = median(restore);
    report.restart_reread_s = median(reread);
    report.restart_to_running_s = median(running);
    Ok(report)
}

/// The report as a table.
pub fn table(r: &RestartReport) -> String {
    let c = &r.checkpoints;
    format!(
        "restart bench on {} ({} customers × {} days, {} records, checkpoint every {} s of \
         event time)\n\
         replay to 90%: {:.2}s without state, {:.2}s with checkpoints ({:+.1}%)\n\
         checkpoints: {} committed, {:.1} MB written, {} keys, {:.2}s committing (longest \
         {:.3}s)\n\
         state on disk: {:.1} MB, {:.0} bytes per customer\n\
         restart: load {:.2}s + restore {:.2}s + re-read inputs {:.2}s = running again after \
         {:.2}s\n",
        r.machine,
        r.customers,
        r.days,
        r.records,
        r.every_ms / 1000,
        r.replay_plain_s,
        r.replay_checkpointed_s,
        r.checkpoint_cost_percent,
        c.count,
        c.bytes as f64 / 1e6,
        c.keys,
        c.commit_s,
        c.max_commit_s,
        c.state_bytes as f64 / 1e6,
        r.state_bytes_per_customer,
        r.restart_load_s,
        r.restart_restore_s,
        r.restart_reread_s,
        r.restart_to_running_s,
    )
}
