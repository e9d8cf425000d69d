//! Bounded, deterministic fuzzing on stable Rust of the decoders that read bytes riskwatch
//! does not control: input events ([`riskwatch_model::decode`]), the config file
//! ([`riskwatch_model::config`]) and the checkpoint meta record ([`CheckpointMeta::decode`]).
//!
//! Each target mutates a checked-in corpus of valid inputs (`tests/corpus/<target>/`; in an
//! `.ndjson` file each line is one input) with the mutations of `fuzz/mutate.rs` and asserts
//! that the decoder never panics and that what it accepts satisfies the target's properties
//! (re-encodings round-trip). A failing input is written to the temp directory and its
//! path printed. Iterations and seed: `RISKWATCH_FUZZ_ITERS`, `RISKWATCH_FUZZ_SEED`; see
//! `docs/fuzzing.md`.
//!
//! # Adding a target
//! One `#[test]` calling [`fuzz_target`] with a corpus directory, a decoder
//! `Fn(&[u8]) -> Result<T, E>`, a check of accepted values and one of rejections, e.g. for
//! the runtime's operator-state records:
//! ```ignore
//! #[test]
//! fn operator_state() {
//!     let target = Target { name: "operator_state", corpus: "operator_state", iters: 50_000,
//!                           dict: &[] };
//!     fuzz_target(target, OperatorState::decode,
//!         |_, state| roundtrip(state, &state.encode(), OperatorState::decode),
//!         |_, _err| Ok(()));
//! }
//! ```

mod mutate;

use std::fmt::{Debug, Display};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::Instant;

use riskwatch_model::config::Config;
use riskwatch_model::decode::{decode, rejected_json, RejectCode, MAX_RECORD_BYTES};
use riskwatch_model::event::{id_hash, Stream};
use riskwatch_state::{CheckpointMeta, SourcePosition, StateError, FORMAT_VERSION};

use crate::support::Rng;

/// A fuzz target's fixed parameters.
pub struct Target {
    /// Name, for messages, seeds and crash files.
    pub name: &'static str,
    /// Directory under `tests/corpus/`.
    pub corpus: &'static str,
    /// Mutated inputs when `RISKWATCH_FUZZ_ITERS` is unset (sized for a few seconds).
    pub iters: u64,
    /// Tokens of the input language for the insertion mutation.
    pub dict: &'static [&'static [u8]],
}

/// Runs `target`: first every corpus input as is (each must be accepted), then
/// `iters` mutated ones. `decode` must not panic; `accepted` gets each accepted input and
/// its value, `rejected` each rejected input and its error (whose `Display` must not be
/// empty), and both return which property failed. Panics, after saving the input, at the
/// first failure.
pub fn fuzz_target<T, E, D, A, R>(target: Target, decode: D, accepted: A, rejected: R)
where
    E: Display + Debug,
    D: Fn(&[u8]) -> Result<T, E>,
    A: Fn(&[u8], &T) -> Result<(), String>,
    R: Fn(&[u8], &E) -> Result<(), String>,
{
    let corpus = load_corpus(target.corpus);
    let iters = env_u64("RISKWATCH_FUZZ_ITERS").unwrap_or(target.iters);
    let seed = env_u64("RISKWATCH_FUZZ_SEED").unwrap_or(0x5EED) ^ id_hash(target.name);
    let mut rng = Rng::new(seed);
    let started = Instant::now();
    let run_one = |input: &[u8], what: &str| -> bool {
        let outcome = catch_unwind(AssertUnwindSafe(|| match decode(input) {
            Ok(value) => accepted(input, &value).map(|()| true),
            Err(e) if e.to_string().is_empty() => Err(format!("empty message for {e:?}")),
            Err(e) => rejected(input, &e).map(|()| false),
        }));
        let failure = match outcome {
            Ok(Ok(accepted)) => return accepted,
            Ok(Err(property)) => property,
            Err(_) => "the decoder or a check panicked (message above)".to_owned(),
        };
        let saved = save_failure(target.name, seed, what, input);
        panic!(
            "fuzz target {}: {what}: {failure}\ninput ({} bytes, saved to {}): {}",
            target.name,
            input.len(),
            saved.display(),
            show(input)
        );
    };
    for (i, input) in corpus.iter().enumerate() {
        let ok = run_one(input, &format!("corpus input {i}"));
        assert!(
            ok,
            "{}: corpus input {i} is rejected: {}",
            target.name,
            show(input)
        );
    }
    let mut accepted = 0u64;
    for iter in 0..iters {
        let base = rng.pick(&corpus).clone();
        let input = mutate::mutate(&mut rng, &base, &corpus, target.dict);
        accepted += u64::from(run_one(&input, &format!("iteration {iter} (seed {seed})")));
    }
    eprintln!(
        "fuzz {}: {} corpus + {iters} mutated inputs, {accepted} accepted, {:.1?}",
        target.name,
        corpus.len(),
        started.elapsed()
    );
}

