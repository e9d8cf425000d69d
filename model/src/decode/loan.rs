//! The loans stream: `loan.schema.json` → [`Body::Loan`]; `due_ts` and `amount` are
//! required for `installment_due` only.

use compact_str::CompactString;

use super::scanner::{Record, F};
use super::values::{
    parse_due_ts, parse_enum, parse_id, parse_installment_no, parse_money, parse_ts,
};
use super::{event, Reject};
use crate::event::{id_hash, Body, Event, LoanEvent, LoanKind};

impl Record<'_> {
    /// Validates a loans record, fields in reason order, and builds its event.
    pub(super) fn loan(&self, seq: u64) -> Result<Event, Reject> {
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
            let due_ts = self.req(F::DueTs, |raw| parse_due_ts(raw, ts))?;
            let amount = self.req(F::Amount, parse_money)?;
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
                self.opt(F::Amount, parse_money)?.unwrap_or(0),
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
}
