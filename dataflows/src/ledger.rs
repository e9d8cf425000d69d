//! Per-customer ledger: the state windows cannot rebuild — drawn balance, current limit and
//! APR, the installment schedule with repayment allocation, the oldest unpaid installment —
//! and the translation of each event into window contributions.
//!
//! Pure logic, no dataflow: [`Ledger::apply`] takes one customer's events in order and
//! reports what changed through a [`LedgerSink`]. The dataflow operator
//! ([`crate::operators::ledger`]) feeds it events in `(time, ts, seq)` order, which makes the
//! result independent of how events were spread over workers.
//!
//! Allocation (loan.schema.json, transaction.schema.json, DESIGN.md): a repayment with
//! `loan_id` pays that loan's oldest unpaid installments first; without it, the customer's
//! oldest across loans by `(due_ts, loan_id)`. What is left is credit against installments
//! published later (per loan when the loan was named, per customer otherwise). `settled`
//! clears a loan's remaining installments (later installments of a settled loan are
//! ignored); `written_off` marks the loan and keeps its debt ageing. A re-published
//! installment (same loan and number, new event) replaces amount and due date; what was
//! paid stays paid, and any excess becomes the loan's credit.
//!
//! # Days past due
//! One computation, [`dpd`], gives the days past due of the oldest unpaid installment;
//! everything else derives from it: the `dpd`, `bucket` and `dpd_90_plus` features
//! ([`Account::dpd_at`], [`Account::bucket_at`], [`Account::dpd_90_plus_at`]), the
//! wake-ups at DPD 1, 31, 61 and 91 ([`dpd_reached_at`]), the collection cases
//! ([`Schedule::dpd_at`]) and the ring members' delinquent flag. The account and the
//! schedule hold the same installments, so the features and the cases cannot disagree.
//! `oldest_due` 0 means "nothing unpaid"; an installment due at 0 (which decode rejects as
//! `range:due_ts`) is held as due at 1 ms, so the two meanings never meet.
//!
//! # Arithmetic
//! Decode bounds every money field by
//! [`MAX_MINOR`](riskwatch_model::decode::MAX_MINOR) (10^15 minor units). Amounts that add
//! up state — the balance, credit from overpayments, unpaid and overdue sums — use
//! saturating arithmetic on top, so no input can wrap them: at worst a sum of more than
//! 18,000 maximal amounts stays at `u64::MAX`. Window contributions are `i64` slots whose
//! group operations wrap by design (see [`crate::slots`], Overflow).

use crate::layout::Layout;
use crate::slots::Slots;
use compact_str::CompactString;
use riskwatch_model::config::Measure;
use riskwatch_model::event::{
    BehaviorKind, Body, CustomerStatus, Event, LoanKind, Transaction, TxnKind,
};
use riskwatch_model::time::{ceil_to, days_past_due, MS_PER_DAY};
use serde::{Deserialize, Serialize};

/// What the evaluator needs of a customer's account, as of a time.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Account {
    /// The customer id, carried for outputs.
    pub customer_id: CompactString,
    /// Drawn balance in minor units.
    pub balance: u64,
    /// Current credit limit.
    pub limit: u64,
    /// Current APR in bps.
    pub apr_bps: u32,
    /// Status from the customers stream.
    pub status: CustomerStatus,
    /// `due_ts` of the oldest unpaid installment; 0 when none (an installment is never due
    /// at 0, see the module documentation). Read it through [`Account::dpd_at`] and its
    /// siblings, which apply the one DPD computation.
    pub oldest_due: u64,
    /// Sum of unpaid installment amounts (due or not), saturating at `u64::MAX`.
    pub unpaid: u64,
    /// `ts` of the latest customers record (0 before the first).
    pub record_ts: u64,
}

impl Account {
    /// The oldest unpaid installment's `due_ts`, `None` when nothing is unpaid.
    pub fn oldest_unpaid_due(&self) -> Option<u64> {
        (self.oldest_due != 0).then_some(self.oldest_due)
    }

