//! NDJSON/JSON record → [`Event`], with contract validation against the input schemas in
//! `contracts/*.schema.json` and a fixed reject reason for every failure.
//!
//! # Acceptance rules
//! - A record that starts with a UTF-8 byte order mark (`EF BB BF`, U+FEFF) is decoded as
//!   if the mark were absent (one mark; a second one is not JSON whitespace: `json`). The
//!   file source strips a mark at the start of a file; this covers Kafka messages and lines
//!   of concatenated files.
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
//! - A money field (`amount` of transactions and loans, `credit_limit`, `balance`) above
//!   [`MAX_MINOR`]: `range:<field>`. The contract sets no maximum; this one keeps every sum
//!   riskwatch forms exact (see [`MAX_MINOR`]).
//! - An `installment_due` whose `due_ts` lies more than [`MAX_DUE_TS_AGE`] before the
//!   record's own `ts`: `range:due_ts` (so `due_ts: 0` in a record of this century is
//!   rejected). On `settled` and `written_off`, where it means nothing, `due_ts` is only
//!   checked against the schema.
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
//!
//! # Layout
//! - `scanner`: the one `serde_json` pass that keeps each known field's raw token;
//! - one file per stream (`transaction`, `behavior`, `loan`, `customer`) checking its
//!   schema's fields in the reason order;
//! - `values`: the parsers of one raw token per field type (ids, enums, integers, …).

mod behavior;
mod customer;
mod loan;
mod scanner;
mod transaction;
mod values;

use std::borrow::Cow;
use std::fmt;

use compact_str::CompactString;
use serde::Serialize;

use crate::event::{id_hash, Body, Event, Stream};
use crate::time::MS_PER_DAY;
use scanner::parse_object;

/// Records longer than this many bytes are rejected as `too_large` without being parsed.
pub const MAX_RECORD_BYTES: usize = 65536;

/// The `line` of a rejected record is cut to at most this many bytes.
pub const REJECTED_LINE_BYTES: usize = 4096;

/// Largest `ts` the contract allows (year 3000), epoch ms.
const MAX_TS: u64 = 32_503_680_000_000;

/// Largest basis-point value the contract allows.
const MAX_BPS: u64 = 100_000;

/// Largest value of a money field (`amount`, `credit_limit`, `balance`), in minor units:
/// 10^15, ten trillion in major units (CNY, USD), beyond any real transaction, limit or
/// balance. A larger value is `range:<field>`.
///
/// The headroom is the point: `i64::MAX` holds 9,223 such amounts and `u64::MAX` 18,446,
/// so a window sum of one customer's amounts is exact up to 9,223 maximal amounts within
/// one window (92 quadrillion in major units), and the ledger's balances and unpaid sums
/// (which saturate besides) cannot come near their limit. An amount near `i64::MAX` used to
/// wrap a window sum negative, so that a rule fired, cleared and fired again.
pub const MAX_MINOR: u64 = 1_000_000_000_000_000;

/// How long before its record's `ts` an installment may have fallen due: 3,650 days (ten
/// years, the longest DPD a wake-up can be configured for). An older `due_ts` is
/// `range:due_ts`: a default or sentinel value (`0`) rather than a due date, which would
/// otherwise open a collection case at M3+ with tens of thousands of days past due.
pub const MAX_DUE_TS_AGE: u64 = 3_650 * MS_PER_DAY;

/// The UTF-8 encoding of U+FEFF, the byte order mark.
const BOM: &[u8] = b"\xEF\xBB\xBF";

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
/// checked. A leading byte order mark is skipped before anything else, the size limit
/// included. Never panics, whatever `line` holds.
pub fn decode(stream: Stream, line: &[u8], seq: u64) -> Result<Event, Reject> {
    let line = line.strip_prefix(BOM).unwrap_or(line);
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

/// The event of a validated record: the key is the hash of `customer_id`.
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

#[cfg(test)]
mod tests;
