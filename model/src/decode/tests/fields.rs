//! The acceptance rules field by field: missing, null, types, enums, patterns, ranges,
//! reason order, extra and duplicate keys, escapes.

use super::*;

#[test]
fn missing_each_required_field() {
    let cases: [(Stream, &str, &[&str]); 5] = [
        (
            Stream::Transactions,
            TXN_FULL,
            &["event_id", "customer_id", "ts", "type", "amount"],
        ),
        (
            Stream::Behaviors,
            BEH_FULL,
            &["event_id", "customer_id", "ts", "type"],
        ),
        (
            Stream::Loans,
            LOAN_FULL,
            &[
                "event_id",
                "customer_id",
                "loan_id",
                "ts",
                "type",
                "due_ts",
                "amount",
            ],
        ),
        (
            Stream::Loans,
            LOAN_MIN,
            &["event_id", "customer_id", "loan_id", "ts", "type"],
        ),
        (
            Stream::Customers,
            CUST_FULL,
            &["customer_id", "ts", "credit_limit", "apr_bps"],
        ),
    ];
    for (stream, base, required) in cases {
        for field in required {
            let expect = format!("missing:{field}");
            assert_eq!(reason(stream, &without(base, field)), expect);
            assert_eq!(reason(stream, &with(base, field, "null")), expect);
        }
    }
    assert_eq!(reason(Stream::Customers, "{}"), "missing:customer_id");
    assert_eq!(reason(Stream::Transactions, "{}"), "missing:event_id");
}

#[test]
fn installment_due_needs_due_ts_and_amount() {
    let line = r#"{"event_id":"E","customer_id":"C","loan_id":"L","ts":1,"type":"installment_due","amount":5}"#;
    assert_eq!(reason(Stream::Loans, line), "missing:due_ts");
    let line = r#"{"event_id":"E","customer_id":"C","loan_id":"L","ts":1,"type":"installment_due","due_ts":5}"#;
    assert_eq!(reason(Stream::Loans, line), "missing:amount");
    // Not required for the other types, but validated when present.
    assert_eq!(
        reason(Stream::Loans, &with(LOAN_MIN, "due_ts", "\"x\"")),
        "invalid:due_ts"
    );
    assert_eq!(
        reason(Stream::Loans, &with(LOAN_MIN, "amount", "-1")),
        "range:amount"
    );
}

#[test]
fn null_optional_field_is_invalid() {
    for (stream, base, fields) in [
        (
            Stream::Transactions,
            TXN_MIN,
            &[
                "account_id",
                "loan_id",
                "currency",
                "status",
                "merchant_id",
                "mcc",
                "channel",
                "device_id",
                "ip",
            ][..],
        ),
        (
            Stream::Behaviors,
            BEH_MIN,
            &["device_id", "ip", "phone_hash", "lender_id", "attrs"][..],
        ),
        (
            Stream::Loans,
            LOAN_MIN,
            &["due_ts", "installment_no", "amount"][..],
        ),
        (Stream::Loans, LOAN_FULL, &["installment_no"][..]),
        (
            Stream::Customers,
            CUST_MIN,
            &[
                "product",
                "segment",
                "status",
                "opened_at",
                "phone_hash",
                "balance",
            ][..],
        ),
    ] {
        for field in fields {
            assert_eq!(
                reason(stream, &with(base, field, "null")),
                format!("invalid:{field}")
            );
        }
    }
}

