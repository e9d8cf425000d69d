//! Restart equivalence and the state directory as a user meets it: a replay stopped at
//! checkpoints and resumed gives the outputs, and holds the state, of one uninterrupted
//! replay; a missing, corrupted or mismatched state directory is refused with its reason.

use super::faults::{book, read_outputs};
use super::support::temp_dir;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn riskwatch(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_riskwatch"))
        .env("RISKWATCH_LOG", "warn")
        .stdin(Stdio::null())
        .args(args)
        .output()
        .expect("run riskwatch")
}

fn ok(o: Output) -> Output {
    assert!(
        o.status.success(),
        "riskwatch failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Replays `input` into `out` with `extra` flags.
fn replay(input: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["replay", "--input", s(input), "--output", s(out)];
    args.extend_from_slice(extra);
    riskwatch(&args)
}

/// Every output record (without `emitted_at`) of the directories, sorted per file.
fn union(dirs: &[PathBuf]) -> BTreeMap<&'static str, Vec<String>> {
    let mut all: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    for d in dirs {
        for (k, v) in read_outputs(d).outputs {
            all.entry(k)
                .or_default()
                .extend(v.into_iter().map(|(_, r)| r));
        }
    }
    for v in all.values_mut() {
        v.sort();
    }
    all
}

fn dump(state: &Path) -> String {
    let o = ok(riskwatch(&["state", "dump", "--state", s(state)]));
    String::from_utf8(o.stdout).unwrap()
}

/// Event times at `fraction` of the book's transaction span.
fn cut(input: &Path, fraction: f64) -> u64 {
    let text = std::fs::read_to_string(input.join("transactions.ndjson")).unwrap();
    let ts: Vec<u64> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["ts"]
                .as_u64()
                .unwrap()
        })
        .collect();
    let (lo, hi) = (*ts.iter().min().unwrap(), *ts.iter().max().unwrap());
    lo + ((hi - lo) as f64 * fraction) as u64
}

#[test]
fn a_replay_stopped_twice_and_resumed_equals_one_uninterrupted_replay_outputs_and_state() {
    let input = book("restart-equivalence", 400, 40, 5);
    let dir = temp_dir("restart-equivalence-runs");
    // Uninterrupted, without and with checkpoints: checkpoints change no output.
    ok(replay(&input, &dir.join("plain"), &[]));
    let full_state = dir.join("state-full");
    ok(replay(
        &input,
        &dir.join("full"),
        &[
            "--state",
            s(&full_state),
            "--init-state",
            "--checkpoint-every",
            "6h",
        ],
    ));
    let plain = union(&[dir.join("plain")]);
    assert_eq!(union(&[dir.join("full")]), plain);
    assert!(plain["alerts"].len() > 100, "the book raises alerts");
    // Three segments, checkpointed at other times than the uninterrupted run.
    let state = dir.join("state-parts");
    let (t1, t2) = (cut(&input, 0.3), cut(&input, 0.75));
    let (t1, t2) = (t1.to_string(), t2.to_string());
    ok(replay(
        &input,
        &dir.join("p1"),
        &[
            "--state",
            s(&state),
            "--init-state",
            "--until",
            &t1,
            "--checkpoint-every",
            "1d",
        ],
    ));
    ok(replay(
        &input,
        &dir.join("p2"),
        &[
            "--state",
            s(&state),
            "--until",
            &t2,
            "--checkpoint-every",
            "13h",
        ],
    ));
    ok(replay(&input, &dir.join("p3"), &["--state", s(&state)]));
    let parts = union(&[dir.join("p1"), dir.join("p2"), dir.join("p3")]);
    for kind in ["alerts", "decisions", "cases"] {
        assert_eq!(
            parts[kind], plain[kind],
            "{kind}: segments differ from one run"
        );
        assert!(
            !read_outputs(&dir.join("p3")).outputs[kind].is_empty(),
            "{kind}: the last segment produces outputs of its own"
        );
    }
    // The level mix counts every customer, restored ones included (the operators count
    // only changes; a resumed run's gauges start from the restored state).
    let levels = |d: &str| -> serde_json::Value {
        let path = dir.join(d).join("summary.json");
        let text = std::fs::read_to_string(&path).expect("replay writes summary.json");
        serde_json::from_str::<serde_json::Value>(&text).expect("summary.json is JSON")["levels"]
            .clone()
    };
    assert!(levels("plain").is_object(), "the summary has the level mix");
    assert_eq!(
        levels("p3"),
        levels("plain"),
        "a resumed run's level mix differs from the uninterrupted run's"
    );
    // The state after the last segment, windows and duplicate set included, is the state
    // after the uninterrupted run.
    let (a, b) = (dump(&full_state), dump(&state));
    assert!(
        a.lines().any(|l| l.contains(" held ")),
        "window state is stored"
    );
    assert!(
        a.lines().any(|l| l.contains(" id ")),
        "the duplicate set is stored"
    );
    assert_eq!(a.lines().count(), b.lines().count());
    assert!(
        a == b,
        "the resumed run's state differs from the uninterrupted run's"
    );
    // Resuming a state that is already at the end of the input adds nothing.
    ok(replay(&input, &dir.join("p4"), &["--state", s(&state)]));
    assert!(union(&[dir.join("p4")]).values().all(|v| v.is_empty()));
    assert_eq!(
        dump(&state),
        b,
        "a run with nothing to do leaves the state as it was"
    );
}

