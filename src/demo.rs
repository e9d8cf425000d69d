//! `riskwatch demo`: generate a book, replay it with progress, and report throughput,
//! rejects, alerts, level mix and detection quality against the book's truth.

use crate::quality::{
    level_shares, quality, quality_by_archetype, read_truth, ArchetypeQuality, Quality,
};
use crate::replay::{load_config, replay, ReplayArgs, Summary};
use anyhow::Context;
use riskwatch_connectors::generator::{generate, GenConfig, Profile};
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
    /// Generator profile (archetype mix).
    pub profile: Profile,
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
        "generating {} customers x {} days (seed {}, profile {}) into {}",
        args.customers,
        args.days,
        args.seed,
        args.profile.name(),
        book.display()
    );
    let t = Instant::now();
    let gen = generate(
        &GenConfig {
            customers: args.customers,
            days: args.days,
            seed: args.seed,
            mix: args.profile.mix(),
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
            progress: true,
            ..ReplayArgs::new(args.workers)
        },
    )?;
    let truth = read_truth(&book.join("truth.ndjson"))?;
    let strategies: Vec<(String, bool)> = compiled.strategies.names_with_shadow();
    let q = quality(&truth, &run.alerts, &strategies);
    print!("{}", report(&summary, &q));
    let by_archetype: Vec<(String, Vec<ArchetypeQuality>)> = strategies
        .iter()
        .map(|(name, _)| {
            (
                name.clone(),
                quality_by_archetype(&truth, &run.alerts, name),
            )
        })
        .collect();
    print!("{}", archetype_report(&by_archetype));
    let caps: std::collections::BTreeMap<String, u32> = config
        .strategies
        .iter()
        .map(|s| (s.name.clone(), s.policy.apr_cap_bps))
        .collect();
    print!("{}", invariants(&run.decisions, &run.cases, &caps));
    Ok(q)
}