#[test]
fn invalid_types() {
    let t = Stream::Transactions;
    for v in ["1", "true", "{}", "[]", "[\"E\"]"] {
        assert_eq!(reason(t, &with(TXN_MIN, "event_id", v)), "invalid:event_id");
        assert_eq!(
            reason(t, &with(TXN_MIN, "customer_id", v)),
            "invalid:customer_id"
        );
    }
    for v in [
        "\"100\"", "true", "{}", "[1]", "100.0", "1e3", "1E3", "1.5", "-1.5", "1e-3",
    ] {
        assert_eq!(
            reason(t, &with(TXN_MIN, "amount", v)),
            "invalid:amount",
            "{v}"
        );
        assert_eq!(reason(t, &with(TXN_MIN, "ts", v)), "invalid:ts", "{v}");
    }
    assert_eq!(reason(t, &with(TXN_MIN, "type", "1")), "invalid:type");
    assert_eq!(
        reason(t, &with(TXN_MIN, "merchant_id", "7")),
        "invalid:merchant_id"
    );
    assert_eq!(reason(t, &with(TXN_MIN, "ip", "false")), "invalid:ip");
    assert_eq!(reason(t, &with(TXN_MIN, "mcc", "5411")), "invalid:mcc");
    let b = Stream::Behaviors;
    assert_eq!(reason(b, &with(BEH_MIN, "attrs", "[]")), "invalid:attrs");
    assert_eq!(reason(b, &with(BEH_MIN, "attrs", "\"a\"")), "invalid:attrs");
    assert_eq!(
        reason(b, &with(BEH_MIN, "attrs", r#"{"a":{"b":1}}"#)),
        "invalid:attrs"
    );
    assert_eq!(
        reason(b, &with(BEH_MIN, "attrs", r#"{"a":[1]}"#)),
        "invalid:attrs"
    );
    assert_eq!(
        reason(b, &with(BEH_MIN, "attrs", r#"{"a":1,"b":null}"#)),
        "invalid:attrs"
    );
    ok(b, &with(BEH_MIN, "attrs", "{}"));
    ok(b, &with(BEH_MIN, "attrs", r#"{"a\n":"\u00e9","b":1e400}"#));
    assert_eq!(
        reason(b, &with(BEH_MIN, "phone_hash", "1")),
        "invalid:phone_hash"
    );
    assert_eq!(
        reason(b, &with(BEH_MIN, "lender_id", "[]")),
        "invalid:lender_id"
    );
    let c = Stream::Customers;
    assert_eq!(
        reason(c, &with(CUST_MIN, "segment", "2")),
        "invalid:segment"
    );
    assert_eq!(
        reason(c, &with(CUST_MIN, "apr_bps", "18.5")),
        "invalid:apr_bps"
    );
    assert_eq!(
        reason(c, &with(CUST_MIN, "opened_at", "\"2024\"")),
        "invalid:opened_at"
    );
    assert_eq!(
        reason(c, &with(CUST_MIN, "balance", "1.0")),
        "invalid:balance"
    );
    let l = Stream::Loans;
    assert_eq!(
        reason(l, &with(LOAN_FULL, "installment_no", "1.0")),
        "invalid:installment_no"
    );
}

#[test]
fn invalid_enums() {
    let t = Stream::Transactions;
    for v in ["\"Purchase\"", "\"\"", "\"purchase \"", "\"payment\""] {
        assert_eq!(reason(t, &with(TXN_MIN, "type", v)), "invalid:type");
    }
    assert_eq!(
        reason(t, &with(TXN_MIN, "status", "\"pending\"")),
        "invalid:status"
    );
    assert_eq!(
        reason(t, &with(TXN_MIN, "channel", "\"web\"")),
        "invalid:channel"
    );
    assert_eq!(
        reason(Stream::Behaviors, &with(BEH_MIN, "type", "\"logout\"")),
        "invalid:type"
    );
    assert_eq!(
        reason(Stream::Loans, &with(LOAN_MIN, "type", "\"paid\"")),
        "invalid:type"
    );
    let c = Stream::Customers;
    assert_eq!(
        reason(c, &with(CUST_MIN, "product", "\"card\"")),
        "invalid:product"
    );
    assert_eq!(
        reason(c, &with(CUST_MIN, "status", "\"Active\"")),
        "invalid:status"
    );
    for ch in ["app", "pos", "online", "atm", "branch"] {
        ok(t, &with(TXN_MIN, "channel", &format!("\"{ch}\"")));
    }
    ok(c, &with(CUST_MIN, "product", "\"revolving\""));
}

#[test]
fn id_pattern_and_length() {
    let t = Stream::Transactions;
    for v in [
        "\"\"",
        "\"C 1\"",
        "\" C1\"",
        "\"C1\\t\"",
        "\"C1\\n\"",
        "\"C\\u000b1\"",
        "\"C\u{a0}1\"",
        "\"C\u{3000}1\"",
        "\"C\\u2028\"",
        "\"C\\ufeff\"",
    ] {
        assert_eq!(
            reason(t, &with(TXN_MIN, "customer_id", v)),
            "invalid:customer_id",
            "{v}"
        );
    }
    let long = format!("\"{}\"", "x".repeat(129));
    assert_eq!(
        reason(t, &with(TXN_MIN, "event_id", &long)),
        "invalid:event_id"
    );
    assert_eq!(
        reason(t, &with(TXN_MIN, "account_id", &long)),
        "invalid:account_id"
    );
    assert_eq!(
        reason(t, &with(TXN_MIN, "loan_id", "\"\"")),
        "invalid:loan_id"
    );
    assert_eq!(
        reason(Stream::Loans, &with(LOAN_MIN, "loan_id", "\"L 3\"")),
        "invalid:loan_id"
    );
    // 128 characters is fine, counted in code points, not bytes.
    ok(
        t,
        &with(TXN_MIN, "event_id", &format!("\"{}\"", "x".repeat(128))),
    );
    ok(
        t,
        &with(TXN_MIN, "event_id", &format!("\"{}\"", "é".repeat(128))),
    );
    let long = format!("\"{}\"", "é".repeat(129));
    assert_eq!(
        reason(t, &with(TXN_MIN, "event_id", &long)),
        "invalid:event_id"
    );
    // U+0085 is not \s in ECMA-262, so it is allowed.
    ok(t, &with(TXN_MIN, "event_id", "\"E\u{85}\""));
    // An unpaired surrogate cannot be decoded.
    assert_eq!(
        reason(t, &with(TXN_MIN, "event_id", r#""\ud800""#)),
        "invalid:event_id"
    );
}

#[test]
fn currency_and_mcc_patterns() {
    let t = Stream::Transactions;
    for v in ["\"cny\"", "\"CN\"", "\"CNYY\"", "\"C1Y\"", "\"ÉUR\"", "1"] {
        assert_eq!(reason(t, &with(TXN_MIN, "currency", v)), "invalid:currency");
    }
    ok(t, &with(TXN_MIN, "currency", "\"USD\""));
    ok(t, &with(TXN_MIN, "currency", "\"\\u0055SD\""));
    for v in ["\"12a4\"", "\"123\"", "\"12345\"", "\"\"", "\"١٢٣٤\""] {
        assert_eq!(reason(t, &with(TXN_MIN, "mcc", v)), "invalid:mcc");
    }
    ok(t, &with(TXN_MIN, "mcc", "\"0000\""));
}

#[test]
fn integers_and_ranges() {
    let t = Stream::Transactions;
    assert_eq!(reason(t, &with(TXN_MIN, "amount", "-5")), "range:amount");
    assert_eq!(
        reason(t, &with(TXN_MIN, "amount", "18446744073709551616")),
        "range:amount"
    );
    assert_eq!(
        reason(t, &with(TXN_MIN, "amount", "-18446744073709551617")),
        "range:amount"
    );
    // Non-integer wins over out of range.
    assert_eq!(
        reason(t, &with(TXN_MIN, "amount", "18446744073709551616.5")),
        "invalid:amount"
    );
    // u64::MAX parses, and is above MAX_MINOR.
    assert_eq!(
        reason(t, &with(TXN_MIN, "amount", "18446744073709551615")),
        "range:amount"
    );
    let Body::Transaction(x) = ok(t, &with(TXN_MIN, "amount", "-0")).body else {
        panic!()
    };
    assert_eq!(x.amount, 0);
    assert_eq!(
        reason(t, &with(TXN_MIN, "ts", "32503680000001")),
        "range:ts"
    );
    assert_eq!(reason(t, &with(TXN_MIN, "ts", "-1")), "range:ts");
    assert_eq!(
        ok(t, &with(TXN_MIN, "ts", "32503680000000")).ts,
        32503680000000
    );
    assert_eq!(ok(t, &with(TXN_MIN, "ts", "0")).ts, 0);
    let c = Stream::Customers;
    assert_eq!(
        reason(c, &with(CUST_MIN, "apr_bps", "100001")),
        "range:apr_bps"
    );
    assert_eq!(reason(c, &with(CUST_MIN, "apr_bps", "-1")), "range:apr_bps");
    assert_eq!(
        reason(c, &with(CUST_MIN, "credit_limit", "-1")),
        "range:credit_limit"
    );
    assert_eq!(
        reason(c, &with(CUST_MIN, "opened_at", "99999999999999")),
        "range:opened_at"
    );
    assert_eq!(reason(c, &with(CUST_MIN, "balance", "-7")), "range:balance");
    let l = Stream::Loans;
    assert_eq!(
        reason(l, &with(LOAN_FULL, "installment_no", "0")),
        "range:installment_no"
    );
    assert_eq!(
        reason(l, &with(LOAN_FULL, "installment_no", "-2")),
        "range:installment_no"
    );
    assert_eq!(
        reason(l, &with(LOAN_FULL, "installment_no", "4294967296")),
        "range:installment_no"
    );
    assert_eq!(
        reason(l, &with(LOAN_FULL, "due_ts", "32503680000001")),
        "range:due_ts"
    );
    let Body::Loan(x) = ok(l, &with(LOAN_FULL, "installment_no", "4294967295")).body else {
        panic!()
    };
    assert_eq!(x.installment_no, u32::MAX);
}

#[test]
fn reason_order_is_schema_order() {
    // Several bad fields: the first in required-then-properties order is named.
    let line = r#"{"ip":1,"amount":"x","type":"nope","ts":-1,"customer_id":"","event_id":"E"}"#;
    assert_eq!(reason(Stream::Transactions, line), "invalid:customer_id");
    let line = r#"{"ip":1,"amount":"x","type":"nope","ts":-1,"customer_id":"C","event_id":"E"}"#;
    assert_eq!(reason(Stream::Transactions, line), "range:ts");
    let line = r#"{"mcc":"x","currency":"x","customer_id":"C","event_id":"E","ts":1,"type":"fee","amount":1}"#;
    assert_eq!(reason(Stream::Transactions, line), "invalid:currency");
    let line = r#"{"event_id":"E","customer_id":"C","ts":1,"type":"fee","amount":1,"ip":1,"account_id":" "}"#;
    assert_eq!(reason(Stream::Transactions, line), "invalid:account_id");
    // Conditional required fields come before the optional installment_no.
    let line = r#"{"event_id":"E","customer_id":"C","loan_id":"L","ts":1,"type":"installment_due","installment_no":0,"due_ts":1}"#;
    assert_eq!(reason(Stream::Loans, line), "missing:amount");
    let line = r#"{"event_id":"E","customer_id":"C","loan_id":"L","ts":1,"type":"settled","installment_no":0,"amount":"x"}"#;
    assert_eq!(reason(Stream::Loans, line), "range:installment_no");
    // Missing and invalid are judged field by field.
    let line = r#"{"customer_id":"C","ts":"x"}"#;
    assert_eq!(reason(Stream::Customers, line), "invalid:ts");
    let line = r#"{"ts":"x","credit_limit":1,"apr_bps":1}"#;
    assert_eq!(reason(Stream::Customers, line), "missing:customer_id");
    let line =
        r#"{"customer_id":"C","ts":1,"credit_limit":1,"apr_bps":1,"balance":-1,"status":"x"}"#;
    assert_eq!(reason(Stream::Customers, line), "invalid:status");
}

#[test]
fn extra_fields_are_ignored() {
    let line = r#"{"x":{"deep":[1,{"y":null}]},"event_id":"E1","customer_id":"C1","ts":1700000000000,"type":"purchase","amount":12345,"attrs":7,"due_ts":"no","balance":-1,"z":null,"w":1e999}"#;
    assert_eq!(
        ok(Stream::Transactions, line),
        ok(Stream::Transactions, TXN_MIN)
    );
    // Fields of another stream's schema are extra here too.
    let line = with(CUST_MIN, "event_id", "[]");
    ok(Stream::Customers, &with(&line, "amount", "\"x\""));
    ok(Stream::Behaviors, &with(BEH_MIN, "amount", "-1"));
    // Whitespace around tokens and a trailing CR/LF are fine.
    let spaced = " { \"event_id\" : \"E1\" , \"customer_id\":\"C1\",\"ts\" : 1700000000000 ,\n\"type\":\"purchase\",\"amount\": 12345 }\r\n";
    assert_eq!(
        ok(Stream::Transactions, spaced),
        ok(Stream::Transactions, TXN_MIN)
    );
}

#[test]
fn duplicate_keys_last_wins() {
    let line = r#"{"ts":"bad","event_id":"E1","customer_id":"C1","ts":1700000000000,"type":"purchase","amount":12345}"#;
    assert_eq!(
        ok(Stream::Transactions, line),
        ok(Stream::Transactions, TXN_MIN)
    );
    let line = r#"{"event_id":"E1","customer_id":"C1","ts":1700000000000,"type":"purchase","amount":12345,"amount":null}"#;
    assert_eq!(reason(Stream::Transactions, line), "missing:amount");
}

#[test]
fn escaped_strings_are_unescaped() {
    let line = r#"{"event_id":"\u0045\u0031","customer_id":"C\u0041","ts":1700000000000,"type":"purch\u0061se","amount":12345,"merchant_id":"M\"1\\"}"#;
    let e = ok(Stream::Transactions, line);
    assert_eq!(e.customer_id, "CA");
    assert_eq!(e.key, id_hash("CA"));
    assert_eq!(e.event_id, id_hash("E1"));
    let Body::Transaction(t) = e.body else {
        panic!()
    };
    assert_eq!(t.kind, TxnKind::Purchase);
    assert_eq!(t.merchant, id_hash("M\"1\\"));
    // Escaped keys name the same fields.
    let line = r#"{"event_id":"E1","customer\u005fid":"C1","t\u0073":1700000000000,"type":"purchase","amount":12345}"#;
    assert_eq!(
        ok(Stream::Transactions, line),
        ok(Stream::Transactions, TXN_MIN)
    );
    // Non-ASCII and long ids (heap CompactString).
    let long = "Ж".repeat(40);
    let e = ok(
        Stream::Customers,
        &with(CUST_MIN, "customer_id", &format!("\"{long}\"")),
    );
    assert_eq!(e.customer_id, long.as_str());
    assert_eq!(e.key, id_hash(&long));
    let e = ok(
        Stream::Loans,
        &with(LOAN_MIN, "loan_id", r#""\ud83d\ude00""#),
    );
    let Body::Loan(l) = e.body else { panic!() };
    assert_eq!(l.loan_id, "\u{1f600}");
}

/// Regression: money fields took any `u64`, and amounts near `i64::MAX` wrapped window sums
/// (a rule fired, cleared and fired again) while installments of `u64::MAX` wrapped the
/// overdue amount of cases. Every money field of every schema now stops at `MAX_MINOR`.
#[test]
fn money_above_max_minor_is_range_in_every_money_field() {
    let max = MAX_MINOR.to_string();
    let over = (MAX_MINOR + 1).to_string();
    let cases = [
        (Stream::Transactions, TXN_MIN, "amount"),
        (Stream::Transactions, TXN_FULL, "amount"),
        (Stream::Loans, LOAN_FULL, "amount"),
        (Stream::Loans, LOAN_MIN, "amount"),
        (Stream::Customers, CUST_MIN, "credit_limit"),
        (Stream::Customers, CUST_FULL, "balance"),
    ];
    for (stream, base, field) in cases {
        let money = |e: &Event| match &e.body {
            Body::Transaction(t) => t.amount,
            Body::Loan(l) => l.amount,
            Body::Customer(c) if field == "credit_limit" => c.credit_limit,
            Body::Customer(c) => c.balance.expect("balance given"),
            Body::Behavior(_) => unreachable!("behaviours carry no money"),
        };
        assert_eq!(
            money(&ok(stream, &with(base, field, &max))),
            MAX_MINOR,
            "{field}"
        );
        let expect = format!("range:{field}");
        for v in [over.as_str(), "18446744073709551615", "9223372036854775807"] {
            assert_eq!(
                reason(stream, &with(base, field, v)),
                expect,
                "{field} = {v}"
            );
        }
    }
    assert_eq!(MAX_MINOR, 1_000_000_000_000_000);
    // The headroom: i64 holds 9,223 maximal amounts.
    assert_eq!(i64::MAX as u64 / MAX_MINOR, 9_223);
}

/// Regression: `due_ts: 0` was valid, and the ledger's 0 for "nothing unpaid" made the
/// features say DPD 0 while the case opened at M3+ with DPD 20,468.
#[test]
fn due_ts_more_than_max_due_ts_age_before_ts_is_range_due_ts() {
    let l = Stream::Loans;
    let ts: u64 = 1_700_000_000_005;
    let due = |d: u64| with(LOAN_FULL, "due_ts", &d.to_string());
    let due_of = |line: &str| match ok(l, line).body {
        Body::Loan(x) => x.due_ts,
        _ => unreachable!(),
    };
    assert_eq!(reason(l, &due(0)), "range:due_ts");
    assert_eq!(reason(l, &due(ts - MAX_DUE_TS_AGE - 1)), "range:due_ts");
    assert_eq!(due_of(&due(ts - MAX_DUE_TS_AGE)), ts - MAX_DUE_TS_AGE);
    assert_eq!(due_of(&due(ts - 100 * 86_400_000)), ts - 100 * 86_400_000);
    assert_eq!(due_of(&due(ts)), ts);
    assert_eq!(MAX_DUE_TS_AGE, 3_650 * 86_400_000);
    // Relative to the record's own ts: near the epoch, 0 is within the horizon.
    let early = with(&due(0), "ts", "86400000");
    assert_eq!(due_of(&early), 0);
    // Checked after ts: a bad ts is named first.
    assert_eq!(reason(l, &with(&due(0), "ts", "-1")), "range:ts");
    // On settled and written_off, due_ts is only checked against the schema.
    let settled = with(LOAN_MIN, "due_ts", "0");
    assert_eq!(due_of(&settled), 0);
    assert_eq!(
        reason(l, &with(LOAN_MIN, "due_ts", "32503680000001")),
        "range:due_ts"
    );
}
