//! Shared helpers of the pipeline behaviour tests: NDJSON books built line by line, small
//! configs, a merge + run driver and accessors for the feature trace.

use riskwatch::pipeline::{run, RunOptions, RunOutput};
use riskwatch_connectors::file::merge::REORDER;
use riskwatch_connectors::file::{merge, MergeOptions};
use riskwatch_dataflows::graph::FeatureSnapshot;
use riskwatch_dataflows::plan::{compile, Compiled};
use riskwatch_model::config::Config;
use riskwatch_model::event::{Event, Stream};
use riskwatch_model::output::{Alert, Case, Decision};
use riskwatch_model::time::{ceil_to, MS_PER_DAY, MS_PER_HOUR};
use serde_json::{json, Value};

/// 2026-01-01T00:00:00Z, a UTC midnight (a multiple of every granularity that divides 1 d).
pub const START: u64 = 1_767_225_600_000;
/// One day in ms.
pub const DAY: u64 = MS_PER_DAY;
/// One hour in ms.
pub const HOUR: u64 = MS_PER_HOUR;
/// The default tick.
pub const TICK: u64 = 10;

/// Midnight (UTC) of day `n` of the test period.
pub fn day(n: u64) -> u64 {
    START + n * DAY
}

/// The last millisecond of day `n`: an installment due on day `n`.
pub fn due_on(n: u64) -> u64 {
    day(n + 1) - 1
}

/// Parses and compiles a config laid over the built-in defaults.
pub fn compiled(toml: &str) -> (Config, Compiled) {
    let config = Config::from_toml(toml).unwrap_or_else(|e| panic!("test config: {e}"));
    let compiled =
        compile(&config, |_| Err("no files".into())).unwrap_or_else(|e| panic!("compile: {e}"));
    (config, compiled)
}

/// The built-in default config (windows 1h/10s, 24h/5m, 7d/20m, 30d/90m).
pub fn default_config() -> (Config, Compiled) {
    compiled("")
}

/// A config whose only window counts failed logins, so that transactions and loan events
/// change nothing but the account: snapshots then come from account changes and DPD
/// wake-ups only. No extra DPD wake-ups, a skew large enough for sparse test books (in a
/// file, a record more than `max_future_skew` after the next one is `future_ts`), and a
/// 30-day duplicate horizon (the default is the longest window, here 1 h).
pub const ACCOUNT_ONLY: &str = r#"
[time]
max_future_skew = "400d"
dedupe_horizon = "30d"

[delinquency]
wake_at_dpd = []

[[window]]
name = "1h"
length = "1h"
granularity = "10s"
features = ["failed_logins"]

[[strategy]]
name = "plain"
role = "champion"

[strategy.scorecard]
base = 1000.0

[[strategy.rule]]
id = "late"
severity = "high"
expr = "bucket >= 1"
"#;

/// The four input streams of a test, as NDJSON lines (raw bytes, so that a test can add
/// lines that are not UTF-8).
#[derive(Clone, Debug, Default)]
pub struct Book {
    lines: [Vec<Vec<u8>>; 4],
}

fn with(mut base: Value, extra: Value) -> Value {
    if let (Some(b), Value::Object(e)) = (base.as_object_mut(), extra) {
        for (k, v) in e {
            b.insert(k, v);
        }
    }
    base
}

impl Book {
    /// An empty book.
    pub fn new() -> Book {
        Book::default()
    }

    /// Appends a raw line to a stream; returns its 1-based line number.
    pub fn raw(&mut self, stream: Stream, line: &[u8]) -> u64 {
        let lines = &mut self.lines[stream as usize];
        lines.push(line.to_vec());
        lines.len() as u64
    }

    /// Appends a JSON record to a stream; returns its line number.
    pub fn record(&mut self, stream: Stream, v: Value) -> u64 {
        self.raw(stream, v.to_string().as_bytes())
    }

    /// A customers record.
    pub fn customer(&mut self, c: &str, ts: u64, limit: u64, apr: u32) -> u64 {
        self.record(
            Stream::Customers,
            json!({"customer_id": c, "ts": ts, "credit_limit": limit, "apr_bps": apr}),
        )
    }

    /// [`REORDER`] records of a spacer customer (`SPACER`) at `ts` in `stream`: a record
    /// after them is further out of order than the merge puts back, so it is late.
    pub fn spacers(&mut self, stream: Stream, ts: u64) {
        for i in 0..REORDER {
            match stream {
                Stream::Customers => self.customer("SPACER", ts, 1, 1),
                Stream::Transactions => self.txn(&format!("SP{i}"), "SPACER", ts, "purchase", 1),
                Stream::Behaviors => self.beh(&format!("SP{i}"), "SPACER", ts, "login"),
                Stream::Loans => panic!("no loan spacers"),
            };
        }
    }

