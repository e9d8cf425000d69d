//! NDJSON/JSON record → [`Event`], with contract validation against the input schemas in
//! `contracts/*.schema.json` and a fixed reject reason for every failure.
//!
//! # Acceptance rules
//! - More than [`MAX_RECORD_BYTES`] bytes: `too_large`, without parsing. Not UTF-8 or not
//!   one JSON value (trailing whitespace allowed): `json`. A JSON value other than an
//!   object: `not_object`.
//! - Duplicate keys: the last occurrence wins (as in `serde_json::Value` and most schema
//!   validators). Keys are compared after unescaping (`"t\u0073"` is `ts`); a key with an
//!   unpaired surrogate escape cannot be unescaped and makes the record `json`.
//! - A required field that is absent or `null`: `missing:<field>`. An optional field that is
//!   `null`: `invalid:<field>` (the schemas do not allow null).
//! - Wrong JSON type, unknown enum value, pattern or length mismatch, a number with a
//!   fraction or exponent where an integer is required (`100.0` and `1e3` included):
//!   `invalid:<field>`. An integer outside the schema's bounds, negative, or beyond `u64`
//!   (`u32` for `apr_bps` and `installment_no`): `range:<field>`. `-0` is the integer 0.
//! - Every field the stream's schema defines is validated when present; other fields are
//!   ignored whatever they hold (only JSON syntax is checked). A string with an unpaired
//!   surrogate escape (`"\uD800"`) in a defined string field is `invalid:<field>`.
//!
//! # Reason order
//! When several fields are bad, the reason names the first bad field in a fixed order: the
//! schema's `required` list in its order (for loans of type `installment_due` followed by
//! `due_ts`, `amount`), then the remaining properties in the schema's `properties` order.
//! Each field is checked completely (presence, type, pattern, range) before the next.
//!
//! # Cost
//! One pass of `serde_json` over the line that keeps each known field as a borrowed raw
//! token, then one pass over each token. No heap allocation unless a string has escapes or
//! an id is longer than [`CompactString`]'s 24 inline bytes.

use std::borrow::Cow;
use std::fmt;

use compact_str::CompactString;
use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Serialize;
use serde_json::value::RawValue;

use crate::event::{
    id_hash, Behavior, BehaviorKind, Body, CustomerRecord, CustomerStatus, Event, LoanEvent,
    LoanKind, Stream, Transaction, TxnKind,
};

/// Records longer than this many bytes are rejected as `too_large` without being parsed.
pub const MAX_RECORD_BYTES: usize = 65536;

/// The `line` of a rejected record is cut to at most this many bytes.
pub const REJECTED_LINE_BYTES: usize = 4096;

/// Largest `ts` the contract allows (year 3000), epoch ms.
const MAX_TS: u64 = 32_503_680_000_000;

/// Largest basis-point value the contract allows.
const MAX_BPS: u64 = 100_000;

/// The fixed reject codes, the part of a reject reason before the optional `:field`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RejectCode {
    /// Not UTF-8 or not valid JSON.
    Json,
    /// Valid JSON, but not an object.
    NotObject,
    /// A required field is absent or null.
    Missing,
    /// A field has the wrong type, pattern, enum value or length, or is a non-integer number
    /// where an integer is required.
    Invalid,
    /// An integer field is outside its bounds.
    Range,
    /// The record is longer than [`MAX_RECORD_BYTES`].
    TooLarge,
    /// The record's `ts` is too far ahead of the frontier or wall clock; produced by the
    /// sources, never by [`decode`].
    FutureTs,
}

impl RejectCode {
    /// All codes, e.g. to pre-register one metric per code.
    pub const ALL: [RejectCode; 7] = [
        RejectCode::Json,
        RejectCode::NotObject,
        RejectCode::Missing,
        RejectCode::Invalid,
        RejectCode::Range,
        RejectCode::TooLarge,
        RejectCode::FutureTs,
    ];

    /// The code as written in the `reason` of a rejected record (`"missing"`).
    pub fn as_str(self) -> &'static str {
        match self {
            RejectCode::Json => "json",
            RejectCode::NotObject => "not_object",
            RejectCode::Missing => "missing",
            RejectCode::Invalid => "invalid",
            RejectCode::Range => "range",
            RejectCode::TooLarge => "too_large",
            RejectCode::FutureTs => "future_ts",
        }
    }
}

