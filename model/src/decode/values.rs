//! Parsers of one raw JSON token per field type of the input schemas: strings, ids, enums,
//! patterns, non-negative integers with their bounds, and `attrs`. Each returns the fixed
//! code (`invalid` or `range`); the caller adds the field name.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::{RejectCode, MAX_DUE_TS_AGE, MAX_MINOR, MAX_TS};

/// A JSON string token, unescaped; borrowed unless it has escapes.
pub(super) fn parse_str(raw: &str) -> Result<Cow<'_, str>, RejectCode> {
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
pub(super) fn parse_id(raw: &str) -> Result<Cow<'_, str>, RejectCode> {
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
pub(super) fn parse_enum<T>(
    raw: &str,
    lookup: impl FnOnce(&str) -> Option<T>,
) -> Result<T, RejectCode> {
    lookup(&parse_str(raw)?).ok_or(RejectCode::Invalid)
}

/// `common.schema.json#/$defs/currency`: `^[A-Z]{3}$`.
pub(super) fn parse_currency(raw: &str) -> Result<(), RejectCode> {
    let s = parse_str(raw)?;
    (s.len() == 3 && s.bytes().all(|b| b.is_ascii_uppercase()))
        .then_some(())
        .ok_or(RejectCode::Invalid)
}

/// `mcc`: `^[0-9]{4}$`.
pub(super) fn parse_mcc(raw: &str) -> Result<(), RejectCode> {
    let s = parse_str(raw)?;
    (s.len() == 4 && s.bytes().all(|b| b.is_ascii_digit()))
        .then_some(())
        .ok_or(RejectCode::Invalid)
}

/// A non-negative JSON integer written without fraction or exponent (`minor`).
///
/// Not a number, or a number with `.`/`e`/`E`: `invalid`. Negative (other than `-0`) or
/// beyond `u64`: `range`.
pub(super) fn parse_u64(raw: &str) -> Result<u64, RejectCode> {
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
pub(super) fn parse_ts(raw: &str) -> Result<u64, RejectCode> {
    match parse_u64(raw)? {
        v if v > MAX_TS => Err(RejectCode::Range),
        v => Ok(v),
    }
}

/// A money field (`common.schema.json#/$defs/minor`): a non-negative integer of at most
/// [`MAX_MINOR`] minor units; larger is `range`.
pub(super) fn parse_money(raw: &str) -> Result<u64, RejectCode> {
    match parse_u64(raw)? {
        v if v > MAX_MINOR => Err(RejectCode::Range),
        v => Ok(v),
    }
}

/// The `due_ts` of an `installment_due` published at `ts`: a `ts` that is not more than
/// [`MAX_DUE_TS_AGE`] before `ts`; older is `range`.
pub(super) fn parse_due_ts(raw: &str, ts: u64) -> Result<u64, RejectCode> {
    match parse_ts(raw)? {
        v if v < ts.saturating_sub(MAX_DUE_TS_AGE) => Err(RejectCode::Range),
        v => Ok(v),
    }
}

/// `installment_no`: an integer `>= 1`; above `u32::MAX` it is `range` too.
pub(super) fn parse_installment_no(raw: &str) -> Result<u32, RejectCode> {
    match parse_u64(raw)? {
        0 => Err(RejectCode::Range),
        v => u32::try_from(v).map_err(|_| RejectCode::Range),
    }
}

/// `attrs`: an object whose values are strings, numbers or booleans.
pub(super) fn parse_attrs(raw: &str) -> Result<(), RejectCode> {
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