/// Checks the action and case invariants over every record and says how many held: no
/// APR above its strategy's cap, no limit change without old and new values, every case's
/// `seq` running 1, 2, 3, … without a gap and starting with `opened`.
pub fn invariants(
    decisions: &[riskwatch_model::output::Decision],
    cases: &[riskwatch_model::output::Case],
    apr_caps: &std::collections::BTreeMap<String, u32>,
) -> String {
    use std::fmt::Write;
    let mut broken: Vec<String> = Vec::new();
    for d in decisions {
        let cap = apr_caps.get(&d.strategy).copied().unwrap_or(u32::MAX);
        if d.new_apr_bps.is_some_and(|a| a > cap) {
            broken.push(format!("{}: APR above the cap {cap}", d.decision_id));
        }
        let limit_kind = d.old_limit.is_some() || d.new_limit.is_some();
        if limit_kind && (d.old_limit.is_none() || d.new_limit.is_none()) {
            broken.push(format!(
                "{}: limit change without old and new",
                d.decision_id
            ));
        }
    }
    let mut by_case: std::collections::BTreeMap<&str, Vec<&riskwatch_model::output::Case>> =
        Default::default();
    for c in cases {
        by_case.entry(&c.case_id).or_default().push(c);
    }
    for (id, events) in by_case.iter_mut() {
        events.sort_by_key(|c| c.seq);
        for (i, c) in events.iter().enumerate() {
            if c.seq as usize != i + 1 {
                broken.push(format!("{id}: seq {} at position {}", c.seq, i + 1));
                break;
            }
        }
        if events
            .first()
            .is_some_and(|c| c.event != riskwatch_model::output::CaseEvent::Opened)
        {
            broken.push(format!("{id}: does not start with opened"));
        }
    }
    let mut s = String::new();
    let _ = writeln!(
        s,
        "
invariants over {} decisions and {} case events ({} cases): {}",
        decisions.len(),
        cases.len(),
        by_case.len(),
        if broken.is_empty() {
            "all hold".to_string()
        } else {
            format!("{} BROKEN", broken.len())
        }
    );
    for b in broken.iter().take(5) {
        let _ = writeln!(s, "  {b}");
    }
    s
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
    for (strategy, kinds) in &summary.decisions_by_kind {
        let _ = writeln!(s, "\ndecisions of strategy {strategy}:");
        for (kind, n) in kinds {
            let _ = writeln!(s, "  {kind:<22} {n:>8}");
        }
    }
    for (strategy, stages) in &summary.cases_by_stage {
        let _ = writeln!(s, "\ncase events of strategy {strategy}:");
        for (stage, n) in stages {
            let _ = writeln!(s, "  {stage:<22} {n:>8}");
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

/// Detection per archetype and strategy: for archetypes that default, the share flagged
/// (level >= 2) before the default and the median lead; for the others, the share flagged at
/// all (false positives).
pub fn archetype_report(rows: &[(String, Vec<ArchetypeQuality>)]) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\ndetection by archetype (defaulters: flagged before the default; others: flagged):"
    );
    for (strategy, rows) in rows {
        let _ = writeln!(s, "  strategy {strategy}:");
        let _ = writeln!(
            s,
            "    {:<18} {:>9} {:>10} {:>9} {:>11}",
            "archetype", "customers", "defaulters", "flagged", "median lead"
        );
        for q in rows {
            let lead = if q.defaulters > 0 {
                format!("{:.1} d", q.median_lead_days)
            } else {
                "-".to_string()
            };
            let _ = writeln!(
                s,
                "    {:<18} {:>9} {:>10} {:>8.1}% {:>11}",
                q.archetype,
                q.customers,
                q.defaulters,
                100.0 * q.flagged_share,
                lead
            );
        }
        let (non, flagged) = rows
            .iter()
            .filter(|q| q.defaulters == 0)
            .fold((0, 0), |(n, f), q| {
                (n + q.customers, f + q.flagged_non_defaulters)
            });
        if non > 0 {
            let _ = writeln!(
                s,
                "    {:<18} {:>9} {:>10} {:>8.1}%",
                "all non-defaulters",
                non,
                0,
                100.0 * flagged as f64 / non as f64
            );
        }
    }
    s
}

/// The default demo directory.
pub fn default_dir() -> std::path::PathBuf {
    Path::new("out").join("demo")
}

#[cfg(test)]
mod tests {
    use super::invariants;
    use riskwatch_model::output::{Case, Decision};

    fn decision(apr: u32) -> Decision {
        serde_json::from_value(serde_json::json!({
            "decision_id": "d-1", "customer_id": "C1", "ts": 10, "emitted_at": 0,
            "kind": "price_increase", "old_apr_bps": 2000, "new_apr_bps": apr, "level": 3,
            "reasons": [{"code": "x", "text": "x"}], "strategy": "s",
            "strategy_version": "1", "shadow": false, "effective_at": 20
        }))
        .expect("a decision")
    }

    fn case(seq: u32, event: &str) -> Case {
        serde_json::from_value(serde_json::json!({
            "case_id": "c-1", "seq": seq, "customer_id": "C1", "ts": 10, "emitted_at": 0,
            "event": event, "stage": "M1", "queue": "sms", "priority": 1,
            "overdue_amount": 100, "dpd": 1, "level": 3, "loans": [],
            "reasons": [{"code": "x", "text": "x"}], "strategy": "s",
            "strategy_version": "1", "shadow": false, "opened_at": 10
        }))
        .expect("a case")
    }

    #[test]
    fn invariants_hold_and_break_as_the_records_say() {
        let caps = [("s".to_string(), 2400)].into_iter().collect();
        let ok = invariants(
            &[decision(2400)],
            &[case(1, "opened"), case(2, "escalated")],
            &caps,
        );
        assert!(ok.contains("all hold"), "{ok}");
        let apr = invariants(&[decision(2401)], &[], &caps);
        assert!(
            apr.contains("1 BROKEN") && apr.contains("cap 2400"),
            "{apr}"
        );
        let gap = invariants(&[], &[case(1, "opened"), case(3, "updated")], &caps);
        assert!(gap.contains("1 BROKEN") && gap.contains("seq 3"), "{gap}");
        let start = invariants(&[], &[case(1, "updated")], &caps);
        assert!(start.contains("does not start with opened"), "{start}");
    }
}