impl fmt::Display for RejectCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a record was rejected: a fixed code, optionally with the offending field, rendered as
/// `code` or `code:field` (e.g. `json`, `not_object`, `missing:amount`, `invalid:type`,
/// `range:ts`, `too_large`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Reject {
    /// The fixed code.
    pub code: RejectCode,
    /// The contract name of the offending field, if the code is about one.
    pub field: Option<&'static str>,
}

impl Reject {
    /// A reject without a field (`json`, `not_object`, `too_large`, `future_ts`).
    pub const fn new(code: RejectCode) -> Reject {
        Reject { code, field: None }
    }

    /// A reject about `field` (`missing`, `invalid`, `range`).
    pub const fn with_field(code: RejectCode, field: &'static str) -> Reject {
        Reject {
            code,
            field: Some(field),
        }
    }

    /// The code alone, without the field: a bounded label for metrics.
    pub fn code_str(&self) -> &'static str {
        self.code.as_str()
    }
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.field {
            Some(field) => write!(f, "{}:{}", self.code.as_str(), field),
            None => f.write_str(self.code.as_str()),
        }
    }
}

impl std::error::Error for Reject {}

/// Decodes one record of `stream`. `seq` is copied into the event (the caller assigns it).
///
/// See the module documentation for the acceptance rules and the order in which fields are
/// checked. Never panics, whatever `line` holds.
pub fn decode(stream: Stream, line: &[u8], seq: u64) -> Result<Event, Reject> {
    if line.len() > MAX_RECORD_BYTES {
        return Err(Reject::new(RejectCode::TooLarge));
    }
    let text = std::str::from_utf8(line).map_err(|_| Reject::new(RejectCode::Json))?;
    let rec = parse_object(text)?;
    match stream {
        Stream::Transactions => rec.transaction(seq),
        Stream::Behaviors => rec.behavior(seq),
        Stream::Loans => rec.loan(seq),
        Stream::Customers => rec.customer(seq),
    }
}

/// Renders one record of `rejected.schema.json`: `source`, `reason`, `line` (the raw text
/// cut at [`REJECTED_LINE_BYTES`] on a char boundary, invalid UTF-8 replaced by U+FFFD),
/// and `offset` and `partition` when given.
pub fn rejected_json(
    source: Stream,
    reason: &Reject,
    line: &[u8],
    offset: Option<u64>,
    partition: Option<i32>,
) -> String {
    #[derive(Serialize)]
    struct Rejected<'a> {
        source: &'static str,
        reason: String,
        line: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        offset: Option<u64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        partition: Option<i32>,
    }
    // A char that starts before the cut ends at most 3 bytes after it, so the lossy text of
    // this prefix agrees with that of the whole line up to the cut.
    let head = &line[..line.len().min(REJECTED_LINE_BYTES + 4)];
    let text = String::from_utf8_lossy(head);
    let mut cut = text.len().min(REJECTED_LINE_BYTES);
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let record = Rejected {
        source: source.name(),
        reason: reason.to_string(),
        line: &text[..cut],
        offset,
        partition,
    };
    serde_json::to_string(&record).expect("a struct of strings and integers serialises")
}

/// Every property of the four input schemas; a record keeps the raw token of each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum F {
    EventId,
    CustomerId,
    AccountId,
    LoanId,
    Ts,
    Type,
    Amount,
    Currency,
    Status,
    MerchantId,
    Mcc,
    Channel,
    DeviceId,
    Ip,
    PhoneHash,
    LenderId,
    Attrs,
    DueTs,
    InstallmentNo,
    CreditLimit,
    AprBps,
    Product,
    Segment,
    OpenedAt,
    Balance,
}

/// Number of variants of [`F`].
const FIELDS: usize = 25;

