//! The CLI's commands, one file each; `main.rs` parses and dispatches.

pub mod bench;
pub mod check_config;
pub mod compare;
pub mod consume;
pub mod demo;
pub mod gen;
pub mod produce;
pub mod replay;
pub mod run;

use clap::Subcommand;
use riskwatch::exit::Usage;
use riskwatch::pipeline::ClusterSpec;

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
    /// Run the live pipeline: files or Kafka, as `[run] mode` in the config selects.
    Run(run::Args),
    /// Load a book (four NDJSON files) into the input topics in event-time order.
    Produce(produce::Args),
    /// Copy a topic into an NDJSON file, until it is idle and at its end offsets.
    Consume(consume::Args),
    /// Load and compile a config; print the error with its key, or the feature list.
    CheckConfig(check_config::Args),
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
            Command::Run(a) => run::run(a),
            Command::Produce(a) => produce::run(a),
            Command::Consume(a) => consume::run(a),
            Command::CheckConfig(a) => check_config::run(a),
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
