//! The customers stream: `customer.schema.json` → [`Body::Customer`]. Customers records
//! have no `event_id`; their event id is 0.

use super::scanner::{Record, F};
use super::values::{parse_enum, parse_id, parse_money, parse_str, parse_ts, parse_u64};
use super::{event, Reject, RejectCode, MAX_BPS};
use crate::event::{Body, CustomerRecord, CustomerStatus, Event};

impl Record<'_> {
    /// Validates a customers record, fields in reason order, and builds its event.
    pub(super) fn customer(&self, seq: u64) -> Result<Event, Reject> {
        let customer_id = self.req(F::CustomerId, parse_id)?;
        let ts = self.req(F::Ts, parse_ts)?;
        let credit_limit = self.req(F::CreditLimit, parse_money)?;
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
        let balance = self.opt(F::Balance, parse_money)?;
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
