//! NDJSON files: the embedded default source (replay) and sinks (outputs, dead letters).
//!
//! - [`inputs`]: finding the four input files, failing fast on a missing one.
//! - [`lines`]: reading a stream in chunks of lines, decoded in parallel.
//! - [`merge`]: the bounded event-time merge (`future_ts`, reordering, lateness).
//! - [`source`]: a whole directory or four texts merged and collected.
//! - [`sink`]: output files written atomically.
//! - [`snapshots`]: book snapshots as NDJSON and Parquet.

pub mod inputs;
pub mod lines;
pub mod merge;
pub mod sink;
pub mod snapshots;
pub mod source;

pub use inputs::{find_inputs, input_name, parse_streams, InputFiles};
pub use lines::file_seq;
pub use merge::{MergeOptions, MergeStats, Merger};
pub use sink::{write_json_atomic, write_lines, write_ndjson, OutputFile, OutputSet};
pub use source::{merge, read_dir, Merged};
