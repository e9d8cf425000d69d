//! `riskwatch compare`: two configs backtested side by side on the same inputs, and with
//! `--report` the visual report.

use std::path::PathBuf;

/// Flags of `compare`.
#[derive(clap::Args)]
pub struct Args {
    /// Directory with the four input files (and truth.ndjson for quality figures).
    #[arg(long)]
    input: PathBuf,
    /// The two configs: A (e.g. the champion as deployed), then B.
    #[arg(long = "config", num_args = 2, required = true)]
    configs: Vec<PathBuf>,
    /// Where the two replays write their outputs (`a/`, `b/`).
    #[arg(long, default_value = "out/compare")]
    output: PathBuf,
    /// Worker threads (at least 1).
    #[arg(long, default_value_t = 2, value_parser = super::workers)]
    workers: usize,
    /// Also write the visual backtest report, one self-contained HTML file, here.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Outcome labels for the report's ROC, KS, decile and lead-time charts (default: the
    /// input's truth.ndjson, when there is one).
    #[arg(long, requires = "report")]
    labels: Option<PathBuf>,
}

/// Runs both replays and prints the table.
pub fn run(a: Args) -> anyhow::Result<i32> {
    let sides = riskwatch::compare::compare(
        &a.input,
        [&a.configs[0], &a.configs[1]],
        &a.output,
        a.workers,
    )?;
    print!("{}", riskwatch::compare::table(&sides));
    if let Some(path) = &a.report {
        let truth = a.input.join("truth.ndjson");
        let labels = a.labels.clone().or_else(|| truth.exists().then_some(truth));
        riskwatch::compare::write_report(path, &a.input, labels.as_deref(), &sides)?;
        println!("\nreport: {}", path.display());
    }
    Ok(riskwatch::exit::OK)
}
