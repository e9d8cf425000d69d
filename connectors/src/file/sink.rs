//! NDJSON output files, written atomically.
//!
//! An [`OutputFile`] writes to `NAME.partial` beside its final path and renames it into
//! place only when [`OutputFile::commit`] flushes and syncs it, so a reader never sees a
//! half-written line under the final name. An [`OutputSet`] owns the outputs of one run in
//! a directory: it removes the previous run's outputs when it opens (so a killed run never
//! leaves old outputs looking current), opens every file at once (so an unwritable
//! directory fails before any work is done), and commits them together. Every error names
//! its path. On an error, or when dropped uncommitted, the `.partial` files are removed.

use crate::error::ConnectorError;
use serde::Serialize;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

fn io_error(path: &Path, source: std::io::Error) -> ConnectorError {
    ConnectorError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// One output file being written under a temporary name.
pub struct OutputFile {
    path: PathBuf,
    partial: PathBuf,
    out: Option<BufWriter<File>>,
    records: u64,
    line: Vec<u8>,
}

impl OutputFile {
    /// Creates `path.partial` for writing (replacing one left by a killed run).
    pub fn create(path: &Path) -> Result<OutputFile, ConnectorError> {
        let mut partial = path.as_os_str().to_owned();
        partial.push(".partial");
        let partial = PathBuf::from(partial);
        let file = File::create(&partial).map_err(|e| io_error(&partial, e))?;
        Ok(OutputFile {
            path: path.to_path_buf(),
            partial,
            out: Some(BufWriter::with_capacity(1 << 20, file)),
            records: 0,
            line: Vec::with_capacity(1024),
        })
    }

    /// The final path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records written.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Appends one record as a JSON line.
    pub fn write<T: Serialize>(&mut self, record: &T) -> Result<(), ConnectorError> {
        self.line.clear();
        serde_json::to_writer(&mut self.line, record).map_err(|e| {
            io_error(
                &self.partial,
                std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            )
        })?;
        self.line.push(b'\n');
        let line = std::mem::take(&mut self.line);
        let r = self.write_raw(&line);
        self.line = line;
        r
    }

    /// Appends one already rendered JSON line (without its `\n`).
    pub fn write_line(&mut self, line: &str) -> Result<(), ConnectorError> {
        let out = self.out.as_mut().expect("not committed");
        out.write_all(line.as_bytes())
            .and_then(|_| out.write_all(b"\n"))
            .map_err(|e| io_error(&self.partial, e))?;
        self.records += 1;
        Ok(())
    }

    fn write_raw(&mut self, bytes: &[u8]) -> Result<(), ConnectorError> {
        let out = self.out.as_mut().expect("not committed");
        out.write_all(bytes)
            .map_err(|e| io_error(&self.partial, e))?;
        self.records += 1;
        Ok(())
    }

    /// Flushes, syncs and renames the file into place; on an error the `.partial` file is
    /// removed.
    pub fn commit(mut self) -> Result<u64, ConnectorError> {
        let out = self.out.take().expect("committed once");
        let done = out
            .into_inner()
            .map_err(|e| io_error(&self.partial, e.into_error()))
            .and_then(|file| file.sync_all().map_err(|e| io_error(&self.partial, e)))
            .and_then(|()| {
                std::fs::rename(&self.partial, &self.path).map_err(|e| io_error(&self.path, e))
            });
        if done.is_err() {
            let _ = std::fs::remove_file(&self.partial);
        }
        done.map(|()| self.records)
    }
}

impl Drop for OutputFile {
    fn drop(&mut self) {
        if self.out.take().is_some() {
            let _ = std::fs::remove_file(&self.partial);
        }
    }
}

/// The output files of one run in one directory.
pub struct OutputSet {
    dir: PathBuf,
    files: Vec<OutputFile>,
}

impl OutputSet {
    /// Creates `dir` if needed, removes the previous run's `names` (and `also`, such as
    /// summary.json), and opens each of `names` for writing.
    pub fn create(dir: &Path, names: &[&str], also: &[&str]) -> Result<OutputSet, ConnectorError> {
        std::fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
        for name in names.iter().chain(also) {
            let path = dir.join(name);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_error(&path, e)),
            }
        }
        let files = names
            .iter()
            .map(|n| OutputFile::create(&dir.join(n)))
            .collect::<Result<_, _>>()?;
        Ok(OutputSet {
            dir: dir.to_path_buf(),
            files,
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file opened as the `i`-th of `names`.
    pub fn file(&mut self, i: usize) -> &mut OutputFile {
        &mut self.files[i]
    }

    /// Commits every file.
    pub fn commit(self) -> Result<(), ConnectorError> {
        for f in self.files {
            f.commit()?;
        }
        Ok(())
    }
}

/// Writes `value` as pretty JSON to `path` atomically (a `.partial` file, then rename).
pub fn write_json_atomic<T: Serialize>(path: &Path, value: &T) -> Result<(), ConnectorError> {
    let mut f = OutputFile::create(path)?;
    let mut text = serde_json::to_vec_pretty(value).map_err(|e| {
        io_error(
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        )
    })?;
    text.push(b'\n');
    f.write_raw(&text)?;
    f.commit().map(|_| ())
}

/// Writes `records` to `path` as NDJSON, atomically.
pub fn write_ndjson<'a, T: Serialize + 'a>(
    path: &Path,
    records: impl IntoIterator<Item = &'a T>,
) -> Result<u64, ConnectorError> {
    let mut f = OutputFile::create(path)?;
    for r in records {
        f.write(r)?;
    }
    f.commit()
}

/// Writes already rendered JSON lines to `path`, atomically.
pub fn write_lines<'a>(
    path: &Path,
    lines: impl IntoIterator<Item = &'a String>,
) -> Result<u64, ConnectorError> {
    let mut f = OutputFile::create(path)?;
    for l in lines {
        f.write_line(l)?;
    }
    f.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_uncommitted_output_leaves_no_file_and_a_committed_one_replaces_the_old() {
        let dir = std::env::temp_dir().join(format!("rw-sink-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("alerts.ndjson");
        std::fs::write(&path, "old\n").unwrap();
        {
            let mut set = OutputSet::create(&dir, &["alerts.ndjson"], &["summary.json"]).unwrap();
            set.file(0).write_line("{\"a\":1}").unwrap();
            // Dropped without commit: a killed or failed run.
        }
        assert!(!path.exists(), "the previous run's output is removed");
        assert!(!dir.join("alerts.ndjson.partial").exists());
        let mut set = OutputSet::create(&dir, &["alerts.ndjson"], &[]).unwrap();
        set.file(0).write(&serde_json::json!({"a": 2})).unwrap();
        set.commit().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"a\":2}\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_unwritable_directory_is_an_error_naming_the_path() {
        let err = OutputSet::create(Path::new("/proc/riskwatch-no"), &["alerts.ndjson"], &[])
            .err()
            .expect("cannot create");
        assert!(err.to_string().starts_with("/proc/riskwatch-no"), "{err}");
    }
}
