//! Fraud rings: connected components of the customer–identifier graph, maintained
//! incrementally as links appear and expire (DESIGN.md, Fraud rings; DOMAIN.md, Fraud rings
//! and intermediaries).
//!
//! ```text
//! links (customer, id) ─▶ distinct_total ─┬────────────────────────▶ semijoin ─▶ edges
//!                                         └─▶ id ─▶ threshold_total ─▶ shared ┘    │
//!                                              (2 ..= max customers per id)        │
//! ┌─ iterate ──────────────────────────────────────────────────────────────────────┤
//! │ labels ─▶ join(edges, both directions) ─▶ concat(seeds) ─▶ reduce(least label) ┐│
//! │   ▲                                                                           ││
//! │   └───────────────────────────────────────────────────────────────────────────┘│
//! └──────────────────────────────┬─────────────────────────────────────────────────┘
//!                                │ members (customer, ring = least customer key)
//! delinquent ─┐                  ├───────────────────────────────┐
//! new ────────┴─▶ (customer, flag) ─▶ distinct_total ─▶ join ◀───┤
//!                                                        │       │
//!                                           (ring, flag) ▼       ▼ (ring, size)
//!                                                   count_total ◀┘
//!                                                        │ ((ring, tally), n)
//!                                                        ▼
//!                                reduce(ring): RingInfo if size >= min_ring_size
//!                                                        │
//!                                  members ─▶ join(ring) ◀┘
//!                                              │
//!                                              ▼
//!                                    (customer, RingInfo)
//! ```
//!
//! Customers and identifiers are nodes of one bipartite graph, in separate namespaces
//! (`(kind, key)`), so a customer key never collides with an identifier hash. Every
//! customer node starts with its own key as its label; an identifier takes the least label
//! of its customers and hands it on, so at the fixed point every node carries the least
//! customer key of its component, which is the ring's id. Only identifiers shared by 2 to
//! `max_customers_per_identifier` customers are edges: a private identifier links nobody,
//! and a hub (a carrier-NAT IP, public Wi-Fi) would merge strangers. The inputs are collections over
//! event time (`u64`); `iterate` runs the propagation per time in an inner `u64` round, so
//! a link inserted or retracted at time `t` changes the components exactly at `t`.

use differential_dataflow::operators::count::CountTotal;
use differential_dataflow::operators::iterate::Iterate;
use differential_dataflow::operators::threshold::ThresholdTotal;
use differential_dataflow::VecCollection;
use riskwatch_model::config::RingsConfig;
use serde::{Deserialize, Serialize};

/// Ring membership of a customer: what every member of a ring is told about its ring.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RingInfo {
    /// The ring: the least customer key of the component.
    pub ring: u64,
    /// Customers in the component.
    pub size: u32,
    /// Members currently delinquent (DPD ≥ 1).
    pub delinquent: u32,
    /// Members first seen within the new-customer window.
    pub new_members: u32,
}

/// The ring's id as it appears in outputs: `ring-` and the 16 hex digits of its least
/// customer key.
pub fn ring_id(ring: u64) -> String {
    format!("ring-{ring:016x}")
}

/// Node namespace of customers in the bipartite graph.
const CUSTOMER: u8 = 0;
/// Node namespace of identifiers (device, IP, phone hashes) in the bipartite graph.
const IDENTIFIER: u8 = 1;

/// What a tally counts per ring.
const SIZE: u8 = 0;
/// Tally of delinquent members.
const DELINQUENT: u8 = 1;
/// Tally of new members.
const NEW: u8 = 2;

/// A node of the bipartite graph: `(CUSTOMER, customer key)` or `(IDENTIFIER, hash)`.
type Node = (u8, u64);

