//! Book snapshots (`replay --snapshot-at`): every evaluated customer once per strategy and
//! observation time, the same whatever the worker count and whether the replay goes on
//! past the time or ends there, in NDJSON within its schema and in Parquet with the same
//! values; a time outside the book is refused, naming it.

use super::faults::book;
use super::support::temp_dir;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;
use riskwatch_model::snapshot::CustomerSnapshot;
use riskwatch_model::time::ceil_to;
use std::collections::BTreeSet;
use std::path::Path;
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

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The first and last transaction times of a book.
fn span(input: &Path) -> (u64, u64) {
    let text = std::fs::read_to_string(input.join("transactions.ndjson")).unwrap();
    let ts: Vec<u64> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["ts"]
                .as_u64()
                .unwrap()
        })
        .collect();
    (*ts.iter().min().unwrap(), *ts.iter().max().unwrap())
}

fn snapshot(input: &Path, out: &Path, at: &str, extra: &[&str]) -> Vec<String> {
    let mut args = vec![
        "replay",
        "--input",
        s(input),
        "--output",
        s(out),
        "--snapshot-at",
        at,
        "--quiet",
    ];
    args.extend_from_slice(extra);
    ok(riskwatch(&args));
    std::fs::read_to_string(out.join("snapshots.ndjson"))
        .expect("snapshots.ndjson is written")
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn snapshots_list_every_customer_once_per_strategy_whatever_the_workers_or_the_end() {
    let input = book("snapshots", 300, 40, 11);
    let dir = temp_dir("snapshots-runs");
    let (lo, hi) = span(&input);
    let (t1, t2) = (lo + (hi - lo) * 2 / 5, lo + (hi - lo) * 4 / 5);
    let times = format!("{t1},{t2}");
    let two = snapshot(&input, &dir.join("w2"), &times, &["--workers", "2"]);
    let one = snapshot(&input, &dir.join("w1"), &times, &["--workers", "1"]);
    assert!(two == one, "the snapshot depends on the worker count");
    let records: Vec<CustomerSnapshot> = two
        .iter()
        .map(|l| serde_json::from_str(l).expect("a snapshot record"))
        .collect();
    let as_of: BTreeSet<u64> = records.iter().map(|r| r.as_of).collect();
    let (c1, c2) = (ceil_to(t1, 10), ceil_to(t2, 10));
    assert_eq!(as_of, [c1, c2].into_iter().collect());
    // Sorted by time, customer, strategy; each (time, customer, strategy) once.
    let keys: Vec<(u64, &str, &str)> = records
        .iter()
        .map(|r| (r.as_of, r.customer_id.as_str(), r.strategy.as_str()))
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(keys, sorted, "sorted and without repeats");
    let at = |t: u64| records.iter().filter(move |r| r.as_of == t);
    let customers = |t: u64| {
        at(t)
            .map(|r| r.customer_id.as_str())
            .collect::<BTreeSet<_>>()
    };
    assert!(
        customers(c1).len() > 250,
        "most of the book is known by 40% of its span"
    );
    assert!(
        customers(c1).is_subset(&customers(c2)),
        "customers are not forgotten"
    );
    // Every customer the default (shadow) setup evaluates appears under each strategy.
    let strategies: BTreeSet<&str> = records.iter().map(|r| r.strategy.as_str()).collect();
    for st in &strategies {
        assert_eq!(
            at(c2).filter(|r| r.strategy == *st).count(),
            customers(c2).len(),
            "strategy {st}"
        );
    }
    // Someone is delinquent at t2, with DPD and bucket as the features say.
    let late: Vec<&CustomerSnapshot> = at(c2).filter(|r| r.dpd > 0).collect();
    assert!(!late.is_empty(), "the book has delinquent customers at t2");
    for r in &late {
        assert_eq!(r.features["dpd"], Some(r.dpd as f64), "{}", r.customer_id);
        assert_eq!(
            r.features["bucket"],
            Some(r.bucket as f64),
            "{}",
            r.customer_id
        );
    }
    assert!(records.iter().any(|r| r.level >= 2 && !r.firing.is_empty()));

    // A replay that ends at t1 snapshots the same state at t1.
    let ends = snapshot(
        &input,
        &dir.join("until"),
        &t1.to_string(),
        &["--until", &t1.to_string()],
    );
    let first: Vec<String> = two
        .iter()
        .zip(&records)
        .filter(|(_, r)| r.as_of == c1)
        .map(|(l, _)| l.clone())
        .collect();
    assert!(
        ends == first,
        "a replay ending at t1 snapshots another state"
    );

    // The NDJSON form is within schemas/snapshot.schema.json.
    let schema = concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/snapshot.schema.json");
    let check = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/scripts/lib/check-schema.py"
        ))
        .arg(schema)
        .arg(dir.join("w2").join("snapshots.ndjson"))
        .output()
        .expect("run python3");
    assert!(
        check.status.success(),
        "schema check failed: {}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );

    // The Parquet form holds the same rows, one row group per observation time.
    let file = std::fs::File::open(dir.join("w2").join("snapshots.parquet")).unwrap();
    let reader = SerializedFileReader::new(file).expect("a Parquet file");
    assert_eq!(reader.metadata().num_row_groups(), 2);
    let mut rows = Vec::new();
    for row in reader.get_row_iter(None).expect("rows") {
        let row = row.expect("a row");
        let mut customer = String::new();
        let (mut level, mut dpd, mut feature_dpd) = (0i32, 0i64, None);
        for (name, field) in row.get_column_iter() {
            match (name.as_str(), field) {
                ("customer_id", Field::Str(v)) => customer = v.clone(),
                ("level", Field::Int(v)) => level = *v,
                ("dpd", Field::Long(v)) => dpd = *v,
                ("feature_dpd", Field::Double(v)) => feature_dpd = Some(*v),
                _ => {}
            }
        }
        rows.push((customer, level, dpd, feature_dpd));
    }
    let want: Vec<(String, i32, i64, Option<f64>)> = records
        .iter()
        .map(|r| {
            (
                r.customer_id.clone(),
                r.level as i32,
                r.dpd as i64,
                r.features["dpd"],
            )
        })
        .collect();
    assert_eq!(rows, want);
}