/// Checks `value == decode(encoding)`: what a target's `check` uses for round trips.
pub fn roundtrip<T: PartialEq + Debug, E: Display>(
    value: &T,
    encoding: &[u8],
    decode: impl Fn(&[u8]) -> Result<T, E>,
) -> Result<(), String> {
    match decode(encoding) {
        Ok(again) if again == *value => Ok(()),
        Ok(again) => Err(format!("re-decoded differently:\n{value:?}\n{again:?}")),
        Err(e) => Err(format!("re-encoding {} is rejected: {e}", show(encoding))),
    }
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    Some(
        v.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
    )
}

/// The inputs of `tests/corpus/<sub>`: a directory (every file, in name order) or one file.
/// In an `.ndjson` file every non-empty line is one input.
fn load_corpus(sub: &str) -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(sub);
    let mut files: Vec<PathBuf> = if root.is_dir() {
        std::fs::read_dir(&root)
            .unwrap_or_else(|e| panic!("corpus {}: {e}", root.display()))
            .map(|e| e.expect("corpus entry").path())
            .collect()
    } else {
        vec![root.clone()]
    };
    files.sort();
    let mut inputs = Vec::new();
    for file in files {
        let bytes = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        if file.extension().is_some_and(|e| e == "ndjson") {
            let lines = bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty());
            inputs.extend(lines.map(<[u8]>::to_vec));
        } else {
            inputs.push(bytes);
        }
    }
    assert!(!inputs.is_empty(), "corpus {} is empty", root.display());
    inputs
}

fn save_failure(name: &str, seed: u64, what: &str, input: &[u8]) -> PathBuf {
    let tag: String = what
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let path = std::env::temp_dir().join(format!("riskwatch-fuzz-{name}-{seed:x}-{tag}.bin"));
    let _ = std::fs::write(&path, input);
    path
}

fn show(input: &[u8]) -> String {
    let head = &input[..input.len().min(400)];
    format!(
        "{:?}{}",
        String::from_utf8_lossy(head),
        if input.len() > 400 { " …" } else { "" }
    )
}

const JSON_DICT: &[&[u8]] = &[
    b"null",
    b"true",
    b"false",
    b"[]",
    b"{}",
    b"\"\"",
    b"\"\\u0000\"",
    b"\"\\uD800\"",
    b"\"\\uDBFF\\uDFFF\"",
    b"\\",
    b",",
    b":",
    b"\xEF\xBB\xBF",
    b"\xC3\x28",
    b"\xF0\x9F\x98",
    b"1e999",
    b"-0",
    b"0.0",
    b"\"ts\":",
    b"\"type\":",
    b"\"amount\":",
    b"\"customer_id\":\"C",
    b"\"event_id\":\"E",
    b"\"due_ts\":0",
    b"\"installment_due\"",
    b"\"status\":\"closed\"",
    b"\"balance\":null",
    b"\"t\\u0073\":1",
    b"{\"a\":[[[[[[[[1]]]]]]]]}",
];

