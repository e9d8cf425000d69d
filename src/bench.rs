//! `riskwatch bench`: replay throughput from files, and open-loop latency on a dense
//! stream paced to the wall clock.
//!
//! Replay: a generated book is replayed (decode + merge + dataflow) at 1 and 2 workers,
//! `runs` times each; the median is reported. Latency: each worker produces its share of a
//! fixed event rate, stamping each event with the wall clock (event time = ingest time) and
//! advancing its input every tick whether or not the dataflow kept up (open loop). Output
//! latency is from the tick's ingest to the moment the alert reaches the sink; frontier delay
//! is from a tick's ingest to the moment the output frontier passes it.

use crate::quality::median;
use crate::replay::load_config;
use anyhow::Context;
use riskwatch_connectors::generator::{generate, GenConfig};
use riskwatch_dataflows::graph::build;
use riskwatch_dataflows::plan::Compiled;
use riskwatch_dataflows::stats::Stats;
use riskwatch_model::event::{
    id_hash, Behavior, BehaviorKind, Body, CustomerRecord, CustomerStatus, Event, Transaction,
    TxnKind,
};
use riskwatch_model::time::ceil_to;
use serde::Serialize;
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use timely::dataflow::operators::vec::Map;
use timely::dataflow::operators::Probe;
use timely::dataflow::ProbeHandle;

/// Options of the benchmark.
#[derive(Clone, Debug)]
pub struct BenchArgs {
    /// Customers in the replay book.
    pub customers: u64,
    /// Days in the replay book.
    pub days: u64,
    /// Runs per configuration (the median is reported).
    pub runs: usize,
    /// Worker counts for replay.
    pub workers: Vec<usize>,
    /// Open-loop rates (events/s) for the latency benchmark.
    pub rates: Vec<u64>,
    /// Seconds per latency run.
    pub seconds: u64,
    /// Customers in the latency stream.
    pub latency_customers: u64,
    /// Working directory (the book is cached here).
    pub dir: PathBuf,
    /// Skip the replay part.
    pub skip_replay: bool,
    /// Skip the latency part.
    pub skip_latency: bool,
}

/// One replay measurement.
#[derive(Clone, Debug, Serialize)]
pub struct ReplayFigure {
    /// Workers.
    pub workers: usize,
    /// Input records.
    pub events: u64,
    /// Median events/s over the whole replay (read + decode + dataflow + write).
    pub events_per_s: f64,
    /// Median events/s of the dataflow alone.
    pub dataflow_events_per_s: f64,
    /// All runs' whole-replay rates.
    pub runs: Vec<f64>,
    /// Median peak resident memory of the replay process, bytes.
    pub peak_rss_bytes: u64,
}

/// One latency measurement.
#[derive(Clone, Debug, Serialize)]
pub struct LatencyFigure {
    /// Target rate.
    pub rate: u64,
    /// Achieved input rate.
    pub achieved: f64,
    /// Workers.
    pub workers: usize,
    /// Outputs measured.
    pub outputs: u64,
    /// Output latency p50, ms.
    pub p50_ms: f64,
    /// Output latency p99, ms.
    pub p99_ms: f64,
    /// Output latency max, ms.
    pub max_ms: f64,
    /// Frontier delay p50, ms.
    pub frontier_p50_ms: f64,
    /// Frontier delay p99, ms.
    pub frontier_p99_ms: f64,
    /// Frontier delay max, ms.
    pub frontier_max_ms: f64,
}

/// All figures.
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    /// Machine description.
    pub machine: String,
    /// Replay figures.
    pub replay: Vec<ReplayFigure>,
    /// Latency figures.
    pub latency: Vec<LatencyFigure>,
}

/// The machine: core count and CPU model (for reports).
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown cpu".into());
    format!(
        "{} cores, {cpu}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    )
}

/// The bench book of `customers` × `days` (seed 7) under `dir`, generated once and cached.
pub fn bench_book(dir: &std::path::Path, customers: u64, days: u64) -> anyhow::Result<PathBuf> {
    let book = dir.join(format!("book-{customers}c-{days}d"));
    if !book.join("truth.ndjson").exists() {
        eprintln!("generating the bench book into {}", book.display());
        std::fs::create_dir_all(&book)?;
        generate(
            &GenConfig {
                customers,
                days,
                seed: 7,
                ..GenConfig::default()
            },
            &book,
        )?;
    }
    Ok(book)
}

