//! Planned transactions (drafts) and the balance logic that approves, declines or skips
//! each in event-time order, keeping the drawn balance per the contract's semantics.

use super::archetypes::Customer;
use super::period::Period;
use super::records::{Channel, CustRec, DayBufs, Txn, TxnType, REVOLVING};
use super::rng::Rng;

/// How the amount of a planned transaction is decided when it is processed.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Amt {
    Fixed(u64),
    /// Thousandths of the remaining headroom (limit − balance), at least 300 CNY.
    Headroom(u64),
    /// Revolving repayment of everything above the carried balance.
    RevFull,
    /// Revolving repayment of the minimum: 10 % of the revolving balance, at least 50 CNY.
    RevMin,
}

/// A transaction (or limit change) before the balance logic has run.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Draft {
    pub ts: u64,
    /// `None` for a limit change (a customers record).
    pub kind: Option<TxnType>,
    pub amt: Amt,
    pub merchant: u32,
    pub device: u32,
    pub ip: u32,
    pub channel: Channel,
    pub loan: u8,
    pub inst: usize,
    /// Declined whatever the balance (card-fraud checks and similar).
    pub decline: bool,
    /// Skipped (never attempted) when it would take utilisation above the customer's
    /// ceiling (`cap_pct`, 55 % for all but stretched customers).
    pub restraint: bool,
}

impl Draft {
    pub fn new(ts: u64, kind: TxnType, amt: Amt) -> Draft {
        Draft {
            ts,
            kind: Some(kind),
            amt,
            merchant: 0,
            device: 0,
            ip: 0,
            channel: Channel::None,
            loan: 0,
            inst: usize::MAX,
            decline: false,
            restraint: false,
        }
    }
}

/// Reused per-customer buffer.
#[derive(Default)]
pub(crate) struct Scratch {
    pub drafts: Vec<Draft>,
}

pub(crate) fn cust_rec(c: &Customer, cust: u32, ts: u64, first: bool) -> CustRec {
    CustRec {
        ts,
        limit: c.limit,
        opened_at: c.opened_at,
        balance: c.b0,
        cust,
        seq: u32::from(!first),
        apr_bps: c.apr_bps,
        segment: c.segment,
        first,
    }
}

/// Runs the balance logic over the day's drafts in event-time order and emits them.
pub(crate) fn process(
    c: &mut Customer,
    cust: u32,
    p: &Period,
    d: u32,
    s: &mut Scratch,
    out: &mut DayBufs,
    rng: &mut Rng,
) {
    s.drafts.sort_by_key(|dr| dr.ts);
    let mut seq = 0u32;
    for dr in &s.drafts {
        let Some(kind) = dr.kind else {
            let Amt::Fixed(limit) = dr.amt else { continue };
            c.limit = limit;
            out.custs.push(cust_rec(c, cust, dr.ts, false));
            continue;
        };
        let mut declined = false;
        let amount = match (kind, dr.amt) {
            (TxnType::Purchase | TxnType::CashWithdrawal, amt) => {
                let amount = match amt {
                    Amt::Headroom(pm) => {
                        (c.limit.saturating_sub(c.bal) * pm / 1000).max(30_000) / 100 * 100
                    }
                    Amt::Fixed(a) => a,
                    _ => continue,
                };
                if dr.decline {
                    declined = true;
                } else if dr.restraint && (c.bal + amount) * 100 > c.limit * c.cap_pct {
                    continue;
                } else if c.bal + amount > c.limit {
                    declined = true;
                } else {
                    c.bal += amount;
                    c.rev += amount;
                }
                amount
            }
            (TxnType::Fee, Amt::Fixed(a)) => {
                c.bal += a;
                c.rev += a;
                a
            }
            (TxnType::Refund, Amt::Fixed(a)) => {
                let a = a.min(c.rev);
                if a == 0 {
                    continue;
                }
                c.rev -= a;
                c.bal = c.bal.saturating_sub(a);
                a
            }
            (TxnType::Repayment, amt) => {
                let a = match amt {
                    Amt::Fixed(a) => a,
                    Amt::RevFull => c.rev.saturating_sub(c.b0),
                    Amt::RevMin => (c.rev / 10).max(5_000).min(c.rev),
                    Amt::Headroom(_) => 0,
                };
                if a == 0 {
                    continue;
                }
                if dr.loan == REVOLVING {
                    c.rev -= a;
                } else {
                    c.insts[dr.inst].paid += a;
                }
                c.bal = c.bal.saturating_sub(a);
                a
            }
            (TxnType::Drawdown, Amt::Fixed(a)) => {
                c.bal += a;
                a
            }
            (_, Amt::Fixed(a)) => a,
            _ => continue,
        };
        out.txns.push(Txn {
            ts: dr.ts,
            amount,
            cust,
            seq,
            merchant: dr.merchant,
            device: dr.device,
            ip: dr.ip,
            kind,
            declined,
            channel: dr.channel,
            loan: dr.loan,
        });
        seq += 1;
        if kind == TxnType::CashWithdrawal && !declined {
            let fee = (amount / 100).max(1_000);
            c.bal += fee;
            c.rev += fee;
            let ts = (dr.ts + rng.range(1, 2_000)).min(p.ts(d, u64::MAX));
            let mut t = out.txns[out.txns.len() - 1];
            (t.ts, t.amount, t.seq, t.kind, t.channel) =
                (ts, fee, seq, TxnType::Fee, Channel::None);
            out.txns.push(t);
            seq += 1;
        }
    }
}
