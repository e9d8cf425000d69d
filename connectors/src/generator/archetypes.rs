//! Who the customers are: archetype assignment, fraud rings, carrier-NAT hubs, and each
//! customer's plan (limit, loans, installment schedule with its payment plan, and the
//! days on which the archetype's story turns). See the module docs for the numbers.

use super::config::{Archetype, GenConfig, DAY_MS};
use super::period::{Period, NO_DAY};
use super::records::BehType;
use super::rng::Rng;
use super::story::{oneoffs, pay_plans};

/// An installment loan.
#[derive(Clone, Debug)]
pub(crate) struct Loan {
    pub principal: u64,
    /// Day of the drawdown; the bootstrap loans are drawn at `start_ms` on day 0.
    pub draw_day: u32,
    /// Milliseconds into `draw_day` (ignored for bootstrap loans).
    pub draw_ms: u64,
    /// Whether the loan exists at the start (drawdown at exactly `start_ms`).
    pub bootstrap: bool,
    /// Day of a `written_off` event, or [`NO_DAY`].
    pub write_off_day: u32,
}

/// One installment and how it will be paid.
#[derive(Clone, Debug)]
pub(crate) struct Inst {
    /// Loan number (1-based).
    pub loan: u8,
    pub no: u16,
    pub due_day: u32,
    pub publish_day: u32,
    pub amount: u64,
    /// Planned payments (day, amount); day [`NO_DAY`] for none.
    pub pays: [(u32, u64); 2],
    /// Amount actually emitted as repayments so far.
    pub paid: u64,
}

impl Inst {
    /// The day on which the planned payments complete the installment, if ever.
    pub fn completion_day(&self) -> Option<u32> {
        let mut total = 0;
        for (day, amount) in self.pays {
            if day != NO_DAY {
                total += amount;
                if total >= self.amount {
                    return Some(day);
                }
            }
        }
        None
    }
}

/// A behaviour event planned for one day.
#[derive(Clone, Copy, Debug)]
pub(crate) struct OneOff {
    pub day: u32,
    pub kind: BehType,
    /// Lender number + 1, device slot, or phone code, by kind.
    pub arg: u32,
}

/// A customer's plan and running state.
#[derive(Clone, Debug)]
pub(crate) struct Customer {
    pub arch: Archetype,
    /// Ring number (1-based), 0 when not in a ring.
    pub ring: u32,
    /// Position in the ring, and the ring's number of shared devices, IPs and phones.
    pub member: u32,
    pub ring_shared: [u32; 3],
    /// Current credit limit (changes with later customers records).
    pub limit: u64,
    pub apr_bps: u32,
    pub segment: &'static str,
    pub opened_at: u64,
    /// Revolving balance at the start (the bootstrap `balance`), also the carried balance
    /// a healthy revolver keeps.
    pub b0: u64,
    /// Slot of the customer's second device (1 or 3), 0 when there is none.
    pub devices: u32,
    /// Hub IP number + 1, or 0.
    pub hub: u32,
    /// Day of month of the salary credit, 0 for customers without a salary.
    pub salary_dom: u8,
    pub salary: u64,
    /// Day of month of the revolving-line repayment.
    pub rev_dom: u8,
    pub purchase_rate: f64,
    pub purchase_mean: u64,
    pub cash_rate: f64,
    /// Utilisation in percent above which a restrained purchase or withdrawal is skipped
    /// (55, stretched customers 85–92).
    pub cap_pct: u64,
    pub cash_mean: u64,
    /// Seed of the favourite merchants, and how many there are.
    pub merchants: u64,
    pub favourites: u64,
    pub loans: Vec<Loan>,
    pub insts: Vec<Inst>,
    pub oneoffs: Vec<OneOff>,
    /// Deteriorating: decline start. Bust-out and ring: first bust day. Cured (once or
    /// twice): the first missed due day. Silent defaulter: the first never-paid due day.
    /// [`NO_DAY`] otherwise.
    pub turn_day: u32,
    /// Bust-out and ring: milliseconds into `turn_day` of the bust.
    pub turn_ms: u64,
    /// Deteriorating: the first never-paid due day; bust-out, ring and silent defaulter: the
    /// day payments stop for good (= `turn_day`); cured: the catch-up payment day.
    pub stop_day: u32,
    /// Deteriorating: the day salary credits stop.
    pub salary_stop: u32,
    /// A later customers record: (day, new limit), day [`NO_DAY`] for none.
    pub limit_change: (u32, u64),
    /// Drawn balance per the contract's semantics, and its revolving part.
    pub bal: u64,
    pub rev: u64,
}

