//! The receiver kit's answers to hand-made requests: signatures, duplicates, case order.

use super::super::receiver::Chaos;
use super::*;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// POSTs `body` with the given headers; the status and the answer's text.
async fn post(addr: SocketAddr, headers: &[(&str, String)], body: &[u8]) -> (u16, String) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut request = http::Request::post(format!("http://{addr}/"));
    for (k, v) in headers {
        request = request.header(*k, v);
    }
    let response = client
        .request(
            request
                .body(Full::new(Bytes::copy_from_slice(body)))
                .unwrap(),
        )
        .await
        .expect("the receiver answers");
    let status = response.status().as_u16();
    let text = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&text).into_owned())
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The headers of `entry` signed with the test secret at `ts`.
fn signed(entry: &OutboxEntry, ts: i64) -> Vec<(&'static str, String)> {
    let signature = Signer::new(SECRET)
        .unwrap()
        .sign(&entry.id, ts, &entry.body)
        .unwrap();
    vec![
        ("webhook-id", entry.id.clone()),
        ("webhook-timestamp", ts.to_string()),
        ("webhook-signature", signature),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_missing_or_stale_signatures_are_refused_with_401() {
    let (receiver, addr) = start_receiver(Chaos::default()).await;
    let e = entry("x", "a-1", 0, 5);
    let mut tampered = signed(&e, now());
    tampered[0].1 = "a-2".into();
    assert_eq!(post(addr, &tampered, &e.body).await.0, 401);
    assert_eq!(post(addr, &[], &e.body).await.0, 401);
    let (status, text) = post(addr, &signed(&e, now() - 3600), &e.body).await;
    assert_eq!(status, 401, "{text}");
    let other = Signer::new("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
    let mut wrong_key = signed(&e, now());
    wrong_key[2].1 = other.sign(&e.id, now(), &e.body).unwrap();
    assert_eq!(post(addr, &wrong_key, &e.body).await.0, 401);
    assert!(receiver.recorded().is_empty());
    assert_eq!(receiver.stats().unauthorized, 4);
    assert_eq!(post(addr, &signed(&e, now()), &e.body).await.0, 200);
    assert_eq!(receiver.recorded().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_are_answered_200_and_not_recorded_again() {
    let out =
        std::env::temp_dir().join(format!("riskwatch-receiver-{}.ndjson", std::process::id()));
    let _ = std::fs::remove_file(&out);
    let receiver =
        Receiver::new(Verifier::new(SECRET).unwrap(), Some(&out), Chaos::default()).unwrap();
    let addr = serve_router(receiver.router()).await;
    let e = entry("x", "d-1", 0, 5);
    assert_eq!(
        post(addr, &signed(&e, now()), &e.body).await,
        (200, "ok\n".into())
    );
    let (status, text) = post(addr, &signed(&e, now()), &e.body).await;
    assert_eq!((status, text.as_str()), (200, "duplicate\n"));
    assert_eq!(receiver.recorded().len(), 1);
    assert_eq!(receiver.stats().duplicates, 1);
    let lines = std::fs::read_to_string(&out).unwrap();
    let _ = std::fs::remove_file(&out);
    let [line]: [&str; 1] = lines.lines().collect::<Vec<_>>().try_into().unwrap();
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(v["id"], "d-1");
    assert_eq!(v["type"], "alert.raised");
    assert_eq!(v["data"]["alert_id"], "d-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_events_ahead_of_a_gap_are_held_until_it_is_filled() {
    let (receiver, addr) = start_receiver(Chaos::default()).await;
    let events: Vec<_> = (1..=4).map(|s| entry("x", "c-9", s, s)).collect();
    let send = |i: usize| {
        let e = events[i].clone();
        async move { post(addr, &signed(&e, now()), &e.body).await }
    };
    assert_eq!(send(0).await.0, 200);
    let (status, text) = send(2).await;
    assert_eq!((status, text.as_str()), (202, "held: waiting for seq 2\n"));
    assert_eq!(send(3).await.0, 202);
    assert_eq!(receiver.stats().held, 2);
    assert_eq!(receiver.recorded().len(), 1);
    assert_eq!(send(1).await.0, 200);
    let seqs: Vec<u64> = receiver
        .recorded()
        .iter()
        .map(|a| a.data["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [1, 2, 3, 4]);
    assert_eq!(receiver.stats().held, 0);
    // A repeat of a held-then-recorded event is a duplicate.
    assert_eq!(send(3).await, (200, "duplicate\n".into()));
}

#[test]
fn chaos_choices_are_deterministic_per_id_and_arrival() {
    let chaos = Chaos {
        fail_ratio: 0.3,
        too_many_ratio: 0.1,
        delay_ratio: 0.2,
        delay_ms: 5,
        seed: 7,
    };
    let a = Receiver::new(Verifier::new(SECRET).unwrap(), None, chaos.clone()).unwrap();
    let b = Receiver::new(Verifier::new(SECRET).unwrap(), None, chaos).unwrap();
    let mut failures = 0;
    for i in 0..1000 {
        let id = format!("a-{i}");
        assert_eq!(a.chaos_choice(&id, 0), b.chaos_choice(&id, 0));
        failures += usize::from(a.chaos_choice(&id, 0).0.is_some());
    }
    assert!(
        (330..470).contains(&failures),
        "{failures} of 1000 fail at 0.4"
    );
}
