//! Malformed input (`json`, `not_object`, `too_large`), the rendering of rejects and
//! rejected records, random mutations that must never panic, and a throughput probe.

use super::*;

#[test]
fn json_not_object_too_large() {
    for line in [
        "",
        " ",
        "{",
        "{\"ts\":1",
        "{\"a\":1,}",
        "{'a':1}",
        "[1,2",
        "{} {}",
        "{}x",
        "nul",
        "\u{feff}\u{feff}{}",
        "{\u{feff}}",
        "\u{feff}",
        "{\"event_id\":\"E1\",\"customer_id\":\"C1\",\"ts\":1,\"type\":\"fee\",\"amount\":1} 1",
    ] {
        assert_eq!(reason(Stream::Transactions, line), "json", "{line:?}");
    }
    assert_eq!(
        decode(Stream::Transactions, b"{\"event_id\":\"\xff\"}", 0),
        Err(Reject::new(RejectCode::Json))
    );
    for line in [
        "[]",
        "[{\"a\":1}]",
        "1",
        "-1.5",
        "1e400",
        "\"\\ud800\"",
        "\"x\"",
        "true",
        "null",
        " 3 ",
    ] {
        assert_eq!(reason(Stream::Customers, line), "not_object", "{line:?}");
    }
    // A syntax error after a non-object is still json.
    assert_eq!(reason(Stream::Customers, "[1,]"), "json");

    let mut big = String::from(r#"{"pad":""#);
    big.push_str(&"x".repeat(MAX_RECORD_BYTES));
    big.push_str("\"}");
    assert_eq!(reason(Stream::Loans, &big), "too_large");
    // Over the limit even though it is not JSON: no parse.
    assert_eq!(
        decode(Stream::Loans, &vec![b'{'; MAX_RECORD_BYTES + 1], 0),
        Err(Reject::new(RejectCode::TooLarge))
    );
    // Exactly at the limit is parsed.
    let mut fit = String::from(TXN_MIN);
    fit.pop();
    fit.push_str(r#","pad":""#);
    let pad = MAX_RECORD_BYTES - fit.len() - 2;
    fit.push_str(&"x".repeat(pad));
    fit.push_str("\"}");
    assert_eq!(fit.len(), MAX_RECORD_BYTES);
    ok(Stream::Transactions, &fit);
}

/// A record that starts with a UTF-8 byte order mark (a Kafka message from a tool that
/// writes one) decodes as if the mark were absent; it used to be `json`.
#[test]
fn leading_byte_order_mark_decodes_as_if_absent() {
    for (stream, line) in [
        (Stream::Transactions, TXN_FULL),
        (Stream::Behaviors, BEH_FULL),
        (Stream::Loans, LOAN_FULL),
        (Stream::Customers, CUST_FULL),
    ] {
        let marked = format!("\u{feff}{line}");
        assert_eq!(ok(stream, &marked), ok(stream, line));
        let spaced = format!("\u{feff} \t{line}\r\n");
        assert_eq!(ok(stream, &spaced), ok(stream, line));
    }
    // The mark is skipped, then every rule applies as usual.
    assert_eq!(
        reason(Stream::Transactions, "\u{feff}{}"),
        "missing:event_id"
    );
    assert_eq!(reason(Stream::Customers, "\u{feff}[1]"), "not_object");
    assert_eq!(reason(Stream::Customers, "\u{feff}[1,]"), "json");
    // The size limit counts the record without its mark.
    let mut fit = String::from(TXN_MIN);
    fit.pop();
    fit.push_str(r#","pad":""#);
    let pad = MAX_RECORD_BYTES - fit.len() - 2;
    fit.push_str(&"x".repeat(pad));
    fit.push_str("\"}");
    assert_eq!(fit.len(), MAX_RECORD_BYTES);
    ok(Stream::Transactions, &format!("\u{feff}{fit}"));
    assert_eq!(
        reason(Stream::Transactions, &format!("\u{feff}{fit} ")),
        "too_large"
    );
    // Only a mark at the very start: U+FEFF is not JSON whitespace anywhere else.
    assert_eq!(
        reason(Stream::Transactions, &format!(" \u{feff}{TXN_MIN}")),
        "json"
    );
}

#[test]
fn reject_display_and_codes() {
    assert_eq!(Reject::new(RejectCode::Json).to_string(), "json");
    assert_eq!(Reject::new(RejectCode::FutureTs).to_string(), "future_ts");
    let r = Reject::with_field(RejectCode::Missing, "amount");
    assert_eq!(r.to_string(), "missing:amount");
    assert_eq!(r.code_str(), "missing");
    let names: Vec<_> = RejectCode::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(
        names,
        [
            "json",
            "not_object",
            "missing",
            "invalid",
            "range",
            "too_large",
            "future_ts"
        ]
    );
}

#[test]
fn rejected_json_renders_and_cuts() {
    let r = Reject::with_field(RejectCode::Invalid, "type");
    let s = rejected_json(
        Stream::Transactions,
        &r,
        b"{\"a\":\"\x01\"}",
        Some(7),
        Some(2),
    );
    let v: serde_json::Value = serde_json::from_str(&s).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"source":"transactions","reason":"invalid:type",
            "line":"{\"a\":\"\u{1}\"}","offset":7,"partition":2})
    );
    let s = rejected_json(
        Stream::Loans,
        &Reject::new(RejectCode::Json),
        b"a\xffb",
        None,
        None,
    );
    let v: serde_json::Value = serde_json::from_str(&s).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"source":"loans","reason":"json","line":"a\u{fffd}b"})
    );

    // Cut at 4096 bytes on a char boundary: 4095 ASCII bytes then a 2-byte char.
    let mut line = "x".repeat(4095).into_bytes();
    line.extend_from_slice("é".repeat(10).as_bytes());
    let s = rejected_json(
        Stream::Customers,
        &Reject::new(RejectCode::TooLarge),
        &line,
        None,
        None,
    );
    let v: serde_json::Value = serde_json::from_str(&s).unwrap();
    assert_eq!(v["line"].as_str().unwrap(), "x".repeat(4095));
    let line = "y".repeat(100_000);
    let s = rejected_json(
        Stream::Customers,
        &Reject::new(RejectCode::TooLarge),
        line.as_bytes(),
        Some(0),
        None,
    );
    let v: serde_json::Value = serde_json::from_str(&s).unwrap();
    assert_eq!(v["line"].as_str().unwrap(), &line[..4096]);
    assert_eq!(v["offset"], 0);
    assert!(v.get("partition").is_none());
    // Invalid bytes straddling the cut still give at most 4096 bytes.
    let mut line = vec![b'z'; 4094];
    line.extend_from_slice(b"\xff\xff\xff\xff");
    let s = rejected_json(
        Stream::Customers,
        &Reject::new(RejectCode::Json),
        &line,
        None,
        None,
    );
    let v: serde_json::Value = serde_json::from_str(&s).unwrap();
    let cut = v["line"].as_str().unwrap();
    assert!(cut.len() <= 4096);
    assert_eq!(cut, "z".repeat(4094));
}

