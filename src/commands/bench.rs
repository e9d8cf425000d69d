//! `riskwatch bench`: replay throughput and latency, in process or through a broker.

use riskwatch::bench::{bench, table, BenchArgs};
use riskwatch::bench_kafka::{bench_kafka, KafkaBenchArgs};
use std::path::PathBuf;

/// Flags of `bench`.
#[derive(clap::Args)]
pub struct Args {
    /// Customers in the replay book.
    #[arg(long, default_value_t = 20_000)]
    customers: u64,
    /// Days in the replay book.
    #[arg(long, default_value_t = 120)]
    days: u64,
    /// Runs per figure (median reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Worker counts for replay (comma separated, each at least 1).
    #[arg(long, value_delimiter = ',', default_value = "1,2", value_parser = super::workers)]
    workers: Vec<usize>,
    /// Latency rates in events/s (comma separated).
    #[arg(long, value_delimiter = ',', default_value = "50000,100000")]
    rates: Vec<u64>,
    /// Seconds per latency run.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Customers in the latency stream.
    #[arg(long, default_value_t = 100_000)]
    latency_customers: u64,
    /// Working directory (book cache).
    #[arg(long, default_value = "out/bench")]
    dir: PathBuf,
    /// Only the replay part.
    #[arg(long, conflicts_with = "latency_only")]
    replay_only: bool,
    /// Only the latency part.
    #[arg(long)]
    latency_only: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Measure end to end through a Kafka broker instead (needs --brokers).
    #[arg(long, requires = "brokers", conflicts_with_all = ["replay_only", "latency_only", "customers", "days"])]
    kafka: bool,
    /// Kafka bench: the broker (host:port).
    #[arg(long, requires = "kafka")]
    brokers: Option<String>,
    /// Kafka bench: input rates in events/s; 0 = as fast as possible (comma separated).
    #[arg(long, value_delimiter = ',', default_value = "20000,50000,0")]
    kafka_rates: Vec<u64>,
    /// Kafka bench: partitions per input topic.
    #[arg(long, default_value_t = 4)]
    partitions: i32,
    /// Kafka bench: checkpoint into a fresh state directory every this much wall time
    /// (e.g. `5s`), to measure what checkpoints cost live.
    #[arg(long, requires = "kafka", value_parser = riskwatch::state::parse_every)]
    kafka_checkpoint_every: Option<u64>,
    /// Measure checkpoints and restarts instead: checkpoint cost in a replay, state bytes
    /// per customer, and the time from a restart to running again.
    #[arg(long, conflicts_with_all = ["kafka", "replay_only", "latency_only"])]
    restart: bool,
    /// Measure what serving /metrics under scrape load costs a replay instead: replays
    /// with and without a scraper, interleaved, on the largest --workers.
    #[arg(long, conflicts_with_all = ["kafka", "replay_only", "latency_only", "restart"])]
    scrape: bool,
    /// Scrape bench: milliseconds between two scrapes of /metrics.
    #[arg(long, requires = "scrape", default_value_t = 100)]
    scrape_interval_ms: u64,
    /// Restart bench: checkpoint interval of event time.
    #[arg(long, requires = "restart", default_value = "1d", value_parser = riskwatch::state::parse_every)]
    checkpoint_every: u64,
}

/// Runs the benchmark and prints its table (or JSON).
pub fn run(a: Args) -> anyhow::Result<i32> {
    if a.restart {
        let report =
            riskwatch::bench_restart::bench_restart(&riskwatch::bench_restart::RestartBenchArgs {
                customers: a.customers,
                days: a.days,
                runs: a.runs,
                workers: a.workers.iter().copied().max().unwrap_or(2),
                dir: a.dir,
                every: a.checkpoint_every,
            })?;
        if a.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print!("{}", riskwatch::bench_restart::table(&report));
        }
        return Ok(riskwatch::exit::OK);
    }
    if a.scrape {
        let report =
            riskwatch::bench_scrape::bench_scrape(&riskwatch::bench_scrape::ScrapeBenchArgs {
                customers: a.customers,
                days: a.days,
                runs: a.runs,
                workers: a.workers.iter().copied().max().unwrap_or(2),
                interval: std::time::Duration::from_millis(a.scrape_interval_ms.max(1)),
                dir: a.dir,
            })?;
        if a.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print!("{}", riskwatch::bench_scrape::table(&report));
        }
        return Ok(riskwatch::exit::OK);
    }
    if a.kafka {
        let report = bench_kafka(&KafkaBenchArgs {
            brokers: a.brokers.unwrap_or_default(),
            rates: a.kafka_rates,
            seconds: a.seconds,
            customers: a.latency_customers.min(20_000),
            workers: a.workers.iter().copied().max().unwrap_or(2),
            partitions: a.partitions,
            dir: a.dir,
            runs: a.runs,
            checkpoint_every: a.kafka_checkpoint_every,
        })?;
        if a.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print!("{}", riskwatch::bench_kafka::table(&report));
        }
        return Ok(riskwatch::exit::OK);
    }
    let report = bench(&BenchArgs {
        customers: a.customers,
        days: a.days,
        runs: a.runs,
        workers: a.workers,
        rates: a.rates,
        seconds: a.seconds,
        latency_customers: a.latency_customers,
        dir: a.dir,
        skip_replay: a.latency_only,
        skip_latency: a.replay_only,
    })?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", table(&report));
    }
    Ok(riskwatch::exit::OK)
}
