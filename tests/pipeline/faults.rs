//! Bad records never cost good data: a generated book replayed pristine and with faults
//! injected (bad lines, late, old and future records, duplicates, out-of-range values). The
//! outputs of every customer whose records were not touched must be byte-identical to the
//! pristine run, and every injected bad line must be in rejected.ndjson with its reason.

use super::support::temp_dir;
use riskwatch::replay::{replay, ReplayArgs};
use riskwatch_connectors::generator::{generate, GenConfig};
use riskwatch_dataflows::plan::Compiled;
use riskwatch_model::config::Config;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Rings off: a ring feature is shared by its members, so a fault in one member's records
/// may rightly change another's outputs.
const NO_RINGS: &str = "[rings]\nmin_ring_size = 1000000\n";

pub const STREAMS: [&str; 4] = ["customers", "loans", "transactions", "behaviors"];

/// A book's four files as lines.
#[derive(Clone, Debug)]
pub struct Lines {
    pub files: BTreeMap<&'static str, Vec<String>>,
}

impl Lines {
    pub fn read(dir: &Path) -> Lines {
        let mut files = BTreeMap::new();
        for s in STREAMS {
            let text = std::fs::read_to_string(dir.join(format!("{s}.ndjson"))).unwrap();
            files.insert(s, text.lines().map(str::to_string).collect());
        }
        Lines { files }
    }

    pub fn write(&self, dir: &Path) {
        std::fs::create_dir_all(dir).unwrap();
        for (s, lines) in &self.files {
            let mut text = lines.join("\n");
            text.push('\n');
            std::fs::write(dir.join(format!("{s}.ndjson")), text).unwrap();
        }
    }
}

/// A small generated book (cached per test name).
pub fn book(name: &str, customers: u64, days: u64, seed: u64) -> PathBuf {
    let dir = temp_dir(name);
    generate(
        &GenConfig {
            customers,
            days,
            seed,
            ..GenConfig::default()
        },
        &dir,
    )
    .expect("generate a book");
    dir
}

/// What a replay wrote: each output file's records (without `emitted_at`) as JSON text.
#[derive(Debug)]
pub struct Written {
    pub outputs: BTreeMap<&'static str, Vec<(String, String)>>,
    pub rejected: Vec<Value>,
    pub summary: Value,
}

impl Written {
    /// The records of customers not in `skip`, per output file.
    pub fn without(&self, skip: &BTreeSet<String>) -> BTreeMap<&'static str, Vec<String>> {
        self.outputs
            .iter()
            .map(|(k, v)| {
                (
                    *k,
                    v.iter()
                        .filter(|(c, _)| !skip.contains(c))
                        .map(|(_, r)| r.clone())
                        .collect(),
                )
            })
            .collect()
    }
}

pub fn replay_dir(cfg: &(Config, Compiled), input: &Path, out: &Path) -> Written {
    let (config, compiled) = cfg;
    replay(compiled, config, input, out, &ReplayArgs::new(2)).expect("replay");
    read_outputs(out)
}

pub fn read_outputs(out: &Path) -> Written {
    let mut outputs = BTreeMap::new();
    for kind in ["alerts", "decisions", "cases"] {
        let text = std::fs::read_to_string(out.join(format!("{kind}.ndjson"))).unwrap();
        let records = text
            .lines()
            .map(|l| {
                let mut v: Value = serde_json::from_str(l).unwrap();
                v.as_object_mut().unwrap().remove("emitted_at");
                (
                    v["customer_id"].as_str().unwrap().to_string(),
                    v.to_string(),
                )
            })
            .collect();
        outputs.insert(kind, records);
    }
    let rejected = std::fs::read_to_string(out.join("rejected.ndjson"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let summary =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    Written {
        outputs,
        rejected,
        summary,
    }
}

/// A small deterministic generator (xorshift) for fault positions.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n.max(1) as u64) as usize
    }
}

/// One injected fault: which customer it touches (if any) and the rejection it must get.
#[derive(Debug)]
pub struct Injected {
    pub customer: Option<String>,
    pub rejected: Option<(String, String)>,
}

