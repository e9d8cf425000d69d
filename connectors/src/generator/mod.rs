//! Synthetic loan book: a deterministic generator of the four input streams
//! (transactions, behaviors, loans, customers) plus the ground truth, for tests, demos,
//! replays and tuning a detection strategy.
//!
//! ```text
//! GenConfig ─► archetypes::build (plans: limit, loans, schedule, payment plan, story days)
//!           ─► for each UTC day: day::simulate per customer (N threads) ─► sort by
//!              (ts, customer, seq) ─► writer thread renders NDJSON ─► 4 event files
//!           ─► truth.ndjson (from the repayments actually emitted)
//! ```
//!
//! [`generate`] writes `transactions.ndjson`, `behaviors.ndjson`, `loans.ndjson`,
//! `customers.ndjson` (each sorted by `ts`; ties by customer number, then generation
//! order) and `truth.ndjson` (`{customer_id, archetype, defaults_at, ring_id}` per
//! customer). All randomness is the module's own SplitMix64, keyed by (seed, customer,
//! day), and only IEEE `+ - * /` is used on floats, so the same [`GenConfig`] gives
//! byte-identical files on any machine and with any number of threads. 100,000 customers ×
//! 90 days (14.7 M events, 2.4 GB) take about 5–10 s in release mode on 2 cores; memory is
//! one day of events plus a few hundred bytes per customer.
//!
//! # Identifiers, money, time
//! - Customers `C0000042` (7 digits, more for books over 10 M); installment loans
//!   `L0000042-1`, `-2` (and `-3`, a fraud ring's fresh loan); the revolving line
//!   `L0000042-R`. Event ids `T000000001`, `B…`, `L…`: the line number in the file.
//! - `device_id` (`d` + 16 hex), `phone_hash` (16 hex) and non-hub `ip` values are bijective
//!   images of (customer, slot) or (ring, slot) codes: a customer outside a ring never
//!   shares one with anybody. Rings use IPs in 45.0.0.0/8; hub IPs are `223.104.x.y`.
//! - Money in fen. Limits 5k–10k CNY (40 %, segment `mass`), 10k–30k (40 %, `standard`),
//!   30k–80k (20 %, `premium`); APR 1200–2400 bps by segment.
//! - Days are UTC days from the day of `start_ms`; a due date's `due_ts` is its last
//!   millisecond. Times of day follow an activity profile peaking 19:00–21:00; salaries
//!   arrive 01:00–06:00, schedule events are published 01:00–03:00, auto-debits run
//!   06:00–09:00, collection contacts 09:00–20:00.
//!
//! # The book at the start and everyone's routine
//! - `customers.ndjson`: one record per customer at `start_ms` (limit, APR, product
//!   `revolving`, segment, `active`, `opened_at` 60–1,500 days before (rings 20–200),
//!   own `phone_hash`, `balance` = revolving balance of 2–10 % of the limit). Later
//!   records (no `balance`) raise the limit: 2 % of healthy customers (+20 %, second
//!   half of the period) and 30 % of bust-outs (+20–50 %, 5–20 days before the bust).
//! - Loans: loan 1 (12–28 % of the limit) for everyone, loan 2 (8–15 %) for 45 %, both
//!   drawn by a `drawdown` at exactly `start_ms` (so `balance` excludes them); terms 6, 12
//!   or 24 months, never ending inside the period; installment = principal / term +
//!   monthly interest. Each loan falls due monthly on a fixed day of month (1–28), first
//!   on day 10 or later; `installment_due` is published 10–12 days before `due_ts`.
//!   Repayments carry the loan id (40 % auto-debit, else in the app after a login).
//! - Revolving line: repayments carry `L…-R`, which has no schedule, so they never count
//!   against installments. Healthy customers pay, 2 days after payday, everything above
//!   their starting balance; "minimum" is 10 % of the revolving balance (≥ 50 CNY).
//! - Utilisation = drawn balance ÷ limit with the contract's balance semantics; healthy
//!   customers (and everyone before their turn) skip a purchase or withdrawal that would
//!   take it above 55 %, so healthy utilisation stays below 60 % (typically 25–45 %).
//! - Spending: purchases at 0.3–0.7/day (monthly spend 4–9 % of the limit, lognormal-like
//!   amounts), 80 % at 3–8 favourite merchants (8,000 merchants, 16 MCCs), channel pos
//!   55 % / online 25 % / app 20 % (online and app carry `device_id` and `ip`); 1.5 % of
//!   purchases declined at random, more when the limit is hit; refunds at 2 % of the
//!   purchase rate; cash withdrawals (`atm`, MCC 6011) at 0.06/day for 12 % of customers,
//!   0.004/day for the rest, each followed by a 1 % fee (≥ 10 CNY); a late fee (5 % of the
//!   installment, ≥ 20 CNY) the day after an installment is not fully paid by `due_ts`.
//! - Income: 92 % (rings 60 %) get a monthly `salary_credit` of 35–80 % of the limit on
//!   day 1, 5, 10, 15, 20 or 25; the rest get irregular `transfer_in` (0.1/day).
//! - Behaviour per day: `app_open` 0.55, `login` 0.25 (3 % preceded by `login_failed`),
//!   `limit_viewed` 0.07 (3 % at night); 70 % use one device, 30 % two; IP home 60 %,
//!   mobile 40 %. Carrier-NAT hubs: `customers / 12,500` hub IPs (1–64); 3 % of healthy
//!   customers use one as their mobile IP, so each hub has hundreds of unrelated healthy
//!   users in a 100k book.
//! - Collection contacts (`collection_contact`, attrs channel `sms`, `call` past DPD 10)
//!   every 4 days from DPD 2 while an installment is overdue.
//! - Events per customer per month: about 49 in all (20 transactions, 27 behaviours,
//!   1.4 loan events, 0.03 customers records).
//!
//! # Profiles
//! A profile is a named archetype mix ([`Profile`], `riskwatch gen --profile`); everything
//! else about the book is the same in both.
//!
//! | archetype | `default` | `hard` |
//! |---|---|---|
//! | healthy | 86 % | 58 % |
//! | deteriorating | 6 % | 4 % |
//! | bust_out | 3 % | 2.5 % |
//! | fraud_ring | 3 % | 2.5 % |
//! | cured | 2 % | 12 % |
//! | silent_defaulter | — | 4 % |
//! | stretched | — | 12 % |
//! | cured_twice | — | 5 % |
//!
//! `default` is the book as it was before profiles existed, byte for byte (the tests hold
//! hashes of two default books): 12 % defaulters, every one with behavioural warnings before
//! its default, so the default strategy finds all of them. `hard` is what a real book makes
//! hard: 13 % defaulters of which 31 % are silent (no warning before the missed
//! installment); 12 % stretched customers who look stressed (utilisation 85–92 %, cash,
//! three or more lenders in 30 days) but never default; and 17 % who miss one or two
//! installments and then pay everything (plus the healthy customers' 3 % late noise). The
//! shares are exact up to rounding (counts are `round(customers × share)`).
//!
//! # Archetypes
//! Below, F is `defaults_at`'s day: the due day of the first installment never fully paid.
//!
//! **healthy** — the routine above; every installment paid in full 0–5 days before or on
//! its due day. Noise: 3 % of them pay one installment 1–3 days late (then a late fee and
//! perhaps a collection contact at DPD 2; `defaults_at` stays null); 4 % get one
//! `credit_inquiry`; 3 % bind a new device, 1 % change a contact, 0.5 % the phone, 1 %
//! reset the password; 3 % have a burst of 3 failed logins; 1.5 % of purchases declined.
//!
//! **deteriorating** — F is a due day of loan 1 in days 40 … days−31 (so ≥ 30 days of
//! delinquency are in the file), and the decline starts on day s with F − s = 40–60 days
//! and s in the first half of the period (for 90 days: F in 40–59, s in 0–19). With
//! progress x = (d − s)/(F − s) from 0 to 1:
//! - from s: no more 55 % restraint; purchases ×(1 + 0.5x) in count and size; cash
//!   withdrawals +0.05 + 0.35x per day, amounts ×(1 + x); revolving repayments drop to the
//!   minimum; salary falls to 60 % and stops 0–10 days after s; limit views 0.07 + 0.4x
//!   per day, 30 % of them at night; failed logins before 3 % + 15x % of logins.
//!   Utilisation goes from about 0.3 to 0.5 at F−30, 0.65 at F−20, 0.8 at F−10, and
//!   declines grow as it reaches the limit.
//! - 4–8 `credit_inquiry` from 3–6 distinct lenders within s+3 … s+33 (≥ 3 lenders in
//!   30 days); 40 % change the phone and 50 % one or two contacts (s+10 … F+10), 30 %
//!   reset the password, 15 % bind a device.
//! - Installments due in s … F−36 are paid on the due day; those due in F−35 … F−1 half
//!   on the due day and half 1–6 days late (a short DPD before the default).
//! - From F nothing is repaid on any loan: DPD reaches M1 at F, M2 at F+30, M3+ at F+60
//!   (so in a 90-day book M2 at most; M3+ needs ≥ 101 days). Spending falls (purchases
//!   ×0.4, mostly declined), 50 % make a broken `promise_to_pay` 5–15 days after F.
//!
//! **bust_out** — normal (with restraint) until bust day b in 7 … days−50 (at 08:00–22:00).
//! 50 % get 2–5 inquiries from distinct lenders in b−10 … b; 30 % get a limit increase
//! 5–20 days before b. On day b: `device_bound` with a new own device and IP, a login and
//! 2–4 limit views, then within 6 hours 4–8 purchases of high-value goods (MCC 5732,
//! 5944, 5947, 5045; online, on the new device) and 1–3 cash withdrawals, each for 25–60
//! % (cash 20–50 %) of the remaining headroom (at least 300 CNY, so the last ones are
//! declined); 2–5 purchases and 0–2 withdrawals more on each of days b+1 and b+2. From b
//! no repayment and no salary; F is the first due day on or after b (0–31 days later);
//! afterwards a trickle of declined attempts and collection contacts.
//!
//! **fraud_ring** — rings of 4–12 members; each ring has 1–3 shared devices, 1–2 shared IPs
//! and 1–2 shared phones. Before the bust 25 % of a member's sessions use the ring's device
//! and IP, and 70 % set a ring phone as `contact_changed`; 50 % get 1–3 inquiries in the 7
//! days before the bust. The ring's bust starts on a day in 7 … days−50; each member's
//! bust starts 0–36 h after the ring's moment: `device_bound` of a ring device from the
//! ring's first IP (so every member shares an IP with every other), a `drawdown` of a
//! fresh loan (`-3`, 20 % of the limit) minutes later, then the bust-out pattern for two
//! days. F is the member's first due day on or after its bust day. Accounts are young
//! (opened 20–200 days before the start).
//!
//! **cured** — one installment of loan 1 due on day M (14 … days−21) is missed, and every
//! installment due in M … C−1 is paid in full on day C = M + 5–20. From M−10 to C:
//! no salary (it arrives on C−1), cash +0.08/day, limit views ×3, minimum revolving
//! payments, 30 % one inquiry; a late fee, collection contacts from DPD 2 and a
//! `promise_to_pay` 1–2 days before C; then back to normal. `defaults_at` is null.
//!
//! **cured_twice** (hard profile) — as cured, but two consecutive installments of loan 1
//! are missed (the first due on day M ≥ 14, the second on M′ with M′ + 18 ≤ days), and
//! every installment due in M … C−1 is paid on C = M′ + 3–15, so DPD passes 30 (M2) before
//! the cure. A broken `promise_to_pay` at M + 7–12, a kept one 1–2 days before C; the
//! distress of cured runs from M−10 to C. Falls back to one miss when the period has no
//! room for two. `defaults_at` is null.
//!
//! **silent_defaulter** (hard profile) — healthy until F, a due day of any loan in 30 …
//! days−15 (in a period too short for that, in its second half): utilisation restrained
//! below 55 %, the same cash, spending, income and session rates, every installment before
//! F paid 0–5 days early, the healthy noise (4 % one inquiry, failed-login bursts, password
//! resets, 2 % a limit raise before F) but no device, phone or contact change. From F nothing
//! is repaid on any loan or the revolving line, salary stops, and activity falls to a
//! trickle (purchases ×0.2, no cash, app opens 0.1/day); collection contacts follow as for
//! any overdue installment. `defaults_at` is exactly F's `due_ts`.
//!
//! **stretched** (hard profile) — stressed but healthy, the false-positive bait: starts at
//! 55–75 % utilisation (a carried revolving balance of at least 5 % of the limit on top of
//! the loans), pays only the revolving minimum, and restrains spending at 85–92 % instead
//! of 55 %, so utilisation climbs there and stays; purchases ×1.2, cash withdrawals at
//! 0.10–0.18/day, limit views 0.15/day (8 % at night); 3–6 `credit_inquiry` from 3–5
//! distinct lenders within 20 days (40 % one or two more on other days), plus the healthy
//! noise. Every installment is paid in full on its due day or the day before: it never
//! misses and `defaults_at` is null.
//!
//! Loans whose first never-paid installment reaches DPD 121 within the period get a
//! `written_off` event that day (none in a 90-day book for deteriorating customers).

