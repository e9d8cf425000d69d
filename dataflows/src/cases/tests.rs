//! Tests of the case rules: golden episodes written by hand, and a property test of `seq`
//! and `case_id` over random delinquency sequences.

use super::*;
use crate::ledger::LoanSchedule;
use riskwatch_model::config::{CasesConfig, Config};
use riskwatch_model::time::{days_past_due, MS_PER_DAY};

const DAY: u64 = MS_PER_DAY;
/// A due date: the last millisecond of a day.
const DUE: u64 = 100 * DAY - 1;

fn policy(cfg: CasesConfig) -> CasesPolicy {
    let mut s = Config::default().strategies[0].clone();
    s.cases = cfg;
    CasesPolicy::compile(&s, 0).unwrap()
}

/// An input at `t` with one installment due at `DUE` of which `overdue` is unpaid.
fn at(t: u64, overdue: u64) -> CaseInput {
    CaseInput {
        t,
        dpd: if overdue > 0 {
            days_past_due(DUE, t)
        } else {
            0
        },
        overdue_amount: overdue,
        next_due_ts: None,
        level: 3,
        score: 580.0,
        ring_member: false,
        written_off: false,
    }
}

/// Runs one step and renders its drafts as "event stage queue priority #seq".
fn run(p: &CasesPolicy, s: &mut CaseState, input: CaseInput) -> Vec<String> {
    let mut out = Vec::new();
    step(p, s, &input, &mut out);
    out.iter()
        .map(|d| {
            format!(
                "{} {} {} {} #{}",
                d.event.name(),
                d.stage.name(),
                d.queue,
                d.priority,
                d.seq
            )
        })
        .collect()
}

#[test]
fn golden_opened_at_dpd_1_escalated_at_31_and_61_closed_when_repaid() {
    let p = policy(CasesConfig::default());
    let mut s = CaseState::new();
    assert!(run(&p, &mut s, at(DUE, 0)).is_empty());
    assert_eq!(
        run(&p, &mut s, at(DUE + 1, 1000)),
        ["opened M1 robocall 23 #1"]
    );
    let start = s.open().unwrap().episode_start;
    assert_eq!(start, DUE + 1);
    assert!(run(&p, &mut s, at(DUE + 30 * DAY, 1000)).is_empty());
    let mut i = at(DUE + 30 * DAY + 1, 1000);
    i.level = 4;
    assert_eq!(run(&p, &mut s, i), ["escalated M2 agent 34 #2"]);
    i.t = DUE + 60 * DAY + 1;
    i.dpd = 61;
    assert_eq!(run(&p, &mut s, i), ["escalated M3+ senior_agent 44 #3"]);
    assert_eq!(s.open().unwrap().episode_start, start);
    assert_eq!(
        run(&p, &mut s, at(DUE + 70 * DAY, 0)),
        ["closed M3+ senior_agent 44 #4"]
    );
    assert!(s.open().is_none());
    // A later delinquency is a new episode: seq 1 again, a new case_id.
    let mut again = at(DUE + 200 * DAY, 500);
    again.dpd = 1;
    let mut out = Vec::new();
    step(&p, &mut s, &again, &mut out);
    assert_eq!((out[0].event, out[0].seq), (CaseEvent::Opened, 1));
    assert_ne!(
        Case::id("baseline", "C1", out[0].episode_start),
        Case::id("baseline", "C1", start)
    );
}

