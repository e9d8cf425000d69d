//! `riskwatch gen`: a deterministic synthetic loan book.

use anyhow::Context;
use riskwatch_connectors::generator::{generate, GenConfig};
use std::path::PathBuf;

/// Flags of `gen`.
#[derive(clap::Args)]
pub struct Args {
    /// Customers.
    #[arg(long, default_value_t = 10_000)]
    customers: u64,
    /// Days of activity.
    #[arg(long, default_value_t = 90)]
    days: u64,
    /// Seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
}

/// Writes the book.
pub fn run(a: Args) -> anyhow::Result<i32> {
    let cfg = GenConfig {
        customers: a.customers,
        days: a.days,
        seed: a.seed,
        ..GenConfig::default()
    };
    let s =
        generate(&cfg, &a.out).with_context(|| format!("generating into {}", a.out.display()))?;
    println!(
        "generated {} customers: {} transactions, {} behaviors, {} loans, {} customers records",
        s.customers,
        s.events_per_stream[0],
        s.events_per_stream[1],
        s.events_per_stream[2],
        s.events_per_stream[3]
    );
    Ok(riskwatch::exit::OK)
}