    /// An approved transaction.
    pub fn txn(&mut self, id: &str, c: &str, ts: u64, kind: &str, amount: u64) -> u64 {
        self.txn_x(id, c, ts, kind, amount, json!({}))
    }

    /// A transaction with extra fields (`status`, `loan_id`, `merchant_id` …).
    pub fn txn_x(
        &mut self,
        id: &str,
        c: &str,
        ts: u64,
        kind: &str,
        amount: u64,
        extra: Value,
    ) -> u64 {
        let base = json!({"event_id": id, "customer_id": c, "ts": ts, "type": kind,
                          "amount": amount, "currency": "CNY"});
        self.record(Stream::Transactions, with(base, extra))
    }

    /// A behaviour event.
    pub fn beh(&mut self, id: &str, c: &str, ts: u64, kind: &str) -> u64 {
        self.beh_x(id, c, ts, kind, json!({}))
    }

    /// A behaviour event with extra fields (`device_id`, `lender_id` …).
    pub fn beh_x(&mut self, id: &str, c: &str, ts: u64, kind: &str, extra: Value) -> u64 {
        let base = json!({"event_id": id, "customer_id": c, "ts": ts, "type": kind});
        self.record(Stream::Behaviors, with(base, extra))
    }

    /// An `installment_due` published at `ts`.
    #[allow(clippy::too_many_arguments)]
    pub fn due(
        &mut self,
        id: &str,
        c: &str,
        loan: &str,
        no: u32,
        ts: u64,
        due_ts: u64,
        amount: u64,
    ) -> u64 {
        self.record(
            Stream::Loans,
            json!({"event_id": id, "customer_id": c, "loan_id": loan, "ts": ts,
                   "type": "installment_due", "installment_no": no, "due_ts": due_ts,
                   "amount": amount}),
        )
    }

    /// A `settled` or `written_off` loan event.
    pub fn loan_event(&mut self, id: &str, c: &str, loan: &str, ts: u64, kind: &str) -> u64 {
        self.record(
            Stream::Loans,
            json!({"event_id": id, "customer_id": c, "loan_id": loan, "ts": ts, "type": kind}),
        )
    }

    /// The lines of one stream.
    pub fn lines(&self, stream: Stream) -> &[Vec<u8>] {
        &self.lines[stream as usize]
    }

    /// Sorts every stream by `ts` (stable: ties keep their order). Every line must be a
    /// JSON object with a `ts`.
    pub fn sort_by_ts(&mut self) {
        for lines in self.lines.iter_mut() {
            lines.sort_by_key(|l| {
                let v: Value = serde_json::from_slice(l).expect("a JSON line");
                v["ts"].as_u64().expect("a ts")
            });
        }
    }

    /// The four NDJSON texts, indexed by `Stream as usize`.
    pub fn texts(&self) -> [Vec<u8>; 4] {
        let mut out: [Vec<u8>; 4] = Default::default();
        for (i, lines) in self.lines.iter().enumerate() {
            for l in lines {
                out[i].extend_from_slice(l);
                out[i].push(b'\n');
            }
        }
        out
    }
}

/// A merge + run.
pub struct Run {
    /// What the pipeline produced.
    pub out: RunOutput,
    /// Feature names by id.
    pub names: Vec<String>,
    /// `merged.late`.
    pub late: u64,
    /// `merged.rejected`, parsed.
    pub rejected: Vec<Value>,
    /// `merged.max_ts`.
    pub max_ts: u64,
    /// The end of the run (tick-aligned).
    pub end: u64,
    /// The merged events with their times.
    pub events: Vec<(u64, Event)>,
}

/// Merges `texts` and runs them on `workers` workers with tracing on, ending at
/// `ceil_tick(until.unwrap_or(max_ts))`, as `riskwatch replay` does.
pub fn run_texts(
    compiled: &Compiled,
    config: &Config,
    texts: &[Vec<u8>; 4],
    until: Option<u64>,
    workers: usize,
) -> Run {
    let refs: Vec<&[u8]> = texts.iter().map(|t| t.as_slice()).collect();
    let mut merged = merge(
        &refs,
        MergeOptions {
            tick: compiled.tick,
            max_future_skew: config.time.max_future_skew.ms(),
            until,
            threads: 1,
        },
    );
    let end = ceil_to(until.unwrap_or(merged.max_ts), compiled.tick);
    let events = std::mem::take(&mut merged.events);
    let out = run(
        compiled,
        events.clone(),
        RunOptions {
            trace: true,
            ..RunOptions::new(workers, end)
        },
    );
    Run {
        out,
        names: compiled.layout.names.clone(),
        late: merged.late,
        rejected: merged
            .rejected
            .iter()
            .map(|l| serde_json::from_str(l).expect("rejected lines are JSON"))
            .collect(),
        max_ts: merged.max_ts,
        end,
        events,
    }
}

