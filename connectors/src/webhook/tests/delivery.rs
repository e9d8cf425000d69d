//! The dispatcher against real HTTP servers on loopback: exactly-once after de-dup under
//! chaos, per-case order, 4xx dead-lettered at once, retries spent, Retry-After, redelivery,
//! the spawned handle, and a throughput measurement.

use super::super::dispatch::Dispatcher;
use super::super::receiver::Chaos;
use super::*;
use riskwatch_state::outbox::Redeliver;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A server answering every request with the status in `status`, counting requests.
async fn fixed_status_server(status: Arc<AtomicU16>, requests: Arc<AtomicU64>) -> SocketAddr {
    let app = axum::Router::new().fallback(move || {
        let status = status.load(Ordering::SeqCst);
        requests.fetch_add(1, Ordering::SeqCst);
        async move { axum::http::StatusCode::from_u16(status).expect("valid status") }
    });
    serve_router(app).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_every_entry_delivered_once_in_case_order_and_retry_after_honoured() {
    let chaos = Chaos {
        fail_ratio: 0.3,
        too_many_ratio: 0.05,
        delay_ratio: 0.05,
        delay_ms: 400,
        seed: 42,
    };
    let (receiver, addr) = start_receiver(chaos).await;
    let t = temp_state("chaos");
    let mut config = endpoint_config("collect", &format!("http://{addr}/hooks"));
    config.timeout = Millis(200);
    config.max_attempts = 40;
    let mut entries = Vec::new();
    for c in 0..30u64 {
        for seq in 1..=4 {
            entries.push(entry(
                "collect",
                &format!("c-{c}"),
                seq,
                1_000 + c * 10 + seq,
            ));
        }
    }
    for a in 0..60u64 {
        entries.push(entry("collect", &format!("a-{a}"), 0, 1_000 + a));
    }
    stage_all(&t.outbox, &entries);
    let dispatcher = Dispatcher::new(t.outbox.clone(), vec![endpoint(&config)]);
    let started = Instant::now();
    dispatcher.run_until_drained().await.expect("drains");
    let elapsed = started.elapsed();

    // Drained: nothing pending, nothing dead, everything in the delivered ledger.
    assert_eq!(t.outbox.depth().unwrap(), 0);
    let dead = t.outbox.dead_letters().unwrap();
    assert!(
        dead.is_empty(),
        "{:?}",
        dead.iter()
            .map(|d| (&d.entry.id, &d.reason))
            .collect::<Vec<_>>()
    );
    for e in &entries {
        assert!(t.outbox.is_delivered("collect", &e.id).unwrap(), "{}", e.id);
    }
    // Exactly once after de-dup, every signature verified.
    let recorded = receiver.recorded();
    let ids: Vec<&str> = recorded.iter().map(|a| a.id.as_str()).collect();
    let unique: BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(ids.len(), entries.len());
    assert_eq!(unique, entries.iter().map(|e| e.id.as_str()).collect());
    let stats = receiver.stats();
    assert_eq!(stats.unauthorized, 0);
    assert!(
        stats.chaos > 0,
        "the chaos seed injects failures: {stats:?}"
    );
    // Per-case order: the receiver never had to hold an event for a gap, and recorded
    // each case's events in seq order.
    assert_eq!(stats.held, 0);
    let mut last_seq: BTreeMap<String, u64> = BTreeMap::new();
    for a in &recorded {
        if let Some(case) = a.data["case_id"].as_str() {
            let seq = a.data["seq"].as_u64().unwrap();
            let prev = last_seq.insert(case.to_string(), seq).unwrap_or(0);
            assert_eq!(seq, prev + 1, "{case}");
        }
    }
    // Retry-After: 1 is a lower bound on the next attempt of the same id.
    let mut honoured = 0;
    for e in &entries {
        let arrivals = receiver.arrivals(&e.id);
        for pair in arrivals.windows(2) {
            if pair[0].1 == 429 {
                let gap = pair[1].0 - pair[0].0;
                assert!(gap >= Duration::from_millis(950), "{}: {gap:?}", e.id);
                honoured += 1;
            }
        }
    }
    assert!(honoured > 0, "the seed gives some 429s");
    // Counters: every entry delivered once, every failure retried.
    let [snap] = dispatcher.counters().snapshot().try_into().unwrap();
    assert_eq!(snap.delivered, entries.len() as u64);
    assert_eq!(snap.dead, 0);
    assert!(snap.retried >= stats.chaos, "{snap:?} {stats:?}");
    eprintln!(
        "chaos: {} events in {elapsed:?}, {} retries, {} chaos answers, {honoured} Retry-After waits",
        entries.len(),
        snap.retried,
        stats.chaos
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_4xx_is_dead_lettered_at_once_and_redelivered_later() {
    let status = Arc::new(AtomicU16::new(404));
    let requests = Arc::new(AtomicU64::new(0));
    let addr = fixed_status_server(status.clone(), requests.clone()).await;
    let t = temp_state("4xx");
    let config = endpoint_config("crm", &format!("http://{addr}/"));
    let entries: Vec<_> = (0..3)
        .map(|i| entry("crm", &format!("a-{i}"), 0, i))
        .collect();
    stage_all(&t.outbox, &entries);
    let dispatcher = Dispatcher::new(t.outbox.clone(), vec![endpoint(&config)]);
    dispatcher.run_until_drained().await.unwrap();
    assert_eq!(requests.load(Ordering::SeqCst), 3, "one attempt each");
    let dead = t.outbox.dead_letters().unwrap();
    assert_eq!(dead.len(), 3);
    assert!(dead.iter().all(|d| d.reason == "http_4xx:404"));
    assert_eq!(dispatcher.counters().snapshot()[0].dead, 3);
    assert_eq!(dispatcher.counters().snapshot()[0].retried, 0);

    status.store(200, Ordering::SeqCst);
    assert_eq!(t.outbox.redeliver(Redeliver::Id("a-1")).unwrap(), 1);
    dispatcher.run_until_drained().await.unwrap();
    assert!(t.outbox.is_delivered("crm", "a-1").unwrap());
    assert!(!t.outbox.is_delivered("crm", "a-0").unwrap());
    assert_eq!(t.outbox.redeliver(Redeliver::All).unwrap(), 2);
    dispatcher.run_until_drained().await.unwrap();
    for e in &entries {
        assert!(t.outbox.is_delivered("crm", &e.id).unwrap());
    }
    assert!(t.outbox.dead_letters().unwrap().is_empty());
    assert_eq!(requests.load(Ordering::SeqCst), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spent_attempts_dead_letter_with_the_last_reason() {
    let status = Arc::new(AtomicU16::new(503));
    let requests = Arc::new(AtomicU64::new(0));
    let addr = fixed_status_server(status, requests.clone()).await;
    // A port nobody listens on: connection refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_addr = closed.local_addr().unwrap();
    drop(closed);
    let t = temp_state("spent");
    let mut busy = endpoint_config("busy", &format!("http://{addr}/"));
    busy.max_attempts = 3;
    let mut gone = endpoint_config("gone", &format!("http://{closed_addr}/"));
    gone.max_attempts = 2;
    stage_all(
        &t.outbox,
        &[entry("busy", "a-1", 0, 1), entry("gone", "a-1", 0, 1)],
    );
    let dispatcher = Dispatcher::new(t.outbox.clone(), vec![endpoint(&busy), endpoint(&gone)]);
    dispatcher.run_until_drained().await.unwrap();
    assert_eq!(requests.load(Ordering::SeqCst), 3);
    let reasons: BTreeMap<String, String> = t
        .outbox
        .dead_letters()
        .unwrap()
        .into_iter()
        .map(|d| (d.entry.endpoint, d.reason))
        .collect();
    assert_eq!(reasons["busy"], "http_5xx:503");
    assert_eq!(reasons["gone"], "connect");
    let snap = dispatcher.counters().snapshot();
    assert_eq!((snap[0].retried, snap[0].dead), (2, 1));
    assert_eq!((snap[1].retried, snap[1].dead), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spawned_dispatcher_delivers_after_notify_and_shuts_down() {
    let (receiver, addr) = start_receiver(Chaos::default()).await;
    let t = temp_state("spawned");
    let config = endpoint_config("live", &format!("http://{addr}/"));
    let handle = Dispatcher::new(t.outbox.clone(), vec![endpoint(&config)])
        .spawn()
        .unwrap();
    for round in 0..3u64 {
        let entries: Vec<_> = (1..=4)
            .map(|s| entry("live", &format!("c-{round}"), s, round * 10 + s))
            .collect();
        stage_all(&t.outbox, &entries);
        handle.notify();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    // The receiver records an event before its answer reaches the dispatcher.
    let delivered = || handle.counters().snapshot()[0].delivered;
    while (receiver.recorded().len() < 12 || delivered() < 12) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(receiver.recorded().len(), 12);
    assert_eq!(delivered(), 12);
    tokio::task::spawn_blocking(move || handle.shutdown())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        t.outbox.depth().unwrap(),
        0,
        "acks are recorded before it stops"
    );
}

/// Deliveries per second with signing, to the receiver kit on loopback (verifying every
/// signature). `cargo test --release -p riskwatch-connectors -- --ignored --nocapture
/// deliveries_per_second`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "throughput measurement"]
async fn deliveries_per_second() {
    for (label, cases, seqs, concurrency) in [
        ("alerts, concurrency 8", 4000u64, 0u64, 8u32),
        ("alerts, concurrency 32", 4000, 0, 32),
        ("400 cases x 10 events, concurrency 32", 400, 10, 32),
    ] {
        let (receiver, addr) = start_receiver(Chaos::default()).await;
        let t = temp_state(&format!("bench-{concurrency}-{seqs}"));
        let mut config = endpoint_config("bench", &format!("http://{addr}/"));
        config.concurrency = concurrency;
        let mut entries = Vec::new();
        for c in 0..cases {
            if seqs == 0 {
                entries.push(entry("bench", &format!("a-{c}"), 0, c));
            } else {
                for s in 1..=seqs {
                    entries.push(entry("bench", &format!("c-{c}"), s, c + s));
                }
            }
        }
        stage_all(&t.outbox, &entries);
        let dispatcher = Dispatcher::new(t.outbox.clone(), vec![endpoint(&config)]);
        let started = Instant::now();
        dispatcher.run_until_drained().await.unwrap();
        let secs = started.elapsed().as_secs_f64();
        assert_eq!(receiver.recorded().len(), entries.len());
        eprintln!(
            "{label}: {} deliveries in {secs:.2}s = {:.0}/s",
            entries.len(),
            entries.len() as f64 / secs
        );
    }
}
