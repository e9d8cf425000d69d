//! `riskwatch bench --scrape`: what serving `/metrics` under scrape load costs the pipeline.
//!
//! The bench book is replayed in a child `riskwatch replay --metrics-addr` process, `runs`
//! times without a scraper and `runs` times with one, interleaved (quiet, scraped, quiet,
//! …) so that drift of the machine falls on both. The scraper is a thread of the bench that
//! GETs `/metrics` every `interval` over plain HTTP/1.1, as Prometheus would, but far more
//! often (Prometheus scrapes every 15–60 s; the default here is 10 a second). The report is
//! the median events/s of each, the overhead between them, and the scrapes answered.

use crate::bench::{bench_book, replay_process};
use crate::quality::median;
use anyhow::Context;
use serde::Serialize;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Options of the scrape bench.
#[derive(Clone, Debug)]
pub struct ScrapeBenchArgs {
    /// Customers in the book.
    pub customers: u64,
    /// Days in the book.
    pub days: u64,
    /// Runs of each kind (the median is reported).
    pub runs: usize,
    /// Workers of the replay.
    pub workers: usize,
    /// Time between two scrapes.
    pub interval: Duration,
    /// Working directory (the book is cached here).
    pub dir: PathBuf,
}

/// The scrape bench's figures.
#[derive(Clone, Debug, Serialize)]
pub struct ScrapeReport {
    /// Machine description.
    pub machine: String,
    /// Input records per replay.
    pub events: u64,
    /// Workers.
    pub workers: usize,
    /// Milliseconds between scrapes.
    pub interval_ms: u64,
    /// Median events/s without scrapes.
    pub quiet_events_per_s: f64,
    /// Median events/s while scraped.
    pub scraped_events_per_s: f64,
    /// Every run's events/s without and with scrapes, in run order.
    pub quiet_runs: Vec<f64>,
    /// See `quiet_runs`.
    pub scraped_runs: Vec<f64>,
    /// `1 - scraped / quiet`, in percent (negative: the scraped runs were faster).
    pub overhead_percent: f64,
    /// Scrapes answered, over all scraped runs.
    pub scrapes: u64,
    /// Median size of one scrape, bytes.
    pub scrape_bytes: u64,
}

/// A free loopback port (bound, then released for the child to take).
fn free_port() -> anyhow::Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("binding a loopback port")?;
    Ok(l.local_addr().context("reading the bound port")?.port())
}

/// One `GET /metrics`; the body's length, or `None` when nothing answered (yet).
fn scrape(addr: SocketAddr) -> Option<u64> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut body = Vec::new();
    s.read_to_end(&mut body).ok()?;
    (body.starts_with(b"HTTP/1.1 200")).then_some(body.len() as u64)
}

/// Scrapes `addr` every `interval` until `stop`; counts the answers and their sizes.
fn scraper(
    addr: SocketAddr,
    interval: Duration,
    stop: Arc<AtomicBool>,
    answered: Arc<AtomicU64>,
) -> std::thread::JoinHandle<Vec<u64>> {
    std::thread::spawn(move || {
        let mut sizes = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            if let Some(n) = scrape(addr) {
                answered.fetch_add(1, Ordering::Relaxed);
                sizes.push(n);
            }
            std::thread::sleep(interval);
        }
        sizes
    })
}

/// Runs the scrape bench.
pub fn bench_scrape(args: &ScrapeBenchArgs) -> anyhow::Result<ScrapeReport> {
    let book = bench_book(&args.dir, args.customers, args.days)?;
    let out = args.dir.join("out-scrape");
    let (mut quiet, mut scraped) = (Vec::new(), Vec::new());
    let answered = Arc::new(AtomicU64::new(0));
    let mut sizes = Vec::new();
    let mut events = 0;
    for i in 0..args.runs {
        for scraping in [false, true] {
            let port = free_port()?;
            let addr: SocketAddr = ([127, 0, 0, 1], port).into();
            let extra = vec!["--metrics-addr".to_string(), addr.to_string()];
            let stop = Arc::new(AtomicBool::new(false));
            let thread =
                scraping.then(|| scraper(addr, args.interval, stop.clone(), answered.clone()));
            let run = replay_process(&book, &out, args.workers, &extra);
            stop.store(true, Ordering::Relaxed);
            if let Some(t) = thread {
                sizes.extend(t.join().expect("the scraper thread does not panic"));
            }
            let (run, _) = run?;
            events = run.events;
            eprintln!(
                "  run {}/{} {}: {:.0} events/s",
                i + 1,
                args.runs,
                if scraping { "scraped" } else { "quiet  " },
                run.events_per_s
            );
            if scraping {
                scraped.push(run.events_per_s);
            } else {
                quiet.push(run.events_per_s);
            }
        }
    }
    let mid = |v: &[f64]| {
        let mut s = v.to_vec();
        s.sort_by(f64::total_cmp);
        median(&s)
    };
    let (q, s) = (mid(&quiet), mid(&scraped));
    sizes.sort_unstable();
    Ok(ScrapeReport {
        machine: crate::bench::machine(),
        events,
        workers: args.workers,
        interval_ms: args.interval.as_millis() as u64,
        quiet_events_per_s: q,
        scraped_events_per_s: s,
        quiet_runs: quiet,
        scraped_runs: scraped,
        overhead_percent: (1.0 - s / q.max(1e-9)) * 100.0,
        scrapes: answered.load(Ordering::Relaxed),
        scrape_bytes: sizes.get(sizes.len() / 2).copied().unwrap_or(0),
    })
}

/// The report as a table.
pub fn table(r: &ScrapeReport) -> String {
    format!(
        "machine: {}\n\
         scrape bench: {} events on {} workers, /metrics scraped every {} ms\n\
         \n\
         | replay | events/s (median) | runs |\n\
         |---|---|---|\n\
         | quiet | {:.0} | {} |\n\
         | scraped | {:.0} | {} |\n\
         \n\
         overhead under scrape load: {:.1}% ({} scrapes answered, {} bytes each)\n",
        r.machine,
        r.events,
        r.workers,
        r.interval_ms,
        r.quiet_events_per_s,
        fmt_runs(&r.quiet_runs),
        r.scraped_events_per_s,
        fmt_runs(&r.scraped_runs),
        r.overhead_percent,
        r.scrapes,
        r.scrape_bytes
    )
}

fn fmt_runs(runs: &[f64]) -> String {
    runs.iter()
        .map(|r| format!("{r:.0}"))
        .collect::<Vec<_>>()
        .join(", ")
}
