//! [`StateDir`]: one RocksDB database with a column family per [`Table`] plus `meta`,
//! opened and checked against the running configuration, written in synced atomic batches.
//!
//! ```text
//! open:   inspect the path -> marker, its version -> CURRENT names a MANIFEST that exists
//!         -> RocksDB open, paranoid (SST sizes against the MANIFEST, footers read)
//!         -> read `meta` in full, checksums verified -> decode -> compare the fingerprint
//! commit: WriteBatch { the caller's ops ..., meta["last"] = CheckpointMeta }
//!         -> one write with sync = true (WAL appended and fsynced) -> last() updated
//! ```

use std::path::{Path, PathBuf};
use std::time::Instant;

use rocksdb::{
    ColumnFamily, ColumnFamilyDescriptor, DBCompressionType, DBRecoveryMode, Direction,
    FlushOptions, IteratorMode, Options, ReadOptions, WriteBatch, WriteOptions, DB,
};

use crate::checkpoint::{Checkpoint, CheckpointOp, CommitStats};
use crate::error::{from_rocksdb, StateError, INIT_FLAG};
use crate::layout::{self, Found, MARKER};
use crate::meta::{
    decode_fingerprint, encode_fingerprint, fingerprint_changes, CheckpointMeta, Fingerprint,
    FORMAT_VERSION,
};
use crate::store::ScanItem;
use crate::table::{Table, META_CF};

/// Key of the last checkpoint's [`CheckpointMeta`] in the `meta` column family.
const LAST_KEY: &[u8] = b"last";
/// Key of the directory's [`Fingerprint`] in the `meta` column family.
const FINGERPRINT_KEY: &[u8] = b"fingerprint";

/// How [`StateDir::open`] treats what it finds at the path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    /// The state directory must exist (the normal restart).
    Existing,
    /// Open the state directory, or create an empty one if the path is missing or an empty
    /// directory.
    CreateIfMissing,
    /// Wipe whatever riskwatch state is there and start empty. A path that holds anything
    /// other than a riskwatch state directory is refused, never wiped.
    Fresh,
}

/// An open state directory. Exclusive: RocksDB locks the directory, so a second open (in
/// this or another process) fails with [`StateError::Io`] until this one is dropped.
pub struct StateDir {
    db: DB,
    path: PathBuf,
    /// The last complete checkpoint; behind a lock so that a shared (`Arc`) directory can
    /// commit while the outbox reads and writes beside it.
    last: std::sync::Mutex<Option<CheckpointMeta>>,
    fingerprint: Fingerprint,
}

impl std::fmt::Debug for StateDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateDir")
            .field("path", &self.path)
            .field("last", &self.last())
            .finish_non_exhaustive()
    }
}

impl StateDir {
    /// Opens (or, per `mode`, creates or wipes) the state directory at `path` and checks it
    /// against `expected`, the running configuration's fingerprint.
    ///
    /// Errors: [`StateError::Missing`], [`StateError::NotStateDir`], [`StateError::Corrupt`],
    /// [`StateError::Version`], [`StateError::ConfigChanged`], [`StateError::Io`]; see the
    /// crate documentation for which case gives which. Cost: RocksDB's recovery (replaying
    /// the WAL written since the last flush) plus a read of the `meta` column family.
    pub fn open(
        path: &Path,
        mode: OpenMode,
        expected: &Fingerprint,
    ) -> Result<StateDir, StateError> {
        let not_state_dir = |detail: String| StateError::NotStateDir {
            path: path.to_path_buf(),
            detail,
        };
        match layout::inspect(path)? {
            Found::Missing if mode == OpenMode::Existing => Err(StateError::Missing {
                path: path.to_path_buf(),
            }),
            Found::Empty if mode == OpenMode::Existing => Err(not_state_dir(format!(
                "it is an empty directory; pass {INIT_FLAG} to create a new empty state in it, \
                 or point at the right directory"
            ))),
            Found::Missing | Found::Empty => StateDir::create(path, expected),
            Found::Foreign(detail) => Err(not_state_dir(detail)),
            Found::State(_) if mode == OpenMode::Fresh => {
                StateDir::wipe(path)?;
                StateDir::create(path, expected)
            }
            Found::State(Err(detail)) => {
                Err(StateError::corrupt(path, Some(path.join(MARKER)), detail))
            }
            Found::State(Ok(found)) if found != FORMAT_VERSION => Err(StateError::Version {
                path: path.to_path_buf(),
                found,
                expected: FORMAT_VERSION,
            }),
            Found::State(Ok(_)) => StateDir::open_existing(path, expected),
        }
    }

