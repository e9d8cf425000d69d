//! NDJSON file source for replay: reads the four input files, decodes them in parallel,
//! and merges them in event-time order into timed events.
//!
//! Merge semantics (DESIGN.md, Time): the files are merged by `ts` (ties by stream order:
//! customers, loans, transactions, behaviors; then line). The frontier is the largest
//! event time merged so far; a record older than it is late and enters at the frontier.
//! A record more than `max_future_skew` ahead of the frontier is rejected with `future_ts`:
//! in a file, "the frontier" when the record would be merged is estimated by the earliest
//! record that follows it in the same file, so one bad timestamp neither expires every
//! window nor holds back the rest of its file; the last record of a file is compared with
//! the frontier when it is merged. The result depends only on the input bytes, never on
//! the number of threads.

use riskwatch_model::decode::{decode, rejected_json, Reject, RejectCode};
use riskwatch_model::event::{Event, Stream};
use riskwatch_model::time::ceil_to;
use std::path::Path;

/// A merged input: events with their timely time, in merge order, and the rejected lines.
#[derive(Debug, Default)]
pub struct Merged {
    /// `(time, event)` in non-decreasing time order.
    pub events: Vec<(u64, Event)>,
    /// Rejected records as rejected.schema.json lines, in stream then line order.
    pub rejected: Vec<String>,
    /// Rejected counts by reason (`json`, `missing:amount`, …, `future_ts`).
    pub rejected_by_reason: std::collections::BTreeMap<String, u64>,
    /// Records read per stream (valid or not).
    pub read: [u64; 4],
    /// Events that entered late (after the frontier passed their tick).
    pub late: u64,
    /// The largest event `ts` merged (0 when none).
    pub max_ts: u64,
    /// Bytes read.
    pub bytes: u64,
}

/// Options of the merge.
#[derive(Clone, Copy, Debug)]
pub struct MergeOptions {
    /// Tick in ms.
    pub tick: u64,
    /// Max skew ahead of the frontier, in ms.
    pub max_future_skew: u64,
    /// Ignore events with `ts` after this (`--until`).
    pub until: Option<u64>,
    /// Decode threads.
    pub threads: usize,
}

/// `seq` of a file record: stream in the top bits, line number below, so sorting by it
/// orders by stream, then line.
pub fn file_seq(stream: Stream, line: u64) -> u64 {
    ((stream as u64) << 48) | line
}

struct Rec {
    line_no: u64,
    start: usize,
    end: usize,
    decoded: Result<Event, Reject>,
}

/// Reads `DIR/{customers,loans,transactions,behaviors}.ndjson` (a missing file is an empty
/// stream) and merges them.
pub fn read_dir(dir: &Path, opts: MergeOptions) -> std::io::Result<Merged> {
    let mut texts = Vec::new();
    for s in Stream::ALL {
        let path = dir.join(format!("{}.ndjson", s.name()));
        texts.push(match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => {
                return Err(std::io::Error::new(
                    e.kind(),
                    format!("{}: {e}", path.display()),
                ))
            }
        });
    }
    let refs: Vec<&[u8]> = texts.iter().map(|t| t.as_slice()).collect();
    Ok(merge(&refs, opts))
}

