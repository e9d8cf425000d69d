//! `riskwatch replay`: the pipeline over input files, outputs to a directory.

use super::{ClusterArgs, MetricsArgs, StateArgs};
use anyhow::Context;
use riskwatch::exit::{stopped, Usage};
use riskwatch::live::{shutdown_flag, STOP_SIGNAL};
use riskwatch::replay::{load_config, load_strategy_change, replay, ReplayArgs};
use riskwatch_connectors::file::parse_streams;
use std::path::PathBuf;
use std::sync::atomic::Ordering;

/// Flags of `replay`.
#[derive(clap::Args)]
pub struct Args {
    /// Directory with transactions/behaviors/loans/customers.ndjson.
    #[arg(long)]
    input: PathBuf,
    /// Directory for alerts, decisions, cases, rejected and summary.json.
    #[arg(long)]
    output: PathBuf,
    /// Config file (TOML); built-in defaults when absent.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Worker threads (at least 1).
    #[arg(long, default_value_t = 2, value_parser = super::workers)]
    workers: usize,
    /// End at this event time (epoch ms) instead of the last input event.
    #[arg(long)]
    until: Option<u64>,
    /// Read only these streams (comma separated), leaving the others out on purpose;
    /// without it all four files must be present.
    #[arg(long, value_delimiter = ',')]
    streams: Vec<String>,
    #[command(flatten)]
    cluster: ClusterArgs,
    /// A live strategy change: `TS=FILE` switches to the strategies of FILE at event
    /// time TS (epoch ms), without losing state. Repeatable.
    #[arg(long = "config-change")]
    config_changes: Vec<String>,
    #[command(flatten)]
    metrics: MetricsArgs,
    #[command(flatten)]
    state: StateArgs,
    /// No progress line on stderr.
    #[arg(long)]
    quiet: bool,
    /// Book snapshots at these observation times (comma separated: epoch ms, dates such as
    /// 2026-03-01 for their midnight UTC, or RFC 3339 UTC times): every customer's state
    /// under every strategy, with every event at or before the time applied.
    #[arg(long, value_delimiter = ',', value_parser = parse_instant)]
    snapshot_at: Vec<u64>,
    /// Directory for snapshots.ndjson and snapshots.parquet (default: --output).
    #[arg(long, requires = "snapshot_at")]
    snapshot_out: Option<PathBuf>,
}

fn parse_instant(text: &str) -> Result<u64, String> {
    riskwatch_model::time::parse_instant(text)
}

/// Replays; exits 130/143 when a signal stopped it early (outputs up to `stopped_at`).
pub fn run(a: Args) -> anyhow::Result<i32> {
    let (cfg, compiled) = load_config(a.config.as_deref())?;
    let mut changes = Vec::new();
    for spec in &a.config_changes {
        let (ts, file) = spec
            .split_once('=')
            .ok_or_else(|| Usage(format!("--config-change {spec:?}: expected TS=FILE")))?;
        let ts: u64 = ts
            .parse()
            .map_err(|_| Usage(format!("--config-change {spec:?}: TS is epoch ms")))?;
        changes.push((
            ts,
            load_strategy_change(std::path::Path::new(file), &compiled)
                .with_context(|| format!("--config-change {spec:?}"))?,
        ));
    }
    let streams = if a.streams.is_empty() {
        None
    } else {
        Some(parse_streams(&a.streams).map_err(|e| Usage(format!("--streams: {e}")))?)
    };
    let cluster = a.cluster.spec()?;
    let stop = shutdown_flag(None)?;
    if cluster.is_some() {
        // A cluster cannot agree on a stop time: a signalled process ends at once, with
        // no outputs (the previous run's were removed when the outputs were opened).
        let flag = stop.clone();
        std::thread::spawn(move || loop {
            std::thread::sleep(std::time::Duration::from_millis(100));
            if flag.load(Ordering::SeqCst) {
                tracing::error!("stopped by a signal: a cluster replay writes no outputs");
                std::process::exit(stopped(STOP_SIGNAL.load(Ordering::SeqCst)));
            }
        });
    }
    let mut args = ReplayArgs::new(a.workers);
    args.until = a.until;
    args.progress = !a.quiet;
    args.cluster = cluster;
    args.config_changes = changes;
    args.streams = streams;
    args.stop = Some(stop.clone());
    // The files hold the outputs; memory holds only those still in flight.
    args.keep = false;
    args.state = a.state.options(riskwatch::state::DEFAULT_REPLAY_EVERY, "");
    if !a.snapshot_at.is_empty() {
        args.snapshots = Some(riskwatch::replay::SnapshotSpec {
            at: a.snapshot_at.clone(),
            dir: a.snapshot_out.clone().unwrap_or_else(|| a.output.clone()),
            every: None,
        });
    }
    let metrics = a.metrics.start(&compiled)?;
    if let Some(m) = &metrics {
        m.ready.store(true, Ordering::SeqCst);
    }
    args.metrics = metrics.clone();
    let (out, summary) = replay(&compiled, &cfg, &a.input, &a.output, &args)?;
    if let Some(m) = &metrics {
        m.add_run(&out, &summary);
    }
    let alerts: u64 = summary
        .alerts_by_rule
        .values()
        .flat_map(|m| m.values())
        .sum();
    println!(
        "replayed {} records at {:.0} events/s: {} alerts, {} rejected; outputs in {}",
        summary.read.values().sum::<u64>(),
        summary.timing.events_per_s,
        alerts,
        summary.rejected.values().sum::<u64>(),
        a.output.display()
    );
    a.metrics.linger(&stop);
    match summary.stopped_at {
        Some(ts) => {
            println!("stopped early by a signal: outputs are complete up to ts {ts}");
            Ok(stopped(STOP_SIGNAL.load(Ordering::SeqCst)))
        }
        None => Ok(riskwatch::exit::OK),
    }
}
