//! `riskwatch run` (`[run]`): which connectors the live pipeline uses and how it is paced.

use super::ConfigError;
use crate::time::Millis;
use serde::{Deserialize, Serialize};

/// `riskwatch run`: the live pipeline's connectors and pacing (docs/KAFKA.md).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    /// `files` (the embedded default): read the four NDJSON files of `input_dir` and write
    /// the outputs to `output_dir`, like `riskwatch replay`; `kafka`: consume the input
    /// topics of `[kafka]` and produce to its output topics until stopped.
    pub mode: RunMode,
    /// Files mode: directory with `transactions`, `behaviors`, `loans`, `customers.ndjson`.
    pub input_dir: String,
    /// Files mode: directory for `alerts.ndjson`, `rejected.ndjson` and `summary.json`.
    pub output_dir: String,
    /// The state directory `riskwatch run` checkpoints into and resumes from when
    /// `--state` is not given; empty (the default) runs without durable state.
    pub state_dir: String,
    /// Kafka mode: at most this many records a worker takes from its consumer before it
    /// advances its input and steps the dataflow.
    pub poll_batch: usize,
    /// Backpressure: a worker pauses its partitions while its dataflow output lags its
    /// input time by more than this, and resumes at half of it.
    pub max_lag: Millis,
    /// Backpressure: a worker also pauses while more than this many of the events it fed
    /// are not yet through the dataflow, and resumes at half of it.
    pub max_pending_events: u64,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            mode: RunMode::Files,
            input_dir: "data/input".into(),
            output_dir: "data/output".into(),
            state_dir: String::new(),
            poll_batch: 20_000,
            max_lag: Millis(10_000),
            max_pending_events: 500_000,
        }
    }
}

impl RunConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.poll_batch == 0 {
            return Err(ConfigError::new("run.poll_batch", "must be positive"));
        }
        if self.max_lag.ms() == 0 {
            return Err(ConfigError::new("run.max_lag", "must be positive"));
        }
        if self.max_pending_events == 0 {
            return Err(ConfigError::new(
                "run.max_pending_events",
                "must be positive",
            ));
        }
        Ok(())
    }
}

/// Which connectors `riskwatch run` uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunMode {
    /// NDJSON files in, NDJSON files out.
    #[default]
    Files,
    /// Kafka topics in, Kafka topics out.
    Kafka,
}
