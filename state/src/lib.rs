//! riskwatch's RocksDB-backed state: offsets, checkpoints, action state and the webhook
//! outbox.
//!
//! - [`outbox`]: webhook events pending, delivered and dead-lettered.
#![warn(missing_docs)]

mod interim;
pub mod outbox;

pub use interim::{Checkpoint, Fingerprint, OpenMode, StateDir, StateError, Table};