#[test]
fn golden_pre_collection_escalates_to_m1_as_the_same_case() {
    let p = policy(CasesConfig::default());
    let mut s = CaseState::new();
    let mut i = at(DUE - 5 * DAY, 0);
    i.next_due_ts = Some(DUE);
    // Too early: the horizon starts 3 days before the due date.
    let mut out = Vec::new();
    assert_eq!(step(&p, &mut s, &i, &mut out), Some(DUE - 3 * DAY));
    assert!(out.is_empty());
    // A low level never opens pre-collection, and asks for no wake-up.
    i.t = DUE - 2 * DAY;
    i.level = 2;
    assert_eq!(step(&p, &mut s, &i, &mut out), None);
    assert!(out.is_empty());
    i.level = 3;
    assert_eq!(run(&p, &mut s, i), ["opened pre_collection sms 13 #1"]);
    // The level falls: the case stays open for its installment (priority updated).
    i.t = DUE - DAY;
    i.level = 1;
    assert_eq!(run(&p, &mut s, i), ["updated pre_collection sms 11 #2"]);
    let mut late = at(DUE + 1, 800);
    late.level = 1;
    assert_eq!(run(&p, &mut s, late), ["escalated M1 robocall 21 #3"]);
    assert_eq!(s.open().unwrap().episode_start, DUE - 2 * DAY);
    late.t = DUE + 5 * DAY;
    late.dpd = 5;
    late.overdue_amount = 0;
    late.dpd = 0;
    assert_eq!(run(&p, &mut s, late), ["closed M1 robocall 21 #4"]);
}

#[test]
fn golden_pre_collection_closed_when_paid_on_time() {
    let p = policy(CasesConfig::default());
    let mut s = CaseState::new();
    let mut i = at(DUE - 3 * DAY, 0);
    i.next_due_ts = Some(DUE);
    assert_eq!(run(&p, &mut s, i), ["opened pre_collection sms 13 #1"]);
    // Nothing changed: no event.
    i.t = DUE - 2 * DAY;
    assert!(run(&p, &mut s, i).is_empty());
    // Paid on time: the next unpaid installment is a month later.
    i.t = DUE - DAY;
    i.next_due_ts = Some(DUE + 30 * DAY);
    assert_eq!(run(&p, &mut s, i), ["closed pre_collection sms 13 #2"]);
    // ...and a new episode opens when that one comes within the horizon.
    i.t = DUE + 28 * DAY;
    assert_eq!(run(&p, &mut s, i), ["opened pre_collection sms 13 #1"]);
    assert_eq!(s.open().unwrap().watched_due, DUE + 30 * DAY);
    // Pre-collection off: no case until DPD 1.
    let off = policy(CasesConfig {
        pre_collection: false,
        ..CasesConfig::default()
    });
    let mut s = CaseState::new();
    assert!(run(&off, &mut s, i).is_empty());
}

#[test]
fn golden_partial_repayments_update_the_case() {
    let p = policy(CasesConfig::default());
    let mut s = CaseState::new();
    assert_eq!(
        run(&p, &mut s, at(DUE + 1, 1000)),
        ["opened M1 robocall 23 #1"]
    );
    assert_eq!(
        run(&p, &mut s, at(DUE + DAY, 600)),
        ["updated M1 robocall 23 #2"]
    );
    assert!(run(&p, &mut s, at(DUE + 2 * DAY, 600)).is_empty());
    // Another installment falls due: a rise alone is no event.
    assert!(run(&p, &mut s, at(DUE + 3 * DAY, 1100)).is_empty());
    assert_eq!(
        run(&p, &mut s, at(DUE + 4 * DAY, 300)),
        ["updated M1 robocall 23 #3"]
    );
    // A better score moves the case to another queue.
    let mut i = at(DUE + 5 * DAY, 300);
    i.score = 640.0;
    assert_eq!(run(&p, &mut s, i), ["updated M1 sms 23 #4"]);
    // A partial repayment that cures the oldest installment: a better stage is an update.
    let mut i = at(DUE + 40 * DAY, 900);
    assert_eq!(run(&p, &mut s, i), ["escalated M2 agent 33 #5"]);
    i.t += DAY;
    i.dpd = 10;
    i.overdue_amount = 400;
    assert_eq!(run(&p, &mut s, i), ["updated M1 robocall 23 #6"]);
    assert_eq!(
        run(&p, &mut s, at(DUE + 42 * DAY, 0)),
        ["closed M1 robocall 23 #7"]
    );
}

