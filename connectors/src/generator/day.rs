//! One customer's events on one day: Poisson counts of everyday events at the rates of
//! the customer's phase, the schedule (installments due, repayments, drawdowns), the bust,
//! the planned one-offs and collection contacts; transactions then go through the balance
//! logic in event-time order.

use super::archetypes::Customer;
use super::balance::{cust_rec, process, Amt, Draft, Scratch};
use super::period::{Period, NO_DAY};
use super::phase::{bust_ids, rates, session, Rev};
use super::records::{
    own, ring_code, Beh, BehType, Channel, DayBufs, LoanEv, TxnType, HIGH_VALUE_FROM, MCC,
    MERCHANTS, REVOLVING,
};
use super::rng::{mix, Rng};

/// Generates customer `cust`'s events of day `d` into `out` and updates its state.
pub(crate) fn simulate(
    c: &mut Customer,
    cust: u32,
    d: u32,
    p: &Period,
    seed: u64,
    s: &mut Scratch,
    out: &mut DayBufs,
) {
    let mut rng = Rng::keyed(seed, cust as u64, d as u64, 0);
    let r = rates(c, d);
    let dom = p.dom[d as usize];
    let at = |ms: u64| p.ts(d, ms);
    s.drafts.clear();
    let mut bseq = 0u32;
    let mut beh =
        |out: &mut DayBufs, ts: u64, kind: BehType, ids: (u32, u32), phone: u32, arg: u32| {
            out.behs.push(Beh {
                ts,
                cust,
                seq: bseq,
                device: ids.0,
                ip: ids.1,
                phone,
                arg,
                kind,
            });
            bseq += 1;
        };

    // Customers records and the loan schedule.
    if d == 0 {
        out.custs.push(cust_rec(c, cust, p.start_ms, true));
    }
    if c.limit_change.0 == d {
        let mut dr = Draft::new(
            at(rng.hours(1, 6)),
            TxnType::Fee,
            Amt::Fixed(c.limit_change.1),
        );
        dr.kind = None;
        s.drafts.push(dr);
    }
    let mut lseq = 0u32;
    for (k, i) in c.insts.iter().enumerate() {
        if i.publish_day == d {
            let ts = at(rng.hours(1, 3));
            let ev = LoanEv {
                ts,
                due_ts: p.due_ts(i.due_day),
                amount: i.amount,
                cust,
                seq: lseq,
                no: i.no,
                loan: i.loan,
            };
            out.loans.push(ev);
            lseq += 1;
        }
        for (day, amount) in i.pays {
            if day == d && amount > 0 {
                let mut dr = Draft::new(0, TxnType::Repayment, Amt::Fixed(amount));
                (dr.loan, dr.inst) = (i.loan, k);
                if rng.chance(0.4) {
                    dr.ts = at(rng.hours(6, 9)); // auto-debit
                } else {
                    let ms = rng.time_of_day();
                    dr.ts = at(ms);
                    let ids = session(c, cust, d, &mut rng);
                    (dr.channel, dr.device, dr.ip) = (Channel::App, ids.0, ids.1);
                    let before = at(ms.saturating_sub(rng.range(20_000, 300_000)));
                    beh(out, before, BehType::Login, ids, 0, 0);
                }
                s.drafts.push(dr);
            }
        }
        if i.due_day + 1 == d && i.completion_day().is_none_or(|x| x > i.due_day) {
            let fee = (i.amount / 20).max(2_000);
            s.drafts.push(Draft::new(
                at(rng.hours(0, 2)),
                TxnType::Fee,
                Amt::Fixed(fee),
            ));
        }
    }
    for (k, l) in c.loans.iter().enumerate() {
        if l.write_off_day == d {
            let ts = at(rng.hours(1, 3));
            out.loans.push(LoanEv {
                ts,
                due_ts: 0,
                amount: 0,
                cust,
                seq: lseq,
                no: 0,
                loan: k as u8 + 1,
            });
            lseq += 1;
        }
        if l.draw_day == d {
            let ts = if l.bootstrap {
                p.start_ms
            } else {
                at(l.draw_ms)
            };
            let mut dr = Draft::new(ts, TxnType::Drawdown, Amt::Fixed(l.principal));
            dr.loan = k as u8 + 1;
            dr.channel = Channel::App;
            if !l.bootstrap {
                (dr.device, dr.ip) = bust_ids(c, cust);
            }
            s.drafts.push(dr);
        }
    }

    // Income and the revolving line's repayment.
    let cured_catch_up = c.arch.cures() && c.stop_day != NO_DAY && d + 1 == c.stop_day;
    if c.salary_dom != 0 && ((dom == c.salary_dom && r.salary_pct > 0) || cured_catch_up) {
        let pct = if cured_catch_up { 100 } else { r.salary_pct };
        let amount = c.salary * pct / 100 * rng.range(980, 1020) / 1000;
        s.drafts.push(Draft::new(
            at(rng.hours(1, 6)),
            TxnType::SalaryCredit,
            Amt::Fixed(amount),
        ));
    } else if c.salary_dom == 0 && r.salary_pct > 0 {
        for _ in 0..rng.poisson(0.1) {
            let amount = rng.skewed(c.salary / 3);
            s.drafts.push(Draft::new(
                at(rng.time_of_day()),
                TxnType::TransferIn,
                Amt::Fixed(amount),
            ));
        }
    }
    if dom == c.rev_dom && r.rev != Rev::Stop {
        let amt = if r.rev == Rev::Full {
            Amt::RevFull
        } else {
            Amt::RevMin
        };
        let mut dr = Draft::new(at(rng.time_of_day()), TxnType::Repayment, amt);
        let ids = session(c, cust, d, &mut rng);
        (dr.loan, dr.channel, dr.device, dr.ip) = (REVOLVING, Channel::App, ids.0, ids.1);
        s.drafts.push(dr);
    }

    // Everyday spending.
    let favourite = |rng: &mut Rng| {
        (mix(c.merchants.wrapping_add(rng.below(c.favourites))) % MERCHANTS as u64) as u32
    };
    for _ in 0..rng.poisson(r.purchase) {
        let mean = (c.purchase_mean as f64 * r.pmult) as u64;
        let mut dr = Draft::new(
            at(rng.time_of_day()),
            TxnType::Purchase,
            Amt::Fixed(rng.skewed(mean)),
        );
        dr.merchant = 1 + if rng.chance(0.8) {
            favourite(&mut rng)
        } else {
            rng.below(MERCHANTS as u64) as u32
        };
        dr.channel = match rng.below(100) {
            0..=54 => Channel::Pos,
            55..=79 => Channel::Online,
            _ => Channel::App,
        };
        if dr.channel != Channel::Pos {
            (dr.device, dr.ip) = session(c, cust, d, &mut rng);
        }
        dr.decline = rng.chance(0.015);
        dr.restraint = r.restraint;
        s.drafts.push(dr);
    }
    for _ in 0..rng.poisson(r.cash) {
        let mean = (c.cash_mean as f64 * r.cmult) as u64;
        let amount = (rng.skewed(mean) / 10_000 * 10_000).max(10_000);
        let mut dr = Draft::new(
            at(rng.time_of_day()),
            TxnType::CashWithdrawal,
            Amt::Fixed(amount),
        );
        dr.channel = Channel::Atm;
        dr.decline = rng.chance(0.01);
        dr.restraint = r.restraint;
        s.drafts.push(dr);
    }
    for _ in 0..rng.poisson(r.purchase * 0.02) {
        let mut dr = Draft::new(
            at(rng.time_of_day()),
            TxnType::Refund,
            Amt::Fixed(rng.skewed(c.purchase_mean)),
        );
        dr.merchant = 1 + favourite(&mut rng);
        dr.channel = Channel::Online;
        s.drafts.push(dr);
    }

    // The bust: a new device, limit checks, then spending up to the limit within hours.
    if r.bust {
        let first = d == c.turn_day;
        let t0 = if first { c.turn_ms } else { rng.hours(8, 12) };
        let ids = bust_ids(c, cust);
        if first {
            let bound_ip = if c.ring > 0 {
                ring_code(c.ring, 0)
            } else {
                ids.1
            };
            beh(out, at(t0), BehType::DeviceBound, (ids.0, bound_ip), 0, 0);
            beh(
                out,
                at(t0 + rng.range(5_000, 30_000)),
                BehType::Login,
                ids,
                0,
                0,
            );
            for _ in 0..rng.range(2, 4) {
                beh(
                    out,
                    at(t0 + rng.range(30_000, 600_000)),
                    BehType::LimitViewed,
                    ids,
                    0,
                    0,
                );
            }
        }
        let (buys, cash) = if first {
            (rng.range(4, 8), rng.range(1, 3))
        } else {
            (rng.range(2, 5), rng.range(0, 2))
        };
        for k in 0..buys + cash {
            let ts = at(t0 + rng.range(120_000, 6 * 3_600_000));
            let mut dr = if k < buys {
                let mut dr = Draft::new(ts, TxnType::Purchase, Amt::Headroom(rng.range(250, 600)));
                let cat =
                    HIGH_VALUE_FROM + rng.below(MCC.len() as u64 - HIGH_VALUE_FROM as u64) as u32;
                dr.merchant = 1
                    + cat
                    + MCC.len() as u32 * rng.below((MERCHANTS / MCC.len() as u32) as u64) as u32;
                dr.channel = Channel::Online;
                dr
            } else {
                let mut dr = Draft::new(
                    ts,
                    TxnType::CashWithdrawal,
                    Amt::Headroom(rng.range(200, 500)),
                );
                dr.channel = Channel::Atm;
                dr
            };
            if dr.channel == Channel::Online {
                (dr.device, dr.ip) = ids;
            }
            s.drafts.push(dr);
        }
    }

    // Behaviour: sessions, limit views, failed logins, one-offs, collection contacts.
    let night_or_day = |rng: &mut Rng, night: f64| {
        if rng.chance(night) {
            rng.hours(0, 5)
        } else {
            rng.time_of_day()
        }
    };
    for _ in 0..rng.poisson(r.app_open) {
        let ts = at(night_or_day(&mut rng, r.night * 0.3));
        let ids = session(c, cust, d, &mut rng);
        beh(out, ts, BehType::AppOpen, ids, 0, 0);
    }
    for _ in 0..rng.poisson(r.login) {
        let ms = rng.time_of_day();
        let ids = session(c, cust, d, &mut rng);
        if rng.chance(r.failed) {
            beh(
                out,
                at(ms.saturating_sub(rng.range(5_000, 60_000))),
                BehType::LoginFailed,
                ids,
                0,
                0,
            );
        }
        beh(out, at(ms), BehType::Login, ids, 0, 0);
    }
    for _ in 0..rng.poisson(r.limit_viewed) {
        let ts = at(night_or_day(&mut rng, r.night));
        let ids = session(c, cust, d, &mut rng);
        beh(out, ts, BehType::LimitViewed, ids, 0, 0);
    }
    for k in 0..c.oneoffs.len() {
        let o = c.oneoffs[k];
        if o.day != d {
            continue;
        }
        let ms = rng.hours(7, 22);
        let ts = at(ms);
        match o.kind {
            BehType::CreditInquiry | BehType::PromiseToPay => {
                beh(out, ts, o.kind, (0, 0), 0, o.arg)
            }
            BehType::DeviceBound => {
                c.devices = if c.devices == 1 { 3 } else { 1 };
                let ids = (own(cust, c.devices), session(c, cust, d, &mut rng).1);
                beh(out, ts, BehType::DeviceBound, ids, 0, 0);
                beh(
                    out,
                    at(ms + rng.range(2_000, 20_000)),
                    BehType::Login,
                    ids,
                    0,
                    0,
                );
            }
            BehType::LoginFailed => {
                let ids = session(c, cust, d, &mut rng);
                for j in 0..o.arg as u64 {
                    beh(
                        out,
                        at(ms + j * rng.range(3_000, 20_000)),
                        BehType::LoginFailed,
                        ids,
                        0,
                        0,
                    );
                }
                beh(out, at(ms + 90_000), BehType::Login, ids, 0, 0);
            }
            kind => {
                let ids = session(c, cust, d, &mut rng);
                beh(out, ts, kind, ids, o.arg, 0);
            }
        }
    }
    let oldest_overdue = c
        .insts
        .iter()
        .filter(|i| i.due_day < d && i.completion_day().is_none_or(|x| x >= d))
        .map(|i| i.due_day)
        .min();
    if let Some(due) = oldest_overdue {
        let dpd = d - due;
        if dpd >= 2 && (dpd - 2).is_multiple_of(4) {
            beh(
                out,
                at(rng.hours(9, 20)),
                BehType::CollectionContact,
                (0, 0),
                0,
                if dpd > 10 { 2 } else { 1 },
            );
        }
    }

    process(c, cust, p, d, s, out, &mut rng);
}
