//! `sluice check`: re-audits what is already published, without running the
//! pipeline: the marts from `agg_result.db`, and the raw and staging layers
//! from the lake (`data/`) when it is still there. "Now" is the last published
//! run's `as_of` unless `--as-of` says otherwise, so a re-audit reproduces.

use std::path::Path;

use chrono::{DateTime, Utc};

use crate::audit::{self, Gate};
use crate::checks::engine::{self, Context};
use crate::config::Pipeline;
use crate::engine::{DuckDb, Value};
use crate::error::{Error, Result};
use crate::lake::{Lake, Location};
use crate::publish::{MINOR_SUFFIX, Sink, delta};
use crate::settings::CheckSettings;
use crate::sql;
use crate::stage::WriteMode;
use crate::state::{PublishedTable, RunState};

/// What a re-audit found.
pub(crate) struct Recheck {
    pub gate: Gate,
    pub run_id: String,
    pub as_of: DateTime<Utc>,
    /// Checks left out because their tables are not available.
    pub skipped: Vec<String>,
    /// Marts read from Delta tables: the mart, the table and its version.
    pub from_delta: Vec<(String, String, u64)>,
}

pub(crate) fn run(settings: &CheckSettings, pipeline: &Pipeline) -> Result<Recheck> {
    let all = audit::selected_checks(&settings.checks, pipeline)?;
    if !settings.places.db.exists() {
        return Err(Error::NothingPublished {
            path: settings.places.db.clone(),
        });
    }
    let db = RunState::open(&settings.places.db)?;
    let last = db.last_published()?.ok_or_else(|| Error::NothingPublished {
        path: settings.places.db.clone(),
    })?;
    let as_of = settings.as_of.unwrap_or(last.as_of);
    let lookback = settings.lookback_days.unwrap_or(last.lookback_days);

    let engine = DuckDb::open(None, None).map_err(Error::engine("starting DuckDB"))?;
    engine
        .execute("CREATE SCHEMA raw; CREATE SCHEMA staging; CREATE SCHEMA marts;")
        .map_err(Error::engine("preparing the re-audit"))?;
    for table in db.published_tables()? {
        load_mart(&engine, &table)?;
    }
    let scratch =
        tempfile::tempdir().map_err(|e| Error::io("create a temp directory in", std::env::temp_dir(), e))?;
    let mut from_delta = Vec::new();
    if settings.delta {
        for export in crate::pipeline::exports(pipeline, &settings.places.output_dir) {
            let (Sink::Delta(table), Some(mart)) = (export.sink, pipeline.marts.get(export.mart)) else {
                continue;
            };
            if let Some(version) = delta::load(&engine, &mart.name, &table, scratch.path())? {
                from_delta.push((mart.name.clone(), table.location, version));
            }
        }
    }
    let layer = match &settings.places.lake {
        Location::Local(dir) => dir.clone(),
        // In object storage: the layer the last published run wrote.
        remote @ Location::Remote(url) => {
            let layer = scratch.path().join("lake");
            if !Lake::open(remote)?.fetch_layer(&last.run_id, &layer)? {
                tracing::warn!(
                    "the lake `{url}` has no layer of run {}: its raw and staging checks are skipped",
                    last.run_id
                );
            }
            layer
        }
    };
    load_lake(
        &engine,
        pipeline,
        &layer,
        &settings.places.output_dir,
        &last.run_id,
    )?;
    // The checks' SQL may touch only the lake and the outputs.
    engine
        .restrict_files(&[&layer, &settings.places.output_dir])
        .map_err(Error::engine("restricting file access"))?;

    let available = engine.tables().map_err(Error::engine("listing tables"))?;
    let (runnable, skipped): (Vec<_>, Vec<_>) = all.into_iter().partition(|c| {
        available.contains(&c.table)
            && c.rule
                .measure()
                .other_tables()
                .iter()
                .all(|(table, _)| available.iter().any(|a| a == table))
    });
    let ctx = Context {
        engine: &engine,
        as_of,
        window_start: as_of - chrono::Duration::days(i64::from(lookback)),
        failed_rows_dir: &settings.places.output_dir.join("failed_rows"),
        history: &db.history(as_of)?,
        kept: None,
    };
    Ok(Recheck {
        gate: Gate {
            audit: engine::run(&ctx, &runnable),
            fail_on_warn: settings.fail_on_warn,
        },
        run_id: last.run_id,
        as_of,
        skipped: skipped
            .into_iter()
            .map(|c| format!("{} ({})", c.name, c.table))
            .collect(),
        from_delta,
    })
}

