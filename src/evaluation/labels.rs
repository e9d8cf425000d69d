//! The outcome labels `riskwatch evaluate` joins snapshots to: one row per customer with an
//! outcome 0/1 and an optional outcome date.
//!
//! Accepted forms, by content:
//! - NDJSON with `customer_id`, `outcome` (0 or 1) and optionally `outcome_ts` (epoch ms) or
//!   `outcome_date` (a date or RFC 3339 time);
//! - the generator's truth.ndjson (`customer_id`, `defaults_at`: a time, or null for a
//!   customer who never defaults);
//! - CSV with a header naming `customer_id`, `outcome` and optionally `outcome_date`.
//!
//! A bad row is counted by reason and left out; the rest are used.

use anyhow::Context;
use riskwatch_model::time::parse_instant;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// One customer's outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Label {
    /// Defaulted (1) or not (0).
    pub bad: bool,
    /// When, if known (epoch ms).
    pub at: Option<u64>,
}

/// The labels read, and the rows left out by reason.
#[derive(Debug, Default)]
pub struct Labels {
    /// By customer id.
    pub by_customer: HashMap<String, Label>,
    /// Rows left out, by reason: `duplicate`, `missing_outcome`, `invalid_outcome`,
    /// `invalid_date`, `missing_customer_id`, `malformed`.
    pub rejected: BTreeMap<&'static str, u64>,
}

impl Labels {
    fn reject(&mut self, reason: &'static str) {
        *self.rejected.entry(reason).or_default() += 1;
    }

    fn add(&mut self, id: String, label: Label) {
        // The first row wins; a repeated customer is reported, not guessed at.
        let repeated = match self.by_customer.entry(id) {
            std::collections::hash_map::Entry::Occupied(_) => true,
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(label);
                false
            }
        };
        if repeated {
            self.reject("duplicate");
        }
    }
}

/// Reads the labels file at `path`.
pub fn read_labels(path: &Path) -> anyhow::Result<Labels> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the labels file {}", path.display()))?;
    let mut labels = Labels::default();
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    if first.trim_start().starts_with('{') {
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            json_row(line, &mut labels);
        }
    } else {
        let header: Vec<String> = first.split(',').map(|h| h.trim().to_lowercase()).collect();
        let col = |name: &str| header.iter().position(|h| h == name);
        let (Some(id), Some(outcome)) = (col("customer_id"), col("outcome")) else {
            anyhow::bail!(
                "{}: a CSV labels file needs a header with customer_id and outcome \
                 (and optionally outcome_date); found {first:?}",
                path.display()
            );
        };
        let date = col("outcome_date");
        for line in text.lines().skip_while(|l| l.trim().is_empty()).skip(1) {
            if line.trim().is_empty() {
                continue;
            }
            let cells: Vec<&str> = line.split(',').map(str::trim).collect();
            let cell = |i: usize| cells.get(i).copied().filter(|c| !c.is_empty());
            let Some(customer) = cell(id) else {
                labels.reject("missing_customer_id");
                continue;
            };
            let bad = match cell(outcome) {
                None => {
                    labels.reject("missing_outcome");
                    continue;
                }
                Some("0") => false,
                Some("1") => true,
                Some(_) => {
                    labels.reject("invalid_outcome");
                    continue;
                }
            };
            let at = match date.and_then(cell) {
                None => None,
                Some(d) => match parse_instant(d) {
                    Ok(t) => Some(t),
                    Err(_) => {
                        labels.reject("invalid_date");
                        continue;
                    }
                },
            };
            labels.add(customer.to_string(), Label { bad, at });
        }
    }
    Ok(labels)
}

