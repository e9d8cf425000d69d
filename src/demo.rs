//! `riskwatch demo`: generate a book, replay it with progress, and report throughput,
//! rejects, alerts, level mix and detection quality against the book's truth.

use crate::quality::{level_shares, quality, read_truth, Quality};
use crate::replay::{load_config, replay, ReplayArgs, Summary};
use anyhow::Context;
use riskwatch_connectors::generator::{generate, GenConfig};
use std::path::Path;
use std::time::Instant;

/// Options of the demo.
#[derive(Clone, Debug)]
pub struct DemoArgs {
    /// Customers in the generated book.
    pub customers: u64,
    /// Days in the generated book.
    pub days: u64,
    /// Generator seed.
    pub seed: u64,
    /// Worker threads.
    pub workers: usize,
    /// Where the book and outputs go.
    pub dir: std::path::PathBuf,
    /// Config file (built-in defaults when absent).
    pub config: Option<std::path::PathBuf>,
}

/// Runs the demo and prints the report; returns the champion's quality.
pub fn demo(args: &DemoArgs) -> anyhow::Result<Vec<Quality>> {
    let (config, compiled) = load_config(args.config.as_deref())?;
    let book = args.dir.join("book");
    let out = args.dir.join("out");
    std::fs::create_dir_all(&book)?;
    eprintln!(
        "generating {} customers x {} days (seed {}) into {}",
        args.customers,
        args.days,
        args.seed,
        book.display()
    );
    let t = Instant::now();
    let gen = generate(
        &GenConfig {
            customers: args.customers,
            days: args.days,
            seed: args.seed,
            ..GenConfig::default()
        },
        &book,
    )
    .context("generating the book")?;
    eprintln!(
        "  generated {} events in {:.1}s",
        gen.events_per_stream.iter().sum::<u64>(),
        t.elapsed().as_secs_f64()
    );
    eprintln!("replaying into {}", out.display());
    let (run, summary) = replay(
        &compiled,
        &config,
        &book,
        &out,
        &ReplayArgs {
            workers: args.workers,
            until: None,
            progress: true,
            cluster: None,
            config_changes: Vec::new(),
        },
    )?;
    let truth = read_truth(&book.join("truth.ndjson"))?;
    let strategies: Vec<(String, bool)> = compiled.strategies.names_with_shadow();
    let q = quality(&truth, &run.alerts, &strategies);
    print!("{}", report(&summary, &q));
    Ok(q)
}

/// The summary table.
pub fn report(summary: &Summary, quality: &[Quality]) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let read: u64 = summary.read.values().sum();
    let rejected: u64 = summary.rejected.values().sum();
    let dups: u64 = summary.duplicates.values().sum();
    let _ = writeln!(s, "\n== riskwatch demo ==");
    let _ = writeln!(
        s,
        "throughput   {:>12.0} events/s  ({} events in {:.2}s, {} workers; read {:.2}s, dataflow {:.2}s)",
        summary.timing.events_per_s, read, summary.timing.total_s, summary.workers,
        summary.timing.read_s, summary.timing.dataflow_s
    );
    let _ = writeln!(s, "rejected     {rejected:>12}  {:?}", summary.rejected);
    let _ = writeln!(s, "duplicates   {dups:>12}   late {}", summary.late);
    for (strategy, rules) in &summary.alerts_by_rule {
        let _ = writeln!(s, "\nalerts of strategy {strategy}:");
        let _ = writeln!(s, "  {:<22} {:>8}", "rule", "alerts");
        for (rule, n) in rules {
            let _ = writeln!(s, "  {rule:<22} {n:>8}");
        }
        if let Some(sev) = summary.alerts_by_severity.get(strategy) {
            let _ = writeln!(s, "  by severity: {sev:?}");
        }
    }
    let _ = writeln!(
        s,
        "\nlevel mix at the end (share of customers at level 0..4):"
    );
    for (strategy, shares) in level_shares(&summary.levels) {
        let cells: Vec<String> = shares
            .iter()
            .map(|x| format!("{:>6.2}%", 100.0 * x))
            .collect();
        let _ = writeln!(s, "  {strategy:<16} {}", cells.join(" "));
    }
    let _ = writeln!(s, "\ndetection quality against truth.ndjson (level >= 2):");
    let _ = writeln!(
        s,
        "  {:<16} {:>7} {:>10} {:>10} {:>11} {:>10} {:>9}",
        "strategy", "shadow", "defaulters", "flagged", "median lead", "healthy FP", "rings"
    );
    for q in quality {
        let _ = writeln!(
            s,
            "  {:<16} {:>7} {:>10} {:>9.1}% {:>9.1} d {:>9.2}% {:>8.1}%",
            q.strategy,
            q.shadow,
            q.defaulters,
            100.0 * q.detection_rate,
            q.median_lead_days,
            100.0 * q.false_positive_rate,
            100.0 * q.ring_rate
        );
    }
    s
}

/// The default demo directory.
pub fn default_dir() -> std::path::PathBuf {
    Path::new("out").join("demo")
}
