//! Publish: the marts to their sinks, only after the gate passed, by one
//! protocol for every sink kind:
//! 1. every file export is written to a temp file beside its target and synced;
//! 2. one SQLite transaction replaces the tables of the SQLite sink and
//!    records the run with every export (files still pending);
//! 3. the files are renamed into place and marked published.
//!
//! A failure before 2 leaves everything as it was. A new sink kind is a
//! variant of [`Sink`] and a file beside this one; `_sluice_run_exports` has
//! a row per run and export, so it needs no migration.

mod csv;
mod parquet;
mod sqlite;

use std::path::{Path, PathBuf};

use chrono::DateTime;
use polars::prelude::{DataType, TimeUnit};
use rusqlite::types::Value;

use crate::engine::DuckDb;
use crate::error::{Error, Result};
use crate::format::iso_seconds;
use crate::marts::Mart;
use crate::state::{ExportRecord, RunRecord, RunState};

/// Where a mart is published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Sink {
    /// A table of the SQLite database, replaced in the run's transaction.
    Sqlite { table: String },
    /// A CSV file; money with exactly its decimals.
    Csv { path: PathBuf },
    /// A Parquet file, typed as the candidate is in the engine.
    Parquet { path: PathBuf },
}

impl Sink {
    /// The kind, as `_sluice_run_exports` records it.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Sink::Sqlite { .. } => "sqlite",
            Sink::Csv { .. } => "csv",
            Sink::Parquet { .. } => "parquet",
        }
    }

    /// The table name or the path.
    pub(crate) fn target(&self) -> String {
        match self {
            Sink::Sqlite { table } => table.clone(),
            Sink::Csv { path } | Sink::Parquet { path } => path.display().to_string(),
        }
    }
}

/// One mart to one sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Export {
    /// The index of the mart in the run's marts.
    pub mart: usize,
    pub sink: Sink,
}

/// Publishes every export of `marts` and records `run` with them.
pub(crate) fn publish(
    state: &mut RunState,
    engine: &DuckDb,
    marts: &[Mart],
    exports: &[Export],
    run: &RunRecord,
) -> Result<()> {
    let mut files = Vec::new();
    for export in exports {
        let mart = &marts[export.mart];
        match &export.sink {
            Sink::Sqlite { .. } => {}
            Sink::Csv { path } => files.push((csv::stage(mart, path)?, path)),
            Sink::Parquet { path } => files.push((parquet::stage(engine, mart, path)?, path)),
        }
    }
    let records: Vec<ExportRecord> = exports
        .iter()
        .map(|e| ExportRecord {
            mart: marts[e.mart].name.clone(),
            sink: e.sink.kind(),
            target: e.sink.target(),
            rows: marts[e.mart].frame.height() as u64,
            published: matches!(e.sink, Sink::Sqlite { .. }),
        })
        .collect();
    state.commit_run(run, true, &records, &|tx| {
        for export in exports {
            if let Sink::Sqlite { table } = &export.sink {
                sqlite::replace_table(tx, &marts[export.mart], table)?;
            }
        }
        Ok(())
    })?;
    for (staged, path) in files {
        staged
            .persist(path)
            .map_err(|e| Error::io("replace", path, e.error))?;
    }
    state.mark_files_published(&run.run_id)
}

/// Records a run that publishes nothing; the marts stay as they were.
pub(crate) fn record_unpublished(state: &mut RunState, run: &RunRecord) -> Result<()> {
    state.commit_run(run, false, &[], &|_| Ok(()))
}

/// Writes the candidates of a run that did not publish, for inspection.
pub(crate) fn write_unpublished(marts: &[Mart], dir: &Path) -> Result<()> {
    for mart in marts {
        let path = dir.join(format!("{}.csv", mart.name));
        let staged = csv::stage(mart, &path)?;
        staged
            .persist(&path)
            .map_err(|e| Error::io("replace", &path, e.error))?;
    }
    Ok(())
}

/// The first `rows` rows of a mart as its CSV writes them (`null` for a null),
/// with the column names: what a person is shown of a mart.
pub(crate) fn text_rows(mart: &Mart, rows: usize) -> Result<(Vec<String>, Vec<Vec<String>>)> {
    let head = Mart {
        frame: mart.frame.head(Some(rows)),
        ..mart.clone()
    };
    let columns = published_columns(&head).map_err(Error::polars(format!("showing {}", mart.name)))?;
    let cells = (0..head.frame.height())
        .map(|row| {
            columns
                .iter()
                .map(|c| csv::cell(&c.values[row], head.scale(&c.name)).unwrap_or_else(|| "null".into()))
                .collect()
        })
        .collect();
    Ok((columns.into_iter().map(|c| c.name).collect(), cells))
}

/// Whether a file name is one of sluice's own temp files: a sink's
/// `.sluice-*.tmp` ([`temp_beside`]) or the engine's `<file>.tmp<pid>`
/// (`DuckDb::copy_to`). A run killed before its rename leaves them behind.
fn is_leftover(name: &str) -> bool {
    let engine_copy = name.rsplit_once(".tmp").is_some_and(|(stem, pid)| {
        !stem.is_empty() && !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit())
    });
    (name.starts_with(".sluice-") && name.ends_with(".tmp")) || engine_copy
}