fn json_row(line: &str, labels: &mut Labels) {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
        labels.reject("malformed");
        return;
    };
    let Some(id) = v
        .get("customer_id")
        .and_then(|x| x.as_str())
        .filter(|s| !s.is_empty())
    else {
        labels.reject("missing_customer_id");
        return;
    };
    // The generator's truth: defaults_at is the outcome and its date.
    if let Some(d) = v.get("defaults_at") {
        match (d.is_null(), d.as_u64()) {
            (true, _) => labels.add(
                id.to_string(),
                Label {
                    bad: false,
                    at: None,
                },
            ),
            (false, Some(t)) => labels.add(
                id.to_string(),
                Label {
                    bad: true,
                    at: Some(t),
                },
            ),
            (false, None) => labels.reject("invalid_date"),
        }
        return;
    }
    let bad = match v.get("outcome") {
        None | Some(serde_json::Value::Null) => {
            labels.reject("missing_outcome");
            return;
        }
        Some(o) => match o.as_u64() {
            Some(0) => false,
            Some(1) => true,
            _ => {
                labels.reject("invalid_outcome");
                return;
            }
        },
    };
    let at = if let Some(t) = v.get("outcome_ts").filter(|t| !t.is_null()) {
        match t.as_u64() {
            Some(t) => Some(t),
            None => {
                labels.reject("invalid_date");
                return;
            }
        }
    } else if let Some(d) = v.get("outcome_date").filter(|t| !t.is_null()) {
        match d.as_str().map(parse_instant) {
            Some(Ok(t)) => Some(t),
            _ => {
                labels.reject("invalid_date");
                return;
            }
        }
    } else {
        None
    };
    labels.add(id.to_string(), Label { bad, at });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(name: &str, text: &str) -> Labels {
        let dir = std::env::temp_dir().join(format!("riskwatch-labels-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write labels");
        read_labels(&path).expect("labels read")
    }

    #[test]
    fn ndjson_truth_and_csv_labels_read_and_bad_rows_are_counted_by_reason() {
        let l = read(
            "labels.ndjson",
            "{\"customer_id\":\"A\",\"outcome\":1,\"outcome_date\":\"2026-02-01\"}\n\
             {\"customer_id\":\"B\",\"outcome\":0}\n\
             {\"customer_id\":\"A\",\"outcome\":0}\n\
             {\"customer_id\":\"C\",\"outcome\":2}\n\
             {\"customer_id\":\"D\"}\n\
             {\"customer_id\":\"E\",\"outcome\":1,\"outcome_date\":\"soon\"}\n\
             not json\n\
             {\"customer_id\":\"F\",\"defaults_at\":1767225600000,\"archetype\":\"x\",\"ring_id\":null}\n\
             {\"customer_id\":\"G\",\"defaults_at\":null,\"archetype\":\"x\",\"ring_id\":null}\n",
        );
        assert_eq!(
            l.by_customer["A"],
            Label {
                bad: true,
                at: Some(1_769_904_000_000)
            }
        );
        assert_eq!(
            l.by_customer["B"],
            Label {
                bad: false,
                at: None
            }
        );
        assert_eq!(
            l.by_customer["F"],
            Label {
                bad: true,
                at: Some(1_767_225_600_000)
            }
        );
        assert_eq!(
            l.by_customer["G"],
            Label {
                bad: false,
                at: None
            }
        );
        assert_eq!(l.by_customer.len(), 4);
        let want: BTreeMap<&str, u64> = [
            ("duplicate", 1),
            ("invalid_date", 1),
            ("invalid_outcome", 1),
            ("malformed", 1),
            ("missing_outcome", 1),
        ]
        .into_iter()
        .collect();
        assert_eq!(l.rejected, want);

        let c = read(
            "labels.csv",
            "customer_id,outcome,outcome_date\nA,1,2026-02-01\nB,0,\n,1,\nC,yes,\n",
        );
        assert_eq!(c.by_customer.len(), 2);
        assert_eq!(c.by_customer["A"].at, Some(1_769_904_000_000));
        assert_eq!(c.rejected["missing_customer_id"], 1);
        assert_eq!(c.rejected["invalid_outcome"], 1);
    }
}