/// One event target per stream, over that stream's corpus file. Accepted: the seq and
/// stream are kept, the key is the customer id's hash, the event round-trips through its
/// serde form, and a BOM or trailing whitespace changes nothing. Rejected: a fixed code
/// (never `future_ts`, which only sources produce), unchanged by a BOM, and a `rejected`
/// record that is valid JSON carrying the reason.
fn fuzz_stream(stream: Stream, iters: u64) {
    let corpus = match stream {
        Stream::Transactions => "events/transactions.ndjson",
        Stream::Behaviors => "events/behaviors.ndjson",
        Stream::Loans => "events/loans.ndjson",
        Stream::Customers => "events/customers.ndjson",
    };
    let target = Target {
        name: stream.name(),
        corpus,
        iters,
        dict: JSON_DICT,
    };
    fuzz_target(
        target,
        |line| decode(stream, line, 77),
        |line, event| {
            if (event.seq, event.stream()) != (77, stream) {
                return Err(format!("seq or stream not kept: {event:?}"));
            }
            if event.key != id_hash(&event.customer_id) {
                return Err(format!("key is not the customer id's hash: {event:?}"));
            }
            let json = serde_json::to_vec(event).map_err(|e| e.to_string())?;
            roundtrip(event, &json, |b| serde_json::from_slice(b))?;
            same_with_bom_and_whitespace(stream, line)
        },
        |line, reject| {
            if reject.code == RejectCode::FutureTs || !RejectCode::ALL.contains(&reject.code) {
                return Err(format!("unexpected code {reject}"));
            }
            same_with_bom_and_whitespace(stream, line)?;
            let record = rejected_json(stream, reject, line, Some(9), Some(0));
            let value: serde_json::Value =
                serde_json::from_str(&record).map_err(|e| format!("{record}: {e}"))?;
            if value["reason"] != reject.to_string().as_str() {
                return Err(format!("rejected record {record} lacks reason {reject}"));
            }
            Ok(())
        },
    );
}

/// A leading byte order mark does not change the result (of a line without one: a second
/// mark is not whitespace); trailing whitespace does not either while the line stays
/// within the size limit.
fn same_with_bom_and_whitespace(stream: Stream, line: &[u8]) -> Result<(), String> {
    const BOM: &[u8] = b"\xEF\xBB\xBF";
    let plain = decode(stream, line, 77);
    if !line.starts_with(BOM) && decode(stream, &[BOM, line].concat(), 77) != plain {
        return Err(format!("a leading BOM changed the result {plain:?}"));
    }
    let spaced = [line, b" \n"].concat();
    if spaced.len() <= MAX_RECORD_BYTES && decode(stream, &spaced, 77) != plain {
        return Err(format!("trailing whitespace changed the result {plain:?}"));
    }
    Ok(())
}

#[test]
fn events_transactions() {
    fuzz_stream(Stream::Transactions, 100_000);
}

#[test]
fn events_behaviors() {
    fuzz_stream(Stream::Behaviors, 100_000);
}

#[test]
fn events_loans() {
    fuzz_stream(Stream::Loans, 100_000);
}

#[test]
fn events_customers() {
    fuzz_stream(Stream::Customers, 100_000);
}

const TOML_DICT: &[&[u8]] = &[
    b"\n[[window]]\n",
    b"\n[[strategy]]\n",
    b"\n[time]\n",
    b"\n[run]\n",
    b"\n[kafka]\n",
    b"\n[rings]\n",
    b"tick = \"7s\"\n",
    b" = ",
    b"\"30d\"",
    b"\"0s\"",
    b"\"1ms\"",
    b"\"64MiB\"",
    b"inf",
    b"nan",
    b"-inf",
    b"1e308",
    b"'''",
    b"\"\"\"",
    b"#",
    b"\n",
    b"role = \"champion\"\n",
    b"share_percent = 101\n",
    b"{ }",
    b"[ ]",
    b"true",
    b"\"\\uD800\"",
    b"\xEF\xBB\xBF",
    b"length = \"0s\"\n",
    b"granularity = \"13m\"\n",
    b"[strategy.scorecard]\n",
];

#[test]
fn config() {
    let target = Target {
        name: "config",
        corpus: "config",
        iters: 8_000,
        dict: TOML_DICT,
    };
    let load = |bytes: &[u8]| -> Result<Config, String> {
        let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
        Config::from_toml(text).map_err(|e| e.to_string())
    };
    fuzz_target(
        target,
        load,
        |_, config| {
            config
                .validate()
                .map_err(|e| format!("accepted but invalid: {e}"))?;
            let text = toml::to_string(config).map_err(|e| format!("does not serialise: {e}"))?;
            roundtrip(config, text.as_bytes(), load)
        },
        |_, _| Ok(()),
    );
}

