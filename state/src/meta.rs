//! The records of the `meta` column family: [`CheckpointMeta`] (what the last complete
//! checkpoint covers) and the directory's [`Fingerprint`], with their byte encodings.
//!
//! Both are JSON: small, written once per checkpoint, and readable with `ldb` when
//! something goes wrong. Decoding is strict (unknown fields are refused) and never panics;
//! a record of another format version is reported as such before its fields are looked at.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{FingerprintChange, StateError};

/// The on-disk format version this build reads and writes: of the marker file, of the
/// column-family layout and of the meta records. A directory of another version is refused
/// with [`StateError::Version`].
pub const FORMAT_VERSION: u32 = 1;

/// Everything a state directory must agree with the running config on. Values are
/// human-readable strings (e.g. `"tick"` → `"10ms"`, `"window.30d"` → `"30d/90m"`,
/// `"workers"` → `"2"`); the store compares them for equality only.
pub type Fingerprint = BTreeMap<String, String>;

/// What one complete checkpoint covers. Written by [`StateDir::commit`] in the same atomic
/// batch as the checkpoint's data.
///
/// [`StateDir::commit`]: crate::StateDir::commit
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointMeta {
    /// [`FORMAT_VERSION`] at write time (set by the store).
    pub format: u32,
    /// 1, 2, 3 … per state directory (set by the store).
    pub seq: u64,
    /// Event time: the state holds everything before this time.
    pub frontier: u64,
    /// Wall clock at write time, epoch ms.
    pub written_at_ms: u64,
    /// The directory's fingerprint (set by the store to the one it was opened with).
    pub fingerprint: Fingerprint,
    /// Version string of the strategy config in force.
    pub config_version: String,
    /// Where each source resumes.
    pub sources: Vec<SourcePosition>,
}

/// Where one source resumes after a restart from the checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum SourcePosition {
    /// A Kafka partition.
    Kafka {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The next offset to read.
        offset: i64,
    },
    /// An NDJSON file.
    File {
        /// The file, as configured.
        path: String,
        /// The byte offset to resume reading at.
        offset: u64,
        /// Byte offsets after `offset` of records already consumed (read ahead of the
        /// frontier), to skip when reading them again.
        skip: Vec<u64>,
    },
}

/// Only the `format` field of a meta record, read before the rest so that a record of
/// another version is reported as [`StateError::Version`] rather than as undecodable.
#[derive(Deserialize)]
struct Head {
    format: Option<u64>,
}

impl CheckpointMeta {
    /// The record's bytes (JSON). [`CheckpointMeta::decode`] of them gives `self` back.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a struct of strings, integers and maps serialises")
    }

    /// Decodes a record read from the state directory at `path` (named in the errors).
    ///
    /// Another `format` than [`FORMAT_VERSION`]: [`StateError::Version`]. Anything else
    /// that is not exactly an encoded `CheckpointMeta` (bad JSON, a missing or unknown
    /// field, a number out of range): [`StateError::Corrupt`]. Never panics.
    pub fn decode(path: &Path, bytes: &[u8]) -> Result<CheckpointMeta, StateError> {
        let corrupt = |e: serde_json::Error| {
            StateError::corrupt(path, None, format!("checkpoint meta record: {e}"))
        };
        let head: Head = serde_json::from_slice(bytes).map_err(corrupt)?;
        match head.format {
            Some(f) if f == u64::from(FORMAT_VERSION) => {}
            Some(f) => {
                return Err(StateError::Version {
                    path: path.to_path_buf(),
                    found: u32::try_from(f).unwrap_or(u32::MAX),
                    expected: FORMAT_VERSION,
                })
            }
            None => {
                return Err(StateError::corrupt(
                    path,
                    None,
                    "checkpoint meta record: no \"format\" field",
                ))
            }
        }
        serde_json::from_slice(bytes).map_err(corrupt)
    }
}

