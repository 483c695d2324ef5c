//! Publish: the marts to their sinks, only after the gate passed, by one
//! protocol for every sink kind:
//! 1. every file export is written to a temp file beside its target and synced;
//! 2. one SQLite transaction replaces the tables of the SQLite sink and
//!    records the run with every export (files still pending);
//! 3. the files are renamed into place, their directories synced, and the
//!    exports marked published.
//!
//! A Delta table follows the same steps: its data files are written before
//! 2 (no version names them yet), the commit that adds them is recorded in
//! 2, and made in 3 ([`delta`]).
//!
//! A failure before 2 leaves everything as it was. A failure after 2 (a
//! kill, a full disk, an unreachable bucket) leaves the new run in the database and its files
//! staged: the next run starts by finishing the renames and commits from the run's
//! record ([`finish_interrupted`]), so the published state is wholly the
//! old run's or, once the next run starts, wholly the new one's. A new sink kind is a
//! variant of [`Sink`] and a file beside this one; `_sluice_run_exports` has
//! a row per run and export, so it needs a migration only for what a kind
//! records of its own (a Delta table's version).

mod csv;
pub(crate) mod delta;
mod parquet;
mod sqlite;

pub(crate) use sqlite::MINOR_SUFFIX;

use std::fs::File;
use std::path::{Path, PathBuf};

use chrono::DateTime;
use polars::prelude::{DataType, TimeUnit};
use rusqlite::types::Value;
use sha2::{Digest, Sha256};

use crate::engine::DuckDb;
use crate::error::{Error, Result};
use crate::fault;
use crate::format::{hex, iso_seconds};
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
    /// A Delta Lake table, local or in object storage: a new version.
    Delta(delta::Table),
}

