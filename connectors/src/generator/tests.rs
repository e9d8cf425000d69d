//! Tests of the generator: determinism, order, truth consistency, rings and hubs.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::Value;

use super::archetypes;
use super::period::Period;
use super::*;

const DAY: u64 = 86_400_000;
const STREAMS: [&str; 4] = ["transactions", "behaviors", "loans", "customers"];

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("riskwatch-gen-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

pub(super) fn read_lines(dir: &Path, name: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(dir.join(format!("{name}.ndjson"))).expect("file exists");
    text.lines()
        .map(|l| serde_json::from_str(l).expect("valid json"))
        .collect()
}

/// A parsed book of 3,000 customers × 90 days, generated once for the tests below.
struct Book {
    cfg: GenConfig,
    summary: GenSummary,
    streams: HashMap<&'static str, Vec<Value>>,
    truth: Vec<Value>,
}

fn book() -> &'static Book {
    static BOOK: OnceLock<Book> = OnceLock::new();
    BOOK.get_or_init(|| {
        let cfg = GenConfig {
            customers: 3_000,
            days: 90,
            seed: 7,
            ..GenConfig::default()
        };
        let dir = temp_dir("book");
        let summary = generate(&cfg, &dir).expect("generates");
        let streams = STREAMS.iter().map(|s| (*s, read_lines(&dir, s))).collect();
        let truth = read_lines(&dir, "truth");
        let _ = std::fs::remove_dir_all(&dir);
        Book {
            cfg,
            summary,
            streams,
            truth,
        }
    })
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or("")
}

fn n(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or(0)
}

#[test]
fn same_config_gives_identical_bytes_for_any_thread_count() {
    let cfg = GenConfig {
        customers: 500,
        days: 75,
        seed: 3,
        ..GenConfig::default()
    };
    let (a, b) = (temp_dir("det-a"), temp_dir("det-b"));
    let sa = generate_with_threads(&cfg, &a, 1).expect("generates");
    let sb = generate_with_threads(&cfg, &b, 3).expect("generates");
    assert_eq!(sa, sb);
    for name in STREAMS.iter().chain(["truth"].iter()) {
        let file = format!("{name}.ndjson");
        let x = std::fs::read(a.join(&file)).expect("read");
        let y = std::fs::read(b.join(&file)).expect("read");
        assert!(!x.is_empty(), "{file} is empty");
        assert!(x == y, "{file} differs between runs");
    }
    let other = GenConfig { seed: 4, ..cfg };
    generate_with_threads(&other, &b, 2).expect("generates");
    let x = std::fs::read(a.join("transactions.ndjson")).expect("read");
    let y = std::fs::read(b.join("transactions.ndjson")).expect("read");
    assert!(x != y, "another seed gives another book");
    let _ = std::fs::remove_dir_all(&a);
    let _ = std::fs::remove_dir_all(&b);
}

#[test]
fn files_are_sorted_within_the_period_with_unique_ids() {
    let b = book();
    let (start, end) = (b.cfg.start_ms, b.cfg.end_ms());
    for (k, name) in STREAMS.iter().enumerate() {
        let lines = &b.streams[name];
        assert_eq!(lines.len() as u64, b.summary.events_per_stream[k], "{name}");
        let mut last = 0;
        let mut ids = HashSet::new();
        for v in lines {
            let ts = n(v, "ts");
            assert!(ts >= last, "{name} not sorted at {v}");
            assert!(
                (start..end).contains(&ts),
                "{name} ts out of the period: {v}"
            );
            last = ts;
            if *name != "customers" {
                assert!(ids.insert(s(v, "event_id").to_string()), "duplicate id {v}");
            }
        }
    }
    let custs = &b.streams["customers"];
    let initial = custs.iter().filter(|v| n(v, "ts") == start).count();
    assert_eq!(initial as u64, b.cfg.customers);
    assert_eq!(b.truth.len() as u64, b.cfg.customers);
    assert_eq!(s(&b.truth[42], "customer_id"), "C0000042");
}

