//! The evaluation as a table on the terminal.

use super::Evaluation;
use riskwatch_model::time::rfc3339_ms;
use std::fmt::Write;

fn num(v: Option<f64>) -> String {
    v.map_or("-".to_string(), |v| format!("{v:.3}"))
}

fn day(t: u64) -> String {
    rfc3339_ms(t)[..10].to_string()
}

/// The evaluation as text tables: ranking quality per strategy and time, bad rate by level
/// and by decile, lead times and stability.
pub fn table(e: &Evaluation) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "evaluate: {} snapshot records, {} labels used, {} snapshot customers unlabelled",
        e.snapshot_records, e.labels, e.unlabelled_customers
    );
    if !e.labels_rejected.is_empty() {
        let parts: Vec<String> = e
            .labels_rejected
            .iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect();
        let _ = writeln!(s, "labels left out: {}", parts.join(", "));
    }
    let _ = writeln!(
        s,
        "\n| strategy | as of | customers | bads | AUC | KS | Gini | AUC of DPD alone |\n\
         |---|---|---|---|---|---|---|---|"
    );
    for j in &e.judged {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            j.strategy,
            day(j.as_of),
            j.customers,
            j.bads,
            num(j.auc),
            num(j.ks),
            num(j.gini),
            num(j.auc_dpd)
        );
    }
    let _ = writeln!(
        s,
        "\nbad rate by level (customers/bads):\n\
         | strategy | as of | 0 | 1 | 2 | 3 | 4 |\n|---|---|---|---|---|---|---|"
    );
    for j in &e.judged {
        let cells: Vec<String> = j
            .by_level
            .iter()
            .map(|l| format!("{:.1}% ({}/{})", l.bad_rate * 100.0, l.customers, l.bads))
            .collect();
        let _ = writeln!(
            s,
            "| {} | {} | {} |",
            j.strategy,
            day(j.as_of),
            cells.join(" | ")
        );
    }
    let _ = writeln!(
        s,
        "\nbad rate / cumulative capture by decile (1 = riskiest):\n\
         | strategy | as of | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 | 10 |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for j in &e.judged {
        let cells: Vec<String> = j
            .deciles
            .iter()
            .map(|d| format!("{:.1}%/{:.0}%", d.bad_rate * 100.0, d.capture * 100.0))
            .collect();
        let _ = writeln!(
            s,
            "| {} | {} | {} |",
            j.strategy,
            day(j.as_of),
            cells.join(" | ")
        );
    }
    let _ = writeln!(
        s,
        "\nlead time, first flag (level >= L) to outcome date:\n\
         | strategy | L | bads | flagged | p25 d | median d | p75 d |\n|---|---|---|---|---|---|---|"
    );
    for l in &e.lead_times {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} |",
            l.strategy,
            l.flag_level,
            l.bads,
            l.flagged,
            l.p25_days.map_or("-".into(), |v| format!("{v:.1}")),
            l.median_days.map_or("-".into(), |v| format!("{v:.1}")),
            l.p75_days.map_or("-".into(), |v| format!("{v:.1}"))
        );
    }
    if !e.stability.is_empty() {
        let _ = writeln!(
            s,
            "\nstability (PSI; < 0.1 stable, 0.1-0.25 investigate, > 0.25 shifted):\n\
             | strategy | of | from | to | PSI |\n|---|---|---|---|---|"
        );
        for p in &e.stability {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {:.3} |",
                p.strategy,
                p.of,
                day(p.from),
                day(p.to),
                p.psi
            );
        }
    }
    s
}