impl F {
    fn name(self) -> &'static str {
        match self {
            F::EventId => "event_id",
            F::CustomerId => "customer_id",
            F::AccountId => "account_id",
            F::LoanId => "loan_id",
            F::Ts => "ts",
            F::Type => "type",
            F::Amount => "amount",
            F::Currency => "currency",
            F::Status => "status",
            F::MerchantId => "merchant_id",
            F::Mcc => "mcc",
            F::Channel => "channel",
            F::DeviceId => "device_id",
            F::Ip => "ip",
            F::PhoneHash => "phone_hash",
            F::LenderId => "lender_id",
            F::Attrs => "attrs",
            F::DueTs => "due_ts",
            F::InstallmentNo => "installment_no",
            F::CreditLimit => "credit_limit",
            F::AprBps => "apr_bps",
            F::Product => "product",
            F::Segment => "segment",
            F::OpenedAt => "opened_at",
            F::Balance => "balance",
        }
    }

    fn from_key(key: &str) -> Option<F> {
        Some(match key {
            "event_id" => F::EventId,
            "customer_id" => F::CustomerId,
            "account_id" => F::AccountId,
            "loan_id" => F::LoanId,
            "ts" => F::Ts,
            "type" => F::Type,
            "amount" => F::Amount,
            "currency" => F::Currency,
            "status" => F::Status,
            "merchant_id" => F::MerchantId,
            "mcc" => F::Mcc,
            "channel" => F::Channel,
            "device_id" => F::DeviceId,
            "ip" => F::Ip,
            "phone_hash" => F::PhoneHash,
            "lender_id" => F::LenderId,
            "attrs" => F::Attrs,
            "due_ts" => F::DueTs,
            "installment_no" => F::InstallmentNo,
            "credit_limit" => F::CreditLimit,
            "apr_bps" => F::AprBps,
            "product" => F::Product,
            "segment" => F::Segment,
            "opened_at" => F::OpenedAt,
            "balance" => F::Balance,
            _ => return None,
        })
    }
}

/// The raw JSON token of each known field of one object (last occurrence), borrowed from
/// the line; `None` when absent.
struct Record<'a> {
    raw: [Option<&'a str>; FIELDS],
}

/// Parses `text` as one JSON object and keeps the raw tokens of the known fields.
///
/// Anything but an object is only checked for syntax (numbers that overflow f64 included),
/// so that valid JSON is `not_object` and the rest `json`.
fn parse_object(text: &str) -> Result<Record<'_>, Reject> {
    let json = |_| Reject::new(RejectCode::Json);
    if text
        .trim_start_matches([' ', '\t', '\n', '\r'])
        .starts_with('{')
    {
        let mut de = serde_json::Deserializer::from_str(text);
        let rec = (&mut de).deserialize_map(ObjectVisitor).map_err(json)?;
        de.end().map_err(json)?;
        Ok(rec)
    } else {
        serde_json::from_str::<IgnoredAny>(text).map_err(json)?;
        Err(Reject::new(RejectCode::NotObject))
    }
}

/// Visits the top-level object and keeps the last raw token of each known field.
struct ObjectVisitor;

impl<'de> Visitor<'de> for ObjectVisitor {
    type Value = Record<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut rec = Record {
            raw: [None; FIELDS],
        };
        while let Some(key) = map.next_key::<Key>()? {
            match key.0 {
                Some(f) => rec.raw[f as usize] = Some(map.next_value::<&'de RawValue>()?.get()),
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(rec)
    }
}

/// An object key: the known field it names, if any.
struct Key(Option<F>);

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Key, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E>(self, key: &str) -> Result<Key, E> {
                Ok(Key(F::from_key(key)))
            }
        }
        de.deserialize_str(KeyVisitor)
    }
}

