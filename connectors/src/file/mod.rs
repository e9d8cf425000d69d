//! NDJSON files: the embedded default source (replay) and sinks (outputs, dead letters).

pub mod sink;
pub mod source;

pub use sink::{write_lines, write_ndjson};
pub use source::{file_seq, merge, read_dir, MergeOptions, Merged};
