//! The CLI's commands, one file each; `main.rs` parses and dispatches.

pub mod bench;
pub mod check_config;
pub mod compare;
pub mod consume;
pub mod demo;
pub mod evaluate;
pub mod gen;
pub mod metrics_catalogue;
pub mod produce;
pub mod receive;
pub mod redeliver;
pub mod replay;
pub mod run;
pub mod state;

use clap::Subcommand;
use riskwatch::exit::Usage;
use riskwatch::pipeline::ClusterSpec;
use std::path::PathBuf;

/// Every command.
#[derive(Subcommand)]
pub enum Command {
    /// Generate a deterministic synthetic loan book (four input files and truth.ndjson).
    Gen(gen::Args),
    /// Run the pipeline over input files and write the outputs.
    Replay(replay::Args),
    /// Generate a book, replay it, and print throughput and detection quality.
    Demo(demo::Args),
    /// Measure replay throughput and open-loop latency.
    Bench(bench::Args),
    /// Backtest two configs on the same recorded inputs and print them side by side.
    Compare(compare::Args),
    /// Judge book snapshots against outcomes: AUC, KS, Gini, deciles, lead time, PSI.
    Evaluate(evaluate::Args),
    /// Run the live pipeline: files or Kafka, as `[run] mode` in the config selects.
    Run(run::Args),
    /// Load a book (four NDJSON files) into the input topics in event-time order.
    Produce(produce::Args),
    /// Copy a topic into an NDJSON file, until it is idle and at its end offsets.
    Consume(consume::Args),
    /// Load and compile a config; print the error with its key, or the feature list.
    /// --connect also checks brokers, topics, the partition assignment and webhooks.
    CheckConfig(check_config::Args),
    /// Look into a state directory: its last checkpoint, size and records.
    State(state::Args),
    /// Print every Prometheus metric: name, type, labels and meaning (docs/metrics.md).
    MetricsCatalogue(metrics_catalogue::Args),
    /// Receive webhooks: verify, de-duplicate, order cases, append to NDJSON (docs/webhooks.md).
    Receive(receive::Args),
    /// Move webhook dead letters back into a state directory's outbox (or list them).
    Redeliver(redeliver::Args),
}

impl Command {
    /// Runs the command; returns the exit code (an error is mapped by `main`).
    pub fn run(self) -> anyhow::Result<i32> {
        match self {
            Command::Gen(a) => gen::run(a),
            Command::Replay(a) => replay::run(a),
            Command::Demo(a) => demo::run(a),
            Command::Bench(a) => bench::run(a),
            Command::Compare(a) => compare::run(a),
            Command::Evaluate(a) => evaluate::run(a),
            Command::Run(a) => run::run(a),
            Command::Produce(a) => produce::run(a),
            Command::Consume(a) => consume::run(a),
            Command::CheckConfig(a) => check_config::run(a),
            Command::MetricsCatalogue(a) => metrics_catalogue::run(a),
            Command::Receive(a) => receive::run(a),
            Command::Redeliver(a) => redeliver::run(a),
            Command::State(a) => state::run(a),
        }
    }
}

/// `--workers`: a whole number of at least 1.
pub fn workers(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// The state-directory flags shared by `replay` and `run`.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct StateArgs {
    /// Checkpoint into this state directory, and resume from its last checkpoint. It must
    /// exist unless --init-state is given.
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// Create the state directory if it is missing or empty.
    #[arg(long, conflicts_with = "fresh_state")]
    pub init_state: bool,
    /// Wipe the riskwatch state in the state directory and start empty.
    #[arg(long)]
    pub fresh_state: bool,
    /// The checkpoint interval (event time in replay, wall time live), e.g. `1d`, `30s`.
    #[arg(long, value_parser = riskwatch::state::parse_every)]
    pub checkpoint_every: Option<u64>,
}

impl StateArgs {
    /// The state options, with `default_every` when no interval is given; `configured` is
    /// the config's `run.state_dir`, used when --state is not given (empty: none).
    pub fn options(
        &self,
        default_every: u64,
        configured: &str,
    ) -> Option<riskwatch::state::StateOptions> {
        let dir = self
            .state
            .clone()
            .or_else(|| (!configured.is_empty()).then(|| PathBuf::from(configured)))?;
        let mode = if self.fresh_state {
            riskwatch_state::OpenMode::Fresh
        } else if self.init_state {
            riskwatch_state::OpenMode::CreateIfMissing
        } else {
            riskwatch_state::OpenMode::Existing
        };
        Some(riskwatch::state::StateOptions {
            dir,
            mode,
            every: self.checkpoint_every.unwrap_or(default_every),
        })
    }
}

/// The cluster flags shared by `replay` and `run`.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct ClusterArgs {
    /// Cluster mode: this process's index into --hosts.
    #[arg(long, requires = "hosts")]
    pub process: Option<usize>,
    /// Cluster mode: host:port of every process, comma separated, in process order.
    #[arg(long, value_delimiter = ',', requires = "process")]
    pub hosts: Vec<String>,
}

impl ClusterArgs {
    /// This process's place in the cluster, or `None` for a single process.
    pub fn spec(self) -> anyhow::Result<Option<ClusterSpec>> {
        match self.process {
            Some(process) if process < self.hosts.len() => Ok(Some(ClusterSpec {
                process,
                hosts: self.hosts,
            })),
            Some(process) => Err(Usage(format!(
                "--process {process} is not an index into --hosts ({} hosts)",
                self.hosts.len()
            ))
            .into()),
            None => Ok(None),
        }
    }
}

/// The metrics flags shared by `replay` and `run`.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct MetricsArgs {
    /// Serve Prometheus metrics on `/metrics`, with `/health` and `/ready`, at this
    /// address (e.g. `127.0.0.1:9187`, `0.0.0.0:9187`); no server when absent.
    #[arg(long)]
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// With --metrics-addr: keep serving this many seconds after the run ends (a signal
    /// ends it sooner), so that a bounded run can still be scraped.
    #[arg(long, requires = "metrics_addr", default_value_t = 0)]
    pub metrics_linger: u64,
}

impl MetricsArgs {
    /// Registers the metrics and starts the server, when --metrics-addr was given.
    pub fn start(
        &self,
        compiled: &riskwatch_dataflows::plan::Compiled,
    ) -> anyhow::Result<Option<riskwatch::metrics::Metrics>> {
        let Some(addr) = self.metrics_addr else {
            return Ok(None);
        };
        let metrics = riskwatch::metrics::Metrics::new(compiled)?;
        riskwatch::metrics::serve(addr, metrics.clone())?;
        Ok(Some(metrics))
    }

    /// Keeps the process (and its metrics server) up for --metrics-linger seconds, or
    /// until `stop` is set.
    pub fn linger(&self, stop: &std::sync::atomic::AtomicBool) {
        if self.metrics_addr.is_none() || self.metrics_linger == 0 {
            return;
        }
        tracing::info!(
            seconds = self.metrics_linger,
            "run ended: still serving metrics"
        );
        let end = std::time::Instant::now() + std::time::Duration::from_secs(self.metrics_linger);
        while std::time::Instant::now() < end && !stop.load(std::sync::atomic::Ordering::SeqCst) {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}
