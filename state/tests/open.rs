//! What `StateDir::open` does with what it finds at the path, per mode: missing, empty,
//! foreign, its own; and that it never wipes what is not its own.

use std::fs;

use riskwatch_state::{Checkpoint, OpenMode, StateDir, StateError, StateStore, Table, MARKER_FILE};

use crate::support::{assert_names, fingerprint, fresh, meta, open, TempDir};

const MODES: [OpenMode; 3] = [
    OpenMode::Existing,
    OpenMode::CreateIfMissing,
    OpenMode::Fresh,
];

fn open_mode(path: &std::path::Path, mode: OpenMode) -> Result<StateDir, StateError> {
    StateDir::open(path, mode, &fingerprint())
}

#[test]
fn missing_dir_with_existing_says_to_init() {
    let tmp = TempDir::new("missing");
    let err = open_mode(tmp.path(), OpenMode::Existing).unwrap_err();
    assert!(
        matches!(&err, StateError::Missing { path } if path == tmp.path()),
        "{err:?}"
    );
    assert_names(&err, tmp.path());
    assert!(err.to_string().contains("--init-state"), "{err}");
    assert!(!tmp.path().exists(), "Existing created the directory");
}

#[test]
fn create_if_missing_creates_then_reopens() {
    let tmp = TempDir::new("create");
    let dir = open_mode(tmp.path(), OpenMode::CreateIfMissing).unwrap();
    assert!(dir.last().is_none());
    assert_eq!(dir.path(), tmp.path());
    assert!(tmp.path().join(MARKER_FILE).is_file());
    drop(dir);
    for mode in [OpenMode::Existing, OpenMode::CreateIfMissing] {
        assert!(open_mode(tmp.path(), mode).unwrap().last().is_none());
    }
}

#[test]
fn empty_dir_needs_init() {
    let tmp = TempDir::new("empty");
    fs::create_dir_all(tmp.path()).unwrap();
    let err = open_mode(tmp.path(), OpenMode::Existing).unwrap_err();
    assert!(matches!(err, StateError::NotStateDir { .. }), "{err:?}");
    assert!(err.to_string().contains("--init-state"), "{err}");
    assert_names(&err, tmp.path());
    assert!(open_mode(tmp.path(), OpenMode::CreateIfMissing).is_ok());
}

#[test]
fn a_file_is_refused_in_every_mode() {
    let tmp = TempDir::new("file");
    fs::write(tmp.path(), b"precious").unwrap();
    for mode in MODES {
        let err = open_mode(tmp.path(), mode).unwrap_err();
        assert!(
            matches!(err, StateError::NotStateDir { .. }),
            "{mode:?}: {err:?}"
        );
        assert_names(&err, tmp.path());
    }
    assert_eq!(fs::read(tmp.path()).unwrap(), b"precious");
    fs::remove_file(tmp.path()).unwrap();
}

#[test]
fn a_dir_with_other_content_is_never_wiped() {
    let tmp = TempDir::new("foreign");
    fs::create_dir_all(tmp.path().join("sub")).unwrap();
    fs::write(tmp.path().join("notes.txt"), b"precious").unwrap();
    for mode in MODES {
        let err = open_mode(tmp.path(), mode).unwrap_err();
        assert!(
            matches!(err, StateError::NotStateDir { .. }),
            "{mode:?}: {err:?}"
        );
        assert!(err.to_string().contains("never deletes"), "{err}");
        assert_names(&err, tmp.path());
    }
    assert_eq!(fs::read(tmp.path().join("notes.txt")).unwrap(), b"precious");
    assert!(tmp.path().join("sub").is_dir());
}

#[test]
fn a_foreign_rocksdb_is_never_wiped() {
    let tmp = TempDir::new("foreign-rocksdb");
    let mut opts = rocksdb::Options::default();
    opts.create_if_missing(true);
    let db = rocksdb::DB::open(&opts, tmp.path()).unwrap();
    db.put(b"theirs", b"precious").unwrap();
    drop(db);
    for mode in MODES {
        let err = open_mode(tmp.path(), mode).unwrap_err();
        assert!(
            matches!(&err, StateError::NotStateDir { detail, .. } if detail.contains("RocksDB")),
            "{err:?}"
        );
    }
    let db = rocksdb::DB::open(&rocksdb::Options::default(), tmp.path()).unwrap();
    assert_eq!(
        db.get(b"theirs").unwrap().as_deref(),
        Some(&b"precious"[..])
    );
}

