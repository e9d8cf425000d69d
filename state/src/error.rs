//! [`StateError`], the one error type of the crate, and the translation of RocksDB's errors
//! into it.
//!
//! Every variant names the state directory and says what the operator should do. RocksDB
//! reports problems as a kind plus a free-text message; [`from_rocksdb`] turns a
//! `Corruption` (and, while opening, a file the MANIFEST names that is gone) into
//! [`StateError::Corrupt`] with the offending file when the message names one, and every
//! other failure into [`StateError::Io`].

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The CLI flag that creates a new empty state directory; every hint names it.
pub const INIT_FLAG: &str = "--init-state";

/// One difference between the fingerprint stored in a state directory and the running
/// configuration's: the key, its value in the state (`None`: absent there) and its value
/// now (`None`: absent now).
pub type FingerprintChange = (String, Option<String>, Option<String>);

/// Why the state directory cannot be opened, read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// [`OpenMode::Existing`](crate::OpenMode::Existing) and nothing exists at the path.
    #[error(
        "state directory \"{}\" does not exist: pass {INIT_FLAG} to create a new empty state \
         there, or point at the right directory",
        path.display()
    )]
    Missing {
        /// The state directory.
        path: PathBuf,
    },

    /// The path exists but is not a riskwatch state directory (a file, a directory with
    /// other content, a RocksDB database without the riskwatch marker). It is never wiped,
    /// not even with [`OpenMode::Fresh`](crate::OpenMode::Fresh).
    #[error("\"{}\" is not a riskwatch state directory: {detail}", path.display())]
    NotStateDir {
        /// The path given.
        path: PathBuf,
        /// What is there instead, and what to do.
        detail: String,
    },

    /// A file of the state is damaged or missing, or a record does not decode.
    #[error(
        "state directory \"{}\" is corrupt{}: {detail}; the state cannot be trusted: move the \
         directory away and restart with {INIT_FLAG} to rebuild from the sources' retained \
         history",
        path.display(),
        file.as_ref().map(|f| format!(" (file \"{}\")", f.display())).unwrap_or_default()
    )]
    Corrupt {
        /// The state directory.
        path: PathBuf,
        /// The damaged file, when known.
        file: Option<PathBuf>,
        /// What is wrong, as RocksDB or the decoder reported it.
        detail: String,
    },

    /// The directory was written in another format version (its marker file or its
    /// checkpoint record says so). There is no migration: it is refused.
    #[error(
        "state directory \"{}\" has format version {found}, this riskwatch reads version \
         {expected} only: run the riskwatch release that wrote it, or move the directory away \
         and restart with {INIT_FLAG} to rebuild from the sources' retained history",
        path.display()
    )]
    Version {
        /// The state directory.
        path: PathBuf,
        /// The version found in the directory.
        found: u32,
        /// [`FORMAT_VERSION`](crate::FORMAT_VERSION).
        expected: u32,
    },

    /// The state was built under a configuration that differs from the running one in
    /// something the state depends on (tick, windows, workers, …).
    #[error("{}", display_changes(path, changes))]
    ConfigChanged {
        /// The state directory.
        path: PathBuf,
        /// Every key that differs, in key order.
        changes: Vec<FingerprintChange>,
    },

    /// An I/O or RocksDB failure that is not corruption: permissions, disk full, the
    /// directory locked by another process.
    #[error("state directory \"{}\": {op} failed: {detail}", path.display())]
    Io {
        /// The state directory.
        path: PathBuf,
        /// What was being done (`"open"`, `"commit"`, `"scan"`, …).
        op: &'static str,
        /// The underlying error's message.
        detail: String,
    },
}

impl StateError {
    /// The state directory (or the path given) the error is about.
    pub fn path(&self) -> &Path {
        match self {
            StateError::Missing { path }
            | StateError::NotStateDir { path, .. }
            | StateError::Corrupt { path, .. }
            | StateError::Version { path, .. }
            | StateError::ConfigChanged { path, .. }
            | StateError::Io { path, .. } => path,
        }
    }

    /// An [`Io`](StateError::Io) error from a `std::io::Error`.
    pub(crate) fn io(path: &Path, op: &'static str, err: &std::io::Error) -> StateError {
        StateError::Io {
            path: path.to_path_buf(),
            op,
            detail: err.to_string(),
        }
    }

