//! `riskwatch metrics-catalogue`: print every metric riskwatch exposes.

/// Flags of `metrics-catalogue`.
#[derive(clap::Args)]
pub struct Args {
    /// One metric name per line instead of the Markdown table (for scripts).
    #[arg(long)]
    names: bool,
}

/// Prints the catalogue: the Markdown table of docs/metrics.md, or the names.
pub fn run(a: Args) -> anyhow::Result<i32> {
    if a.names {
        let all = riskwatch_model::metrics::CATALOGUE
            .iter()
            .chain(riskwatch_model::metrics::PROCESS);
        for m in all {
            println!("{} {}", m.name, m.kind.name());
        }
    } else {
        print!("{}", riskwatch::metrics::catalogue_markdown());
    }
    Ok(riskwatch::exit::OK)
}
