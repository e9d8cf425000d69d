//! `riskwatch check-config`: load and compile a config, naming the key of an error; with
//! `--connect`, also check the environment it will run in (`riskwatch::connect_check`).

use riskwatch::replay::load_config;
use std::io::Write;
use std::path::PathBuf;

/// Flags of `check-config`.
#[derive(clap::Args)]
pub struct Args {
    /// Config file.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Also check the environment: brokers, credentials, topics and the partition
    /// assignment (Kafka mode), the input and output directories (files mode), and each
    /// webhook endpoint. One line per check (`ok:`, `FAIL:`, `skip:`); exits 69 if any fails.
    #[arg(long)]
    connect: bool,
    /// With --connect: the longest any one network step may take, in ms.
    #[arg(long, requires = "connect", default_value_t = 10_000)]
    timeout_ms: u64,
    /// With --connect: worker threads per process, for the partition assignment.
    #[arg(long, requires = "connect", default_value_t = 2, value_parser = super::workers)]
    workers: usize,
    /// With --connect: processes in the cluster, for the partition assignment.
    #[arg(long, requires = "connect", default_value_t = 1, value_parser = super::workers)]
    processes: usize,
}

/// Checks the config; an invalid one exits 78, a failed environment check 69.
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
    if !a.connect {
        return Ok(riskwatch::exit::OK);
    }
    println!("environment:");
    let opts = riskwatch::connect_check::Options {
        workers: a.workers,
        processes: a.processes,
        timeout: std::time::Duration::from_millis(a.timeout_ms),
    };
    let mut out = std::io::stdout();
    let passed = riskwatch::connect_check::check(&config, &opts, &mut |line| {
        // Each line as soon as it is known: a slow step shows where it is.
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    });
    Ok(if passed {
        riskwatch::exit::OK
    } else {
        riskwatch::exit::UNAVAILABLE
    })
}
