//! Fraud-ring detection on a generated book: links derived from the generator's NDJSON,
//! windowed to 30 days and run once through `riskwatch_dataflows::rings::rings` at the
//! book's end, then checked against `truth.ndjson`:
//!
//! - recall: at least 95 % of ring members (truth `ring_id` non-null) are in a detected ring;
//! - false positives: at most 1 % of healthy customers are in a detected ring;
//! - purity: no detected ring mixes two truth rings, or a truth ring with customers outside
//!   rings (the carrier-NAT hub IPs must not merge unrelated customers);
//! - every member's `RingInfo` matches its ring (least key, size, delinquent members).

use differential_dataflow::input::Input;
use riskwatch_connectors::generator::{generate, GenConfig, DAY_MS};
use riskwatch_dataflows::rings::{ring_id, rings, RingInfo};
use riskwatch_model::config::RingsConfig;
use riskwatch_model::event::id_hash;
use serde_json::Value;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::rc::Rc;

const WINDOW_MS: u64 = 30 * DAY_MS;

/// The links `(customer key, identifier)` of one NDJSON file that are inside the window
/// ending at `end`: an event at `ts` links during `[ts, ts + 30 d)`.
fn links_in(path: &Path, end: u64, links: &mut BTreeSet<(u64, u64)>) {
    let text = std::fs::read_to_string(path).expect("the generator wrote the file");
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).expect("the generator writes valid JSON");
        let ts = v["ts"].as_u64().expect("every record has a ts");
        if ts >= end || ts + WINDOW_MS <= end {
            continue;
        }
        let key = id_hash(
            v["customer_id"]
                .as_str()
                .expect("every record has a customer"),
        );
        for (kind, field) in [(1u8, "device_id"), (2, "ip"), (3, "phone_hash")] {
            if let Some(value) = v[field].as_str() {
                // Tagged by kind, so a device and an IP with equal text never link.
                let mut bytes = vec![kind];
                bytes.extend_from_slice(&id_hash(value).to_le_bytes());
                links.insert((key, xxhash_rust::xxh3::xxh3_64(&bytes)));
            }
        }
    }
}

/// Runs `rings` once over the given sets (all inserted at time 0) and returns its output.
fn detect(
    links: BTreeSet<(u64, u64)>,
    delinquent: BTreeSet<u64>,
    config: RingsConfig,
) -> BTreeMap<u64, RingInfo> {
    timely::execute_directly(move |worker| {
        let out = Rc::new(RefCell::new(Vec::new()));
        let sink = out.clone();
        let (mut links_in, mut delinquent_in, mut new_in, probe) =
            worker.dataflow::<u64, _, _>(|scope| {
                let (links_in, links) = scope.new_collection();
                let (delinquent_in, delinquent) = scope.new_collection();
                let (new_in, new_customers) = scope.new_collection();
                let (probe, _) = rings(links, delinquent, new_customers, &config)
                    .inspect(move |update| sink.borrow_mut().push(update.clone()))
                    .probe();
                (links_in, delinquent_in, new_in, probe)
            });
        for link in links {
            links_in.insert(link);
        }
        for customer in delinquent {
            delinquent_in.insert(customer);
        }
        links_in.advance_to(1);
        delinquent_in.advance_to(1);
        new_in.advance_to(1);
        links_in.flush();
        delinquent_in.flush();
        new_in.flush();
        worker.step_while(|| probe.less_than(&1));
        let mut members = BTreeMap::new();
        for ((customer, info), time, diff) in out.borrow().iter() {
            assert_eq!((*time, *diff), (0, 1), "one insertion per member at time 0");
            assert!(members.insert(*customer, info.clone()).is_none());
        }
        members
    })
}

