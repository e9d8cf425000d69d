//! Counters a worker's operators update as they run, read by the harness for metrics and
//! the run summary. One instance per worker (`Rc<RefCell<_>>`), summed across workers.

use crate::evaluate::StrategyState;
use crate::rings::RingInfo;
use std::collections::BTreeMap;

/// Per-worker counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Events accepted by the ledger, by stream (customers, loans, transactions, behaviors).
    pub events: [u64; 4],
    /// Later copies of an already seen `(stream, event_id)`, by stream.
    pub duplicates: [u64; 4],
    /// Events that entered after the frontier had passed their time.
    pub late: u64,
    /// Window contributions of late events whose window had already closed.
    pub expired_on_arrival: u64,
    /// Customers at each level, per strategy (by name): the current mix.
    pub levels: BTreeMap<String, [u64; 5]>,
    /// Per strategy (by name): level transitions and the open cases.
    pub strategies: BTreeMap<String, StrategyGauges>,
    /// Rings (customers whose ring is keyed by themselves: each ring's least key), stored
    /// as a wrapping count like the level mix.
    pub rings: u64,
    /// Customers in a ring (wrapping count).
    pub ring_members: u64,
    /// Customer evaluations (customer × tick).
    pub evaluations: u64,
    /// Live strategy changes that were rejected, with the reason.
    pub config_rejected: Vec<String>,
}

impl Stats {
    /// Adds another worker's counters.
    pub fn merge(&mut self, other: &Stats) {
        for i in 0..4 {
            self.events[i] += other.events[i];
            self.duplicates[i] += other.duplicates[i];
        }
        self.late += other.late;
        self.expired_on_arrival += other.expired_on_arrival;
        self.evaluations += other.evaluations;
        self.config_rejected
            .extend(other.config_rejected.iter().cloned());
        for (k, v) in &other.levels {
            let e = self.levels.entry(k.clone()).or_default();
            for i in 0..5 {
                e[i] = e[i].wrapping_add(v[i]);
            }
        }
        for (k, v) in &other.strategies {
            self.strategies.entry(k.clone()).or_default().merge(v);
        }
        self.rings = self.rings.wrapping_add(other.rings);
        self.ring_members = self.ring_members.wrapping_add(other.ring_members);
    }

    /// Moves strategy `name`'s level mix, transitions and open cases for one customer from
    /// `was` (`None`: a customer evaluated for the first time) to `now`.
    pub fn moved(&mut self, name: &str, was: Option<Standing>, now: Standing) {
        if was == Some(now) {
            return;
        }
        if !self.levels.contains_key(name) {
            self.levels.insert(name.to_string(), [0; 5]);
            self.strategies
                .insert(name.to_string(), StrategyGauges::default());
        }
        let mix = self.levels.get_mut(name).expect("inserted above");
        let g = self
            .strategies
            .get_mut(name)
            .expect("inserted with the levels");
        mix[now.level as usize] = mix[now.level as usize].wrapping_add(1);
        g.case(now.case, 1);
        if let Some(w) = was {
            // Wrapping: one worker may see a customer leave a level another worker counted.
            mix[w.level as usize] = mix[w.level as usize].wrapping_sub(1);
            g.case(w.case, -1);
            if w.level != now.level {
                g.transitions[w.level as usize][now.level as usize] += 1;
            }
        }
    }

    /// Moves the ring gauges for the customer `key` whose ring was `was` and is `now`.
    pub fn ring_moved(&mut self, key: u64, was: Option<&RingInfo>, now: Option<&RingInfo>) {
        let count =
            |r: Option<&RingInfo>| (r.is_some() as u64, r.is_some_and(|r| r.ring == key) as u64);
        let (was_member, was_ring) = count(was);
        let (now_member, now_ring) = count(now);
        self.ring_members = self
            .ring_members
            .wrapping_add(now_member)
            .wrapping_sub(was_member);
        self.rings = self.rings.wrapping_add(now_ring).wrapping_sub(was_ring);
    }
}

/// What the gauges count of one strategy's state for a customer: its level and its open
/// case's stage and overdue amount.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Standing {
    /// Level 0–4.
    pub level: u8,
    /// The open case: `(stage as usize, overdue amount)`.
    pub case: Option<(u8, u64)>,
}

impl Standing {
    /// The standing of `state`.
    pub fn of(state: &StrategyState) -> Standing {
        Standing {
            level: state.level,
            case: state
                .cases
                .open()
                .map(|c| (c.stage as u8, c.overdue_amount)),
        }
    }
}