mod archetypes;
mod balance;
mod config;
mod day;
mod period;
mod phase;
mod records;
mod rng;
mod story;
mod writer;

#[cfg(test)]
mod profile_tests;
#[cfg(test)]
mod tests;

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::mpsc;
use std::thread;

pub use config::{
    Archetype, ArchetypeMix, GenConfig, Profile, DAY_MS, DEFAULT_START_MS, MAX_CUSTOMERS,
};

use archetypes::Customer;
use balance::Scratch;
use period::Period;
use records::DayBufs;
use writer::{Files, Render};

/// What [`generate`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenSummary {
    /// Number of customers (lines of `customers.ndjson` at `start_ms`, and of `truth.ndjson`).
    pub customers: u64,
    /// Lines written per stream: transactions, behaviors, loans, customers.
    pub events_per_stream: [u64; 4],
    /// Customers per archetype, in the order of [`Archetype::ALL`].
    pub by_archetype: Vec<(String, u64)>,
}

/// Generates a book into `out_dir` (created if missing): `transactions.ndjson`,
/// `behaviors.ndjson`, `loans.ndjson`, `customers.ndjson` (each sorted by `ts`, ties by
/// customer, then generation order) and `truth.ndjson` (one line per customer, by id).
///
/// Deterministic: the same config gives byte-identical files, whatever the number of
/// threads. Memory is bounded by one day of events plus a few hundred bytes per customer.
/// An invalid config is an `InvalidInput` error; write failures are passed on.
pub fn generate(cfg: &GenConfig, out_dir: &Path) -> io::Result<GenSummary> {
    let threads = thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    generate_with_threads(cfg, out_dir, threads)
}

