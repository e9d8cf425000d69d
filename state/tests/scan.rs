//! Reads: `scan` order and prefix bounds over the `keys` layout, `delete_range`, `write`,
//! `size_on_disk`, `verify`. Checked against a `BTreeMap` oracle.

use std::collections::BTreeMap;

use riskwatch_state::{keys, Checkpoint, StateDir, Table};

use crate::support::{fresh, meta, open, Rng, TempDir};

type Oracle = BTreeMap<Vec<u8>, Vec<u8>>;

fn scan(dir: &StateDir, table: Table, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    dir.scan(table, prefix)
        .map(|r| r.map(|(k, v)| (k.into_vec(), v.into_vec())).expect("scan"))
        .collect()
}

fn expected(oracle: &Oracle, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    oracle
        .iter()
        .filter(|(k, _)| k.starts_with(prefix))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

const WORKERS: [u32; 5] = [0, 1, 2, 0xFF, u32::MAX];

#[test]
fn scan_returns_one_prefix_in_numeric_order() {
    let tmp = TempDir::new("scan");
    let mut dir = fresh(tmp.path());
    let mut rng = Rng::new(7);
    let mut oracle = Oracle::new();
    let mut c = Checkpoint::new();
    let edge = [0, 1, 0xFF, 0x100, u64::MAX - 1, u64::MAX];
    for i in 0..3000 {
        let w = *rng.pick(&WORKERS);
        let k = if i % 10 == 0 {
            *rng.pick(&edge)
        } else {
            rng.next_u64()
        };
        let key = if i % 2 == 0 {
            keys::key_u64(w, k).to_vec()
        } else {
            keys::key_u64_u64(w, k, rng.next_u64() % 3).to_vec()
        };
        let value = i.to_string().into_bytes();
        c.put(Table::Windows, &key, &value);
        oracle.insert(key, value);
    }
    // Another table with the same keys must not leak into the scans.
    c.put(Table::Ledger, &keys::key_u64(1, 5), b"other table");
    dir.commit(c, meta(1)).unwrap();
    for reopen in [false, true] {
        if reopen {
            dir.flush().unwrap();
            drop(dir);
            dir = open(tmp.path());
        }
        for w in WORKERS {
            let got = scan(&dir, Table::Windows, &keys::worker_prefix(w));
            assert_eq!(
                got,
                expected(&oracle, &keys::worker_prefix(w)),
                "worker {w:#x}"
            );
            assert!(!got.is_empty());
            // Numeric order of the 12-byte keys' u64 (the 20-byte ones share it).
            let ks: Vec<u64> = got
                .iter()
                .map(|(k, _)| u64::from_be_bytes(k[4..12].try_into().unwrap()))
                .collect();
            assert!(
                ks.windows(2).all(|p| p[0] <= p[1]),
                "worker {w:#x} out of order"
            );
        }
        assert_eq!(scan(&dir, Table::Windows, &[]), expected(&oracle, &[]));
        // Prefixes ending in 0xFF (no simple successor) and longer than the worker.
        for prefix in [
            &[0xFF, 0xFF, 0xFF, 0xFF][..],
            &[0, 0, 0, 0xFF],
            &[0, 0, 0, 1, 0xFF],
            &[0xFF],
        ] {
            assert_eq!(
                scan(&dir, Table::Windows, prefix),
                expected(&oracle, prefix),
                "{prefix:?}"
            );
        }
        assert!(scan(&dir, Table::Windows, &keys::worker_prefix(3)).is_empty());
        assert!(scan(&dir, Table::Dedupe, &[]).is_empty());
    }
}

#[test]
fn delete_range_removes_exactly_the_half_open_range() {
    let tmp = TempDir::new("delete-range");
    let mut dir = fresh(tmp.path());
    let mut c = Checkpoint::new();
    for w in [0, 1, 2] {
        for k in 0..100u64 {
            c.put(Table::Dedupe, &keys::key_u64(w, k), &k.to_be_bytes());
        }
    }
    dir.commit(c, meta(1)).unwrap();

    let mut c = Checkpoint::new();
    c.delete_range(Table::Dedupe, &keys::key_u64(1, 10), &keys::key_u64(1, 20));
    // A whole worker, then one of its keys written back in the same batch (order counts).
    c.delete_range(
        Table::Dedupe,
        &keys::worker_prefix(2),
        &keys::worker_prefix(3),
    );
    c.put(Table::Dedupe, &keys::key_u64(2, 50), b"back");
    c.delete(Table::Dedupe, &keys::key_u64(0, 0));
    // Inverted and empty ranges delete nothing.
    c.delete_range(Table::Dedupe, &keys::key_u64(0, 90), &keys::key_u64(0, 80));
    c.delete_range(Table::Dedupe, &keys::key_u64(0, 5), &keys::key_u64(0, 5));
    dir.commit(c, meta(2)).unwrap();

    for reopen in [false, true] {
        if reopen {
            drop(dir);
            dir = open(tmp.path());
        }
        let ks = |w| -> Vec<u64> {
            scan(&dir, Table::Dedupe, &keys::worker_prefix(w))
                .iter()
                .map(|(k, _)| keys::parse_u64(k).unwrap().1)
                .collect()
        };
        assert_eq!(ks(0), (1..100).collect::<Vec<_>>());
        assert_eq!(ks(1), (0..10).chain(20..100).collect::<Vec<_>>());
        assert_eq!(ks(2), vec![50]);
        let back = dir.get(Table::Dedupe, &keys::key_u64(2, 50)).unwrap();
        assert_eq!(back.as_deref(), Some(&b"back"[..]));
    }
}

#[test]
fn write_leaves_the_checkpoint_alone() {
    let tmp = TempDir::new("write");
    let dir = fresh(tmp.path());
    dir.commit(Checkpoint::new(), meta(1)).unwrap();
    let mut w = Checkpoint::new();
    w.put(Table::DeadLetters, b"d1", b"gave up");
    dir.write(w).unwrap();
    dir.write(Checkpoint::new()).unwrap();
    assert_eq!(dir.last().map(|m| m.seq), Some(1));
    drop(dir);
    let dir = open(tmp.path());
    assert_eq!(dir.last().map(|m| (m.seq, m.frontier)), Some((1, 1)));
    assert_eq!(
        dir.get(Table::DeadLetters, b"d1").unwrap().as_deref(),
        Some(&b"gave up"[..])
    );
}

#[test]
fn size_on_disk_and_verify_count_the_state() {
    let tmp = TempDir::new("size");
    let dir = fresh(tmp.path());
    let empty = dir.size_on_disk();
    let mut c = Checkpoint::new();
    let mut rng = Rng::new(3);
    for k in 0..2000u64 {
        // Incompressible values, so the SST size reflects them.
        let value: Vec<u8> = (0..16).flat_map(|_| rng.next_u64().to_le_bytes()).collect();
        c.put(Table::Evaluate, &keys::key_u64(0, k), &value);
    }
    let payload = c.bytes();
    dir.commit(c, meta(1)).unwrap();
    let in_wal = dir.size_on_disk();
    assert!(
        in_wal >= empty + payload,
        "{empty} -> {in_wal} for {payload} bytes"
    );
    dir.flush().unwrap();
    // Keys are prefix-compressed in SST blocks; the random values are not compressible.
    let values = 2000 * 128;
    let in_sst = dir.size_on_disk();
    assert!(
        in_sst >= values,
        "{in_sst} after flush for {values} bytes of values"
    );
    // 2000 entries plus the two meta records.
    assert_eq!(dir.verify().unwrap(), 2002);
}
