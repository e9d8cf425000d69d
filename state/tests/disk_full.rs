//! Disk full during a commit: a child commits under a file-size limit (`ulimit -f`, with
//! `SIGXFSZ` ignored so that writes past it fail with `EFBIG`, as `ENOSPC` would) until a
//! commit fails; the commit must return an error naming the directory, and a reopen without
//! the limit must find the previous checkpoint intact and none of the failed one.

use std::process::{Command, Stdio};

use riskwatch_state::{keys, Checkpoint, StateDir, StateError, Table};

use crate::support::{child_args, child_dir, fresh, meta, open, TempDir};

/// Keys every checkpoint overwrites, and their size: 256 KiB per checkpoint.
const K: u64 = 16;
const VALUE_BYTES: usize = 16 * 1024;
/// The limit, in `ulimit -f` blocks of 1 KiB: 2 MiB per file.
const LIMIT_KIB: u32 = 2048;

/// Checkpoint `n`: every key of `ledger` to `n` (padded), plus a key of its own in
/// `sources`.
fn checkpoint(n: u64) -> Checkpoint {
    let mut c = Checkpoint::new();
    let mut v = n.to_be_bytes().to_vec();
    v.resize(VALUE_BYTES, (n % 251) as u8);
    for k in 0..K {
        c.put(Table::Ledger, &keys::key_u64(0, k), &v);
    }
    c.put(
        Table::Sources,
        &keys::key_u64(1, n),
        b"only this checkpoint",
    );
    c
}

fn assert_holds(dir: &StateDir, n: u64) {
    assert_eq!(dir.last().map(|m| m.seq), Some(n));
    for k in 0..K {
        let v = dir
            .get(Table::Ledger, &keys::key_u64(0, k))
            .unwrap()
            .expect("key");
        assert_eq!(u64::from_be_bytes(v[..8].try_into().unwrap()), n, "key {k}");
    }
    let own: Vec<u64> = dir
        .scan(Table::Sources, &keys::worker_prefix(1))
        .map(|r| keys::parse_u64(&r.unwrap().0).unwrap().1)
        .collect();
    assert_eq!(
        own,
        (1..=n).collect::<Vec<_>>(),
        "the checkpoints' own keys"
    );
}

/// The child: commits until a commit fails, then reports the last good seq and the error.
#[test]
fn child_commit_until_full() {
    let Some(path) = child_dir("disk-full") else {
        return;
    };
    let mut dir = open(&path);
    for _ in 0..10_000 {
        let before = dir.last().cloned();
        let n = before.as_ref().map_or(1, |m| m.seq + 1);
        match dir.commit(checkpoint(n), meta(n)) {
            Ok(_) => println!("committed {n}"),
            Err(e) => {
                assert_eq!(dir.last(), before.as_ref(), "a failed commit moved last()");
                let kind = match &e {
                    StateError::Io { op, .. } => format!("io {op}"),
                    other => format!("other {other:?}"),
                };
                println!("failed {n} {kind}");
                println!("message {e}");
                return;
            }
        }
    }
    println!("never failed");
}

#[test]
fn disk_full_during_commit_keeps_the_previous_checkpoint() {
    let tmp = TempDir::new("disk-full");
    let mut dir = fresh(tmp.path());
    dir.commit(checkpoint(1), meta(1)).expect("commit 1");
    drop(dir);

    let exe = std::env::current_exe().expect("the test binary's path");
    let mut cmd = Command::new("bash");
    cmd.arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -f {LIMIT_KIB} && exec \"$0\" \"$@\""
        ))
        .arg(exe);
    child_args(
        &mut cmd,
        "disk_full::child_commit_until_full",
        "disk-full",
        tmp.path(),
    );
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .expect("run the child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {}\n{stdout}",
        out.status
    );
    assert!(
        !stdout.contains("never failed"),
        "the file-size limit did not apply:\n{stdout}"
    );
    let failed = stdout
        .lines()
        .find_map(|l| l.strip_prefix("failed "))
        .unwrap_or_else(|| panic!("no failure reported:\n{stdout}"));
    let message = stdout
        .lines()
        .find_map(|l| l.strip_prefix("message "))
        .unwrap_or("");
    eprintln!("disk full: failed {failed}: {message}");
    let mut words = failed.split(' ');
    let n: u64 = words.next().and_then(|w| w.parse().ok()).expect("a seq");
    assert!(n > 2, "the limit hit before two checkpoints fit: {stdout}");
    assert_eq!(words.next(), Some("io"), "not an Io error: {failed}");
    assert!(
        message.contains(&tmp.path().display().to_string()),
        "{message}"
    );

    // Without the limit: the previous checkpoint, whole, and nothing of the failed one.
    let mut dir = open(tmp.path());
    assert_holds(&dir, n - 1);
    dir.commit(checkpoint(n), meta(n))
        .expect("commit once there is room");
    drop(dir);
    assert_holds(&open(tmp.path()), n);
}