impl<'a> Record<'a> {
    /// A required field: absent or null is `missing`.
    fn req<T>(
        &self,
        f: F,
        parse: impl FnOnce(&'a str) -> Result<T, RejectCode>,
    ) -> Result<T, Reject> {
        match self.raw[f as usize] {
            None | Some("null") => Err(Reject::with_field(RejectCode::Missing, f.name())),
            Some(raw) => parse(raw).map_err(|code| Reject::with_field(code, f.name())),
        }
    }

    /// An optional field: absent is `None`; null fails the parser (`invalid`).
    fn opt<T>(
        &self,
        f: F,
        parse: impl FnOnce(&'a str) -> Result<T, RejectCode>,
    ) -> Result<Option<T>, Reject> {
        match self.raw[f as usize] {
            None => Ok(None),
            Some(raw) => parse(raw)
                .map(Some)
                .map_err(|code| Reject::with_field(code, f.name())),
        }
    }

    /// Hash of an optional free-form string field, 0 when absent.
    fn opt_hash(&self, f: F) -> Result<u64, Reject> {
        Ok(self.opt(f, parse_str)?.map_or(0, |s| id_hash(&s)))
    }

    fn transaction(&self, seq: u64) -> Result<Event, Reject> {
        let event_id = self.req(F::EventId, parse_id)?;
        let customer_id = self.req(F::CustomerId, parse_id)?;
        let ts = self.req(F::Ts, parse_ts)?;
        let kind = self.req(F::Type, |raw| parse_enum(raw, TxnKind::from_name))?;
        let amount = self.req(F::Amount, parse_u64)?;
        self.opt(F::AccountId, parse_id)?;
        let loan_id = self.opt(F::LoanId, parse_id)?;
        self.opt(F::Currency, parse_currency)?;
        let approved = self
            .opt(F::Status, |raw| {
                parse_enum(raw, |s| match s {
                    "approved" => Some(true),
                    "declined" => Some(false),
                    _ => None,
                })
            })?
            .unwrap_or(true);
        let merchant = self.opt_hash(F::MerchantId)?;
        self.opt(F::Mcc, parse_mcc)?;
        self.opt(F::Channel, |raw| {
            parse_enum(raw, |s| {
                matches!(s, "app" | "pos" | "online" | "atm" | "branch").then_some(())
            })
        })?;
        let device = self.opt_hash(F::DeviceId)?;
        let ip = self.opt_hash(F::Ip)?;
        let body = Body::Transaction(Transaction {
            kind,
            approved,
            amount,
            loan_id: loan_id.map(CompactString::from),
            merchant,
            device,
            ip,
        });
        Ok(event(ts, seq, customer_id, id_hash(&event_id), body))
    }

    fn behavior(&self, seq: u64) -> Result<Event, Reject> {
        let event_id = self.req(F::EventId, parse_id)?;
        let customer_id = self.req(F::CustomerId, parse_id)?;
        let ts = self.req(F::Ts, parse_ts)?;
        let kind = self.req(F::Type, |raw| parse_enum(raw, BehaviorKind::from_name))?;
        let device = self.opt_hash(F::DeviceId)?;
        let ip = self.opt_hash(F::Ip)?;
        let phone = self.opt_hash(F::PhoneHash)?;
        let lender = self.opt_hash(F::LenderId)?;
        self.opt(F::Attrs, parse_attrs)?;
        let body = Body::Behavior(Behavior {
            kind,
            device,
            ip,
            phone,
            lender,
        });
        Ok(event(ts, seq, customer_id, id_hash(&event_id), body))
    }

    fn loan(&self, seq: u64) -> Result<Event, Reject> {
        let event_id = self.req(F::EventId, parse_id)?;
        let customer_id = self.req(F::CustomerId, parse_id)?;
        let loan_id = self.req(F::LoanId, parse_id)?;
        let ts = self.req(F::Ts, parse_ts)?;
        let kind = self.req(F::Type, |raw| {
            parse_enum(raw, |s| match s {
                "installment_due" => Some(LoanKind::InstallmentDue),
                "settled" => Some(LoanKind::Settled),
                "written_off" => Some(LoanKind::WrittenOff),
                _ => None,
            })
        })?;
        let (due_ts, installment_no, amount) = if kind == LoanKind::InstallmentDue {
            let due_ts = self.req(F::DueTs, parse_ts)?;
            let amount = self.req(F::Amount, parse_u64)?;
            (
                due_ts,
                self.opt(F::InstallmentNo, parse_installment_no)?,
                amount,
            )
        } else {
            let due_ts = self.opt(F::DueTs, parse_ts)?.unwrap_or(0);
            let installment_no = self.opt(F::InstallmentNo, parse_installment_no)?;
            (
                due_ts,
                installment_no,
                self.opt(F::Amount, parse_u64)?.unwrap_or(0),
            )
        };
        let body = Body::Loan(LoanEvent {
            kind,
            loan_id: CompactString::from(loan_id),
            installment_no: installment_no.unwrap_or(0),
            due_ts,
            amount,
        });
        Ok(event(ts, seq, customer_id, id_hash(&event_id), body))
    }

    fn customer(&self, seq: u64) -> Result<Event, Reject> {
        let customer_id = self.req(F::CustomerId, parse_id)?;
        let ts = self.req(F::Ts, parse_ts)?;
        let credit_limit = self.req(F::CreditLimit, parse_u64)?;
        let apr_bps = self.req(F::AprBps, |raw| match parse_u64(raw)? {
            v if v > MAX_BPS => Err(RejectCode::Range),
            v => Ok(v as u32),
        })?;
        self.opt(F::Product, |raw| {
            parse_enum(raw, |s| {
                matches!(s, "revolving" | "installment").then_some(())
            })
        })?;
        self.opt(F::Segment, parse_str)?;
        let status = self
            .opt(F::Status, |raw| {
                parse_enum(raw, |s| match s {
                    "active" => Some(CustomerStatus::Active),
                    "frozen" => Some(CustomerStatus::Frozen),
                    "closed" => Some(CustomerStatus::Closed),
                    _ => None,
                })
            })?
            .unwrap_or_default();
        self.opt(F::OpenedAt, parse_ts)?;
        let phone = self.opt_hash(F::PhoneHash)?;
        let balance = self.opt(F::Balance, parse_u64)?;
        let body = Body::Customer(CustomerRecord {
            credit_limit,
            apr_bps,
            status,
            balance,
            phone,
        });
        Ok(event(ts, seq, customer_id, 0, body))
    }
}

fn event(ts: u64, seq: u64, customer_id: Cow<'_, str>, event_id: u64, body: Body) -> Event {
    Event {
        ts,
        seq,
        key: id_hash(&customer_id),
        customer_id: CompactString::from(customer_id),
        event_id,
        body,
    }
}

/// A JSON string token, unescaped; borrowed unless it has escapes.
fn parse_str(raw: &str) -> Result<Cow<'_, str>, RejectCode> {
    let inner = raw
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .ok_or(RejectCode::Invalid)?;
    if !inner.contains('\\') {
        // serde_json has already checked the token: no raw control characters, no quotes.
        return Ok(Cow::Borrowed(inner));
    }
    // Fails only on an unpaired surrogate escape, which no Rust string can hold.
    serde_json::from_str::<String>(raw)
        .map(Cow::Owned)
        .map_err(|_| RejectCode::Invalid)
}

/// `common.schema.json#/$defs/id`: a string of 1 to 128 characters (code points), none of
/// them whitespace as ECMA-262 `\s` defines it.
fn parse_id(raw: &str) -> Result<Cow<'_, str>, RejectCode> {
    let s = parse_str(raw)?;
    let ok = if s.is_ascii() {
        (1..=128).contains(&s.len()) && !s.bytes().any(|b| matches!(b, b'\t'..=b'\r' | b' '))
    } else {
        (1..=128).contains(&s.chars().count()) && !s.chars().any(is_ecma_space)
    };
    if ok {
        Ok(s)
    } else {
        Err(RejectCode::Invalid)
    }
}

