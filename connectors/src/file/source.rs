//! The file source as a whole: a directory (or four texts in memory) merged into timed
//! events, collected. See [`super::merge`] for the merge rules and [`super::inputs`] for
//! how the input files are found.

use super::inputs::find_inputs;
use super::lines::LineChunks;
use super::merge::{MergeOptions, MergeStats, Merger, CHUNK_LINES};
use crate::error::ConnectorError;
use riskwatch_model::event::{Event, Stream};
use std::path::Path;

/// A merged input, collected: events with their time, in merge order, and the rejected
/// lines.
#[derive(Debug, Default)]
pub struct Merged {
    /// `(time, event)` in non-decreasing time order.
    pub events: Vec<(u64, Event)>,
    /// Rejected records as rejected.schema.json lines, in the order they were found.
    pub rejected: Vec<String>,
    /// Rejected counts by reason (`json`, `missing:amount`, …, `future_ts`).
    pub rejected_by_reason: std::collections::BTreeMap<String, u64>,
    /// Records read per stream (valid or not).
    pub read: [u64; 4],
    /// Events that entered late (after the frontier passed their tick).
    pub late: u64,
    /// The largest event `ts` merged (0 when none).
    pub max_ts: u64,
    /// Bytes read.
    pub bytes: u64,
}

impl Merged {
    fn collect(mut merger: Merger) -> Result<Merged, (Stream, std::io::Error)> {
        let mut events = Vec::new();
        while let Some(e) = merger.next_event()? {
            events.push(e);
        }
        let bytes = merger.bytes();
        let rejected = merger.take_rejected();
        let MergeStats {
            read,
            late,
            max_ts,
            rejected_by_reason,
        } = merger.stats().clone();
        Ok(Merged {
            events,
            rejected,
            rejected_by_reason,
            read,
            late,
            max_ts,
            bytes,
        })
    }
}

/// Reads all four streams of `dir` (each must be present) and merges them.
pub fn read_dir(dir: &Path, opts: MergeOptions) -> Result<Merged, ConnectorError> {
    let inputs = find_inputs(dir, None)?;
    let merger = inputs.open(opts)?;
    Merged::collect(merger).map_err(|(s, e)| ConnectorError::Io {
        path: inputs.path(s),
        source: e,
    })
}

/// Merges the four streams' NDJSON texts (indexed by `Stream as usize`; a missing or
/// empty text is an empty stream).
pub fn merge(texts: &[&[u8]], opts: MergeOptions) -> Merged {
    let mut readers: [Option<LineChunks>; 4] = Default::default();
    for s in Stream::ALL {
        let text = texts.get(s as usize).copied().unwrap_or(&[]).to_vec();
        readers[s as usize] = Some(LineChunks::new(
            s,
            Box::new(std::io::Cursor::new(text)),
            opts.threads,
            CHUNK_LINES,
        ));
    }
    Merged::collect(Merger::new(readers, opts)).expect("reading memory cannot fail")
}
