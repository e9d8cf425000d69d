//! The config's layers as TOML trees: parsing a document (syntax errors by line and
//! column), laying the file over the defaults, `RISKWATCH__…` overrides, and the check
//! that every float of the merged tree is finite.

use super::ConfigError;

/// Parses a TOML document into a table; a syntax error gives its line and column (1-based,
/// columns in characters) and has no key.
pub(super) fn parse_document(text: &str) -> Result<toml::Table, ConfigError> {
    toml::from_str(text).map_err(|e| {
        let message = e
            .message()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        let reason = match e.span() {
            Some(span) => {
                let (line, column) = line_column(text, span.start);
                // toml says "duplicate key" and points at it; name it.
                let key = text.get(span).filter(|_| message == "duplicate key");
                match key {
                    Some(key) => format!("line {line}, column {column}: {message} {key}"),
                    None => format!("line {line}, column {column}: {message}"),
                }
            }
            None => message,
        };
        ConfigError::new("", reason)
    })
}

/// The 1-based line and column (in characters) of byte offset `at` of `text`.
pub(super) fn line_column(text: &str, at: usize) -> (usize, usize) {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, column)
}

/// Lays `over` onto `base`: tables merge key by key, anything else (arrays of tables
/// included) replaces.
pub(super) fn merge_tables(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge_tables(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// An environment override's value: a TOML literal (number, boolean, quoted string,
/// array) if it parses as one, else the raw text as a string.
pub(super) fn parse_env_value(raw: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()))
}

/// Sets the key at `parts` (lowercased path segments) to `value`, creating tables on the
/// way; arrays of tables cannot be reached.
pub(super) fn set_path(
    table: &mut toml::Table,
    parts: &[String],
    value: toml::Value,
) -> Result<(), String> {
    let (last, parents) = parts.split_last().ok_or("empty key")?;
    let mut current = table;
    for p in parents {
        let entry = current
            .entry(p.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        current = entry
            .as_table_mut()
            .ok_or_else(|| format!("\"{p}\" is not a table; env overrides set scalar keys"))?;
    }
    current.insert(last.clone(), value);
    Ok(())
}

/// The best key a deserialization error without a path names: toml's messages quote it in
/// backticks.
pub(super) fn toml_key(e: &toml::de::Error) -> String {
    e.message()
        .split('`')
        .nth(1)
        .map(str::to_string)
        .unwrap_or_else(|| "(document)".to_string())
}

/// Fails on the first float of `root` that is not finite (TOML's `nan`, `inf`, `-inf`),
/// naming its full key path, e.g. `strategy[0].scorecard.base`. Iterative, so a deeply
/// nested document cannot exhaust the stack.
pub(super) fn check_finite(root: &toml::Table) -> Result<(), ConfigError> {
    let mut pending: Vec<(String, &toml::Value)> =
        root.iter().rev().map(|(k, v)| (k.clone(), v)).collect();
    while let Some((key, value)) = pending.pop() {
        match value {
            toml::Value::Float(x) if !x.is_finite() => {
                return Err(ConfigError::new(key, not_finite(*x)));
            }
            toml::Value::Table(t) => {
                pending.extend(t.iter().rev().map(|(k, v)| (format!("{key}.{k}"), v)));
            }
            toml::Value::Array(a) => {
                pending.extend(
                    a.iter()
                        .enumerate()
                        .rev()
                        .map(|(i, v)| (format!("{key}[{i}]"), v)),
                );
            }
            _ => {}
        }
    }
    Ok(())
}

/// The reason for a float that is not finite, spelt as TOML spells it.
pub(super) fn not_finite(x: f64) -> String {
    let spelt = if x.is_nan() {
        "nan"
    } else if x > 0.0 {
        "inf"
    } else {
        "-inf"
    };
    format!("{spelt} is not a finite number")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_count_lines_and_characters() {
        let text = "a = 1\nbé = [\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 4), (1, 5));
        assert_eq!(line_column(text, 6), (2, 1));
        // "bé = " is 6 bytes and 5 characters.
        assert_eq!(line_column(text, 12), (2, 6));
        // Inside the two bytes of "é": counted from its start.
        assert_eq!(line_column(text, 8), (2, 2));
        assert_eq!(line_column(text, 99), (3, 1));
    }

    #[test]
    fn the_first_float_that_is_not_finite_is_named_by_its_path() {
        let t: toml::Table =
            toml::from_str("x = 1.0\n[[s]]\nv = [1.0, 2.0]\n[[s]]\nv = [3.0, -inf]\n").unwrap();
        let err = check_finite(&t).unwrap_err();
        assert_eq!(err.key, "s[1].v[1]");
        assert_eq!(err.reason, "-inf is not a finite number");
        let t: toml::Table = toml::from_str("[a.b]\nc = nan\n").unwrap();
        assert_eq!(check_finite(&t).unwrap_err().key, "a.b.c");
    }
}