#[test]
fn fresh_wipes_a_state_dir() {
    let tmp = TempDir::new("fresh");
    let dir = fresh(tmp.path());
    let mut c = Checkpoint::new();
    c.put(Table::Ledger, b"k", b"v");
    dir.commit(c, meta(1)).unwrap();
    drop(dir);
    fs::write(tmp.path().join("stray"), b"left by someone").unwrap();
    let dir = fresh(tmp.path());
    assert!(dir.last().is_none());
    assert_eq!(dir.get(Table::Ledger, b"k").unwrap(), None);
    assert!(!tmp.path().join("stray").exists());
    assert!(tmp.path().join(MARKER_FILE).is_file());
}

#[test]
fn a_second_open_is_refused_while_the_first_is_open() {
    let tmp = TempDir::new("locked");
    let dir = fresh(tmp.path());
    let mut c = Checkpoint::new();
    c.put(Table::Ledger, b"k", b"v");
    dir.commit(c, meta(1)).unwrap();
    for mode in MODES {
        let err = open_mode(tmp.path(), mode).unwrap_err();
        assert!(matches!(err, StateError::Io { .. }), "{mode:?}: {err:?}");
        assert!(
            err.to_string().contains("another riskwatch process"),
            "{err}"
        );
        assert_names(&err, tmp.path());
    }
    // Fresh refused to wipe it: the first handle still reads its data.
    assert_eq!(
        dir.get(Table::Ledger, b"k").unwrap().as_deref(),
        Some(&b"v"[..])
    );
    drop(dir);
    assert_eq!(open(tmp.path()).last().map(|m| m.seq), Some(1));
}

#[test]
fn interrupted_creation_is_finished() {
    // Creation writes the marker first; a crash right after leaves only the marker.
    let tmp = TempDir::new("half-created");
    drop(fresh(tmp.path()));
    for entry in fs::read_dir(tmp.path()).unwrap() {
        let path = entry.unwrap().path();
        if !path.ends_with(MARKER_FILE) {
            fs::remove_file(path).unwrap();
        }
    }
    let dir = open(tmp.path());
    assert!(dir.last().is_none());
}

#[test]
fn interrupted_marker_write_is_an_empty_dir() {
    let tmp = TempDir::new("marker-tmp");
    fs::create_dir_all(tmp.path()).unwrap();
    fs::write(
        tmp.path().join(format!("{MARKER_FILE}.tmp")),
        b"riskwatch st",
    )
    .unwrap();
    let err = open_mode(tmp.path(), OpenMode::Existing).unwrap_err();
    assert!(err.to_string().contains("empty directory"), "{err}");
    assert!(open_mode(tmp.path(), OpenMode::CreateIfMissing)
        .unwrap()
        .last()
        .is_none());
}

#[test]
fn missing_fingerprint_of_an_empty_state_is_restored() {
    // Creation stopped after RocksDB created the database, before the fingerprint record.
    let tmp = TempDir::new("no-fingerprint");
    drop(fresh(tmp.path()));
    let db = crate::support::raw_db(tmp.path());
    db.delete_cf(db.cf_handle("meta").unwrap(), b"fingerprint")
        .unwrap();
    drop(db);
    assert!(open(tmp.path()).last().is_none());
    // The record is back: another fingerprint is refused.
    let other = riskwatch_state::Fingerprint::new();
    let err = StateDir::open(tmp.path(), OpenMode::Existing, &other).unwrap_err();
    assert!(matches!(err, StateError::ConfigChanged { .. }), "{err:?}");
}

#[test]
fn works_as_a_trait_object() {
    let tmp = TempDir::new("dyn");
    let store: Box<dyn StateStore + Send> = Box::new(fresh(tmp.path()));
    let mut c = Checkpoint::new();
    c.put(Table::Outbox, b"a", b"1");
    c.put(Table::Outbox, b"b", b"2");
    let (m, _) = store.commit(c, meta(5)).unwrap();
    assert_eq!(store.last(), Some(m.clone()));
    let mut w = Checkpoint::new();
    w.delete(Table::Outbox, b"a");
    w.put(Table::Delivered, b"a", b"ok");
    store.write(w).unwrap();
    assert_eq!(
        store.get(Table::Delivered, b"a").unwrap().as_deref(),
        Some(&b"ok"[..])
    );
    let outbox: Vec<_> = store
        .scan(Table::Outbox, b"")
        .map(|r| r.unwrap().0)
        .collect();
    assert_eq!(outbox, vec![Box::from(&b"b"[..])]);
    assert_eq!(store.last().map(|m| m.seq), Some(1), "write() moved last()");
}
