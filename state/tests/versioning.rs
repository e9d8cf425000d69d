//! Format versions and fingerprints: a directory of another version, or built under another
//! configuration, is refused with what differs; the store owns seq, format and fingerprint.

use std::fs;

use riskwatch_state::{
    Checkpoint, CheckpointMeta, Fingerprint, OpenMode, StateDir, StateError, Table, FORMAT_VERSION,
    MARKER_FILE,
};

use crate::support::{assert_names, fingerprint, fresh, meta, open, raw_db, TempDir};

fn committed(name: &str) -> TempDir {
    let tmp = TempDir::new(name);
    let dir = fresh(tmp.path());
    let mut c = Checkpoint::new();
    c.put(Table::Ledger, b"k", b"v");
    dir.commit(c, meta(1)).unwrap();
    tmp
}

#[test]
fn marker_of_another_version_is_refused() {
    let tmp = committed("marker-version");
    fs::write(
        tmp.path().join(MARKER_FILE),
        "riskwatch state directory\nformat 2\n",
    )
    .unwrap();
    for mode in [OpenMode::Existing, OpenMode::CreateIfMissing] {
        let err = StateDir::open(tmp.path(), mode, &fingerprint()).unwrap_err();
        assert!(
            matches!(
                err,
                StateError::Version {
                    found: 2,
                    expected: FORMAT_VERSION,
                    ..
                }
            ),
            "{err:?}"
        );
        assert_names(&err, tmp.path());
        assert!(err.to_string().contains("--init-state"), "{err}");
    }
    // Fresh is the way out: it rebuilds the directory in the current format.
    let dir = fresh(tmp.path());
    assert!(dir.last().is_none());
    drop(dir);
    assert!(open(tmp.path()).last().is_none());
}

#[test]
fn meta_record_of_another_version_is_refused() {
    let tmp = committed("meta-version");
    let db = raw_db(tmp.path());
    let cf = db.cf_handle("meta").unwrap();
    let mut record: serde_json::Value =
        serde_json::from_slice(&db.get_cf(cf, b"last").unwrap().unwrap()).unwrap();
    record["format"] = 7.into();
    record["added_in_v7"] = true.into();
    db.put_cf(cf, b"last", serde_json::to_vec(&record).unwrap())
        .unwrap();
    drop(db);
    let err = StateDir::open(tmp.path(), OpenMode::Existing, &fingerprint()).unwrap_err();
    assert!(
        matches!(
            err,
            StateError::Version {
                found: 7,
                expected: 1,
                ..
            }
        ),
        "{err:?}"
    );
    assert_names(&err, tmp.path());
}

#[test]
fn fingerprint_change_is_refused_with_every_change() {
    let tmp = committed("fingerprint");
    let mut now = fingerprint();
    now.insert("tick".into(), "20ms".into());
    now.remove("window.30d");
    now.insert("window.7d".into(), "7d/1h".into());
    let err = StateDir::open(tmp.path(), OpenMode::Existing, &now).unwrap_err();
    let StateError::ConfigChanged { changes, .. } = &err else {
        panic!("not ConfigChanged: {err:?}");
    };
    let s = |v: &str| Some(v.to_owned());
    assert_eq!(
        changes,
        &vec![
            ("tick".to_owned(), s("10ms"), s("20ms")),
            ("window.30d".to_owned(), s("30d/90m"), None),
            ("window.7d".to_owned(), None, s("7d/1h")),
        ]
    );
    let text = err.to_string();
    assert_names(&err, tmp.path());
    for line in [
        "tick: \"10ms\" -> \"20ms\"",
        "window.30d: \"30d/90m\" -> (absent)",
        "window.7d: (absent) -> \"7d/1h\"",
        "--init-state",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    // Refusing changed nothing: the old config still opens it, CreateIfMissing refuses too.
    let err = StateDir::open(tmp.path(), OpenMode::CreateIfMissing, &now).unwrap_err();
    assert!(matches!(err, StateError::ConfigChanged { .. }), "{err:?}");
    assert_eq!(open(tmp.path()).last().map(|m| m.seq), Some(1));
}

#[test]
fn fingerprint_is_checked_before_the_first_checkpoint() {
    let tmp = TempDir::new("fingerprint-empty");
    drop(fresh(tmp.path()));
    let err = StateDir::open(tmp.path(), OpenMode::Existing, &Fingerprint::new()).unwrap_err();
    let StateError::ConfigChanged { changes, .. } = &err else {
        panic!("not ConfigChanged: {err:?}");
    };
    assert_eq!(changes.len(), 3, "{err}");
}

#[test]
fn commit_sets_seq_format_and_fingerprint() {
    let tmp = TempDir::new("commit-meta");
    let dir = fresh(tmp.path());
    let mut written = Vec::new();
    for n in 1..=3u64 {
        let given = CheckpointMeta {
            format: 99,
            seq: 1000,
            fingerprint: [("bogus".to_owned(), "x".to_owned())].into(),
            ..meta(n * 10)
        };
        let (m, _) = dir.commit(Checkpoint::new(), given.clone()).unwrap();
        assert_eq!((m.seq, m.format), (n, FORMAT_VERSION));
        assert_eq!(m.fingerprint, fingerprint());
        assert_eq!((m.frontier, &m.sources), (given.frontier, &given.sources));
        assert_eq!(dir.last(), Some(m.clone()));
        written.push(m);
    }
    drop(dir);
    assert_eq!(open(tmp.path()).last(), written.last().cloned());
}