    /// The `dpd` feature at `t`: [`dpd`] of the oldest unpaid installment.
    pub fn dpd_at(&self, t: u64) -> u64 {
        dpd(self.oldest_unpaid_due(), t)
    }

    /// The `bucket` feature at `t`: [`bucket_of`] the DPD.
    pub fn bucket_at(&self, t: u64) -> u8 {
        bucket_of(self.dpd_at(t))
    }

    /// The `dpd_90_plus` feature at `t`: DPD of at least [`DPD_90_PLUS`].
    pub fn dpd_90_plus_at(&self, t: u64) -> bool {
        self.dpd_at(t) >= DPD_90_PLUS
    }
}

/// A customer's unpaid installments, per loan: what collection cases are built from.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Schedule {
    /// Loans with unpaid installments or written off, in loan id order.
    pub loans: Vec<LoanSchedule>,
}

/// One loan's unpaid installments.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LoanSchedule {
    /// The loan.
    pub loan_id: CompactString,
    /// Written off (its debt keeps ageing).
    pub written_off: bool,
    /// Unpaid installments as `(due_ts, unpaid amount)`, oldest first.
    pub unpaid: Vec<(u64, u64)>,
}

impl Schedule {
    /// Sum of unpaid amounts past due at `t` (`due_ts < t`), saturating at `u64::MAX`.
    pub fn overdue_at(&self, t: u64) -> u64 {
        self.loans
            .iter()
            .fold(0, |sum, l| sum.saturating_add(l.overdue_at(t)))
    }

    /// The oldest unpaid `due_ts` over all loans, `None` when nothing is unpaid: the date
    /// that [`Account::oldest_due`] holds for the same ledger state.
    pub fn oldest_due(&self) -> Option<u64> {
        self.loans
            .iter()
            .filter_map(|l| l.unpaid.first().map(|(d, _)| *d))
            .min()
    }

    /// Days past due at `t` of the oldest unpaid installment: [`dpd`], as for the features.
    pub fn dpd_at(&self, t: u64) -> u64 {
        dpd(self.oldest_due(), t)
    }

    /// The earliest unpaid `due_ts` at or after `t`.
    pub fn next_due_from(&self, t: u64) -> Option<u64> {
        self.loans
            .iter()
            .flat_map(|l| l.unpaid.iter().map(|(d, _)| *d))
            .filter(|d| *d >= t)
            .min()
    }

    /// True if any loan is written off.
    pub fn written_off(&self) -> bool {
        self.loans.iter().any(|l| l.written_off)
    }
}

impl LoanSchedule {
    /// Unpaid amount past due at `t`, saturating at `u64::MAX`.
    pub fn overdue_at(&self, t: u64) -> u64 {
        self.unpaid
            .iter()
            .filter(|(d, _)| *d < t)
            .fold(0, |sum, (_, a)| sum.saturating_add(*a))
    }

    /// Days past due at `t` of this loan's oldest unpaid installment ([`dpd`]).
    pub fn dpd_at(&self, t: u64) -> u64 {
        dpd(self.unpaid.first().map(|(d, _)| *d), t)
    }
}

