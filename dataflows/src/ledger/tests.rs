//! Unit tests of the ledger: the one DPD computation and the agreement it gives between
//! the features and the collection cases, and sums that saturate instead of wrapping.

use super::*;
use crate::cases::{dpd_stage, loan_delinquency, CaseInput};
use riskwatch_model::config::Config;
use riskwatch_model::event::{id_hash, LoanEvent};
use riskwatch_model::output::CaseStage;

const DAY: u64 = MS_PER_DAY;
const TICK: u64 = 10;

/// Records what the ledger emits; only wake-ups are inspected.
#[derive(Default)]
struct Sink {
    wakes: Vec<(u64, isize)>,
}

impl LedgerSink for Sink {
    fn sum(&mut self, _: u64, _: Slots) {}
    fn retract_sum(&mut self, _: u8, _: u64, _: Slots) {}
    fn distinct(&mut self, _: u64, _: u8, _: u64) {}
    fn retract_distinct(&mut self, _: u64, _: u8, _: u64) {}
    fn wake(&mut self, time: u64, diff: isize) {
        self.wakes.push((time, diff));
    }
    fn expired_on_arrival(&mut self) {}
}

fn event(ts: u64, id: &str, body: Body) -> Event {
    Event {
        ts,
        seq: 0,
        key: id_hash("C1"),
        customer_id: "C1".into(),
        event_id: id_hash(id),
        body,
    }
}

fn due(ts: u64, loan: &str, no: u32, due_ts: u64, amount: u64) -> Event {
    event(
        ts,
        &format!("{loan}-{no}-{ts}"),
        Body::Loan(LoanEvent {
            kind: LoanKind::InstallmentDue,
            loan_id: loan.into(),
            installment_no: no,
            due_ts,
            amount,
        }),
    )
}

fn repayment(ts: u64, amount: u64) -> Event {
    event(
        ts,
        &format!("R-{ts}-{amount}"),
        Body::Transaction(Transaction {
            kind: TxnKind::Repayment,
            approved: true,
            amount,
            loan_id: None,
            merchant: 0,
            device: 0,
            ip: 0,
        }),
    )
}

/// A ledger with `events` applied at their ticks and settled after each.
fn ledger_of(events: &[Event], layout: &Layout, sink: &mut Sink) -> (Ledger, Schedule) {
    let mut ledger = Ledger::new("C1".into());
    let mut schedule = Schedule::default();
    for e in events {
        let time = ceil_to(e.ts, TICK);
        ledger.apply(e, time, layout, sink);
        ledger.settle(time, TICK, &[], sink);
        if let Some(s) = ledger.take_schedule_change() {
            schedule = s;
        }
    }
    (ledger, schedule)
}

/// `(dpd, bucket, dpd_90_plus)` as the evaluator's features read them at `t`.
fn feature_dpd(layout: &Layout, account: &Account, t: u64) -> (u64, u64, u64) {
    let mut values = Vec::new();
    crate::evaluate::features(layout, &Slots::ZERO, account, None, t, &mut values);
    let v = |name: &str| values[layout.feature(name).expect("an account feature")];
    let n = |name: &str| v(name).expect("account features are never null") as u64;
    (n("dpd"), n("bucket"), n("dpd_90_plus"))
}

/// Regression: an installment with `due_ts` 0 opened a case at M3+ with DPD 20,468 while
/// the features said DPD 0, bucket 0 (0 also meant "nothing unpaid"). The ledger now holds
/// such a due date as 1 ms, and the features and the cases read the same DPD.
#[test]
fn installment_due_at_0_gives_features_and_cases_the_same_dpd() {
    let layout = Layout::new(&Config::default()).expect("default layout");
    let mut sink = Sink::default();
    let ts = 1_768_435_200_000; // 2026-01-15T00:00:00Z
    let (ledger, schedule) = ledger_of(&[due(ts, "L1", 1, 0, 5_000)], &layout, &mut sink);
    let account = ledger.account();
    assert_eq!(account.oldest_due, MIN_DUE_TS);
    assert_eq!(account.oldest_unpaid_due(), Some(1));
    assert_eq!(schedule.oldest_due(), Some(1));
    for t in [ts, ts + DAY, ts + 5 * DAY + 7] {
        let dpd = days_past_due(1, t);
        assert!(dpd > 20_000, "{dpd}");
        assert_eq!(feature_dpd(&layout, account, t), (dpd, 3, 1));
        let input = CaseInput::from_schedule(&schedule, t);
        assert_eq!(input.dpd, dpd);
        assert_eq!(input.overdue_amount, 5_000);
        assert_eq!(dpd_stage(input.dpd), Some(CaseStage::M3Plus));
        assert_eq!(account.dpd_at(t), dpd);
        assert_eq!(account.bucket_at(t), 3);
        assert!(account.dpd_90_plus_at(t));
    }
    // Every boundary has passed: no wake-up is pending.
    assert_eq!(sink.wakes, []);
}