/// [`generate`] with `threads` simulation threads (output is the same for any count).
pub(crate) fn generate_with_threads(
    cfg: &GenConfig,
    out_dir: &Path,
    threads: usize,
) -> io::Result<GenSummary> {
    cfg.validate()?;
    std::fs::create_dir_all(out_dir)?;
    let period = Period::new(cfg);
    let mut customers = archetypes::build(cfg, &period);
    let files = Files::create(out_dir)?;
    let n = customers.len();
    let chunk = n.div_ceil(threads.max(1)).max(1);
    let mut workers: Vec<(Scratch, DayBufs)> =
        (0..n.div_ceil(chunk)).map(|_| Default::default()).collect();

    // Simulation on this thread (fanned out per day), rendering on a writer thread; days
    // flow through a bounded channel and their buffers come back for reuse.
    let (to_writer, from_sim) = mpsc::sync_channel::<DayBufs>(2);
    let (to_sim, recycled) = mpsc::channel::<DayBufs>();
    let seed = cfg.seed;
    let customers_total = cfg.customers;
    let counts = thread::scope(|scope| -> io::Result<[u64; 4]> {
        let writer = scope.spawn(move || -> io::Result<[u64; 4]> {
            let mut files = files;
            let mut render = Render::new(seed, customers_total);
            for day in from_sim {
                files.write_day(&mut render, &day)?;
                let _ = to_sim.send(day);
            }
            files.finish()
        });
        for d in 0..period.days {
            let p = &period;
            thread::scope(|inner| {
                for (k, (part, (scratch, buf))) in customers
                    .chunks_mut(chunk)
                    .zip(workers.iter_mut())
                    .enumerate()
                {
                    inner.spawn(move || {
                        for (j, c) in part.iter_mut().enumerate() {
                            let cust = (k * chunk + j) as u32;
                            day::simulate(c, cust, d, p, seed, scratch, buf);
                        }
                    });
                }
            });
            let mut day = recycled.try_recv().unwrap_or_default();
            day.clear();
            for (_, buf) in workers.iter_mut() {
                day.append(buf);
            }
            day.sort();
            if to_writer.send(day).is_err() {
                break; // the writer failed; its error is returned below
            }
        }
        drop(to_writer);
        writer.join().expect("the writer thread does not panic")
    })?;

    write_truth(cfg, &period, &customers, out_dir)?;
    let by_archetype = Archetype::ALL
        .iter()
        .map(|a| {
            let count = customers.iter().filter(|c| c.arch == *a).count() as u64;
            (a.name().to_string(), count)
        })
        .collect();
    Ok(GenSummary {
        customers: cfg.customers,
        events_per_stream: counts,
        by_archetype,
    })
}

/// Writes `truth.ndjson`: `defaults_at` is the earliest due timestamp among installments
/// whose emitted repayments fall short of their amount.
fn write_truth(cfg: &GenConfig, p: &Period, customers: &[Customer], dir: &Path) -> io::Result<()> {
    let mut out = BufWriter::with_capacity(1 << 20, File::create(dir.join("truth.ndjson"))?);
    let mut render = Render::new(cfg.seed, cfg.customers);
    for (i, c) in customers.iter().enumerate() {
        let defaults_at = c
            .insts
            .iter()
            .filter(|inst| inst.paid < inst.amount)
            .map(|inst| p.due_ts(inst.due_day))
            .min();
        render.truth(i as u32, c, defaults_at);
        render.flush_to(&mut out, 1 << 20)?;
    }
    render.flush_to(&mut out, 0)?;
    out.flush()
}