/// ECMA-262 `\s`: WhiteSpace (TAB, VT, FF, SP, NBSP, ZWNBSP, category Zs) and
/// LineTerminator (LF, CR, LS, PS).
fn is_ecma_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{0B}' | '\u{0C}' | '\r' | ' ' | '\u{A0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200A}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202F}'
                | '\u{205F}'
                | '\u{3000}'
                | '\u{FEFF}'
    )
}

/// A string that must be one of an enum's names.
fn parse_enum<T>(raw: &str, lookup: impl FnOnce(&str) -> Option<T>) -> Result<T, RejectCode> {
    lookup(&parse_str(raw)?).ok_or(RejectCode::Invalid)
}

/// `common.schema.json#/$defs/currency`: `^[A-Z]{3}$`.
fn parse_currency(raw: &str) -> Result<(), RejectCode> {
    let s = parse_str(raw)?;
    (s.len() == 3 && s.bytes().all(|b| b.is_ascii_uppercase()))
        .then_some(())
        .ok_or(RejectCode::Invalid)
}

/// `mcc`: `^[0-9]{4}$`.
fn parse_mcc(raw: &str) -> Result<(), RejectCode> {
    let s = parse_str(raw)?;
    (s.len() == 4 && s.bytes().all(|b| b.is_ascii_digit()))
        .then_some(())
        .ok_or(RejectCode::Invalid)
}

