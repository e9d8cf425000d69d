//! The behaviors stream: `behavior.schema.json` → [`Body::Behavior`].

use super::scanner::{Record, F};
use super::values::{parse_attrs, parse_enum, parse_id, parse_ts};
use super::{event, Reject};
use crate::event::{id_hash, Behavior, BehaviorKind, Body, Event};

impl Record<'_> {
    /// Validates a behaviors record, fields in reason order, and builds its event.
    pub(super) fn behavior(&self, seq: u64) -> Result<Event, Reject> {
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
}