/// Per-strategy counters and gauges beside the level mix.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StrategyGauges {
    /// Level changes, `[from][to]` (a counter).
    pub transitions: [[u64; 5]; 5],
    /// Open cases by stage (`CaseStage as usize`), a wrapping count.
    pub cases_open: [u64; 5],
    /// The open cases' overdue amount by stage, a wrapping sum.
    pub overdue: [u64; 5],
}

impl StrategyGauges {
    fn merge(&mut self, other: &StrategyGauges) {
        for i in 0..5 {
            for j in 0..5 {
                self.transitions[i][j] += other.transitions[i][j];
            }
            self.cases_open[i] = self.cases_open[i].wrapping_add(other.cases_open[i]);
            self.overdue[i] = self.overdue[i].wrapping_add(other.overdue[i]);
        }
    }

    fn case(&mut self, case: Option<(u8, u64)>, sign: i8) {
        if let Some((stage, amount)) = case {
            let i = stage as usize;
            if sign > 0 {
                self.cases_open[i] = self.cases_open[i].wrapping_add(1);
                self.overdue[i] = self.overdue[i].wrapping_add(amount);
            } else {
                self.cases_open[i] = self.cases_open[i].wrapping_sub(1);
                self.overdue[i] = self.overdue[i].wrapping_sub(amount);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(level: u8, case: Option<(u8, u64)>) -> Standing {
        Standing { level, case }
    }

    fn ring(ring: u64) -> RingInfo {
        RingInfo {
            ring,
            size: 3,
            delinquent: 0,
            new_members: 0,
        }
    }

    #[test]
    fn a_customer_moving_through_levels_and_case_stages_moves_every_gauge() {
        let mut s = Stats::default();
        s.moved("champion", None, at(2, Some((1, 500))));
        s.moved(
            "champion",
            Some(at(2, Some((1, 500)))),
            at(2, Some((1, 500))),
        );
        assert_eq!(s.levels["champion"], [0, 0, 1, 0, 0]);
        let g = &s.strategies["champion"];
        assert_eq!(g.cases_open, [0, 1, 0, 0, 0]);
        assert_eq!(g.overdue, [0, 500, 0, 0, 0]);
        assert_eq!(
            g.transitions, [[0; 5]; 5],
            "a first evaluation is no transition"
        );

        s.moved(
            "champion",
            Some(at(2, Some((1, 500)))),
            at(3, Some((2, 700))),
        );
        s.moved("champion", Some(at(3, Some((2, 700)))), at(0, None));
        assert_eq!(s.levels["champion"], [1, 0, 0, 0, 0]);
        let g = &s.strategies["champion"];
        assert_eq!(g.cases_open, [0; 5]);
        assert_eq!(g.overdue, [0; 5]);
        let mut expected = [[0u64; 5]; 5];
        expected[2][3] = 1;
        expected[3][0] = 1;
        assert_eq!(g.transitions, expected);
    }

    #[test]
    fn counts_split_across_workers_merge_to_the_exact_mix() {
        // Worker 0 saw the customer enter level 4 with an M3+ case; worker 1 (after a
        // re-keying) saw it leave: alone each is off, merged they are exact.
        let mut w0 = Stats::default();
        w0.moved("s", None, at(4, Some((3, 900))));
        let mut w1 = Stats::default();
        w1.moved("s", Some(at(4, Some((3, 900)))), at(1, None));
        assert_eq!(w1.levels["s"][4], u64::MAX, "wrapping below zero");
        let mut all = Stats::default();
        all.merge(&w0);
        all.merge(&w1);
        assert_eq!(all.levels["s"], [0, 1, 0, 0, 0]);
        assert_eq!(all.strategies["s"].cases_open, [0; 5]);
        assert_eq!(all.strategies["s"].overdue, [0; 5]);
        assert_eq!(all.strategies["s"].transitions[4][1], 1);
    }

    #[test]
    fn ring_gauges_count_members_and_each_ring_once_by_its_least_key() {
        let mut s = Stats::default();
        // Customers 7, 9 and 12 join ring 7; customer 7 is its least key.
        for key in [7, 9, 12] {
            s.ring_moved(key, None, Some(&ring(7)));
        }
        assert_eq!((s.rings, s.ring_members), (1, 3));
        // The ring's info changes (a new delinquent member): nothing moves.
        let mut more = ring(7);
        more.delinquent = 1;
        s.ring_moved(9, Some(&ring(7)), Some(&more));
        assert_eq!((s.rings, s.ring_members), (1, 3));
        // 7 leaves: the ring is now keyed by 9.
        s.ring_moved(7, Some(&ring(7)), None);
        s.ring_moved(9, Some(&more), Some(&ring(9)));
        s.ring_moved(12, Some(&ring(7)), Some(&ring(9)));
        assert_eq!((s.rings, s.ring_members), (1, 2));
    }
}
