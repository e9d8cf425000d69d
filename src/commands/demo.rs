//! `riskwatch demo`: generate a book, replay it, print a report.

use riskwatch::demo::{default_dir, demo, DemoArgs};
use riskwatch_connectors::generator::Profile;
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
    /// The generator's archetype mix: `default` (every defaulter warns in its behaviour) or
    /// `hard` (silent defaulters, stretched customers who never default, 17 % who miss and
    /// cure); see `riskwatch gen --help`.
    #[arg(long, default_value = "default", value_parser = super::gen::parse_profile)]
    profile: Profile,
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
        profile: a.profile,
        workers: a.workers,
        dir: a.dir.unwrap_or_else(default_dir),
        config: a.config,
    })?;
    Ok(riskwatch::exit::OK)
}