#[test]
fn truth_matches_the_schedule_and_the_repayments() {
    let b = book();
    check_truth(&b.cfg, &b.streams, &b.truth, true);
}

#[test]
fn short_long_and_unaligned_periods_stay_consistent() {
    for (days, offset) in [(20, 0), (45, 12_345_678), (200, 0)] {
        let cfg = GenConfig {
            customers: 400,
            days,
            seed: days,
            start_ms: DEFAULT_START_MS + offset,
            ..GenConfig::default()
        };
        let dir = temp_dir(&format!("period-{days}"));
        generate(&cfg, &dir).expect("generates");
        let streams: HashMap<&'static str, Vec<Value>> =
            STREAMS.iter().map(|s| (*s, read_lines(&dir, s))).collect();
        let truth = read_lines(&dir, "truth");
        let _ = std::fs::remove_dir_all(&dir);
        for name in STREAMS {
            let ts: Vec<u64> = streams[name].iter().map(|v| n(v, "ts")).collect();
            assert!(
                ts.windows(2).all(|w| w[0] <= w[1]),
                "{name} sorted ({days} days)"
            );
            assert!(ts.iter().all(|t| (cfg.start_ms..cfg.end_ms()).contains(t)));
        }
        check_truth(&cfg, &streams, &truth, days >= 90);
    }
}

/// Checks truth.ndjson against the schedule and the repayments; `strict` also checks what
/// each archetype must do (which needs a period of 90 days or more).
pub(super) fn check_truth(
    cfg: &GenConfig,
    streams: &HashMap<&'static str, Vec<Value>>,
    truth: &[Value],
    strict: bool,
) {
    let end = cfg.end_ms();
    // Installments per loan, and repayments per loan.
    let mut insts: HashMap<String, Vec<(u64, u64, u64)>> = HashMap::new();
    for v in &streams["loans"] {
        if s(v, "type") == "installment_due" {
            let due = n(v, "due_ts");
            assert_eq!(due % DAY, DAY - 1, "due_ts is the last ms of a day: {v}");
            assert!(due < end && n(v, "ts") <= due, "{v}");
            let e = insts.entry(s(v, "loan_id").to_string()).or_default();
            e.push((n(v, "installment_no"), due, n(v, "amount")));
        }
    }
    let mut drawn = HashSet::new();
    let mut repaid: HashMap<String, u64> = HashMap::new();
    for v in &streams["transactions"] {
        let loan = s(v, "loan_id");
        match s(v, "type") {
            "drawdown" => {
                drawn.insert(loan.to_string());
            }
            "repayment" => {
                assert!(!loan.is_empty(), "repayment without loan_id: {v}");
                let owner = &s(v, "customer_id")[1..];
                assert!(
                    loan[1..].starts_with(owner),
                    "repayment to another's loan: {v}"
                );
                if !loan.ends_with("-R") {
                    assert!(drawn.contains(loan), "repayment to a loan never drawn: {v}");
                }
                *repaid.entry(loan.to_string()).or_default() += n(v, "amount");
            }
            _ => {}
        }
    }
    for loan in insts.keys() {
        assert!(
            drawn.contains(loan),
            "schedule of a loan never drawn: {loan}"
        );
    }
    // An installment is fully repaid iff the loan's repayments cover it and all before it.
    let mut unpaid_by_customer: HashMap<String, Vec<u64>> = HashMap::new();
    for (loan, list) in &mut insts {
        list.sort();
        let paid = repaid.get(loan).copied().unwrap_or(0);
        let mut cumulative = 0;
        for (_, due, amount) in list.iter() {
            cumulative += amount;
            if cumulative > paid {
                let cust = format!("C{}", &loan[1..loan.find('-').expect("dash")]);
                unpaid_by_customer.entry(cust).or_default().push(*due);
            }
        }
    }
    let mut defaulters = 0;
    for t in truth {
        let cust = s(t, "customer_id");
        let arch = s(t, "archetype");
        let first_unpaid = unpaid_by_customer
            .get(cust)
            .and_then(|v| v.iter().min().copied());
        assert_eq!(
            t["defaults_at"].as_u64(),
            first_unpaid,
            "truth of {cust} ({arch})"
        );
        assert_eq!(t["ring_id"].is_null(), arch != "fraud_ring", "{t}");
        if !strict {
            continue;
        }
        let kind = Archetype::from_name(arch).unwrap_or_else(|| panic!("archetype of {t}"));
        match kind.defaults() {
            false => assert!(t["defaults_at"].is_null(), "{t}"),
            true => {
                let at = t["defaults_at"]
                    .as_u64()
                    .unwrap_or_else(|| panic!("no default: {t}"));
                defaulters += 1;
                if arch == "deteriorating" {
                    assert!(at + 30 * DAY <= end + DAY, "too late a default: {t}");
                }
            }
        }
    }
    assert!(defaulters > 0 || !strict);
}