/// Merges the four streams' NDJSON texts (indexed by `Stream as usize`).
pub fn merge(texts: &[&[u8]], opts: MergeOptions) -> Merged {
    let mut merged = Merged::default();
    let mut streams: Vec<Vec<Rec>> = Vec::new();
    for s in Stream::ALL {
        let text = texts.get(s as usize).copied().unwrap_or(&[]);
        merged.bytes += text.len() as u64;
        let recs = decode_parallel(s, text, opts.threads.max(1));
        merged.read[s as usize] = recs.len() as u64;
        streams.push(recs);
    }
    // Rejections by decoding, and the future check against what follows in the file.
    let mut keep: Vec<Vec<bool>> = Vec::new();
    for (si, recs) in streams.iter().enumerate() {
        let stream = Stream::ALL[si];
        let mut k = vec![true; recs.len()];
        let mut suffix_min = u64::MAX;
        let first_rejected = merged.rejected.len();
        for (i, r) in recs.iter().enumerate().rev() {
            match &r.decoded {
                Err(reason) => {
                    k[i] = false;
                    reject(
                        &mut merged,
                        stream,
                        reason,
                        &texts[si][r.start..r.end],
                        r.line_no,
                    );
                }
                Ok(e) => {
                    if suffix_min != u64::MAX
                        && e.ts > suffix_min.saturating_add(opts.max_future_skew)
                    {
                        k[i] = false;
                        let reason = Reject {
                            code: RejectCode::FutureTs,
                            field: None,
                        };
                        reject(
                            &mut merged,
                            stream,
                            &reason,
                            &texts[si][r.start..r.end],
                            r.line_no,
                        );
                    } else {
                        suffix_min = suffix_min.min(e.ts);
                    }
                }
            }
        }
        // The pass ran backwards: list this stream's rejections in line order.
        merged.rejected[first_rejected..].reverse();
        keep.push(k);
    }
    // K-way merge by (ts, stream, line).
    let mut heads = [0usize; 4];
    let mut frontier: Option<u64> = None;
    let mut moved: Vec<std::vec::IntoIter<Rec>> =
        streams.into_iter().map(|v| v.into_iter()).collect();
    let mut peeked: [Option<Rec>; 4] = [None, None, None, None];
    let next_kept =
        |si: usize, heads: &mut [usize; 4], it: &mut std::vec::IntoIter<Rec>| -> Option<Rec> {
            for r in it.by_ref() {
                let i = heads[si];
                heads[si] += 1;
                if keep[si][i] {
                    return Some(r);
                }
            }
            None
        };
    for si in 0..4 {
        peeked[si] = next_kept(si, &mut heads, &mut moved[si]);
    }
    loop {
        let mut best: Option<(u64, usize)> = None;
        for (si, p) in peeked.iter().enumerate() {
            if let Some(Rec { decoded: Ok(e), .. }) = p {
                if best.is_none_or(|(ts, _)| e.ts < ts) {
                    best = Some((e.ts, si));
                }
            }
        }
        let Some((_, si)) = best else { break };
        let rec = peeked[si].take().expect("best is peeked");
        peeked[si] = next_kept(si, &mut heads, &mut moved[si]);
        let last_in_file = peeked[si].is_none();
        let Ok(event) = rec.decoded else {
            unreachable!("only decoded records are kept")
        };
        if let Some(until) = opts.until {
            if event.ts > until {
                continue;
            }
        }
        if last_in_file {
            if let Some(f) = frontier {
                if event.ts > f.saturating_add(opts.max_future_skew) {
                    let reason = Reject {
                        code: RejectCode::FutureTs,
                        field: None,
                    };
                    let line = rejected_json(
                        Stream::ALL[si],
                        &reason,
                        &texts[si][rec.start..rec.end],
                        Some(rec.line_no),
                        None,
                    );
                    merged.rejected.push(line);
                    *merged
                        .rejected_by_reason
                        .entry(reason.to_string())
                        .or_default() += 1;
                    continue;
                }
            }
        }
        let natural = ceil_to(event.ts, opts.tick);
        let time = match frontier {
            Some(f) => {
                let ft = ceil_to(f, opts.tick);
                if natural < ft {
                    merged.late += 1;
                }
                natural.max(ft)
            }
            None => natural,
        };
        frontier = Some(frontier.map_or(event.ts, |f| f.max(event.ts)));
        merged.max_ts = merged.max_ts.max(event.ts);
        merged.events.push((time, event));
    }
    merged
}

fn reject(merged: &mut Merged, stream: Stream, reason: &Reject, line: &[u8], line_no: u64) {
    merged
        .rejected
        .push(rejected_json(stream, reason, line, Some(line_no), None));
    *merged
        .rejected_by_reason
        .entry(reason.to_string())
        .or_default() += 1;
}

/// Splits `text` into lines (1-based numbers; blank lines skipped) and decodes them on
/// `threads` threads, preserving order.
fn decode_parallel(stream: Stream, text: &[u8], threads: usize) -> Vec<Rec> {
    // Line boundaries first (cheap), then decode chunks of lines in parallel.
    let mut bounds: Vec<(u64, usize, usize)> = Vec::new();
    let mut start = 0;
    let mut line_no = 0u64;
    for end in memchr::memchr_iter(b'\n', text).chain(std::iter::once(text.len())) {
        if start > text.len() {
            break;
        }
        line_no += 1;
        let mut e = end;
        if e > start && text[e - 1] == b'\r' {
            e -= 1;
        }
        if text[start..e].iter().any(|b| !b.is_ascii_whitespace()) {
            bounds.push((line_no, start, e));
        }
        start = end + 1;
    }
    let chunk = bounds.len().div_ceil(threads).max(1);
    let mut out: Vec<Rec> = Vec::with_capacity(bounds.len());
    std::thread::scope(|scope| {
        let handles: Vec<_> = bounds
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|&(line_no, s, e)| Rec {
                            line_no,
                            start: s,
                            end: e,
                            decoded: decode(stream, &text[s..e], file_seq(stream, line_no)),
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for h in handles {
            out.extend(h.join().expect("decode threads do not panic"));
        }
    });
    out
}
