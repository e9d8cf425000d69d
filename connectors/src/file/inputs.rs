//! Finding and opening the input files of a replay, failing fast on a missing input.
//!
//! An input directory holds up to four files, `customers.ndjson`, `loans.ndjson`,
//! `transactions.ndjson` and `behaviors.ndjson`. A replay refuses to start when the
//! directory is missing or holds none of them, and, unless the streams to read are named
//! on purpose (`--streams transactions,loans`), when any of the four is absent: the error
//! says which streams were found and which are absent, and names look-alike files
//! (`transaction.ndjson`). A named stream must be present. A dangling symlink, a directory
//! in a file's place or an unreadable file is an error naming the path. A FIFO is read
//! like a file; opening one blocks until a writer opens it (a message says so first).

use super::lines::LineChunks;
use super::merge::{MergeOptions, Merger, CHUNK_LINES};
use crate::error::ConnectorError;
use riskwatch_model::event::Stream;
use std::path::{Path, PathBuf};

/// The input files found for each stream (indexed by `Stream as usize`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InputFiles {
    /// The path of each stream read; `None` for a stream left out.
    pub paths: [Option<PathBuf>; 4],
    /// Input files present but not read, because `--streams` left them out.
    pub ignored: Vec<PathBuf>,
}

/// The file name of `stream` in an input directory.
pub fn input_name(stream: Stream) -> String {
    format!("{}.ndjson", stream.name())
}

/// Parses a `--streams` list (`transactions,loans`) into streams, naming a bad entry.
pub fn parse_streams(list: &[String]) -> Result<Vec<Stream>, String> {
    let mut out = Vec::new();
    for name in list {
        let s = Stream::from_name(name.trim()).ok_or_else(|| {
            format!(
                "unknown stream \"{name}\" (the streams are customers, loans, transactions, \
                 behaviors)"
            )
        })?;
        if !out.contains(&s) {
            out.push(s);
        }
    }
    if out.is_empty() {
        return Err("--streams names no stream".into());
    }
    Ok(out)
}

fn input_error(path: &Path, reason: impl Into<String>) -> ConnectorError {
    ConnectorError::Input {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

/// Finds the input files of `dir`: every stream, or exactly `wanted`.
pub fn find_inputs(dir: &Path, wanted: Option<&[Stream]>) -> Result<InputFiles, ConnectorError> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(input_error(dir, "is not a directory")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(input_error(dir, "the input directory does not exist"))
        }
        Err(e) => return Err(input_error(dir, e.to_string())),
    }
    let mut found = InputFiles::default();
    for s in Stream::ALL {
        let path = dir.join(input_name(s));
        let present = match std::fs::symlink_metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => return Err(input_error(&path, e.to_string())),
            Ok(_) => match std::fs::metadata(&path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(input_error(
                        &path,
                        "dangling symlink: its target does not exist",
                    ))
                }
                Err(e) => return Err(input_error(&path, e.to_string())),
                Ok(m) if m.is_dir() => return Err(input_error(&path, "is a directory")),
                Ok(_) => true,
            },
        };
        if !present {
            continue;
        }
        if wanted.is_some_and(|w| !w.contains(&s)) {
            found.ignored.push(path);
        } else {
            found.paths[s as usize] = Some(path);
        }
    }
    let names = |pick: &dyn Fn(Stream) -> bool| -> Vec<&'static str> {
        Stream::ALL
            .into_iter()
            .filter(|&s| pick(s))
            .map(Stream::name)
            .collect()
    };
    let present: Vec<&str> = names(&|s| {
        found.paths[s as usize].is_some() || found.ignored.contains(&dir.join(input_name(s)))
    });
    let missing: Vec<&str> = match wanted {
        Some(w) => w
            .iter()
            .filter(|s| found.paths[**s as usize].is_none())
            .map(|s| s.name())
            .collect(),
        None => names(&|s| found.paths[s as usize].is_none()),
    };
    if present.is_empty() {
        return Err(input_error(
            dir,
            format!(
                "holds none of the four input streams (customers.ndjson, loans.ndjson, \
                 transactions.ndjson, behaviors.ndjson){}",
                look_alikes(dir)
            ),
        ));
    }
    if !missing.is_empty() {
        let hint = if wanted.is_some() {
            String::new()
        } else {
            format!(
                "; to replay without them on purpose, pass --streams {}",
                present.join(",")
            )
        };
        return Err(input_error(
            dir,
            format!(
                "found {}; absent: {}{hint}{}",
                present.join(", "),
                missing.join(", "),
                look_alikes(dir)
            ),
        ));
    }
    Ok(found)
}

/// `; "transaction.ndjson" is not an input name` for NDJSON files that are not inputs.
fn look_alikes(dir: &Path) -> String {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return String::new();
    };
    let inputs: Vec<String> = Stream::ALL.into_iter().map(input_name).collect();
    let mut odd: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".ndjson") && !inputs.contains(n) && n != "truth.ndjson")
        .collect();
    odd.sort();
    if odd.is_empty() {
        return String::new();
    }
    format!(
        "; not input names: {} (the inputs are {})",
        odd.join(", "),
        inputs.join(", ")
    )
}

impl InputFiles {
    /// Opens every file and starts a merge over them. Opening a FIFO waits for a writer.
    pub fn open(&self, opts: MergeOptions) -> Result<Merger, ConnectorError> {
        let mut readers: [Option<LineChunks>; 4] = Default::default();
        for s in Stream::ALL {
            let Some(path) = &self.paths[s as usize] else {
                continue;
            };
            if is_fifo(path) {
                tracing::info!(path = %path.display(), "input is a FIFO: waiting for a writer");
            }
            let file = std::fs::File::open(path).map_err(|e| ConnectorError::Io {
                path: path.display().to_string(),
                source: e,
            })?;
            let reader = std::io::BufReader::with_capacity(1 << 20, file);
            readers[s as usize] = Some(LineChunks::new(
                s,
                Box::new(reader),
                opts.threads,
                CHUNK_LINES,
            ));
        }
        Ok(Merger::new(readers, opts))
    }

    /// The path of `stream`'s file, for error messages.
    pub fn path(&self, stream: Stream) -> String {
        self.paths[stream as usize]
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| input_name(stream))
    }
}

#[cfg(unix)]
fn is_fifo(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_fifo())
}

#[cfg(not(unix))]
fn is_fifo(_: &Path) -> bool {
    false
}
