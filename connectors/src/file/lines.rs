//! Reading one NDJSON input stream in chunks of lines, decoded in parallel.
//!
//! A [`LineChunks`] reads from any `BufRead` (a file, or bytes in memory) in bounded
//! memory: a line longer than [`MAX_RECORD_BYTES`] is kept only up to one byte past that
//! limit (enough for the decoder to say `too_large`) and the rest of it is skipped. A UTF-8
//! byte order mark at the start of the stream is dropped, blank lines are skipped, and a
//! trailing `\r` is cut. Each chunk is decoded on up to `threads` scoped threads, keeping
//! line order.

use riskwatch_model::decode::{decode, Reject, MAX_RECORD_BYTES};
use riskwatch_model::event::{Event, Stream};
use std::io::BufRead;

/// The UTF-8 byte order mark.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// `seq` of a file record: stream in the top bits, line number below, so sorting by it
/// orders by stream, then line.
pub fn file_seq(stream: Stream, line: u64) -> u64 {
    ((stream as u64) << 48) | line
}

/// One non-blank line of a chunk and what decoding made of it.
#[derive(Debug)]
pub struct Line {
    /// 1-based line number in the stream.
    pub line_no: u64,
    /// The byte range of the line in its chunk's text.
    pub range: std::ops::Range<usize>,
    /// The decoded event, or why the record is rejected.
    pub decoded: Result<Event, Reject>,
}

/// A chunk of consecutive lines: their text, back to back, and each line decoded.
#[derive(Debug, Default)]
pub struct Chunk {
    /// The lines' bytes, without their line ends.
    pub text: Vec<u8>,
    /// The non-blank lines in file order.
    pub lines: Vec<Line>,
}

impl Chunk {
    /// The raw bytes of `line`.
    pub fn raw(&self, line: &Line) -> &[u8] {
        &self.text[line.range.clone()]
    }
}

/// Reads a stream's lines in chunks and decodes them.
pub struct LineChunks {
    stream: Stream,
    reader: Box<dyn BufRead + Send>,
    line_no: u64,
    at_start: bool,
    eof: bool,
    bytes: u64,
    threads: usize,
    chunk_lines: usize,
}

impl LineChunks {
    /// A reader of `stream` over `reader`, `chunk_lines` lines a chunk, decoded on
    /// `threads` threads.
    pub fn new(
        stream: Stream,
        reader: Box<dyn BufRead + Send>,
        threads: usize,
        chunk_lines: usize,
    ) -> LineChunks {
        LineChunks {
            stream,
            reader,
            line_no: 0,
            at_start: true,
            eof: false,
            bytes: 0,
            threads: threads.max(1),
            chunk_lines: chunk_lines.max(1),
        }
    }

    /// Bytes read so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Whether the end of the stream was reached.
    pub fn at_eof(&self) -> bool {
        self.eof
    }

    /// Reads and decodes the next chunk; `None` at the end of the stream.
    pub fn next_chunk(&mut self) -> std::io::Result<Option<Chunk>> {
        let mut chunk = Chunk::default();
        let mut bounds: Vec<(u64, usize, usize)> = Vec::new();
        while bounds.len() < self.chunk_lines && !self.eof {
            let start = chunk.text.len();
            if !self.read_line(&mut chunk.text)? {
                break;
            }
            self.line_no += 1;
            let mut end = chunk.text.len();
            if end > start && chunk.text[end - 1] == b'\r' {
                end -= 1;
            }
            if chunk.text[start..end].iter().all(u8::is_ascii_whitespace) {
                chunk.text.truncate(start);
                continue;
            }
            chunk.text.truncate(end);
            bounds.push((self.line_no, start, end));
        }
        if bounds.is_empty() {
            return Ok(None);
        }
        chunk.lines = decode_lines(self.stream, &chunk.text, &bounds, self.threads);
        Ok(Some(chunk))
    }