impl Sink {
    /// The kind, as `_sluice_run_exports` records it.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Sink::Sqlite { .. } => "sqlite",
            Sink::Csv { .. } => "csv",
            Sink::Parquet { .. } => "parquet",
            Sink::Delta(_) => "delta",
        }
    }

    /// The table name or the path.
    pub(crate) fn target(&self) -> String {
        match self {
            Sink::Sqlite { table } => table.clone(),
            Sink::Csv { path } | Sink::Parquet { path } => path.display().to_string(),
            Sink::Delta(table) => table.location.clone(),
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

/// Publishes every export of `marts` and records `run` with them; returns
/// the version each Delta table is at now, by location.
pub(crate) fn publish(
    state: &mut RunState,
    engine: &DuckDb,
    marts: &[Mart],
    exports: &[Export],
    run: &RunRecord,
) -> Result<Vec<(String, u64)>> {
    let mut files = Vec::new();
    let mut tables = Vec::new();
    let mut records = Vec::new();
    for export in exports {
        let mart = &marts[export.mart];
        let staged = match &export.sink {
            Sink::Sqlite { .. } | Sink::Delta(_) => None,
            Sink::Csv { path } => Some(stage(csv::write(mart, path)?, path)?),
            Sink::Parquet { path } => Some(stage(parquet::write(engine, mart, path)?, path)?),
        };
        let commit = match &export.sink {
            Sink::Delta(table) => Some(delta::prepare(
                engine,
                mart,
                table,
                run.started_at.timestamp_micros(),
            )?),
            _ => None,
        };
        records.push(ExportRecord {
            mart: mart.name.clone(),
            sink: export.sink.kind(),
            target: export.sink.target(),
            rows: mart.frame.height() as u64,
            published: staged.is_none() && commit.is_none(),
            staged: staged.as_ref().map(|s| file_name(&s.temp)).or(commit.clone()),
            sha256: staged.as_ref().map(|s| s.sha256.clone()),
        });
        files.extend(staged);
        if let (Sink::Delta(table), Some(commit)) = (&export.sink, commit) {
            tables.push((table, commit));
        }
    }
    state.commit_run(run, true, &records, &|tx| {
        for export in exports {
            if let Sink::Sqlite { table } = &export.sink {
                sqlite::replace_table(tx, &marts[export.mart], table)?;
            }
        }
        Ok(())
    })?;
    // From here on the database holds the new run: a file that cannot be
    // renamed now stays staged, and the next run finishes the publish.
    let interrupted = |action, path: &Path, source| Error::PublishInterrupted {
        run_id: run.run_id.clone(),
        action,
        path: path.to_path_buf(),
        source,
    };
    let mut dirs = Vec::new();
    let mut failed = None;
    for file in files {
        if failed.is_some() {
            let _ = file.temp.keep();
            continue;
        }
        match put_in_place(file.temp, &file.target) {
            Ok(dir) if !dirs.contains(&dir) => dirs.push(dir),
            Ok(_) => {}
            Err(e) => failed = Some(interrupted("replace", &file.target, e)),
        }
    }
    if let Some(e) = failed {
        return Err(e);
    }
    for dir in &dirs {
        sync_dir(dir).map_err(|e| interrupted("sync", dir, e))?;
    }
    let mut versions = Vec::new();
    for (table, commit) in tables {
        let location = Path::new(&table.location);
        let committed = delta::commit(table, &commit, &run.run_id)
            .map_err(|e| interrupted("commit to", location, std::io::Error::other(e.to_string())))?;
        fault::point(&format!("record {}", file_name(location)))
            .map_err(|e| interrupted("record", location, e))?;
        state.settle_export(&run.run_id, &table.location, true, committed.version())?;
        versions.extend(committed.version().map(|v| (table.location.clone(), v)));
    }
    state.mark_files_published(&run.run_id)?;
    Ok(versions)
}

/// A file export written beside its target, synced, waiting for its rename.
struct Staged {
    temp: tempfile::TempPath,
    target: PathBuf,
    sha256: String,
}

/// Syncs a written export and takes its digest: what the next run compares
/// the target with when the run is cut off around its rename.
fn stage(temp: tempfile::TempPath, target: &Path) -> Result<Staged> {
    let name = file_name(target);
    let synced = fault::point(&format!("write {name}"))
        .and_then(|()| fault::point(&format!("sync {name}")))
        .and_then(|()| File::open(&temp)?.sync_all())
        .and_then(|()| digest(&temp));
    match synced {
        Ok(sha256) => Ok(Staged {
            temp,
            target: target.to_path_buf(),
            sha256,
        }),
        Err(e) => Err(Error::io("write", target, e)),
    }
}

/// Renames a staged file over its target; returns the directory to sync.
fn put_in_place(temp: tempfile::TempPath, target: &Path) -> std::io::Result<PathBuf> {
    if let Err(e) = fault::point(&format!("rename {}", file_name(target))) {
        let _ = temp.keep();
        return Err(e);
    }
    temp.persist(target).map_err(|e| {
        // Kept for the next run, which finishes the rename.
        let _ = e.path.keep();
        e.error
    })?;
    Ok(parent(target).to_path_buf())
}

/// Makes the renames in `dir` durable.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    fault::point(&format!("sync-dir {}", file_name(dir)))?;
    File::open(dir)?.sync_all()
}

/// A file export (or Delta commit) that an earlier run committed to its
/// record but did not put in place, and what the next run found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Settled {
    pub run_id: String,
    pub target: String,
    pub outcome: Finish,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Finish {
    /// The staged file was renamed into place (the Delta commit made) now.
    Renamed,
    /// The rename (the commit) had happened; only its record was missing.
    AlreadyInPlace,
    /// The staged file is gone and the target is not it: the target keeps
    /// an earlier run's rows (the next publish rewrites it).
    Lost,
}

/// Finishes the publish of a run cut off between its commit and the
/// renames of its files (a kill, a full disk), from the run's record: each
/// staged file is renamed into place, and the record says so. Runs under
/// the lock, before [`remove_leftovers`] (the staged files are temp files).
pub(crate) fn finish_interrupted(state: &RunState) -> Result<Vec<Settled>> {
    let mut settled = Vec::new();
    for pending in state.pending_files()? {
        let target = PathBuf::from(&pending.target);
        let staged = parent(&target).join(&pending.staged);
        let outcome = if staged.is_file() {
            fault::point(&format!("finish {}", file_name(&target)))
                .and_then(|()| std::fs::rename(&staged, &target))
                .and_then(|()| sync_dir(parent(&target)))
                .map_err(|e| Error::PublishInterrupted {
                    run_id: pending.run_id.clone(),
                    action: "replace",
                    path: target.clone(),
                    source: e,
                })?;
            Finish::Renamed
        } else if digest(&target).is_ok_and(|d| d == pending.sha256) {
            Finish::AlreadyInPlace
        } else {
            Finish::Lost
        };
        state.settle_export(&pending.run_id, &pending.target, outcome != Finish::Lost, None)?;
        settled.push(Settled {
            run_id: pending.run_id,
            target: pending.target,
            outcome,
        });
    }
    for pending in state.pending_tables()? {
        // Only its location matters to a commit; a later publish vacuums.
        let table = delta::Table {
            location: pending.target.clone(),
            schema: crate::config::SchemaChanges::Evolve,
            retain: None,
        };
        let committed = delta::commit(&table, &pending.commit, &pending.run_id).map_err(|e| {
            Error::PublishInterrupted {
                run_id: pending.run_id.clone(),
                action: "commit to",
                path: PathBuf::from(&pending.target),
                source: std::io::Error::other(e.to_string()),
            }
        })?;
        state.settle_export(&pending.run_id, &pending.target, true, committed.version())?;
        settled.push(Settled {
            run_id: pending.run_id,
            target: pending.target,
            outcome: match committed {
                delta::Committed::Now(_) => Finish::Renamed,
                delta::Committed::Before(_) => Finish::AlreadyInPlace,
            },
        });
    }
    Ok(settled)
}

/// The hex SHA-256 of a file.
fn digest(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let (mut file, mut hasher) = (File::open(path)?, Sha256::new());
    let mut buffer = vec![0; 1 << 16];
    loop {
        match file.read(&mut buffer)? {
            0 => return Ok(hex(&hasher.finalize())),
            n => hasher.update(&buffer[..n]),
        }
    }
}

/// The directory of a path (`.` for a bare name).
fn parent(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// The last component of a path, as text (for fault points and messages).
fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Records a run that publishes nothing; the marts stay as they were.
pub(crate) fn record_unpublished(state: &mut RunState, run: &RunRecord) -> Result<()> {
    state.commit_run(run, false, &[], &|_| Ok(()))
}

/// Writes the candidates of a run that did not publish, for inspection.
pub(crate) fn write_unpublished(marts: &[Mart], dir: &Path) -> Result<()> {
    for mart in marts {
        let path = dir.join(format!("{}.csv", mart.name));
        csv::write(mart, &path)?
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
                .map(|c| csv::cell(&c.values[row], c.scale).unwrap_or_else(|| "null".into()))
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
    let dir = parent(path);
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
    /// For money: integer minor units, exact; each sink writes them with
    /// `scale` decimals (the SQLite sink also as a REAL).
    values: Vec<Value>,
    scale: Option<u32>,
}

/// Converts every column of a mart: money to integer minor units, times to
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
                (
                    if scale.is_some() { "REAL" } else { "INTEGER" },
                    values.map(|v| v.map_or(Value::Null, Value::Integer)).collect(),
                )
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
            scale: scale.filter(|_| column.dtype().is_integer()),
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
