//! Disk full during a commit: a child commits until a commit fails; the commit must return
//! an error naming the directory, and a reopen once there is room must find the previous
//! checkpoint intact and none of the failed one. Two ways to fill the disk:
//! - a file-size limit (`ulimit -f`, with `SIGXFSZ` ignored so that writes past it fail with
//!   `EFBIG`), which works everywhere;
//! - a real `ENOSPC` on a small tmpfs mounted in a private mount namespace (`unshare -rm`),
//!   skipped where namespaces or tmpfs mounts are not allowed.

use std::fs;
use std::process::{Command, Stdio};

use riskwatch_state::{keys, Checkpoint, StateDir, StateError, Table};

use crate::support::{child_args, child_dir, fresh, meta, open, TempDir, CHILD_DIR_ENV};

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
    let dir = open(&path);
    for _ in 0..10_000 {
        let before = dir.last();
        let n = before.as_ref().map_or(1, |m| m.seq + 1);
        match dir.commit(checkpoint(n), meta(n)) {
            Ok(_) => println!("committed {n}"),
            Err(e) => {
                assert_eq!(dir.last(), before.clone(), "a failed commit moved last()");
                let kind = match &e {
                    StateError::Io { op, .. } => format!("io {op}"),
                    other => format!("other {other:?}"),
                };
                println!("failed {n} {kind}");
                println!("message {e}");
                // RocksDB stops writes after a failed WAL write until the DB is reopened.
                match dir.commit(checkpoint(n), meta(n)) {
                    Ok(_) => println!("retry ok"),
                    Err(e) => println!("retry failed {e}"),
                }
                assert_eq!(dir.last(), before.clone(), "a failed retry moved last()");
                return;
            }
        }
    }
    println!("never failed");
}

#[test]
fn disk_full_during_commit_keeps_the_previous_checkpoint() {
    let tmp = TempDir::new("disk-full");
    let dir = fresh(tmp.path());
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
    let retry = stdout
        .lines()
        .find(|l| l.starts_with("retry "))
        .unwrap_or("");
    eprintln!("disk full: {retry}");
    assert!(
        retry.starts_with("retry failed"),
        "a write after the failure: {retry:?}"
    );
    let mut words = failed.split(' ');
    let n: u64 = words.next().and_then(|w| w.parse().ok()).expect("a seq");
    assert!(n > 2, "the limit hit before two checkpoints fit: {stdout}");
    assert_eq!(words.next(), Some("io"), "not an Io error: {failed}");
    assert!(
        message.contains(&tmp.path().display().to_string()),
        "{message}"
    );

    // Without the limit: the previous checkpoint, whole, and nothing of the failed one.
    let dir = open(tmp.path());
    assert_holds(&dir, n - 1);
    dir.commit(checkpoint(n), meta(n))
        .expect("commit once there is room");
    drop(dir);
    assert_holds(&open(tmp.path()), n);
}

/// The child inside its own mount namespace, with a small tmpfs mounted at its directory:
/// creates a state there beside a ballast file, commits until the tmpfs is full, then frees
/// the ballast, reopens and checks the previous checkpoint.
#[test]
fn child_fill_tmpfs() {
    let Some(mount) = child_dir("enospc") else {
        return;
    };
    let ballast = mount.join("ballast");
    fs::write(&ballast, vec![0; 2 << 20]).expect("write the ballast");
    let state = mount.join("state");
    let dir = fresh(&state);
    let mut failed = None;
    for n in 1..10_000 {
        if let Err(e) = dir.commit(checkpoint(n), meta(n)) {
            assert!(matches!(e, StateError::Io { .. }), "{e:?}");
            assert!(e.to_string().contains(&state.display().to_string()), "{e}");
            println!("message {e}");
            failed = Some(n);
            break;
        }
    }
    let n = failed.expect("the tmpfs never filled up");
    assert!(n > 2, "the tmpfs filled up before two checkpoints fit");
    drop(dir);
    fs::remove_file(&ballast).expect("free the ballast");
    let dir = open(&state);
    assert_holds(&dir, n - 1);
    dir.commit(checkpoint(n), meta(n))
        .expect("commit once there is room");
    println!("intact {}", n - 1);
}

#[test]
fn enospc_on_a_full_tmpfs_keeps_the_previous_checkpoint() {
    let tmp = TempDir::new("enospc");
    fs::create_dir_all(tmp.path()).unwrap();
    let exe = std::env::current_exe().expect("the test binary's path");
    let script = format!(
        "mount -t tmpfs -o size=8m riskwatch-test \"${CHILD_DIR_ENV}\" || exit 77; \
         exec \"$0\" \"$@\""
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["-rm", "sh", "-c", &script]).arg(exe);
    child_args(
        &mut cmd,
        "disk_full::child_fill_tmpfs",
        "enospc",
        tmp.path(),
    );
    let out = match cmd.stderr(Stdio::piped()).output() {
        Ok(out) => out,
        Err(e) => return eprintln!("enospc test skipped: cannot run unshare: {e}"),
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    // 77: the mount failed; "unshare: ...": no namespaces for us. Both: not this machine.
    if out.status.code() == Some(77) || stderr.starts_with("unshare:") {
        return eprintln!("enospc test skipped: no tmpfs in a private namespace here: {stderr}");
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {}\n{stdout}\n{stderr}",
        out.status
    );
    let message = stdout
        .lines()
        .find_map(|l| l.strip_prefix("message "))
        .unwrap_or("");
    let intact = stdout
        .lines()
        .find_map(|l| l.strip_prefix("intact "))
        .unwrap_or("");
    eprintln!("enospc: {message}; reopened with checkpoint {intact} intact");
    assert!(!intact.is_empty(), "{stdout}");
}
