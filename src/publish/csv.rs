//! The CSV sink: a mart as a CSV file with a header.

use std::path::Path;

use rusqlite::types::Value;

use super::{published_columns, temp_beside};
use crate::error::{Error, Result};
use crate::format::format_decimal;
use crate::marts::Mart;

/// A value as the CSV writes it (`None` for null): money (integer minor
/// units of `scale`) with exactly its decimals, times as ISO 8601 UTC.
pub(super) fn cell(value: &Value, scale: Option<u32>) -> Option<String> {
    Some(match (value, scale) {
        (Value::Null | Value::Blob(_), _) => return None,
        (Value::Integer(v), Some(scale)) => format_decimal(*v, scale),
        (Value::Integer(v), None) => v.to_string(),
        (Value::Real(v), _) => v.to_string(),
        (Value::Text(s), _) => s.clone(),
    })
}

/// Writes a mart as CSV to a temp file beside `path`, to be renamed over
/// it. Money columns have exactly their decimals.
pub(super) fn write(mart: &Mart, path: &Path) -> Result<tempfile::TempPath> {
    let columns = published_columns(mart).map_err(Error::polars(format!("exporting {}", mart.name)))?;
    let tmp = temp_beside(path, ".csv.tmp")?;
    let csv_err = |source| Error::WriteCsv {
        path: path.to_path_buf(),
        source,
    };
    {
        let mut w = csv::Writer::from_writer(tmp.as_file());
        w.write_record(columns.iter().map(|c| c.name.as_str()))
            .map_err(csv_err)?;
        let mut record = Vec::with_capacity(columns.len());
        for row in 0..mart.frame.height() {
            record.clear();
            for c in &columns {
                record.push(cell(&c.values[row], c.scale).unwrap_or_default());
            }
            w.write_record(&record).map_err(csv_err)?;
        }
        w.flush().map_err(|e| Error::io("write", path, e))?;
    }
    Ok(tmp.into_temp_path())
}