#[test]
fn a_snapshot_time_outside_the_book_is_refused_naming_it() {
    let input = book("snapshots-outside", 60, 10, 3);
    let dir = temp_dir("snapshots-outside-runs");
    let (lo, hi) = span(&input);
    let _ = lo;
    for t in [1_000, hi + 30 * 86_400_000] {
        let o = riskwatch(&[
            "replay",
            "--input",
            s(&input),
            "--output",
            s(&dir),
            "--snapshot-at",
            &t.to_string(),
            "--quiet",
        ]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains(&ceil_to(t, 10).to_string()), "{err}");
        assert!(err.contains("outside the book"), "{err}");
        assert!(
            !dir.join("snapshots.ndjson").exists() && !dir.join("alerts.ndjson").exists(),
            "a refused run leaves no outputs"
        );
    }
    let o = riskwatch(&[
        "replay",
        "--input",
        s(&input),
        "--output",
        s(&dir),
        "--snapshot-at",
        "yesterday",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("yesterday"));
}

#[test]
fn run_with_a_snapshot_section_writes_what_replay_writes_at_the_same_times() {
    let input = book("snapshots-run-book", 200, 30, 5);
    let dir = temp_dir("snapshots-run");
    let (lo, hi) = span(&input);
    let listed = lo + (hi - lo) / 2 + 12_345;
    // Every 7 days from the book's third day (at midnight UTC), and one listed time.
    let day = 86_400_000;
    let from = (lo / day + 2) * day;
    let config = dir.join("run.toml");
    let out = dir.join("run-out");
    std::fs::write(
        &config,
        format!(
            "[run]\nmode = \"files\"\ninput_dir = {:?}\noutput_dir = {:?}\n\n[snapshot]\n\
             at = [\"{listed}\"]\nevery = \"7d\"\nfrom = \"{from}\"\n",
            s(&input),
            s(&out)
        ),
    )
    .unwrap();
    ok(riskwatch(&["run", "--config", s(&config)]));
    let from_run = std::fs::read_to_string(out.join("snapshots").join("snapshots.ndjson"))
        .expect("run writes <output_dir>/snapshots/snapshots.ndjson");
    assert!(out.join("snapshots").join("snapshots.parquet").exists());
    // The periodic times inside the book (up to its last tick), and the listed one.
    let end = ceil_to(hi, 10);
    let mut times: Vec<u64> = (0..)
        .map(|k| from + k * 7 * day)
        .take_while(|t| *t <= end)
        .collect();
    assert!(
        times.len() >= 3,
        "a 30-day book holds at least 3 weekly times"
    );
    times.push(ceil_to(listed, 10));
    times.sort_unstable();
    let list: Vec<String> = times.iter().map(u64::to_string).collect();
    let from_replay = snapshot(&input, &dir.join("replay-out"), &list.join(","), &[]);
    let run_lines: Vec<&str> = from_run.lines().collect();
    assert_eq!(run_lines.len(), from_replay.len());
    assert!(
        run_lines.iter().zip(&from_replay).all(|(a, b)| a == b),
        "run's snapshots differ from replay's at the same times"
    );
    let as_of: BTreeSet<u64> = run_lines
        .iter()
        .map(|l| serde_json::from_str::<CustomerSnapshot>(l).unwrap().as_of)
        .collect();
    assert_eq!(as_of, times.into_iter().collect());
}
