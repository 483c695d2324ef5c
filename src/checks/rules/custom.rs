//! `custom`: a DuckDB query returning the failing rows; the observed value
//! is how many it returns, and the sample is its first rows.

use super::{Columns, Failing, Measure, Plan, Problem, Sql};
use crate::checks::spec::CheckSpec;

#[derive(Debug, Clone)]
pub(crate) struct Custom {
    /// The query, with `{as_of}` and `{window_start}` still to expand.
    pub sql: String,
}

pub(super) fn build(s: &CheckSpec) -> Result<Custom, Vec<Problem>> {
    let sql = s.sql.clone().ok_or_else(|| {
        vec![(
            "sql",
            "a custom check needs `sql`, a query returning the failing rows".to_string(),
        )]
    })?;
    Ok(Custom { sql })
}

impl Measure for Custom {
    /// The query picks its own columns.
    fn columns(&self) -> Vec<&str> {
        Vec::new()
    }

    fn other_tables(&self) -> Vec<(&str, Vec<&str>)> {
        Vec::new()
    }

    fn plan(&self, sql: &Sql, _: &Columns) -> Plan {
        Plan::Query {
            sql: format!(
                "SELECT CAST(count(*) AS DOUBLE) FROM ({}) AS failing",
                sql.expand(&self.sql)
            ),
            values: 1,
        }
    }

    fn failing(&self, sql: &Sql) -> Failing {
        Failing::Query(sql.expand(&self.sql))
    }

    fn reads(&self, observed: f64, _: Option<f64>) -> String {
        format!("{} rows", observed as u64)
    }

    fn counts_failing_rows(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::rules::test_support::{spec, sql};

    #[test]
    fn counts_the_rows_of_its_query() {
        let rule = build(&spec(
            "kind: custom, sql: 'SELECT 1 WHERE {as_of} > now()', fail: '> 0'",
        ))
        .unwrap();
        assert_eq!(
            rule.plan(&sql(None), &Columns::new()),
            Plan::Query {
                sql: "SELECT CAST(count(*) AS DOUBLE) FROM (SELECT 1 WHERE TIMESTAMP '2026-11-20 12:00:00.000000' > now()) AS failing".into(),
                values: 1
            }
        );
        assert_eq!(rule.reads(3.0, None), "3 rows");
        assert!(build(&spec("kind: custom, fail: '> 0'")).is_err());
    }
}