/// xorshift64*: a small deterministic generator for the mutation test.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn mutations_never_panic_and_name_the_field() {
    let bases = [
        (Stream::Transactions, TXN_FULL, 5),
        (Stream::Behaviors, BEH_FULL, 4),
        (Stream::Loans, LOAN_FULL, 7),
        (Stream::Loans, LOAN_MIN, 5),
        (Stream::Customers, CUST_FULL, 4),
    ];
    let tokens = [
        "null",
        "true",
        "false",
        "0",
        "-1",
        "1.5",
        "1e3",
        "\"\"",
        "\"x\"",
        "\"a b\"",
        "{}",
        "[]",
        "{\"a\":{}}",
        "99999999999999999999",
        "\"\\u0000\"",
        "\"purchase\"",
        "\"installment_due\"",
        "\"CNY\"",
        "\"1234\"",
        "100001",
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..20_000 {
        let (stream, base, _) = bases[rng.below(bases.len())];
        let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(base).unwrap();
        let keys: Vec<&String> = map.keys().collect();
        let field = keys[rng.below(keys.len())].as_str();
        match rng.below(4) {
            0 => {
                // Delete one field: ok (optional) or missing:field.
                let line = without(base, field);
                if let Err(r) = decode(stream, line.as_bytes(), 0) {
                    assert_eq!(r.to_string(), format!("missing:{field}"), "{line}");
                }
            }
            1 => {
                // Change one value: ok or a reason about that field.
                let line = with(base, field, tokens[rng.below(tokens.len())]);
                if let Err(r) = decode(stream, line.as_bytes(), 0) {
                    let loan_type = stream == Stream::Loans && field == "type";
                    assert!(r.field == Some(field) || loan_type, "{line}: {r}");
                }
            }
            2 => {
                // Truncate anywhere (not on a char boundary necessarily).
                let cut = rng.below(base.len());
                let _ = decode(stream, &base.as_bytes()[..cut], 0);
            }
            _ => {
                // Overwrite random bytes.
                let mut bytes = base.as_bytes().to_vec();
                for _ in 0..1 + rng.below(3) {
                    let at = rng.below(bytes.len());
                    let pool = b"{}[]\":,\\-.e0 x\xff\x00";
                    bytes[at] = pool[rng.below(pool.len())];
                }
                let _ = decode(stream, &bytes, 0);
            }
        }
    }
}

#[test]
#[ignore = "throughput measurement; run with --ignored --nocapture"]
fn bench_decode_throughput() {
    let lines: Vec<(Stream, String)> = (0..1000u64)
        .map(|i| {
            (
                Stream::Transactions,
                format!(
                    r#"{{"event_id":"evt-{:012}","customer_id":"C{:09}","account_id":"A{:09}","ts":{},"type":"purchase","amount":{},"currency":"CNY","status":"approved","merchant_id":"M{:08}","mcc":"5411","channel":"pos","device_id":"dev-{:012x}","ip":"10.1.{}.{}"}}"#,
                    i * 7919,
                    i % 97,
                    i % 97,
                    1_717_171_717_171 + i,
                    1000 + i * 13,
                    i % 500,
                    i * 31,
                    i % 256,
                    i % 200
                ),
            )
        })
        .collect();
    let bytes: usize = lines.iter().map(|(_, l)| l.len()).sum();
    let rounds = 2000;
    let start = std::time::Instant::now();
    let mut sum = 0u64;
    for _ in 0..rounds {
        for (stream, line) in &lines {
            sum = sum.wrapping_add(decode(*stream, line.as_bytes(), 0).unwrap().key);
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let n = (rounds * lines.len()) as f64;
    println!(
        "decode: {:.0} records/s, {:.0} MB/s, avg {} bytes/line (checksum {sum})",
        n / secs,
        (rounds * bytes) as f64 / secs / 1e6,
        bytes / lines.len()
    );
}
