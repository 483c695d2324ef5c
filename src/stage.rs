//! Staging (silver): each staging model of the pipeline is a DuckDB SQL script
//! over `raw.<source>` that creates `staging.<model>` (typed, clean,
//! deduplicated) and, for the rows it rejects, `staging.<model>_quarantine`
//! with one `_reason` each (the default: `sql/staging/events.sql`). Writes
//! `data/staging/<model>.parquet` and `output/quarantine/<model>.csv`, and
//! counts where every raw row went.

use std::path::Path;

use duckdb::Connection;

use crate::error::{Error, Result};
use crate::sql;

/// Where every raw row went: raw = staged + quarantined + duplicates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StageCounts {
    pub raw: u64,
    /// Per reason: the known reasons first (with no rows too), then any other.
    pub quarantined: Vec<(String, u64)>,
    /// Raw rows neither staged nor quarantined (removed by deduplication).
    pub duplicates: u64,
    pub staged: u64,
}

impl StageCounts {
    pub fn quarantined_total(&self) -> u64 {
        self.quarantined.iter().map(|(_, n)| n).sum()
    }

    /// The counts of several models as one.
    pub fn sum<'a>(all: impl IntoIterator<Item = &'a StageCounts>) -> StageCounts {
        let mut total = StageCounts::default();
        for c in all {
            total.raw += c.raw;
            total.duplicates += c.duplicates;
            total.staged += c.staged;
            for (reason, n) in &c.quarantined {
                match total.quarantined.iter_mut().find(|(r, _)| r == reason) {
                    Some(slot) => slot.1 += n,
                    None => total.quarantined.push((reason.clone(), *n)),
                }
            }
        }
        total
    }
}

/// One staging model to run.
pub struct Model<'a> {
    pub name: &'a str,
    pub source: &'a str,
    /// The script, and the file it came from (for messages).
    pub sql: &'a str,
    pub file: &'a str,
    /// Reasons counted even when no row has them (metrics at zero).
    pub reasons: &'a [String],
}

/// Runs one model's SQL and writes its silver layer and quarantine.
pub fn stage(
    conn: &Connection,
    model: &Model,
    staging_dir: &Path,
    quarantine_dir: &Path,
) -> Result<StageCounts> {
    conn.execute_batch(model.sql).map_err(|source| {
        // Parser, binder and catalog errors are the script's: the user fixes them.
        let message = source.to_string();
        if ["Parser Error", "Binder Error", "Catalog Error"]
            .iter()
            .any(|kind| message.contains(kind))
        {
            Error::BadSql {
                file: model.file.to_string(),
                message,
            }
        } else {
            Error::DuckDb {
                context: format!("running {}", model.file),
                source,
            }
        }
    })?;
    let exists = |table: &str| -> Result<bool> {
        count(
            conn,
            &format!(
                "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'staging' AND table_name = {}",
                sql::string(table)
            ),
        )
        .map(|n| n > 0)
    };
    if !exists(model.name)? {
        return Err(Error::ModelNotCreated {
            file: model.file.to_string(),
            table: format!("staging.{}", model.name),
        });
    }
    let quarantine = format!("{}_quarantine", model.name);
    let has_quarantine = exists(&quarantine)?;

    let raw = count(
        conn,
        &format!("SELECT count(*) FROM raw.{}", sql::ident(model.source)),
    )?;
    let staged = count(
        conn,
        &format!("SELECT count(*) FROM staging.{}", sql::ident(model.name)),
    )?;
    let mut quarantined: Vec<(String, u64)> = model.reasons.iter().map(|r| (r.clone(), 0)).collect();
    if has_quarantine {
        let context = format!("counting the rows of staging.{quarantine}");
        let mut stmt = conn
            .prepare(&format!(
                "SELECT coalesce(CAST(_reason AS VARCHAR), 'unknown'), count(*) FROM staging.{} GROUP BY ALL ORDER BY 1",
                sql::ident(&quarantine)
            ))
            .map_err(Error::duckdb(context.clone()))?;
        let rows = stmt
            .query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?)))
            .and_then(|rows| rows.collect::<std::result::Result<Vec<_>, _>>())
            .map_err(Error::duckdb(context))?;
        for (reason, n) in rows {
            match quarantined.iter_mut().find(|(r, _)| *r == reason) {
                Some(slot) => slot.1 = n as u64,
                None => quarantined.push((reason, n as u64)),
            }
        }
    }
    let counts = StageCounts {
        raw,
        duplicates: raw.saturating_sub(staged + quarantined.iter().map(|(_, n)| n).sum::<u64>()),
        quarantined,
        staged,
    };

    std::fs::create_dir_all(staging_dir).map_err(|e| Error::io("create directory", staging_dir, e))?;
    copy_atomically(
        conn,
        &format!("SELECT * FROM staging.{}", sql::ident(model.name)),
        &staging_dir.join(format!("{}.parquet", model.name)),
        "FORMAT parquet",
    )?;
    if has_quarantine {
        std::fs::create_dir_all(quarantine_dir)
            .map_err(|e| Error::io("create directory", quarantine_dir, e))?;
        copy_atomically(
            conn,
            &format!(
                "SELECT * FROM staging.{} ORDER BY {}",
                sql::ident(&quarantine),
                if count(
                    conn,
                    &format!(
                        "SELECT count(*) FROM duckdb_columns() WHERE schema_name = 'staging' AND table_name = {} \
                     AND column_name IN ('_source_file', '_line')",
                        sql::string(&quarantine)
                    )
                )? == 2
                {
                    // In file order, as a person would look for them.
                    "_source_file, _line"
                } else {
                    "ALL"
                }
            ),
            &quarantine_dir.join(format!("{}.csv", model.name)),
            "FORMAT csv, HEADER true",
        )?;
    }
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
