//! The SQLite sink: a mart as a table of `agg_result.db`, replaced inside the
//! run's transaction. Money is REAL rounded to its decimals, times ISO-8601
//! UTC text to the second, days `YYYY-MM-DD`.

use super::published_columns;
use crate::marts::Mart;
use crate::sql;

pub(super) fn replace_table(
    tx: &rusqlite::Transaction<'_>,
    mart: &Mart,
    table: &str,
) -> rusqlite::Result<()> {
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