/// Builds every customer's plan.
pub(crate) fn build(cfg: &GenConfig, p: &Period) -> Vec<Customer> {
    let n = cfg.customers as usize;
    let archetypes = assign(cfg);
    let hubs = (cfg.customers / 12_500).clamp(1, 64) as u32;
    // Rings: consecutive fraud-ring customers in index order form rings of 4–12.
    let mut ring_of = vec![(0u32, 0u32); n];
    let mut rings: Vec<RingPlan> = Vec::new();
    {
        let members: Vec<usize> = (0..n)
            .filter(|i| archetypes[*i] == Archetype::FraudRing)
            .collect();
        let mut rng = Rng::keyed(cfg.seed, u64::MAX, 2, 0);
        let mut rest = &members[..];
        while !rest.is_empty() {
            let size = if rest.len() <= 12 {
                rest.len()
            } else {
                rng.range(4, 12.min(rest.len() as u64 - 4)) as usize
            };
            let id = rings.len() as u32 + 1;
            let (lo, hi) = bust_window(p);
            rings.push(RingPlan {
                day: rng.range(lo, hi) as u32,
                ms: rng.hours(8, 22),
                shared: [
                    rng.range(1, (size as u64 / 2).min(3)) as u32,
                    rng.range(1, 2) as u32,
                    rng.range(1, 2) as u32,
                ],
            });
            for (k, m) in rest[..size].iter().enumerate() {
                ring_of[*m] = (id, k as u32);
            }
            rest = &rest[size..];
        }
    }
    (0..n)
        .map(|i| {
            let (ring, member) = ring_of[i];
            let rp = (ring > 0).then(|| &rings[ring as usize - 1]);
            plan(cfg, p, i as u32, archetypes[i], ring, member, rp, hubs)
        })
        .collect()
}

/// A ring's shared bust moment and its numbers of shared devices, IPs and phones.
struct RingPlan {
    day: u32,
    ms: u64,
    shared: [u32; 3],
}

/// Days on which a bust may start: early enough for the next due date to fall inside the
/// period with room after it.
fn bust_window(p: &Period) -> (u64, u64) {
    let nd = p.days as u64;
    if nd >= 57 {
        (7, nd - 50)
    } else {
        (nd / 4, nd / 2)
    }
}

/// Archetype of every customer: counts from the shares (rings need at least 4 members,
/// else those customers become bust-outs), then a seeded shuffle.
fn assign(cfg: &GenConfig) -> Vec<Archetype> {
    let n = cfg.customers;
    let shares = cfg.mix.shares();
    let total: f64 = shares.iter().sum();
    let kinds = Archetype::ALL.len();
    let mut counts = [0u64; Archetype::ALL.len()];
    for k in 1..kinds {
        counts[k] = (n as f64 * shares[k] / total).round() as u64;
    }
    if (1..4).contains(&counts[3]) {
        counts[2] += counts[3];
        counts[3] = 0;
    }
    while counts[1..].iter().sum::<u64>() > n {
        let k = (1..kinds)
            .rev()
            .find(|k| counts[*k] > 0)
            .expect("a non-zero count");
        counts[k] -= 1;
    }
    counts[0] = n - counts[1..].iter().sum::<u64>();
    let mut out = Vec::with_capacity(n as usize);
    for (k, c) in counts.iter().enumerate() {
        out.extend(std::iter::repeat_n(Archetype::ALL[k], *c as usize));
    }
    let mut rng = Rng::keyed(cfg.seed, u64::MAX, 1, 0);
    for i in (1..out.len()).rev() {
        out.swap(i, rng.below(i as u64 + 1) as usize);
    }
    out
}

