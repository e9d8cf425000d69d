//! The scanner: one `serde_json` pass over a record that keeps the raw token of every
//! field the input schemas define (last occurrence wins), borrowed from the line, and the
//! `missing`/`invalid` rules shared by all streams for required and optional fields.

use std::fmt;

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::values::parse_str;
use super::{Reject, RejectCode};
use crate::event::id_hash;

/// Every property of the four input schemas; a record keeps the raw token of each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum F {
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
    /// The contract name of the field.
    pub(super) fn name(self) -> &'static str {
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

    /// The field a key names, if it is one of the schemas' properties.
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
pub(super) struct Record<'a> {
    raw: [Option<&'a str>; FIELDS],
}

/// Parses `text` as one JSON object and keeps the raw tokens of the known fields.
///
/// Anything but an object is only checked for syntax (numbers that overflow f64 included),
/// so that valid JSON is `not_object` and the rest `json`.
pub(super) fn parse_object(text: &str) -> Result<Record<'_>, Reject> {
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
    pub(super) fn req<T>(
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
    pub(super) fn opt<T>(
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
    pub(super) fn opt_hash(&self, f: F) -> Result<u64, Reject> {
        Ok(self.opt(f, parse_str)?.map_or(0, |s| id_hash(&s)))
    }
}