/// The kinds of fault.
#[derive(Clone, Copy, Debug)]
pub enum Fault {
    /// A line that is not JSON.
    BadLine,
    /// A copy of a record with `ts: 0` and a new id.
    TsZero,
    /// A copy of a record two days older than its neighbours, with a new id.
    Older,
    /// A record moved 300 lines later in its file (beyond the reorder window).
    Moved,
    /// A copy of a record, same id, further on.
    Duplicate,
    /// A copy 30 days ahead of its neighbours, with a new id: `future_ts`.
    Future,
    /// A transaction with a negative amount: `range:amount`.
    OutOfRange,
}

pub const FAULTS: [Fault; 7] = [
    Fault::BadLine,
    Fault::TsZero,
    Fault::Older,
    Fault::Moved,
    Fault::Duplicate,
    Fault::Future,
    Fault::OutOfRange,
];

fn with_ts(line: &str, f: impl Fn(u64) -> u64, id: Option<&str>) -> (String, String) {
    let mut v: Value = serde_json::from_str(line).unwrap();
    let ts = v["ts"].as_u64().unwrap();
    v["ts"] = f(ts).into();
    if let (Some(id), Some(_)) = (id, v.get("event_id")) {
        v["event_id"] = id.into();
    }
    (
        v["customer_id"].as_str().unwrap().to_string(),
        v.to_string(),
    )
}

/// Injects `fault` into `book` at a position drawn from `rng`; `n` makes new ids unique.
pub fn inject(book: &mut Lines, fault: Fault, rng: &mut Rng, n: usize) -> Injected {
    let stream = match fault {
        Fault::OutOfRange => "transactions",
        // Customers records carry no event id: a duplicate is a newer-or-older record.
        Fault::Duplicate | Fault::Moved => ["loans", "transactions", "behaviors"][rng.below(3)],
        _ => STREAMS[rng.below(4)],
    };
    let lines = book.files.get_mut(stream).unwrap();
    let len = lines.len();
    let at = rng.below(len + 1);
    let src = rng.below(len);
    let id = format!("FAULT-{n}");
    match fault {
        Fault::BadLine => {
            lines.insert(at, format!("{{\"event_id\":\"{id}\","));
            Injected {
                customer: None,
                rejected: Some((stream.into(), "json".into())),
            }
        }
        Fault::TsZero | Fault::Older => {
            // Placed among records newer than it: at or after its source.
            let at = src + 1 + rng.below(len - src);
            let two_days = 2 * 86_400_000;
            let (c, line) = match fault {
                Fault::TsZero => with_ts(&lines[src], |_| 0, Some(&id)),
                _ => with_ts(&lines[src], |t| t.saturating_sub(two_days), Some(&id)),
            };
            lines.insert(at.min(lines.len()), line);
            Injected {
                customer: Some(c),
                rejected: None,
            }
        }
        Fault::Moved => {
            let line = lines.remove(src);
            let c = with_ts(&line, |t| t, None).0;
            lines.insert((src + 300).min(lines.len()), line);
            Injected {
                customer: Some(c),
                rejected: None,
            }
        }
        Fault::Duplicate => {
            let line = lines[src].clone();
            let c = with_ts(&line, |t| t, None).0;
            lines.insert((src + 1 + rng.below(len - src)).min(lines.len()), line);
            Injected {
                customer: Some(c),
                rejected: None,
            }
        }
        Fault::Future => {
            let (c, line) = with_ts(&lines[src], |t| t + 30 * 86_400_000, Some(&id));
            // Among its own neighbours, not among the last few records of the file.
            lines.insert(src.min(len.saturating_sub(100)), line.clone());
            Injected {
                customer: Some(c),
                rejected: Some((stream.into(), "future_ts".into())),
            }
        }
        Fault::OutOfRange => {
            let mut v: Value = serde_json::from_str(&lines[src]).unwrap();
            v["amount"] = (-5).into();
            v["event_id"] = id.into();
            lines.insert(at, v.to_string());
            Injected {
                customer: None,
                rejected: Some((stream.into(), "range:amount".into())),
            }
        }
    }
}