/// Receives what applying events changes. Times are timely times (ms, tick-aligned).
pub trait LedgerSink {
    /// Add summed window contributions (of all windows) at `time`.
    fn sum(&mut self, time: u64, slots: Slots);
    /// Retract window `window`'s share of an event's contributions at `time` (its expiry);
    /// `slots` is already negated.
    fn retract_sum(&mut self, window: u8, time: u64, slots: Slots);
    /// Add one occurrence of `value` to distinct-count `slot` at `time`.
    fn distinct(&mut self, time: u64, slot: u8, value: u64);
    /// Retract one occurrence of `value` from distinct-count `slot` at `time` (its expiry).
    fn retract_distinct(&mut self, time: u64, slot: u8, value: u64);
    /// Add or retract a wake-up at `time` (a DPD boundary of the oldest unpaid installment).
    fn wake(&mut self, time: u64, diff: isize);
    /// Counts a window contribution that had expired on arrival.
    fn expired_on_arrival(&mut self);
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Installment {
    no: u32,
    due_ts: u64,
    amount: u64,
    paid: u64,
}

impl Installment {
    fn unpaid(&self) -> u64 {
        self.amount.saturating_sub(self.paid)
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Loan {
    loan_id: CompactString,
    installments: Vec<Installment>,
    settled: bool,
    written_off: bool,
    credit: u64,
}

impl Loan {
    /// Pays this loan's unpaid installments oldest first; returns what is left.
    fn pay(&mut self, mut amount: u64) -> u64 {
        self.installments.sort_by_key(|i| (i.due_ts, i.no));
        for inst in self.installments.iter_mut() {
            if amount == 0 {
                break;
            }
            let pay = inst.unpaid().min(amount);
            inst.paid += pay;
            amount -= pay;
        }
        amount
    }
}

/// One customer's ledger.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Ledger {
    account: Account,
    loans: Vec<Loan>,
    /// Overpayment of repayments without `loan_id`.
    credit: u64,
    /// Wake-up times emitted for the current `oldest_due`.
    wakes: Vec<u64>,
    /// The schedule may have changed since it was last built.
    schedule_dirty: bool,
}

/// The DPD from which the `dpd_90_plus` flag is set.
pub const DPD_90_PLUS: u64 = 91;

/// The days past due at which the bucket changes (M1, M2, M3+) and the 90+ flag is set:
/// the wake-ups every delinquent customer gets.
pub const DPD_BOUNDARIES: [u64; 4] = [1, 31, 61, DPD_90_PLUS];

/// Days past due at `t` of the oldest unpaid installment, due at `oldest_due` (`None` when
/// nothing is unpaid): 0 while `t <= due_ts`, else `ceil((t - due_ts) / 1 day)`
/// (loan.schema.json). The one DPD computation of riskwatch: features, wake-ups and cases
/// all derive from it. O(1).
pub fn dpd(oldest_due: Option<u64>, t: u64) -> u64 {
    oldest_due.map_or(0, |due| days_past_due(due, t))
}

/// The bucket of a DPD: 0 = M0 (0), 1 = M1 (1–30), 2 = M2 (31–60), 3 = M3+ (61 and more).
/// Collection case stages use the same ranges (`cases::dpd_stage`).
pub fn bucket_of(dpd: u64) -> u8 {
    DPD_BOUNDARIES[..3].iter().filter(|b| dpd >= **b).count() as u8
}

/// The first time at which an installment due at `due` is `days` (≥ 1) days past due by
/// [`dpd`]: `due + (days - 1) days + 1 ms`. Saturates instead of overflowing.
pub fn dpd_reached_at(due: u64, days: u64) -> u64 {
    debug_assert!(days >= 1, "DPD 0 is reached at once");
    due.saturating_add(days.saturating_sub(1).saturating_mul(MS_PER_DAY))
        .saturating_add(1)
}

/// The times at which an installment due at `due` reaches DPD 1, 31, 61 and 91.
pub fn dpd_boundaries(due: u64) -> [u64; 4] {
    DPD_BOUNDARIES.map(|days| dpd_reached_at(due, days))
}

/// Bucket at time `t` of the oldest unpaid installment due at `due`, 0 meaning none (as in
/// [`Account::oldest_due`]): [`bucket_of`] the [`dpd`].
pub fn bucket(due: u64, t: u64) -> u8 {
    bucket_of(dpd((due != 0).then_some(due), t))
}

/// The earliest `due_ts` the ledger holds: an installment due at 0, which decode rejects
/// (`range:due_ts`) but an in-memory input may carry, is held as due at 1 ms, so that
/// [`Account::oldest_due`] 0 keeps meaning "nothing unpaid" and the features agree with the
/// cases (at most 1 ms of difference, at the epoch).
const MIN_DUE_TS: u64 = 1;

impl Ledger {
    /// A new, empty ledger for `customer_id`.
    pub fn new(customer_id: CompactString) -> Ledger {
        Ledger {
            account: Account {
                customer_id,
                ..Account::default()
            },
            ..Ledger::default()
        }
    }

    /// The DPD wake-up times emitted for the current oldest unpaid installment.
    pub fn pending_wakes(&self) -> &[u64] {
        &self.wakes
    }

