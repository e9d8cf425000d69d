//! A stand-in for the store of branch `state-store` (`StateDir`, `Table`, `Checkpoint`,
//! `StateError`), with the same API, so the outbox builds and is tested against real
//! RocksDB before that branch lands. Replaced whole by the real store at the merge.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A column family ("table").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    /// Webhook deliveries not yet acknowledged.
    Outbox,
    /// Webhook deliveries acknowledged by the receiver.
    Delivered,
    /// Webhook deliveries given up on.
    DeadLetters,
}

impl Table {
    /// Every table.
    pub const ALL: [Table; 3] = [Table::Outbox, Table::Delivered, Table::DeadLetters];

    /// The column family name.
    pub fn name(self) -> &'static str {
        match self {
            Table::Outbox => "outbox",
            Table::Delivered => "delivered",
            Table::DeadLetters => "dead_letters",
        }
    }
}

/// The configuration keys a state directory depends on.
pub type Fingerprint = BTreeMap<String, String>;

/// How a state directory is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    /// Open it, creating an empty one when nothing is there.
    CreateIfMissing,
    /// Open an existing one only.
    Existing,
}

/// Why the state directory cannot be opened, read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Nothing exists at the path.
    #[error("state directory \"{}\" does not exist", path.display())]
    Missing {
        /// The state directory.
        path: PathBuf,
    },
    /// A record does not decode.
    #[error("state directory \"{}\" is corrupt: {detail}", path.display())]
    Corrupt {
        /// The state directory.
        path: PathBuf,
        /// The damaged file, when known.
        file: Option<PathBuf>,
        /// What is wrong.
        detail: String,
    },
    /// An I/O or RocksDB failure.
    #[error("state directory \"{}\": {op} failed: {detail}", path.display())]
    Io {
        /// The state directory.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// The underlying error's message.
        detail: String,
    },
}

impl StateError {
    pub(crate) fn corrupt(path: &Path, file: Option<PathBuf>, detail: impl Into<String>) -> Self {
        StateError::Corrupt {
            path: path.to_path_buf(),
            file,
            detail: detail.into(),
        }
    }
}

/// One atomic batch of writes.
#[derive(Default)]
pub struct Checkpoint {
    ops: Vec<(Table, Vec<u8>, Option<Vec<u8>>)>,
}

impl Checkpoint {
    /// An empty batch.
    pub fn new() -> Checkpoint {
        Checkpoint::default()
    }

    /// Sets `key` of `table` to `value`.
    pub fn put(&mut self, table: Table, key: &[u8], value: &[u8]) {
        self.ops.push((table, key.to_vec(), Some(value.to_vec())));
    }

    /// Deletes `key` of `table`.
    pub fn delete(&mut self, table: Table, key: &[u8]) {
        self.ops.push((table, key.to_vec(), None));
    }
}

/// One entry of a scan: key and value.
pub type KeyValue = (Box<[u8]>, Box<[u8]>);

/// An open state directory.
pub struct StateDir {
    path: PathBuf,
    db: rocksdb::DB,
}

impl StateDir {
    /// Opens the state directory at `path`.
    pub fn open(
        path: impl AsRef<Path>,
        mode: OpenMode,
        _fingerprint: &Fingerprint,
    ) -> Result<StateDir, StateError> {
        let path = path.as_ref().to_path_buf();
        if mode == OpenMode::Existing && !path.exists() {
            return Err(StateError::Missing { path });
        }
        let mut opts = rocksdb::Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        let names = Table::ALL.map(Table::name);
        let db = rocksdb::DB::open_cf(&opts, &path, names).map_err(|e| io(&path, "open", e))?;
        Ok(StateDir { path, db })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn cf(&self, table: Table) -> &rocksdb::ColumnFamily {
        self.db
            .cf_handle(table.name())
            .expect("every table's column family is created at open")
    }

    /// Writes `batch` atomically and synced.
    pub fn write(&self, batch: Checkpoint) -> Result<(), StateError> {
        let mut wb = rocksdb::WriteBatch::default();
        for (t, k, v) in batch.ops {
            match v {
                Some(v) => wb.put_cf(self.cf(t), k, v),
                None => wb.delete_cf(self.cf(t), k),
            }
        }
        let mut opts = rocksdb::WriteOptions::default();
        opts.set_sync(true);
        self.db
            .write_opt(wb, &opts)
            .map_err(|e| io(&self.path, "write", e))
    }

    /// The value of `key` in `table`.
    pub fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        self.db
            .get_cf(self.cf(table), key)
            .map_err(|e| io(&self.path, "get", e))
    }

    /// Every entry of `table` whose key starts with `prefix`, in key order.
    pub fn scan<'a>(
        &'a self,
        table: Table,
        prefix: &'a [u8],
    ) -> impl Iterator<Item = Result<KeyValue, StateError>> + 'a {
        self.db
            .iterator_cf(
                self.cf(table),
                rocksdb::IteratorMode::From(prefix, rocksdb::Direction::Forward),
            )
            .take_while(move |r| r.as_ref().map_or(true, |(k, _)| k.starts_with(prefix)))
            .map(move |r| r.map_err(|e| io(&self.path, "scan", e)))
    }
}

fn io(path: &Path, op: &'static str, e: rocksdb::Error) -> StateError {
    StateError::Io {
        path: path.to_path_buf(),
        op,
        detail: e.into_string(),
    }
}