    /// A [`Corrupt`](StateError::Corrupt) error.
    pub(crate) fn corrupt(path: &Path, file: Option<PathBuf>, detail: impl Into<String>) -> Self {
        StateError::Corrupt {
            path: path.to_path_buf(),
            file,
            detail: detail.into(),
        }
    }
}

fn display_changes(path: &Path, changes: &[FingerprintChange]) -> String {
    let mut out = format!(
        "state directory \"{}\" was built with a different configuration ({} change{}):",
        path.display(),
        changes.len(),
        if changes.len() == 1 { "" } else { "s" }
    );
    let show = |v: &Option<String>| match v {
        Some(v) => format!("{v:?}"),
        None => "(absent)".to_owned(),
    };
    for (key, old, new) in changes {
        let _ = write!(out, "\n  {key}: {} -> {}", show(old), show(new));
    }
    let _ = write!(
        out,
        "\nthe state depends on these settings: run with the configuration it was built with, \
         or restart with {INIT_FLAG} into an empty directory to rebuild it from the sources' \
         retained history"
    );
    out
}

/// Translates a RocksDB error from operation `op` on the state directory at `path`.
///
/// `Corruption` becomes [`StateError::Corrupt`]. While opening (`op == "open"`), a
/// missing file of the database ("No such file or directory" about a path inside the
/// directory) is corruption too: the MANIFEST names a file that is gone. A lock failure
/// gets a hint about a second process. Everything else is [`StateError::Io`].
pub(crate) fn from_rocksdb(path: &Path, op: &'static str, err: rocksdb::Error) -> StateError {
    let kind = err.kind();
    let detail = err.into_string();
    let file = file_in_message(path, &detail);
    let missing_file = op == "open" && detail.contains("No such file") && file.is_some();
    if kind == rocksdb::ErrorKind::Corruption || missing_file {
        return StateError::corrupt(path, file, detail);
    }
    let detail = if detail.contains("lock") || detail.contains("LOCK") {
        format!("{detail} (is another riskwatch process using this state directory?)")
    } else {
        detail
    };
    StateError::Io {
        path: path.to_path_buf(),
        op,
        detail,
    }
}

/// The first file of a RocksDB database named in `message` (an SST, a WAL, a MANIFEST,
/// CURRENT, OPTIONS), as a path inside `dir`.
pub(crate) fn file_in_message(dir: &Path, message: &str) -> Option<PathBuf> {
    message
        .split(|c: char| c.is_whitespace() || matches!(c, ':' | ',' | ';' | '\'' | '"'))
        .filter_map(|token| {
            let name = token.trim_end_matches('.').rsplit('/').next()?;
            let known = name.ends_with(".sst")
                || name.ends_with(".log")
                || name.ends_with(".blob")
                || name.starts_with("MANIFEST-")
                || name.starts_with("OPTIONS-")
                || name == "CURRENT";
            known.then(|| dir.join(name))
        })
        .next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_file_in_rocksdb_messages() {
        let dir = Path::new("/s");
        let m = "Corruption: Sst file size mismatch: /s/000009.sst. Size recorded in manifest 10";
        assert_eq!(file_in_message(dir, m), Some(dir.join("000009.sst")));
        let m = "IO error: No such file or directory: While opening a file for sequentially \
                 reading: /s/MANIFEST-000005: No such file or directory";
        assert_eq!(file_in_message(dir, m), Some(dir.join("MANIFEST-000005")));
        assert_eq!(file_in_message(dir, "IO error: disk full"), None);
    }

    #[test]
    fn config_changed_lists_every_change() {
        let e = StateError::ConfigChanged {
            path: PathBuf::from("/s"),
            changes: vec![
                ("tick".into(), Some("10ms".into()), Some("20ms".into())),
                ("workers".into(), None, Some("2".into())),
            ],
        };
        let text = e.to_string();
        assert!(text.contains("tick: \"10ms\" -> \"20ms\""), "{text}");
        assert!(text.contains("workers: (absent) -> \"2\""), "{text}");
        assert!(text.contains(INIT_FLAG), "{text}");
    }
}