    /// The account as of the last applied event.
    pub fn account(&self) -> &Account {
        &self.account
    }

    /// The current schedule if it may have changed since the last call, else `None`.
    pub fn take_schedule_change(&mut self) -> Option<Schedule> {
        if !std::mem::take(&mut self.schedule_dirty) {
            return None;
        }
        let mut loans: Vec<LoanSchedule> = self
            .loans
            .iter()
            .filter(|l| !l.settled)
            .map(|l| {
                let mut unpaid: Vec<(u64, u64)> = l
                    .installments
                    .iter()
                    .filter(|i| i.unpaid() > 0)
                    .map(|i| (i.due_ts, i.unpaid()))
                    .collect();
                unpaid.sort_unstable();
                LoanSchedule {
                    loan_id: l.loan_id.clone(),
                    written_off: l.written_off,
                    unpaid,
                }
            })
            .filter(|l| l.written_off || !l.unpaid.is_empty())
            .collect();
        loans.sort_by(|a, b| a.loan_id.cmp(&b.loan_id));
        Some(Schedule { loans })
    }

    /// Applies one event entering the dataflow at `time` (`time >= ceil_tick(event.ts)`;
    /// greater for a late event), emitting window contributions through `sink`.
    /// Call [`Ledger::settle`] after the last event of a time.
    pub fn apply(&mut self, event: &Event, time: u64, layout: &Layout, sink: &mut impl LedgerSink) {
        match &event.body {
            Body::Transaction(t) => self.transaction(t),
            Body::Behavior(_) => {}
            Body::Loan(l) => {
                self.loan(l);
                self.schedule_dirty = true;
            }
            Body::Customer(c) => {
                // A newer ts replaces the older record (customer.schema.json); a late,
                // older record does not replace the one in force.
                if event.ts >= self.account.record_ts {
                    self.account.limit = c.credit_limit;
                    self.account.apr_bps = c.apr_bps;
                    self.account.status = c.status;
                    self.account.record_ts = event.ts;
                    if let Some(b) = c.balance {
                        self.account.balance = b;
                    }
                }
            }
        }
        contribute(event, time, layout, sink);
    }

    /// Recomputes the oldest unpaid installment after the events of `time` and emits the
    /// wake-ups of its DPD boundaries that lie after `time` (retracting the old ones).
    ///
    /// `extra_wakes` are further days past due at which to wake (config
    /// `delinquency.wake_at_dpd`), besides the bucket boundaries.
    pub fn settle(
        &mut self,
        time: u64,
        tick: u64,
        extra_wakes: &[u32],
        sink: &mut impl LedgerSink,
    ) {
        let mut oldest: Option<(u64, &CompactString)> = None;
        let mut unpaid: u64 = 0;
        for loan in self.loans.iter().filter(|l| !l.settled) {
            for inst in loan.installments.iter().filter(|i| i.unpaid() > 0) {
                unpaid = unpaid.saturating_add(inst.unpaid());
                if oldest.is_none_or(|(d, id)| (inst.due_ts, &loan.loan_id) < (d, id)) {
                    oldest = Some((inst.due_ts, &loan.loan_id));
                }
            }
        }
        self.account.unpaid = unpaid;
        let due = oldest.map(|(d, _)| d).unwrap_or(0);
        if due != self.account.oldest_due {
            for w in self.wakes.drain(..) {
                if w > time {
                    sink.wake(w, -1);
                }
            }
            self.account.oldest_due = due;
            if due != 0 {
                let extra = extra_wakes
                    .iter()
                    .map(|d| dpd_reached_at(due, u64::from(*d).max(1)));
                for b in dpd_boundaries(due).into_iter().chain(extra) {
                    let w = ceil_to(b, tick);
                    if w > time {
                        sink.wake(w, 1);
                        self.wakes.push(w);
                    }
                }
            }
        }
    }