/// Removes the temp files an interrupted run left under `dirs`, and
/// `spill_dir` (the engine's spill files), before a run writes anything.
/// Only a run that holds the database lock may call it: another run's temp
/// files are then not in flight. Returns how many files went.
pub(crate) fn remove_leftovers(dirs: &[&Path], spill_dir: &Path) -> usize {
    fn walk(dir: &Path, removed: &mut usize) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else { continue };
            if kind.is_dir() {
                walk(&entry.path(), removed);
            } else if kind.is_file()
                && is_leftover(&entry.file_name().to_string_lossy())
                && std::fs::remove_file(entry.path()).is_ok()
            {
                *removed += 1;
            }
        }
    }
    let mut removed = 0;
    for dir in dirs {
        walk(dir, &mut removed);
    }
    if let Ok(entries) = std::fs::read_dir(spill_dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|k| k.is_file()) && std::fs::remove_file(entry.path()).is_ok() {
                removed += 1;
            }
        }
    }
    removed
}

/// A temp file in the directory of `path` (created when missing), readable
/// as the user's umask says (tempfile's default is 0600).
fn temp_beside(path: &Path, suffix: &str) -> Result<tempfile::NamedTempFile> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
    tempfile::Builder::new()
        .prefix(".sluice-")
        .suffix(suffix)
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
        .tempfile_in(dir)
        .map_err(|e| Error::io("create a temp file in", dir, e))
}

/// A mart column converted for publishing: SQLite type and one value per row.
struct Published {
    name: String,
    sql_type: &'static str,
    values: Vec<Value>,
}

/// Converts every column of a mart: money to REAL rounded to cents, times to
/// ISO-8601 UTC text truncated to seconds, days to `YYYY-MM-DD`.
fn published_columns(mart: &Mart) -> std::result::Result<Vec<Published>, polars::error::PolarsError> {
    let mut out = Vec::new();
    for column in mart.frame.columns() {
        let name = column.name().to_string();
        let scale = mart.scale(&name);
        let (sql_type, values): (&'static str, Vec<Value>) = match column.dtype() {
            DataType::Datetime(unit, _) => {
                let per_second = match unit {
                    TimeUnit::Nanoseconds => 1_000_000_000,
                    TimeUnit::Microseconds => 1_000_000,
                    TimeUnit::Milliseconds => 1_000,
                };
                let ints = column.cast(&DataType::Int64)?;
                let values = ints
                    .i64()?
                    .iter()
                    .map(
                        |v| match v.and_then(|v| DateTime::from_timestamp(v.div_euclid(per_second), 0)) {
                            Some(t) => Value::Text(iso_seconds(t)),
                            None => Value::Null,
                        },
                    )
                    .collect();
                ("TEXT", values)
            }
            DataType::Date => {
                let days = column.cast(&DataType::Int32)?;
                let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
                let values = days
                    .i32()?
                    .iter()
                    .map(|d| {
                        match d.and_then(|d| epoch.checked_add_signed(chrono::Duration::days(d.into()))) {
                            Some(day) => Value::Text(day.format("%Y-%m-%d").to_string()),
                            None => Value::Null,
                        }
                    })
                    .collect();
                ("TEXT", values)
            }
            dt if dt.is_integer() => {
                let ints = column.cast(&DataType::Int64)?;
                let values = ints.i64()?.iter();
                if let Some(scale) = scale {
                    let one = 10f64.powi(scale as i32);
                    (
                        "REAL",
                        values
                            .map(|v| v.map_or(Value::Null, |c| Value::Real(c as f64 / one)))
                            .collect(),
                    )
                } else {
                    (
                        "INTEGER",
                        values.map(|v| v.map_or(Value::Null, Value::Integer)).collect(),
                    )
                }
            }
            dt if dt.is_float() => {
                let floats = column.cast(&DataType::Float64)?;
                (
                    "REAL",
                    floats
                        .f64()?
                        .iter()
                        .map(|v| v.map_or(Value::Null, Value::Real))
                        .collect(),
                )
            }
            _ => {
                let text = column.cast(&DataType::String)?;
                let values = text
                    .str()?
                    .iter()
                    .map(|v| v.map_or(Value::Null, |s| Value::Text(s.to_string())))
                    .collect();
                ("TEXT", values)
            }
        };
        out.push(Published {
            name,
            sql_type,
            values,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::is_leftover;

    #[test]
    fn only_sluices_own_temp_files_are_leftovers() {
        for ours in [".sluice-AbC123.csv.tmp", "events.parquet.tmp4242", "x.csv.tmp1"] {
            assert!(is_leftover(ours), "{ours}");
        }
        for theirs in [
            "notes.tmp",
            "events.parquet",
            "a.tmp7x",
            ".tmp12",
            "report.tmp.csv",
            ".sluice-x.csv",
        ] {
            assert!(!is_leftover(theirs), "{theirs}");
        }
    }
}
