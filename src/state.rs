//! Run state: the `_sluice_*` tables of `agg_result.db` (runs, their inputs,
//! check results, the metrics history, exports), their forward migrations,
//! and the exclusive lock a run holds on the database. The marts that the
//! SQLite sink publishes live in the same file and are written in the same
//! transaction as the run's record ([`RunState::commit_run`]).
//!
//! The database may be a single-file bind mount, which cannot be renamed
//! over, so everything happens inside SQLite transactions with the rollback
//! journal.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{Connection, params, types::Value};

use crate::checks::engine::{History, Outcome};
use crate::error::{Error, Result};
use crate::format::iso_seconds;
use crate::ingest::{Changes, Cursor, InputFile};
use crate::sql;
use crate::stage::StageCounts;

/// Version of the `_sluice_*` tables (`PRAGMA user_version`).
pub(crate) const SCHEMA_VERSION: i64 = 7;

/// Forward migrations: entry `i` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: [&str; 7] = [
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
    // One row per run and export: a new sink kind needs no new column.
    r#"
CREATE TABLE _sluice_run_exports (
    run_id TEXT NOT NULL REFERENCES _sluice_runs(run_id),
    mart TEXT NOT NULL,
    sink TEXT NOT NULL,
    target TEXT NOT NULL,
    rows INTEGER NOT NULL,
    published INTEGER NOT NULL,
    PRIMARY KEY (run_id, sink, target)
);
"#,
    // Where a file export waits for its rename (and its digest), so that the
    // next run can finish a publish that was cut off after its commit; the
    // scale of each money column of the SQLite marts, for `sluice check`;
    // where each model's rows went (a total over models sharing a source
    // means little).
    r#"
ALTER TABLE _sluice_run_exports ADD COLUMN staged TEXT;
ALTER TABLE _sluice_run_exports ADD COLUMN sha256 TEXT;
CREATE TABLE _sluice_run_models (
    run_id TEXT NOT NULL REFERENCES _sluice_runs(run_id),
    model TEXT NOT NULL,
    source TEXT NOT NULL,
    rows_raw INTEGER NOT NULL,
    rows_quarantined INTEGER NOT NULL,
    rows_duplicates INTEGER NOT NULL,
    rows_staged INTEGER NOT NULL,
    quarantined_by_reason TEXT NOT NULL,
    PRIMARY KEY (run_id, model)
);
CREATE TABLE _sluice_money_columns (
    table_name TEXT NOT NULL,
    column_name TEXT NOT NULL,
    scale INTEGER NOT NULL,
    PRIMARY KEY (table_name, column_name)
);
"#,
    // The cursor of each incremental source, before and after the run, and
    // the version file of each model kept across runs: the last published
    // run's are where the next run goes on from. What each source's schema
    // contract did.
    r#"
ALTER TABLE _sluice_run_inputs ADD COLUMN etag TEXT;
ALTER TABLE _sluice_run_models ADD COLUMN rows_total INTEGER;
ALTER TABLE _sluice_run_models ADD COLUMN version_file TEXT;
CREATE TABLE _sluice_run_schema_changes (
    run_id TEXT NOT NULL REFERENCES _sluice_runs(run_id),
    source TEXT NOT NULL,
    change TEXT NOT NULL,
    action TEXT NOT NULL,
    columns TEXT NOT NULL,
    rows INTEGER NOT NULL
);
CREATE TABLE _sluice_run_cursors (
    run_id TEXT NOT NULL REFERENCES _sluice_runs(run_id),
    source TEXT NOT NULL,
    cursor_before TEXT,
    cursor_after TEXT,
    records_older INTEGER NOT NULL,
    PRIMARY KEY (run_id, source)
);
"#,
    // The version a Delta export made (its pending commit waits in `staged`).
    r#"
ALTER TABLE _sluice_run_exports ADD COLUMN table_version INTEGER;
"#,
];

/// The run state of a database, opened and exclusively locked for the whole run.
pub(crate) struct RunState {
    // Field order matters: the connection closes before the lock is released,
    // and closing the lock's descriptor last keeps SQLite's own locks intact.
    conn: Connection,
    path: PathBuf,
    _lock: File,
}

