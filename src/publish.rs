//! Publish: the SQLite database (`agg_result.db`) and the CSV exports.
//!
//! The database may be a single-file bind mount, which cannot be renamed over,
//! so marts are replaced inside one SQLite transaction with the rollback
//! journal. CSVs go through a temp file in the same directory and a rename.
//! `_sluice_runs` records every run and which of the two publish steps happened.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use polars::prelude::{DataType, TimeUnit};
use rusqlite::{Connection, params, types::Value};

use crate::checks::engine::{History, Outcome};
use crate::error::{Error, Result};
use crate::ingest::InputFile;
use crate::marts::Mart;
use crate::sql;
use crate::stage::StageCounts;

/// Version of the `_sluice_*` tables (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 3;

/// Forward migrations: entry `i` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: [&str; 3] = [
    r#"
CREATE TABLE _sluice_runs (
    run_id TEXT PRIMARY KEY,
    pipeline TEXT NOT NULL,
    as_of TEXT NOT NULL,
    lookback_days INTEGER NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    status TEXT NOT NULL,
    published_db INTEGER NOT NULL,
    published_csv INTEGER NOT NULL,
    rows_raw INTEGER NOT NULL,
    rows_quarantined INTEGER NOT NULL,
    rows_duplicates INTEGER NOT NULL,
    rows_staged INTEGER NOT NULL,
    quarantined_by_reason TEXT NOT NULL,
    sluice_version TEXT NOT NULL,
    git_sha TEXT,
    config_hash TEXT NOT NULL
);
CREATE TABLE _sluice_run_inputs (
    run_id TEXT NOT NULL REFERENCES _sluice_runs(run_id),
    path TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    rows INTEGER NOT NULL
);
"#,
    r#"
CREATE TABLE _sluice_check_results (
    run_id TEXT NOT NULL REFERENCES _sluice_runs(run_id),
    check_file TEXT NOT NULL,
    check_name TEXT NOT NULL,
    table_name TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    severity TEXT,
    observed REAL,
    observed_pct REAL,
    threshold TEXT NOT NULL,
    failed_rows INTEGER,
    message TEXT,
    PRIMARY KEY (run_id, check_file, check_name)
);
"#,
    r#"
CREATE TABLE _sluice_metrics_history (
    check_file TEXT NOT NULL,
    check_name TEXT NOT NULL,
    table_name TEXT NOT NULL,
    as_of TEXT NOT NULL,
    run_id TEXT NOT NULL,
    observed REAL NOT NULL,
    gate_passed INTEGER NOT NULL,
    PRIMARY KEY (check_file, check_name, as_of)
);
"#,
];

/// The published database, opened and exclusively locked for the whole run.
pub struct Db {
    // Field order matters: the connection closes before the lock is released,
    // and closing the lock's descriptor last keeps SQLite's own locks intact.
    conn: Connection,
    path: PathBuf,
    _lock: File,
}