/// A non-negative JSON integer written without fraction or exponent (`minor`).
///
/// Not a number, or a number with `.`/`e`/`E`: `invalid`. Negative (other than `-0`) or
/// beyond `u64`: `range`.
fn parse_u64(raw: &str) -> Result<u64, RejectCode> {
    let bytes = raw.as_bytes();
    let (negative, digits) = match bytes.first() {
        Some(b'-') => (true, &bytes[1..]),
        Some(b'0'..=b'9') => (false, bytes),
        _ => return Err(RejectCode::Invalid),
    };
    if !digits.iter().all(u8::is_ascii_digit) {
        return Err(RejectCode::Invalid);
    }
    let mut value: u64 = 0;
    for &d in digits {
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(d - b'0')))
            .ok_or(RejectCode::Range)?;
    }
    if negative && value != 0 {
        return Err(RejectCode::Range);
    }
    Ok(value)
}

/// `common.schema.json#/$defs/ts`: an integer in `0..=32503680000000`.
fn parse_ts(raw: &str) -> Result<u64, RejectCode> {
    match parse_u64(raw)? {
        v if v > MAX_TS => Err(RejectCode::Range),
        v => Ok(v),
    }
}

/// `installment_no`: an integer `>= 1`; above `u32::MAX` it is `range` too.
fn parse_installment_no(raw: &str) -> Result<u32, RejectCode> {
    match parse_u64(raw)? {
        0 => Err(RejectCode::Range),
        v => u32::try_from(v).map_err(|_| RejectCode::Range),
    }
}

