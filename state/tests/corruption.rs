//! Damaged state directories: each kind of damage gives [`StateError::Corrupt`] naming the
//! directory (and the file, where one is to blame), never a panic and never a silent open.

use std::fs;
use std::path::{Path, PathBuf};

use riskwatch_state::{keys, Checkpoint, OpenMode, StateDir, StateError, Table, MARKER_FILE};

use crate::support::{assert_names, fingerprint, fresh, meta, open, raw_db, sst_files, TempDir};

/// A closed state directory with two checkpoints, flushed to SST files if `flush`.
fn populated(name: &str, flush: bool) -> TempDir {
    let tmp = TempDir::new(name);
    let dir = fresh(tmp.path());
    for n in 1..=2u64 {
        let mut c = Checkpoint::new();
        for k in 0..500 {
            let value = format!("value {n} of key {k} with some padding to fill a block");
            c.put(Table::Ledger, &keys::key_u64(0, k), value.as_bytes());
        }
        dir.commit(c, meta(n)).expect("commit");
    }
    if flush {
        dir.flush().expect("flush");
    }
    drop(dir);
    tmp
}

/// Opens `path` expecting `Corrupt`; checks the message names the directory, says what to
/// do, and (if given) blames `file`.
fn expect_corrupt(path: &Path, file: Option<&Path>) -> String {
    let err = StateDir::open(path, OpenMode::Existing, &fingerprint()).unwrap_err();
    let StateError::Corrupt {
        file: blamed,
        detail,
        ..
    } = &err
    else {
        panic!("not Corrupt: {err:?}");
    };
    assert_names(&err, path);
    let text = err.to_string();
    eprintln!("{text}");
    assert!(
        text.contains("--init-state") && text.contains("move the directory away"),
        "{text}"
    );
    if let Some(file) = file {
        assert_eq!(blamed.as_deref(), Some(file), "{text}");
        assert!(text.contains(&file.display().to_string()), "{text}");
    }
    // The way out the message names works: Fresh rebuilds the directory, empty.
    let rebuilt = StateDir::open(path, OpenMode::Fresh, &fingerprint())
        .unwrap_or_else(|e| panic!("Fresh on the damaged directory: {e}"));
    assert!(rebuilt.last().is_none());
    assert!(rebuilt.scan(Table::Ledger, &[]).next().is_none());
    detail.clone()
}

fn manifest(dir: &Path) -> PathBuf {
    let name = fs::read_to_string(dir.join("CURRENT")).unwrap();
    dir.join(name.trim_end())
}

fn table_sst(dir: &Path, cf: &str) -> PathBuf {
    let files = sst_files(dir);
    let (_, path) = files
        .iter()
        .find(|(name, _)| name == cf)
        .unwrap_or_else(|| panic!("no SST of {cf:?} in {files:?}"));
    path.clone()
}

#[test]
fn garbage_in_current() {
    let tmp = populated("current-garbage", false);
    let current = tmp.path().join("CURRENT");
    for garbage in [
        &b"garbage\n"[..],
        b"",
        b"MANIFEST-000005",
        b"\xff\xfe\x00",
        b"MANIFEST-\n",
    ] {
        fs::write(&current, garbage).unwrap();
        expect_corrupt(tmp.path(), Some(&current));
    }
}

#[test]
fn current_names_another_manifest() {
    let tmp = populated("current-other", false);
    fs::write(tmp.path().join("CURRENT"), "MANIFEST-999999\n").unwrap();
    expect_corrupt(tmp.path(), Some(&tmp.path().join("MANIFEST-999999")));
}

#[test]
fn manifest_removed() {
    let tmp = populated("manifest-removed", false);
    let manifest = manifest(tmp.path());
    fs::remove_file(&manifest).unwrap();
    expect_corrupt(tmp.path(), Some(&manifest));
}

#[test]
fn manifest_garbled() {
    let tmp = populated("manifest-garbled", false);
    let manifest = manifest(tmp.path());
    let len = fs::metadata(&manifest).unwrap().len();
    fs::write(&manifest, vec![0x5A; len as usize]).unwrap();
    expect_corrupt(tmp.path(), Some(&manifest));
}

#[test]
fn current_removed() {
    let tmp = populated("current-removed", true);
    let current = tmp.path().join("CURRENT");
    fs::remove_file(&current).unwrap();
    expect_corrupt(tmp.path(), Some(&current));
}

#[test]
fn sst_truncated() {
    let tmp = populated("sst-truncated", true);
    let sst = table_sst(tmp.path(), "ledger");
    let len = fs::metadata(&sst).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&sst)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    expect_corrupt(tmp.path(), Some(&sst));
}

