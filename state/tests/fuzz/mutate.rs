//! Structure-unaware mutations of byte strings, the kind that find decoder panics: bit and
//! byte flips, truncation, splices of two corpus inputs, duplicated and deleted chunks,
//! dictionary tokens, and integers replaced by edge values.

use crate::support::Rng;

/// Mutated inputs are cut to this length (a little over the event decoder's 64 KiB limit,
/// so that the `too_large` path is reached too).
pub const MAX_LEN: usize = 70_000;

/// Integers at the edges of the types the decoders use (u32, i32, i64, u64, the event
/// contract's bounds), and numbers JSON and TOML spell in unusual ways.
pub const NUMBERS: &[&str] = &[
    "0",
    "-0",
    "-1",
    "1",
    "00",
    "007",
    "255",
    "100000",
    "100001",
    "2147483647",
    "2147483648",
    "-2147483648",
    "-2147483649",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "-9223372036854775809",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999999",
    "1000000000000000",
    "1000000000000001",
    "32503680000000",
    "32503680000001",
    "1e3",
    "1E400",
    "-1e-400",
    "100.0",
    "0.5",
    "1_000",
    "0x10",
    "+1",
    "inf",
    "nan",
];

/// Bytes that matter to JSON and TOML syntax, and to UTF-8.
const BYTES: &[u8] = &[
    0x00, 0x7F, 0x80, 0xBF, 0xC0, 0xC3, 0xED, 0xEF, 0xF4, 0xFF, b'"', b'\\', b'{', b'}', b'[',
    b']', b',', b':', b'=', b'.', b'-', b'+', b'#', b'\'', b'\n', b'\r', b' ', b'0', b'9', b'e',
];

/// Applies 1 to 4 random mutations to `input`; `corpus` supplies splice partners, `dict`
/// the target's tokens.
pub fn mutate(rng: &mut Rng, input: &[u8], corpus: &[Vec<u8>], dict: &[&[u8]]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        mutate_once(rng, &mut out, corpus, dict);
    }
    out.truncate(MAX_LEN);
    out
}

fn mutate_once(rng: &mut Rng, out: &mut Vec<u8>, corpus: &[Vec<u8>], dict: &[&[u8]]) {
    let len = out.len();
    let at = |rng: &mut Rng| rng.below(len + 1);
    match rng.below(13) {
        0 if len > 0 => {
            let i = rng.below(len);
            out[i] ^= 1 << rng.below(8);
        }
        1 if len > 0 => {
            let i = rng.below(len);
            out[i] = rng.next_u64() as u8;
        }
        2 if len > 0 => {
            let i = rng.below(len);
            out[i] = *rng.pick(BYTES);
        }
        3 => {
            out.truncate(at(rng));
        }
        4 if len > 0 => {
            let start = rng.below(len);
            let end = (start + 1 + rng.below(16)).min(len);
            out.drain(start..end);
        }
        5 if len > 0 => {
            let start = rng.below(len);
            let end = (start + 1 + rng.below(64)).min(len);
            let chunk = out[start..end].to_vec();
            let to = at(rng);
            out.splice(to..to, chunk);
        }
        6 => {
            let other = rng.pick(corpus);
            let cut = at(rng);
            let from = rng.below(other.len() + 1);
            out.truncate(cut);
            out.extend_from_slice(&other[from..]);
        }
        7 | 8 => replace_number(rng, out),
        9 | 10 if !dict.is_empty() => {
            let token = *rng.pick(dict);
            let to = at(rng);
            out.splice(to..to, token.iter().copied());
        }
        11 if len > 1 => {
            // Swap two chunks of equal length.
            let n = 1 + rng.below(8.min(len / 2));
            let a = rng.below(len - n + 1);
            let b = rng.below(len - n + 1);
            if a + n <= b || b + n <= a {
                for i in 0..n {
                    out.swap(a + i, b + i);
                }
            }
        }
        12 if rng.one_in(64) && len > 0 => {
            // Rarely, blow a chunk up past the size limits.
            let start = rng.below(len);
            let end = (start + 1 + rng.below(32)).min(len);
            let chunk = out[start..end].to_vec();
            let times = MAX_LEN / chunk.len() + 1;
            let to = at(rng);
            out.splice(to..to, chunk.repeat(times));
        }
        _ => {
            let to = at(rng);
            out.insert(to, rng.next_u64() as u8);
        }
    }
}

/// Replaces one run of ASCII digits (with its sign) by an edge value from [`NUMBERS`].
fn replace_number(rng: &mut Rng, out: &mut Vec<u8>) {
    let runs: Vec<(usize, usize)> = digit_runs(out);
    if runs.is_empty() {
        return;
    }
    let (start, end) = *rng.pick(&runs);
    let with = rng.pick(NUMBERS).as_bytes();
    out.splice(start..end, with.iter().copied());
}

fn digit_runs(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut runs = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            let start = if i > 0 && bytes[i - 1] == b'-' {
                i - 1
            } else {
                i
            };
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            runs.push((start, i));
        } else {
            i += 1;
        }
    }
    runs
}

#[test]
fn digit_runs_include_the_sign() {
    assert_eq!(digit_runs(b"a-12 3"), vec![(1, 4), (5, 6)]);
    assert!(digit_runs(b"none").is_empty());
}