    /// The directory, as given to [`StateDir::open`].
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The last complete checkpoint, loaded at open and replaced by each
    /// [`commit`](StateDir::commit); `None` in a new state directory.
    pub fn last(&self) -> Option<CheckpointMeta> {
        self.last
            .lock()
            .expect("no panic holding the last checkpoint")
            .clone()
    }

    /// The fingerprint the directory was created with (equal to the one it was opened with).
    pub fn fingerprint(&self) -> &Fingerprint {
        &self.fingerprint
    }

    /// Writes `batch` and `meta` in one RocksDB `WriteBatch` and syncs the WAL before
    /// returning (`WriteOptions::sync`): after `Ok`, the checkpoint survives a kill of the
    /// process or a crash of the machine. A kill during the call leaves either all of it or
    /// none of it, never part.
    ///
    /// After `Err` (disk full, an I/O error) the previous checkpoint is intact, [`last`] is
    /// unchanged and none of `batch` is visible through this handle. RocksDB then refuses
    /// further writes: drop the `StateDir` and open the directory again, and take the state
    /// from that open's [`last`]. (A failure while the batch is being appended, such as disk
    /// full, leaves it out after the reopen; a failure of the final fsync may leave it in,
    /// whole, if the kernel wrote it anyway.)
    ///
    /// The store sets `meta.seq` to the last checkpoint's plus one (1 for the first),
    /// `meta.format` to [`FORMAT_VERSION`] and `meta.fingerprint` to the directory's; the
    /// caller's values of these three are ignored. The other fields are stored as given (the
    /// store does not interpret `frontier` or the positions). Returns the meta written.
    /// Cost: one copy of the batch into the `WriteBatch`, one WAL append, one fsync.
    ///
    /// [`last`]: StateDir::last
    pub fn commit(
        &self,
        batch: Checkpoint,
        mut meta: CheckpointMeta,
    ) -> Result<(CheckpointMeta, CommitStats), StateError> {
        let started = Instant::now();
        // Commits are serialized by this lock (one checkpoint after the other).
        let mut last = self
            .last
            .lock()
            .expect("no panic holding the last checkpoint");
        meta.format = FORMAT_VERSION;
        meta.seq = match &*last {
            None => 1,
            Some(last) => last.seq.checked_add(1).ok_or_else(|| {
                StateError::corrupt(&self.path, None, "the checkpoint seq is at its maximum")
            })?,
        };
        meta.fingerprint.clone_from(&self.fingerprint);
        let mut wb = self.write_batch(&batch);
        wb.put_cf(self.meta_cf(), LAST_KEY, meta.encode());
        let bytes = wb.size_in_bytes() as u64;
        self.write_synced(wb, "commit")?;
        *last = Some(meta.clone());
        let stats = CommitStats {
            bytes,
            keys: batch.len() as u64,
            duration: started.elapsed(),
        };
        Ok((meta, stats))
    }

    /// Writes `batch` atomically and synced, without a checkpoint meta (the webhook outbox's
    /// delivered and dead-letter bookkeeping between checkpoints). Same guarantees as
    /// [`commit`](StateDir::commit); [`last`](StateDir::last) is unchanged.
    pub fn write(&self, batch: Checkpoint) -> Result<(), StateError> {
        if batch.is_empty() {
            return Ok(());
        }
        let wb = self.write_batch(&batch);
        self.write_synced(wb, "write")
    }

