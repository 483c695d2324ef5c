//! DuckDB in process: one in-memory database per run, bounded by a memory
//! limit and spilling to a directory of the lake.

use std::path::Path;

use duckdb::Connection;
use duckdb::types::Value as DuckValue;

pub(crate) use duckdb::arrow;

use super::{Columns, EngineError, FileFormat, Value};
use crate::error::{Error, Result};
use crate::sql;

/// The DuckDB engine of one run.
pub(crate) struct DuckDb {
    conn: Connection,
}

fn failed(e: duckdb::Error) -> EngineError {
    EngineError::new(e.to_string())
}

impl DuckDb {
    /// An in-memory database. With `memory_limit` (`1500MB`), DuckDB spills
    /// to `spill_dir` beyond it instead of failing.
    pub(crate) fn open(memory_limit: Option<&str>, spill_dir: Option<&Path>) -> Result<DuckDb, EngineError> {
        let conn = Connection::open_in_memory().map_err(failed)?;
        let engine = DuckDb { conn };
        let mut settings = vec!["SET preserve_insertion_order = false;".to_string()];
        if let Some(dir) = spill_dir {
            settings.push(format!("SET temp_directory = {};", sql::path(dir)));
        }
        if let Some(limit) = memory_limit {
            settings.push(format!("SET memory_limit = {};", sql::string(limit)));
        }
        engine.execute(&settings.join(" "))?;
        Ok(engine)
    }

    /// Runs one or more statements.
    pub(crate) fn execute(&self, sql: &str) -> Result<(), EngineError> {
        self.conn.execute_batch(sql).map_err(failed)
    }

    /// Runs one statement and returns how many rows it changed.
    pub(crate) fn execute_counting(&self, sql: &str) -> Result<u64, EngineError> {
        self.conn.execute(sql, []).map(|n| n as u64).map_err(failed)
    }

    /// The first column of the first row, as a count.
    pub(crate) fn count(&self, sql: &str) -> Result<u64, EngineError> {
        self.conn
            .query_row(sql, [], |row| row.get::<_, i64>(0))
            .map(|n| n.max(0) as u64)
            .map_err(failed)
    }

    /// The first `n` columns of the first row, as numbers (`NULL` is `None`).
    /// Cast each to a type: duckdb-rs panics on a column of Arrow type
    /// `Null` (an uncast `SELECT NULL`), and every query here casts.
    pub(crate) fn doubles(&self, sql: &str, n: usize) -> Result<Vec<Option<f64>>, EngineError> {
        self.conn
            .query_row(sql, [], |row| {
                (0..n).map(|i| row.get::<_, Option<f64>>(i)).collect()
            })
            .map_err(failed)
    }

    /// Every row of a small result.
    pub(crate) fn rows(&self, sql: &str) -> Result<Vec<Vec<Value>>, EngineError> {
        let mut stmt = self.conn.prepare(sql).map_err(failed)?;
        let width = stmt.column_count();
        let rows = stmt
            .query_map([], |row| {
                (0..width)
                    .map(|i| row.get::<_, DuckValue>(i).map(value))
                    .collect::<duckdb::Result<Vec<Value>>>()
            })
            .map_err(failed)?;
        rows.collect::<duckdb::Result<Vec<_>>>().map_err(failed)
    }

    /// The result of `sql` as Arrow record batches (arrow-rs, as DuckDB's
    /// crate builds it), with its schema for a result of no rows.
    pub(crate) fn arrow_batches(
        &self,
        sql: &str,
    ) -> Result<(arrow::datatypes::SchemaRef, Vec<arrow::record_batch::RecordBatch>), EngineError> {
        let mut stmt = self.conn.prepare(sql).map_err(failed)?;
        let batches = stmt.query_arrow([]).map_err(failed)?;
        let schema = batches.get_schema();
        Ok((schema, batches.collect()))
    }

