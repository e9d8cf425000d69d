//! `riskwatch gen`: a deterministic synthetic loan book.

use anyhow::Context;
use riskwatch_connectors::generator::{generate, GenConfig, Profile};
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
    /// The archetype mix. `default`: 86 % healthy, 6 % deteriorating, 3 % bust-out, 3 %
    /// fraud ring, 2 % cured (every defaulter warns in its behaviour). `hard`: 58 % healthy,
    /// 12 % stretched (high utilisation, cash and bureau shopping, never defaults), 12 %
    /// cured and 5 % cured twice (17 % miss, then pay), 4 % silent defaulters (behave like
    /// healthy customers, then stop paying: 31 % of defaulters), 4 % deteriorating, 2.5 %
    /// bust-out, 2.5 % fraud ring.
    #[arg(long, default_value = "default", value_parser = parse_profile)]
    profile: Profile,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
}

/// Parses a `--profile` name.
pub(crate) fn parse_profile(s: &str) -> Result<Profile, String> {
    s.parse()
}

/// Writes the book.
pub fn run(a: Args) -> anyhow::Result<i32> {
    let cfg = GenConfig {
        customers: a.customers,
        days: a.days,
        seed: a.seed,
        mix: a.profile.mix(),
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
