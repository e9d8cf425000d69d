//! Per-archetype stories: when each installment is paid, and the one-off behaviour
//! events (bureau inquiries, identity changes, promises to pay) planned for set days.

use super::archetypes::{Customer, OneOff};
use super::config::Archetype;
use super::period::{Period, NO_DAY};
use super::records::{own, ring_code, BehType, LENDERS};
use super::rng::Rng;

/// Decides when and how much each installment is paid.
pub(crate) fn pay_plans(c: &mut Customer, p: &Period, rng: &mut Rng) {
    let nd = p.days;
    // Cured twice: two consecutive installments of loan 1 are missed, the first due on or
    // after day 14, and both are paid 3–15 days after the second was due (falling back to
    // one miss when the period has no room for two).
    if c.arch == Archetype::CuredTwice {
        let due1: Vec<u32> = c
            .insts
            .iter()
            .filter(|i| i.loan == 1)
            .map(|i| i.due_day)
            .collect();
        let cands: Vec<(u32, u32)> = due1
            .windows(2)
            .filter(|w| w[0] >= 14 && w[1] + 18 <= nd)
            .map(|w| (w[0], w[1]))
            .collect();
        if !cands.is_empty() {
            let (first, second) = cands[rng.below(cands.len() as u64) as usize];
            c.turn_day = first;
            c.stop_day = (second + rng.range(3, 15) as u32).min(nd - 1);
        }
    }
    // Cured: the missed installment is one of loan 1's, due in [14, nd - 21].
    if c.arch == Archetype::Cured || (c.arch == Archetype::CuredTwice && c.turn_day == NO_DAY) {
        let cands: Vec<u32> = c
            .insts
            .iter()
            .filter(|i| i.loan == 1 && i.due_day >= 14 && i.due_day + 21 <= nd)
            .map(|i| i.due_day)
            .collect();
        if !cands.is_empty() {
            c.turn_day = cands[rng.below(cands.len() as u64) as usize];
            c.stop_day = (c.turn_day + rng.range(5, 20) as u32).min(nd - 1);
        }
    }
    // Silent defaulter: the first never-paid installment is any loan's, due in
    // [30, nd - 15] (or the second half of a period too short for that).
    if c.arch == Archetype::SilentDefaulter {
        let pick = |lo: u32, hi: u32, rng: &mut Rng| {
            let days: Vec<u32> = c
                .insts
                .iter()
                .map(|i| i.due_day)
                .filter(|d| (lo..=hi).contains(d))
                .collect();
            (!days.is_empty()).then(|| days[rng.below(days.len() as u64) as usize])
        };
        let f = pick(30, nd.saturating_sub(15), rng).or_else(|| pick(nd / 2, nd, rng));
        if let Some(f) = f {
            (c.turn_day, c.stop_day) = (f, f);
        }
    }
    let late_noise = c.arch == Archetype::Healthy && rng.chance(0.03);
    let late_cands: Vec<usize> = (0..c.insts.len())
        .filter(|k| c.insts[*k].due_day + 4 <= nd)
        .collect();
    let late_pick = (late_noise && !late_cands.is_empty())
        .then(|| late_cands[rng.below(late_cands.len() as u64) as usize]);
    for k in 0..c.insts.len() {
        let i = &mut c.insts[k];
        let normal = (i.due_day - rng.range(0, 5) as u32).max(i.publish_day);
        i.pays[0] = (normal, i.amount);
        match c.arch {
            Archetype::Deteriorating if c.stop_day != NO_DAY => {
                let f = c.stop_day;
                if i.due_day >= f {
                    i.pays[0] = (NO_DAY, 0);
                } else if i.due_day + 35 >= f {
                    // The last installments before the default: half on time, the rest late.
                    let late = (i.due_day + rng.range(1, 6) as u32).min(f - 1);
                    if late > i.due_day {
                        let half = i.amount / 2;
                        i.pays = [(i.due_day, half), (late, i.amount - half)];
                    } else {
                        i.pays[0] = (i.due_day, i.amount);
                    }
                } else if i.due_day >= c.turn_day {
                    i.pays[0] = (i.due_day, i.amount);
                }
            }
            Archetype::BustOut | Archetype::FraudRing if i.due_day >= c.stop_day => {
                i.pays[0] = (NO_DAY, 0);
            }
            Archetype::Cured | Archetype::CuredTwice
                if c.turn_day != NO_DAY && (c.turn_day..c.stop_day).contains(&i.due_day) =>
            {
                i.pays[0] = (c.stop_day, i.amount);
            }
            Archetype::SilentDefaulter if i.due_day >= c.stop_day => {
                i.pays[0] = (NO_DAY, 0);
            }
            Archetype::Stretched => {
                // Always on time, but at the last moment: on the due day or the day before.
                let last = (i.due_day - rng.range(0, 1) as u32).max(i.publish_day);
                i.pays[0] = (last, i.amount);
            }
            _ => {}
        }
        if late_pick == Some(k) {
            i.pays[0] = (i.due_day + rng.range(1, 3) as u32, i.amount);
        }
    }
}