#[test]
fn installment_due_100_days_before_its_publication_is_m3_plus_on_both_sides() {
    let layout = Layout::new(&Config::default()).expect("default layout");
    let mut sink = Sink::default();
    let ts = 1_768_435_200_000;
    let (ledger, schedule) = ledger_of(
        &[due(ts, "L1", 1, ts - 100 * DAY, 5_000)],
        &layout,
        &mut sink,
    );
    assert_eq!(feature_dpd(&layout, ledger.account(), ts), (100, 3, 1));
    let input = CaseInput::from_schedule(&schedule, ts);
    assert_eq!((input.dpd, input.overdue_amount), (100, 5_000));
    assert_eq!(dpd_stage(input.dpd), Some(CaseStage::M3Plus));
    let mut loans = Vec::new();
    loan_delinquency(&schedule, ts, &mut loans);
    assert_eq!(loans.len(), 1);
    assert_eq!((loans[0].dpd, loans[0].overdue_amount), (100, 5_000));
    assert_eq!(sink.wakes, []);
}

#[test]
fn features_cases_and_wakeups_agree_at_every_dpd_boundary() {
    let layout = Layout::new(&Config::default()).expect("default layout");
    for due_ts in [1, 10 * DAY - 1, 1_768_521_599_999, 1_768_435_200_004] {
        let account = Account {
            oldest_due: due_ts,
            ..Account::default()
        };
        let schedule = Schedule {
            loans: vec![LoanSchedule {
                loan_id: "L1".into(),
                written_off: false,
                unpaid: vec![(due_ts, 100)],
            }],
        };
        for (k, at) in DPD_BOUNDARIES.into_iter().zip(dpd_boundaries(due_ts)) {
            assert_eq!(at, dpd_reached_at(due_ts, k));
            for (t, dpd) in [(at - 1, k - 1), (at, k)] {
                let b = bucket_of(dpd);
                let flag = u64::from(dpd >= DPD_90_PLUS);
                assert_eq!(
                    feature_dpd(&layout, &account, t),
                    (dpd, u64::from(b), flag),
                    "due {due_ts}, t {t}"
                );
                assert_eq!(bucket(due_ts, t), b);
                assert_eq!(CaseInput::from_schedule(&schedule, t).dpd, dpd);
                assert_eq!(
                    dpd_stage(dpd).map(|s| s as u8),
                    (b > 0).then_some(b),
                    "a case's stage is its bucket"
                );
            }
        }
    }
    // Nothing unpaid: DPD 0 everywhere.
    assert_eq!(
        feature_dpd(&layout, &Account::default(), 5 * DAY),
        (0, 0, 0)
    );
    assert_eq!(Schedule::default().dpd_at(5 * DAY), 0);
    assert_eq!(bucket(0, 5 * DAY), 0);
    // Far-future due dates saturate instead of wrapping.
    assert_eq!(dpd_reached_at(u64::MAX - 5, 91), u64::MAX);
}

/// Regression: installments of `u64::MAX` (which decode now rejects) summed to a wrapped
/// `overdue_amount` in case events and a wrapped `unpaid` in the account.
#[test]
fn installments_of_u64_max_saturate_overdue_and_unpaid_instead_of_wrapping() {
    let layout = Layout::new(&Config::default()).expect("default layout");
    let mut sink = Sink::default();
    let ts = 1_768_435_200_000;
    let (ledger, schedule) = ledger_of(
        &[
            due(ts, "L1", 1, ts + DAY, u64::MAX),
            due(ts, "L1", 2, ts + 2 * DAY, u64::MAX),
            due(ts, "L2", 1, ts + 2 * DAY, 7),
        ],
        &layout,
        &mut sink,
    );
    assert_eq!(ledger.account().unpaid, u64::MAX);
    let t = ts + 3 * DAY;
    assert_eq!(schedule.overdue_at(t), u64::MAX);
    assert_eq!(schedule.loans[0].overdue_at(t), u64::MAX);
    let input = CaseInput::from_schedule(&schedule, t);
    assert_eq!((input.dpd, input.overdue_amount), (2, u64::MAX));
    let mut loans = Vec::new();
    loan_delinquency(&schedule, t, &mut loans);
    let amounts: Vec<u64> = loans.iter().map(|l| l.overdue_amount).collect();
    assert_eq!(amounts, [u64::MAX, 7]);
}

/// Regression: overpayment credit was added with `+=`: two repayments of 2^63 wrapped it
/// to 0, and a later installment was not paid from it.
#[test]
fn overpayment_credit_saturates_instead_of_wrapping_to_zero() {
    let layout = Layout::new(&Config::default()).expect("default layout");
    let mut sink = Sink::default();
    let ts = 1_768_435_200_000;
    let half = 1u64 << 63;
    let (ledger, schedule) = ledger_of(
        &[
            repayment(ts, half),
            repayment(ts + 1, half),
            due(ts + 2, "L1", 1, ts + DAY, 5_000),
        ],
        &layout,
        &mut sink,
    );
    assert_eq!(ledger.account().unpaid, 0);
    assert_eq!(ledger.account().oldest_due, 0);
    assert_eq!(schedule, Schedule::default());
}
