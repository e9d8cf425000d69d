//! [`Table`]: the RocksDB column families the caller's state lives in.
//!
//! Besides these, a state directory has RocksDB's `default` column family (unused) and a
//! `meta` column family of the store's own records (the last checkpoint's
//! [`CheckpointMeta`](crate::CheckpointMeta) and the directory's fingerprint), which no
//! caller writes.

/// A column family ("table"). Keys and values are opaque bytes chosen by the caller; see
/// [`keys`](crate::keys) for the worker-prefixed key layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    /// Per-customer ledger: balances, loans, installments.
    Ledger,
    /// Sliding-window aggregates.
    Windows,
    /// Event ids seen within the duplicate-detection horizon.
    Dedupe,
    /// Per-customer evaluation state (levels, actions, cases).
    Evaluate,
    /// Source bookkeeping beyond the positions in the checkpoint meta.
    Sources,
    /// Webhook deliveries not yet acknowledged.
    Outbox,
    /// Webhook deliveries acknowledged by the receiver.
    Delivered,
    /// Webhook deliveries given up on.
    DeadLetters,
}

/// The column family of the store's own records.
pub(crate) const META_CF: &str = "meta";

impl Table {
    /// Every table, in a fixed order.
    pub const ALL: [Table; 8] = [
        Table::Ledger,
        Table::Windows,
        Table::Dedupe,
        Table::Evaluate,
        Table::Sources,
        Table::Outbox,
        Table::Delivered,
        Table::DeadLetters,
    ];

    /// The column family name (`"dead_letters"`).
    pub fn name(self) -> &'static str {
        match self {
            Table::Ledger => "ledger",
            Table::Windows => "windows",
            Table::Dedupe => "dedupe",
            Table::Evaluate => "evaluate",
            Table::Sources => "sources",
            Table::Outbox => "outbox",
            Table::Delivered => "delivered",
            Table::DeadLetters => "dead_letters",
        }
    }

    /// The table of a column family name, if it is one of [`Table::ALL`].
    pub fn from_name(name: &str) -> Option<Table> {
        Table::ALL.into_iter().find(|t| t.name() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_round_trip() {
        for t in Table::ALL {
            assert_eq!(Table::from_name(t.name()), Some(t));
            assert_ne!(t.name(), META_CF);
            assert_ne!(t.name(), "default");
        }
        let names: std::collections::BTreeSet<_> = Table::ALL.iter().map(|t| t.name()).collect();
        assert_eq!(names.len(), Table::ALL.len());
    }
}