#[test]
fn sst_removed() {
    let tmp = populated("sst-removed", true);
    let sst = table_sst(tmp.path(), "ledger");
    fs::remove_file(&sst).unwrap();
    expect_corrupt(tmp.path(), Some(&sst));
}

/// Flips bytes at the start of `file`, inside its first data block.
fn flip_first_block(file: &Path) {
    let mut bytes = fs::read(file).unwrap();
    for b in &mut bytes[16..24] {
        *b ^= 0xA5;
    }
    fs::write(file, bytes).unwrap();
}

#[test]
fn sst_bit_flip_in_meta_fails_the_open() {
    let tmp = populated("sst-flip-meta", true);
    let sst = table_sst(tmp.path(), "meta");
    flip_first_block(&sst);
    let detail = expect_corrupt(tmp.path(), Some(&sst));
    assert!(detail.contains("checksum"), "{detail}");
}

#[test]
fn sst_bit_flip_in_a_table_is_found_by_reads_and_verify() {
    let tmp = populated("sst-flip-table", true);
    let sst = table_sst(tmp.path(), "ledger");
    flip_first_block(&sst);
    // The open reads only the meta column family and each SST's footer and index, so it
    // may succeed; every read of the damaged block, and `verify`, must fail.
    let dir = open(tmp.path());
    let err = dir.verify().unwrap_err();
    assert!(
        matches!(&err, StateError::Corrupt { file: Some(f), .. } if *f == sst),
        "{err:?}"
    );
    assert_names(&err, tmp.path());
    let scanned: Result<Vec<_>, _> = dir.scan(Table::Ledger, &[]).collect();
    assert!(
        matches!(scanned, Err(StateError::Corrupt { .. })),
        "{scanned:?}"
    );
    let got = dir.get(Table::Ledger, &keys::key_u64(0, 0));
    assert!(matches!(got, Err(StateError::Corrupt { .. })), "{got:?}");
}

#[test]
fn meta_record_undecodable() {
    let tmp = populated("meta-undecodable", false);
    let db = raw_db(tmp.path());
    let cf = db.cf_handle("meta").unwrap();
    db.put_cf(cf, b"last", b"{\"format\":1,\"seq\":").unwrap();
    drop(db);
    let detail = expect_corrupt(tmp.path(), None);
    assert!(detail.contains("checkpoint meta record"), "{detail}");
}

#[test]
fn fingerprint_record_undecodable() {
    let tmp = populated("fingerprint-undecodable", false);
    let db = raw_db(tmp.path());
    db.put_cf(db.cf_handle("meta").unwrap(), b"fingerprint", b"[1,2]")
        .unwrap();
    drop(db);
    let detail = expect_corrupt(tmp.path(), None);
    assert!(detail.contains("fingerprint record"), "{detail}");
}

#[test]
fn fingerprint_record_missing_with_data() {
    let tmp = populated("fingerprint-missing", false);
    let db = raw_db(tmp.path());
    db.delete_cf(db.cf_handle("meta").unwrap(), b"fingerprint")
        .unwrap();
    drop(db);
    expect_corrupt(tmp.path(), None);
}

#[test]
fn column_family_missing() {
    let tmp = populated("cf-missing", false);
    let mut db = raw_db(tmp.path());
    db.drop_cf("outbox").unwrap();
    drop(db);
    let detail = expect_corrupt(tmp.path(), Some(&manifest(tmp.path())));
    assert!(detail.contains("\"outbox\""), "{detail}");
}

#[test]
fn marker_garbled() {
    let tmp = populated("marker-garbled", false);
    let marker = tmp.path().join(MARKER_FILE);
    fs::write(&marker, "not a marker\n").unwrap();
    expect_corrupt(tmp.path(), Some(&marker));
    // Fresh still recognises the directory as riskwatch's and rebuilds it.
    let dir = StateDir::open(tmp.path(), OpenMode::Fresh, &fingerprint()).unwrap();
    assert!(dir.last().is_none());
}

#[test]
fn torn_wal_tail_recovers_the_previous_checkpoint() {
    // A crash in the middle of appending checkpoint 2 to the WAL leaves a torn last record:
    // recovery stops before it, so the state is checkpoint 1's, whole.
    let tmp = populated("wal-torn", false);
    let wal = fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .max_by_key(|p| fs::metadata(p).unwrap().len())
        .expect("a WAL file");
    let len = fs::metadata(&wal).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&wal)
        .unwrap()
        .set_len(len - 100)
        .unwrap();
    let dir = open(tmp.path());
    assert_eq!(dir.last().map(|m| m.seq), Some(1));
    for item in dir.scan(Table::Ledger, &[]) {
        let (_, v) = item.unwrap();
        assert!(
            v.starts_with(b"value 1 "),
            "{:?}",
            String::from_utf8_lossy(&v)
        );
    }
}
