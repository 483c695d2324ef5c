//! The SQLite sink: a mart as a table of `agg_result.db`, replaced inside the
//! run's transaction. Money is REAL rounded to its decimals (exact up to 2^53
//! minor units) with the exact integer minor units beside it in
//! `<column>_minor`; times ISO-8601 UTC text to the second, days `YYYY-MM-DD`.
//! `_sluice_money_columns` records each money column's scale.

use rusqlite::types::Value;

use super::published_columns;
use crate::marts::Mart;
use crate::sql;

/// The suffix of the column that holds a money column's exact minor units.
pub(crate) const MINOR_SUFFIX: &str = "_minor";

pub(super) fn replace_table(
    tx: &rusqlite::Transaction<'_>,
    mart: &Mart,
    table: &str,
) -> rusqlite::Result<()> {
    let columns =
        published_columns(mart).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    let mut defs = Vec::new();
    for c in &columns {
        defs.push(format!("{} {}", sql::ident(&c.name), c.sql_type));
        if c.scale.is_some() {
            defs.push(format!(
                "{} INTEGER",
                sql::ident(&format!("{}{MINOR_SUFFIX}", c.name))
            ));
        }
    }
    tx.execute("DELETE FROM _sluice_money_columns WHERE table_name = ?1", [table])?;
    for c in &columns {
        if let Some(scale) = c.scale {
            tx.execute(
                "INSERT INTO _sluice_money_columns VALUES (?1, ?2, ?3)",
                rusqlite::params![table, c.name, scale],
            )?;
        }
    }
    let ident = sql::ident(table);
    tx.execute_batch(&format!(
        "DROP TABLE IF EXISTS {ident}; CREATE TABLE {ident} ({});",
        defs.join(", ")
    ))?;
    let placeholders = vec!["?"; defs.len()].join(", ");
    let mut stmt = tx.prepare(&format!("INSERT INTO {ident} VALUES ({placeholders})"))?;
    let mut row_values = Vec::with_capacity(defs.len());
    for row in 0..mart.frame.height() {
        row_values.clear();
        for c in &columns {
            let value = &c.values[row];
            match (c.scale, value) {
                (Some(scale), Value::Integer(minor)) => {
                    row_values.push(Value::Real(*minor as f64 / 10f64.powi(scale as i32)));
                    row_values.push(value.clone());
                }
                (Some(_), _) => row_values.extend([Value::Null, Value::Null]),
                (None, _) => row_values.push(value.clone()),
            }
        }
        stmt.execute(rusqlite::params_from_iter(&row_values))?;
    }
    Ok(())
}
