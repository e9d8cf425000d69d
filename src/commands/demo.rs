//! `riskwatch demo`: generate a book, replay it, print a report.

use riskwatch::demo::{default_dir, demo, DemoArgs};
use std::path::PathBuf;

/// Flags of `demo`.
#[derive(clap::Args)]
pub struct Args {
    /// Customers.
    #[arg(long, default_value_t = 20_000)]
    customers: u64,
    /// Days.
    #[arg(long, default_value_t = 120)]
    days: u64,
    /// Seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Worker threads (at least 1).
    #[arg(long, default_value_t = 2, value_parser = super::workers)]
    workers: usize,
    /// Working directory.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Config file.
    #[arg(long)]
    config: Option<PathBuf>,
}

/// Runs the demo.
pub fn run(a: Args) -> anyhow::Result<i32> {
    demo(&DemoArgs {
        customers: a.customers,
        days: a.days,
        seed: a.seed,
        workers: a.workers,
        dir: a.dir.unwrap_or_else(default_dir),
        config: a.config,
    })?;
    Ok(riskwatch::exit::OK)
}