impl Db {
    /// Opens (or creates) the database and takes the run lock. An empty file is
    /// a new database; a directory is the mistake Docker makes for a missing
    /// single-file mount.
    pub fn open(path: &Path) -> Result<Db> {
        check_path(path)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
        }
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| Error::io("open database", path, e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(Error::Locked {
                    path: path.to_path_buf(),
                });
            }
            Err(TryLockError::Error(e)) => return Err(Error::io("lock database", path, e)),
        }
        let conn = Connection::open(path).map_err(|e| sqlite(path, "opening", e))?;
        let corrupt = |source| Error::CorruptDb {
            path: path.to_path_buf(),
            source,
        };
        conn.pragma_update(None, "journal_mode", "DELETE")
            .map_err(corrupt)?;
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(corrupt)?;
        if version > SCHEMA_VERSION {
            return Err(Error::DbTooNew {
                path: path.to_path_buf(),
                version,
            });
        }
        Ok(Db {
            conn,
            path: path.to_path_buf(),
            _lock: lock,
        })
    }

    /// Brings the `_sluice_*` tables to [`SCHEMA_VERSION`] inside `tx`.
    fn migrate(tx: &rusqlite::Transaction<'_>, path: &Path) -> Result<()> {
        let version: i64 = tx
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|e| sqlite(path, "reading the schema version", e))?;
        for (from, sql) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
            tx.execute_batch(sql)
                .map_err(|e| sqlite(path, "migrating the sluice tables", e))?;
            tx.pragma_update(None, "user_version", from as i64 + 1)
                .map_err(|e| sqlite(path, "migrating the sluice tables", e))?;
        }
        Ok(())
    }

    /// Replaces every mart and records the run, in one transaction.
    pub fn publish(&mut self, marts: &[(&Mart, String)], run: &RunRecord) -> Result<()> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction()
            .map_err(|e| sqlite(&path, "starting the publish", e))?;
        Self::migrate(&tx, &path)?;
        for (mart, table) in marts {
            replace_table(&tx, mart, table).map_err(|e| sqlite(&path, "replacing the marts", e))?;
        }
        insert_run(&tx, run, true).map_err(|e| sqlite(&path, "recording the run", e))?;
        tx.commit()
            .map_err(|e| sqlite(&path, "committing the publish", e))
    }

    /// Records a run whose marts were not published; the marts stay as they were.
    pub fn record_unpublished(&mut self, run: &RunRecord) -> Result<()> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction()
            .map_err(|e| sqlite(&path, "recording the run", e))?;
        Self::migrate(&tx, &path)?;
        insert_run(&tx, run, false).map_err(|e| sqlite(&path, "recording the run", e))?;
        tx.commit().map_err(|e| sqlite(&path, "recording the run", e))
    }

    /// Each check's observed values before `as_of`, newest first, from runs
    /// whose gate passed (a failed run is no baseline).
    pub fn history(&self, as_of: DateTime<Utc>) -> Result<History> {
        let err = |e| sqlite(&self.path, "reading the metrics history", e);
        let version: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(err)?;
        let mut history = History::new();
        if version < 3 {
            return Ok(history);
        }
        let mut stmt = self
            .conn
            .prepare(
                "SELECT check_file, check_name, observed FROM _sluice_metrics_history \
                 WHERE gate_passed = 1 AND as_of < ?1 ORDER BY as_of DESC",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map([iso_seconds(as_of)], |r| {
                Ok(((r.get(0)?, r.get(1)?), r.get::<_, f64>(2)?))
            })
            .map_err(err)?;
        for row in rows {
            let (key, value) = row.map_err(err)?;
            history.entry(key).or_default().push(value);
        }
        Ok(history)
    }

    /// The newest run whose marts were published.
    pub fn last_published(&self) -> Result<Option<LastRun>> {
        let version: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|e| sqlite(&self.path, "reading the runs", e))?;
        if version == 0 {
            return Ok(None);
        }
        let found = self.conn.query_row(
            "SELECT run_id, as_of, lookback_days FROM _sluice_runs WHERE published_db = 1 ORDER BY finished_at DESC LIMIT 1",
            [],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, u32>(2)?)),
        );
        match found {
            Ok((run_id, as_of, lookback_days)) => Ok(Some(LastRun {
                run_id,
                as_of: DateTime::parse_from_rfc3339(&as_of)
                    .map(|t| t.with_timezone(&Utc))
                    .unwrap_or_default(),
                lookback_days,
            })),
            Err(rusqlite::Error::QueryReturnedNoRows) => Ok(None),
            Err(e) => Err(sqlite(&self.path, "reading the runs", e)),
        }
    }

    /// Every published mart table with its declared column types and rows.
    pub fn published_tables(&self) -> Result<Vec<PublishedTable>> {
        let err = |e| sqlite(&self.path, "reading the published marts", e);
        let mut names = self
            .conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_sluice\\_%' ESCAPE '\\' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name")
            .map_err(err)?;
        let names: Vec<String> = names
            .query_map([], |r| r.get(0))
            .map_err(err)?
            .collect::<rusqlite::Result<_>>()
            .map_err(err)?;
        let mut tables = Vec::new();
        for name in names {
            let mut info = self
                .conn
                .prepare(&format!("PRAGMA table_info({})", sql::ident(&name)))
                .map_err(err)?;
            let columns: Vec<(String, String)> = info
                .query_map([], |r| Ok((r.get(1)?, r.get(2)?)))
                .map_err(err)?
                .collect::<rusqlite::Result<_>>()
                .map_err(err)?;
            let mut stmt = self
                .conn
                .prepare(&format!("SELECT * FROM {}", sql::ident(&name)))
                .map_err(err)?;
            let rows: Vec<Vec<Value>> = stmt
                .query_map([], |r| (0..columns.len()).map(|i| r.get::<_, Value>(i)).collect())
                .map_err(err)?
                .collect::<rusqlite::Result<_>>()
                .map_err(err)?;
            tables.push(PublishedTable { name, columns, rows });
        }
        Ok(tables)
    }

    /// Notes that the CSV exports of `run_id` were renamed into place.
    pub fn mark_csv_published(&self, run_id: &str) -> Result<()> {
        self.conn
            .execute(
                "UPDATE _sluice_runs SET published_csv = 1 WHERE run_id = ?1",
                [run_id],
            )
            .map(drop)
            .map_err(|e| sqlite(&self.path, "recording the CSV publish", e))
    }
}

