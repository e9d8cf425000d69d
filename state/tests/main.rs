//! Integration tests of riskwatch-state against real RocksDB directories under the system
//! temp directory, and the fuzz harness: one binary, so RocksDB is linked once.
//!
//! Some tests re-execute this binary as a child process (`support::child_command`) to be
//! killed or run under a file-size limit; the child tests (`*::child_*`) do nothing unless
//! started that way.

mod atomic;
mod corruption;
mod disk_full;
mod fuzz;
mod kill;
mod open;
mod scan;
mod support;
mod versioning;
