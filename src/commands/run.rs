//! `riskwatch run`: the live pipeline, files or Kafka as `[run] mode` selects.

use super::{ClusterArgs, MetricsArgs, StateArgs};
use riskwatch::exit::Usage;
use riskwatch::replay::load_config;
use riskwatch_model::config::RunMode;
use std::path::PathBuf;

/// Flags of `run`.
#[derive(clap::Args)]
pub struct Args {
    /// Config file (TOML); built-in defaults when absent.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Worker threads of this process (at least 1).
    #[arg(long, default_value_t = 2, value_parser = super::workers)]
    workers: usize,
    #[command(flatten)]
    cluster: ClusterArgs,
    /// Bounded run: stop once the frontier passed this event time (epoch ms); later
    /// events and outputs are dropped.
    #[arg(long)]
    until: Option<u64>,
    /// Bounded run (Kafka mode): stop once every partition is consumed to its end offset.
    #[arg(long)]
    until_idle: bool,
    /// With --until-idle: ms without records before end offsets are checked (default
    /// 1000).
    #[arg(long, requires = "until_idle")]
    idle_ms: Option<u64>,
    /// Kafka mode: directory for the offsets file (default: run.state_dir of the config).
    #[arg(long)]
    state_dir: Option<PathBuf>,
    #[command(flatten)]
    metrics: MetricsArgs,
    #[command(flatten)]
    state: StateArgs,
}

/// Runs until the input ends (files), a bound is reached, or a signal; a graceful stop
/// exits 0.
pub fn run(a: Args) -> anyhow::Result<i32> {
    let (cfg, compiled) = load_config(a.config.as_deref())?;
    if cfg.run.mode == RunMode::Files {
        let not_here = [
            (a.until_idle, "--until-idle"),
            (a.idle_ms.is_some(), "--idle-ms"),
            (a.state_dir.is_some(), "--state-dir"),
        ];
        if let Some((_, flag)) = not_here.iter().find(|(given, _)| *given) {
            return Err(Usage(format!(
                "{flag} does not apply in files mode (run.mode = \"files\"): a files run ends \
                 at the end of its input; use --until to stop earlier"
            ))
            .into());
        }
    }
    let cluster = a.cluster.spec()?;
    // Live strategy changes: process 0 reads the file (on change and on SIGHUP) and
    // carries accepted changes through the dataflow to every process.
    let kafka = cfg.run.mode == RunMode::Kafka;
    let first = cluster.as_ref().is_none_or(|c| c.process == 0);
    let reload = match &a.config {
        Some(path) if kafka && first => Some(riskwatch::reload::spawn(
            riskwatch::reload::Reloader::new(path, &cfg, &compiled)?,
        )?),
        Some(_) if kafka => {
            tracing::info!("live strategy changes are read by process 0");
            None
        }
        _ => None,
    };
    let metrics = a.metrics.start(&compiled)?;
    let stop = riskwatch::live::shutdown_flag(reload.clone())?;
    riskwatch::live::run(
        &cfg,
        &compiled,
        &riskwatch::live::LiveArgs {
            workers: a.workers,
            cluster,
            until: a.until,
            until_idle: a.until_idle,
            idle_check: std::time::Duration::from_millis(a.idle_ms.unwrap_or(1000)),
            stop: stop.clone(),
            state_dir: a.state_dir,
            state: a.state.options(riskwatch::state::DEFAULT_REPLAY_EVERY),
            print_summary: true,
            reload: reload.map(|r| r.reloads),
            metrics,
        },
    )?;
    a.metrics.linger(&stop);
    Ok(riskwatch::exit::OK)
}
