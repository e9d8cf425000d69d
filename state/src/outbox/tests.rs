//! Outbox tests against a real RocksDB in a temporary directory.

use super::*;
use crate::{Fingerprint, OpenMode};

/// A fresh state directory, removed when dropped.
struct TempState {
    path: std::path::PathBuf,
    outbox: Outbox,
}

impl Drop for TempState {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

fn temp(name: &str) -> TempState {
    let path = std::env::temp_dir().join(format!("riskwatch-outbox-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&path);
    TempState {
        outbox: open(&path),
        path,
    }
}

fn open(path: &std::path::Path) -> Outbox {
    let store = StateDir::open(path, OpenMode::CreateIfMissing, &Fingerprint::new())
        .expect("opens the state directory");
    Outbox::new(Arc::new(store))
}

fn entry(endpoint: &str, order_key: &str, seq: u64, time: u64) -> OutboxEntry {
    let id = if seq == 0 {
        order_key.to_string()
    } else {
        format!("{order_key}:{seq}")
    };
    OutboxEntry {
        endpoint: endpoint.into(),
        id,
        event_type: if seq == 0 {
            "alert.raised"
        } else {
            "case.updated"
        }
        .into(),
        order_key: order_key.into(),
        seq,
        time,
        body: format!("{{\"n\":{time}}}").into_bytes(),
    }
}

fn stage_all(outbox: &Outbox, entries: &[OutboxEntry]) -> usize {
    let mut batch = Checkpoint::new();
    let mut n = 0;
    for e in entries {
        n += usize::from(stage(outbox.store(), &mut batch, e).unwrap());
    }
    outbox.store().write(batch).unwrap();
    n
}

#[test]
fn pending_comes_out_by_endpoint_time_order_key_and_seq() {
    let t = temp("order");
    let entries = vec![
        entry("b", "c-1", 2, 300),
        entry("a", "a-9", 0, 1 << 40),
        entry("a", "c-1", 10, 256),
        entry("a", "c-1", 9, 256),
        entry("a", "a-1", 0, 255),
        entry("a-x", "a-0", 0, 1),
    ];
    assert_eq!(stage_all(&t.outbox, &entries), 6);
    let got: Vec<(String, u64, String, u64)> = t
        .outbox
        .pending()
        .unwrap()
        .into_iter()
        .map(|e| (e.endpoint, e.time, e.order_key, e.seq))
        .collect();
    let mut want: Vec<_> = entries
        .iter()
        .map(|e| (e.endpoint.clone(), e.time, e.order_key.clone(), e.seq))
        .collect();
    want.sort();
    assert_eq!(got, want);
    assert_eq!(t.outbox.pending_for("a", 2).unwrap().len(), 2);
    assert_eq!(t.outbox.pending_for("a", 10).unwrap().len(), 4);
    assert_eq!(t.outbox.depth().unwrap(), 6);
    assert_eq!(t.outbox.depth_of("a").unwrap(), 4);
    assert_eq!(t.outbox.depth_of("a-x").unwrap(), 1);
}

#[test]
fn staging_never_overwrites_pending_delivered_or_dead_entries() {
    let t = temp("never-overwrite");
    let first = entry("a", "c-1", 1, 10);
    assert_eq!(stage_all(&t.outbox, std::slice::from_ref(&first)), 1);
    let mut again = first.clone();
    again.body = b"{\"emitted_at\":\"later\"}".to_vec();
    assert_eq!(stage_all(&t.outbox, std::slice::from_ref(&again)), 0);
    assert_eq!(t.outbox.pending().unwrap(), vec![first.clone()]);

    t.outbox.delivered(&first).unwrap();
    assert!(t.outbox.is_delivered("a", &first.id).unwrap());
    assert!(!t.outbox.is_delivered("b", &first.id).unwrap());
    assert_eq!(t.outbox.depth().unwrap(), 0);
    assert_eq!(stage_all(&t.outbox, std::slice::from_ref(&again)), 0);
    assert!(t.outbox.pending().unwrap().is_empty());

    let second = entry("a", "c-1", 2, 20);
    stage_all(&t.outbox, std::slice::from_ref(&second));
    t.outbox.dead_letter(&second, "http_4xx:410").unwrap();
    assert_eq!(stage_all(&t.outbox, std::slice::from_ref(&second)), 0);
    let dead = t.outbox.dead_letters().unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].reason, "http_4xx:410");
    assert_eq!(dead[0].entry, second);
    // The same event for another endpoint is its own entry.
    let other = OutboxEntry {
        endpoint: "b".into(),
        ..second.clone()
    };
    assert_eq!(stage_all(&t.outbox, std::slice::from_ref(&other)), 1);
}

#[test]
fn redeliver_moves_dead_letters_back_with_their_bodies() {
    let t = temp("redeliver");
    let entries: Vec<_> = (1..=3).map(|s| entry("a", "c-7", s, s * 10)).collect();
    stage_all(&t.outbox, &entries);
    for e in &entries {
        t.outbox.dead_letter(e, "timeout").unwrap();
    }
    assert_eq!(t.outbox.depth().unwrap(), 0);
    assert_eq!(t.outbox.redeliver(Redeliver::Id("nope")).unwrap(), 0);
    assert_eq!(t.outbox.redeliver(Redeliver::Id("c-7:2")).unwrap(), 1);
    assert_eq!(t.outbox.pending().unwrap(), vec![entries[1].clone()]);
    assert_eq!(t.outbox.dead_letters().unwrap().len(), 2);
    assert_eq!(t.outbox.redeliver(Redeliver::All).unwrap(), 2);
    assert_eq!(t.outbox.pending().unwrap(), entries);
    assert!(t.outbox.dead_letters().unwrap().is_empty());
    t.outbox.delivered_all(&entries).unwrap();
    assert_eq!(t.outbox.depth().unwrap(), 0);
}

#[test]
fn the_outbox_survives_a_reopen() {
    let path = std::env::temp_dir().join(format!("riskwatch-outbox-reopen-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&path);
    let e = entry("a", "d-1", 0, 5);
    stage_all(&open(&path), std::slice::from_ref(&e));
    // The first handle is closed; the directory is opened again.
    let t = TempState {
        outbox: open(&path),
        path,
    };
    assert_eq!(t.outbox.pending().unwrap(), vec![e]);
}

#[test]
fn pruning_the_ledger_drops_old_acknowledgements_only() {
    let t = temp("prune");
    let old = entry("a", "a-1", 0, 1);
    let new = entry("a", "a-2", 0, 2);
    stage_all(&t.outbox, &[old.clone(), new.clone()]);
    t.outbox.delivered(&old).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(5));
    let cut = now_ms();
    std::thread::sleep(std::time::Duration::from_millis(5));
    t.outbox.delivered(&new).unwrap();
    assert_eq!(t.outbox.prune_delivered(cut).unwrap(), 1);
    assert!(!t.outbox.is_delivered("a", "a-1").unwrap());
    assert!(t.outbox.is_delivered("a", "a-2").unwrap());
    assert_eq!(t.outbox.prune_delivered(cut).unwrap(), 0);
}
