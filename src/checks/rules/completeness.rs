//! `completeness`: missing values of a column, null and, with
//! `blank_is_missing`, blank text; the share is of all rows in scope.

use super::{Columns, Failing, Measure, Plan, Problem, Sql, count_with_share};
use crate::checks::spec::CheckSpec;
use crate::sql;

#[derive(Debug, Clone)]
pub(crate) struct Completeness {
    pub column: String,
    /// Blank text (only Unicode space separators) is missing too.
    pub blank_is_missing: bool,
}

pub(super) fn build(s: &CheckSpec) -> Result<Completeness, Vec<Problem>> {
    Ok(Completeness {
        column: super::column(s)?,
        blank_is_missing: s.blank_is_missing,
    })
}

impl Completeness {
    fn missing(&self) -> String {
        let col = sql::ident(&self.column);
        if self.blank_is_missing {
            // Blank is what `trim` would empty (Unicode space separators):
            // matched, not trimmed, on every row.
            format!("({col} IS NULL OR regexp_full_match(CAST({col} AS VARCHAR), '\\p{{Zs}}*'))")
        } else {
            format!("{col} IS NULL")
        }
    }
}

impl Measure for Completeness {
    fn columns(&self) -> Vec<&str> {
        vec![&self.column]
    }

    fn other_tables(&self) -> Vec<(&str, Vec<&str>)> {
        Vec::new()
    }

    fn plan(&self, sql: &Sql, _: &Columns) -> Plan {
        Plan::Aggregates(vec![sql.count_where(&self.missing()), sql.count_where("TRUE")])
    }

    fn failing(&self, _: &Sql) -> Failing {
        Failing::Rows {
            condition: self.missing(),
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

    #[test]
    fn null_and_optionally_blank_is_missing() {
        let null = build(&spec("kind: completeness, column: sku, fail: '> 0'")).unwrap();
        assert_eq!(
            null.failing(&sql(None)),
            Failing::Rows {
                condition: "\"sku\" IS NULL".into(),
                qualify: None
            }
        );
        let blank = build(&spec(
            "kind: completeness, column: sku, blank_is_missing: true, fail: '> 0'",
        ))
        .unwrap();
        let Plan::Aggregates(exprs) = blank.plan(&sql(None), &Columns::new()) else {
            panic!("completeness is fused")
        };
        assert_eq!(
            exprs,
            vec![
                "CAST(count(*) FILTER (WHERE TRUE AND (\"sku\" IS NULL OR regexp_full_match(CAST(\"sku\" AS VARCHAR), '\\p{Zs}*'))) AS DOUBLE)",
                "CAST(count(*) FILTER (WHERE TRUE AND TRUE) AS DOUBLE)",
            ]
        );
        assert_eq!(blank.reads(1.0, Some(11.111)), "1 (11.11%)");
    }

    #[test]
    fn needs_a_column() {
        let problems = build(&spec("kind: completeness, fail: '> 0'")).unwrap_err();
        assert_eq!(
            problems,
            vec![("column", "a completeness check needs `column`".to_string())]
        );
    }
}