/// Replays `book` into `out` on `workers` (plus `extra` flags) in a child `riskwatch replay`
/// process, so that its peak resident memory is its own: returns its summary and that peak
/// (bytes, from `VmHWM` in /proc, read until it exits).
pub(crate) fn replay_process(
    book: &Path,
    out: &Path,
    workers: usize,
    extra: &[String],
) -> anyhow::Result<(ReplayRun, u64)> {
    let exe = std::env::current_exe().context("finding the riskwatch binary")?;
    let mut child = std::process::Command::new(&exe)
        .arg("replay")
        .arg("--input")
        .arg(book)
        .arg("--output")
        .arg(out)
        .args(["--workers", &workers.to_string()])
        .args(extra)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", exe.display()))?;
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0u64;
    let status = loop {
        if let Some(kb) = crate::progress::status_kb(&status_file, "VmHWM") {
            peak = peak.max(kb * 1024);
        }
        if let Some(status) = child.try_wait()? {
            break status;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    if !status.success() {
        anyhow::bail!("riskwatch replay of {} failed: {status}", book.display());
    }
    let path = out.join("summary.json");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let run = ReplayRun {
        events: v["read"]
            .as_object()
            .map_or(0, |m| m.values().filter_map(|n| n.as_u64()).sum()),
        events_per_s: v["timing"]["events_per_s"].as_f64().unwrap_or(0.0),
        dataflow_s: v["timing"]["dataflow_s"].as_f64().unwrap_or(0.0),
    };
    Ok((run, peak))
}

/// The figures of one replay the bench ran, from its summary.json.
pub(crate) struct ReplayRun {
    /// Input records.
    pub events: u64,
    /// Events/s over the whole replay.
    pub events_per_s: f64,
    /// Seconds in the dataflow.
    pub dataflow_s: f64,
}

/// Runs the benchmark.
pub fn bench(args: &BenchArgs) -> anyhow::Result<BenchReport> {
    let (_, compiled) = load_config(None)?;
    let mut report = BenchReport {
        machine: machine(),
        replay: Vec::new(),
        latency: Vec::new(),
    };
    if !args.skip_replay {
        let book = bench_book(&args.dir, args.customers, args.days)?;
        for &w in &args.workers {
            let mut rates = Vec::new();
            let mut df_rates = Vec::new();
            let mut events = 0;
            let mut peaks = Vec::new();
            for i in 0..args.runs {
                let out = args.dir.join(format!("out-{w}"));
                let (run, peak) = replay_process(&book, &out, w, &[])?;
                events = run.events;
                rates.push(run.events_per_s);
                df_rates.push(events as f64 / run.dataflow_s.max(1e-9));
                peaks.push(peak);
                eprintln!(
                    "  replay run {}/{} on {w} workers: {:.0} events/s (dataflow {:.0}/s), peak RSS {:.0} MB",
                    i + 1,
                    args.runs,
                    run.events_per_s,
                    events as f64 / run.dataflow_s.max(1e-9),
                    peak as f64 / 1e6
                );
            }
            peaks.sort_unstable();
            let mut sorted = rates.clone();
            sorted.sort_by(f64::total_cmp);
            df_rates.sort_by(f64::total_cmp);
            report.replay.push(ReplayFigure {
                workers: w,
                events,
                events_per_s: median(&sorted),
                dataflow_events_per_s: median(&df_rates),
                runs: rates,
                peak_rss_bytes: peaks[peaks.len() / 2],
            });
        }
    }
    if !args.skip_latency {
        for &rate in &args.rates {
            let w = *args.workers.iter().max().unwrap_or(&2);
            let fig = latency(&compiled, rate, w, args.seconds, args.latency_customers);
            eprintln!(
                "  latency at {rate} events/s on {w} workers: p99 {:.1} ms",
                fig.p99_ms
            );
            report.latency.push(fig);
        }
    }
    Ok(report)
}

/// Formats the report as a table.
pub fn table(r: &BenchReport) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(s, "machine: {}", r.machine);
    if !r.replay.is_empty() {
        let _ = writeln!(s, "\nreplay throughput (median of runs)");
        let _ = writeln!(
            s,
            "  {:>7} {:>10} {:>14} {:>16} {:>14}",
            "workers", "events", "events/s", "dataflow ev/s", "peak RSS MB"
        );
        for f in &r.replay {
            let _ = writeln!(
                s,
                "  {:>7} {:>10} {:>14.0} {:>16.0} {:>14.0}",
                f.workers,
                f.events,
                f.events_per_s,
                f.dataflow_events_per_s,
                f.peak_rss_bytes as f64 / 1e6
            );
        }
    }
    if !r.latency.is_empty() {
        let _ = writeln!(s, "\nopen-loop latency (event time = ingest wall clock)");
        let _ = writeln!(
            s,
            "  {:>8} {:>10} {:>7} {:>8} {:>8} {:>8} {:>8} {:>10} {:>10} {:>10}",
            "rate",
            "achieved",
            "workers",
            "outputs",
            "p50 ms",
            "p99 ms",
            "max ms",
            "front p50",
            "front p99",
            "front max"
        );
        for f in &r.latency {
            let _ =
                writeln!(
                s,
                "  {:>8} {:>10.0} {:>7} {:>8} {:>8.2} {:>8.2} {:>8.2} {:>10.2} {:>10.2} {:>10.2}",
                f.rate, f.achieved, f.workers, f.outputs, f.p50_ms, f.p99_ms, f.max_ms,
                f.frontier_p50_ms, f.frontier_p99_ms, f.frontier_max_ms
            );
        }
    }
    s
}

/// A deterministic xorshift for the synthetic stream.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn customer_name(i: u64) -> compact_str::CompactString {
    compact_str::format_compact!("B{i:07}")
}