fn loan(id: &str, unpaid: &[(u64, u64)], written_off: bool) -> LoanSchedule {
    LoanSchedule {
        loan_id: id.into(),
        written_off,
        unpaid: unpaid.to_vec(),
    }
}

#[test]
fn golden_two_loans_from_the_ledger_schedule() {
    let p = policy(CasesConfig::default());
    let mut s = CaseState::new();
    let (d1, d2) = (DUE, DUE + 10 * DAY);
    let both = Schedule {
        loans: vec![
            loan("A", &[(d1, 500)], false),
            loan("B", &[(d2, 700)], false),
        ],
    };
    let mut loans = Vec::new();
    let mut out = Vec::new();
    let drive = |s: &mut CaseState, sched: &Schedule, t: u64, out: &mut Vec<CaseDraft>| {
        let mut i = CaseInput::from_schedule(sched, t);
        i.level = 3;
        i.score = 580.0;
        out.clear();
        step(&p, s, &i, out);
        i
    };
    let i = drive(&mut s, &both, d1 - 2 * DAY, &mut out);
    assert_eq!((i.dpd, i.overdue_amount, i.next_due_ts), (0, 0, Some(d1)));
    assert_eq!(out[0].stage, CaseStage::PreCollection);
    let i = drive(&mut s, &both, d1 + 1, &mut out);
    assert_eq!((i.dpd, i.overdue_amount, i.next_due_ts), (1, 500, Some(d2)));
    assert_eq!(
        (out[0].event, out[0].stage, out[0].seq),
        (CaseEvent::Escalated, CaseStage::M1, 2)
    );
    let i = drive(&mut s, &both, d2 + 1, &mut out);
    assert_eq!((i.dpd, i.overdue_amount), (11, 1200));
    assert!(out.is_empty());
    loan_delinquency(&both, d2 + 1, &mut loans);
    assert_eq!(
        loans,
        [
            LoanDelinquency {
                loan_id: "A".into(),
                overdue_amount: 500,
                dpd: 11,
                written_off: false
            },
            LoanDelinquency {
                loan_id: "B".into(),
                overdue_amount: 700,
                dpd: 1,
                written_off: false
            }
        ]
    );
    // Loan A repaid: B's installment is now the oldest.
    let only_b = Schedule {
        loans: vec![loan("B", &[(d2, 700)], false)],
    };
    let i = drive(&mut s, &only_b, d2 + DAY, &mut out);
    assert_eq!((i.dpd, i.overdue_amount), (1, 700));
    assert_eq!((out[0].event, out[0].seq), (CaseEvent::Updated, 3));
    let ctx = CaseContext {
        strategy: "baseline",
        strategy_version: "v1",
        customer_id: "C1",
        shadow: false,
        emitted_at: 5,
        input: &i,
        reasons: &[],
        loans: &[],
    };
    loan_delinquency(&only_b, d2 + DAY, &mut loans);
    let rec = p.case(
        &out[0],
        &CaseContext {
            loans: &loans,
            ..ctx
        },
    );
    assert_eq!(rec.case_id, Case::id("baseline", "C1", d1 - 2 * DAY));
    assert_eq!(rec.opened_at, d1 - 2 * DAY);
    assert_eq!(rec.loans.len(), 1);
    assert_eq!((rec.overdue_amount, rec.dpd), (700, 1));
    let i = drive(&mut s, &Schedule::default(), d2 + 2 * DAY, &mut out);
    assert_eq!(i.next_due_ts, None);
    assert_eq!((out[0].event, out[0].seq), (CaseEvent::Closed, 4));
}

