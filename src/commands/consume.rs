//! `riskwatch consume`: a topic into an NDJSON file, until idle at its end offsets.

use riskwatch::replay::load_config;
use std::path::PathBuf;

/// Flags of `consume`.
#[derive(clap::Args)]
pub struct Args {
    /// The topic.
    #[arg(long)]
    topic: String,
    /// Brokers (host:port,...); default: kafka.brokers of the config.
    #[arg(long)]
    brokers: Option<String>,
    /// Output file.
    #[arg(long)]
    out: PathBuf,
    /// Stop after this many ms without a record (once at the end offsets).
    #[arg(long, default_value_t = 2000)]
    idle_ms: u64,
    /// Write partition, offset, timestamp, key and headers around each value.
    #[arg(long)]
    meta: bool,
    /// Config file for client settings.
    #[arg(long)]
    config: Option<PathBuf>,
}

/// Copies the topic.
pub fn run(a: Args) -> anyhow::Result<i32> {
    let (mut cfg, _) = load_config(a.config.as_deref())?;
    if let Some(b) = a.brokers {
        cfg.kafka.brokers = b;
    }
    let n = riskwatch::produce::consume(
        &cfg.kafka,
        &a.topic,
        &a.out,
        std::time::Duration::from_millis(a.idle_ms),
        a.meta,
    )?;
    println!(
        "consumed {n} records from {} into {}",
        a.topic,
        a.out.display()
    );
    Ok(riskwatch::exit::OK)
}