/// Plans the one-off behaviour events: noise for everyone, signals for the archetypes.
pub(crate) fn oneoffs(c: &mut Customer, cust: u32, p: &Period, rng: &mut Rng) {
    let nd = p.days;
    let add = |c: &mut Customer, day: u32, kind: BehType, arg: u32| {
        if day < nd {
            c.oneoffs.push(OneOff { day, kind, arg });
        }
    };
    let any_day = |rng: &mut Rng| rng.below(nd as u64) as u32;
    let lender = |rng: &mut Rng| 1 + rng.below(LENDERS as u64) as u32;
    let distinct_lenders = |rng: &mut Rng, m: u64| {
        let mut v: Vec<u32> = Vec::new();
        while (v.len() as u64) < m {
            let l = 1 + rng.below(LENDERS as u64) as u32;
            if !v.contains(&l) {
                v.push(l);
            }
        }
        v
    };
    // The healthy customers' noise; `identity` also plans device, phone and contact changes.
    let noise = |c: &mut Customer, rng: &mut Rng, identity: bool| {
        if rng.chance(0.04) {
            let (d, l) = (any_day(rng), lender(rng));
            add(c, d, BehType::CreditInquiry, l);
        }
        if rng.chance(0.03) {
            let d = any_day(rng);
            if identity {
                add(c, d, BehType::DeviceBound, 1);
            }
        }
        if rng.chance(0.005) {
            let d = any_day(rng);
            if identity {
                add(c, d, BehType::PhoneChanged, own(cust, 1));
            }
        }
        if rng.chance(0.01) {
            let d = any_day(rng);
            if identity {
                add(c, d, BehType::ContactChanged, own(cust, 2));
            }
        }
        if rng.chance(0.03) {
            let d = any_day(rng);
            add(c, d, BehType::LoginFailed, 3);
        }
        if rng.chance(0.01) {
            let d = any_day(rng);
            add(c, d, BehType::PasswordReset, 0);
        }
    };
    match c.arch {
        Archetype::Healthy => noise(c, rng, true),
        Archetype::SilentDefaulter => {
            // Noise only before the default, and no identity changes at all.
            noise(c, rng, false);
            let f = c.stop_day;
            c.oneoffs.retain(|o| o.day < f);
        }
        Archetype::Stretched => {
            noise(c, rng, true);
            // Shopping around for credit: 3–6 inquiries from 3–5 distinct lenders within 20
            // days, and for 40 % one or two more inquiries on other days.
            let k = rng.range(3, 6);
            let m = rng.range(3, k.min(5));
            let lenders = distinct_lenders(rng, m);
            let s = rng.below(nd.saturating_sub(20).max(1) as u64) as u32;
            for j in 0..k {
                let d = s + rng.below(20) as u32;
                add(
                    c,
                    d,
                    BehType::CreditInquiry,
                    lenders[j as usize % lenders.len()],
                );
            }
            if rng.chance(0.4) {
                for _ in 0..rng.range(1, 2) {
                    let (d, l) = (any_day(rng), lender(rng));
                    add(c, d, BehType::CreditInquiry, l);
                }
            }
        }
        Archetype::Deteriorating if c.stop_day != NO_DAY => {
            let (s, f) = (c.turn_day, c.stop_day);
            let k = rng.range(4, 8);
            let m = rng.range(3, k.min(6));
            let lenders = distinct_lenders(rng, m);
            for j in 0..k {
                let d = s + rng.range(3, 33) as u32;
                add(
                    c,
                    d.min(f),
                    BehType::CreditInquiry,
                    lenders[j as usize % lenders.len()],
                );
            }
            if rng.chance(0.4) {
                let d = rng.range(s as u64 + 10, f as u64) as u32;
                add(c, d, BehType::PhoneChanged, own(cust, 1));
            }
            if rng.chance(0.5) {
                for slot in 2..2 + rng.range(1, 2) as u32 {
                    let d = rng.range(s as u64 + 10, f as u64 + 10) as u32;
                    add(c, d, BehType::ContactChanged, own(cust, slot));
                }
            }
            if rng.chance(0.3) {
                let d = rng.range(s as u64, f as u64) as u32;
                add(c, d, BehType::PasswordReset, 0);
            }
            if rng.chance(0.15) {
                let d = rng.range(s as u64, f as u64) as u32;
                add(c, d, BehType::DeviceBound, 1);
            }
            if rng.chance(0.5) {
                add(c, f + rng.range(5, 15) as u32, BehType::PromiseToPay, 0);
            }
        }
        Archetype::BustOut => {
            let b = c.turn_day;
            if rng.chance(0.5) {
                let k = rng.range(2, 5);
                for l in distinct_lenders(rng, k) {
                    let d = rng.range(b.saturating_sub(10) as u64, b as u64) as u32;
                    add(c, d, BehType::CreditInquiry, l);
                }
            }
            if rng.chance(0.3) && b >= 6 {
                let d = b - rng.range(5, 20.min(b as u64 - 1)) as u32;
                let factor = rng.range(120, 150);
                c.limit_change = (d, c.limit * factor / 100 / 50_000 * 50_000);
            }
        }
        Archetype::FraudRing => {
            let b = c.turn_day;
            let [_, _, phones] = c.ring_shared;
            if rng.chance(0.7) {
                let d = rng.below(b as u64 + 1) as u32;
                add(
                    c,
                    d,
                    BehType::ContactChanged,
                    ring_code(c.ring, c.member % phones),
                );
            }
            if rng.chance(0.5) {
                let k = rng.range(1, 3);
                for l in distinct_lenders(rng, k) {
                    let d = rng.range(b.saturating_sub(7) as u64, b as u64) as u32;
                    add(c, d, BehType::CreditInquiry, l);
                }
            }
        }
        Archetype::Cured | Archetype::CuredTwice if c.turn_day != NO_DAY => {
            let pay = c.stop_day;
            if pay > c.turn_day + 2 {
                add(c, pay - rng.range(1, 2) as u32, BehType::PromiseToPay, 0);
            }
            if rng.chance(0.3) {
                let d = rng.range(c.turn_day.saturating_sub(10) as u64, c.turn_day as u64) as u32;
                add(c, d, BehType::CreditInquiry, lender(rng));
            }
            if c.arch == Archetype::CuredTwice && pay > c.turn_day + 15 {
                // A first promise, broken: the second installment falls due unpaid.
                let d = c.turn_day + rng.range(7, 12) as u32;
                add(c, d, BehType::PromiseToPay, 0);
            }
        }
        _ => {}
    }
    let raises = matches!(c.arch, Archetype::Healthy | Archetype::SilentDefaulter);
    if raises && rng.chance(0.02) && nd >= 3 {
        let d = rng.range(nd as u64 / 3, nd as u64 - 1) as u32;
        // A silent defaulter's raise comes before its default, or not at all.
        if c.arch == Archetype::Healthy || d < c.stop_day {
            c.limit_change = (d, c.limit * 120 / 100 / 50_000 * 50_000);
        }
    }
    c.oneoffs.sort_by_key(|o| o.day);
}