    /// The columns and types of a table (`staging.events`) or of a query's
    /// result (`SELECT * FROM read_parquet(...)`), in order.
    pub(crate) fn describe(&self, relation: &str) -> Result<Columns, EngineError> {
        let rows = self.rows(&format!(
            "SELECT column_name, column_type FROM (DESCRIBE {relation})"
        ))?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let mut text = row.into_iter().map(|v| match v {
                    Value::Text(t) => t,
                    other => format!("{other:?}"),
                });
                (text.next().unwrap_or_default(), text.next().unwrap_or_default())
            })
            .collect())
    }

    /// Every table and view, as `schema.name`.
    pub(crate) fn tables(&self) -> Result<Vec<String>, EngineError> {
        let rows = self.rows(
            "SELECT schema_name || '.' || table_name FROM duckdb_tables() \
             UNION ALL SELECT schema_name || '.' || view_name FROM duckdb_views() WHERE NOT internal",
        )?;
        Ok(rows
            .into_iter()
            .filter_map(|row| match row.into_iter().next() {
                Some(Value::Text(t)) => Some(t),
                _ => None,
            })
            .collect())
    }

    /// From here on, SQL may read and write files only under `dirs` and
    /// nowhere else (no `/etc/passwd`, no `/proc/self/environ`), and the
    /// settings are locked so that no later statement can lift it. The data
    /// is loaded by then; what runs after (a mart's filter, a check's SQL)
    /// comes from files a pull request may change.
    pub(crate) fn restrict_files(&self, dirs: &[&Path]) -> Result<(), EngineError> {
        let mut allowed = Vec::new();
        for dir in dirs {
            // As the queries name them, and as the file system resolves them.
            allowed.push(sql::path(dir));
            if let Ok(absolute) = std::path::absolute(dir) {
                allowed.push(sql::path(&absolute));
            }
        }
        self.execute(&format!(
            "SET allowed_directories = [{}]; SET enable_external_access = false; SET lock_configuration = true;",
            allowed.join(", ")
        ))
    }

    /// Whether table `schema.name` exists.
    pub(crate) fn has_table(&self, schema: &str, name: &str) -> Result<bool, EngineError> {
        let n = self.count(&format!(
            "SELECT count(*) FROM duckdb_tables() WHERE schema_name = {} AND table_name = {}",
            sql::string(schema),
            sql::string(name)
        ))?;
        Ok(n > 0)
    }

    /// Writes the result of `query` to `target` through a temp file in the
    /// same directory and a rename, so a reader never sees half a file.
    pub(crate) fn copy_to(&self, query: &str, target: &Path, format: FileFormat) -> Result<()> {
        let tmp = target.with_extension(format!(
            "{}.tmp{}",
            target.extension().and_then(|e| e.to_str()).unwrap_or(""),
            std::process::id()
        ));
        self.write_file(query, &tmp, format)
            .map_err(Error::engine(format!("writing `{}`", target.display())))?;
        std::fs::rename(&tmp, target).map_err(|e| Error::io("replace", target, e))
    }

    /// Writes the result of `query` as Parquet files under `dir`, a
    /// directory per value of `columns` (Hive style: `column=value/`), each
    /// file keeping every column so its types survive; replaces what `dir`
    /// held (written beside it, then renamed: `dir` is never half-written).
    pub(crate) fn copy_partitioned(&self, query: &str, dir: &Path, columns: &[&str]) -> Result<()> {
        let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("partitioned");
        let tmp = dir.with_file_name(format!(".{name}.tmp{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        let columns: Vec<String> = columns.iter().map(|c| sql::ident(c)).collect();
        self.execute(&format!(
            "COPY ({query}) TO {} (FORMAT parquet, PARTITION_BY ({}), WRITE_PARTITION_COLUMNS true)",
            sql::path(&tmp),
            columns.join(", ")
        ))
        .map_err(Error::engine(format!("writing `{}`", dir.display())))?;
        match std::fs::remove_dir_all(dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(Error::io("replace", dir, e)),
            _ => {}
        }
        std::fs::rename(&tmp, dir).map_err(|e| Error::io("replace", dir, e))
    }

    /// Writes the result of `query` to `path` as it goes (see [`Self::copy_to`]
    /// for a reader-safe copy).
    pub(crate) fn write_file(&self, query: &str, path: &Path, format: FileFormat) -> Result<(), EngineError> {
        let options = match format {
            FileFormat::Parquet => "FORMAT parquet",
            FileFormat::Csv => "FORMAT csv, HEADER true",
        };
        self.execute(&format!("COPY ({query}) TO {} ({options})", sql::path(path)))
    }

    /// Appends rows of values to `schema.table` (`table` alone finds a
    /// temporary table too).
    pub(crate) fn append_rows(
        &self,
        schema: Option<&str>,
        table: &str,
        rows: &[Vec<Value>],
    ) -> Result<(), EngineError> {
        let appender = match schema {
            Some(schema) => self.conn.appender_to_db(table, schema),
            None => self.conn.appender(table),
        };
        let mut appender = appender.map_err(failed)?;
        for row in rows {
            let values = row.iter().map(|v| match v {
                Value::Null => DuckValue::Null,
                Value::Bool(b) => DuckValue::Boolean(*b),
                Value::Int(i) => DuckValue::BigInt(*i),
                Value::Float(f) => DuckValue::Double(*f),
                Value::Text(t) => DuckValue::Text(t.clone()),
                Value::Blob(b) => DuckValue::Blob(b.clone()),
            });
            appender
                .append_row(duckdb::appender_params_from_iter(values))
                .map_err(failed)?;
        }
        appender.flush().map_err(failed)
    }

    /// An appender of Arrow batches to `schema.table` (`table` alone finds a
    /// temporary table too), filling only `columns` when any are named (the
    /// others take their defaults).
    pub(crate) fn batch_appender(
        &self,
        schema: Option<&str>,
        table: &str,
        columns: &[&str],
    ) -> Result<BatchAppender<'_>, EngineError> {
        let appender = match schema {
            Some(schema) => self.conn.appender_to_db(table, schema),
            None => self.conn.appender(table),
        };
        let mut appender = appender.map_err(failed)?;
        for column in columns {
            appender.add_column(column).map_err(failed)?;
        }
        Ok(BatchAppender { appender })
    }

    /// The connection, for the Arrow handoff next door.
    pub(super) fn connection(&self) -> &Connection {
        &self.conn
    }
}