const META_DICT: &[&[u8]] = &[
    b"\"format\":",
    b"\"seq\":",
    b"\"sources\":[",
    b"{\"Kafka\":{\"topic\":\"t\",\"partition\":-1,\"offset\":-1}}",
    b"{\"File\":{\"path\":\"p\",\"offset\":0,\"skip\":[1,2]}}",
    b"\"fingerprint\":{\"k\":\"v\"}",
    b"null",
    b"\"\\uD800\"",
    b"\"\\u0000\"",
    b"[]",
    b"{}",
    b",",
    b"\"extra\":1",
];

/// Accepted records round-trip; rejected ones are `Corrupt` or `Version` and name the path.
#[test]
fn checkpoint_meta() {
    let target = Target {
        name: "checkpoint_meta",
        corpus: "meta",
        iters: 250_000,
        dict: META_DICT,
    };
    let path = Path::new("/fuzz/state");
    let decode = |bytes: &[u8]| CheckpointMeta::decode(path, bytes);
    fuzz_target(
        target,
        decode,
        |_, meta| {
            if meta.format != FORMAT_VERSION {
                return Err(format!("accepted format {}", meta.format));
            }
            roundtrip(meta, &meta.encode(), decode)
        },
        |_, err| match err {
            StateError::Corrupt { .. } | StateError::Version { .. } => {
                let text = err.to_string();
                text.contains("/fuzz/state").then_some(()).ok_or(text)
            }
            other => Err(format!("unexpected error {other:?}")),
        },
    );
}

/// Generated (not mutated) metas: random strings and integers at their extremes.
#[test]
fn checkpoint_meta_generated_round_trips() {
    let iters = env_u64("RISKWATCH_FUZZ_ITERS").unwrap_or(20_000);
    let mut rng = Rng::new(env_u64("RISKWATCH_FUZZ_SEED").unwrap_or(0x5EED));
    let path = Path::new("/fuzz/state");
    for _ in 0..iters {
        let meta = random_meta(&mut rng);
        let again = CheckpointMeta::decode(path, &meta.encode()).expect("own encoding decodes");
        assert_eq!(again, meta);
    }
}

fn random_meta(rng: &mut Rng) -> CheckpointMeta {
    let fingerprint = (0..rng.below(5))
        .map(|_| (random_string(rng), random_string(rng)))
        .collect();
    let sources = (0..rng.below(5))
        .map(|_| match rng.below(2) {
            0 => SourcePosition::Kafka {
                topic: random_string(rng),
                partition: edge_u64(rng) as i32,
                offset: edge_u64(rng) as i64,
            },
            _ => SourcePosition::File {
                path: random_string(rng),
                offset: edge_u64(rng),
                skip: (0..rng.below(4)).map(|_| edge_u64(rng)).collect(),
            },
        })
        .collect();
    CheckpointMeta {
        format: FORMAT_VERSION,
        seq: edge_u64(rng),
        frontier: edge_u64(rng),
        written_at_ms: edge_u64(rng),
        fingerprint,
        config_version: random_string(rng),
        sources,
    }
}

fn edge_u64(rng: &mut Rng) -> u64 {
    let edges = [
        0,
        1,
        u64::MAX,
        i64::MAX as u64,
        i64::MIN as u64,
        u32::MAX as u64,
        i32::MIN as u64,
    ];
    if rng.one_in(3) {
        *rng.pick(&edges)
    } else {
        rng.next_u64() >> rng.below(64)
    }
}

fn random_string(rng: &mut Rng) -> String {
    let chars = [
        'a',
        'Z',
        '0',
        ' ',
        '"',
        '\\',
        '/',
        '\n',
        '\t',
        '\0',
        '\u{7f}',
        'é',
        '€',
        '😀',
        '\u{FEFF}',
        '\u{10FFFF}',
    ];
    (0..rng.below(12)).map(|_| *rng.pick(&chars)).collect()
}
