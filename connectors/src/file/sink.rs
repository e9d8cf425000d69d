//! NDJSON file sinks: one JSON object per line, written through a buffer.

use serde::Serialize;
use std::io::{BufWriter, Write};
use std::path::Path;

/// Writes `records` to `path` as NDJSON, replacing the file.
pub fn write_ndjson<'a, T: Serialize + 'a>(
    path: &Path,
    records: impl IntoIterator<Item = &'a T>,
) -> std::io::Result<u64> {
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let mut n = 0;
    for r in records {
        serde_json::to_writer(&mut out, r)?;
        out.write_all(b"\n")?;
        n += 1;
    }
    out.flush()?;
    Ok(n)
}

/// Writes already rendered JSON lines to `path`, replacing the file.
pub fn write_lines<'a>(
    path: &Path,
    lines: impl IntoIterator<Item = &'a String>,
) -> std::io::Result<u64> {
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let mut n = 0;
    for l in lines {
        out.write_all(l.as_bytes())?;
        out.write_all(b"\n")?;
        n += 1;
    }
    out.flush()?;
    Ok(n)
}