/// Fraud rings over windowed links, as `(customer key, RingInfo)` for every customer in a
/// connected component of at least `config.min_ring_size` customers.
///
/// Inputs, all over event time:
/// - `links`: `(customer key, identifier hash)`, present while the link is in its window
///   (inserted at the event's tick, retracted when it expires); repeated links are fine,
///   only presence matters. Hashes of different identifier kinds must not collide (the
///   caller tags kinds).
/// - `delinquent`: customer keys currently delinquent (DPD ≥ 1); presence only.
/// - `new_customers`: customer keys first seen within the new-customer window; presence only.
///
/// Only identifiers linked to 2 to `config.max_customers_per_identifier` distinct
/// customers at a time enter the graph. One linked to more is a hub (a carrier-NAT IP) and
/// links nobody while it is one; one of a single customer links nobody anyway, so the label
/// propagation never sees the great majority of customers, who share nothing. A hub is
/// recognised only once the window holds more than the threshold of its customers: right
/// after a cold start, before the window has filled, it may still link them.
///
/// Cost: arrangements of the distinct links (by pair and by identifier), of link counts
/// per identifier, of the shared graph's edges, of its labels per propagation round, and of
/// members and flags. A link change costs `O(log n)` updates to these. When it changes the
/// graph (an identifier becomes shared, or a shared one gains or loses a customer), only
/// the nodes whose label at some round changes are revisited: nothing more when the new
/// edge joins a node already in the ring; when components merge or split, at most the
/// affected components' nodes once per round, for as many rounds as their diameter. Every
/// member of a ring whose size or counts change receives its new [`RingInfo`], and an
/// identifier crossing the hub threshold costs work in the number of its customers, once.
pub fn rings<'scope>(
    links: VecCollection<'scope, u64, (u64, u64), isize>,
    delinquent: VecCollection<'scope, u64, u64, isize>,
    new_customers: VecCollection<'scope, u64, u64, isize>,
    config: &RingsConfig,
) -> VecCollection<'scope, u64, (u64, RingInfo), isize> {
    let max_customers = config.max_customers_per_identifier as isize;
    let min_size = config.min_ring_size;

    // Distinct links to shared identifiers: those of one customer link nobody, and hubs
    // (more than `max_customers`) are ignored.
    let links = links.distinct_total();
    let shared = links
        .clone()
        .map(|(_customer, id)| id)
        .threshold_total(move |_id, n| isize::from((2..=max_customers).contains(n)));
    let edges = links
        .map(|(customer, id)| (id, customer))
        .semijoin(shared)
        .map(|(id, customer)| (customer, id));

    // Least customer key per component, by label propagation over both edge directions.
    let directed = edges.clone().flat_map(|(customer, id)| {
        let c: Node = (CUSTOMER, customer);
        let i: Node = (IDENTIFIER, id);
        [(c, i), (i, c)]
    });
    let seeds = edges.map(|(customer, _id)| ((CUSTOMER, customer), customer));
    let labels = seeds.clone().iterate(|scope, labels| {
        let directed = directed.enter(scope);
        let seeds = seeds.enter(scope);
        labels
            .join_map(directed, |_node, label, next| (*next, *label))
            .concat(seeds)
            .reduce_named("RingLabel", |_node, labels, out| {
                out.push((*labels[0].0, 1))
            })
    });
    let members = labels.flat_map(|((kind, key), ring)| (kind == CUSTOMER).then_some((key, ring)));

    // Size, delinquent and new members per ring, assembled into one RingInfo.
    let flags = delinquent
        .map(|customer| (customer, DELINQUENT))
        .concat(new_customers.map(|customer| (customer, NEW)))
        .distinct_total();
    let tallies = members
        .clone()
        .map(|(_customer, ring)| (ring, SIZE))
        .concat(
            members
                .clone()
                .join_map(flags, |_customer, ring, kind| (*ring, *kind)),
        )
        .count_total();
    let info = tallies
        .map(|((ring, kind), n)| (ring, (kind, n)))
        .reduce_named("RingInfo", move |ring, tallies, out| {
            let mut info = RingInfo {
                ring: *ring,
                size: 0,
                delinquent: 0,
                new_members: 0,
            };
            for ((kind, n), _) in tallies {
                let n = u32::try_from(*n).expect("counts of present records are positive");
                match *kind {
                    SIZE => info.size = n,
                    DELINQUENT => info.delinquent = n,
                    _ => info.new_members = n,
                }
            }
            if info.size >= min_size {
                out.push((info, 1));
            }
        });
    members
        .map(|(customer, ring)| (ring, customer))
        .join_map(info, |_ring, customer, info| (*customer, info.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use differential_dataflow::input::Input;
    use std::cell::RefCell;
    use std::collections::{BTreeMap, BTreeSet};
    use std::rc::Rc;
    use std::sync::{Arc, Mutex};

    /// One output update: `((customer, info), time, diff)`.
    type Update = ((u64, RingInfo), u64, isize);

    /// A batch of input changes at one time.
    #[derive(Clone, Debug, Default)]
    struct Step {
        time: u64,
        links: Vec<((u64, u64), isize)>,
        delinquent: Vec<(u64, isize)>,
        new: Vec<(u64, isize)>,
    }

    impl Step {
        fn at(time: u64) -> Step {
            Step {
                time,
                ..Step::default()
            }
        }
        fn link(mut self, customer: u64, id: u64) -> Step {
            self.links.push(((customer, id), 1));
            self
        }
        fn unlink(mut self, customer: u64, id: u64) -> Step {
            self.links.push(((customer, id), -1));
            self
        }
        fn delinquent(mut self, customer: u64, diff: isize) -> Step {
            self.delinquent.push((customer, diff));
            self
        }
        fn new_customer(mut self, customer: u64, diff: isize) -> Step {
            self.new.push((customer, diff));
            self
        }
    }

    fn config(max: u32, min: u32) -> RingsConfig {
        RingsConfig {
            max_customers_per_identifier: max,
            min_ring_size: min,
            ..RingsConfig::default()
        }
    }

    /// Feeds `steps` (on worker 0) through [`rings`] on `workers` workers, stepping until
    /// each step's time is complete, and returns every output update, consolidated.
    fn run(steps: Vec<Step>, config: RingsConfig, workers: usize) -> Vec<Update> {
        let out = Arc::new(Mutex::new(Vec::new()));
        let sink = out.clone();
        let steps = Arc::new(steps);
        timely::execute(timely::Config::process(workers), move |worker| {
            let local = Rc::new(RefCell::new(Vec::new()));
            let captured = local.clone();
            let config = config.clone();
            let (mut links, mut delinquent, mut new, probe) =
                worker.dataflow::<u64, _, _>(|scope| {
                    let (links_in, links) = scope.new_collection();
                    let (delinquent_in, delinquent) = scope.new_collection();
                    let (new_in, new) = scope.new_collection();
                    let (probe, _) = rings(links, delinquent, new, &config)
                        .inspect(move |update| captured.borrow_mut().push(update.clone()))
                        .probe();
                    (links_in, delinquent_in, new_in, probe)
                });
            for step in steps.iter() {
                links.advance_to(step.time);
                delinquent.advance_to(step.time);
                new.advance_to(step.time);
                if worker.index() == 0 {
                    for (link, diff) in &step.links {
                        links.update(*link, *diff);
                    }
                    for (customer, diff) in &step.delinquent {
                        delinquent.update(*customer, *diff);
                    }
                    for (customer, diff) in &step.new {
                        new.update(*customer, *diff);
                    }
                }
                let next = step.time + 1;
                links.advance_to(next);
                delinquent.advance_to(next);
                new.advance_to(next);
                links.flush();
                delinquent.flush();
                new.flush();
                worker.step_while(|| probe.less_than(&next));
            }
            sink.lock()
                .expect("no worker panicked")
                .extend(local.borrow_mut().drain(..));
        })
        .expect("the timely computation runs");
        let mut updates = std::mem::take(&mut *out.lock().expect("no worker panicked"));
        differential_dataflow::consolidation::consolidate_updates(&mut updates);
        updates
    }

    /// The output collection as of `time`: customer → info; every record present once.
    fn state_at(updates: &[Update], time: u64) -> BTreeMap<u64, RingInfo> {
        let mut acc: BTreeMap<(u64, RingInfo), isize> = BTreeMap::new();
        for (record, t, diff) in updates {
            if *t <= time {
                *acc.entry(record.clone()).or_default() += diff;
            }
        }
        let mut state = BTreeMap::new();
        for ((customer, info), diff) in acc {
            match diff {
                0 => {}
                1 => assert!(state.insert(customer, info).is_none(), "{customer} twice"),
                d => panic!("customer {customer} with multiplicity {d}"),
            }
        }
        state
    }

    /// Times at which the output changes.
    fn change_times(updates: &[Update]) -> BTreeSet<u64> {
        updates.iter().map(|(_, t, _)| *t).collect()
    }

    fn info(ring: u64, size: u32, delinquent: u32, new_members: u32) -> RingInfo {
        RingInfo {
            ring,
            size,
            delinquent,
            new_members,
        }
    }

    const DEV1: u64 = 1_001;
    const DEV2: u64 = 1_002;
    const IP1: u64 = 2_001;
    const PHONE1: u64 = 3_001;

    #[test]
    fn ring_id_is_sixteen_hex_digits() {
        assert_eq!(ring_id(0x2a), "ring-000000000000002a");
        assert_eq!(ring_id(u64::MAX), "ring-ffffffffffffffff");
    }

    #[test]
    fn two_customers_sharing_a_device_are_a_ring_only_if_min_ring_size_allows() {
        let steps = vec![Step::at(5).link(20, DEV1).link(10, DEV1)];
        assert!(run(steps.clone(), config(50, 3), 1).is_empty());
        let updates = run(steps, config(50, 2), 1);
        let pair = info(10, 2, 0, 0);
        assert_eq!(
            updates,
            vec![((10, pair.clone()), 5, 1), ((20, pair), 5, 1)]
        );
    }

    #[test]
    fn a_chain_of_shared_identifiers_is_one_ring_whose_counts_follow_the_inputs() {
        // A–dev1–B–ip1–C–phone1–D–dev2–E, with keys chosen so the least is in the middle.
        let (a, b, c, d, e) = (50, 40, 7, 60, 30);
        let steps = vec![
            Step::at(1)
                .link(a, DEV1)
                .link(b, DEV1)
                .link(b, IP1)
                .link(c, IP1)
                .link(c, PHONE1)
                .link(d, PHONE1)
                .link(d, DEV2)
                .link(e, DEV2)
                .link(a, 9_999) // an identifier of A's alone changes nothing
                .delinquent(a, 1)
                .delinquent(99, 1) // not linked: in no ring
                .new_customer(e, 1),
            Step::at(3).delinquent(c, 1).new_customer(b, 1),
            Step::at(4).delinquent(a, -1),
            Step::at(6).link(e, DEV2), // a repeated link: no change
        ];
        let updates = run(steps, config(50, 3), 1);
        let everyone = [a, b, c, d, e];
        let expect = |i: RingInfo| everyone.iter().map(|k| (*k, i.clone())).collect();
        assert_eq!(state_at(&updates, 0), BTreeMap::new());
        assert_eq!(state_at(&updates, 1), expect(info(c, 5, 1, 1)));
        assert_eq!(state_at(&updates, 2), expect(info(c, 5, 1, 1)));
        assert_eq!(state_at(&updates, 3), expect(info(c, 5, 2, 2)));
        assert_eq!(state_at(&updates, 4), expect(info(c, 5, 1, 2)));
        assert_eq!(change_times(&updates), BTreeSet::from([1, 3, 4]));
        assert_eq!(
            ring_id(state_at(&updates, 4)[&a].ring),
            "ring-0000000000000007"
        );
    }

    #[test]
    fn a_hub_identifier_does_not_merge_its_customers() {
        // Customers 1..=4 share a NAT IP; 1 and 2 also share a device. With a threshold of
        // 3 the IP is a hub as soon as its fourth customer appears, and stops being one when
        // a link expires.
        const NAT: u64 = 77;
        let steps = vec![
            Step::at(1)
                .link(1, NAT)
                .link(2, NAT)
                .link(3, NAT)
                .link(1, DEV1)
                .link(2, DEV1),
            Step::at(2).link(4, NAT),
            Step::at(3).unlink(4, NAT),
        ];
        let updates = run(steps, config(3, 2), 1);
        let trio = info(1, 3, 0, 0);
        assert_eq!(
            state_at(&updates, 1),
            BTreeMap::from([(1, trio.clone()), (2, trio.clone()), (3, trio.clone())])
        );
        let pair = info(1, 2, 0, 0);
        assert_eq!(
            state_at(&updates, 2),
            BTreeMap::from([(1, pair.clone()), (2, pair)])
        );
        assert_eq!(
            state_at(&updates, 3),
            BTreeMap::from([(1, trio.clone()), (2, trio.clone()), (3, trio)])
        );
        assert_eq!(change_times(&updates), BTreeSet::from([1, 2, 3]));
    }

    #[test]
    fn link_expiry_splits_a_ring_exactly_at_the_retraction_time() {
        // Two triangles joined by B's link to ip1; the link is inserted at 100 and its
        // window retracts it at 100 + 30 days (in ms).
        const EXPIRY: u64 = 100 + 30 * 86_400_000;
        let (a, b, c, d, e, f) = (1, 2, 3, 4, 5, 6);
        let steps = vec![
            Step::at(10)
                .link(a, DEV1)
                .link(b, DEV1)
                .link(c, DEV1)
                .link(d, IP1)
                .link(e, IP1)
                .link(f, IP1)
                .delinquent(e, 1),
            Step::at(100).link(b, IP1),
            Step::at(EXPIRY - 1),
            Step::at(EXPIRY).unlink(b, IP1),
        ];
        let updates = run(steps, config(50, 3), 1);
        let left = info(a, 3, 0, 0);
        let right = info(d, 3, 1, 0);
        let apart: BTreeMap<_, _> = [(a, &left), (b, &left), (c, &left)]
            .into_iter()
            .chain([(d, &right), (e, &right), (f, &right)])
            .map(|(k, i)| (k, i.clone()))
            .collect();
        let whole: BTreeMap<_, _> = (1..=6).map(|k| (k, info(a, 6, 1, 0))).collect();
        assert_eq!(state_at(&updates, 99), apart);
        assert_eq!(state_at(&updates, 100), whole);
        assert_eq!(state_at(&updates, EXPIRY - 1), whole);
        assert_eq!(state_at(&updates, EXPIRY), apart);
        assert_eq!(change_times(&updates), BTreeSet::from([10, 100, EXPIRY]));
    }

    /// From-scratch rings of a set of links: union–find over non-hub identifiers.
    fn oracle(
        links: &BTreeSet<(u64, u64)>,
        delinquent: &BTreeSet<u64>,
        new: &BTreeSet<u64>,
        config: &RingsConfig,
    ) -> BTreeMap<u64, RingInfo> {
        let mut by_id: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
        for (customer, id) in links {
            by_id.entry(*id).or_default().push(*customer);
        }
        let mut parent: BTreeMap<u64, u64> = BTreeMap::new();
        fn find(parent: &mut BTreeMap<u64, u64>, x: u64) -> u64 {
            let p = *parent.entry(x).or_insert(x);
            if p == x {
                return x;
            }
            let root = find(parent, p);
            parent.insert(x, root);
            root
        }
        for customers in by_id.values() {
            if customers.len() > config.max_customers_per_identifier as usize {
                continue;
            }
            for pair in customers.windows(2) {
                let (x, y) = (find(&mut parent, pair[0]), find(&mut parent, pair[1]));
                // Union by least key, so the root is the component's least customer.
                parent.insert(x.max(y), x.min(y));
            }
            find(&mut parent, customers[0]);
        }
        let customers: Vec<u64> = parent.keys().copied().collect();
        let mut components: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
        for customer in customers {
            let root = find(&mut parent, customer);
            components.entry(root).or_default().push(customer);
        }
        let mut out = BTreeMap::new();
        for (root, members) in components {
            if (members.len() as u32) < config.min_ring_size {
                continue;
            }
            let info = RingInfo {
                ring: root,
                size: members.len() as u32,
                delinquent: members.iter().filter(|m| delinquent.contains(m)).count() as u32,
                new_members: members.iter().filter(|m| new.contains(m)).count() as u32,
            };
            for m in members {
                out.insert(m, info.clone());
            }
        }
        out
    }

    /// A small deterministic generator (SplitMix64).
    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            (z ^ (z >> 31)) % n
        }
    }

    #[test]
    fn random_windowed_links_agree_with_a_from_scratch_union_find() {
        // 40 customers, 43 identifiers; each step adds a few links that expire after a
        // window of 7 steps, and flips a few flags. Links repeat, identifiers become hubs
        // and stop being hubs, components merge and split.
        const WINDOW: usize = 7;
        let config = config(6, 3);
        let mut rng = Rng(42);
        let mut steps: Vec<Step> = (0..60).map(|t| Step::at(t * 10)).collect();
        let mut delinquent = BTreeSet::new();
        let mut new = BTreeSet::new();
        let mut expected = Vec::new();
        let mut live: BTreeMap<(u64, u64), isize> = BTreeMap::new();
        let mut hub_steps = 0;
        for t in 0..steps.len() {
            for _ in 0..2 + rng.below(11) {
                // A third of the links go to three popular identifiers, which cross the
                // hub threshold now and then.
                let id = if rng.below(3) == 0 {
                    1_000 + rng.below(3)
                } else {
                    1_100 + rng.below(40)
                };
                let link = (rng.below(40), id);
                steps[t].links.push((link, 1));
                if t + WINDOW < steps.len() {
                    steps[t + WINDOW].links.push((link, -1));
                }
            }
            for _ in 0..rng.below(4) {
                let customer = rng.below(40);
                let (set, list) = if rng.below(2) == 0 {
                    (&mut delinquent, &mut steps[t].delinquent)
                } else {
                    (&mut new, &mut steps[t].new)
                };
                let diff = if set.remove(&customer) {
                    -1
                } else {
                    set.insert(customer);
                    1
                };
                list.push((customer, diff));
            }
            for (link, diff) in &steps[t].links {
                *live.entry(*link).or_default() += diff;
            }
            let present: BTreeSet<(u64, u64)> = live
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(l, _)| *l)
                .collect();
            let mut per_id: BTreeMap<u64, u32> = BTreeMap::new();
            for (_, id) in &present {
                *per_id.entry(*id).or_default() += 1;
            }
            hub_steps += usize::from(per_id.values().any(|n| *n > 6));
            expected.push(oracle(&present, &delinquent, &new, &config));
        }
        let sizes: BTreeSet<u32> = expected
            .iter()
            .flat_map(|m| m.values().map(|i| i.size))
            .collect();
        assert!(sizes.len() >= 5, "rings of several sizes: {sizes:?}");
        assert!(
            (5..55).contains(&hub_steps),
            "hubs come and go: {hub_steps} steps with one"
        );
        for workers in [1, 2] {
            let updates = run(steps.clone(), config.clone(), workers);
            for (step, want) in steps.iter().zip(&expected) {
                let got = state_at(&updates, step.time);
                assert_eq!(&got, want, "time {} on {workers} workers", step.time);
            }
        }
    }
}
