//! `riskwatch produce`: a book's four files into the input topics, in event-time order.

use riskwatch::replay::load_config;
use std::path::PathBuf;

/// Flags of `produce`.
#[derive(clap::Args)]
pub struct Args {
    /// Directory with transactions/behaviors/loans/customers.ndjson.
    #[arg(long)]
    input: PathBuf,
    /// Brokers (host:port,...); default: kafka.brokers of the config.
    #[arg(long)]
    brokers: Option<String>,
    /// Records per second; as fast as possible when absent.
    #[arg(long)]
    rate: Option<u64>,
    /// Config file for topic names and producer settings.
    #[arg(long)]
    config: Option<PathBuf>,
}

/// Produces the book.
pub fn run(a: Args) -> anyhow::Result<i32> {
    let (mut cfg, _) = load_config(a.config.as_deref())?;
    if let Some(b) = a.brokers {
        cfg.kafka.brokers = b;
    }
    let s = riskwatch::produce::produce(&cfg.kafka, &a.input, a.rate)?;
    println!(
        "produced {} records ({} undecodable) in {:.2}s: {:.0} records/s",
        s.records.iter().sum::<u64>(),
        s.undecodable,
        s.seconds,
        s.records_per_s
    );
    Ok(riskwatch::exit::OK)
}