/// Replays `faulty` and checks it against `pristine` for the injected faults.
pub fn check_against(
    cfg: &(Config, Compiled),
    pristine: &Written,
    faulty: &Lines,
    injected: &[Injected],
    dir: &Path,
) {
    faulty.write(&dir.join("in"));
    let got = replay_dir(cfg, &dir.join("in"), &dir.join("out"));
    let touched: BTreeSet<String> = injected.iter().filter_map(|i| i.customer.clone()).collect();
    assert_eq!(
        got.without(&touched),
        pristine.without(&touched),
        "outputs of untouched customers changed; faults {injected:?}"
    );
    let mut want: Vec<(String, String)> =
        injected.iter().filter_map(|i| i.rejected.clone()).collect();
    let mut rejected: Vec<(String, String)> = got
        .rejected
        .iter()
        .map(|r| {
            (
                r["source"].as_str().unwrap().to_string(),
                r["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    want.sort();
    rejected.sort();
    assert_eq!(rejected, want, "rejected records; faults {injected:?}");
}

fn no_rings() -> (Config, Compiled) {
    super::support::compiled(NO_RINGS)
}

/// One fault of `kind` in `stream` at the end or the middle of its file, checked.
fn one_fault(name: &str, stream: &'static str, at_end: bool, ts: impl Fn(u64) -> u64) {
    let cfg = no_rings();
    let dir = temp_dir(name);
    let src = book(&format!("{name}-book"), 300, 30, 11);
    let pristine = replay_dir(&cfg, &src, &dir.join("pristine"));
    let mut lines = Lines::read(&src);
    let file = lines.files.get_mut(stream).unwrap();
    let pick = file.len() / 3;
    let (customer, line) = with_ts(&file[pick], ts, Some("FAULT-1"));
    let at = if at_end { file.len() } else { file.len() / 2 };
    file.insert(at, line);
    let injected = [Injected {
        customer: Some(customer),
        rejected: None,
    }];
    check_against(&cfg, &pristine, &lines, &injected, &dir);
    let got = read_outputs(&dir.join("out"));
    assert_eq!(
        got.summary["late"], 1,
        "the old record is late, and only it"
    );
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&src);
}

#[test]
fn a_ts_zero_record_at_the_end_of_transactions_does_not_get_its_file_rejected() {
    one_fault("ts0-end-txn", "transactions", true, |_| 0);
}

#[test]
fn a_ts_zero_record_in_the_middle_of_transactions_does_not_get_its_file_rejected() {
    one_fault("ts0-mid-txn", "transactions", false, |_| 0);
}

#[test]
fn a_record_a_day_older_than_its_neighbours_at_the_end_of_customers_is_only_late() {
    one_fault("old-end-cust", "customers", true, |t| t - 2 * 86_400_000);
}

#[test]
fn a_ts_zero_record_at_the_end_of_behaviors_does_not_get_its_file_rejected() {
    one_fault("ts0-end-beh", "behaviors", true, |_| 0);
}

#[test]
fn a_record_a_day_older_in_the_middle_of_behaviors_is_only_late() {
    one_fault("old-mid-beh", "behaviors", false, |t| t - 86_400_000 - 1);
}

#[test]
fn random_faults_never_change_untouched_customers_and_are_all_rejected_or_counted() {
    let cfg = no_rings();
    let src = book("faults-book", 300, 30, 5);
    let root = temp_dir("faults");
    let pristine = replay_dir(&cfg, &src, &root.join("pristine"));
    let base = Lines::read(&src);
    for seed in 1..=12u64 {
        let mut rng = Rng::new(seed);
        let mut lines = base.clone();
        let mut injected = Vec::new();
        for n in 0..1 + rng.below(5) {
            let fault = FAULTS[rng.below(FAULTS.len())];
            injected.push(inject(&mut lines, fault, &mut rng, n));
        }
        check_against(
            &cfg,
            &pristine,
            &lines,
            &injected,
            &root.join(format!("seed-{seed}")),
        );
    }
    // Every kind at once.
    let mut rng = Rng::new(99);
    let mut lines = base.clone();
    let injected: Vec<Injected> = FAULTS
        .iter()
        .enumerate()
        .map(|(n, f)| inject(&mut lines, *f, &mut rng, n))
        .collect();
    check_against(&cfg, &pristine, &lines, &injected, &root.join("all"));
    let _ = std::fs::remove_dir_all(&root);
    let _ = std::fs::remove_dir_all(&src);
}
