//! Helpers shared by the tests: temporary directories, a seeded RNG, fixtures, raw RocksDB
//! access for planting damage, and re-executing this test binary as a child process.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use riskwatch_state::{CheckpointMeta, Fingerprint, OpenMode, SourcePosition, StateDir, Table};

/// A directory under `std::env::temp_dir()`, removed when dropped (kept when
/// `RISKWATCH_KEEP_TEST_DIRS` is set, for a post-mortem).
pub struct TempDir(PathBuf);

impl TempDir {
    /// A new, not yet existing path for test `name` (the test creates what it needs).
    pub fn new(name: &str) -> TempDir {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("riskwatch-state-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        TempDir(path)
    }

    /// The path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("RISKWATCH_KEEP_TEST_DIRS").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// SplitMix64: a tiny deterministic RNG, good enough to pick mutations and delays.
pub struct Rng(u64);

impl Rng {
    /// An RNG from `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// An RNG seeded from the clock; the seed is printed so that a failure can be replayed.
    pub fn from_clock(what: &str) -> Rng {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        eprintln!("{what}: seed {seed}");
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// True with probability `1 / n`.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    /// One element of `items`.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// The fingerprint most tests run with.
pub fn fingerprint() -> Fingerprint {
    [
        ("tick", "10ms"),
        ("window.30d", "30d/90m"),
        ("workers", "2"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .into()
}

/// A checkpoint meta with `frontier`; `seq`, `format` and `fingerprint` are the store's.
pub fn meta(frontier: u64) -> CheckpointMeta {
    CheckpointMeta {
        format: 0,
        seq: 0,
        frontier,
        written_at_ms: 1_767_225_600_000 + frontier,
        fingerprint: Fingerprint::new(),
        config_version: "test-v1".into(),
        sources: vec![
            SourcePosition::Kafka {
                topic: "transactions".into(),
                partition: 0,
                offset: frontier as i64,
            },
            SourcePosition::File {
                path: "/data/loans.ndjson".into(),
                offset: frontier,
                skip: vec![frontier + 10],
            },
        ],
    }
}

/// Opens `dir` (which must exist) with the test fingerprint.
pub fn open(dir: &Path) -> StateDir {
    StateDir::open(dir, OpenMode::Existing, &fingerprint())
        .unwrap_or_else(|e| panic!("open {}: {e}", dir.display()))
}

/// Creates an empty state directory at `dir`.
pub fn fresh(dir: &Path) -> StateDir {
    StateDir::open(dir, OpenMode::Fresh, &fingerprint())
        .unwrap_or_else(|e| panic!("fresh {}: {e}", dir.display()))
}

/// Every column family name of a state directory.
pub fn cf_names() -> Vec<&'static str> {
    let mut names = vec!["default", "meta"];
    names.extend(Table::ALL.map(Table::name));
    names
}

/// The raw RocksDB database of a (closed) state directory, to plant damage a real failure
/// could leave.
pub fn raw_db(dir: &Path) -> rocksdb::DB {
    rocksdb::DB::open_cf(&rocksdb::Options::default(), dir, cf_names())
        .unwrap_or_else(|e| panic!("raw open {}: {e}", dir.display()))
}

/// The live SST files of a (closed) state directory with their column family.
pub fn sst_files(dir: &Path) -> Vec<(String, PathBuf)> {
    let db =
        rocksdb::DB::open_cf_for_read_only(&rocksdb::Options::default(), dir, cf_names(), false)
            .expect("read-only open");
    let files = db.live_files().expect("live files");
    files
        .into_iter()
        .map(|f| {
            (
                f.column_family_name,
                dir.join(f.name.trim_start_matches('/')),
            )
        })
        .collect()
}

/// The environment variable that makes a test of this binary act as a child.
pub const CHILD_ENV: &str = "RISKWATCH_STATE_TEST_CHILD";
/// The environment variable with the child's state directory.
pub const CHILD_DIR_ENV: &str = "RISKWATCH_STATE_TEST_DIR";

/// The state directory of this process if it was started as child `role`, else `None`
/// (then the child test does nothing and passes).
pub fn child_dir(role: &str) -> Option<PathBuf> {
    if std::env::var(CHILD_ENV).ok()? != role {
        return None;
    }
    std::env::var_os(CHILD_DIR_ENV).map(PathBuf::from)
}

/// This test binary, set to run exactly `test` (a module path such as `kill::child`) as
/// child `role` on `dir`, its output not captured so the parent can read it.
pub fn child_command(test: &str, role: &str, dir: &Path) -> Command {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut cmd = Command::new(exe);
    child_args(&mut cmd, test, role, dir);
    cmd
}

/// Adds the arguments and environment of [`child_command`] to `cmd`.
pub fn child_args(cmd: &mut Command, test: &str, role: &str, dir: &Path) {
    cmd.args(["--exact", test, "--nocapture", "--test-threads=1", "-q"])
        .env(CHILD_ENV, role)
        .env(CHILD_DIR_ENV, dir);
}

/// Asserts that `err`'s message names `path`.
pub fn assert_names(err: &riskwatch_state::StateError, path: &Path) {
    let text = err.to_string();
    assert!(
        text.contains(&path.display().to_string()),
        "the message does not name {}: {text}",
        path.display()
    );
}
