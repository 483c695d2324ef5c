//! The engine: the only place SQL runs, and the only module that knows
//! DuckDB. [`DuckDb`] runs in process today; its methods are the seam a
//! second engine (a Spark cluster) would implement: run statements, read
//! small results, describe and list tables, copy a query's result to a file
//! atomically, append Arrow batches, and hand results to Polars and back
//! through the Arrow C Data Interface ([`handoff`]).

mod duck;
pub(crate) mod handoff;

pub(crate) use duck::{BatchAppender, DuckDb, arrow};

/// A table's columns and their engine types, in table order.
pub(crate) type Columns = Vec<(String, String)>;

/// One value of a small result (counts, names, published rows).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
    Blob(Vec<u8>),
}

/// The file formats a query's result can be copied to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileFormat {
    Parquet,
    /// With a header line.
    Csv,
}

/// Who is at fault for an engine error, read off the engine's own message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The SQL does not parse.
    Syntax,
    /// The SQL names a table, column, function or type that does not fit.
    Binding,
    /// A value could not be converted, is out of range or breaks a constraint.
    Data,
    /// A file could not be read or written.
    Io,
    /// Memory or spill space ran out.
    Resources,
    /// Anything else, the engine's own failures included.
    Other,
}

/// An error the engine reported: its class and its message.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct EngineError {
    pub class: ErrorClass,
    pub message: String,
}

impl EngineError {
    pub fn new(message: impl Into<String>) -> EngineError {
        let message = message.into();
        EngineError {
            class: classify(&message),
            message,
        }
    }

    /// The statement's author must fix it: it does not parse or names what is not there.
    pub fn is_in_the_sql(&self) -> bool {
        matches!(self.class, ErrorClass::Syntax | ErrorClass::Binding)
    }

    /// The first line: what is wrong, without the SQL DuckDB quotes after it.
    pub fn first_line(&self) -> &str {
        self.message.lines().next().unwrap_or_default()
    }
}

/// DuckDB starts a message with its error type (`Parser Error: ...`,
/// `Out of Range Error: ...`); duckdb-rs reports most errors with no other
/// code, so the type in the message is what there is to go by.
pub(crate) fn classify(message: &str) -> ErrorClass {
    let first = message.lines().next().unwrap_or_default();
    let Some((kind, _)) = first.split_once(" Error:") else {
        return ErrorClass::Other;
    };
    match kind.trim() {
        "Parser" | "Syntax" => ErrorClass::Syntax,
        "Binder" | "Catalog" | "Not implemented" => ErrorClass::Binding,
        "Conversion" | "Invalid Input" | "Out of Range" | "Constraint" | "Mismatch Type" => ErrorClass::Data,
        "IO" | "Permission" => ErrorClass::Io,
        "Out of Memory" => ErrorClass::Resources,
        _ => ErrorClass::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_class_is_read_off_the_message() {
        let cases = [
            (
                "Parser Error: syntax error at or near \"SELEC\"",
                ErrorClass::Syntax,
            ),
            (
                "Binder Error: Referenced column \"x\" not found",
                ErrorClass::Binding,
            ),
            (
                "Catalog Error: Table with name nope does not exist!",
                ErrorClass::Binding,
            ),
            ("Not implemented Error: PIVOT", ErrorClass::Binding),
            (
                "Conversion Error: Could not convert string 'a' to INT64",
                ErrorClass::Data,
            ),
            ("Invalid Input Error: Malformed JSON", ErrorClass::Data),
            ("Out of Range Error: Overflow in multiplication", ErrorClass::Data),
            ("Constraint Error: NOT NULL constraint failed", ErrorClass::Data),
            ("IO Error: No files found that match the pattern", ErrorClass::Io),
            ("Permission Error: cannot write", ErrorClass::Io),
            (
                "Out of Memory Error: could not allocate block",
                ErrorClass::Resources,
            ),
            ("INTERNAL Error: Attempted to access index", ErrorClass::Other),
            ("something without a type", ErrorClass::Other),
        ];
        for (message, class) in cases {
            assert_eq!(classify(message), class, "{message}");
        }
        let e = EngineError::new("Binder Error: no column x\n\nLINE 1: SELECT x");
        assert!(e.is_in_the_sql());
        assert_eq!(e.first_line(), "Binder Error: no column x");
        assert!(!EngineError::new("IO Error: disk full").is_in_the_sql());
    }
}