#[test]
fn a_missing_state_directory_is_refused_unless_init_state_is_given() {
    let input = book("restart-missing", 50, 5, 1);
    let dir = temp_dir("restart-missing-runs");
    let state = dir.join("no-such-state");
    let o = replay(&input, &dir.join("out"), &["--state", s(&state)]);
    assert_eq!(o.status.code(), Some(66), "{}", stderr(&o));
    assert!(stderr(&o).contains("no-such-state"), "{}", stderr(&o));
    assert!(stderr(&o).contains("--init-state"), "{}", stderr(&o));
    assert!(!state.exists(), "nothing is created without the flag");
    ok(replay(
        &input,
        &dir.join("out"),
        &["--state", s(&state), "--init-state"],
    ));
    assert!(state.join("RISKWATCH_STATE").exists());
}

#[test]
fn a_state_directory_written_under_other_windows_or_workers_is_refused_naming_the_change() {
    let input = book("restart-mismatch", 50, 5, 2);
    let dir = temp_dir("restart-mismatch-runs");
    let state = dir.join("state");
    ok(replay(
        &input,
        &dir.join("out"),
        &["--state", s(&state), "--init-state"],
    ));
    // Another worker count spreads customers differently.
    let o = replay(
        &input,
        &dir.join("out"),
        &["--state", s(&state), "--workers", "1"],
    );
    assert_eq!(o.status.code(), Some(78), "{}", stderr(&o));
    assert!(stderr(&o).contains("workers"), "{}", stderr(&o));
    // Another window granularity.
    let cfg = dir.join("other.toml");
    let text = riskwatch_model::config::DEFAULT_CONFIG.replacen(
        "granularity = \"10s\"",
        "granularity = \"20s\"",
        1,
    );
    assert_ne!(
        text,
        riskwatch_model::config::DEFAULT_CONFIG,
        "the default config has a 10s granularity"
    );
    std::fs::write(&cfg, text).unwrap();
    let o = replay(
        &input,
        &dir.join("out"),
        &["--state", s(&state), "--config", s(&cfg)],
    );
    assert_eq!(o.status.code(), Some(78), "{}", stderr(&o));
    assert!(stderr(&o).contains("window.1h"), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--init-state"),
        "says how to rebuild: {}",
        stderr(&o)
    );
}

#[test]
fn a_corrupted_state_directory_is_refused_naming_the_file_never_started_from_empty() {
    let input = book("restart-corrupt", 50, 5, 4);
    let dir = temp_dir("restart-corrupt-runs");
    let state = dir.join("state");
    ok(replay(
        &input,
        &dir.join("out"),
        &["--state", s(&state), "--init-state"],
    ));
    std::fs::write(state.join("CURRENT"), b"garbage\n").unwrap();
    let o = replay(
        &input,
        &dir.join("out2"),
        &["--state", s(&state), "--init-state"],
    );
    assert_eq!(o.status.code(), Some(66), "{}", stderr(&o));
    assert!(stderr(&o).contains("CURRENT"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
    assert!(!dir.join("out2").join("alerts.ndjson").exists());
}