    fn transaction(&mut self, t: &Transaction) {
        if !t.approved {
            return;
        }
        let balance = &mut self.account.balance;
        match t.kind {
            TxnKind::Drawdown | TxnKind::Purchase | TxnKind::CashWithdrawal | TxnKind::Fee => {
                *balance = balance.saturating_add(t.amount)
            }
            TxnKind::Refund => *balance = balance.saturating_sub(t.amount),
            TxnKind::Repayment => {
                *balance = balance.saturating_sub(t.amount);
                self.repay(t.loan_id.as_ref(), t.amount);
                self.schedule_dirty = true;
            }
            TxnKind::TransferIn | TxnKind::TransferOut | TxnKind::SalaryCredit => {}
        }
    }

    fn loan_mut(&mut self, loan_id: &CompactString) -> &mut Loan {
        let pos = match self.loans.iter().position(|l| l.loan_id == *loan_id) {
            Some(p) => p,
            None => {
                self.loans.push(Loan {
                    loan_id: loan_id.clone(),
                    ..Loan::default()
                });
                self.loans.len() - 1
            }
        };
        &mut self.loans[pos]
    }

    fn repay(&mut self, loan_id: Option<&CompactString>, amount: u64) {
        match loan_id {
            Some(id) => {
                let loan = self.loan_mut(id);
                let left = if loan.settled {
                    amount
                } else {
                    loan.pay(amount)
                };
                loan.credit = loan.credit.saturating_add(left);
            }
            None => {
                let mut left = amount;
                while left > 0 {
                    // The customer's oldest unpaid installment across loans.
                    let mut best: Option<(u64, usize, usize)> = None;
                    for (li, loan) in self.loans.iter().enumerate().filter(|(_, l)| !l.settled) {
                        for (ii, inst) in loan.installments.iter().enumerate() {
                            if inst.unpaid() == 0 {
                                continue;
                            }
                            let better = match best {
                                None => true,
                                Some((d, bl, _)) => {
                                    (inst.due_ts, &loan.loan_id) < (d, &self.loans[bl].loan_id)
                                }
                            };
                            if better {
                                best = Some((inst.due_ts, li, ii));
                            }
                        }
                    }
                    let Some((_, li, ii)) = best else { break };
                    let inst = &mut self.loans[li].installments[ii];
                    let pay = inst.unpaid().min(left);
                    inst.paid += pay;
                    left -= pay;
                }
                self.credit = self.credit.saturating_add(left);
            }
        }
    }