impl RunState {
    /// Opens (or creates) the database and takes the run lock. An empty file is
    /// a new database; a directory is the mistake Docker makes for a missing
    /// single-file mount.
    pub(crate) fn open(path: &Path) -> Result<RunState> {
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
        Ok(RunState {
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

    /// Records `run` and its `exports` in one transaction, into which
    /// `tables` first writes the marts of the SQLite sink: the marts and the
    /// record become visible together, or neither does.
    pub(crate) fn commit_run(
        &mut self,
        run: &RunRecord,
        published: bool,
        exports: &[ExportRecord],
        tables: &dyn Fn(&rusqlite::Transaction<'_>) -> rusqlite::Result<()>,
    ) -> Result<()> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction()
            .map_err(|e| sqlite(&path, "starting the publish", e))?;
        Self::migrate(&tx, &path)?;
        tables(&tx).map_err(|e| sqlite(&path, "replacing the marts", e))?;
        insert_run(&tx, run, published, exports).map_err(|e| sqlite(&path, "recording the run", e))?;
        if published {
            crate::fault::point("commit").map_err(|e| Error::io("commit the publish to", &path, e))?;
        }
        tx.commit()
            .map_err(|e| sqlite(&path, "committing the publish", e))
    }

    /// Each check's observed values before `as_of`, newest first, from runs
    /// whose gate passed (a failed run is no baseline).
    pub(crate) fn history(&self, as_of: DateTime<Utc>) -> Result<History> {
        let err = |e| sqlite(&self.path, "reading the metrics history", e);
        let version = self.version().map_err(err)?;
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

    /// The cursor of `source` that the last published run reached.
    pub(crate) fn cursor(&self, source: &str) -> Result<Option<String>> {
        let found = self.last_published_row(
            "reading the source cursors",
            "SELECT c.cursor_after FROM _sluice_run_cursors c JOIN _sluice_runs r ON r.run_id = c.run_id \
             WHERE c.source = ?1 AND r.published_db = 1 ORDER BY r.finished_at DESC, r.rowid DESC LIMIT 1",
            source,
            |r| r.get::<_, Option<String>>(0),
        )?;
        Ok(found.flatten())
    }

    /// The row `sql` (of schema 6, one `?1`) finds for `key` in the last
    /// published run that has one, as `row` reads it.
    fn last_published_row<T>(
        &self,
        doing: &'static str,
        sql: &str,
        key: &str,
        row: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Option<T>> {
        let err = |e| sqlite(&self.path, doing, e);
        if self.version().map_err(err)? < 6 {
            return Ok(None);
        }
        match self.conn.query_row(sql, [key], row) {
            Ok(value) => Ok(Some(value)),
            Err(rusqlite::Error::QueryReturnedNoRows) => Ok(None),
            Err(e) => Err(err(e)),
        }
    }

    /// Every input file a published run read, with its SHA-256 as the last
    /// such run found it.
    pub(crate) fn published_inputs(&self) -> Result<std::collections::HashMap<String, String>> {
        let err = |e| sqlite(&self.path, "reading the inputs of earlier runs", e);
        let mut read = std::collections::HashMap::new();
        if self.version().map_err(err)? == 0 {
            return Ok(read);
        }
        let mut stmt = self
            .conn
            .prepare(
                "SELECT i.path, i.sha256 FROM _sluice_run_inputs i JOIN _sluice_runs r ON r.run_id = i.run_id \
                 WHERE r.published_db = 1 ORDER BY r.finished_at, r.rowid",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(err)?;
        for row in rows {
            let (path, sha256) = row.map_err(err)?;
            read.insert(path, sha256);
        }
        Ok(read)
    }

    /// The run that wrote the version of kept model `model` that the last
    /// published run left, and the version file (relative to the lake).
    pub(crate) fn model_version(&self, model: &str) -> Result<Option<(String, String)>> {
        self.last_published_row(
            "reading the model versions",
            "SELECT m.run_id, m.version_file FROM _sluice_run_models m JOIN _sluice_runs r ON r.run_id = m.run_id \
             WHERE m.model = ?1 AND r.published_db = 1 AND m.version_file IS NOT NULL \
             ORDER BY r.finished_at DESC, r.rowid DESC LIMIT 1",
            model,
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }

    /// The newest run whose marts were published.
    pub(crate) fn last_published(&self) -> Result<Option<LastRun>> {
        let version = self
            .version()
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
    pub(crate) fn published_tables(&self) -> Result<Vec<PublishedTable>> {
        let err = |e| sqlite(&self.path, "reading the published marts", e);
        let mut money: Vec<(String, String, u32)> = Vec::new();
        if self.version().map_err(err)? >= 5 {
            let mut stmt = self
                .conn
                .prepare("SELECT table_name, column_name, scale FROM _sluice_money_columns")
                .map_err(err)?;
            money = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .map_err(err)?
                .collect::<rusqlite::Result<_>>()
                .map_err(err)?;
        }
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
            let money = money
                .iter()
                .filter(|(t, ..)| *t == name)
                .map(|(_, c, s)| (c.clone(), *s))
                .collect();
            tables.push(PublishedTable {
                name,
                columns,
                rows,
                money,
            });
        }
        Ok(tables)
    }

    /// The schema version of the database as it is (0 when new).
    fn version(&self) -> rusqlite::Result<i64> {
        self.conn.pragma_query_value(None, "user_version", |r| r.get(0))
    }

    /// Notes that the file exports of `run_id` were renamed into place.
    pub(crate) fn mark_files_published(&self, run_id: &str) -> Result<()> {
        crate::fault::point("record").map_err(|e| Error::io("record the publish in", &self.path, e))?;
        self.conn
            .execute_batch(&format!(
                "UPDATE _sluice_run_exports SET published = 1, staged = NULL WHERE run_id = {0} AND sink != 'sqlite'; \
                 UPDATE _sluice_runs SET published_csv = 1 WHERE run_id = {0};",
                sql::string(run_id)
            ))
            .map_err(|e| sqlite(&self.path, "recording the file publish", e))
    }

    /// File exports committed but not renamed into place, oldest run first.
    pub(crate) fn pending_files(&self) -> Result<Vec<PendingFile>> {
        let err = |e| sqlite(&self.path, "reading the run's exports", e);
        // Before version 5 no staged file was recorded.
        if self.version().map_err(err)? < 5 {
            return Ok(Vec::new());
        }
        let mut stmt = self
            .conn
            .prepare(
                "SELECT e.run_id, e.target, e.staged, e.sha256 FROM _sluice_run_exports e \
                 JOIN _sluice_runs r USING (run_id) \
                 WHERE e.published = 0 AND e.staged IS NOT NULL AND e.sha256 IS NOT NULL \
                 ORDER BY r.finished_at, e.target",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map([], |r| {
                Ok(PendingFile {
                    run_id: r.get(0)?,
                    target: r.get(1)?,
                    staged: r.get(2)?,
                    sha256: r.get(3)?,
                })
            })
            .map_err(err)?;
        rows.collect::<rusqlite::Result<_>>().map_err(err)
    }

    /// Delta commits recorded with a run but not made, oldest run first.
    pub(crate) fn pending_tables(&self) -> Result<Vec<PendingTable>> {
        let err = |e| sqlite(&self.path, "reading the run's exports", e);
        if self.version().map_err(err)? < 7 {
            return Ok(Vec::new());
        }
        let mut stmt = self
            .conn
            .prepare(
                "SELECT e.run_id, e.target, e.staged FROM _sluice_run_exports e \
                 JOIN _sluice_runs r USING (run_id) \
                 WHERE e.published = 0 AND e.sink = 'delta' AND e.staged IS NOT NULL \
                 ORDER BY r.finished_at, e.target",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map([], |r| {
                Ok(PendingTable {
                    run_id: r.get(0)?,
                    target: r.get(1)?,
                    commit: r.get(2)?,
                })
            })
            .map_err(err)?;
        rows.collect::<rusqlite::Result<_>>().map_err(err)
    }

    /// Records what became of a pending export: in place (a Delta table at
    /// `version`), or not (its target keeps an earlier run's rows). The
    /// run's `published_csv` says whether all its exports are in place.
    pub(crate) fn settle_export(
        &self,
        run_id: &str,
        target: &str,
        in_place: bool,
        version: Option<u64>,
    ) -> Result<()> {
        self.conn
            .execute(
                "UPDATE _sluice_run_exports SET published = ?3, staged = NULL, \
                 table_version = coalesce(?4, table_version) \
                 WHERE run_id = ?1 AND target = ?2 AND sink != 'sqlite'",
                params![run_id, target, in_place, version.map(|v| v as i64)],
            )
            .and_then(|_| {
                self.conn.execute(
                    "UPDATE _sluice_runs SET published_csv = NOT EXISTS \
                     (SELECT 1 FROM _sluice_run_exports WHERE run_id = ?1 AND published = 0) \
                     WHERE run_id = ?1",
                    [run_id],
                )
            })
            .map(|_| ())
            .map_err(|e| sqlite(&self.path, "recording the finished publish", e))
    }
}

/// Fails at once on a database path that is a directory, a FIFO or a
/// device, before any work: SQLite needs a regular file (and a FIFO would
/// block).
pub(crate) fn check_path(path: &Path) -> Result<()> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Err(Error::DbIsDirectory {
            path: path.to_path_buf(),
        }),
        Ok(m) if !m.is_file() => Err(Error::DbNotAFile {
            path: path.to_path_buf(),
        }),
        _ => Ok(()),
    }
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
pub(crate) struct LastRun {
    pub run_id: String,
    pub as_of: DateTime<Utc>,
    pub lookback_days: u32,
}

/// A published mart as SQLite holds it.
#[derive(Debug, Clone)]
pub(crate) struct PublishedTable {
    pub name: String,
    /// Name and declared type of each column.
    pub columns: Vec<(String, String)>,
    pub rows: Vec<Vec<Value>>,
    /// Money columns and their scale: each has its exact minor units in
    /// `<column>_minor` beside it.
    pub money: Vec<(String, u32)>,
}

/// The provenance of one run, as stored in `_sluice_runs`.
#[derive(Debug, Clone)]
pub(crate) struct RunRecord {
    pub run_id: String,
    pub pipeline: String,
    pub as_of: DateTime<Utc>,
    pub lookback_days: u32,
    pub started_at: DateTime<Utc>,
    pub status: &'static str,
    pub counts: StageCounts,
    pub models: Vec<ModelRecord>,
    pub inputs: Vec<InputFile>,
    /// Per incremental source: its name and where its cursor went.
    pub cursors: Vec<(String, Cursor)>,
    /// Per source: what its schema contract did.
    pub schema_changes: Vec<(String, Changes)>,
    pub git_sha: Option<String>,
    pub config_hash: String,
    pub checks: Vec<Outcome>,
}

/// One staging model of a run, as `_sluice_run_models` holds it.
#[derive(Debug, Clone)]
pub(crate) struct ModelRecord {
    pub name: String,
    pub source: String,
    pub counts: StageCounts,
    /// The version file of a model kept across runs, relative to the data
    /// directory: current once the run is published.
    pub version: Option<String>,
}

/// One export of a run, as `_sluice_run_exports` holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExportRecord {
    pub mart: String,
    /// The sink kind: `sqlite`, `csv`, `parquet`, `delta`.
    pub sink: &'static str,
    /// A table name, a path or a Delta table's location.
    pub target: String,
    pub rows: u64,
    /// Visible to readers (a file still waiting for its rename is not).
    pub published: bool,
    /// The name of the temp file beside the target where a file export
    /// waits for its rename (and its SHA-256); for a Delta table, the
    /// commit it waits for (JSON).
    pub staged: Option<String>,
    pub sha256: Option<String>,
}

/// A Delta commit that a run recorded but did not make.
#[derive(Debug, Clone)]
pub(crate) struct PendingTable {
    pub run_id: String,
    /// The table's location as the run named it.
    pub target: String,
    /// The commit, as `publish::delta` recorded it.
    pub commit: String,
}

/// A file export that a run committed but did not rename into place.
#[derive(Debug, Clone)]
pub(crate) struct PendingFile {
    pub run_id: String,
    /// The target's path as the run named it.
    pub target: String,
    /// The temp file's name, in the target's directory.
    pub staged: String,
    pub sha256: String,
}

fn insert_run(
    tx: &rusqlite::Transaction<'_>,
    run: &RunRecord,
    published: bool,
    exports: &[ExportRecord],
) -> rusqlite::Result<()> {
    let by_reason = |counts: &StageCounts| {
        serde_json::Value::Object(
            counts
                .quarantined
                .iter()
                .map(|(r, n)| (r.to_string(), serde_json::Value::from(*n)))
                .collect(),
        )
        .to_string()
    };
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
            by_reason(&run.counts),
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
    let mut stmt = tx.prepare(
        "INSERT INTO _sluice_run_exports (run_id, mart, sink, target, rows, published, staged, sha256) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    for e in exports {
        stmt.execute(params![
            run.run_id,
            e.mart,
            e.sink,
            e.target,
            e.rows as i64,
            e.published,
            e.staged,
            e.sha256,
        ])?;
    }
    let mut stmt = tx.prepare(
        "INSERT INTO _sluice_run_models (run_id, model, source, rows_raw, rows_quarantined, rows_duplicates, \
         rows_staged, quarantined_by_reason, rows_total, version_file) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?;
    for m in &run.models {
        let c = &m.counts;
        stmt.execute(params![
            run.run_id,
            m.name,
            m.source,
            c.raw as i64,
            c.quarantined_total() as i64,
            c.duplicates as i64,
            c.staged as i64,
            by_reason(c),
            c.total.map(|n| n as i64),
            m.version,
        ])?;
    }
    let mut stmt = tx.prepare("INSERT INTO _sluice_run_schema_changes VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?;
    for (source, changes) in &run.schema_changes {
        for ((change, action, columns), rows) in &changes.0 {
            stmt.execute(params![
                run.run_id,
                source,
                change.as_str(),
                action.as_str(),
                columns,
                *rows as i64
            ])?;
        }
    }
    let mut stmt = tx.prepare("INSERT INTO _sluice_run_cursors VALUES (?1, ?2, ?3, ?4, ?5)")?;
    for (source, c) in &run.cursors {
        stmt.execute(params![
            run.run_id,
            source,
            c.before.map(|v| v.text()),
            c.after.map(|v| v.text()),
            c.older as i64,
        ])?;
    }
    let mut stmt = tx.prepare(
        "INSERT INTO _sluice_run_inputs (run_id, path, size_bytes, sha256, rows, etag) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for input in &run.inputs {
        stmt.execute(params![
            run.run_id,
            input.path.display().to_string(),
            input.size as i64,
            input.sha256,
            input.rows as i64,
            input.etag,
        ])?;
    }
    Ok(())
}
