//! Staging (silver): DuckDB SQL (tables `staging.events` and
//! `staging.events_quarantine`) casts and normalises the raw text, quarantines
//! bad rows with one reason each and deduplicates the rest
//! (`sql/staging/events.sql`). Writes `data/staging/events.parquet` and
//! `output/quarantine/events.csv`, and counts where every raw row went.

use std::path::Path;

use duckdb::Connection;

use crate::error::{Error, Result};
use crate::ingest::SOURCE;

/// The staging SQL of the default pipeline, compiled into the binary.
pub const EVENTS_SQL: &str = include_str!("../sql/staging/events.sql");

/// Quarantine reasons in the order they are checked (SPEC.md section 2).
pub const REASONS: [&str; 8] = [
    "missing_event_id",
    "missing_event_time",
    "bad_event_time",
    "missing_user_id",
    "bad_user_id",
    "missing_amount",
    "bad_amount",
    "malformed_row",
];

/// Where every raw row went: raw = staged + quarantined + duplicates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StageCounts {
    pub raw: u64,
    /// Per reason, in the order of [`REASONS`]; reasons with no rows included.
    pub quarantined: Vec<(&'static str, u64)>,
    pub duplicates: u64,
    pub staged: u64,
}

impl StageCounts {
    pub fn quarantined_total(&self) -> u64 {
        self.quarantined.iter().map(|(_, n)| n).sum()
    }
}

/// Runs the staging SQL over `raw.events` and writes the silver layer.
pub fn stage(conn: &Connection, staging_dir: &Path, quarantine_dir: &Path) -> Result<StageCounts> {
    conn.execute_batch(EVENTS_SQL)
        .map_err(Error::duckdb("running sql/staging/events.sql"))?;

    let raw = count(conn, "SELECT count(*) FROM raw.events")?;
    let staged = count(conn, "SELECT count(*) FROM staging.events")?;
    let mut quarantined: Vec<(&'static str, u64)> = REASONS.iter().map(|r| (*r, 0)).collect();
    {
        let mut stmt = conn
            .prepare("SELECT _reason, count(*) FROM staging.events_quarantine GROUP BY _reason")
            .map_err(Error::duckdb("counting quarantined rows"))?;
        let rows = stmt
            .query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?)))
            .map_err(Error::duckdb("counting quarantined rows"))?;
        for row in rows {
            let (reason, n) = row.map_err(Error::duckdb("counting quarantined rows"))?;
            if let Some(slot) = quarantined.iter_mut().find(|(r, _)| *r == reason) {
                slot.1 = n as u64;
            }
        }
    }
    let valid = raw - quarantined.iter().map(|(_, n)| n).sum::<u64>();
    let counts = StageCounts {
        raw,
        quarantined,
        duplicates: valid - staged,
        staged,
    };

    std::fs::create_dir_all(staging_dir).map_err(|e| Error::io("create directory", staging_dir, e))?;
    copy_atomically(
        conn,
        "SELECT * FROM staging.events",
        &staging_dir.join(format!("{SOURCE}.parquet")),
        "FORMAT parquet",
    )?;
    std::fs::create_dir_all(quarantine_dir).map_err(|e| Error::io("create directory", quarantine_dir, e))?;
    copy_atomically(
        conn,
        "SELECT * FROM staging.events_quarantine ORDER BY _source_file, _line",
        &quarantine_dir.join(format!("{SOURCE}.csv")),
        "FORMAT csv, HEADER true",
    )?;
    Ok(counts)
}

fn count(conn: &Connection, sql: &str) -> Result<u64> {
    conn.query_row(sql, [], |row| row.get::<_, i64>(0))
        .map(|n| n as u64)
        .map_err(Error::duckdb(format!("running `{sql}`")))
}

/// `COPY (query) TO target` through a temp file in the same directory and a
/// rename, so a reader never sees half a file.
pub fn copy_atomically(conn: &Connection, query: &str, target: &Path, options: &str) -> Result<()> {
    let tmp = target.with_extension(format!(
        "{}.tmp{}",
        target.extension().and_then(|e| e.to_str()).unwrap_or(""),
        std::process::id()
    ));
    let sql = format!("COPY ({query}) TO {} ({options})", crate::sql::path(&tmp));
    conn.execute_batch(&sql)
        .map_err(Error::duckdb(format!("writing `{}`", target.display())))?;
    std::fs::rename(&tmp, target).map_err(|e| Error::io("replace", target, e))
}