/// Due days of a loan: every day with day-of-month `dom`, from `first` on, up to `term`.
fn due_days(p: &Period, dom: u8, first: u32, term: u32) -> Vec<u32> {
    (first..p.days)
        .filter(|d| p.dom[*d as usize] == dom && p.can_be_due(*d))
        .take(term as usize)
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn plan(
    cfg: &GenConfig,
    p: &Period,
    cust: u32,
    arch: Archetype,
    ring: u32,
    member: u32,
    rp: Option<&RingPlan>,
    hubs: u32,
) -> Customer {
    let mut rng = Rng::keyed(cfg.seed, cust as u64, u64::MAX, 3);
    let nd = p.days;
    let tier = rng.below(10);
    let (lo, hi, segment, apr_lo) = match tier {
        0..=3 => (5_000u64, 10_000u64, "mass", 18u64),
        4..=7 => (10_000, 30_000, "standard", 15),
        _ => (30_000, 80_000, "premium", 12),
    };
    let limit = rng.range(lo / 500, hi / 500) * 500 * 100;
    let apr_bps = (rng.range(apr_lo, apr_lo + 6) * 100) as u32;
    let age_days = if ring > 0 {
        rng.range(20, 200)
    } else {
        rng.range(60, 1500)
    };
    let opened_at = cfg
        .start_ms
        .saturating_sub(age_days * DAY_MS + rng.below(DAY_MS));
    let frac = |rng: &mut Rng, a: f64, b: f64| (limit as f64 * rng.between(a, b)) as u64;
    let b0 = frac(&mut rng, 0.02, 0.10);
    let mut p1 = frac(&mut rng, 0.12, 0.28) / 10_000 * 10_000;
    let mut p2 = if rng.chance(0.45) {
        frac(&mut rng, 0.08, 0.15) / 10_000 * 10_000
    } else {
        0
    };
    let cap = limit / 2 - b0;
    if p1 + p2 > cap {
        p2 = p2.min(cap / 3);
        p1 = p1.min(cap - p2);
    }
    let salaried = rng.chance(match arch {
        Archetype::FraudRing => 0.6,
        _ => 0.92,
    });
    let salary_dom = if salaried {
        [1u8, 5, 10, 15, 20, 25][rng.below(6) as usize]
    } else {
        0
    };
    let rev_dom = if salaried {
        (salary_dom + 2).min(28)
    } else {
        rng.range(1, 28) as u8
    };
    let purchase_rate = rng.between(0.3, 0.7);
    let monthly = frac(&mut rng, 0.04, 0.09);
    let heavy_cash = rng.chance(0.12);
    let mut c = Customer {
        arch,
        ring,
        member,
        ring_shared: rp.map_or([0; 3], |r| r.shared),
        limit,
        apr_bps,
        segment,
        opened_at,
        b0,
        devices: if rng.chance(0.3) { 1 } else { 0 },
        hub: if matches!(
            arch,
            Archetype::Healthy | Archetype::SilentDefaulter | Archetype::Stretched
        ) && rng.chance(0.03)
        {
            1 + rng.below(hubs as u64) as u32
        } else {
            0
        },
        salary_dom,
        salary: frac(&mut rng, 0.35, 0.8),
        rev_dom,
        purchase_rate,
        purchase_mean: (monthly as f64 / (purchase_rate * 30.0)) as u64,
        cash_rate: if heavy_cash { 0.06 } else { 0.004 },
        cap_pct: 55,
        cash_mean: frac(&mut rng, 0.015, 0.04) / 10_000 * 10_000 + 10_000,
        merchants: rng.next_u64(),
        favourites: rng.range(3, 8),
        loans: Vec::new(),
        insts: Vec::new(),
        oneoffs: Vec::new(),
        turn_day: NO_DAY,
        turn_ms: 0,
        stop_day: NO_DAY,
        salary_stop: NO_DAY,
        limit_change: (NO_DAY, 0),
        bal: b0,
        rev: b0,
    };
    let min_term = nd / 28 + 2;
    let term = |rng: &mut Rng| ([6u32, 12, 24][rng.below(3) as usize]).max(min_term);
    let mut dom1 = rng.range(1, 28) as u8;
    let dom2 = rng.range(1, 28) as u8;
    // The archetype's turning points.
    match arch {
        Archetype::Deteriorating => {
            let pick = |lo: u32, hi: u32, rng: &mut Rng| {
                let days: Vec<u32> = (lo..=hi.min(nd.saturating_sub(1)))
                    .filter(|d| p.dom[*d as usize] <= 28 && p.can_be_due(*d))
                    .collect();
                (!days.is_empty()).then(|| days[rng.below(days.len() as u64) as usize])
            };
            let f = pick(40, nd.saturating_sub(31), &mut rng)
                .or_else(|| pick((nd / 2).max(11), nd, &mut rng));
            if let Some(f) = f {
                dom1 = p.dom[f as usize];
                let s_hi = f.saturating_sub(40).min((nd / 2).saturating_sub(1));
                let s_lo = f.saturating_sub(60).min(s_hi);
                c.turn_day = rng.range(s_lo as u64, s_hi as u64) as u32;
                c.stop_day = f;
                c.salary_stop = c.turn_day + rng.range(0, 10) as u32;
            }
        }
        Archetype::BustOut => {
            let (lo, hi) = bust_window(p);
            c.turn_day = rng.range(lo, hi) as u32;
            c.turn_ms = rng.hours(8, 22);
            c.stop_day = c.turn_day;
        }
        Archetype::FraudRing => {
            let r = rp.expect("ring members have a ring plan");
            let at = r.ms + rng.below(36 * 3_600_000);
            c.turn_day = (r.day + (at / DAY_MS) as u32).min(nd - 1);
            c.turn_ms = at % DAY_MS;
            c.stop_day = c.turn_day;
        }
        _ => {}
    }
    c.loans.push(Loan {
        principal: p1,
        draw_day: 0,
        draw_ms: 0,
        bootstrap: true,
        write_off_day: NO_DAY,
    });
    let mut schedules = vec![(dom1, due_days(p, dom1, 10, term(&mut rng)))];
    if p2 > 0 {
        c.loans.push(Loan {
            principal: p2,
            draw_day: 0,
            draw_ms: 0,
            bootstrap: true,
            write_off_day: NO_DAY,
        });
        schedules.push((dom2, due_days(p, dom2, 10, term(&mut rng))));
    }
    if arch == Archetype::FraudRing && c.turn_day < nd {
        // The ring's fresh loan, drawn minutes after the bust starts.
        let draw_ms = (c.turn_ms + rng.range(60_000, 1_800_000)).min(DAY_MS - 1);
        let principal = limit / 5 / 10_000 * 10_000;
        c.loans.push(Loan {
            principal,
            draw_day: c.turn_day,
            draw_ms,
            bootstrap: false,
            write_off_day: NO_DAY,
        });
        let dom = p.dom[((c.turn_day + 30).min(nd - 1)) as usize].min(28);
        schedules.push((dom, due_days(p, dom, c.turn_day + 20, term(&mut rng))));
    }
    for (k, (_, days)) in schedules.iter().enumerate() {
        let loan = &c.loans[k];
        let t = term(&mut rng).max(days.len() as u32) as u64;
        let amount = loan.principal.div_ceil(t) + loan.principal * apr_bps as u64 / 120_000;
        for (j, due) in days.iter().enumerate() {
            let publish = due
                .saturating_sub(10 + rng.below(3) as u32)
                .max(loan.draw_day);
            c.insts.push(Inst {
                loan: k as u8 + 1,
                no: j as u16 + 1,
                due_day: *due,
                publish_day: publish,
                amount,
                pays: [(NO_DAY, 0); 2],
                paid: 0,
            });
        }
    }
    c.insts.sort_by_key(|i| (i.due_day, i.loan));
    if arch == Archetype::Stretched {
        // A large carried revolving balance, heavy cash use and a high ceiling: utilisation
        // starts at 50–75 % and climbs to 85–92 %.
        let target = frac(&mut rng, 0.55, 0.75);
        let b0 = target.saturating_sub(p1 + p2).max(limit / 20);
        (c.b0, c.bal, c.rev) = (b0, b0, b0);
        c.cash_rate = rng.between(0.10, 0.18);
        c.cap_pct = rng.range(85, 92);
    }
    pay_plans(&mut c, p, &mut rng);
    oneoffs(&mut c, cust, p, &mut rng);
    // Written off at 121 days past due, where the period is long enough.
    for k in 0..c.loans.len() {
        let first_unpaid = c
            .insts
            .iter()
            .find(|i| i.loan as usize == k + 1 && i.completion_day().is_none());
        if let Some(i) = first_unpaid {
            if i.due_day + 121 < nd {
                c.loans[k].write_off_day = i.due_day + 121;
            }
        }
    }
    c
}