#[test]
fn healthy_utilisation_stays_below_60_percent() {
    let b = book();
    let mut limit: HashMap<&str, u64> = HashMap::new();
    let mut bal: HashMap<&str, u64> = HashMap::new();
    for v in &b.streams["customers"] {
        limit.insert(s(v, "customer_id"), n(v, "credit_limit"));
        if v.get("balance").is_some() {
            bal.insert(s(v, "customer_id"), n(v, "balance"));
        }
    }
    // Limits only rise for healthy customers, so the initial limit is the strictest.
    let healthy: HashSet<&str> = b
        .truth
        .iter()
        .filter(|t| s(t, "archetype") == "healthy")
        .map(|t| s(t, "customer_id"))
        .collect();
    let mut worst: f64 = 0.0;
    let first_limit: HashMap<&str, u64> = b.streams["customers"]
        .iter()
        .filter(|v| v.get("balance").is_some())
        .map(|v| (s(v, "customer_id"), n(v, "credit_limit")))
        .collect();
    for v in &b.streams["transactions"] {
        let c = s(v, "customer_id");
        if !healthy.contains(c) || s(v, "status") == "declined" {
            continue;
        }
        let x = bal.entry(c).or_default();
        let a = n(v, "amount");
        match s(v, "type") {
            "drawdown" | "purchase" | "cash_withdrawal" | "fee" => *x += a,
            "repayment" | "refund" => *x = x.saturating_sub(a),
            _ => {}
        }
        worst = worst.max(*x as f64 / first_limit[c] as f64);
    }
    assert!(worst < 0.6, "healthy utilisation reached {worst}");
    assert!(!limit.is_empty());
}

#[test]
fn ring_members_share_identifiers_and_others_share_only_hub_ips() {
    let b = book();
    let arch: HashMap<&str, (&str, Option<&str>)> = b
        .truth
        .iter()
        .map(|t| {
            (
                s(t, "customer_id"),
                (s(t, "archetype"), t["ring_id"].as_str()),
            )
        })
        .collect();
    // identifier -> customers using it
    let mut users: HashMap<(&str, &str), HashSet<&str>> = HashMap::new();
    for v in &b.streams["behaviors"] {
        for key in ["device_id", "ip", "phone_hash"] {
            if let Some(x) = v[key].as_str() {
                users
                    .entry((key, x))
                    .or_default()
                    .insert(s(v, "customer_id"));
            }
        }
    }
    let mut rings: HashMap<&str, HashSet<&str>> = HashMap::new();
    for (c, (_, ring)) in &arch {
        if let Some(r) = ring {
            rings.entry(r).or_default().insert(c);
        }
    }
    assert!(!rings.is_empty());
    for (r, members) in &rings {
        assert!(
            (4..=12).contains(&members.len()),
            "ring {r} has {}",
            members.len()
        );
    }
    let mut linked: HashSet<&str> = HashSet::new();
    let mut hub_ips = 0;
    for ((key, id), set) in &users {
        if set.len() < 2 {
            continue;
        }
        let ringset: HashSet<Option<&str>> = set.iter().map(|c| arch[c].1).collect();
        if ringset.len() == 1 && ringset.iter().next().expect("one").is_some() {
            linked.extend(set.iter().copied());
            continue;
        }
        // Shared outside a ring: only hub IPs, only healthy customers, by dozens or more.
        assert_eq!(*key, "ip", "{key} {id} shared by {set:?}");
        assert!(set.iter().all(|c| arch[c].0 == "healthy"), "hub {id}");
        assert!(set.len() >= 20, "hub {id} has only {}", set.len());
        hub_ips += 1;
    }
    assert!(hub_ips >= 1);
    for members in rings.values() {
        for m in members {
            assert!(linked.contains(m), "ring member {m} shares nothing");
        }
    }
}

