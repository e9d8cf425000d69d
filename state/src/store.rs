//! [`StateStore`]: the operations the runtime needs, as a trait the runtime can be written
//! against without naming RocksDB.
//!
//! The trait is object-safe: `Box<dyn StateStore>` and `&mut dyn StateStore` work, so a
//! runtime (or a test of it) can hold any store without being generic. The price is one
//! boxed iterator per [`scan`](StateStore::scan), which is called at recovery, not per
//! record.

use crate::checkpoint::{Checkpoint, CommitStats};
use crate::error::StateError;
use crate::meta::CheckpointMeta;
use crate::state_dir::StateDir;
use crate::table::Table;

/// One entry of a scan: key and value.
pub type ScanItem = Result<(Box<[u8]>, Box<[u8]>), StateError>;

/// A durable, atomic, versioned store of opaque operator state. [`StateDir`] is the
/// implementation; see its methods for the exact contracts.
pub trait StateStore {
    /// Writes `batch` and `meta` atomically and durably as the next checkpoint; see
    /// [`StateDir::commit`].
    fn commit(
        &self,
        batch: Checkpoint,
        meta: CheckpointMeta,
    ) -> Result<(CheckpointMeta, CommitStats), StateError>;

    /// Writes `batch` atomically and durably without a checkpoint; see [`StateDir::write`].
    fn write(&self, batch: Checkpoint) -> Result<(), StateError>;

    /// The value of `key` in `table`.
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StateError>;

    /// Every entry of `table` whose key starts with `prefix`, in key order.
    fn scan<'a>(&'a self, table: Table, prefix: &[u8]) -> Box<dyn Iterator<Item = ScanItem> + 'a>;

    /// The last complete checkpoint, if any.
    fn last(&self) -> Option<CheckpointMeta>;
}

impl StateStore for StateDir {
    fn commit(
        &self,
        batch: Checkpoint,
        meta: CheckpointMeta,
    ) -> Result<(CheckpointMeta, CommitStats), StateError> {
        StateDir::commit(self, batch, meta)
    }

    fn write(&self, batch: Checkpoint) -> Result<(), StateError> {
        StateDir::write(self, batch)
    }

    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        StateDir::get(self, table, key)
    }

    fn scan<'a>(&'a self, table: Table, prefix: &[u8]) -> Box<dyn Iterator<Item = ScanItem> + 'a> {
        Box::new(StateDir::scan(self, table, prefix))
    }

    fn last(&self) -> Option<CheckpointMeta> {
        StateDir::last(self)
    }
}