/// Appends Arrow batches to one table.
pub(crate) struct BatchAppender<'a> {
    appender: duckdb::Appender<'a>,
}

impl BatchAppender<'_> {
    pub(crate) fn append(&mut self, batch: arrow::record_batch::RecordBatch) -> Result<(), EngineError> {
        self.appender.append_record_batch(batch).map_err(failed)
    }

    pub(crate) fn flush(&mut self) -> Result<(), EngineError> {
        self.appender.flush().map_err(failed)
    }
}

fn value(v: DuckValue) -> Value {
    match v {
        DuckValue::Null => Value::Null,
        DuckValue::Boolean(b) => Value::Bool(b),
        DuckValue::TinyInt(i) => Value::Int(i.into()),
        DuckValue::SmallInt(i) => Value::Int(i.into()),
        DuckValue::Int(i) => Value::Int(i.into()),
        DuckValue::BigInt(i) => Value::Int(i),
        DuckValue::UTinyInt(i) => Value::Int(i.into()),
        DuckValue::USmallInt(i) => Value::Int(i.into()),
        DuckValue::UInt(i) => Value::Int(i.into()),
        DuckValue::UBigInt(i) => i64::try_from(i).map_or(Value::Float(i as f64), Value::Int),
        DuckValue::HugeInt(i) => i64::try_from(i).map_or(Value::Float(i as f64), Value::Int),
        DuckValue::Float(f) => Value::Float(f.into()),
        DuckValue::Double(f) => Value::Float(f),
        DuckValue::Text(t) => Value::Text(t),
        DuckValue::Blob(b) => Value::Blob(b),
        other => Value::Text(format!("{other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_results_describe_and_copies() {
        let engine = DuckDb::open(Some("256MB"), None).unwrap();
        engine
            .execute(
                "CREATE SCHEMA s; CREATE TABLE s.t AS SELECT range AS id, 'x' || range AS name FROM range(3)",
            )
            .unwrap();
        assert_eq!(engine.count("SELECT count(*) FROM s.t").unwrap(), 3);
        assert_eq!(
            engine
                .doubles("SELECT sum(id), CAST(NULL AS DOUBLE) FROM s.t", 2)
                .unwrap(),
            vec![Some(3.0), None]
        );
        assert_eq!(
            engine
                .rows("SELECT id, name FROM s.t ORDER BY id LIMIT 1")
                .unwrap(),
            vec![vec![Value::Int(0), Value::Text("x0".into())]]
        );
        assert_eq!(
            engine.describe("s.t").unwrap(),
            vec![
                ("id".to_string(), "BIGINT".to_string()),
                ("name".to_string(), "VARCHAR".to_string())
            ]
        );
        assert!(engine.tables().unwrap().contains(&"s.t".to_string()));
        assert!(engine.has_table("s", "t").unwrap() && !engine.has_table("s", "u").unwrap());
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("t.csv");
        engine
            .copy_to("SELECT * FROM s.t ORDER BY id", &csv, FileFormat::Csv)
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(&csv).unwrap(),
            "id,name\n0,x0\n1,x1\n2,x2\n"
        );
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp file is left"
        );
        engine
            .append_rows(Some("s"), "t", &[vec![Value::Int(9), Value::Null]])
            .unwrap();
        assert_eq!(
            engine
                .count("SELECT count(*) FROM s.t WHERE name IS NULL")
                .unwrap(),
            1
        );
        let e = engine.execute("SELECT nope FROM s.t").unwrap_err();
        assert_eq!(e.class, super::super::ErrorClass::Binding);
    }
}