#[test]
fn golden_write_off_keeps_the_case_open_in_the_legal_queue() {
    let p = policy(CasesConfig::default());
    let mut s = CaseState::new();
    let mut i = at(DUE + 61 * DAY, 1000);
    assert_eq!(run(&p, &mut s, i), ["opened M3+ senior_agent 43 #1"]);
    i.t += DAY;
    i.written_off = true;
    assert_eq!(run(&p, &mut s, i), ["updated M3+ legal 43 #2"]);
    i.t += 100 * DAY;
    i.dpd += 100;
    assert!(run(&p, &mut s, i).is_empty());
    assert!(s.open().is_some());
    // A partial recovery keeps it in legal; full recovery closes it.
    i.overdue_amount = 400;
    assert_eq!(run(&p, &mut s, i), ["updated M3+ legal 43 #3"]);
    i.t += DAY;
    i.overdue_amount = 0;
    i.dpd = 0;
    assert_eq!(run(&p, &mut s, i), ["closed M3+ legal 43 #4"]);
    // The queue name is configurable.
    let agency = policy(CasesConfig {
        written_off_queue: "agency".into(),
        ..CasesConfig::default()
    });
    let mut s = CaseState::new();
    let mut i = at(DUE + DAY, 10);
    i.written_off = true;
    assert_eq!(run(&agency, &mut s, i), ["opened M1 agency 23 #1"]);
}

#[test]
fn golden_ring_members_get_the_fraud_stage_first() {
    let p = policy(CasesConfig::default());
    let mut s = CaseState::new();
    let mut i = at(DUE + DAY, 1000);
    assert_eq!(run(&p, &mut s, i), ["opened M1 robocall 23 #1"]);
    i.ring_member = true;
    assert_eq!(
        run(&p, &mut s, i),
        ["escalated fraud fraud_investigation 53 #2"]
    );
    // Fraud beats the write-off queue and the DPD stage.
    i.written_off = true;
    i.t = DUE + 40 * DAY;
    i.dpd = 40;
    assert!(run(&p, &mut s, i).is_empty());
    // The ring dissolves: back to the DPD stage (a better one: an update).
    i.ring_member = false;
    assert_eq!(run(&p, &mut s, i), ["updated M2 legal 33 #3"]);
    // A ring member's case opens as fraud, and pre-collection too.
    let mut s = CaseState::new();
    let mut i = at(DUE + DAY, 10);
    i.ring_member = true;
    assert_eq!(
        run(&p, &mut s, i),
        ["opened fraud fraud_investigation 53 #1"]
    );
    let mut s = CaseState::new();
    let mut i = at(DUE - DAY, 0);
    i.ring_member = true;
    i.next_due_ts = Some(DUE);
    assert_eq!(
        run(&p, &mut s, i),
        ["opened fraud fraud_investigation 53 #1"]
    );
    i.t = DUE + 1;
    i.dpd = 1;
    i.overdue_amount = 10;
    assert!(run(&p, &mut s, i).is_empty());
    assert!(s.open().unwrap().delinquent);
}

#[test]
fn disabled_strategies_open_no_cases() {
    let p = policy(CasesConfig {
        enabled: false,
        ..CasesConfig::default()
    });
    let mut s = CaseState::new();
    assert!(run(&p, &mut s, at(DUE + DAY, 10)).is_empty());
}

#[test]
fn case_records_follow_the_contract() {
    let p = policy(CasesConfig::default());
    let mut s = CaseState::new();
    let i = at(DUE + 61 * DAY, 1000);
    let mut out = Vec::new();
    step(&p, &mut s, &i, &mut out);
    let loans = [LoanDelinquency {
        loan_id: "L1".into(),
        overdue_amount: 1000,
        dpd: 62,
        written_off: true,
    }];
    let reasons = [Reason::code("delinquent_m2")];
    let ctx = CaseContext {
        strategy: "baseline",
        strategy_version: "v1",
        customer_id: "C1",
        shadow: true,
        emitted_at: 9,
        input: &i,
        reasons: &reasons,
        loans: &loans,
    };
    let rec = p.case(&out[0], &ctx);
    let json = serde_json::to_value(&rec).unwrap();
    assert_eq!(json["event"], "opened");
    assert_eq!(json["stage"], "M3+");
    assert_eq!(json["seq"], 1);
    assert_eq!(json["queue"], "senior_agent");
    assert_eq!(json["dpd"], 61);
    assert_eq!(json["score"], 580);
    assert_eq!(json["loans"][0]["written_off"], true);
    assert_eq!(json["reasons"][0]["code"], "delinquent_m2");
    assert_eq!(json["opened_at"], DUE + 61 * DAY);
    assert_eq!(json["shadow"], true);
    let back: Case = serde_json::from_value(json).unwrap();
    assert_eq!(back, rec);
    for (stage, name) in CaseStage::ALL
        .iter()
        .zip(["pre_collection", "M1", "M2", "M3+", "fraud"])
    {
        assert_eq!(serde_json::to_value(stage).unwrap(), name);
        assert_eq!(stage.name(), name);
    }
}