/// [`run_texts`] over a [`Book`] on one worker.
pub fn run_book(cfg: &(Config, Compiled), book: &Book, until: Option<u64>) -> Run {
    run_texts(&cfg.1, &cfg.0, &book.texts(), until, 1)
}

/// [`run_book`] over a copy of the book with every stream sorted by ts (nothing late).
pub fn run_sorted(cfg: &(Config, Compiled), book: &Book, until: Option<u64>) -> Run {
    let mut sorted = book.clone();
    sorted.sort_by_ts();
    run_book(cfg, &sorted, until)
}

impl Run {
    /// The feature id of `name`.
    pub fn id(&self, name: &str) -> usize {
        self.names
            .iter()
            .position(|n| n == name)
            .unwrap_or_else(|| panic!("no feature {name}"))
    }

    /// The snapshots of one customer, by time.
    pub fn snaps(&self, customer: &str) -> Vec<&FeatureSnapshot> {
        self.out
            .trace
            .iter()
            .filter(|s| s.customer_id == customer)
            .collect()
    }

    /// The snapshot times of one customer.
    pub fn times(&self, customer: &str) -> Vec<u64> {
        self.snaps(customer).iter().map(|s| s.time).collect()
    }

    /// `(time, value)` of one feature at every snapshot of one customer.
    pub fn series(&self, customer: &str, feature: &str) -> Vec<(u64, Option<f64>)> {
        let id = self.id(feature);
        self.snaps(customer)
            .iter()
            .map(|s| (s.time, s.values[id]))
            .collect()
    }

    /// The value of a feature in the snapshot of `customer` at exactly `time`.
    pub fn at(&self, customer: &str, time: u64, feature: &str) -> Option<f64> {
        let id = self.id(feature);
        let snaps = self.snaps(customer);
        let s = snaps.iter().find(|s| s.time == time).unwrap_or_else(|| {
            panic!(
                "{customer} has no snapshot at {time} (has {:?})",
                self.times(customer)
            )
        });
        s.values[id]
    }

    /// The value of a feature in force at `time` (from the last snapshot at or before it).
    pub fn value_at(&self, customer: &str, time: u64, feature: &str) -> Option<f64> {
        let id = self.id(feature);
        self.snaps(customer)
            .iter()
            .rev()
            .find(|s| s.time <= time)
            .and_then(|s| s.values[id])
    }

    /// The alerts of a customer as `(ts, rule_id)`.
    pub fn alerts_of(&self, customer: &str) -> Vec<(u64, String)> {
        self.out
            .alerts
            .iter()
            .filter(|a| a.customer_id == customer)
            .map(|a| (a.ts, a.rule_id.clone()))
            .collect()
    }
}

/// Alerts without their wall-clock `emitted_at`, for comparisons between runs.
pub fn comparable(alerts: &[Alert]) -> Vec<Alert> {
    alerts
        .iter()
        .map(|a| Alert {
            emitted_at: 0,
            ..a.clone()
        })
        .collect()
}

/// Decisions without their wall-clock `emitted_at`.
pub fn comparable_decisions(decisions: &[Decision]) -> Vec<Decision> {
    decisions
        .iter()
        .map(|d| Decision {
            emitted_at: 0,
            ..d.clone()
        })
        .collect()
}

/// Case events without their wall-clock `emitted_at`.
pub fn comparable_cases(cases: &[Case]) -> Vec<Case> {
    cases
        .iter()
        .map(|c| Case {
            emitted_at: 0,
            ..c.clone()
        })
        .collect()
}

/// `None` when equal, else where two lists first differ (both records), for messages that
/// stay readable on large outputs.
pub fn first_difference<T: PartialEq + std::fmt::Debug>(a: &[T], b: &[T]) -> Option<String> {
    if a == b {
        return None;
    }
    let i = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    Some(format!(
        "lengths {} and {}; first difference at {i}:\n  {:?}\n  {:?}",
        a.len(),
        b.len(),
        a.get(i),
        b.get(i)
    ))
}

/// A fresh, empty directory under the system temp dir, unique per process and name.
pub fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "riskwatch-pipeline-test-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}
