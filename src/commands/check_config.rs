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
    for (i, endpoint) in config.webhooks.iter().enumerate() {
        for w in endpoint.warnings(i) {
            println!("{w}");
        }
        // `run` refuses a missing or malformed secret (exit 78); here, on a machine that
        // may not hold the secrets, it is a warning.
        let env = |v: &str| std::env::var(v).ok();
        if let Err(e) = riskwatch_connectors::webhook::Endpoint::from_config(endpoint, env) {
            println!("warning: {e}");
        }
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