#[test]
fn generated_rings_are_found_and_hubs_do_not_merge_unrelated_customers() {
    let cfg = GenConfig {
        customers: 3_000,
        days: 60,
        ..GenConfig::default()
    };
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("rings-generated-book");
    generate(&cfg, &dir).expect("the generator runs");
    let end = cfg.end_ms();

    // Truth: archetype, ring and default time per customer key.
    let mut truth: BTreeMap<u64, (String, Option<String>, Option<u64>)> = BTreeMap::new();
    let text = std::fs::read_to_string(dir.join("truth.ndjson")).expect("truth is written");
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).expect("valid truth line");
        let key = id_hash(v["customer_id"].as_str().expect("customer_id"));
        let archetype = v["archetype"].as_str().expect("archetype").to_string();
        let ring = v["ring_id"].as_str().map(str::to_string);
        truth.insert(key, (archetype, ring, v["defaults_at"].as_u64()));
    }
    assert_eq!(truth.len(), 3_000, "customer keys do not collide");

    let mut links = BTreeSet::new();
    for file in ["transactions", "behaviors", "customers"] {
        links_in(&dir.join(format!("{file}.ndjson")), end, &mut links);
    }
    // DPD >= 1 at the end: the first never-paid installment fell due before it.
    let delinquent: BTreeSet<u64> = truth
        .iter()
        .filter(|(_, (_, _, defaults_at))| defaults_at.is_some_and(|t| t < end))
        .map(|(key, _)| *key)
        .collect();
    let config = RingsConfig::default();
    let detected = detect(links.clone(), delinquent.clone(), config.clone());

    // Every member carries its ring's info: least key, size and delinquent count.
    let mut by_ring: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for (customer, info) in &detected {
        by_ring.entry(info.ring).or_default().push(*customer);
    }
    for (ring, members) in &by_ring {
        let info = &detected[&members[0]];
        assert_eq!(*ring, members[0], "{}: the least key", ring_id(*ring));
        assert_eq!(info.size as usize, members.len());
        assert!(info.size >= config.min_ring_size);
        let late = members.iter().filter(|m| delinquent.contains(m)).count();
        assert_eq!(info.delinquent as usize, late);
        assert_eq!(info.new_members, 0);
        assert!(members.iter().all(|m| detected[m] == *info));
    }

    // Purity: one truth ring per detected ring, and nobody from outside rings.
    for (ring, members) in &by_ring {
        let truths: BTreeSet<Option<&String>> =
            members.iter().map(|m| truth[m].1.as_ref()).collect();
        assert!(
            truths.len() == 1 && truths.iter().all(Option::is_some),
            "{} mixes {truths:?}",
            ring_id(*ring)
        );
    }

    let members: Vec<u64> = truth
        .iter()
        .filter(|(_, (_, ring, _))| ring.is_some())
        .map(|(key, _)| *key)
        .collect();
    let healthy: Vec<u64> = truth
        .iter()
        .filter(|(_, (archetype, _, _))| archetype == "healthy")
        .map(|(key, _)| *key)
        .collect();
    let found = members.iter().filter(|m| detected.contains_key(m)).count();
    let healthy_in_ring = healthy.iter().filter(|h| detected.contains_key(h)).count();
    let truth_rings: BTreeSet<&String> = truth.values().filter_map(|t| t.1.as_ref()).collect();
    let recall = found as f64 / members.len() as f64;
    let healthy_rate = healthy_in_ring as f64 / healthy.len() as f64;
    eprintln!(
        "links {}, ring members {}, truth rings {}, detected rings {}, recall {:.4}, \
         healthy in a ring {healthy_in_ring}/{} = {:.4}",
        links.len(),
        members.len(),
        truth_rings.len(),
        by_ring.len(),
        recall,
        healthy.len(),
        healthy_rate
    );
    assert!(!members.is_empty(), "the book has rings");
    assert!(recall >= 0.95, "ring recall {recall}");
    assert!(
        healthy_rate <= 0.01,
        "healthy customers in rings {healthy_rate}"
    );

    // Without the hub threshold the carrier-NAT IPs do merge unrelated customers, so the
    // purity above is the threshold's doing.
    let unbounded = RingsConfig {
        max_customers_per_identifier: u32::MAX,
        ..config
    };
    let merged = detect(links, delinquent, unbounded);
    let merged_healthy = healthy.iter().filter(|h| merged.contains_key(h)).count();
    eprintln!("without hubs ignored: healthy in a ring {merged_healthy}");
    assert!(merged_healthy > healthy_in_ring);
}
