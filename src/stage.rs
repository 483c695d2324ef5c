//! Staging (silver): each staging model of the pipeline is a DuckDB SQL script
//! over `raw.<source>` that creates `staging.<model>` (typed, clean,
//! deduplicated) and, for the rows it rejects, `staging.<model>_quarantine`
//! with one `_reason` each (the default: `sql/staging/events.sql`). Writes
//! `data/staging/<model>.parquet` and `output/quarantine/<model>.csv`, and
//! counts where every raw row went.

use std::path::Path;

use crate::engine::{DuckDb, FileFormat, Value};
use crate::error::{Error, Result};
use crate::sql;

/// Where every raw row of a model's source went: raw = staged plus
/// quarantined plus duplicates. Summed over models, `raw` is the rows landed
/// (a source read by two models counts once) and the rest are sums.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct StageCounts {
    pub raw: u64,
    /// Per reason: the known reasons first (with no rows too), then any other.
    pub quarantined: Vec<(String, u64)>,
    /// Raw rows neither staged nor quarantined (removed by deduplication).
    pub duplicates: u64,
    pub staged: u64,
}

impl StageCounts {
    pub(crate) fn quarantined_total(&self) -> u64 {
        self.quarantined.iter().map(|(_, n)| n).sum()
    }

    /// The counts of several models as one.
    pub(crate) fn sum<'a>(all: impl IntoIterator<Item = &'a StageCounts>) -> StageCounts {
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
pub(crate) struct Model<'a> {
    pub name: &'a str,
    pub source: &'a str,
    /// The script, and the file it came from (for messages).
    pub sql: &'a str,
    pub file: &'a str,
    /// Reasons counted even when no row has them (metrics at zero).
    pub reasons: &'a [String],
}

/// Runs one model's script, which must create `staging.<model>`.
pub(crate) fn run_script(engine: &DuckDb, model: &Model) -> Result<()> {
    // The schema is there for the script to write to.
    engine
        .execute("CREATE SCHEMA IF NOT EXISTS staging;")
        .map_err(Error::engine("creating the staging schema"))?;
    engine.execute(model.sql).map_err(|source| {
        // Parser, binder and catalog errors are the script's: the user fixes them.
        if source.is_in_the_sql() {
            Error::BadSql {
                file: model.file.to_string(),
                message: source.message,
            }
        } else {
            Error::Engine {
                context: format!("running {}", model.file),
                source,
            }
        }
    })?;
    if !has_table(engine, model.name)? {
        return Err(Error::ModelNotCreated {
            file: model.file.to_string(),
            table: format!("staging.{}", model.name),
        });
    }
    Ok(())
}

fn has_table(engine: &DuckDb, table: &str) -> Result<bool> {
    engine
        .has_table("staging", table)
        .map_err(Error::engine(format!("looking up staging.{table}")))
}

/// Runs one model's SQL and writes its silver layer and quarantine.
pub(crate) fn stage(
    engine: &DuckDb,
    model: &Model,
    staging_dir: &Path,
    quarantine_dir: &Path,
) -> Result<StageCounts> {
    run_script(engine, model)?;
    let quarantine = format!("{}_quarantine", model.name);
    let has_quarantine = has_table(engine, &quarantine)?;

    let raw = count(
        engine,
        &format!("SELECT count(*) FROM raw.{}", sql::ident(model.source)),
    )?;
    let staged = count(
        engine,
        &format!("SELECT count(*) FROM staging.{}", sql::ident(model.name)),
    )?;
    let mut quarantined: Vec<(String, u64)> = model.reasons.iter().map(|r| (r.clone(), 0)).collect();
    if has_quarantine {
        let rows = engine
            .rows(&format!(
                "SELECT coalesce(CAST(_reason AS VARCHAR), 'unknown'), count(*) FROM staging.{} GROUP BY ALL ORDER BY 1",
                sql::ident(&quarantine)
            ))
            .map_err(Error::engine(format!("counting the rows of staging.{quarantine}")))?;
        for row in rows {
            let (Some(Value::Text(reason)), Some(Value::Int(n))) = (row.first(), row.get(1)) else {
                continue;
            };
            let n = (*n).max(0) as u64;
            match quarantined.iter_mut().find(|(r, _)| r == reason) {
                Some(slot) => slot.1 = n,
                None => quarantined.push((reason.clone(), n)),
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
    engine.copy_to(
        &format!("SELECT * FROM staging.{}", sql::ident(model.name)),
        &staging_dir.join(format!("{}.parquet", model.name)),
        FileFormat::Parquet,
    )?;
    if has_quarantine {
        std::fs::create_dir_all(quarantine_dir)
            .map_err(|e| Error::io("create directory", quarantine_dir, e))?;
        let columns = engine
            .describe(&format!("staging.{}", sql::ident(&quarantine)))
            .map_err(Error::engine(format!("describing staging.{quarantine}")))?;
        let in_file_order = ["_source_file", "_line"]
            .iter()
            .all(|c| columns.iter().any(|(name, _)| name == c));
        engine.copy_to(
            &format!(
                "SELECT * FROM staging.{} ORDER BY {}",
                sql::ident(&quarantine),
                // In file order, as a person would look for them.
                if in_file_order {
                    "_source_file, _line"
                } else {
                    "ALL"
                }
            ),
            &quarantine_dir.join(format!("{}.csv", model.name)),
            FileFormat::Csv,
        )?;
    }
    Ok(counts)
}

fn count(engine: &DuckDb, sql: &str) -> Result<u64> {
    engine
        .count(sql)
        .map_err(Error::engine(format!("running `{sql}`")))
}
