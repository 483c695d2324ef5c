//! The Parquet sink: a mart as a Parquet file, written by the engine from
//! the candidate it audited (decimals as DECIMAL, times as TIMESTAMP).

use std::path::Path;

use super::temp_beside;
use crate::engine::{DuckDb, FileFormat};
use crate::error::{Error, Result};
use crate::marts::Mart;
use crate::sql;

/// Writes a mart as Parquet to a temp file beside `path`, to be renamed
/// over it.
pub(super) fn write(engine: &DuckDb, mart: &Mart, path: &Path) -> Result<tempfile::TempPath> {
    let tmp = temp_beside(path, ".parquet.tmp")?.into_temp_path();
    engine
        .write_file(
            &format!("SELECT * FROM marts.{}", sql::ident(&mart.name)),
            &tmp,
            FileFormat::Parquet,
        )
        .map_err(Error::engine(format!("writing `{}`", path.display())))?;
    Ok(tmp)
}
