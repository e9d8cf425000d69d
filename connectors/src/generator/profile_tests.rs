//! Tests of the generator's profiles: the default book is byte-identical to the book before
//! profiles existed, and the hard profile has its mix and its hard cases.

use super::*;

/// FNV-1a, 64 bits: a hash that is stable across Rust versions and platforms.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("riskwatch-prof-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A file's expected FNV-1a hash and length in bytes.
type FileHash = (&'static str, u64, usize);

/// The default profile's files, hashed before the hard profile was added (commit 5a3890e's
/// generator): (customers, days, seed, files).
const DEFAULT_BOOKS: [(u64, u64, u64, [FileHash; 5]); 2] = [
    (
        400,
        75,
        11,
        [
            ("transactions", 0x3f45_d24a_c941_fab2, 4_267_159),
            ("behaviors", 0xf88d_c34f_81d5_52ae, 3_870_800),
            ("loans", 0x1b3c_b8a5_f25b_84a0, 224_961),
            ("customers", 0x7589_aa08_ee84_f6dd, 88_684),
            ("truth", 0xbc62_7271_252d_ed6d, 33_844),
        ],
    ),
    (
        300,
        120,
        5,
        [
            ("transactions", 0x5d55_5572_2c5f_410a, 4_897_088),
            ("behaviors", 0xc10d_ba59_2e1c_2221, 4_612_461),
            ("loans", 0x66d2_08f8_4e1d_7f8b, 284_173),
            ("customers", 0xc0e3_4bf8_f4a6_8734, 66_798),
            ("truth", 0xef1a_8390_8a04_a00c, 25_383),
        ],
    ),
];

#[test]
fn default_profile_files_are_byte_identical_to_before_the_profiles() {
    for (customers, days, seed, files) in DEFAULT_BOOKS {
        let cfg = GenConfig {
            customers,
            days,
            seed,
            mix: Profile::Default.mix(),
            ..GenConfig::default()
        };
        assert_eq!(
            cfg,
            GenConfig {
                customers,
                days,
                seed,
                ..GenConfig::default()
            }
        );
        let dir = temp_dir(&format!("hash-{customers}-{days}"));
        generate(&cfg, &dir).expect("generates");
        for (name, hash, len) in files {
            let bytes = std::fs::read(dir.join(format!("{name}.ndjson"))).expect("read");
            assert_eq!(
                (fnv1a(&bytes), bytes.len()),
                (hash, len),
                "{name}.ndjson of {customers} x {days} days, seed {seed}, changed"
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// What the hard-profile tests measure of one customer, from the generated records only.
/// "Before" means before `defaults_at` (the whole period for customers who never default).
#[derive(Clone, Debug)]
struct Observed {
    arch: Archetype,
    defaults_at: Option<u64>,
    /// Days before the cut-off (`defaults_at` or the end of the period).
    days_before: f64,
    /// Highest drawn balance ÷ first credit limit before the cut-off.
    max_util: f64,
    /// Approved cash withdrawals before the cut-off.
    cash: u64,
    /// Credit inquiries before the cut-off, and the most distinct lenders within 30 days.
    inquiries: u64,
    max_lenders_30d: usize,
    /// Phone, contact and device changes before the cut-off.
    identity: u64,
    /// Some installment was fully paid, after its due date.
    paid_late: bool,
    /// Some installment due before the cut-off was paid late or not at all.
    missed_before: bool,
    /// Due timestamp of the first installment never fully paid.
    first_unpaid_due: Option<u64>,
}

const HARD_SEEDS: [u64; 3] = [1, 2, 3];
const HARD_CUSTOMERS: u64 = 1_500;
const HARD_DAYS: u64 = 120;

fn hard_books() -> &'static Vec<Vec<Observed>> {
    static BOOKS: std::sync::OnceLock<Vec<Vec<Observed>>> = std::sync::OnceLock::new();
    BOOKS.get_or_init(|| HARD_SEEDS.iter().map(|seed| hard_book(*seed)).collect())
}

/// Generates a hard book, checks its truth against its records, and measures each customer.
fn hard_book(seed: u64) -> Vec<Observed> {
    use serde_json::Value;
    use std::collections::HashMap;
    const DAY: u64 = DAY_MS;
    let cfg = GenConfig {
        customers: HARD_CUSTOMERS,
        days: HARD_DAYS,
        seed,
        mix: Profile::Hard.mix(),
        ..GenConfig::default()
    };
    let dir = temp_dir(&format!("hard-{seed}"));
    generate(&cfg, &dir).expect("generates");
    let streams: HashMap<&'static str, Vec<Value>> =
        ["transactions", "behaviors", "loans", "customers"]
            .into_iter()
            .map(|s| (s, super::tests::read_lines(&dir, s)))
            .collect();
    let truth = super::tests::read_lines(&dir, "truth");
    let _ = std::fs::remove_dir_all(&dir);
    super::tests::check_truth(&cfg, &streams, &truth, true);

    let s = |v: &Value, k: &str| v[k].as_str().unwrap_or("").to_string();
    let n = |v: &Value, k: &str| v[k].as_u64().unwrap_or(0);
    let index = |id: &str| id[1..].parse::<usize>().expect("a customer number");
    let (start, end) = (cfg.start_ms, cfg.end_ms());
    let mut out: Vec<Observed> = truth
        .iter()
        .map(|t| {
            let arch = Archetype::from_name(t["archetype"].as_str().unwrap_or(""))
                .expect("a known archetype");
            let defaults_at = t["defaults_at"].as_u64();
            Observed {
                arch,
                defaults_at,
                days_before: (defaults_at.unwrap_or(end).min(end) - start) as f64 / DAY as f64,
                max_util: 0.0,
                cash: 0,
                inquiries: 0,
                max_lenders_30d: 0,
                identity: 0,
                paid_late: false,
                missed_before: false,
                first_unpaid_due: None,
            }
        })
        .collect();
    let cutoff = |o: &Observed| o.defaults_at.unwrap_or(u64::MAX);

    // Utilisation and cash, replaying the balance as the contract defines it.
    let mut limit = vec![0u64; out.len()];
    let mut bal = vec![0u64; out.len()];
    for v in streams["customers"]
        .iter()
        .filter(|v| v.get("balance").is_some())
    {
        let i = index(&s(v, "customer_id"));
        (limit[i], bal[i]) = (n(v, "credit_limit"), n(v, "balance"));
    }
    let mut repaid: HashMap<String, Vec<(u64, u64)>> = HashMap::new();
    for v in &streams["transactions"] {
        let i = index(&s(v, "customer_id"));
        let (ts, amount, kind) = (n(v, "ts"), n(v, "amount"), s(v, "type"));
        if kind == "repayment" && !s(v, "loan_id").ends_with("-R") {
            repaid
                .entry(s(v, "loan_id"))
                .or_default()
                .push((ts, amount));
        }
        if s(v, "status") == "declined" {
            continue;
        }
        match kind.as_str() {
            "drawdown" | "purchase" | "cash_withdrawal" | "fee" => bal[i] += amount,
            "repayment" | "refund" => bal[i] = bal[i].saturating_sub(amount),
            _ => {}
        }
        let o = &mut out[i];
        if ts < cutoff(o) {
            o.max_util = o.max_util.max(bal[i] as f64 / limit[i] as f64);
            o.cash += u64::from(kind == "cash_withdrawal");
        }
    }

    // Inquiries, lenders and identity changes.
    let mut inquiries: Vec<Vec<(u64, String)>> = vec![Vec::new(); out.len()];
    for v in &streams["behaviors"] {
        let i = index(&s(v, "customer_id"));
        if n(v, "ts") >= cutoff(&out[i]) {
            continue;
        }
        match s(v, "type").as_str() {
            "credit_inquiry" => inquiries[i].push((n(v, "ts"), s(v, "lender_id"))),
            "phone_changed" | "contact_changed" | "device_bound" => out[i].identity += 1,
            _ => {}
        }
    }
    for (o, list) in out.iter_mut().zip(&inquiries) {
        o.inquiries = list.len() as u64;
        o.max_lenders_30d = list
            .iter()
            .map(|(ts, _)| {
                let within = list
                    .iter()
                    .filter(|(t, _)| *t <= *ts && *t + 30 * DAY > *ts);
                within
                    .map(|(_, l)| l.as_str())
                    .collect::<std::collections::HashSet<_>>()
                    .len()
            })
            .max()
            .unwrap_or(0);
    }

    // When each installment was completed: repayments cover a loan's installments in order.
    let mut schedule: HashMap<String, Vec<(u64, u64, u64)>> = HashMap::new();
    for v in streams["loans"]
        .iter()
        .filter(|v| s(v, "type") == "installment_due")
    {
        let e = schedule.entry(s(v, "loan_id")).or_default();
        e.push((n(v, "installment_no"), n(v, "due_ts"), n(v, "amount")));
    }
    for (loan, list) in &mut schedule {
        list.sort();
        let i = index(&loan[..loan.find('-').expect("a dash")]);
        let pays = repaid.get(loan).cloned().unwrap_or_default();
        let (mut owed, mut k, mut paid) = (0u64, 0usize, 0u64);
        for (_, due, amount) in list.iter() {
            owed += amount;
            while paid < owed && k < pays.len() {
                paid += pays[k].1;
                k += 1;
            }
            let o = &mut out[i];
            let done = (paid >= owed).then(|| pays[k - 1].0);
            match done {
                Some(at) if at > *due => o.paid_late = true,
                Some(_) => {}
                None => {
                    let first = o.first_unpaid_due.map_or(*due, |d| d.min(*due));
                    o.first_unpaid_due = Some(first);
                }
            }
            if *due < cutoff(o) && done.is_none_or(|at| at > *due) {
                o.missed_before = true;
            }
        }
    }
    out
}

fn of(book: &[Observed], arch: Archetype) -> Vec<&Observed> {
    book.iter().filter(|o| o.arch == arch).collect()
}

fn mean(xs: impl Iterator<Item = f64>) -> f64 {
    let (sum, k) = xs.fold((0.0, 0.0), |(s, k), x| (s + x, k + 1.0));
    if k == 0.0 {
        0.0
    } else {
        sum / k
    }
}

#[test]
fn hard_profile_archetype_shares_follow_the_mix() {
    let mix = Profile::Hard.mix();
    let total: f64 = mix.shares().iter().sum();
    for book in hard_books() {
        let n = book.len() as f64;
        for (arch, share) in Archetype::ALL.iter().zip(mix.shares()) {
            let got = of(book, *arch).len() as f64;
            let want = n * share / total;
            assert!(
                (got - want).abs() <= (0.005 * n).max(2.0),
                "{}: {got} customers, the mix says {want}",
                arch.name()
            );
        }
        let defaulters = book.iter().filter(|o| o.defaults_at.is_some()).count() as f64;
        let silent = of(book, Archetype::SilentDefaulter).len() as f64;
        let stretched = of(book, Archetype::Stretched).len() as f64 / n;
        assert!(
            silent / defaulters >= 0.25,
            "silent {silent} of {defaulters}"
        );
        assert!((0.10..=0.15).contains(&stretched), "stretched {stretched}");
    }
}

#[test]
fn hard_profile_truth_is_exact_for_silent_defaulters() {
    for book in hard_books() {
        let silent = of(book, Archetype::SilentDefaulter);
        assert!(!silent.is_empty());
        for o in silent {
            let at = o.defaults_at.expect("a silent defaulter defaults");
            assert_eq!(o.first_unpaid_due, Some(at), "{o:?}");
            assert!(!o.missed_before, "paid late before its default: {o:?}");
            assert!(
                o.days_before >= 29.0,
                "defaults too early to look healthy: {o:?}"
            );
        }
    }
}

#[test]
fn hard_profile_has_at_least_15_percent_who_miss_a_payment_then_cure() {
    for book in hard_books() {
        let cured = book
            .iter()
            .filter(|o| o.paid_late && o.defaults_at.is_none())
            .count() as f64;
        let share = cured / book.len() as f64;
        assert!(share >= 0.15, "{share} miss and cure");
        println!("miss then cure: {:.1} % of the book", 100.0 * share);
        for o in book.iter().filter(|o| o.arch.cures()) {
            assert!(o.paid_late && o.defaults_at.is_none(), "{o:?}");
        }
        // Cured twice: two installments of a loan paid late, so delinquency past 30 days.
        let twice = of(book, Archetype::CuredTwice);
        assert!(!twice.is_empty());
    }
}

#[test]
fn hard_profile_silent_defaulters_look_healthy_before_they_default() {
    let books = hard_books();
    let pool =
        |arch: Archetype| -> Vec<&Observed> { books.iter().flat_map(|b| of(b, arch)).collect() };
    let (healthy, silent) = (pool(Archetype::Healthy), pool(Archetype::SilentDefaulter));
    for o in &silent {
        assert!(o.max_util < 0.6, "utilisation {o:?}");
        assert!(o.max_lenders_30d < 3, "shops for credit: {o:?}");
        assert_eq!(o.identity, 0, "identity changes: {o:?}");
    }
    let per_30d = |xs: &[&Observed], f: &dyn Fn(&Observed) -> f64| {
        mean(xs.iter().map(|o| f(o) * 30.0 / o.days_before))
    };
    let cash = |o: &Observed| o.cash as f64;
    let inquiries = |o: &Observed| o.inquiries as f64;
    let (cash_h, cash_s) = (per_30d(&healthy, &cash), per_30d(&silent, &cash));
    assert!(
        (0.5 * cash_h..=1.6 * cash_h).contains(&cash_s),
        "cash withdrawals per 30 days: healthy {cash_h:.3}, silent {cash_s:.3}"
    );
    let (inq_h, inq_s) = (per_30d(&healthy, &inquiries), per_30d(&silent, &inquiries));
    assert!(
        inq_s <= 3.0 * inq_h + 0.02,
        "inquiries per 30 days: healthy {inq_h:.3}, silent {inq_s:.3}"
    );
    let (util_h, util_s) = (
        mean(healthy.iter().map(|o| o.max_util)),
        mean(silent.iter().map(|o| o.max_util)),
    );
    assert!(
        (util_s - util_h).abs() <= 0.1,
        "peak utilisation: healthy {util_h:.3}, silent {util_s:.3}"
    );
    println!(
        "healthy vs silent: cash/30d {cash_h:.3} {cash_s:.3}, inquiries/30d {inq_h:.3} \
         {inq_s:.3}, peak utilisation {util_h:.3} {util_s:.3}"
    );
}

#[test]
fn hard_profile_stretched_never_default_and_run_high_utilisation_and_cash() {
    for book in hard_books() {
        let healthy = of(book, Archetype::Healthy);
        let stretched = of(book, Archetype::Stretched);
        assert!(!stretched.is_empty());
        for o in &stretched {
            assert!(
                o.defaults_at.is_none() && !o.missed_before && !o.paid_late,
                "{o:?}"
            );
            assert!(o.max_lenders_30d >= 3, "no shopping around: {o:?}");
        }
        let high = stretched.iter().filter(|o| o.max_util >= 0.8).count() as f64;
        assert!(
            high >= 0.9 * stretched.len() as f64,
            "{high} of {} stretched reach 80 % utilisation",
            stretched.len()
        );
        println!(
            "stretched: {:.1} % reach 80 % utilisation, mean peak {:.3}",
            100.0 * high / stretched.len() as f64,
            mean(stretched.iter().map(|o| o.max_util))
        );
        let worst_healthy = healthy.iter().map(|o| o.max_util).fold(0.0, f64::max);
        assert!(worst_healthy < 0.6, "healthy utilisation {worst_healthy}");
        let cash = |xs: &[&Observed]| mean(xs.iter().map(|o| o.cash as f64 * 30.0 / o.days_before));
        let (h, s) = (cash(&healthy), cash(&stretched));
        assert!(
            s >= 5.0 * h && s >= 2.0,
            "cash per 30 days: healthy {h:.2}, stretched {s:.2}"
        );
    }
}