    /// Appends the next line (without its `\n`, capped) to `out`; false at the end.
    fn read_line(&mut self, out: &mut Vec<u8>) -> std::io::Result<bool> {
        let start = out.len();
        let cap = MAX_RECORD_BYTES + 1;
        let mut any = false;
        loop {
            let buf = match self.reader.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if buf.is_empty() {
                self.eof = true;
                break;
            }
            any = true;
            let (take, used, done) = match memchr::memchr(b'\n', buf) {
                Some(i) => (&buf[..i], i + 1, true),
                None => (buf, buf.len(), false),
            };
            let room = cap.saturating_sub(out.len() - start);
            out.extend_from_slice(&take[..take.len().min(room)]);
            self.bytes += used as u64;
            self.reader.consume(used);
            if done {
                break;
            }
        }
        if self.at_start && any {
            self.at_start = false;
            if out[start..].starts_with(BOM) {
                out.drain(start..start + BOM.len());
            }
        }
        Ok(any)
    }
}

/// Decodes `bounds` (line number, start, end in `text`) on `threads` threads, in order.
fn decode_lines(
    stream: Stream,
    text: &[u8],
    bounds: &[(u64, usize, usize)],
    threads: usize,
) -> Vec<Line> {
    let one = |&(line_no, s, e): &(u64, usize, usize)| Line {
        line_no,
        range: s..e,
        decoded: decode(stream, &text[s..e], file_seq(stream, line_no)),
    };
    // Below a few thousand lines a thread costs more than it saves.
    if threads == 1 || bounds.len() < 4096 {
        return bounds.iter().map(one).collect();
    }
    let per = bounds.len().div_ceil(threads);
    let mut out = Vec::with_capacity(bounds.len());
    std::thread::scope(|scope| {
        let handles: Vec<_> = bounds
            .chunks(per)
            .map(|part| scope.spawn(move || part.iter().map(one).collect::<Vec<_>>()))
            .collect();
        for h in handles {
            out.extend(h.join().expect("decoding never panics"));
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(text: &[u8], lines: usize) -> Vec<Vec<(u64, Vec<u8>)>> {
        let mut r = LineChunks::new(
            Stream::Behaviors,
            Box::new(std::io::Cursor::new(text.to_vec())),
            2,
            lines,
        );
        let mut all = Vec::new();
        while let Some(c) = r.next_chunk().unwrap() {
            all.push(
                c.lines
                    .iter()
                    .map(|l| (l.line_no, c.raw(l).to_vec()))
                    .collect(),
            );
        }
        all
    }

    #[test]
    fn bom_at_the_start_is_dropped_and_blank_lines_skipped() {
        let got = chunks(b"\xEF\xBB\xBFa\r\n\n  \nb\n\xEF\xBB\xBFc", 2);
        assert_eq!(
            got,
            vec![
                vec![(1, b"a".to_vec()), (4, b"b".to_vec())],
                // Only the stream's first line loses a BOM.
                vec![(5, b"\xEF\xBB\xBFc".to_vec())],
            ]
        );
    }

    #[test]
    fn an_overlong_line_is_capped_and_the_next_line_read_whole() {
        let mut text = vec![b'x'; MAX_RECORD_BYTES * 3];
        text.extend_from_slice(b"\nnext\n");
        let got = chunks(&text, 10);
        assert_eq!(got[0].len(), 2);
        assert_eq!(got[0][0].1.len(), MAX_RECORD_BYTES + 1);
        assert_eq!(got[0][1], (2, b"next".to_vec()));
    }

    #[test]
    fn a_bom_record_decodes_like_the_record_without_it() {
        let line = br#"{"event_id":"B1","customer_id":"C1","ts":1767225600000,"type":"login"}"#;
        let mut text = BOM.to_vec();
        text.extend_from_slice(line);
        let mut r = LineChunks::new(
            Stream::Behaviors,
            Box::new(std::io::Cursor::new(text)),
            1,
            8,
        );
        let c = r.next_chunk().unwrap().unwrap();
        assert!(c.lines[0].decoded.is_ok(), "{:?}", c.lines[0].decoded);
    }
}
