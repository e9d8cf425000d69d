//! Unit tests of [`decode`](super::decode): the shared records and helpers; the tests
//! themselves are in `streams` (one record per stream and kind), `fields` (the acceptance
//! rules field by field) and `robustness` (malformed input, reject rendering, mutations).

mod fields;
mod robustness;
mod streams;

use super::*;
use crate::event::{
    Behavior, BehaviorKind, CustomerRecord, CustomerStatus, LoanEvent, LoanKind, Transaction,
    TxnKind,
};

const TXN_MIN: &str =
    r#"{"event_id":"E1","customer_id":"C1","ts":1700000000000,"type":"purchase","amount":12345}"#;
const TXN_FULL: &str = r#"{"event_id":"E2","customer_id":"C1","account_id":"A1","loan_id":"L1","ts":1700000000001,"type":"repayment","amount":500,"currency":"CNY","status":"declined","merchant_id":"M1","mcc":"5411","channel":"app","device_id":"D1","ip":"10.0.0.1"}"#;
const BEH_MIN: &str = r#"{"event_id":"B1","customer_id":"C2","ts":1700000000002,"type":"login"}"#;
const BEH_FULL: &str = r#"{"event_id":"B2","customer_id":"C2","ts":1700000000003,"type":"credit_inquiry","device_id":"D2","ip":"::1","phone_hash":"P2","lender_id":"LEN2","attrs":{"a":"x","b":1.5,"c":true,"d":-3}}"#;
const LOAN_MIN: &str =
    r#"{"event_id":"LE1","customer_id":"C3","loan_id":"L3","ts":1700000000004,"type":"settled"}"#;
const LOAN_FULL: &str = r#"{"event_id":"LE2","customer_id":"C3","loan_id":"L3","ts":1700000000005,"type":"installment_due","due_ts":1702591999999,"installment_no":2,"amount":100000}"#;
const CUST_MIN: &str =
    r#"{"customer_id":"C4","ts":1700000000006,"credit_limit":5000000,"apr_bps":1800}"#;
const CUST_FULL: &str = r#"{"customer_id":"C4","ts":1700000000007,"credit_limit":0,"apr_bps":100000,"product":"installment","segment":"prime","status":"frozen","opened_at":0,"phone_hash":"P4","balance":250000}"#;

fn ok(stream: Stream, line: &str) -> Event {
    decode(stream, line.as_bytes(), 42).unwrap_or_else(|r| panic!("{line} rejected as {r}"))
}

fn reason(stream: Stream, line: &str) -> String {
    match decode(stream, line.as_bytes(), 42) {
        Ok(e) => panic!("{line} accepted as {e:?}"),
        Err(r) => r.to_string(),
    }
}

/// Replaces the value of `field` in a flat one-line record (test records only).
fn with(line: &str, field: &str, value: &str) -> String {
    let mut v: serde_json::Map<String, serde_json::Value> = serde_json::from_str(line).unwrap();
    let mut out = String::from("{");
    let mut found = false;
    for (i, (k, old)) in v.iter_mut().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&serde_json::to_string(k).unwrap());
        out.push(':');
        if k == field {
            out.push_str(value);
            found = true;
        } else {
            out.push_str(&old.to_string());
        }
    }
    if !found {
        if !v.is_empty() {
            out.push(',');
        }
        out.push_str(&format!("\"{field}\":{value}"));
    }
    out.push('}');
    out
}

/// Deletes `field` from a flat record.
fn without(line: &str, field: &str) -> String {
    let mut v: serde_json::Map<String, serde_json::Value> = serde_json::from_str(line).unwrap();
    assert!(v.remove(field).is_some(), "{field} not in {line}");
    serde_json::to_string(&v).unwrap()
}

fn ev(ts: u64, cid: &str, eid: u64, body: Body) -> Event {
    Event {
        ts,
        seq: 42,
        key: id_hash(cid),
        customer_id: CompactString::from(cid),
        event_id: eid,
        body,
    }
}
