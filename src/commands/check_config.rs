//! `riskwatch check-config`: load and compile a config, naming the key of an error.

use riskwatch::replay::load_config;
use std::path::PathBuf;

/// Flags of `check-config`.
#[derive(clap::Args)]
pub struct Args {
    /// Config file.
    #[arg(long)]
    config: Option<PathBuf>,
}

/// Checks the config; an invalid one exits 78.
pub fn run(a: Args) -> anyhow::Result<i32> {
    let (config, compiled) = load_config(a.config.as_deref())?;
    // The Kafka client settings as librdkafka reads them: a misspelt key fails here, not
    // at run time (no broker is contacted).
    riskwatch_connectors::kafka::config::validate(&config.kafka)?;
    for w in &compiled.warnings {
        println!("warning: config key \"{}\": {}", w.key, w.reason);
    }
    println!(
        "config ok: {} features, {} slots, strategies:",
        compiled.layout.names.len(),
        compiled.layout.slots
    );
    for s in &compiled.strategies.list {
        println!(
            "  {} ({:?}, version {}): {} rules, {} scorecard terms",
            s.name,
            s.role,
            s.version,
            s.rules.len(),
            s.terms.len()
        );
    }
    println!("features: {}", compiled.layout.names.join(", "));
    Ok(riskwatch::exit::OK)
}