/// The bytes of the fingerprint record (JSON object of strings).
pub(crate) fn encode_fingerprint(fingerprint: &Fingerprint) -> Vec<u8> {
    serde_json::to_vec(fingerprint).expect("a map of strings serialises")
}

/// Decodes the fingerprint record of the state directory at `path`.
pub(crate) fn decode_fingerprint(path: &Path, bytes: &[u8]) -> Result<Fingerprint, StateError> {
    serde_json::from_slice(bytes)
        .map_err(|e| StateError::corrupt(path, None, format!("fingerprint record: {e}")))
}

/// Every key whose value differs between `stored` (the state's) and `now`, in key order:
/// `(key, value in the state, value now)`, `None` where the key is absent.
pub fn fingerprint_changes(stored: &Fingerprint, now: &Fingerprint) -> Vec<FingerprintChange> {
    let keys: std::collections::BTreeSet<&String> = stored.keys().chain(now.keys()).collect();
    keys.into_iter()
        .filter_map(|key| {
            let (old, new) = (stored.get(key), now.get(key));
            (old != new).then(|| (key.clone(), old.cloned(), new.cloned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> CheckpointMeta {
        CheckpointMeta {
            format: FORMAT_VERSION,
            seq: 3,
            frontier: 1_767_225_600_000,
            written_at_ms: 1_767_225_600_123,
            fingerprint: [("tick".to_owned(), "10ms".to_owned())].into(),
            config_version: "v7".into(),
            sources: vec![
                SourcePosition::Kafka {
                    topic: "transactions".into(),
                    partition: 3,
                    offset: i64::MAX,
                },
                SourcePosition::File {
                    path: "/data/loans.ndjson".into(),
                    offset: u64::MAX,
                    skip: vec![0, 17],
                },
            ],
        }
    }

    #[test]
    fn round_trips() {
        let m = meta();
        assert_eq!(
            CheckpointMeta::decode(Path::new("/s"), &m.encode()).unwrap(),
            m
        );
    }

    #[test]
    fn other_format_is_a_version_error() {
        let mut m = meta();
        m.format = 2;
        let e = CheckpointMeta::decode(Path::new("/s"), &m.encode()).unwrap_err();
        assert!(
            matches!(
                e,
                StateError::Version {
                    found: 2,
                    expected: 1,
                    ..
                }
            ),
            "{e}"
        );
        // A record of another version may have other fields; still a version error.
        let e = CheckpointMeta::decode(Path::new("/s"), br#"{"format":9,"new":1}"#);
        assert!(matches!(e, Err(StateError::Version { found: 9, .. })));
    }

    #[test]
    fn garbage_and_unknown_fields_are_corrupt() {
        for bytes in [
            &b""[..],
            b"{",
            b"[]",
            b"{}",
            br#"{"format":"1"}"#,
            br#"{"format":1}"#,
            br#"{"format":1,"seq":-1,"frontier":0,"written_at_ms":0,"fingerprint":{},"config_version":"","sources":[]}"#,
            br#"{"format":1,"seq":1,"frontier":0,"written_at_ms":0,"fingerprint":{},"config_version":"","sources":[],"x":0}"#,
        ] {
            let e = CheckpointMeta::decode(Path::new("/s"), bytes).unwrap_err();
            assert!(matches!(e, StateError::Corrupt { .. }), "{e}");
            assert!(e.to_string().contains("\"/s\""), "{e}");
        }
    }

    #[test]
    fn changes_are_listed_in_key_order() {
        let old: Fingerprint = [("a", "1"), ("b", "2"), ("c", "3")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .into();
        let new: Fingerprint = [("b", "2"), ("c", "4"), ("d", "5")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .into();
        let s = |v: &str| Some(v.to_owned());
        assert_eq!(
            fingerprint_changes(&old, &new),
            vec![
                ("a".into(), s("1"), None),
                ("c".into(), s("3"), s("4")),
                ("d".into(), None, s("5")),
            ]
        );
        assert!(fingerprint_changes(&old, &old).is_empty());
    }
}
