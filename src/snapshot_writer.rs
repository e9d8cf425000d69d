//! Writes a replay's book snapshots (`--snapshot-at`) on a thread of its own.
//!
//! At each observation time every local worker, once its dataflow is quiescent there, sends
//! its customers' [`CustomerSnapshot`]s (possibly none). When all have sent for a time, the
//! writer sorts that time's records by customer and strategy and appends them to
//! `snapshots.ndjson` and, as one row group, to `snapshots.parquet`. Memory holds one
//! observation time's records at most (per worker, until the slowest has sent).

use riskwatch_connectors::error::ConnectorError;
use riskwatch_connectors::file::snapshots::SnapshotFiles;
use riskwatch_model::snapshot::CustomerSnapshot;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;

/// One worker's snapshot at one observation time.
#[derive(Debug)]
pub struct SnapshotBatch {
    /// The local worker.
    pub worker: usize,
    /// The observation time.
    pub at: u64,
    /// Its customers' records.
    pub records: Vec<CustomerSnapshot>,
}

/// What the snapshot writer wrote.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct SnapshotsWritten {
    /// The observation times written, ascending.
    pub times: Vec<u64>,
    /// Records written.
    pub records: u64,
}

/// The writer thread.
pub struct SnapshotWriter {
    handle: JoinHandle<Result<(SnapshotFiles, SnapshotsWritten), ConnectorError>>,
}

impl SnapshotWriter {
    /// Creates the snapshot files in `dir` (created if needed) for the features `features`
    /// and starts writing what `workers` local workers send.
    pub fn start(
        dir: &Path,
        features: &[String],
        workers: usize,
    ) -> Result<(SnapshotWriter, Sender<SnapshotBatch>), ConnectorError> {
        std::fs::create_dir_all(dir).map_err(|e| ConnectorError::Io {
            path: dir.display().to_string(),
            source: e,
        })?;
        let files = SnapshotFiles::create(dir, features)?;
        let (tx, rx) = mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("snapshot-writer".into())
            .spawn(move || write(files, workers.max(1), rx))
            .map_err(|e| ConnectorError::Io {
                path: dir.display().to_string(),
                source: e,
            })?;
        Ok((SnapshotWriter { handle }, tx))
    }

    /// Waits for the last batch (every sender must be gone). The files are committed by
    /// [`SnapshotsDone::commit`]; dropped instead, they are removed.
    pub fn join(self) -> Result<SnapshotsDone, ConnectorError> {
        let (files, written) = self
            .handle
            .join()
            .expect("the snapshot writer does not panic")?;
        Ok(SnapshotsDone { files, written })
    }
}

/// Snapshot files written in full, not yet in place.
pub struct SnapshotsDone {
    files: SnapshotFiles,
    written: SnapshotsWritten,
}

impl SnapshotsDone {
    /// Renames the files into place.
    pub fn commit(self) -> Result<SnapshotsWritten, ConnectorError> {
        self.files.commit()?;
        Ok(self.written)
    }
}

fn write(
    mut files: SnapshotFiles,
    workers: usize,
    rx: Receiver<SnapshotBatch>,
) -> Result<(SnapshotFiles, SnapshotsWritten), ConnectorError> {
    // Per observation time: the workers that sent, and their records.
    let mut pending: BTreeMap<u64, (usize, Vec<CustomerSnapshot>)> = BTreeMap::new();
    let mut written = SnapshotsWritten::default();
    for batch in rx {
        let entry = pending.entry(batch.at).or_default();
        entry.0 += 1;
        entry.1.extend(batch.records);
        debug_assert!(batch.worker < workers);
        // Times complete in order: every worker takes them in time order.
        while let Some(e) = pending.first_entry() {
            if e.get().0 < workers {
                break;
            }
            let (at, (_, mut records)) = e.remove_entry();
            records.sort_by(|a, b| {
                (a.customer_id.as_str(), a.strategy.as_str())
                    .cmp(&(b.customer_id.as_str(), b.strategy.as_str()))
            });
            files.write_time(&records)?;
            written.times.push(at);
            written.records += records.len() as u64;
        }
    }
    Ok((files, written))
}
