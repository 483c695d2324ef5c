//! `relationships`: every non-null value of `column` exists in a column of
//! another table (`to`), as dbt's `relationships` test and Soda's reference
//! check. The observed value is the orphan rows, the share is of the rows
//! with a value, and the sample shows the orphans.

use super::{Columns, Failing, Measure, Plan, Problem, Sql, count_with_share, table_ref};
use crate::checks::spec::{CheckSpec, References};
use crate::sql;

#[derive(Debug, Clone)]
pub(crate) struct Relationships {
    /// The referencing column of the checked table.
    pub column: String,
    /// Where its values must exist.
    pub to: References,
}

pub(super) fn build(s: &CheckSpec) -> Result<Relationships, Vec<Problem>> {
    let column = super::column(s)?;
    let to = s.to.clone().ok_or_else(|| {
        vec![(
            "to",
            "a relationships check needs `to`: the `table` and `column` its values must exist in".to_string(),
        )]
    })?;
    Ok(Relationships { column, to })
}

impl Relationships {
    /// A row whose value has no match among the referenced values. `NOT IN`
    /// over non-null values only: one null among them would make every
    /// comparison unknown and hide every orphan.
    fn orphan(&self, s: &Sql) -> String {
        let col = sql::ident(&self.column);
        let target = sql::ident(&self.to.column);
        format!(
            "({col} IS NOT NULL AND {col} NOT IN (SELECT {target} FROM {} WHERE {target} IS NOT NULL AND {}))",
            table_ref(&self.to.table),
            s.condition(self.to.filter.as_deref())
        )
    }
}

impl Measure for Relationships {
    fn columns(&self) -> Vec<&str> {
        vec![&self.column]
    }

    fn other_tables(&self) -> Vec<(&str, Vec<&str>)> {
        vec![(&self.to.table, vec![&self.to.column])]
    }

    /// A query of its own: the lookup of the other table is a join, not a
    /// scan to fuse with the table's other checks.
    fn plan(&self, s: &Sql, _: &Columns) -> Plan {
        Plan::Query {
            sql: format!(
                "SELECT CAST(count(*) FILTER (WHERE {}) AS DOUBLE), CAST(count(*) AS DOUBLE) FROM {} WHERE {} AND {} IS NOT NULL",
                self.orphan(s),
                s.table,
                s.scope,
                sql::ident(&self.column)
            ),
            values: 2,
        }
    }

    fn failing(&self, s: &Sql) -> Failing {
        Failing::Rows {
            condition: self.orphan(s),
            qualify: None,
        }
    }

    fn reads(&self, observed: f64, pct: Option<f64>) -> String {
        count_with_share(observed, pct)
    }

    fn counts_failing_rows(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::rules::test_support::{spec, sql};

    fn rule() -> Relationships {
        build(&spec(
            "kind: relationships, column: user_id, to: {table: staging.users, column: id, filter: 'active'}, fail: '> 0'",
        ))
        .unwrap()
    }

    #[test]
    fn orphans_are_non_null_values_missing_from_the_other_column() {
        let orphan = "(\"user_id\" IS NOT NULL AND \"user_id\" NOT IN (SELECT \"id\" FROM \"staging\".\"users\" WHERE \"id\" IS NOT NULL AND (active)))";
        assert_eq!(
            rule().plan(&sql(Some("region = 'eu'")), &Columns::new()),
            Plan::Query {
                sql: format!(
                    "SELECT CAST(count(*) FILTER (WHERE {orphan}) AS DOUBLE), CAST(count(*) AS DOUBLE) FROM \"staging\".\"events\" WHERE (region = 'eu') AND \"user_id\" IS NOT NULL"
                ),
                values: 2
            }
        );
        assert_eq!(
            rule().failing(&sql(None)),
            Failing::Rows {
                condition: orphan.into(),
                qualify: None
            }
        );
        assert_eq!(rule().other_tables(), vec![("staging.users", vec!["id"])]);
        assert_eq!(rule().reads(2.0, Some(25.0)), "2 (25.00%)");
    }

    #[test]
    fn needs_a_column_and_a_target() {
        let no_to = build(&spec("kind: relationships, column: user_id, fail: '> 0'")).unwrap_err();
        assert_eq!(no_to[0].0, "to");
        let no_column = build(&spec(
            "kind: relationships, to: {table: staging.users, column: id}, fail: '> 0'",
        ))
        .unwrap_err();
        assert_eq!(no_column[0].0, "column");
    }
}
