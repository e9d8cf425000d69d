//! The state directory as files, before RocksDB opens it: the `RISKWATCH_STATE` marker,
//! what kind of thing a path holds, the sanity checks of `CURRENT`, and wiping.
//!
//! The marker is written first when a directory is created and kept to the very end when
//! one is wiped, so a crash at any point leaves a directory riskwatch still recognises as
//! its own (and may wipe with `Fresh`). A directory without it is never deleted.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::error::{StateError, INIT_FLAG};

/// The marker file's name.
pub(crate) const MARKER: &str = "RISKWATCH_STATE";

/// The marker's first line; the second is `format <FORMAT_VERSION>`.
const MARKER_HEADER: &str = "riskwatch state directory";

/// What a path holds.
#[derive(Debug)]
pub(crate) enum Found {
    /// Nothing.
    Missing,
    /// An empty directory.
    Empty,
    /// A directory with the marker: the format version it states, or why it cannot be read.
    State(Result<u32, String>),
    /// Something riskwatch must not touch; the text says what and what to do.
    Foreign(String),
}

/// Looks at `path` without changing anything.
pub(crate) fn inspect(path: &Path) -> Result<Found, StateError> {
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Found::Missing),
        Err(e) => return Err(StateError::io(path, "inspect", &e)),
    };
    if !meta.is_dir() {
        return Ok(Found::Foreign(format!(
            "it is a file, not a directory; riskwatch never deletes it, not even with \
             {INIT_FLAG}: point at a state directory, or at a missing or empty directory \
             with {INIT_FLAG}"
        )));
    }
    let mut names = entries(path)?;
    // A marker's temporary file alone: creation stopped before the marker was in place.
    names.retain(|n| *n != marker_tmp());
    if names.is_empty() {
        return Ok(Found::Empty);
    }
    let marker = path.join(MARKER);
    if names.iter().any(|n| n == MARKER) {
        let text = fs::read(&marker).map_err(|e| StateError::io(path, "read marker", &e))?;
        return Ok(Found::State(parse_marker(&text)));
    }
    let what = if names.iter().any(|n| n == "CURRENT") {
        "it is a RocksDB database, but not one riskwatch created".to_owned()
    } else {
        format!(
            "it holds {} entr{} (such as \"{}\")",
            names.len(),
            if names.len() == 1 { "y" } else { "ies" },
            names[0]
        )
    };
    Ok(Found::Foreign(format!(
        "{what} and no {MARKER} marker file; riskwatch never deletes such a directory, not \
         even with {INIT_FLAG}: point at a state directory, or at a missing or empty \
         directory with {INIT_FLAG}"
    )))
}

/// The names in directory `path`, sorted.
pub(crate) fn entries(path: &Path) -> Result<Vec<String>, StateError> {
    let mut names = Vec::new();
    for entry in fs::read_dir(path).map_err(|e| StateError::io(path, "list", &e))? {
        let entry = entry.map_err(|e| StateError::io(path, "list", &e))?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}

fn parse_marker(text: &[u8]) -> Result<u32, String> {
    let text = std::str::from_utf8(text).map_err(|_| "the marker is not UTF-8".to_owned())?;
    let mut lines = text.lines();
    if lines.next() != Some(MARKER_HEADER) {
        return Err(format!("the marker does not start with {MARKER_HEADER:?}"));
    }
    lines
        .next()
        .and_then(|l| l.strip_prefix("format "))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| "the marker has no \"format <version>\" line".to_owned())
}

/// Creates `path` if needed and writes the marker for `format` atomically (temporary file,
/// fsync, rename, fsync of the directory).
pub(crate) fn write_marker(path: &Path, format: u32) -> Result<(), StateError> {
    let fail = |e: std::io::Error| StateError::io(path, "write marker", &e);
    fs::create_dir_all(path).map_err(fail)?;
    let tmp = path.join(marker_tmp());
    let mut file = fs::File::create(&tmp).map_err(fail)?;
    write!(file, "{MARKER_HEADER}\nformat {format}\n").map_err(fail)?;
    file.sync_all().map_err(fail)?;
    drop(file);
    fs::rename(&tmp, path.join(MARKER)).map_err(fail)?;
    sync_dir(path).map_err(fail)
}

/// The temporary file the marker is written to before it is renamed into place.
fn marker_tmp() -> String {
    format!("{MARKER}.tmp")
}

fn sync_dir(path: &Path) -> std::io::Result<()> {
    fs::File::open(path)?.sync_all()
}

/// Checks `CURRENT` before RocksDB reads it, for a precise error: it must name a MANIFEST
/// that exists, which is returned. `Ok(None)`: there is no `CURRENT` and no other database
/// file either, so creating the database was interrupted right after the marker was
/// written.
pub(crate) fn check_current(path: &Path) -> Result<Option<PathBuf>, StateError> {
    let current = path.join("CURRENT");
    let text = match fs::read(&current) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let names = entries(path)?;
            let database_file = |n: &String| {
                n.starts_with("MANIFEST-") || n.ends_with(".sst") || n.ends_with(".log")
            };
            if !names.iter().any(database_file) {
                return Ok(None);
            }
            return Err(StateError::corrupt(
                path,
                Some(current),
                "CURRENT is missing, but the directory holds database files",
            ));
        }
        Err(e) => return Err(StateError::io(path, "read CURRENT", &e)),
    };
    let manifest = std::str::from_utf8(&text)
        .ok()
        .and_then(|t| t.strip_suffix('\n'))
        .filter(|name| {
            name.strip_prefix("MANIFEST-")
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        });
    let Some(manifest) = manifest else {
        let shown = String::from_utf8_lossy(&text[..text.len().min(64)]).into_owned();
        return Err(StateError::corrupt(
            path,
            Some(current),
            format!("CURRENT does not name a MANIFEST file: {shown:?}"),
        ));
    };
    let manifest: PathBuf = path.join(manifest);
    if !manifest.is_file() {
        return Err(StateError::corrupt(
            path,
            Some(manifest),
            "the MANIFEST named by CURRENT is missing",
        ));
    }
    Ok(Some(manifest))
}

/// Removes every entry of the state directory except the marker, which stays until the
/// caller writes a new one. The caller has already had RocksDB's `DestroyDB` remove the
/// database's own files under the database's lock, so a directory another process has open
/// is never reached here.
pub(crate) fn wipe_except_marker(path: &Path) -> Result<(), StateError> {
    for name in entries(path)? {
        if name == MARKER {
            continue;
        }
        let p = path.join(&name);
        let result = if p.is_dir() && !p.is_symlink() {
            fs::remove_dir_all(&p)
        } else {
            fs::remove_file(&p)
        };
        result.map_err(|e| StateError::io(path, "wipe", &e))?;
    }
    sync_dir(path).map_err(|e| StateError::io(path, "wipe", &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_parses() {
        assert_eq!(
            parse_marker(b"riskwatch state directory\nformat 1\n"),
            Ok(1)
        );
        assert_eq!(
            parse_marker(b"riskwatch state directory\nformat 12"),
            Ok(12)
        );
        assert!(parse_marker(b"riskwatch state directory\n").is_err());
        assert!(parse_marker(b"something else\nformat 1\n").is_err());
        assert!(parse_marker(b"\xff").is_err());
    }
}