/// Fails at once on a database path that is a directory, before any work.
pub fn check_path(path: &Path) -> Result<()> {
    if path.is_dir() {
        return Err(Error::DbIsDirectory {
            path: path.to_path_buf(),
        });
    }
    Ok(())
}

fn sqlite(path: &Path, context: &'static str, source: rusqlite::Error) -> Error {
    Error::Sqlite {
        path: path.to_path_buf(),
        context,
        source,
    }
}

/// The newest published run: what `sluice check` re-audits against.
#[derive(Debug, Clone)]
pub struct LastRun {
    pub run_id: String,
    pub as_of: DateTime<Utc>,
    pub lookback_days: u32,
}

/// A published mart as SQLite holds it.
#[derive(Debug, Clone)]
pub struct PublishedTable {
    pub name: String,
    /// Name and declared type of each column.
    pub columns: Vec<(String, String)>,
    pub rows: Vec<Vec<Value>>,
}

/// The provenance of one run, as stored in `_sluice_runs`.
#[derive(Debug, Clone)]
pub struct RunRecord {
    pub run_id: String,
    pub pipeline: String,
    pub as_of: DateTime<Utc>,
    pub lookback_days: u32,
    pub started_at: DateTime<Utc>,
    pub status: &'static str,
    pub counts: StageCounts,
    pub inputs: Vec<InputFile>,
    pub git_sha: Option<String>,
    pub config_hash: String,
    pub checks: Vec<Outcome>,
}