/// A published mart as `marts.<name>`: SQLite's INTEGER, REAL and TEXT, with
/// text that is all ISO timestamps or days turned back into TIMESTAMP or DATE,
/// and money as the exact DECIMAL its `_minor` column holds (as the run's
/// checks saw it).
fn load_mart(engine: &DuckDb, table: &PublishedTable) -> Result<()> {
    let context = || format!("loading the published `{}`", table.name);
    let defs: Vec<String> = table
        .columns
        .iter()
        .map(|(name, ty)| {
            let ty = match ty.to_ascii_uppercase().as_str() {
                "INTEGER" => "BIGINT",
                "REAL" => "DOUBLE",
                _ => "VARCHAR",
            };
            format!("{} {ty}", sql::ident(name))
        })
        .collect();
    let tmp = format!("_published_{}", table.name);
    engine
        .execute(&format!(
            "CREATE OR REPLACE TEMP TABLE {} ({});",
            sql::ident(&tmp),
            defs.join(", ")
        ))
        .map_err(Error::engine(context()))?;
    let rows: Vec<Vec<Value>> = table
        .rows
        .iter()
        .map(|row| {
            row.iter()
                .map(|v| match v {
                    rusqlite::types::Value::Null => Value::Null,
                    rusqlite::types::Value::Integer(i) => Value::Int(*i),
                    rusqlite::types::Value::Real(f) => Value::Float(*f),
                    rusqlite::types::Value::Text(t) => Value::Text(t.clone()),
                    rusqlite::types::Value::Blob(b) => Value::Blob(b.clone()),
                })
                .collect()
        })
        .collect();
    engine
        .append_rows(None, &tmp, &rows)
        .map_err(Error::engine(context()))?;
    let mut select = Vec::new();
    let minor = |name: &str| format!("{name}{MINOR_SUFFIX}");
    let has = |column: &str| table.columns.iter().any(|(c, _)| c == column);
    for (name, ty) in &table.columns {
        let col = sql::ident(name);
        if let Some((_, scale)) = table.money.iter().find(|(m, _)| m == name && has(&minor(m))) {
            select.push(format!(
                "{} AS {col}",
                sql::minor_to_decimal(&sql::ident(&minor(name)), *scale)
            ));
            continue;
        }
        if table.money.iter().any(|(m, _)| minor(m) == *name) {
            continue;
        }
        if !ty.eq_ignore_ascii_case("TEXT") {
            select.push(col);
            continue;
        }
        let shapes = engine
            .doubles(
                &format!(
                    "SELECT CAST(coalesce(bool_and(regexp_full_match({col}, '[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}T[0-9]{{2}}:[0-9]{{2}}:[0-9]{{2}}Z')), false) AS DOUBLE), \
                            CAST(coalesce(bool_and(regexp_full_match({col}, '[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}')), false) AS DOUBLE) FROM {}",
                    sql::ident(&tmp)
                ),
                2,
            )
            .map_err(Error::engine(context()))?;
        let all = |i: usize| shapes.get(i).copied().flatten() == Some(1.0);
        select.push(match (all(0), all(1)) {
            (true, _) => format!("CAST(replace({col}, 'Z', '') AS TIMESTAMP) AS {col}"),
            (_, true) => format!("CAST({col} AS DATE) AS {col}"),
            _ => col,
        });
    }
    engine
        .execute(&format!(
            "CREATE TABLE marts.{} AS SELECT {} FROM {}; DROP TABLE {};",
            sql::ident(&table.name),
            select.join(", "),
            sql::ident(&tmp),
            sql::ident(&tmp)
        ))
        .map_err(Error::engine(context()))
}

/// The raw and staging layers from the lake and the quarantine files, where
/// present; a kept model from the version run `run_id` published.
fn load_lake(
    engine: &DuckDb,
    pipeline: &Pipeline,
    data_dir: &Path,
    output_dir: &Path,
    run_id: &str,
) -> Result<()> {
    let mut sources = Vec::new();
    for source in &pipeline.spec.sources {
        let name = &source.name;
        let path = data_dir.join("raw").join(name).join(format!("{name}.parquet"));
        sources.push(("raw", name.clone(), path, "read_parquet"));
    }
    for model in &pipeline.spec.staging {
        let name = &model.name;
        let path = match model.write {
            WriteMode::Replace if !model.partition_by.is_empty() => data_dir.join("staging").join(name),
            WriteMode::Replace => data_dir.join("staging").join(format!("{name}.parquet")),
            _ => data_dir
                .join("staging")
                .join(name)
                .join(format!("{run_id}.parquet")),
        };
        sources.push(("staging", name.clone(), path, "read_parquet"));
        let path = output_dir.join("quarantine").join(format!("{name}.csv"));
        sources.push(("staging", format!("{name}_quarantine"), path, "read_csv"));
    }
    for (schema, name, path, reader) in sources {
        // A partitioned layer is a directory of files.
        let files = match path.is_dir() {
            true => path.join("**").join("*.parquet"),
            false if path.is_file() => path.clone(),
            false => continue,
        };
        let options = match reader {
            "read_csv" => ", header = true, all_varchar = true",
            // Each file of a partitioned layer has every column.
            _ => ", hive_partitioning = false",
        };
        engine
            .execute(&format!(
                "CREATE TABLE {schema}.{} AS SELECT * FROM {reader}({}{options});",
                sql::ident(&name),
                sql::path(&files)
            ))
            .map_err(Error::engine(format!("loading `{}`", path.display())))?;
    }
    Ok(())
}