    /// The value of `key` in `table`, checksums verified.
    pub fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        self.db
            .get_cf_opt(self.cf(table), key, &verifying())
            .map_err(|e| from_rocksdb(&self.path, "get", e))
    }

    /// Every entry of `table` whose key starts with `prefix`, in key order, checksums
    /// verified ([`ScanItem`] is `Result<(Box<[u8]>, Box<[u8]>), StateError>`).
    ///
    /// Streams from a RocksDB iterator bounded above by the prefix's successor, so it reads
    /// only the entries it yields, never the whole table first; it sees the table as of the
    /// call (an implicit snapshot). After an `Err` item the iterator ends.
    pub fn scan<'a>(&'a self, table: Table, prefix: &[u8]) -> impl Iterator<Item = ScanItem> + 'a {
        let mut opts = verifying();
        if let Some(upper) = prefix_successor(prefix) {
            opts.set_iterate_upper_bound(upper);
        }
        let mode = IteratorMode::From(prefix, Direction::Forward);
        self.db
            .iterator_cf_opt(self.cf(table), opts, mode)
            .map(move |item| item.map_err(|e| from_rocksdb(&self.path, "scan", e)))
    }

    /// Live SST bytes of every column family plus the WAL files' bytes, 0 for what cannot be
    /// read. Cost: one property lookup per column family and a listing of the directory.
    pub fn size_on_disk(&self) -> u64 {
        let sst: u64 = self
            .all_cfs()
            .iter()
            .filter_map(|cf| {
                self.db
                    .property_int_value_cf(*cf, "rocksdb.live-sst-files-size")
                    .ok()
                    .flatten()
            })
            .sum();
        let wal: u64 = std::fs::read_dir(&self.path)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .sum();
        sst + wal
    }

    /// Flushes every column family's memtable to SST files (atomically across them) and
    /// waits. Not needed for durability, which every write has already; it shortens the WAL
    /// replay of the next open.
    pub fn flush(&self) -> Result<(), StateError> {
        let mut opts = FlushOptions::default();
        opts.set_wait(true);
        self.db
            .flush_cfs_opt(&self.all_cfs(), &opts)
            .map_err(|e| from_rocksdb(&self.path, "flush", e))
    }

    /// Reads every entry of every column family with checksums verified, without filling the
    /// block cache: a full integrity check (`Err(Corrupt)` names the damaged file when
    /// RocksDB does). Returns the number of entries. Cost: one pass over the whole state.
    pub fn verify(&self) -> Result<u64, StateError> {
        let mut entries = 0;
        for cf in self.all_cfs() {
            let mut opts = verifying();
            opts.fill_cache(false);
            for item in self.db.iterator_cf_opt(cf, opts, IteratorMode::Start) {
                item.map_err(|e| from_rocksdb(&self.path, "verify", e))?;
                entries += 1;
            }
        }
        Ok(entries)
    }

    fn create(path: &Path, expected: &Fingerprint) -> Result<StateDir, StateError> {
        layout::write_marker(path, FORMAT_VERSION)?;
        let db = DB::open_cf_descriptors(&db_options(true), path, descriptors())
            .map_err(|e| from_rocksdb(path, "create", e))?;
        let dir = StateDir {
            db,
            path: path.to_path_buf(),
            last: std::sync::Mutex::new(None),
            fingerprint: expected.clone(),
        };
        dir.write_fingerprint()?;
        Ok(dir)
    }

    /// Removes the database under RocksDB's lock (so not while another process has it
    /// open; `DestroyDB` takes the lock whatever state the files are in), then everything
    /// else but the marker.
    fn wipe(path: &Path) -> Result<(), StateError> {
        DB::destroy(&db_options(false), path).map_err(|e| from_rocksdb(path, "wipe", e))?;
        layout::wipe_except_marker(path)
    }

    fn open_existing(path: &Path, expected: &Fingerprint) -> Result<StateDir, StateError> {
        let Some(manifest) = layout::check_current(path)? else {
            // Creation stopped after the marker, before RocksDB wrote anything.
            return StateDir::create(path, expected);
        };
        let opts = db_options(false);
        let cfs = DB::list_cf(&opts, path).map_err(|e| from_rocksdb(path, "open", e))?;
        let wanted = cf_names();
        if let Some(missing) = wanted.iter().find(|n| !cfs.iter().any(|c| c == *n)) {
            let detail = format!("the MANIFEST lists no column family {missing:?}");
            return Err(StateError::corrupt(path, Some(manifest), detail));
        }
        if let Some(extra) = cfs.iter().find(|c| !wanted.contains(&c.as_str())) {
            let detail = format!("the MANIFEST lists an unknown column family {extra:?}");
            return Err(StateError::corrupt(path, Some(manifest), detail));
        }
        let db = DB::open_cf_descriptors(&opts, path, descriptors())
            .map_err(|e| from_rocksdb(path, "open", e))?;
        let mut dir = StateDir {
            db,
            path: path.to_path_buf(),
            last: std::sync::Mutex::new(None),
            fingerprint: expected.clone(),
        };
        dir.load(expected)?;
        Ok(dir)
    }

    /// Reads the `meta` column family in full with checksums verified, decodes its records
    /// and checks the fingerprint.
    fn load(&mut self, expected: &Fingerprint) -> Result<(), StateError> {
        let path = self.path.clone();
        let (mut last, mut fingerprint) = (None, None);
        for item in self
            .db
            .iterator_cf_opt(self.meta_cf(), verifying(), IteratorMode::Start)
        {
            let (key, value) = item.map_err(|e| from_rocksdb(&path, "open", e))?;
            match &*key {
                LAST_KEY => last = Some(CheckpointMeta::decode(&path, &value)?),
                FINGERPRINT_KEY => fingerprint = Some(decode_fingerprint(&path, &value)?),
                other => {
                    let key = String::from_utf8_lossy(other);
                    let detail = format!("unknown record {key:?} in the meta column family");
                    return Err(StateError::corrupt(&path, None, detail));
                }
            }
        }
        let Some(stored) = fingerprint else {
            if last.is_some() || !self.tables_empty()? {
                let detail = "the fingerprint record is missing from a state with data";
                return Err(StateError::corrupt(&path, None, detail));
            }
            // Creation stopped after RocksDB created the database; finish it.
            return self.write_fingerprint();
        };
        if let Some(m) = &last {
            if m.fingerprint != stored {
                let detail = format!(
                    "checkpoint {} has another fingerprint than the directory's record",
                    m.seq
                );
                return Err(StateError::corrupt(&path, None, detail));
            }
        }
        let changes = fingerprint_changes(&stored, expected);
        if !changes.is_empty() {
            return Err(StateError::ConfigChanged { path, changes });
        }
        self.last = std::sync::Mutex::new(last);
        Ok(())
    }

    fn tables_empty(&self) -> Result<bool, StateError> {
        for table in Table::ALL {
            if let Some(item) = self.scan(table, &[]).next() {
                item?;
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn write_fingerprint(&self) -> Result<(), StateError> {
        let mut wb = WriteBatch::default();
        wb.put_cf(
            self.meta_cf(),
            FINGERPRINT_KEY,
            encode_fingerprint(&self.fingerprint),
        );
        self.write_synced(wb, "create")
    }

    fn write_batch(&self, batch: &Checkpoint) -> WriteBatch {
        let mut wb = WriteBatch::with_capacity_bytes(batch.bytes() as usize + 32 * batch.len());
        for op in batch.ops() {
            match op {
                CheckpointOp::Put { table, key, value } => wb.put_cf(self.cf(table), key, value),
                CheckpointOp::Delete { table, key } => wb.delete_cf(self.cf(table), key),
                CheckpointOp::DeleteRange { table, from, to } => {
                    wb.delete_range_cf(self.cf(table), from, to)
                }
            }
        }
        wb
    }

    fn write_synced(&self, wb: WriteBatch, op: &'static str) -> Result<(), StateError> {
        let mut opts = WriteOptions::default();
        opts.set_sync(true);
        self.db
            .write_opt(wb, &opts)
            .map_err(|e| from_rocksdb(&self.path, op, e))
    }

    fn cf(&self, table: Table) -> &ColumnFamily {
        self.db
            .cf_handle(table.name())
            .expect("the database is opened with a column family per table")
    }

    fn meta_cf(&self) -> &ColumnFamily {
        self.db
            .cf_handle(META_CF)
            .expect("the database is opened with the meta column family")
    }

    fn all_cfs(&self) -> Vec<&ColumnFamily> {
        let mut cfs: Vec<_> = Table::ALL.into_iter().map(|t| self.cf(t)).collect();
        cfs.push(self.meta_cf());
        cfs
    }
}

/// Read options that verify block checksums (RocksDB's default, made explicit).
fn verifying() -> ReadOptions {
    let mut opts = ReadOptions::default();
    opts.set_verify_checksums(true);
    opts
}

/// The smallest key greater than every key starting with `prefix`: the prefix without its
/// trailing `0xFF` bytes, last byte plus one. `None` when there is none (empty or all
/// `0xFF`): the scan then runs to the end of the table.
pub(crate) fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let keep = prefix.iter().rposition(|&b| b != 0xFF)?;
    let mut upper = prefix[..=keep].to_vec();
    upper[keep] += 1;
    Some(upper)
}

/// The database options: paranoid checks (SST sizes against the MANIFEST, every SST's
/// footer read at open, since all files are kept open), point-in-time WAL recovery (a torn
/// last record is dropped, never skipped over), atomic flush across column families.
fn db_options(create: bool) -> Options {
    let mut opts = Options::default();
    opts.create_if_missing(create);
    opts.create_missing_column_families(create);
    opts.set_paranoid_checks(true);
    opts.set_max_open_files(-1);
    opts.set_wal_recovery_mode(DBRecoveryMode::PointInTime);
    opts.set_atomic_flush(true);
    opts.set_keep_log_file_num(4);
    opts.set_compression_type(DBCompressionType::Lz4);
    opts
}

fn cf_names() -> Vec<&'static str> {
    let mut names = vec!["default", META_CF];
    names.extend(Table::ALL.map(Table::name));
    names
}

fn descriptors() -> Vec<ColumnFamilyDescriptor> {
    cf_names()
        .into_iter()
        .filter(|n| *n != "default")
        .map(|name| {
            let mut opts = Options::default();
            opts.set_compression_type(DBCompressionType::Lz4);
            ColumnFamilyDescriptor::new(name, opts)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_successor_bounds_the_prefix() {
        assert_eq!(prefix_successor(b""), None);
        assert_eq!(prefix_successor(&[0xFF, 0xFF]), None);
        assert_eq!(prefix_successor(&[1, 2]), Some(vec![1, 3]));
        assert_eq!(prefix_successor(&[1, 0xFF]), Some(vec![2]));
        assert_eq!(prefix_successor(&[0, 0, 0, 7]), Some(vec![0, 0, 0, 8]));
    }
}
