//! SIGKILL during commits: a child process commits checkpoints in a loop, the parent kills
//! it at a random moment, reopens, and checks that the state is exactly one checkpoint's.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use riskwatch_state::{keys, Checkpoint, StateDir, Table};

use crate::support::{child_command, child_dir, fresh, meta, open, Rng, TempDir};

/// Keys per table that every checkpoint overwrites.
const K: u64 = 64;
/// The tables those keys are spread over.
const TABLES: [Table; 3] = [Table::Ledger, Table::Windows, Table::Evaluate];

/// The value checkpoint `n` writes to every key: `n`, padded so that checkpoints are big
/// enough for flushes to happen while the child runs.
fn value(n: u64) -> Vec<u8> {
    let mut v = n.to_be_bytes().repeat(32);
    v.extend_from_slice(b"end");
    v
}

/// Checkpoint `n`: every key of [`TABLES`] to `value(n)`, and `dedupe` reduced to the one
/// key `n` by a range delete.
fn checkpoint(n: u64) -> Checkpoint {
    let mut c = Checkpoint::new();
    let v = value(n);
    for table in TABLES {
        for k in 0..K {
            c.put(table, &keys::key_u64((k % 2) as u32, k), &v);
        }
    }
    c.delete_range(
        Table::Dedupe,
        &keys::worker_prefix(0),
        &keys::worker_prefix(1),
    );
    c.put(Table::Dedupe, &keys::key_u64(0, n), &v);
    c
}

/// Asserts that the state holds exactly what checkpoint `last().seq` wrote (or nothing, if
/// there is no checkpoint yet), and returns that seq.
pub fn assert_one_checkpoint(dir: &StateDir) -> u64 {
    let Some(last) = dir.last() else {
        for table in TABLES.into_iter().chain([Table::Dedupe]) {
            assert!(
                dir.scan(table, &[]).next().is_none(),
                "data without a checkpoint"
            );
        }
        return 0;
    };
    let n = last.seq;
    assert_eq!(last.frontier, n * 1000, "meta of checkpoint {n}");
    let want = value(n);
    for table in TABLES {
        let entries: Vec<_> = dir.scan(table, &[]).map(|r| r.expect("scan")).collect();
        assert_eq!(entries.len() as u64, K, "{table:?} after checkpoint {n}");
        for (key, v) in entries {
            let got = u64::from_be_bytes(v[..8].try_into().unwrap());
            assert!(
                *v == *want,
                "{table:?} key {key:?} holds {got}, last checkpoint is {n}"
            );
        }
    }
    let dedupe: Vec<_> = dir.scan(Table::Dedupe, &[]).map(|r| r.unwrap().0).collect();
    assert_eq!(
        dedupe,
        vec![Box::from(keys::key_u64(0, n))],
        "dedupe after {n}"
    );
    n
}

/// The child: commits checkpoints forever (until killed), printing each seq once durable.
#[test]
fn child_commit_loop() {
    let Some(path) = child_dir("commit-loop") else {
        return;
    };
    let dir = open(&path);
    loop {
        let n = dir.last().map_or(1, |m| m.seq + 1);
        let (written, _) = dir.commit(checkpoint(n), meta(n * 1000)).expect("commit");
        assert_eq!(written.seq, n);
        println!("committed {n}");
        if n.is_multiple_of(25) {
            dir.flush().expect("flush");
        }
    }
}

/// Spawns `test` as a child with its stdout lines forwarded to the returned channel.
pub fn spawn_reading(
    test: &str,
    role: &str,
    path: &std::path::Path,
) -> (Child, mpsc::Receiver<String>) {
    let mut child = child_command(test, role, path)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the child");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

#[test]
fn reopen_after_sigkill_holds_exactly_the_last_checkpoint() {
    let tmp = TempDir::new("kill");
    drop(fresh(tmp.path()));
    let mut rng = Rng::from_clock("reopen_after_sigkill");
    let mut previous = 0;
    for round in 0..6 {
        let (mut child, lines) =
            spawn_reading("kill::child_commit_loop", "commit-loop", tmp.path());
        // Wait until the child is committing, then let it run for a random while.
        let mut acknowledged: u64 = loop {
            let line = lines
                .recv_timeout(Duration::from_secs(60))
                .expect("the child commits within a minute");
            if let Some(n) = line.strip_prefix("committed ") {
                break n.parse().expect("a seq");
            }
        };
        std::thread::sleep(Duration::from_millis(20 + rng.below(400) as u64));
        child.kill().expect("SIGKILL the child");
        let status = child.wait().expect("reap the child");
        assert!(
            !status.success(),
            "the child was killed, not finished: {status}"
        );
        for line in lines.iter() {
            if let Some(n) = line.strip_prefix("committed ") {
                acknowledged = n.parse().expect("a seq");
            }
        }
        let dir = open(tmp.path());
        let seq = assert_one_checkpoint(&dir);
        eprintln!("round {round}: acknowledged {acknowledged}, recovered {seq}");
        assert!(
            seq >= acknowledged,
            "an acknowledged (synced) checkpoint was lost"
        );
        assert!(seq <= acknowledged + 1, "recovered {seq}, never written");
        assert!(seq > previous, "round {round} made no progress");
        previous = seq;
    }
}
