//! riskwatch's durable state: a RocksDB *state directory* holding the operators' state and
//! the sources' positions as of the last complete checkpoint, so that a restart resumes
//! where the last checkpoint left off instead of re-reading all history.
//!
//! # What is stored
//! One RocksDB database per state directory, with a column family per [`Table`] (`ledger`,
//! `windows`, `dedupe`, `evaluate`, `sources`, `outbox`, `delivered`, `dead_letters`) whose
//! keys and values are opaque bytes serialised by the runtime, and a `meta` column family
//! with two records of the store's own, both JSON:
//! - `last`: the [`CheckpointMeta`] of the last complete checkpoint: its `seq` (1, 2, 3 …),
//!   the event-time `frontier` the state is complete before, the sources' resume positions
//!   ([`SourcePosition`]), the config version and the fingerprint;
//! - `fingerprint`: the [`Fingerprint`] the directory was created with.
//!
//! Beside the database, the file `RISKWATCH_STATE` marks the directory as riskwatch's and
//! states its format version.
//!
//! # Key layout
//! Keys are chosen by the caller. [`keys`] gives the layout the runtime uses: the global
//! worker index, big-endian, then big-endian integers, so that a
//! [`scan`](StateDir::scan) of a worker's prefix returns its entries in numeric order and a
//! process reads back exactly the workers it runs.
//!
//! # Atomicity and durability
//! [`StateDir::commit`] puts a [`Checkpoint`]'s operations and the new meta record into one
//! RocksDB `WriteBatch` and writes it with `sync = true`: once it returns `Ok`, the
//! checkpoint survives a kill of the process or a power cut. RocksDB applies a batch whole
//! or not at all, and WAL recovery stops at a torn record, so a commit that fails or is
//! killed half-way leaves all of the checkpoint or none of it, never part, and the previous
//! checkpoint intact. [`StateDir::write`] gives the same guarantee without a meta change.
//! So the data and `last()` always agree: every key holds what the checkpoint `last().seq`
//! (or a later `write`) wrote.
//!
//! # Versioning
//! [`FORMAT_VERSION`] covers the marker, the column families and the meta records. A
//! directory of another version is refused ([`StateError::Version`]); there is no
//! migration, the state is rebuilt from the sources. The fingerprint holds every setting
//! the state depends on (tick, windows, workers …); a directory opened with a different one
//! is refused with every change listed ([`StateError::ConfigChanged`]).
//!
//! # Failure behaviour
//! Nothing here panics on bad data; every failure is a [`StateError`] naming the directory:
//! - nothing at the path with [`OpenMode::Existing`]: [`StateError::Missing`];
//! - a file, a directory with other content, a RocksDB database without the marker:
//!   [`StateError::NotStateDir`], and such a path is never wiped, not even with
//!   [`OpenMode::Fresh`];
//! - garbage in `CURRENT`, a missing MANIFEST or SST, an SST of the wrong size, a block
//!   checksum mismatch, an undecodable meta record: [`StateError::Corrupt`], naming the file
//!   when known. The database is opened with paranoid checks and the `meta` column family
//!   is read in full with checksums verified; [`StateDir::verify`] checks everything;
//! - any other I/O or RocksDB failure (disk full, permissions, the directory locked by a
//!   running riskwatch): [`StateError::Io`].
//!
//! # Layout
//! - `table`: [`Table`]; `keys`: key encodings; `meta`: [`CheckpointMeta`],
//!   [`Fingerprint`] and their encodings; `checkpoint`: [`Checkpoint`], the batch;
//! - `layout`: the directory as files (marker, `CURRENT` checks, wiping);
//! - `state_dir`: [`StateDir`], the RocksDB database; `store`: the [`StateStore`] trait;
//! - `error`: [`StateError`];
//! - [`outbox`]: the webhook outbox (pending, delivered, dead letters) on the `outbox`,
//!   `delivered` and `dead_letters` tables.
#![warn(missing_docs)]

mod checkpoint;
mod error;
pub mod keys;
mod layout;
mod meta;
pub mod outbox;
mod state_dir;
mod store;
mod table;

pub use checkpoint::{Checkpoint, CheckpointOp, CommitStats};
pub use error::{FingerprintChange, StateError, INIT_FLAG};
pub use meta::{fingerprint_changes, CheckpointMeta, Fingerprint, SourcePosition, FORMAT_VERSION};
pub use state_dir::{OpenMode, StateDir};
pub use store::{ScanItem, StateStore};
pub use table::Table;

/// The name of the marker file in every state directory.
pub const MARKER_FILE: &str = layout::MARKER;
