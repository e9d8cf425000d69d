//! The `riskwatch` binary as a user runs it: missing inputs, flags that do not apply,
//! exit codes, version and log format, atomic outputs on a full disk, and signals.

use super::faults::{book, read_outputs, replay_dir, Lines};
use super::support::{default_config, temp_dir};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn riskwatch() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_riskwatch"));
    c.env("RISKWATCH_LOG", "warn").stdin(Stdio::null());
    c
}

fn run(args: &[&str]) -> Output {
    riskwatch().args(args).output().expect("run riskwatch")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn replay_cli(input: &Path, output: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "replay",
        "--input",
        input.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run(&args)
}

/// A small book for the CLI tests (300 customers × 20 days).
fn small_book(name: &str) -> PathBuf {
    book(name, 300, 20, 3)
}

#[test]
fn a_missing_input_directory_exits_66_naming_it() {
    let dir = temp_dir("cli-missing-dir");
    let o = replay_cli(&dir.join("nope"), &dir.join("out"), &[]);
    assert_eq!(o.status.code(), Some(66), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("nope: the input directory does not exist"),
        "{}",
        stderr(&o)
    );
    assert!(!dir.join("out").exists(), "nothing is written");
}

#[test]
fn a_directory_without_a_stream_names_what_was_found_and_what_is_absent() {
    let src = small_book("cli-absent");
    std::fs::remove_file(src.join("behaviors.ndjson")).unwrap();
    std::fs::rename(src.join("loans.ndjson"), src.join("loan.ndjson")).unwrap();
    let o = replay_cli(&src, &src.join("out"), &[]);
    assert_eq!(o.status.code(), Some(66));
    let e = stderr(&o);
    assert!(
        e.contains("found customers, transactions; absent: loans, behaviors"),
        "{e}"
    );
    assert!(e.contains("pass --streams customers,transactions"), "{e}");
    assert!(e.contains("not input names: loan.ndjson"), "{e}");
}

#[test]
fn an_empty_directory_holds_none_of_the_four_streams() {
    let dir = temp_dir("cli-empty");
    let o = replay_cli(&dir, &dir.join("out"), &[]);
    assert_eq!(o.status.code(), Some(66));
    assert!(
        stderr(&o).contains("holds none of the four input streams"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_dangling_symlink_is_an_error_naming_the_path() {
    let src = small_book("cli-dangling");
    let target = src.join("transactions.ndjson");
    std::fs::remove_file(&target).unwrap();
    std::os::unix::fs::symlink(src.join("gone.ndjson"), &target).unwrap();
    let o = replay_cli(&src, &src.join("out"), &[]);
    assert_eq!(o.status.code(), Some(66));
    let e = stderr(&o);
    assert!(
        e.contains(&format!("{}: dangling symlink", target.display())),
        "{e}"
    );
}

#[test]
fn streams_leaves_a_stream_out_on_purpose_and_reads_only_those_named() {
    let src = small_book("cli-streams");
    let only = "customers,loans,transactions";
    let with_file = replay_cli(&src, &src.join("a"), &["--streams", only]);
    assert!(with_file.status.success(), "{}", stderr(&with_file));
    std::fs::remove_file(src.join("behaviors.ndjson")).unwrap();
    let without = replay_cli(&src, &src.join("b"), &["--streams", only]);
    assert!(without.status.success(), "{}", stderr(&without));
    let (a, b) = (read_outputs(&src.join("a")), read_outputs(&src.join("b")));
    assert_eq!(a.outputs, b.outputs);
    assert_eq!(
        a.summary["streams"],
        serde_json::json!(["customers", "loans", "transactions"])
    );
    assert_eq!(a.summary["read"]["behaviors"], 0);
    let o = replay_cli(&src, &src.join("c"), &["--streams", "customers,behaviors"]);
    assert_eq!(o.status.code(), Some(66), "a named stream must be present");
    assert!(stderr(&o).contains("absent: behaviors"), "{}", stderr(&o));
    let o = replay_cli(&src, &src.join("c"), &["--streams", "payments"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("unknown stream \"payments\""),
        "{}",
        stderr(&o)
    );
}

#[test]
fn workers_zero_is_rejected() {
    let o = run(&["replay", "--input", "x", "--output", "y", "--workers", "0"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("must be at least 1"), "{}", stderr(&o));
}

#[test]
fn hosts_without_process_is_rejected() {
    let o = run(&[
        "replay", "--input", "x", "--output", "y", "--hosts", "a:1,b:2",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--process"), "{}", stderr(&o));
}

#[test]
fn files_mode_run_rejects_flags_that_do_not_apply() {
    for flags in [
        &["--until-idle"][..],
        &["--until-idle", "--idle-ms", "5"][..],
    ] {
        let mut args = vec!["run"];
        args.extend_from_slice(flags);
        let o = run(&args);
        assert_eq!(o.status.code(), Some(2), "{flags:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("does not apply in files mode"),
            "{}",
            stderr(&o)
        );
    }
}

#[test]
fn bench_kafka_rejects_flags_that_do_not_apply() {
    let o = run(&[
        "bench",
        "--kafka",
        "--brokers",
        "127.0.0.1:1",
        "--config",
        "x.toml",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = run(&[
        "bench",
        "--kafka",
        "--brokers",
        "127.0.0.1:1",
        "--replay-only",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn an_invalid_config_exits_78_naming_the_key_and_a_missing_one_naming_the_path() {
    let dir = temp_dir("cli-config");
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[time]\ntick = \"7q\"\n").unwrap();
    let o = run(&["check-config", "--config", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(78));
    assert!(
        stderr(&o).contains("config key \"time.tick\""),
        "{}",
        stderr(&o)
    );
    let missing = dir.join("missing.toml");
    let o = run(&["check-config", "--config", missing.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(78));
    assert!(
        stderr(&o).contains(&missing.display().to_string()),
        "{}",
        stderr(&o)
    );
}

#[test]
fn version_prints_the_commit_and_the_librdkafka_version() {
    let o = run(&["--version"]);
    assert!(o.status.success());
    let v = String::from_utf8_lossy(&o.stdout);
    assert!(v.starts_with("riskwatch 0."), "{v}");
    assert!(v.contains("(commit "), "{v}");
    assert!(v.contains(", librdkafka 2."), "{v}");
}

#[test]
fn log_format_json_writes_one_json_object_per_line() {
    let src = small_book("cli-json-logs");
    let o = riskwatch()
        .env("RISKWATCH_LOG", "info")
        .args([
            "--log-format",
            "json",
            "replay",
            "--streams",
            "customers,loans",
        ])
        .args(["--input", src.to_str().unwrap(), "--output"])
        .arg(src.join("out"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let logs: Vec<serde_json::Value> = stderr(&o)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).expect("a JSON log line"))
        .collect();
    assert!(
        logs.iter().any(|l| l["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("--streams leaves it out"))),
        "{logs:?}"
    );
}

#[test]
fn an_unwritable_output_fails_before_any_work_naming_the_path() {
    let src = small_book("cli-unwritable");
    let file = src.join("a-file");
    std::fs::write(&file, "x").unwrap();
    let out = file.join("out");
    let o = replay_cli(&src, &out, &[]);
    assert_eq!(o.status.code(), Some(74), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&out.display().to_string()),
        "{}",
        stderr(&o)
    );
    assert!(!String::from_utf8_lossy(&o.stdout).contains("replayed"));
}

#[test]
fn a_bom_at_the_start_of_each_file_does_not_reject_its_first_record() {
    let cfg = default_config();
    let src = small_book("bom");
    let pristine = replay_dir(&cfg, &src, &src.join("pristine"));
    let mut lines = Lines::read(&src);
    for l in lines.files.values_mut() {
        l[0].insert(0, '\u{feff}');
    }
    let bom = src.join("bom");
    lines.write(&bom);
    let got = replay_dir(&cfg, &bom, &src.join("out"));
    assert!(got.rejected.is_empty(), "{:?}", got.rejected);
    assert_eq!(got.outputs, pristine.outputs);
}

/// Mounts a tmpfs of `size` at `dir`; false where mounting is not allowed.
fn mount_tmpfs(dir: &Path, size: &str) -> bool {
    Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn a_full_disk_leaves_no_half_line_and_names_the_file() {
    let src = small_book("disk-full");
    let full = temp_dir("disk-full-mount");
    if !mount_tmpfs(&full, "48k") {
        eprintln!("SKIPPED a_full_disk_leaves_no_half_line_and_names_the_file: cannot mount a tmpfs here (needs root)");
        return;
    }
    let out = full.join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("alerts.ndjson"), "{\"old\":1}\n").unwrap();
    let o = replay_cli(&src, &out, &[]);
    let listing: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let _ = Command::new("umount").arg(&full).status();
    assert_eq!(o.status.code(), Some(74), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains(&out.display().to_string()), "{e}");
    assert!(e.contains("No space left on device"), "{e}");
    // No output under its final name: neither the old run's nor a half-written one.
    assert!(listing.is_empty(), "left behind: {listing:?}");
}

/// Starts `riskwatch` with `args`, sends `signal` once its outputs are open and `delay`
/// has passed, and waits; returns the output and the time from the signal to the exit.
fn signalled(args: &[&str], out: &Path, signal: &str, delay: Duration) -> (Output, Duration) {
    let child = riskwatch()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let opened = out.join("alerts.ndjson.partial");
    let start = Instant::now();
    while !opened.exists() && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(delay);
    let sent = Instant::now();
    Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    // A run that does not stop is a failure, not a hung suite.
    let mut child = child;
    while child.try_wait().unwrap().is_none() {
        if sent.elapsed() > Duration::from_secs(120) {
            child.kill().unwrap();
            let o = child.wait_with_output().unwrap();
            panic!(
                "still running 120 s after SIG{signal}; its stderr:\n{}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let took = sent.elapsed();
    let o = child.wait_with_output().unwrap();
    (o, took)
}

/// The stopped run's records are exactly the full run's up to its stop time.
fn assert_prefix(full: &Path, stopped: &Path) {
    let full = read_outputs(full);
    let got = read_outputs(stopped);
    assert_eq!(got.summary["complete"], false);
    let at = got.summary["stopped_at"].as_u64().expect("stopped_at");
    for (kind, records) in &full.outputs {
        let upto: Vec<&String> = records
            .iter()
            .map(|(_, r)| r)
            .filter(|r| {
                let v: serde_json::Value = serde_json::from_str(r).unwrap();
                v["ts"].as_u64().unwrap() + 10 <= at
            })
            .collect();
        let mine: Vec<&String> = got.outputs[kind].iter().map(|(_, r)| r).collect();
        assert!(
            mine.len() >= upto.len() && mine[..upto.len()] == upto[..],
            "{kind}: the stopped run's records are not the full run's up to {at}"
        );
        let all: std::collections::BTreeSet<&String> = records.iter().map(|(_, r)| r).collect();
        assert!(
            mine.iter().all(|r| all.contains(r)),
            "{kind}: a record the full run lacks"
        );
    }
}

#[test]
fn sigterm_stops_a_replay_with_complete_outputs_up_to_where_it_stopped() {
    let src = book("sigterm-replay", 10_000, 40, 9);
    let full = src.join("full");
    assert!(replay_cli(&src, &full, &[]).status.success());
    let out = src.join("stopped");
    let args = [
        "replay",
        "--input",
        src.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ];
    let (o, took) = signalled(&args, &out, "TERM", Duration::from_millis(1500));
    eprintln!("replay stopped {took:?} after SIGTERM");
    assert_eq!(o.status.code(), Some(143), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("stopped early by a signal"));
    assert_prefix(&full, &out);
}

/// A `run.toml` in `src` for a files-mode run of `src` into `out`.
fn files_run_config(src: &Path, out: &Path) -> PathBuf {
    let config = src.join("run.toml");
    std::fs::write(
        &config,
        format!(
            "[run]\nmode = \"files\"\ninput_dir = \"{}\"\noutput_dir = \"{}\"\n",
            src.display(),
            out.display()
        ),
    )
    .unwrap();
    config
}

#[test]
fn sigterm_stops_a_files_mode_run_and_it_exits_0() {
    let src = book("sigterm-run", 10_000, 40, 9);
    let full = src.join("full");
    assert!(replay_cli(&src, &full, &[]).status.success());
    let out = src.join("stopped");
    let config = files_run_config(&src, &out);
    let args = ["run", "--config", config.to_str().unwrap()];
    let (o, took) = signalled(&args, &out, "TERM", Duration::from_millis(1500));
    eprintln!("run stopped {took:?} after SIGTERM");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_prefix(&full, &out);
}

#[test]
fn a_killed_replay_leaves_no_stale_outputs_looking_current() {
    let src = small_book("killed");
    let out = src.join("out");
    assert!(replay_cli(&src, &out, &[]).status.success());
    assert!(out.join("summary.json").exists());
    let big = book("killed-big", 10_000, 40, 9);
    let args = [
        "replay",
        "--input",
        big.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ];
    let (o, _) = signalled(&args, &out, "KILL", Duration::from_millis(200));
    assert_eq!(o.status.code(), None, "killed");
    for name in [
        "alerts.ndjson",
        "decisions.ndjson",
        "cases.ndjson",
        "summary.json",
    ] {
        assert!(
            !out.join(name).exists(),
            "{name} of the previous run is still there"
        );
    }
}

#[test]
fn a_misspelt_kafka_consumer_key_fails_check_config_with_78() {
    let dir = temp_dir("cli-kafka-key");
    let cfg = dir.join("kafka.toml");
    std::fs::write(&cfg, "[kafka.consumer]\n\"fetch.wait.max.mss\" = \"10\"\n").unwrap();
    let o = run(&["check-config", "--config", cfg.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(78), "{}", stderr(&o));
    assert!(stderr(&o).contains("fetch.wait.max.mss"), "{}", stderr(&o));
}

/// `timeout(1)` forwards a SIGTERM to its child and then to its whole process group, so the
/// child gets one stop request twice; that is one request (exit 0), not a second signal
/// (exit 130). Here the run has ended and lingers serving /metrics (checking its stop flag
/// every 100 ms) when the two signals come, 20 ms apart as under load.
#[test]
fn one_sigterm_delivered_twice_by_timeout_is_one_stop_request() {
    let src = small_book("sigterm-twice");
    let out = src.join("out");
    let config = files_run_config(&src, &out);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_riskwatch"))
        .args(["run", "--config", config.to_str().unwrap()])
        .args(["--metrics-addr", &addr, "--metrics-linger", "100"])
        .env("RISKWATCH_LOG", "riskwatch=info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !out.join("summary.json").exists() && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(out.join("summary.json").exists(), "the run did not finish");
    // Lingering now: the same SIGTERM twice.
    std::thread::sleep(Duration::from_millis(200));
    for _ in 0..2 {
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(100) {
            let _ = child.kill();
            panic!("riskwatch did not stop on SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}
