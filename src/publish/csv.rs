//! The CSV sink: a mart as a CSV file with a header.

use std::path::Path;

use rusqlite::types::Value;

use super::{published_columns, temp_beside};
use crate::error::{Error, Result};
use crate::format::format_decimal;
use crate::marts::Mart;

/// Writes a mart as CSV to a synced temp file beside `path`, to be renamed
/// over it. Money columns have exactly their decimals.
pub(super) fn stage(mart: &Mart, path: &Path) -> Result<tempfile::TempPath> {
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
                let scale = mart.scale(&c.name);
                record.push(match &c.values[row] {
                    Value::Null => String::new(),
                    Value::Integer(v) => v.to_string(),
                    Value::Real(v) if scale.is_some() => {
                        let scale = scale.unwrap_or_default();
                        format_decimal((v * 10f64.powi(scale as i32)).round() as i64, scale)
                    }
                    Value::Real(v) => v.to_string(),
                    Value::Text(s) => s.clone(),
                    Value::Blob(_) => String::new(),
                });
            }
            w.write_record(&record).map_err(csv_err)?;
        }
        w.flush().map_err(|e| Error::io("write", path, e))?;
    }
    tmp.as_file()
        .sync_all()
        .map_err(|e| Error::io("write", path, e))?;
    Ok(tmp.into_temp_path())
}