fn synthetic(rng: &mut Rng, customers: u64, ts: u64, seq: u64) -> Event {
    let c = rng.next() % customers;
    let customer_id = customer_name(c);
    let r = rng.next() % 100;
    let body = if r < 80 {
        let kind = match r {
            0..=64 => TxnKind::Purchase,
            65..=74 => TxnKind::CashWithdrawal,
            _ => TxnKind::Repayment,
        };
        Body::Transaction(Transaction {
            kind,
            approved: !rng.next().is_multiple_of(50),
            amount: 1_000 + rng.next() % 40_000,
            loan_id: None,
            merchant: 1 + rng.next() % 200,
            device: 1 + c,
            ip: 0,
        })
    } else {
        let kind = match r {
            80..=92 => BehaviorKind::Login,
            93..=97 => BehaviorKind::LoginFailed,
            _ => BehaviorKind::CreditInquiry,
        };
        Body::Behavior(Behavior {
            kind,
            device: 1 + c,
            ip: 0,
            phone: 0,
            lender: 1 + rng.next() % 20,
        })
    };
    Event {
        ts,
        seq,
        key: id_hash(&customer_id),
        customer_id,
        event_id: rng.next() | 1,
        body,
    }
}

fn now_ms() -> u64 {
    riskwatch_dataflows::operators::evaluate::wall_clock_ms()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// One open-loop latency run.
pub fn latency(
    compiled: &Compiled,
    rate: u64,
    workers: usize,
    seconds: u64,
    customers: u64,
) -> LatencyFigure {
    let compiled = Arc::new(compiled.clone());
    let sent: Arc<Mutex<HashMap<u64, Instant>>> = Arc::new(Mutex::new(HashMap::new()));
    let tick = compiled.tick;
    let sent_by_workers = sent.clone();
    let guards = timely::execute(timely::Config::process(workers), move |worker| {
        let sent = &sent_by_workers;
        let index = worker.index() as u64;
        let peers = worker.peers() as u64;
        let plan = compiled.plan();
        let stats = Rc::new(RefCell::new(Stats::default()));
        let outputs: Rc<RefCell<Vec<(u64, Instant)>>> = Rc::new(RefCell::new(Vec::new()));
        let probe = ProbeHandle::new();
        let mut input = differential_dataflow::input::InputSession::<u64, Event, isize>::new();
        let mut control = differential_dataflow::input::InputSession::new();
        let dataflow = worker.next_dataflow_index();
        worker.dataflow::<u64, _, _>(|scope| {
            let sink = outputs.clone();
            build(
                input.to_collection(scope),
                control.to_collection(scope),
                &plan,
                stats.clone(),
            )
            .alerts
            .flat_map(move |(_alert, time, _)| {
                sink.borrow_mut().push((time, Instant::now()));
                None::<()>
            })
            .probe_with(&probe);
        });
        // No strategy changes in the benchmark: close the control input so it never holds
        // the frontier back.
        control.close();
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (index + 1));
        // Bootstrap every customer's limit just before the measured stream.
        let start_ms = ceil_to(now_ms(), tick);
        let mut seq = 0u64;
        for c in (index..customers).step_by(peers as usize) {
            let customer_id = customer_name(c);
            input.update_at(
                Event {
                    ts: start_ms,
                    seq,
                    key: id_hash(&customer_id),
                    customer_id,
                    event_id: 0,
                    body: Body::Customer(CustomerRecord {
                        credit_limit: 2_000_000,
                        apr_bps: 1800,
                        status: CustomerStatus::Active,
                        balance: Some(0),
                        phone: 0,
                    }),
                },
                start_ms,
                1,
            );
            seq += 1;
        }
        input.advance_to(start_ms + tick);
        input.flush();
        worker.step_while(|| probe.less_than(&(start_ms + tick)));
        // Open loop: per tick, this worker's share of rate × tick.
        let per_tick = (rate as f64 * tick as f64 / 1000.0 / peers as f64).max(1.0);
        let mut carry = 0.0;
        let begin = Instant::now();
        let stop = begin + Duration::from_secs(seconds);
        let mut frontier_delays = Vec::new();
        let mut pending_ticks: std::collections::VecDeque<(u64, Instant)> = Default::default();
        let mut produced = 0u64;
        let mut current = input.time().to_owned();
        while Instant::now() < stop {
            let now = now_ms();
            let t = ceil_to(now, tick);
            if t >= current {
                // A new tick: produce its share, and the share of any tick the wall clock
                // passed while the worker was busy (open loop: the offered rate holds).
                carry += per_tick * ((t - current) / tick + 1) as f64;
                let n = carry as u64;
                carry -= n as f64;
                let at = Instant::now();
                for _ in 0..n {
                    input.update_at(synthetic(&mut rng, customers, now, seq), t, 1);
                    seq += 1;
                }
                produced += n;
                sent.lock().expect("bench lock").entry(t).or_insert(at);
                pending_ticks.push_back((t, at));
                input.advance_to(t + tick);
                input.flush();
                current = t + tick;
            }
            worker.step_or_park(Some(Duration::from_micros(300)));
            while let Some(&(t, at)) = pending_ticks.front() {
                if probe.less_than(&(t + 1)) {
                    break;
                }
                frontier_delays.push(at.elapsed().as_secs_f64() * 1000.0);
                pending_ticks.pop_front();
            }
        }
        let elapsed = begin.elapsed().as_secs_f64();
        worker.drop_dataflow(dataflow);
        let outs = std::mem::take(&mut *outputs.borrow_mut());
        (outs, frontier_delays, produced as f64 / elapsed)
    })
    .expect("timely workers start");
    let mut lat = Vec::new();
    let mut front = Vec::new();
    let mut achieved = 0.0;
    let results: Vec<_> = guards
        .join()
        .into_iter()
        .map(|r| r.expect("worker"))
        .collect();
    let sent = sent.lock().expect("bench lock");
    for (outs, fronts, rate) in results {
        achieved += rate;
        front.extend(fronts);
        for (t, at) in outs {
            if let Some(s) = sent.get(&t) {
                lat.push(at.duration_since(*s).as_secs_f64() * 1000.0);
            }
        }
    }
    lat.sort_by(f64::total_cmp);
    front.sort_by(f64::total_cmp);
    LatencyFigure {
        rate,
        achieved,
        workers,
        outputs: lat.len() as u64,
        p50_ms: percentile(&lat, 0.5),
        p99_ms: percentile(&lat, 0.99),
        max_ms: lat.last().copied().unwrap_or(0.0),
        frontier_p50_ms: percentile(&front, 0.5),
        frontier_p99_ms: percentile(&front, 0.99),
        frontier_max_ms: front.last().copied().unwrap_or(0.0),
    }
}
