//! Staging (silver): each staging model of the pipeline is a DuckDB SQL script
//! over `raw.<source>` that creates `staging.<model>` (typed, clean,
//! deduplicated) and, for the rows it rejects, `staging.<model>_quarantine`
//! with one `_reason` each (the default: `sql/staging/events.sql`). Writes
//! `data/staging/<model>.parquet` and `output/quarantine/<model>.csv`, and
//! counts where every raw row went.

use std::path::{Path, PathBuf};

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
    /// Rows of the model after this run's rows joined the earlier ones
    /// (`append` and `merge` models).
    pub total: Option<u64>,
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

/// How a run's rows join the model's rows of earlier runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum WriteMode {
    #[default]
    Replace,
    Append,
    Merge,
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
    /// For an `append` or `merge` model: how its rows persist across runs.
    pub keep: Option<Keep<'a>>,
    /// Columns its layer is partitioned by (a `replace` model); none: one file.
    pub partition_by: Vec<&'a str>,
}

/// A model whose rows persist across runs: each run writes a new version
/// of the whole table beside the current one, and the version becomes
/// current only when the run's publish commits (the run record names it).
pub(crate) struct Keep<'a> {
    pub mode: WriteMode,
    pub primary_key: &'a [String],
    pub order_by: Option<&'a str>,
    pub delete_when: Option<&'a str>,
    /// The current version (none: the first run, or a full refresh).
    pub current: Option<PathBuf>,
    /// Where this run's version goes.
    pub next: PathBuf,
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
    let mut counts = StageCounts {
        raw,
        duplicates: raw.saturating_sub(staged + quarantined.iter().map(|(_, n)| n).sum::<u64>()),
        quarantined,
        staged,
        total: None,
    };

    let target = match &model.keep {
        Some(keep) => {
            combine(engine, model, keep)?;
            counts.total = Some(count(
                engine,
                &format!("SELECT count(*) FROM staging.{}", sql::ident(model.name)),
            )?);
            keep.next.clone()
        }
        None => staging_dir.join(format!("{}.parquet", model.name)),
    };
    if let Some(dir) = target.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
    }
    let rows = format!("SELECT * FROM staging.{}", sql::ident(model.name));
    if model.keep.is_none() {
        // What an earlier run wrote when the model was (not) partitioned.
        let other = match model.partition_by.is_empty() {
            true => staging_dir.join(model.name),
            false => target.clone(),
        };
        let _ = std::fs::remove_dir_all(&other).or_else(|_| std::fs::remove_file(&other));
    }
    match model.partition_by.as_slice() {
        [] => engine.copy_to(&rows, &target, FileFormat::Parquet)?,
        columns => engine.copy_partitioned(&rows, &staging_dir.join(model.name), columns)?,
    }
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

/// Replaces `staging.<model>` (this run's rows) with the model's rows across
/// runs: its current version and this run's rows appended, or merged by
/// primary key (the newest version of a record wins, this run's on a tie;
/// a newest version meeting `delete_when` removes the record).
fn combine(engine: &DuckDb, model: &Model, keep: &Keep) -> Result<()> {
    let table = format!("staging.{}", sql::ident(model.name));
    let columns = engine
        .describe(&table)
        .map_err(Error::engine(format!("describing {table}")))?;
    let named: Vec<&str> = keep
        .primary_key
        .iter()
        .map(String::as_str)
        .chain(keep.order_by)
        .collect();
    for column in named {
        if !columns.iter().any(|(c, _)| c == column) {
            let have: Vec<&str> = columns.iter().map(|(c, _)| c.as_str()).collect();
            return Err(Error::BadSql {
                file: model.file.to_string(),
                message: format!(
                    "`{column}` (the model's `primary_key` or `order_by`) is not a column of {table}; its columns: {}",
                    have.join(", ")
                ),
            });
        }
    }
    let earlier = match &keep.current {
        Some(path) if !path.exists() => {
            return Err(Error::KeptModelLost {
                model: model.name.to_string(),
                path: path.clone(),
            });
        }
        Some(path) => format!(
            " UNION ALL BY NAME SELECT *, 0 AS __sluice_new FROM read_parquet({})",
            sql::path(path)
        ),
        None => String::new(),
    };
    let rows = format!("SELECT *, 1 AS __sluice_new FROM {table}{earlier}");
    let combined = match keep.mode {
        WriteMode::Merge => {
            let key: Vec<String> = keep.primary_key.iter().map(|c| sql::ident(c)).collect();
            let newest = keep
                .order_by
                .map(|c| format!("{} DESC NULLS LAST, ", sql::ident(c)))
                .unwrap_or_default();
            format!(
                "SELECT * EXCLUDE (__sluice_new) FROM ({rows}) \
                 QUALIFY row_number() OVER (PARTITION BY {} ORDER BY {newest}__sluice_new DESC) = 1",
                key.join(", ")
            )
        }
        _ => format!("SELECT * EXCLUDE (__sluice_new) FROM ({rows})"),
    };
    // After the newest version is chosen: a delete marker removes the record.
    let combined = match (keep.mode, keep.delete_when) {
        (WriteMode::Merge, Some(condition)) => {
            format!("SELECT * FROM ({combined}) WHERE NOT coalesce(({condition}), false)")
        }
        _ => combined,
    };
    engine
        .execute(&format!(
            "CREATE OR REPLACE TABLE staging.__sluice_combined AS {combined}; \
             DROP TABLE {table}; ALTER TABLE staging.__sluice_combined RENAME TO {};",
            sql::ident(model.name)
        ))
        .map_err(Error::engine(format!(
            "joining {table} with its rows of earlier runs"
        )))
}

/// Removes the version files in `dir` other than `current`: those of runs
/// that did not publish, and those a later run superseded. Best effort: a
/// file that stays is only disk space.
pub(crate) fn remove_old_versions(dir: &Path, current: Option<&Path>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for path in entries.flatten().map(|e| e.path()) {
        let old = path.extension().is_some_and(|e| e == "parquet") && Some(path.as_path()) != current;
        if old && let Err(e) = std::fs::remove_file(&path) {
            tracing::warn!("could not remove the old version `{}`: {e}", path.display());
        }
    }
}

fn count(engine: &DuckDb, sql: &str) -> Result<u64> {
    engine
        .count(sql)
        .map_err(Error::engine(format!("running `{sql}`")))
}
