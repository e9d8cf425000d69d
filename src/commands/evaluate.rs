//! `riskwatch evaluate`: book snapshots against outcomes (AUC, KS, Gini, deciles, levels,
//! lead time, PSI).

use riskwatch::evaluation::{evaluate, table, EvaluateArgs};
use riskwatch::exit::Usage;
use riskwatch_model::time::Millis;
use std::path::PathBuf;

/// Flags of `evaluate`.
#[derive(clap::Args)]
pub struct Args {
    /// snapshots.ndjson, or the directory holding it (`replay --snapshot-out`).
    #[arg(long)]
    snapshots: PathBuf,
    /// Outcomes: NDJSON (customer_id, outcome 0/1, optional outcome_ts or outcome_date),
    /// the generator's truth.ndjson, or CSV with a header customer_id,outcome[,outcome_date].
    #[arg(long)]
    labels: PathBuf,
    /// Lead time counts from the first observation at this level or above.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=4))]
    flag_level: u8,
    /// Outcome window after each observation time (e.g. 90d); a later outcome counts as
    /// good. Unbounded when absent.
    #[arg(long)]
    window: Option<String>,
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
    /// Also write the JSON to this file.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Runs the evaluation and prints it.
pub fn run(a: Args) -> anyhow::Result<i32> {
    let window = match &a.window {
        Some(w) => Some(
            Millis::parse(w)
                .map_err(|e| Usage(format!("--window {w:?}: {e}")))?
                .ms(),
        ),
        None => None,
    };
    let report = evaluate(&EvaluateArgs {
        snapshots: a.snapshots,
        labels: a.labels,
        flag_level: a.flag_level,
        window,
    })?;
    let json = serde_json::to_string_pretty(&report)?;
    if let Some(path) = &a.out {
        riskwatch_connectors::file::write_json_atomic(path, &report)?;
        tracing::info!(path = %path.display(), "evaluation written");
    }
    if a.json {
        println!("{json}");
    } else {
        print!("{}", table(&report));
    }
    Ok(riskwatch::exit::OK)
}