fn insert_run(tx: &rusqlite::Transaction<'_>, run: &RunRecord, published: bool) -> rusqlite::Result<()> {
    let by_reason = serde_json::Value::Object(
        run.counts
            .quarantined
            .iter()
            .map(|(r, n)| (r.to_string(), serde_json::Value::from(*n)))
            .collect(),
    );
    tx.execute(
        "INSERT OR REPLACE INTO _sluice_runs VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
        params![
            run.run_id,
            run.pipeline,
            iso_seconds(run.as_of),
            run.lookback_days,
            run.started_at.to_rfc3339_opts(SecondsFormat::Millis, true),
            Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
            run.status,
            published,
            run.counts.raw as i64,
            run.counts.quarantined_total() as i64,
            run.counts.duplicates as i64,
            run.counts.staged as i64,
            by_reason.to_string(),
            env!("CARGO_PKG_VERSION"),
            run.git_sha,
            run.config_hash,
        ],
    )?;
    let mut stmt = tx.prepare(
        "INSERT INTO _sluice_check_results VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?;
    for o in &run.checks {
        stmt.execute(params![
            run.run_id,
            o.check.file,
            o.check.name,
            o.check.table,
            o.check.kind().as_str(),
            o.status.as_str(),
            o.severity(),
            o.observed,
            o.observed_pct,
            o.threshold,
            o.failed_rows.map(|n| n as i64),
            o.message,
        ])?;
    }
    // One row per check and as_of: a re-run with the same as_of replaces its own.
    let mut stmt =
        tx.prepare("INSERT OR REPLACE INTO _sluice_metrics_history VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")?;
    for o in &run.checks {
        if let Some(observed) = o.observed.filter(|v| v.is_finite()) {
            stmt.execute(params![
                o.check.file,
                o.check.name,
                o.check.table,
                iso_seconds(run.as_of),
                run.run_id,
                observed,
                run.status == "passed",
            ])?;
        }
    }
    let mut stmt = tx.prepare("INSERT INTO _sluice_run_inputs VALUES (?1, ?2, ?3, ?4, ?5)")?;
    for input in &run.inputs {
        stmt.execute(params![
            run.run_id,
            input.path.display().to_string(),
            input.size as i64,
            input.sha256,
            input.rows as i64
        ])?;
    }
    Ok(())
}

/// `2026-11-20T13:05:00Z`: UTC, truncated to seconds.
pub fn iso_seconds(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Integer cents as an exact decimal with two places: `-0.05`, `12.30`.
pub fn format_cents(cents: i64) -> String {
    format_decimal(cents, 2)
}

/// Integer minor units as an exact decimal with `scale` places.
pub fn format_decimal(units: i64, scale: u32) -> String {
    let sign = if units < 0 { "-" } else { "" };
    let abs = units.unsigned_abs();
    let one = 10u64.pow(scale);
    match scale {
        0 => format!("{sign}{abs}"),
        _ => format!(
            "{sign}{}.{:0width$}",
            abs / one,
            abs % one,
            width = scale as usize
        ),
    }
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

fn replace_table(tx: &rusqlite::Transaction<'_>, mart: &Mart, table: &str) -> rusqlite::Result<()> {
    let columns =
        published_columns(mart).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    let table = sql::ident(table);
    let defs: Vec<String> = columns
        .iter()
        .map(|c| format!("{} {}", sql::ident(&c.name), c.sql_type))
        .collect();
    tx.execute_batch(&format!(
        "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} ({});",
        defs.join(", ")
    ))?;
    let placeholders = vec!["?"; columns.len()].join(", ");
    let mut stmt = tx.prepare(&format!("INSERT INTO {table} VALUES ({placeholders})"))?;
    for row in 0..mart.frame.height() {
        stmt.execute(rusqlite::params_from_iter(columns.iter().map(|c| &c.values[row])))?;
    }
    Ok(())
}

/// Writes a mart as CSV to `path` through a temp file and a rename. Money
/// columns have exactly two decimals.
pub fn write_csv(mart: &Mart, path: &Path) -> Result<()> {
    let columns = published_columns(mart).map_err(Error::polars(format!("exporting {}", mart.name)))?;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
    let tmp = tempfile::Builder::new()
        .prefix(".sluice-")
        .suffix(".csv.tmp")
        // The umask decides, as for any file the user writes (tempfile's default is 0600).
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
        .tempfile_in(dir)
        .map_err(|e| Error::io("create a temp file in", dir, e))?;
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
    tmp.persist(path)
        .map_err(|e| Error::io("replace", path, e.error))?;
    Ok(())
}

/// Writes a mart as Parquet (through a temp file and a rename) from its
/// candidate in DuckDB, where decimals are DECIMAL and times TIMESTAMP.
pub fn write_parquet(engine: &crate::engine::DuckDb, mart: &Mart, path: &Path) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
    }
    engine.copy_to(
        &format!("SELECT * FROM marts.{}", sql::ident(&mart.name)),
        path,
        crate::engine::FileFormat::Parquet,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cents_format_exactly() {
        assert_eq!(format_decimal(-5, 3), "-0.005");
        assert_eq!(format_decimal(42, 0), "42");
        assert_eq!(format_cents(1230), "12.30");
        assert_eq!(format_cents(-5), "-0.05");
        assert_eq!(format_cents(0), "0.00");
        assert_eq!(format_cents(123_456_789_012), "1234567890.12");
    }

    #[test]
    fn timestamps_truncate_to_seconds() {
        let t = DateTime::parse_from_rfc3339("2026-11-20T13:05:00.999999Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(iso_seconds(t), "2026-11-20T13:05:00Z");
    }
}
