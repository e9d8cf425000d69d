//! Arithmetic and DPD hardening (issue 8, "One bad record must never cost good data"):
//! money above the decode-time maximum is rejected without touching its neighbours, window
//! sums at the documented bound stay exact, a `due_ts` far before its record's `ts` is
//! rejected, the features and the collection cases read one DPD, and a record may start
//! with a UTF-8 byte order mark.

use crate::support::*;
use riskwatch_model::decode::{MAX_DUE_TS_AGE, MAX_MINOR};
use riskwatch_model::event::Stream;
use riskwatch_model::output::{CaseEvent, CaseStage};
use serde_json::{json, Value};

/// One 24-hour spend window and a rule on it; a skew large enough for sparse books.
const SPEND_ONLY: &str = r#"
[time]
max_future_skew = "400d"

[delinquency]
wake_at_dpd = []

[[window]]
name = "24h"
length = "24h"
granularity = "5m"
features = ["spend"]

[[strategy]]
name = "plain"
role = "champion"

[strategy.scorecard]
base = 1000.0

[[strategy.rule]]
id = "big_spend"
severity = "high"
expr = "spend_24h >= 1000"
"#;

/// `(source, reason, offset, line)` of every rejected record.
fn rejections(run: &Run) -> Vec<(String, String, u64, String)> {
    run.rejected
        .iter()
        .map(|r| {
            (
                r["source"].as_str().unwrap().to_string(),
                r["reason"].as_str().unwrap().to_string(),
                r["offset"].as_u64().unwrap(),
                r["line"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Asserts that two runs produced the same outputs and feature trace.
fn assert_same_outputs(a: &Run, b: &Run) {
    assert_eq!(
        first_difference(&comparable(&a.out.alerts), &comparable(&b.out.alerts)),
        None
    );
    assert_eq!(
        first_difference(
            &comparable_cases(&a.out.cases),
            &comparable_cases(&b.out.cases)
        ),
        None
    );
    assert_eq!(
        first_difference(
            &comparable_decisions(&a.out.decisions),
            &comparable_decisions(&b.out.decisions)
        ),
        None
    );
    assert_eq!(first_difference(&a.out.trace, &b.out.trace), None);
    assert_eq!(a.out.stats, b.out.stats);
    assert_eq!((a.max_ts, a.end, a.late), (b.max_ts, b.end, b.late));
}

/// Regression: an amount near `i64::MAX` wrapped the window sum negative, so a rule fired,
/// cleared when the huge purchase arrived and fired again when it expired.
#[test]
fn amount_near_i64_max_no_longer_wraps_a_window_sum_into_fire_clear_fire() {
    let cfg = compiled(SPEND_ONLY);
    let huge = json!({"event_id": "T2", "customer_id": "W1", "ts": day(1) + HOUR,
                      "type": "purchase", "amount": 9_223_372_036_854_775_000u64})
    .to_string();
    let build = |bad: bool| {
        let mut b = Book::new();
        b.txn("T1", "W1", day(1), "purchase", 1_000);
        if bad {
            b.raw(Stream::Transactions, huge.as_bytes());
        }
        b.txn("T3", "W2", day(1) + 2 * HOUR, "purchase", 500);
        b.txn("T4", "W1", day(1) + 3 * HOUR, "purchase", 5);
        b
    };
    let clean = run_book(&cfg, &build(false), Some(day(3)));
    let dirty = run_book(&cfg, &build(true), Some(day(3)));
    assert_eq!(
        rejections(&dirty),
        [(
            "transactions".to_string(),
            "range:amount".to_string(),
            2,
            huge.clone()
        )]
    );
    assert!(clean.rejected.is_empty());
    assert_same_outputs(&clean, &dirty);
    // One episode: fired once, never cleared by a wrapped sum.
    assert_eq!(dirty.alerts_of("W1"), [(day(1), "big_spend".to_string())]);
    assert_eq!(
        dirty.series("W1", "spend_24h"),
        [
            (day(1), Some(1_000.0)),
            (day(1) + 3 * HOUR, Some(1_005.0)),
            (day(2), Some(5.0)),
            (day(2) + 3 * HOUR, Some(0.0)),
        ]
    );
    assert_eq!(
        dirty.series("W2", "spend_24h")[0],
        (day(1) + 2 * HOUR, Some(500.0))
    );
}

/// Every money field of every input schema: the maximum is accepted, one more is rejected
/// with `range:<field>`, and the other records' outputs are those of a book without the
/// rejected lines.
#[test]
fn money_at_the_maximum_is_accepted_and_one_above_is_rejected_in_every_field() {
    let cfg = compiled(SPEND_ONLY);
    let max = MAX_MINOR;
    let over = MAX_MINOR + 1;
    let cust = |ts: u64, limit: u64, balance: u64| {
        json!({"customer_id": "X1", "ts": ts, "credit_limit": limit, "apr_bps": 1000,
               "balance": balance})
    };
    let due = |id: &str, no: u32, ts: u64, amount: u64| {
        json!({"event_id": id, "customer_id": "X1", "loan_id": "LX", "ts": ts,
               "type": "installment_due", "installment_no": no, "due_ts": ts + 20 * DAY,
               "amount": amount})
    };
    let purchase = |id: &str, ts: u64, amount: u64| {
        json!({"event_id": id, "customer_id": "X1", "ts": ts, "type": "purchase",
               "amount": amount})
    };
    let bad: [(Stream, Value, &str); 5] = [
        (
            Stream::Customers,
            cust(day(1), over, 0),
            "range:credit_limit",
        ),
        (
            Stream::Customers,
            cust(day(1) + 1, 5, over),
            "range:balance",
        ),
        (
            Stream::Loans,
            due("LE2", 2, day(1) + 2, over),
            "range:amount",
        ),
        (
            Stream::Transactions,
            purchase("T2", day(1) + HOUR, over),
            "range:amount",
        ),
        (
            Stream::Transactions,
            purchase("T3", day(1) + HOUR, u64::MAX),
            "range:amount",
        ),
    ];
    let build = |with_bad: bool| {
        let mut b = Book::new();
        b.record(Stream::Customers, cust(day(0), max, max));
        b.record(Stream::Loans, due("LE1", 1, day(0) + 5, max));
        b.record(Stream::Transactions, purchase("T1", day(1), max));
        let mut expected = Vec::new();
        if with_bad {
            for (stream, v, reason) in &bad {
                let n = b.record(*stream, v.clone());
                expected.push((
                    stream.name().to_string(),
                    reason.to_string(),
                    n,
                    v.to_string(),
                ));
            }
        }
        b.record(Stream::Customers, cust(day(2), max - 1, 0));
        b.txn("T4", "X1", day(2) + HOUR, "purchase", 7);
        (b, expected)
    };
    let (clean_book, _) = build(false);
    let (dirty_book, mut expected) = build(true);
    let clean = run_book(&cfg, &clean_book, Some(day(3)));
    let dirty = run_book(&cfg, &dirty_book, Some(day(3)));
    let mut got = rejections(&dirty);
    got.sort();
    expected.sort();
    assert_eq!(got, expected);
    assert_same_outputs(&clean, &dirty);
    let m = max as f64;
    assert_eq!(dirty.at("X1", day(0), "credit_limit"), Some(m));
    assert_eq!(dirty.at("X1", day(0), "balance"), Some(m));
    assert_eq!(dirty.at("X1", day(1), "spend_24h"), Some(m));
    assert_eq!(dirty.at("X1", day(1), "balance"), Some(2.0 * m));
    assert_eq!(
        dirty.at("X1", day(2), "credit_limit"),
        Some((max - 1) as f64)
    );
    assert_eq!(dirty.at("X1", day(2), "balance"), Some(0.0));
    assert_eq!(dirty.at("X1", day(2) + HOUR, "spend_24h"), Some(7.0));
}

/// Sums at the documented bound (`i64::MAX / MAX_MINOR` = 9,223 maximal amounts in one
/// window) are exact: no snapshot ever shows a wrapped or rounded value.
#[test]
fn window_sums_at_the_documented_bound_do_not_wrap() {
    let cfg = compiled(SPEND_ONLY);
    let n = i64::MAX as u64 / MAX_MINOR;
    assert_eq!(n, 9_223);
    let mut book = Book::new();
    for k in 0..n {
        book.txn(
            &format!("T{k}"),
            "B1",
            day(1) + k * 5_000,
            "purchase",
            MAX_MINOR,
        );
    }
    let run = run_book(&cfg, &book, Some(day(3)));
    assert!(run.rejected.is_empty());
    let series = run.series("B1", "spend_24h");
    let (rising, falling) = series.split_at(n as usize);
    for (k, (t, v)) in rising.iter().enumerate() {
        assert_eq!(*t, day(1) + k as u64 * 5_000);
        assert_eq!(*v, Some(((k as u64 + 1) * MAX_MINOR) as f64), "at {t}");
    }
    assert_eq!(rising.last().unwrap().1, Some(9.223e18));
    // Then the window retracts granule by granule down to exactly 0, never below.
    let mut last = n * MAX_MINOR;
    for (t, v) in falling {
        let v = v.expect("spend is never null") as u64;
        assert!(v < last && *t >= day(2), "{t}: {v} after {last}");
        assert_eq!(v % MAX_MINOR, 0);
        last = v;
    }
    assert_eq!(last, 0);
    assert_eq!(run.value_at("B1", run.end, "balance"), Some(9.223e18));
}

/// Regression: an installment with `due_ts` 0 (valid under the contract) opened a case at
/// M3+ with DPD 20,468 while the features said DPD 0, bucket 0 and no delinquency alert.
/// A `due_ts` more than [`MAX_DUE_TS_AGE`] before its record's `ts` is now rejected.
#[test]
fn installment_due_at_0_is_rejected_as_range_due_ts_and_changes_nothing_else() {
    let cfg = compiled("[time]\nmax_future_skew = \"400d\"\n");
    let zero = json!({"event_id": "LZ", "customer_id": "Z1", "loan_id": "LZ1",
                      "ts": day(100), "type": "installment_due", "installment_no": 1,
                      "due_ts": 0, "amount": 5_000})
    .to_string();
    let build = |bad: bool| {
        let mut b = Book::new();
        b.customer("Z1", day(90), 100_000, 1000);
        b.customer("Z2", day(90), 100_000, 1000);
        b.due("LN", "Z2", "LN1", 1, day(95), due_on(96), 5_000);
        if bad {
            b.raw(Stream::Loans, zero.as_bytes());
        }
        b
    };
    let clean = run_book(&cfg, &build(false), Some(day(110)));
    let dirty = run_book(&cfg, &build(true), Some(day(110)));
    assert_eq!(
        rejections(&dirty),
        [(
            "loans".to_string(),
            "range:due_ts".to_string(),
            2,
            zero.clone()
        )]
    );
    assert_same_outputs(&clean, &dirty);
    assert!(dirty.out.cases.iter().all(|c| c.customer_id != "Z1"));
    assert!(dirty.alerts_of("Z1").is_empty());
    assert_eq!(dirty.value_at("Z1", day(110), "dpd"), Some(0.0));
    // The neighbour's installment still ages: M1 at day 97, a case opened there.
    assert_eq!(dirty.at("Z2", day(97), "dpd"), Some(1.0));
    let opened: Vec<(u64, CaseStage)> = dirty
        .out
        .cases
        .iter()
        .filter(|c| c.customer_id == "Z2" && c.event == CaseEvent::Opened)
        .map(|c| (c.ts, c.stage))
        .collect();
    assert_eq!(opened, [(day(97), CaseStage::M1)]);
}

/// The features and the cases read one DPD: an installment published 100 days after its
/// due date is DPD 100, bucket M3+ and 90+ in the features, the case opens at M3+ with
/// DPD 100, and both delinquency rules fire.
#[test]
fn features_and_cases_agree_for_a_due_ts_100_days_before_ts() {
    let cfg = compiled("[time]\nmax_future_skew = \"400d\"\n");
    let mut book = Book::new();
    book.customer("A1", day(110), 100_000, 1000);
    book.due("LA", "A1", "LA1", 1, day(110), day(10), 5_000);
    let run = run_book(&cfg, &book, Some(day(111)));
    assert!(run.rejected.is_empty());
    // Evaluated on arrival, and again a tick later when the decisions it caused take effect
    // (1 ms past 100 days is DPD 101 by the contract's ceiling).
    assert_eq!(run.times("A1"), [day(110), day(110) + TICK]);
    assert_eq!(run.at("A1", day(110) + TICK, "dpd"), Some(101.0));
    for (feature, value) in [("dpd", 100.0), ("bucket", 3.0), ("dpd_90_plus", 1.0)] {
        assert_eq!(run.at("A1", day(110), feature), Some(value), "{feature}");
    }
    let cases: Vec<(u64, CaseEvent, CaseStage, u64, u64)> = run
        .out
        .cases
        .iter()
        .map(|c| (c.ts, c.event, c.stage, c.dpd, c.overdue_amount))
        .collect();
    assert_eq!(
        cases,
        [(day(110), CaseEvent::Opened, CaseStage::M3Plus, 100, 5_000)]
    );
    assert_eq!(run.out.cases[0].loans[0].dpd, 100);
    assert_eq!(
        run.alerts_of("A1"),
        [
            (day(110), "delinquent_m1".to_string()),
            (day(110), "delinquent_m2".to_string())
        ]
    );
    for a in &run.out.alerts {
        assert_eq!(a.features["dpd"], Some(100.0));
        assert_eq!(a.features["bucket"], Some(3.0));
    }
    // The oldest accepted due date: exactly MAX_DUE_TS_AGE before ts.
    let mut edge = Book::new();
    edge.due(
        "LE",
        "A2",
        "LE1",
        1,
        day(3700),
        day(3700) - MAX_DUE_TS_AGE,
        5_000,
    );
    edge.due(
        "LF",
        "A3",
        "LF1",
        1,
        day(3700),
        day(3700) - MAX_DUE_TS_AGE - 1,
        5_000,
    );
    let run = run_book(&cfg, &edge, None);
    let reasons: Vec<String> = rejections(&run).into_iter().map(|r| r.1).collect();
    assert_eq!(reasons, ["range:due_ts"]);
    assert_eq!(run.at("A2", day(3700), "dpd"), Some(3650.0));
}

/// A record that starts with a UTF-8 byte order mark (a Kafka message written by a tool
/// that adds one, or a line of a concatenated file) decodes as if the mark were absent.
#[test]
fn records_starting_with_a_utf8_bom_decode_as_without_it() {
    let cfg = compiled(SPEND_ONLY);
    let mut plain = Book::new();
    plain.customer("U1", day(0), 10_000, 1000);
    plain.txn("T1", "U1", day(1), "purchase", 2_000);
    plain.txn("T2", "U1", day(1) + HOUR, "purchase", 30);
    plain.due("L1", "U1", "LU", 1, day(1), due_on(5), 100);
    plain.beh("B1", "U1", day(1) + 2 * HOUR, "login");
    let mut marked = Book::new();
    for stream in Stream::ALL {
        for line in plain.lines(stream) {
            let mut with_bom = b"\xEF\xBB\xBF".to_vec();
            with_bom.extend_from_slice(line);
            marked.raw(stream, &with_bom);
        }
    }
    let a = run_book(&cfg, &plain, Some(day(3)));
    let b = run_book(&cfg, &marked, Some(day(3)));
    assert!(b.rejected.is_empty(), "{:?}", b.rejected);
    assert_same_outputs(&a, &b);
    assert_eq!(b.at("U1", day(1) + HOUR, "spend_24h"), Some(2_030.0));
    assert_eq!(b.alerts_of("U1"), [(day(1), "big_spend".to_string())]);
}
