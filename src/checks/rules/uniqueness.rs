//! `uniqueness`: duplicates = rows - distinct non-null keys, of `column` or
//! the composite key `columns`; the share is of all rows in scope.

use super::{Columns, Failing, Measure, Plan, Problem, Sql, count_with_share, non_null};
use crate::checks::spec::CheckSpec;
use crate::sql;

#[derive(Debug, Clone)]
pub(crate) struct Uniqueness {
    /// The key: one column or several.
    pub key: Vec<String>,
}

pub(super) fn build(s: &CheckSpec) -> Result<Uniqueness, Vec<Problem>> {
    match (&s.column, &s.columns) {
        (Some(_), Some(_)) => Err(vec![("columns", "give `column` or `columns`, not both".into())]),
        (Some(column), None) => Ok(Uniqueness {
            key: vec![column.clone()],
        }),
        (None, Some(columns)) if !columns.is_empty() => Ok(Uniqueness { key: columns.clone() }),
        (None, _) => Err(vec![(
            "column",
            "a uniqueness check needs `column` or `columns`".into(),
        )]),
    }
}

impl Uniqueness {
    fn key_list(&self) -> String {
        self.key
            .iter()
            .map(|c| sql::ident(c))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl Measure for Uniqueness {
    fn columns(&self) -> Vec<&str> {
        self.key.iter().map(String::as_str).collect()
    }

    fn other_tables(&self) -> Vec<(&str, Vec<&str>)> {
        Vec::new()
    }

    /// Distinct keys by GROUP BY, which DuckDB spills past its memory limit;
    /// `count(DISTINCT)` does not, and ran out of memory on 100M event ids.
    fn plan(&self, sql: &Sql, _: &Columns) -> Plan {
        let Sql { table, scope, .. } = sql;
        Plan::Aggregates(vec![
            format!(
                "CAST(count(*) FILTER (WHERE {scope}) - (SELECT count(*) FROM (SELECT 1 FROM {table} WHERE {scope} AND {} GROUP BY {})) AS DOUBLE)",
                non_null(&self.key),
                self.key_list()
            ),
            sql.count_where("TRUE"),
        ])
    }

    fn failing(&self, _: &Sql) -> Failing {
        Failing::Rows {
            condition: non_null(&self.key),
            qualify: Some(format!("count(*) OVER (PARTITION BY {}) > 1", self.key_list())),
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

    #[test]
    fn duplicates_are_rows_less_distinct_keys() {
        let rule = build(&spec("kind: uniqueness, columns: [user_id, region], fail: '> 0'")).unwrap();
        let Plan::Aggregates(exprs) = rule.plan(&sql(None), &Columns::new()) else {
            panic!("uniqueness is fused")
        };
        assert_eq!(
            exprs[0],
            "CAST(count(*) FILTER (WHERE TRUE) - (SELECT count(*) FROM (SELECT 1 FROM \"staging\".\"events\" WHERE TRUE AND \"user_id\" IS NOT NULL AND \"region\" IS NOT NULL GROUP BY \"user_id\", \"region\")) AS DOUBLE)"
        );
        assert_eq!(
            rule.failing(&sql(None)),
            Failing::Rows {
                condition: "\"user_id\" IS NOT NULL AND \"region\" IS NOT NULL".into(),
                qualify: Some("count(*) OVER (PARTITION BY \"user_id\", \"region\") > 1".into())
            }
        );
    }

    #[test]
    fn one_key_either_way() {
        assert_eq!(
            build(&spec("kind: uniqueness, column: id, fail: '> 0'"))
                .unwrap()
                .key,
            ["id"]
        );
        let both = build(&spec("kind: uniqueness, column: id, columns: [a], fail: '> 0'")).unwrap_err();
        assert_eq!(both[0].0, "columns");
        let none = build(&spec("kind: uniqueness, fail: '> 0'")).unwrap_err();
        assert_eq!(none[0].0, "column");
    }
}
