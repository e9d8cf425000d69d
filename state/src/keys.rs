//! Key encodings for callers: a big-endian global worker index, then big-endian integers.
//!
//! Big-endian makes RocksDB's bytewise order the numeric order, so a
//! [`scan`](crate::StateDir::scan) of [`worker_prefix`] yields one worker's entries sorted
//! by `k` (or by `(a, b)`). State is keyed by the global worker index, so a process reads
//! back exactly the customers of the workers it runs.

/// The 4-byte prefix of every key of `worker`.
pub fn worker_prefix(worker: u32) -> [u8; 4] {
    worker.to_be_bytes()
}

/// `worker` then `k`, 12 bytes.
pub fn key_u64(worker: u32, k: u64) -> [u8; 12] {
    let mut key = [0; 12];
    key[..4].copy_from_slice(&worker.to_be_bytes());
    key[4..].copy_from_slice(&k.to_be_bytes());
    key
}

/// `worker`, then `a`, then `b`, 20 bytes.
pub fn key_u64_u64(worker: u32, a: u64, b: u64) -> [u8; 20] {
    let mut key = [0; 20];
    key[..4].copy_from_slice(&worker.to_be_bytes());
    key[4..12].copy_from_slice(&a.to_be_bytes());
    key[12..].copy_from_slice(&b.to_be_bytes());
    key
}

/// Decodes a [`key_u64`] key: `(worker, k)`, or `None` if it is not 12 bytes.
pub fn parse_u64(key: &[u8]) -> Option<(u32, u64)> {
    let key: &[u8; 12] = key.try_into().ok()?;
    let (w, k) = key.split_at(4);
    Some((
        u32::from_be_bytes(w.try_into().ok()?),
        u64::from_be_bytes(k.try_into().ok()?),
    ))
}

/// Decodes a [`key_u64_u64`] key: `(worker, a, b)`, or `None` if it is not 20 bytes.
pub fn parse_u64_u64(key: &[u8]) -> Option<(u32, u64, u64)> {
    let key: &[u8; 20] = key.try_into().ok()?;
    Some((
        u32::from_be_bytes(key[..4].try_into().ok()?),
        u64::from_be_bytes(key[4..12].try_into().ok()?),
        u64::from_be_bytes(key[12..].try_into().ok()?),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_order_is_numeric_order() {
        let ks = [0, 1, 255, 256, u32::MAX as u64, u64::MAX - 1, u64::MAX];
        for w in [0, 1, 7, u32::MAX] {
            for pair in ks.windows(2) {
                assert!(key_u64(w, pair[0]) < key_u64(w, pair[1]));
                assert!(key_u64_u64(w, pair[0], u64::MAX) < key_u64_u64(w, pair[1], 0));
                assert!(key_u64_u64(w, 5, pair[0]) < key_u64_u64(w, 5, pair[1]));
            }
            assert!(key_u64(w, 9).starts_with(&worker_prefix(w)));
            assert_eq!(parse_u64(&key_u64(w, 9)), Some((w, 9)));
            assert_eq!(parse_u64_u64(&key_u64_u64(w, 9, 3)), Some((w, 9, 3)));
        }
        assert!(key_u64(1, u64::MAX) < key_u64(2, 0));
        assert_eq!(parse_u64(b"short"), None);
    }
}
