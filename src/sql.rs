//! Quoting for the SQL sluice writes (DuckDB and SQLite quote alike): every
//! name or value that comes from a user's files goes through here.

use std::path::Path;

/// A quoted identifier: `"my ""odd"" column"`.
pub(crate) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A quoted string literal: `'it''s'`.
pub(crate) fn string(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// A UTC instant as a DuckDB `TIMESTAMP` literal, to the microsecond.
pub(crate) fn timestamp(t: chrono::DateTime<chrono::Utc>) -> String {
    format!("TIMESTAMP '{}'", t.format("%Y-%m-%d %H:%M:%S%.6f"))
}

/// `{as_of}` and `{window_start}` in SQL a user wrote (staging scripts, mart
/// filters and `sql:` marts, checks), replaced by the run's timestamps as
/// typed `TIMESTAMP` literals, which DuckDB and Polars SQL both read: write
/// them unquoted, `event_time <= {as_of}`.
pub(crate) fn expand_params(
    text: &str,
    as_of: chrono::DateTime<chrono::Utc>,
    window_start: chrono::DateTime<chrono::Utc>,
) -> String {
    text.replace("{as_of}", &timestamp(as_of))
        .replace("{window_start}", &timestamp(window_start))
}

/// A path as a quoted string literal.
pub(crate) fn path(path: &Path) -> String {
    string(&path.display().to_string())
}

/// Integer minor units (`column`, an identifier) as the DECIMAL(18, scale)
/// amount they are: a decimal product, where `/` would go through DOUBLE and
/// lose cents above 2^53 minor units.
pub(crate) fn minor_to_decimal(column: &str, scale: u32) -> String {
    format!(
        "CAST(CAST({column} AS DECIMAL(38, 0)) * CAST(1 / {} AS DECIMAL(38, {scale})) AS DECIMAL(18, {scale}))",
        10i64.pow(scale)
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn quotes_are_doubled() {
        assert_eq!(super::ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(super::string("it's"), "'it''s'");
    }
}
