//! A seeded random book over all four streams and a plain from-scratch recomputation of
//! every feature, written from the contracts and DESIGN.md, independent of the dataflow:
//! no slots, no temporal filters, no incremental state — just the event list.

use super::support::{Book, DAY, HOUR, START};
use riskwatch_model::config::{Config, Measure};
use riskwatch_model::event::Stream;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// SplitMix64.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    /// True with probability `p` percent.
    pub fn pct(&mut self, p: u64) -> bool {
        self.below(100) < p
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// One generated record, as the oracle sees it.
#[derive(Clone, Debug)]
pub enum Body {
    Txn {
        kind: &'static str,
        approved: bool,
        amount: u64,
        loan: Option<String>,
        merchant: Option<String>,
        device: Option<String>,
    },
    Beh {
        kind: &'static str,
        device: Option<String>,
        lender: Option<String>,
    },
    Due {
        loan: String,
        no: u32,
        due: u64,
        amount: u64,
    },
    Settled {
        loan: String,
    },
    WrittenOff {
        loan: String,
    },
    Cust {
        limit: u64,
        apr: u32,
        balance: Option<u64>,
    },
}

#[derive(Clone, Debug)]
pub struct Ev {
    pub stream: Stream,
    /// 1-based line in its file, assigned when the book is written.
    pub line: u64,
    pub id: String,
    pub customer: String,
    pub ts: u64,
    pub body: Body,
}

impl Ev {
    fn json(&self) -> Value {
        let mut v = match &self.body {
            Body::Txn {
                kind,
                approved,
                amount,
                loan,
                merchant,
                device,
            } => {
                let mut v = json!({"event_id": self.id, "type": kind, "amount": amount,
                    "status": if *approved { "approved" } else { "declined" }});
                if let Some(l) = loan {
                    v["loan_id"] = json!(l);
                }
                if let Some(m) = merchant {
                    v["merchant_id"] = json!(m);
                }
                if let Some(d) = device {
                    v["device_id"] = json!(d);
                }
                v
            }
            Body::Beh {
                kind,
                device,
                lender,
            } => {
                let mut v = json!({"event_id": self.id, "type": kind});
                if let Some(d) = device {
                    v["device_id"] = json!(d);
                }
                if let Some(l) = lender {
                    v["lender_id"] = json!(l);
                }
                v
            }
            Body::Due {
                loan,
                no,
                due,
                amount,
            } => json!({"event_id": self.id, "loan_id": loan, "type": "installment_due",
                        "installment_no": no, "due_ts": due, "amount": amount}),
            Body::Settled { loan } => {
                json!({"event_id": self.id, "loan_id": loan, "type": "settled"})
            }
            Body::WrittenOff { loan } => {
                json!({"event_id": self.id, "loan_id": loan, "type": "written_off"})
            }
            Body::Cust {
                limit,
                apr,
                balance,
            } => {
                let mut v = json!({"credit_limit": limit, "apr_bps": apr, "status": "active"});
                if let Some(b) = balance {
                    v["balance"] = json!(b);
                }
                v
            }
        };
        v["customer_id"] = json!(self.customer);
        v["ts"] = json!(self.ts);
        v
    }
}

const TXN_KINDS: [(&str, u64); 9] = [
    ("purchase", 40),
    ("cash_withdrawal", 10),
    ("transfer_out", 4),
    ("transfer_in", 4),
    ("salary_credit", 4),
    ("repayment", 16),
    ("refund", 5),
    ("drawdown", 4),
    ("fee", 6),
];

const BEH_KINDS: [(&str, u64); 12] = [
    ("login", 20),
    ("login_failed", 16),
    ("password_reset", 3),
    ("device_bound", 6),
    ("phone_changed", 5),
    ("contact_changed", 5),
    ("credit_inquiry", 12),
    ("app_open", 15),
    ("limit_viewed", 6),
    ("collection_contact", 4),
    ("promise_to_pay", 4),
    ("complaint", 3),
];

fn weighted(rng: &mut Rng, table: &[(&'static str, u64)]) -> &'static str {
    let total: u64 = table.iter().map(|(_, w)| w).sum();
    let mut x = rng.below(total);
    for (k, w) in table {
        if x < *w {
            return k;
        }
        x -= w;
    }
    unreachable!()
}

/// A time within `[from, to)`: often exactly on a tick, a granule or a day boundary, so
/// that insertions and expiries land on the edges the window rule is about.
fn random_ts(rng: &mut Rng, from: u64, to: u64) -> u64 {
    let t = from + rng.below(to - from);
    let t = match rng.below(8) {
        0 => t - t % 10,
        1 => t - t % 300_000,
        2 => t - t % 5_400_000,
        3 => t - t % 1_000,
        _ => t,
    };
    t.max(from)
}

/// A random book: `customers` customers over `days` days with every stream, repayments
/// with and without `loan_id`, re-published installments, settlements, write-offs, limit
/// changes and duplicates (same stream and event id, different content).
pub fn random_book(seed: u64, customers: usize, days: u64) -> (Book, Vec<Ev>) {
    let mut rng = Rng::new(seed);
    let end = START + days * DAY;
    let mut evs: Vec<Ev> = Vec::new();
    let mut next_id = 0u64;
    let mut id = |prefix: &str| {
        next_id += 1;
        format!("{prefix}{seed}-{next_id}")
    };
    let merchants: Vec<String> = (0..12).map(|i| format!("m{i}")).collect();
    let devices: Vec<String> = (0..6).map(|i| format!("d{i}")).collect();
    let lenders: Vec<String> = (0..7).map(|i| format!("lender{i}")).collect();
    for c in 0..customers {
        let cust = format!("K{seed}-{c}");
        let limit = 50_000 + rng.below(20) * 10_000;
        // Reference data: first record at the start (sometimes with a balance), a few
        // limit changes later (one customer never gets a record: limit 0, null
        // utilisation).
        if c != 1 {
            let t0 = START + rng.below(2 * HOUR);
            evs.push(Ev {
                stream: Stream::Customers,
                line: 0,
                id: String::new(),
                customer: cust.clone(),
                ts: t0,
                body: Body::Cust {
                    limit,
                    apr: 1200 + rng.below(1200) as u32,
                    balance: rng.pct(60).then(|| rng.below(20_000)),
                },
            });
            for _ in 0..rng.below(3) {
                evs.push(Ev {
                    stream: Stream::Customers,
                    line: 0,
                    id: String::new(),
                    customer: cust.clone(),
                    ts: random_ts(&mut rng, t0 + 1, end),
                    body: Body::Cust {
                        limit: if rng.pct(15) {
                            0
                        } else {
                            30_000 + rng.below(30) * 5_000
                        },
                        apr: 1000 + rng.below(1400) as u32,
                        balance: rng.pct(20).then(|| rng.below(30_000)),
                    },
                });
            }
        }
        // Loans: 1–3, monthly installments; some published after their due date, some
        // re-published with a new amount and due date, some settled or written off.
        let n_loans = 1 + rng.below(3);
        let mut loans: Vec<(String, u64)> = Vec::new();
        for l in 0..n_loans {
            let loan = format!("L{c}-{l}");
            let amount = 1_000 + rng.below(40) * 250;
            let first_due_day = 2 + rng.below(12);
            for no in 1..=(days / 20).max(3) as u32 {
                let due_day = first_due_day + (no as u64 - 1) * (10 + rng.below(20));
                let due = START + (due_day + 1) * DAY - 1;
                let publish = if rng.pct(10) {
                    due + 1 + rng.below(3 * DAY)
                } else {
                    due.saturating_sub((3 + rng.below(10)) * DAY).max(START)
                };
                if publish >= end {
                    continue;
                }
                evs.push(Ev {
                    stream: Stream::Loans,
                    line: 0,
                    id: id("L"),
                    customer: cust.clone(),
                    ts: random_ts(&mut rng, publish, (publish + HOUR).min(end)),
                    body: Body::Due {
                        loan: loan.clone(),
                        no,
                        due,
                        amount,
                    },
                });
                if rng.pct(12) {
                    let shift = rng.below(9) * DAY;
                    let again = publish + 1 + rng.below(5 * DAY);
                    if again < end {
                        evs.push(Ev {
                            stream: Stream::Loans,
                            line: 0,
                            id: id("L"),
                            customer: cust.clone(),
                            ts: again,
                            body: Body::Due {
                                loan: loan.clone(),
                                no,
                                due: due + shift,
                                amount: amount / 2 + rng.below(3) * 500,
                            },
                        });
                    }
                }
            }
            loans.push((loan.clone(), amount));
            if rng.pct(15) {
                evs.push(Ev {
                    stream: Stream::Loans,
                    line: 0,
                    id: id("L"),
                    customer: cust.clone(),
                    ts: random_ts(&mut rng, START + 10 * DAY, end),
                    body: Body::Settled { loan: loan.clone() },
                });
            } else if rng.pct(15) {
                evs.push(Ev {
                    stream: Stream::Loans,
                    line: 0,
                    id: id("L"),
                    customer: cust.clone(),
                    ts: random_ts(&mut rng, START + 10 * DAY, end),
                    body: Body::WrittenOff { loan: loan.clone() },
                });
            }
        }
        // Transactions.
        let n_txn = days * (3 + rng.below(5));
        for _ in 0..n_txn {
            let mut kind = weighted(&mut rng, &TXN_KINDS);
            // Every third customer never repays (and goes delinquent up to 90+), every
            // third repays a third as often as the rest.
            if kind == "repayment" && (c % 3 == 0 || (c % 3 == 2 && !rng.pct(33))) {
                kind = "purchase";
            }
            let approved = !rng.pct(12);
            let (amount, loan) = match kind {
                "repayment" => {
                    let (loan, inst) = rng.pick(&loans).clone();
                    if c % 3 == 2 {
                        // Small partial payments, mostly without a loan id: which
                        // installment they go to decides the oldest unpaid one.
                        (inst / 3 + rng.below(200), rng.pct(20).then_some(loan))
                    } else {
                        let amount = match rng.below(4) {
                            0 => inst,
                            1 => inst / 2,
                            2 => inst * 2 + 7,
                            _ => 1 + rng.below(3_000),
                        };
                        (amount, rng.pct(55).then_some(loan))
                    }
                }
                "drawdown" => (1_000 + rng.below(9_000), Some(rng.pick(&loans).0.clone())),
                "salary_credit" => (100_000 + rng.below(200_000), None),
                "fee" => (100 + rng.below(900), None),
                _ => (1 + rng.below(15_000), None),
            };
            evs.push(Ev {
                stream: Stream::Transactions,
                line: 0,
                id: id("T"),
                customer: cust.clone(),
                ts: random_ts(&mut rng, START, end),
                body: Body::Txn {
                    kind,
                    approved,
                    amount,
                    loan,
                    merchant: rng.pct(70).then(|| rng.pick(&merchants).clone()),
                    device: rng.pct(40).then(|| rng.pick(&devices).clone()),
                },
            });
        }
        // Behaviours, some in bursts (failed logins within minutes).
        let n_beh = days * (2 + rng.below(4));
        for _ in 0..n_beh {
            let kind = weighted(&mut rng, &BEH_KINDS);
            let ts = random_ts(&mut rng, START, end);
            let burst = if kind == "login_failed" && rng.pct(20) {
                4
            } else {
                1
            };
            for k in 0..burst {
                evs.push(Ev {
                    stream: Stream::Behaviors,
                    line: 0,
                    id: id("B"),
                    customer: cust.clone(),
                    ts: (ts + k * rng.below(120_000)).min(end - 1),
                    body: Body::Beh {
                        kind,
                        device: rng.pct(50).then(|| rng.pick(&devices).clone()),
                        lender: (kind == "credit_inquiry" && rng.pct(90))
                            .then(|| rng.pick(&lenders).clone()),
                    },
                });
            }
        }
    }
    // Duplicates: the same stream and event id again, up to two hours later, with
    // different content (the first copy must win).
    let originals: Vec<Ev> = evs
        .iter()
        .filter(|e| e.stream != Stream::Customers)
        .cloned()
        .collect();
    for e in originals {
        if !rng.pct(4) {
            continue;
        }
        let mut d = e.clone();
        d.ts = (e.ts + rng.below(2 * HOUR)).min(end - 1);
        match &mut d.body {
            Body::Txn { amount, .. } => *amount += 1 + rng.below(5_000),
            Body::Due { due, amount, .. } => {
                *due += DAY;
                *amount += 100;
            }
            Body::Beh { kind, .. } => *kind = "login_failed",
            _ => {}
        }
        evs.push(d);
    }
    // Each file sorted by time (ties in generation order), so that nothing is late.
    evs.sort_by_key(|e| (e.stream, e.ts));
    let mut book = Book::new();
    for e in evs.iter_mut() {
        e.line = book.record(e.stream, e.json());
    }
    (book, evs)
}

/// The events the pipeline must accept: the first copy of each (stream, event id), in
/// processing order (time, ts, stream, line); customers records have no event id.
pub fn accepted(evs: &[Ev], tick: u64) -> Vec<Ev> {
    let mut sorted: Vec<&Ev> = evs.iter().collect();
    sorted.sort_by_key(|e| (ceil(e.ts, tick), e.ts, e.stream, e.line));
    let mut seen = HashSet::new();
    sorted
        .into_iter()
        .filter(|e| e.id.is_empty() || seen.insert((e.stream, e.id.clone())))
        .cloned()
        .collect()
}

pub fn ceil(t: u64, g: u64) -> u64 {
    t.div_ceil(g) * g
}

fn measure(m: Measure, e: &Ev) -> i64 {
    match &e.body {
        Body::Txn {
            kind,
            approved,
            amount,
            ..
        } => {
            let a = *amount as i64;
            let ok = *approved;
            match m {
                Measure::Spend if ok && (*kind == "purchase" || *kind == "cash_withdrawal") => a,
                Measure::Cash if ok && *kind == "cash_withdrawal" => a,
                Measure::ApprovedCount if ok => 1,
                Measure::DeclinedCount if !ok => 1,
                Measure::Repayments if ok && *kind == "repayment" => 1,
                Measure::RepaymentAmount if ok && *kind == "repayment" => a,
                Measure::SalaryCredits if ok && *kind == "salary_credit" => 1,
                Measure::SalaryAmount if ok && *kind == "salary_credit" => a,
                Measure::Drawdowns if ok && *kind == "drawdown" => 1,
                _ => 0,
            }
        }
        Body::Beh { kind, .. } => match (m, *kind) {
            (Measure::FailedLogins, "login_failed")
            | (Measure::PhoneChanges, "phone_changed")
            | (Measure::ContactChanges, "contact_changed")
            | (Measure::DeviceChanges, "device_bound")
            | (Measure::Inquiries, "credit_inquiry") => 1,
            _ => 0,
        },
        _ => 0,
    }
}

fn distinct_id(m: Measure, e: &Ev) -> Option<&str> {
    match (&e.body, m) {
        (Body::Txn { merchant, .. }, Measure::DistinctMerchants) => merchant.as_deref(),
        (Body::Txn { device, .. }, Measure::DistinctDevices) => device.as_deref(),
        (Body::Beh { device, .. }, Measure::DistinctDevices) => device.as_deref(),
        (Body::Beh { kind, lender, .. }, Measure::DistinctLenders) if *kind == "credit_inquiry" => {
            lender.as_deref()
        }
        _ => None,
    }
}

#[derive(Clone, Debug, Default)]
struct Inst {
    no: u32,
    due: u64,
    amount: u64,
    paid: u64,
}

#[derive(Clone, Debug, Default)]
struct LoanState {
    insts: Vec<Inst>,
    settled: bool,
    credit: u64,
}

/// The account rules of the contracts, applied event by event.
#[derive(Clone, Debug, Default)]
pub struct Account {
    pub balance: u64,
    pub limit: u64,
    pub apr: u32,
    loans: BTreeMap<String, LoanState>,
    credit: u64,
}

impl Account {
    pub fn apply(&mut self, e: &Ev) {
        match &e.body {
            Body::Cust {
                limit,
                apr,
                balance,
            } => {
                self.limit = *limit;
                self.apr = *apr;
                if let Some(b) = balance {
                    self.balance = *b;
                }
            }
            Body::Txn {
                kind,
                approved: true,
                amount,
                loan,
                ..
            } => match *kind {
                "purchase" | "cash_withdrawal" | "drawdown" | "fee" => self.balance += amount,
                "refund" => self.balance = self.balance.saturating_sub(*amount),
                "repayment" => {
                    self.balance = self.balance.saturating_sub(*amount);
                    self.repay(loan.as_deref(), *amount);
                }
                _ => {}
            },
            Body::Txn { .. } | Body::Beh { .. } | Body::WrittenOff { .. } => {}
            Body::Due {
                loan,
                no,
                due,
                amount,
            } => {
                let l = self.loans.entry(loan.clone()).or_default();
                if l.settled {
                    return;
                }
                let i = match l.insts.iter().position(|i| i.no == *no) {
                    Some(i) => {
                        let inst = &mut l.insts[i];
                        inst.due = *due;
                        inst.amount = *amount;
                        if inst.paid > inst.amount {
                            l.credit += inst.paid - inst.amount;
                            inst.paid = inst.amount;
                        }
                        i
                    }
                    None => {
                        l.insts.push(Inst {
                            no: *no,
                            due: *due,
                            amount: *amount,
                            paid: 0,
                        });
                        l.insts.len() - 1
                    }
                };
                let inst = &mut l.insts[i];
                let x = (inst.amount - inst.paid).min(l.credit);
                inst.paid += x;
                l.credit -= x;
                let y = (inst.amount - inst.paid).min(self.credit);
                inst.paid += y;
                self.credit -= y;
            }
            Body::Settled { loan } => {
                let l = self.loans.entry(loan.clone()).or_default();
                l.settled = true;
                for i in l.insts.iter_mut() {
                    i.paid = i.amount;
                }
            }
        }
    }

    fn repay(&mut self, loan: Option<&str>, mut amount: u64) {
        match loan {
            Some(id) => {
                let l = self.loans.entry(id.to_string()).or_default();
                if !l.settled {
                    let mut order: Vec<usize> = (0..l.insts.len()).collect();
                    order.sort_by_key(|&i| (l.insts[i].due, l.insts[i].no));
                    for i in order {
                        let inst = &mut l.insts[i];
                        let pay = (inst.amount - inst.paid).min(amount);
                        inst.paid += pay;
                        amount -= pay;
                    }
                }
                l.credit += amount;
            }
            None => {
                loop {
                    // The oldest unpaid installment across loans, by (due_ts, loan_id).
                    let best = self
                        .loans
                        .iter()
                        .filter(|(_, l)| !l.settled)
                        .flat_map(|(id, l)| {
                            l.insts
                                .iter()
                                .enumerate()
                                .filter(|(_, i)| i.paid < i.amount)
                                .map(move |(k, i)| (i.due, id.clone(), i.no, k))
                        })
                        .min();
                    let Some((_, id, _, k)) = best else { break };
                    if amount == 0 {
                        break;
                    }
                    let inst = &mut self.loans.get_mut(&id).expect("loan").insts[k];
                    let pay = (inst.amount - inst.paid).min(amount);
                    inst.paid += pay;
                    amount -= pay;
                }
                self.credit += amount;
            }
        }
    }

    /// `due_ts` of the oldest unpaid installment of a loan that is not settled.
    pub fn oldest_due(&self) -> Option<u64> {
        self.loans
            .values()
            .filter(|l| !l.settled)
            .flat_map(|l| l.insts.iter().filter(|i| i.paid < i.amount).map(|i| i.due))
            .min()
    }

    /// Every `due_ts` any installment of this account has had.
    pub fn dues(&self) -> Vec<u64> {
        self.loans
            .values()
            .flat_map(|l| l.insts.iter().map(|i| i.due))
            .collect()
    }
}

/// Days past due (loan.schema.json).
pub fn dpd(due: u64, t: u64) -> u64 {
    if t <= due {
        0
    } else {
        (t - due).div_ceil(DAY)
    }
}

/// The recomputation of one customer's features, from its accepted events.
pub struct Oracle<'a> {
    config: &'a Config,
    tick: u64,
    events: Vec<&'a Ev>,
}

impl<'a> Oracle<'a> {
    pub fn new(config: &'a Config, accepted: &'a [Ev], customer: &str) -> Oracle<'a> {
        Oracle {
            config,
            tick: config.time.tick.ms(),
            events: accepted.iter().filter(|e| e.customer == customer).collect(),
        }
    }

    /// Every feature by name at time `t` (a tick).
    pub fn features(&self, t: u64) -> BTreeMap<String, Option<f64>> {
        let mut out = BTreeMap::new();
        let mut acct = Account::default();
        for e in self.events.iter().filter(|e| ceil(e.ts, self.tick) <= t) {
            acct.apply(e);
        }
        let oldest = acct.oldest_due();
        let n = |x: u64| Some(x as f64);
        out.insert("balance".into(), n(acct.balance));
        out.insert("credit_limit".into(), n(acct.limit));
        out.insert(
            "utilisation".into(),
            (acct.limit > 0).then(|| acct.balance as f64 / acct.limit as f64),
        );
        out.insert("apr_bps".into(), n(acct.apr as u64));
        let d = oldest.map_or(0, |due| dpd(due, t));
        out.insert("dpd".into(), n(d));
        let bucket = match d {
            0 => 0,
            1..=30 => 1,
            31..=60 => 2,
            _ => 3,
        };
        out.insert("bucket".into(), n(bucket));
        out.insert("dpd_90_plus".into(), n((d >= 91) as u64));
        for w in &self.config.windows {
            let (len, g) = (w.length.ms(), w.granularity.ms());
            let live: Vec<&&Ev> = self
                .events
                .iter()
                .filter(|e| ceil(e.ts, self.tick) <= t && t < ceil(e.ts + len, g))
                .collect();
            let sum = |m: Measure| live.iter().map(|e| measure(m, e)).sum::<i64>();
            let distinct = |m: Measure| {
                live.iter()
                    .filter_map(|e| distinct_id(m, e))
                    .collect::<BTreeSet<_>>()
                    .len() as i64
            };
            for m in &w.features {
                let v = match m {
                    Measure::CashRatio => {
                        let spend = sum(Measure::Spend);
                        (spend != 0).then(|| sum(Measure::Cash) as f64 / spend as f64)
                    }
                    Measure::IdentityChanges => Some(
                        (sum(Measure::PhoneChanges)
                            + sum(Measure::ContactChanges)
                            + sum(Measure::DeviceChanges)) as f64,
                    ),
                    Measure::DistinctMerchants
                    | Measure::DistinctDevices
                    | Measure::DistinctLenders => Some(distinct(*m) as f64),
                    m => Some(sum(*m) as f64),
                };
                out.insert(format!("{}_{}", m.name(), w.name), v);
            }
        }
        out
    }

    /// Every time at which this customer's state (features other than the daily `dpd`
    /// count) can change: insertions, window expiries, DPD boundaries of any due date.
    pub fn candidate_times(&self) -> Vec<u64> {
        let mut times = BTreeSet::new();
        let mut acct = Account::default();
        for e in &self.events {
            times.insert(ceil(e.ts, self.tick));
            for w in &self.config.windows {
                times.insert(ceil(e.ts + w.length.ms(), w.granularity.ms()));
            }
            acct.apply(e);
            for due in acct.dues() {
                for k in 0..4 {
                    times.insert(ceil(due + k * 30 * DAY + 1, self.tick));
                }
            }
        }
        times.into_iter().collect()
    }
}