/// xorshift64*.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

#[test]
fn property_seq_grows_by_one_and_case_ids_are_stable_per_episode() {
    let p = policy(CasesConfig::default());
    for seed in 1..=20u64 {
        let mut rng = Rng(seed);
        let mut s = CaseState::new();
        let mut out = Vec::new();
        let mut t = 0u64;
        let mut dpd = 0u64;
        let mut overdue = 0u64;
        let mut current: Option<(String, u32)> = None;
        let mut seen_ids = std::collections::BTreeSet::new();
        let mut events = 0;
        for _ in 0..5000 {
            t += 1 + rng.below(3 * DAY);
            match rng.below(8) {
                0 => {
                    dpd = 0;
                    overdue = 0;
                }
                1 => overdue = overdue.saturating_sub(rng.below(500)),
                2 | 3 => {
                    dpd += 1 + rng.below(20);
                    overdue += rng.below(300);
                }
                _ => {}
            }
            if overdue == 0 {
                dpd = 0;
            } else if dpd == 0 {
                dpd = 1;
            }
            let input = CaseInput {
                t,
                dpd,
                overdue_amount: overdue,
                next_due_ts: (rng.below(2) == 0).then(|| t + rng.below(5 * DAY)),
                level: rng.below(5) as u8,
                score: 450.0 + rng.below(300) as f64,
                ring_member: rng.below(20) == 0,
                written_off: rng.below(10) == 0,
            };
            out.clear();
            step(&p, &mut s, &input, &mut out);
            assert!(out.len() <= 2, "seed {seed}");
            if out.len() == 2 {
                assert_eq!(out[0].event, CaseEvent::Closed);
                assert_eq!(out[1].event, CaseEvent::Opened);
            }
            for d in &out {
                events += 1;
                let id = Case::id("s", "c", d.episode_start);
                match d.event {
                    CaseEvent::Opened => {
                        assert!(current.is_none(), "seed {seed}: opened twice");
                        assert_eq!((d.seq, d.episode_start), (1, t));
                        assert!(seen_ids.insert(id.clone()), "seed {seed}: id reused");
                        current = Some((id, 1));
                    }
                    _ => {
                        let (cur, seq) = current.as_mut().expect("an event of an open case");
                        assert_eq!(&id, cur, "seed {seed}: case_id changed");
                        assert_eq!(d.seq, *seq + 1, "seed {seed}: seq skipped");
                        *seq = d.seq;
                        if d.event == CaseEvent::Closed {
                            current = None;
                        }
                    }
                }
                if input.ring_member && d.event != CaseEvent::Closed {
                    assert_eq!(d.stage, CaseStage::Fraud);
                }
            }
            assert_eq!(s.open().is_some(), current.is_some());
            if let Some(c) = s.open() {
                assert_eq!(c.seq, current.as_ref().unwrap().1);
            }
        }
        assert!(events > 500, "seed {seed}: only {events} events");
    }
}

#[test]
fn case_state_stays_small() {
    assert!(std::mem::size_of::<CaseState>() <= 100);
}
