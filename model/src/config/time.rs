//! Event-time handling (`[time]`) and the time-driven delinquency wake-ups
//! (`[delinquency]`).

use crate::time::{Millis, MS_PER_DAY};
use serde::{Deserialize, Serialize};

/// Delinquency evaluation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DelinquencyConfig {
    /// Days past due at which a customer is re-evaluated even without an event, besides
    /// the bucket boundaries 1, 31, 61 and 91 (which always are): lets rules such as
    /// `dpd >= 4` (a grace period) fire exactly when DPD reaches the threshold.
    pub wake_at_dpd: Vec<u32>,
}

/// Event-time handling (DESIGN.md, Time).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimeConfig {
    /// Timely timestamps are event time rounded up to this tick. Must divide 1 day.
    pub tick: Millis,
    /// A record more than this ahead of the frontier (replay) or wall clock (live) is
    /// rejected with `future_ts`.
    pub max_future_skew: Millis,
    /// Live: a partition's watermark is its largest event time minus this.
    pub allowed_lateness: Millis,
    /// Live: a partition with no record for this long stops holding the frontier back.
    pub idle_timeout: Millis,
    /// Live: when every partition is idle, the frontier follows the wall clock.
    pub wall_clock_advance: bool,
    /// How long an `event_id` is remembered for duplicate detection; defaults to the
    /// longest window.
    pub dedupe_horizon: Option<Millis>,
}

impl Default for TimeConfig {
    fn default() -> Self {
        TimeConfig {
            tick: Millis(10),
            max_future_skew: Millis(MS_PER_DAY),
            allowed_lateness: Millis(5_000),
            idle_timeout: Millis(30_000),
            wall_clock_advance: true,
            dedupe_horizon: None,
        }
    }
}
