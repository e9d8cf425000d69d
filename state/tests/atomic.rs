//! A checkpoint is all or nothing: its keys and its meta become visible together, in this
//! process and after a reopen, and a commit killed half-way leaves none of it.

use std::time::Duration;

use riskwatch_state::{keys, Checkpoint, StateDir, Table};

use crate::kill::spawn_reading;
use crate::support::{child_dir, fresh, meta, open, Rng, TempDir};

/// Keys of the big checkpoint: enough that writing and syncing it takes a while.
const N: u64 = 100_000;

fn big_checkpoint(tag: u8) -> Checkpoint {
    let mut c = Checkpoint::new();
    let value = [tag; 40];
    for k in 0..N {
        let table = [Table::Ledger, Table::Windows, Table::Outbox][(k % 3) as usize];
        c.put(table, &keys::key_u64((k % 4) as u32, k), &value);
    }
    c
}

/// Counts the big checkpoint's keys holding `tag`, and all its keys.
fn count(dir: &StateDir, tag: u8) -> (u64, u64) {
    let (mut tagged, mut all) = (0, 0);
    for table in [Table::Ledger, Table::Windows, Table::Outbox] {
        for item in dir.scan(table, &[]) {
            let (_, v) = item.expect("scan");
            all += 1;
            tagged += u64::from(v[0] == tag);
        }
    }
    (tagged, all)
}

#[test]
fn checkpoint_of_many_keys_is_visible_whole_after_reopen() {
    let tmp = TempDir::new("atomic");
    let dir = fresh(tmp.path());
    let batch = big_checkpoint(1);
    let ops = batch.len() as u64;
    let (m, stats) = dir.commit(batch, meta(1000)).expect("commit");
    assert_eq!((m.seq, stats.keys), (1, ops));
    assert!(stats.bytes > N * 40, "{stats:?}");
    assert_eq!(count(&dir, 1), (N, N));
    drop(dir);
    let dir = open(tmp.path());
    assert_eq!(dir.last().map(|m| m.seq), Some(1));
    assert_eq!(count(&dir, 1), (N, N));
}

/// The child: commits a small checkpoint 1, builds the big one, announces it, commits it
/// and reports how long that took.
#[test]
fn child_big_commit() {
    let Some(path) = child_dir("big-commit") else {
        return;
    };
    let dir = open(&path);
    let mut small = Checkpoint::new();
    small.put(Table::Sources, b"small", b"1");
    dir.commit(small, meta(1)).expect("commit 1");
    let big = big_checkpoint(2);
    println!("starting {}", wal_bytes(&path));
    let (_, stats) = dir.commit(big, meta(2)).expect("commit 2");
    println!("done {}", stats.duration.as_micros());
    std::thread::sleep(Duration::from_secs(60));
}

/// Bytes of the WAL files in `dir`.
fn wal_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .expect("list the state directory")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
        .sum()
}

/// How a killed round ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Killed before the batch reached the WAL: checkpoint 1.
    Before,
    /// Killed while the batch was being appended: part of it in the WAL, checkpoint 1.
    Torn,
    /// Killed after the batch reached the WAL: checkpoint 2, whole.
    After,
}

/// Kills the child at `delay` after it announced the big commit (or, with `None`, after
/// it finished) and returns how it ended and, for `None`, the commit's duration.
fn run_child(delay: Option<Duration>) -> (Outcome, Option<u64>) {
    let tmp = TempDir::new("atomic-kill");
    drop(fresh(tmp.path()));
    let (mut child, lines) = spawn_reading("atomic::child_big_commit", "big-commit", tmp.path());
    let next = || {
        lines
            .recv_timeout(Duration::from_secs(60))
            .expect("the child reports")
    };
    let wal_before: u64 = loop {
        if let Some(bytes) = next().strip_prefix("starting ") {
            break bytes.parse().expect("WAL bytes");
        }
    };
    let took = match delay {
        Some(delay) => {
            std::thread::sleep(delay);
            None
        }
        None => next().strip_prefix("done ").and_then(|us| us.parse().ok()),
    };
    child.kill().expect("SIGKILL the child");
    child.wait().expect("reap the child");
    let wal_at_kill = wal_bytes(tmp.path());
    let dir = open(tmp.path());
    let seq = dir
        .last()
        .map(|m| m.seq)
        .expect("checkpoint 1 was acknowledged");
    let (tagged, keys) = count(&dir, 2);
    match seq {
        1 => assert_eq!(
            keys, 0,
            "killed after {delay:?}: checkpoint 2 partly visible"
        ),
        2 => assert_eq!(
            (tagged, keys),
            (N, N),
            "killed after {delay:?}: checkpoint 2 incomplete"
        ),
        _ => panic!("checkpoint {seq}"),
    }
    assert_eq!(
        dir.get(Table::Sources, b"small").unwrap().as_deref(),
        Some(&b"1"[..])
    );
    let outcome = match seq {
        2 => Outcome::After,
        _ if wal_at_kill > wal_before => Outcome::Torn,
        _ => Outcome::Before,
    };
    (outcome, took)
}

#[test]
fn commit_killed_midway_leaves_all_or_nothing() {
    // How long the big commit takes here, then kills spread over that time.
    let (outcome, took) = run_child(None);
    assert_eq!(outcome, Outcome::After);
    let took = took.expect("the child reports the commit's duration");
    // The WAL append comes early in a commit (then the memtable inserts), so delays are
    // spread log-uniformly over the commit's duration to land in it now and then.
    let mut rng = Rng::from_clock("commit_killed_midway");
    let mut outcomes = Vec::new();
    for _ in 0..8 {
        let span = (took + took / 4) >> rng.below(8);
        let delay = Duration::from_micros(rng.next_u64() % (span + 1));
        outcomes.push((delay, run_child(Some(delay)).0));
    }
    eprintln!("commit_killed_midway: the commit takes {took} us; killed after: {outcomes:?}");
}