    fn loan(&mut self, l: &riskwatch_model::event::LoanEvent) {
        let customer_credit = &mut self.credit;
        let pos = match self.loans.iter().position(|x| x.loan_id == l.loan_id) {
            Some(p) => p,
            None => {
                self.loans.push(Loan {
                    loan_id: l.loan_id.clone(),
                    ..Loan::default()
                });
                self.loans.len() - 1
            }
        };
        let loan = &mut self.loans[pos];
        match l.kind {
            LoanKind::InstallmentDue => {
                if loan.settled {
                    return;
                }
                let due_ts = l.due_ts.max(MIN_DUE_TS);
                let idx = match loan
                    .installments
                    .iter()
                    .position(|i| i.no == l.installment_no)
                {
                    Some(i) => {
                        let inst = &mut loan.installments[i];
                        inst.amount = l.amount;
                        inst.due_ts = due_ts;
                        if inst.paid > inst.amount {
                            loan.credit = loan.credit.saturating_add(inst.paid - inst.amount);
                            inst.paid = inst.amount;
                        }
                        i
                    }
                    None => {
                        loan.installments.push(Installment {
                            no: l.installment_no,
                            due_ts,
                            amount: l.amount,
                            paid: 0,
                        });
                        loan.installments.len() - 1
                    }
                };
                // Credit pays what was published after it.
                let inst = &mut loan.installments[idx];
                let from_loan = inst.unpaid().min(loan.credit);
                inst.paid += from_loan;
                loan.credit -= from_loan;
                let from_customer = inst.unpaid().min(*customer_credit);
                inst.paid += from_customer;
                *customer_credit -= from_customer;
            }
            LoanKind::Settled => {
                loan.settled = true;
                for inst in loan.installments.iter_mut() {
                    inst.paid = inst.amount;
                }
            }
            LoanKind::WrittenOff => loan.written_off = true,
        }
    }
}

/// Per-measure contribution of one event, before it is placed into window slots.
fn measure_value(m: Measure, event: &Event) -> i64 {
    match &event.body {
        Body::Transaction(t) => {
            let approved = t.approved;
            let amount = t.amount.min(i64::MAX as u64) as i64;
            match m {
                Measure::Spend
                    if approved
                        && matches!(t.kind, TxnKind::Purchase | TxnKind::CashWithdrawal) =>
                {
                    amount
                }
                Measure::Cash if approved && t.kind == TxnKind::CashWithdrawal => amount,
                Measure::ApprovedCount if approved => 1,
                Measure::DeclinedCount if !approved => 1,
                Measure::Repayments if approved && t.kind == TxnKind::Repayment => 1,
                Measure::RepaymentAmount if approved && t.kind == TxnKind::Repayment => amount,
                Measure::SalaryCredits if approved && t.kind == TxnKind::SalaryCredit => 1,
                Measure::SalaryAmount if approved && t.kind == TxnKind::SalaryCredit => amount,
                Measure::Drawdowns if approved && t.kind == TxnKind::Drawdown => 1,
                _ => 0,
            }
        }
        Body::Behavior(b) => match (m, b.kind) {
            (Measure::FailedLogins, BehaviorKind::LoginFailed)
            | (Measure::PhoneChanges, BehaviorKind::PhoneChanged)
            | (Measure::ContactChanges, BehaviorKind::ContactChanged)
            | (Measure::DeviceChanges, BehaviorKind::DeviceBound)
            | (Measure::Inquiries, BehaviorKind::CreditInquiry) => 1,
            _ => 0,
        },
        Body::Loan(_) | Body::Customer(_) => 0,
    }
}

/// The identifier a distinct-count measure counts for this event, 0 when none.
fn distinct_value(m: Measure, event: &Event) -> u64 {
    match (&event.body, m) {
        (Body::Transaction(t), Measure::DistinctMerchants) => t.merchant,
        (Body::Transaction(t), Measure::DistinctDevices) => t.device,
        (Body::Behavior(b), Measure::DistinctDevices) => b.device,
        (Body::Behavior(b), Measure::DistinctLenders) if b.kind == BehaviorKind::CreditInquiry => {
            b.lender
        }
        _ => 0,
    }
}

/// Emits the window contributions of one event: insertions at `time` into every window
/// still open, retractions at `ceil_g(ts + W)` per window. A window whose retraction time
/// is not after `time` (a late event) gets nothing and is counted as expired on arrival.
pub fn contribute(event: &Event, time: u64, layout: &Layout, sink: &mut impl LedgerSink) {
    if matches!(event.body, Body::Loan(_) | Body::Customer(_)) {
        return;
    }
    let mut insert = Slots::ZERO;
    for (wi, w) in layout.windows.iter().enumerate() {
        let expiry = ceil_to(event.ts.saturating_add(w.length), w.granularity);
        let mut contrib = Slots::ZERO;
        let mut any = false;
        for (m, slot) in &w.sums {
            let v = measure_value(*m, event);
            if v != 0 {
                contrib.0[*slot] = v;
                any = true;
            }
        }
        let mut any_distinct = false;
        for (m, _) in &w.distincts {
            any_distinct |= distinct_value(*m, event) != 0;
        }
        if !any && !any_distinct {
            continue;
        }
        if expiry <= time {
            sink.expired_on_arrival();
            continue;
        }
        if any {
            for (_, slot) in &w.sums {
                insert.0[*slot] = contrib.0[*slot];
            }
            let mut retract = contrib;
            differential_dataflow::difference::Abelian::negate(&mut retract);
            sink.retract_sum(wi as u8, expiry, retract);
        }
        for (m, slot) in &w.distincts {
            let v = distinct_value(*m, event);
            if v != 0 {
                sink.distinct(time, *slot as u8, v);
                sink.retract_distinct(expiry, *slot as u8, v);
            }
        }
    }
    if insert != Slots::ZERO {
        sink.sum(time, insert);
    }
}

#[cfg(test)]
mod tests;