#[test]
fn archetype_counts_follow_the_mix() {
    let b = book();
    let counts: HashMap<&str, u64> = b
        .summary
        .by_archetype
        .iter()
        .map(|(k, v)| (k.as_str(), *v))
        .collect();
    assert_eq!(counts["healthy"], 2_580);
    assert_eq!(counts["deteriorating"], 180);
    assert_eq!(counts["bust_out"], 90);
    assert_eq!(counts["fraud_ring"], 90);
    assert_eq!(counts["cured"], 60);
    let per_month =
        b.summary.events_per_stream.iter().sum::<u64>() as f64 / b.cfg.customers as f64 / 3.0;
    assert!(
        (35.0..70.0).contains(&per_month),
        "{per_month} events per customer-month"
    );
}

#[test]
fn deterioration_starts_at_least_40_days_before_the_missed_due_date() {
    let cfg = GenConfig {
        customers: 5_000,
        ..GenConfig::default()
    };
    let p = Period::new(&cfg);
    let customers = archetypes::build(&cfg, &p);
    let mut seen = 0;
    for c in customers
        .iter()
        .filter(|c| c.arch == Archetype::Deteriorating)
    {
        assert!(
            c.turn_day + 40 <= c.stop_day,
            "{} {}",
            c.turn_day,
            c.stop_day
        );
        assert!(c.turn_day < p.days / 2);
        assert!(c.stop_day + 30 <= p.days);
        seen += 1;
    }
    assert!(seen > 0);
}

#[test]
fn invalid_configs_are_rejected() {
    let dir = temp_dir("invalid");
    let cfg = GenConfig {
        days: 0,
        ..GenConfig::default()
    };
    let err = generate(&cfg, &dir).expect_err("zero days");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

/// `cargo test --release -p riskwatch-connectors -- --ignored --nocapture gen_100k`
/// (`GEN_CUSTOMERS`, `GEN_DAYS` change the size; `KEEP=1` keeps the files.)
#[test]
#[ignore]
fn gen_100k_customers_90_days_timing() {
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let cfg = GenConfig {
        customers: env("GEN_CUSTOMERS", 100_000),
        days: env("GEN_DAYS", 90),
        ..GenConfig::default()
    };
    let dir = temp_dir("100k");
    let t = std::time::Instant::now();
    let summary = generate(&cfg, &dir).expect("generates");
    let secs = t.elapsed().as_secs_f64();
    let total: u64 = summary.events_per_stream.iter().sum();
    let bytes: u64 = std::fs::read_dir(&dir)
        .expect("dir")
        .map(|e| e.expect("entry").metadata().expect("meta").len())
        .sum();
    println!(
        "{} x {}d: {secs:.1} s, {total} events {:?}, {:.1} per customer-month, {} MB, {:?}",
        cfg.customers,
        cfg.days,
        summary.events_per_stream,
        total as f64 / cfg.customers.max(1) as f64 / (cfg.days as f64 / 30.0),
        bytes >> 20,
        summary.by_archetype
    );
    if std::env::var_os("KEEP").is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        println!("kept {}", dir.display());
    }
}