/// `attrs`: an object whose values are strings, numbers or booleans.
fn parse_attrs(raw: &str) -> Result<(), RejectCode> {
    struct AttrsVisitor;
    impl<'de> Visitor<'de> for AttrsVisitor {
        type Value = bool;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
            let mut scalars = true;
            while map.next_key::<IgnoredAny>()?.is_some() {
                // The raw token's first byte tells its JSON type; numbers such as `1e400`
                // that overflow f64 are still numbers.
                let value = map.next_value::<&'de RawValue>()?.get();
                scalars &= matches!(value.as_bytes()[0], b'"' | b't' | b'f' | b'-' | b'0'..=b'9');
            }
            Ok(scalars)
        }
    }

    if !raw.starts_with('{') {
        return Err(RejectCode::Invalid);
    }
    let mut de = serde_json::Deserializer::from_str(raw);
    match (&mut de).deserialize_map(AttrsVisitor) {
        Ok(true) => Ok(()),
        _ => Err(RejectCode::Invalid),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TXN_MIN: &str = r#"{"event_id":"E1","customer_id":"C1","ts":1700000000000,"type":"purchase","amount":12345}"#;
    const TXN_FULL: &str = r#"{"event_id":"E2","customer_id":"C1","account_id":"A1","loan_id":"L1","ts":1700000000001,"type":"repayment","amount":500,"currency":"CNY","status":"declined","merchant_id":"M1","mcc":"5411","channel":"app","device_id":"D1","ip":"10.0.0.1"}"#;
    const BEH_MIN: &str =
        r#"{"event_id":"B1","customer_id":"C2","ts":1700000000002,"type":"login"}"#;
    const BEH_FULL: &str = r#"{"event_id":"B2","customer_id":"C2","ts":1700000000003,"type":"credit_inquiry","device_id":"D2","ip":"::1","phone_hash":"P2","lender_id":"LEN2","attrs":{"a":"x","b":1.5,"c":true,"d":-3}}"#;
    const LOAN_MIN: &str = r#"{"event_id":"LE1","customer_id":"C3","loan_id":"L3","ts":1700000000004,"type":"settled"}"#;
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

    #[test]
    fn transaction_minimal_and_full() {
        assert_eq!(
            ok(Stream::Transactions, TXN_MIN),
            ev(
                1700000000000,
                "C1",
                id_hash("E1"),
                Body::Transaction(Transaction {
                    kind: TxnKind::Purchase,
                    approved: true,
                    amount: 12345,
                    loan_id: None,
                    merchant: 0,
                    device: 0,
                    ip: 0,
                })
            )
        );
        assert_eq!(
            ok(Stream::Transactions, TXN_FULL),
            ev(
                1700000000001,
                "C1",
                id_hash("E2"),
                Body::Transaction(Transaction {
                    kind: TxnKind::Repayment,
                    approved: false,
                    amount: 500,
                    loan_id: Some(CompactString::from("L1")),
                    merchant: id_hash("M1"),
                    device: id_hash("D1"),
                    ip: id_hash("10.0.0.1"),
                })
            )
        );
        let approved = with(TXN_MIN, "status", r#""approved""#);
        let Body::Transaction(t) = ok(Stream::Transactions, &approved).body else {
            panic!()
        };
        assert!(t.approved);
    }

    #[test]
    fn behavior_minimal_and_full() {
        assert_eq!(
            ok(Stream::Behaviors, BEH_MIN),
            ev(
                1700000000002,
                "C2",
                id_hash("B1"),
                Body::Behavior(Behavior {
                    kind: BehaviorKind::Login,
                    device: 0,
                    ip: 0,
                    phone: 0,
                    lender: 0,
                })
            )
        );
        assert_eq!(
            ok(Stream::Behaviors, BEH_FULL),
            ev(
                1700000000003,
                "C2",
                id_hash("B2"),
                Body::Behavior(Behavior {
                    kind: BehaviorKind::CreditInquiry,
                    device: id_hash("D2"),
                    ip: id_hash("::1"),
                    phone: id_hash("P2"),
                    lender: id_hash("LEN2"),
                })
            )
        );
    }

    #[test]
    fn loan_minimal_and_full() {
        assert_eq!(
            ok(Stream::Loans, LOAN_MIN),
            ev(
                1700000000004,
                "C3",
                id_hash("LE1"),
                Body::Loan(LoanEvent {
                    kind: LoanKind::Settled,
                    loan_id: CompactString::from("L3"),
                    installment_no: 0,
                    due_ts: 0,
                    amount: 0,
                })
            )
        );
        assert_eq!(
            ok(Stream::Loans, LOAN_FULL),
            ev(
                1700000000005,
                "C3",
                id_hash("LE2"),
                Body::Loan(LoanEvent {
                    kind: LoanKind::InstallmentDue,
                    loan_id: CompactString::from("L3"),
                    installment_no: 2,
                    due_ts: 1702591999999,
                    amount: 100000,
                })
            )
        );
        let off = with(LOAN_MIN, "type", r#""written_off""#);
        let Body::Loan(l) = ok(Stream::Loans, &off).body else {
            panic!()
        };
        assert_eq!(l.kind, LoanKind::WrittenOff);
        // installment_no is optional even for installment_due.
        let due = without(LOAN_FULL, "installment_no");
        let Body::Loan(l) = ok(Stream::Loans, &due).body else {
            panic!()
        };
        assert_eq!((l.installment_no, l.amount), (0, 100000));
    }

    #[test]
    fn customer_minimal_and_full() {
        assert_eq!(
            ok(Stream::Customers, CUST_MIN),
            ev(
                1700000000006,
                "C4",
                0,
                Body::Customer(CustomerRecord {
                    credit_limit: 5000000,
                    apr_bps: 1800,
                    status: CustomerStatus::Active,
                    balance: None,
                    phone: 0,
                })
            )
        );
        assert_eq!(
            ok(Stream::Customers, CUST_FULL),
            ev(
                1700000000007,
                "C4",
                0,
                Body::Customer(CustomerRecord {
                    credit_limit: 0,
                    apr_bps: 100000,
                    status: CustomerStatus::Frozen,
                    balance: Some(250000),
                    phone: id_hash("P4"),
                })
            )
        );
        let closed = with(CUST_MIN, "status", r#""closed""#);
        let Body::Customer(c) = ok(Stream::Customers, &closed).body else {
            panic!()
        };
        assert_eq!(c.status, CustomerStatus::Closed);
    }

    #[test]
    fn every_kind_name_decodes() {
        for k in TxnKind::ALL {
            let line = with(TXN_MIN, "type", &format!("\"{}\"", k.name()));
            let Body::Transaction(t) = ok(Stream::Transactions, &line).body else {
                panic!()
            };
            assert_eq!(t.kind, k);
        }
        for k in BehaviorKind::ALL {
            let line = with(BEH_MIN, "type", &format!("\"{}\"", k.name()));
            let Body::Behavior(b) = ok(Stream::Behaviors, &line).body else {
                panic!()
            };
            assert_eq!(b.kind, k);
        }
    }

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
            "\u{feff}{}",
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
        let Body::Transaction(x) = ok(t, &with(TXN_MIN, "amount", "18446744073709551615")).body
        else {
            panic!()
        };
        assert_eq!(x.amount, u64::MAX);
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
        let line =
            r#"{"ip":1,"amount":"x","type":"nope","ts":-1,"customer_id":"C","event_id":"E"}"#;
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
            let map: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(base).unwrap();
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
}
