//! [`Checkpoint`]: a batch of puts and deletes over the tables, written atomically by
//! [`StateDir::commit`](crate::StateDir::commit) or [`StateDir::write`](crate::StateDir::write).
//!
//! The operations are kept in one byte buffer plus a vector of small fixed-size records,
//! so building a batch costs two growing allocations, not one per key. They are applied in
//! the order they were added: a later put of a key wins over an earlier delete of it.

use std::time::Duration;

use crate::table::Table;

/// One atomic batch of writes: puts and deletes in any tables. Applied all together or not
/// at all.
#[derive(Clone, Debug, Default)]
pub struct Checkpoint {
    /// Keys and values of every operation, back to back.
    data: Vec<u8>,
    /// The operations, each a range of `data`.
    ops: Vec<Op>,
}

#[derive(Clone, Copy, Debug)]
struct Op {
    kind: OpKind,
    table: Table,
    /// `data[start..mid]` is the key (or the range start), `data[mid..end]` the value (or
    /// the range end; empty for a delete).
    start: usize,
    mid: usize,
    end: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OpKind {
    Put,
    Delete,
    DeleteRange,
}

/// One operation of a [`Checkpoint`], borrowed from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckpointOp<'a> {
    /// Set `key` to `value`.
    Put {
        /// The table.
        table: Table,
        /// The key.
        key: &'a [u8],
        /// The value.
        value: &'a [u8],
    },
    /// Remove `key`.
    Delete {
        /// The table.
        table: Table,
        /// The key.
        key: &'a [u8],
    },
    /// Remove every key in `[from, to)`.
    DeleteRange {
        /// The table.
        table: Table,
        /// First key removed.
        from: &'a [u8],
        /// First key kept.
        to: &'a [u8],
    },
}

impl Checkpoint {
    /// An empty batch.
    pub fn new() -> Checkpoint {
        Checkpoint::default()
    }

    /// Sets `key` to `value` in `table`. Amortised constant time; copies both.
    pub fn put(&mut self, table: Table, key: &[u8], value: &[u8]) {
        self.push(OpKind::Put, table, key, value);
    }

    /// Removes `key` from `table` (nothing happens if it is absent).
    pub fn delete(&mut self, table: Table, key: &[u8]) {
        self.push(OpKind::Delete, table, key, &[]);
    }

    /// Removes every key `k` of `table` with `from <= k < to` (bytewise order). An empty
    /// range (`from >= to`) removes nothing and is not recorded.
    pub fn delete_range(&mut self, table: Table, from: &[u8], to: &[u8]) {
        if from < to {
            self.push(OpKind::DeleteRange, table, from, to);
        }
    }

    /// The number of operations.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// No operations.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Bytes of keys and values (range bounds included) over all operations.
    pub fn bytes(&self) -> u64 {
        self.data.len() as u64
    }

    /// Removes every operation, keeping the buffers' capacity.
    pub fn clear(&mut self) {
        self.data.clear();
        self.ops.clear();
    }

    /// The operations in the order they were added.
    pub fn ops(&self) -> impl ExactSizeIterator<Item = CheckpointOp<'_>> + '_ {
        self.ops.iter().map(|op| {
            let (a, b) = (&self.data[op.start..op.mid], &self.data[op.mid..op.end]);
            match op.kind {
                OpKind::Put => CheckpointOp::Put {
                    table: op.table,
                    key: a,
                    value: b,
                },
                OpKind::Delete => CheckpointOp::Delete {
                    table: op.table,
                    key: a,
                },
                OpKind::DeleteRange => CheckpointOp::DeleteRange {
                    table: op.table,
                    from: a,
                    to: b,
                },
            }
        })
    }

    fn push(&mut self, kind: OpKind, table: Table, a: &[u8], b: &[u8]) {
        let start = self.data.len();
        self.data.extend_from_slice(a);
        let mid = self.data.len();
        self.data.extend_from_slice(b);
        let end = self.data.len();
        self.ops.push(Op {
            kind,
            table,
            start,
            mid,
            end,
        });
    }
}

/// What one [`commit`](crate::StateDir::commit) wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitStats {
    /// Size of the RocksDB write batch, meta record included: what went to the WAL.
    pub bytes: u64,
    /// Operations of the checkpoint ([`Checkpoint::len`]), the meta record not counted.
    pub keys: u64,
    /// Wall time of building, writing and syncing the batch.
    pub duration: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_come_back_in_order() {
        let mut c = Checkpoint::new();
        c.put(Table::Ledger, b"k1", b"v1");
        c.delete(Table::Windows, b"k2");
        c.delete_range(Table::Dedupe, b"a", b"b");
        c.delete_range(Table::Dedupe, b"b", b"a");
        c.delete_range(Table::Dedupe, b"a", b"a");
        c.put(Table::Outbox, b"", b"");
        assert_eq!(c.len(), 4);
        assert_eq!(c.bytes(), 2 + 2 + 2 + 1 + 1);
        let ops: Vec<_> = c.ops().collect();
        assert_eq!(
            ops,
            vec![
                CheckpointOp::Put {
                    table: Table::Ledger,
                    key: b"k1",
                    value: b"v1"
                },
                CheckpointOp::Delete {
                    table: Table::Windows,
                    key: b"k2"
                },
                CheckpointOp::DeleteRange {
                    table: Table::Dedupe,
                    from: b"a",
                    to: b"b"
                },
                CheckpointOp::Put {
                    table: Table::Outbox,
                    key: b"",
                    value: b""
                },
            ]
        );
        c.clear();
        assert!(c.is_empty());
        assert_eq!(c.bytes(), 0);
    }
}
