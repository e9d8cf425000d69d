//! `riskwatch receive`: the receiver kit as a command (connectors/src/webhook/receiver.rs):
//! verifies signatures, drops duplicates, orders each case's events, and appends accepted
//! events to an NDJSON file. The `--chaos-*` flags make it misbehave on purpose, for tests.

use anyhow::Context;
use riskwatch::exit::Usage;
use riskwatch_connectors::webhook::receiver::{serve, Chaos, Receiver};
use riskwatch_connectors::webhook::Verifier;
use std::path::PathBuf;

/// Flags of `receive`.
#[derive(clap::Args)]
pub struct Args {
    /// Address to listen on; port 0 picks a free one (printed on stdout).
    #[arg(long, default_value = "127.0.0.1:8088")]
    listen: std::net::SocketAddr,
    /// Append every accepted event as one NDJSON line `{"id", "type", "data"}`.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Environment variable holding the secret(s) (`whsec_…`, space-separated).
    #[arg(
        long,
        conflicts_with = "secret_file",
        required_unless_present = "secret_file"
    )]
    secret_env: Option<String>,
    /// File holding the secret(s).
    #[arg(long)]
    secret_file: Option<PathBuf>,
    /// Testing only: answer 500 to this share of requests (0–1).
    #[arg(long, default_value_t = 0.0, value_parser = ratio)]
    chaos_fail_ratio: f64,
    /// Testing only: answer 429 with `Retry-After: 1` to this share of requests (0–1).
    #[arg(long = "chaos-429-ratio", default_value_t = 0.0, value_parser = ratio)]
    chaos_429_ratio: f64,
    /// Testing only: delay this share of answers (0–1) by --chaos-delay-ms.
    #[arg(long, default_value_t = 0.0, value_parser = ratio)]
    chaos_delay_ratio: f64,
    /// Testing only: how long a delayed answer waits.
    #[arg(long, default_value_t = 2000)]
    chaos_delay_ms: u64,
    /// Testing only: seeds the chaos choices (a hash of seed, webhook-id and attempt).
    #[arg(long, default_value_t = 0)]
    chaos_seed: u64,
}

fn ratio(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        Ok(_) => Err("must be between 0 and 1".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// Serves until SIGINT or SIGTERM.
pub fn run(a: Args) -> anyhow::Result<i32> {
    let secrets = match (&a.secret_env, &a.secret_file) {
        (Some(var), _) => std::env::var(var)
            .map_err(|_| Usage(format!("--secret-env {var}: the variable is not set")))?,
        (None, Some(path)) => std::fs::read_to_string(path)
            .with_context(|| format!("--secret-file {}", path.display()))?,
        (None, None) => {
            return Err(Usage("--secret-env or --secret-file is required".into()).into())
        }
    };
    let verifier = Verifier::new(&secrets).map_err(Usage)?;
    if a.chaos_fail_ratio + a.chaos_429_ratio > 1.0 {
        return Err(Usage("--chaos-fail-ratio plus --chaos-429-ratio exceeds 1".into()).into());
    }
    let chaos = Chaos {
        fail_ratio: a.chaos_fail_ratio,
        too_many_ratio: a.chaos_429_ratio,
        delay_ratio: a.chaos_delay_ratio,
        delay_ms: a.chaos_delay_ms,
        seed: a.chaos_seed,
    };
    let receiver = Receiver::new(verifier, a.out.as_deref(), chaos).with_context(|| {
        let out = a.out.as_deref().unwrap_or(std::path::Path::new(""));
        format!("--out {}", out.display())
    })?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the receiver runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(a.listen)
            .await
            .with_context(|| format!("--listen {}: cannot listen", a.listen))?;
        let addr = listener.local_addr()?;
        println!("listening on http://{addr}/");
        let stats = receiver.clone();
        serve(listener, receiver, async {
            use tokio::signal::unix::{signal, SignalKind};
            let mut term = signal(SignalKind::terminate()).expect("installing SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        })
        .await
        .context("serving")?;
        let s = stats.stats();
        tracing::info!(
            requests = s.requests,
            accepted = s.accepted,
            duplicates = s.duplicates,
            unauthorized = s.unauthorized,
            chaos = s.chaos,
            held = s.held,
            "receiver stopped"
        );
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(riskwatch::exit::OK)
}
