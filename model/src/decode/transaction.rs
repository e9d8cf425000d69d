//! The transactions stream: `transaction.schema.json` → [`Body::Transaction`].

use compact_str::CompactString;

use super::scanner::{Record, F};
use super::values::{parse_currency, parse_enum, parse_id, parse_mcc, parse_money, parse_ts};
use super::{event, Reject};
use crate::event::{id_hash, Body, Event, Transaction, TxnKind};

impl Record<'_> {
    /// Validates a transactions record, fields in reason order, and builds its event.
    pub(super) fn transaction(&self, seq: u64) -> Result<Event, Reject> {
        let event_id = self.req(F::EventId, parse_id)?;
        let customer_id = self.req(F::CustomerId, parse_id)?;
        let ts = self.req(F::Ts, parse_ts)?;
        let kind = self.req(F::Type, |raw| parse_enum(raw, TxnKind::from_name))?;
        let amount = self.req(F::Amount, parse_money)?;
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
}
