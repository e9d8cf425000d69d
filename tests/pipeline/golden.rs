//! Golden outputs: two generated books replayed with the default config on 2 workers must
//! give exactly the committed alerts, decisions, cases and rejected records (without the
//! wall-clock `emitted_at`). Every optimisation must leave them byte-identical; a change of
//! output is rewritten on purpose with `REWRITE=1 cargo test --release --test pipeline
//! golden` and explained in its commit.

use super::faults::{book, replay_dir};
use super::support::{default_config, temp_dir};
use std::path::PathBuf;

/// The books: name, customers, days, seed.
const BOOKS: [(&str, u64, u64, u64); 2] = [("book-a", 300, 40, 7), ("book-b", 1000, 60, 3)];

fn golden_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

#[test]
fn golden_outputs_of_two_generated_books_are_unchanged() {
    let cfg = default_config();
    let rewrite = std::env::var_os("REWRITE").is_some();
    let mut differ = Vec::new();
    for (name, customers, days, seed) in BOOKS {
        let src = book(&format!("golden-{name}"), customers, days, seed);
        let out = temp_dir(&format!("golden-{name}-out"));
        let got = replay_dir(&cfg, &src, &out);
        let mut files: Vec<(&str, String)> = got
            .outputs
            .iter()
            .map(|(kind, records)| {
                let mut text: String = records.iter().map(|(_, r)| format!("{r}\n")).collect();
                if text.is_empty() {
                    text.clear();
                }
                (*kind, text)
            })
            .collect();
        let rejected: String = got.rejected.iter().map(|r| format!("{r}\n")).collect();
        files.push(("rejected", rejected));
        let dir = golden_dir(name);
        for (kind, text) in files {
            let path = dir.join(format!("{kind}.ndjson"));
            if rewrite {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, &text).unwrap();
                continue;
            }
            let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
                panic!(
                    "{}: {e} (REWRITE=1 writes the golden files)",
                    path.display()
                )
            });
            if want != text {
                let first = want
                    .lines()
                    .zip(text.lines())
                    .position(|(a, b)| a != b)
                    .unwrap_or(want.lines().count().min(text.lines().count()));
                differ.push(format!(
                    "{}: {} lines golden, {} now; first difference at line {}",
                    path.display(),
                    want.lines().count(),
                    text.lines().count(),
                    first + 1
                ));
            }
        }
        let _ = std::fs::remove_dir_all(&src);
        let _ = std::fs::remove_dir_all(&out);
    }
    assert!(
        differ.is_empty(),
        "golden outputs differ:\n{}",
        differ.join("\n")
    );
}
